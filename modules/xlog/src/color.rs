//! xlog's terminal colours: `$C(fb)`, foreground `f` and background `b`
//! as ANSI escapes, checked when the script is loaded.

use sr_sdk::prelude::*;
use sr_sdk::PvName;

/// The ANSI escape for foreground `f` (`x` default, `s` black, `r`,
/// `g`, `y`, `b`, `p`, `c`, `w`; upper case for bold, except `X`) and
/// background `b` (the same letters, lower case only).
fn color(code: &str) -> Option<String> {
    let mut c = code.chars();
    let (f, b) = (c.next()?, c.next()?);
    if c.next().is_some() {
        return None;
    }
    const LETTERS: &str = "srgybpcw";
    let base = |ch: char| -> Option<u32> {
        if ch == 'x' {
            return Some(9);
        }
        LETTERS.find(ch).map(|i| i as u32)
    };
    let bold = f.is_ascii_uppercase() && f != 'X';
    let fg = base(if bold { f.to_ascii_lowercase() } else { f })?;
    let bg = base(b)?;
    Some(format!("\x1b[{};{};{}m", u32::from(bold), 30 + fg, 40 + bg))
}

/// Refuses a `$C` name that is not two colour letters.
pub fn check(n: &PvName) -> Result<(), String> {
    let code = n.inner.as_deref().unwrap_or("").trim();
    color(code)
        .map(|_| ())
        .ok_or_else(|| format!("invalid colour name '{code}'"))
}

/// `$C(fb)`.
pub fn get(n: &PvName) -> Value<'static> {
    color(n.inner.as_deref().unwrap_or("").trim()).map_or(Value::Null, |e| Value::Str(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_kamailios() {
        assert_eq!(color("xy").as_deref(), Some("\x1b[0;39;43m"));
        assert_eq!(color("rb").as_deref(), Some("\x1b[0;31;44m"));
        assert_eq!(color("Gp").as_deref(), Some("\x1b[1;32;45m"));
        assert_eq!(color("xx").as_deref(), Some("\x1b[0;39;49m"));
        assert_eq!(color("Xx"), None);
        assert_eq!(color("xS"), None);
        assert_eq!(color("zz"), None);
        assert_eq!(color("x"), None);
        assert_eq!(color("xxx"), None);
    }
}
