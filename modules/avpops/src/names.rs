//! AVP specs as avpops takes them: `$avp(name)`, `$avp(s:name)`,
//! `$avp(i:7)`, with `/flags` after them.

/// An AVP name as the script's `$avp(...)` keeps it (`s:` dropped, `i:`
/// kept), and the flags written after a `/`.
pub fn spec(arg: &str) -> Option<(String, String)> {
    let arg = arg.trim();
    let (avp, flags) = match arg.find(")/") {
        Some(i) => (&arg[..=i], &arg[i + 2..]),
        None => (arg, ""),
    };
    let inner = avp.strip_prefix("$avp(")?.strip_suffix(')')?;
    let name = inner.strip_prefix("s:").unwrap_or(inner).trim();
    if name.is_empty() {
        return None;
    }
    Some((name.to_string(), flags.trim().to_string()))
}

/// The attribute a name stands for in `usr_preferences`, and whether it
/// is an integer name (`i:7` is attribute `7` of type 2 or 3).
pub fn attribute(name: &str) -> (&str, bool) {
    match name.strip_prefix("i:") {
        Some(n) => (n, true),
        None => (name, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(spec("$avp(x)"), Some(("x".into(), String::new())));
        assert_eq!(spec("$avp(s:x)/g"), Some(("x".into(), "g".into())));
        assert_eq!(spec("$avp(i:7)/gd"), Some(("i:7".into(), "gd".into())));
        assert_eq!(spec("x"), None);
        assert_eq!(attribute("i:7"), ("7", true));
        assert_eq!(attribute("fwd"), ("fwd", false));
    }
}
