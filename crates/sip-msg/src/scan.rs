//! Small byte-level helpers shared by the header parsers.

/// Whether `b` may appear in an RFC 3261 `token`.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Whether `s` is a non-empty RFC 3261 `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Whether `b` is linear white space (folding included).
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims linear white space (including folded line breaks) on both ends.
pub fn trim_lws(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8))
}

/// Finds `needle` outside quoted strings and angle brackets.
pub fn find_top_level(s: &str, needle: u8) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut in_quote = false;
    let mut angle = 0u32;
    while i < b.len() {
        let c = b[i];
        if in_quote {
            match c {
                b'\\' => i += 1,
                b'"' => in_quote = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_quote = true,
                b'<' => angle += 1,
                b'>' => angle = angle.saturating_sub(1),
                _ if c == needle && angle == 0 => return Some(i),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Iterator over the comma-separated values of one header line, skipping
/// commas inside quoted strings and `<...>`, trimming white space and
/// skipping empty elements.
#[derive(Debug, Clone)]
pub struct CommaSplit<'a> {
    rest: Option<&'a str>,
}

impl<'a> CommaSplit<'a> {
    /// Splits `s`.
    pub fn new(s: &'a str) -> Self {
        CommaSplit { rest: Some(s) }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let s = self.rest?;
            let (item, rest) = match find_top_level(s, b',') {
                Some(i) => (&s[..i], Some(&s[i + 1..])),
                None => (s, None),
            };
            self.rest = rest;
            let item = trim_lws(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

/// Removes the quotes of a quoted string and its backslash escapes.
///
/// Borrows when there is nothing to unescape.
pub fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let s = trim_lws(s);
    let inner = match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => inner,
        None => return std::borrow::Cow::Borrowed(s),
    };
    if !inner.contains('\\') {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Parses a decimal number that fits in `u32`, with no sign and no spaces.
pub fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v: Vec<_> = CommaSplit::new(r#""a, b" <sip:x@y;p=1,2>, <sip:z> ,, sip:w"#).collect();
        assert_eq!(v, [r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z>", "sip:w"]);
        let v: Vec<_> = CommaSplit::new(r#""q\", x", y"#).collect();
        assert_eq!(v, [r#""q\", x""#, "y"]);
    }

    #[test]
    fn unquote_handles_escapes() {
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(unquote(r#" "plain" "#), "plain");
        assert_eq!(unquote("bare"), "bare");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32("0042"), Some(42));
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(parse_u32(""), None);
    }
}
