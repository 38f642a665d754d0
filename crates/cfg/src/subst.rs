//! `#!subst "/regex/replacement/flags"` expressions.

use regex::{Regex, RegexBuilder};

/// A compiled substitution.
#[derive(Debug, Clone)]
pub(crate) struct Subst {
    re: Regex,
    /// Replacement in `regex` crate syntax (`${1}` for back references).
    repl: String,
    global: bool,
    /// The raw pattern and replacement text, for `#!substdef`.
    pub pattern: String,
    pub replacement: String,
}

impl Subst {
    /// Parse `<sep>regex<sep>replacement<sep>flags`; the separator is the first character.
    pub fn parse(expr: &str) -> Result<Subst, String> {
        let mut chars = expr.chars();
        let Some(sep) = chars.next() else {
            return Err("empty substitution expression".to_string());
        };
        if sep.is_alphanumeric() || sep == '\\' || sep.is_whitespace() {
            return Err(format!(
                "invalid substitution '{expr}': expected the form \"/regex/replacement/flags\""
            ));
        }
        let mut parts: Vec<String> = vec![String::new()];
        let mut it = chars.peekable();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some(n) if n == sep => parts.last_mut().unwrap_or(&mut String::new()).push(n),
                    Some(n) => {
                        if let Some(p) = parts.last_mut() {
                            p.push('\\');
                            p.push(n);
                        }
                    }
                    None => {
                        if let Some(p) = parts.last_mut() {
                            p.push('\\')
                        }
                    }
                }
            } else if c == sep {
                parts.push(String::new());
            } else if let Some(p) = parts.last_mut() {
                p.push(c);
            }
        }
        if parts.len() != 3 {
            return Err(format!(
                "invalid substitution '{expr}': expected the form \"{sep}regex{sep}replacement{sep}flags\""
            ));
        }
        let flags = parts.pop().unwrap_or_default();
        let replacement = parts.pop().unwrap_or_default();
        let pattern = parts.pop().unwrap_or_default();
        let mut icase = false;
        let mut global = false;
        for f in flags.chars() {
            match f {
                'i' => icase = true,
                'g' => global = true,
                's' => {}
                other => {
                    return Err(format!(
                        "invalid substitution '{expr}': unknown flag '{other}'"
                    ))
                }
            }
        }
        let re = RegexBuilder::new(&pattern)
            .case_insensitive(icase)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid regular expression '{pattern}': {e}"))?;
        Ok(Subst {
            re,
            repl: convert_replacement(&replacement),
            global,
            pattern,
            replacement,
        })
    }

    /// Apply to `s`; `None` when nothing matched.
    pub fn apply(&self, s: &str) -> Option<String> {
        if !self.re.is_match(s) {
            return None;
        }
        let out = if self.global {
            self.re.replace_all(s, self.repl.as_str())
        } else {
            self.re.replace(s, self.repl.as_str())
        };
        Some(out.into_owned())
    }
}

/// Convert POSIX-style `\1` back references to `${1}` and escape `$`.
fn convert_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut it = r.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match it.next() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str("${");
                    out.push(d);
                    out.push('}');
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('$') => out.push_str("$$"),
                Some(o) => out.push(o),
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic() {
        let s = Subst::parse("/foo/bar/").unwrap();
        assert_eq!(s.apply("a foo foo").as_deref(), Some("a bar foo"));
        let s = Subst::parse("/foo/bar/g").unwrap();
        assert_eq!(s.apply("a foo foo").as_deref(), Some("a bar bar"));
        let s = Subst::parse("!FOO!x!gi").unwrap();
        assert_eq!(s.apply("foo").as_deref(), Some("x"));
        let s = Subst::parse("/(a+)b/<\\1>/").unwrap();
        assert_eq!(s.apply("aab").as_deref(), Some("<aa>"));
        let s = Subst::parse("/a\\/b/$x/").unwrap();
        assert_eq!(s.apply("a/b").as_deref(), Some("$x"));
        assert!(s.apply("zz").is_none());
        assert!(Subst::parse("/a/b").is_err());
        assert!(Subst::parse("/(/b/").is_err());
        assert!(Subst::parse("/a/b/q").is_err());
    }
}
