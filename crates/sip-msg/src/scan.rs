//! Small byte-level helpers shared by the header parsers.

/// Token bytes, as a table: one load per byte instead of a chain of
/// comparisons (token checks run on every header name and many values).
static TOKEN_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// Whether `b` may appear in an RFC 3261 `token`.
#[inline]
pub fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[b as usize]
}

/// Whether `s` is a non-empty RFC 3261 `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// `a.eq_ignore_ascii_case(b)`, cheaper on the usual short, equal or
/// nearly equal names: bytes equal, or the same letter in the other case
/// (they differ only in bit 0x20, and one of them is a lowercase letter).
#[inline]
pub fn eq_no_case(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (x ^ y == 0x20 && (x | 0x20).is_ascii_lowercase()))
}

/// Index of the first `b` in `s` (memchr; a plain `str::find(char)` has
/// more setup cost than these short header strings are worth).
#[inline]
pub fn find_byte(s: &str, b: u8) -> Option<usize> {
    memchr::memchr(b, s.as_bytes())
}

/// Index of the first linear white space byte in `s`.
#[inline]
pub fn find_lws(s: &str) -> Option<usize> {
    s.bytes().position(is_lws)
}

/// Whether `s` holds a linear white space byte: eight bytes at a time,
/// the bytes of a word looked at one by one only when one of them is below
/// 0x21 (white space and control bytes).
#[inline]
pub fn has_lws(s: &str) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = LO << 7;
    let mut chunks = s.as_bytes().chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
        // The high bit of each byte below 0x21 (no carry between bytes:
        // 0x7f + 0x5f < 0x100).
        let low = !(((w & !HI) + LO * 0x5f) | w) & HI;
        if low != 0 && c.iter().any(|&x| is_lws(x)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&x| is_lws(x))
}

/// Whether `b` is linear white space (folding included).
#[inline]
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims linear white space (including folded line breaks) on both ends.
/// (Inlined: it runs on nearly every value and usually trims one space.)
#[inline]
pub fn trim_lws(s: &str) -> &str {
    let (start, end) = lws_trimmed_range(s);
    &s[start..end]
}

/// The byte range of `s` left after trimming linear white space on both
/// ends. Byte-wise: LWS is ASCII, so the ends are char boundaries.
#[inline]
pub fn lws_trimmed_range(s: &str) -> (usize, usize) {
    lws_trimmed_bytes(s.as_bytes())
}

/// [`lws_trimmed_range`] on bytes.
#[inline]
pub fn lws_trimmed_bytes(b: &[u8]) -> (usize, usize) {
    let mut start = 0;
    let mut end = b.len();
    while start < end && is_lws(b[start]) {
        start += 1;
    }
    while end > start && is_lws(b[end - 1]) {
        end -= 1;
    }
    (start, end)
}

/// Finds `needle` outside quoted strings and angle brackets.
pub fn find_top_level(s: &str, needle: u8) -> Option<usize> {
    // Jump from one interesting byte to the next with memchr rather than
    // looking at every byte: values are mostly plain text.
    let b = s.as_bytes();
    // Most values hold no `needle` at all (one Via, one Contact, one
    // Route): one single-byte search settles those.
    let first = memchr::memchr(needle, b)?;
    match memchr::memchr3(b'"', b'<', b'>', &b[..first]) {
        None => return Some(first),
        // The usual shape of a Route or Contact list, `<URI>` then plain
        // bytes up to the first needle: that needle is at the top level.
        Some(0) if b[0] == b'<' => {
            if let Some(p) = memchr::memchr3(b'"', b'<', b'>', &b[1..first]) {
                if b[p + 1] == b'>' && !b[p + 2..first].iter().any(|c| b"\"<>".contains(c)) {
                    return Some(first);
                }
            }
        }
        Some(_) => {}
    }
    let mut i = 0;
    let mut angle = 0u32;
    while i < b.len() {
        let rest = &b[i..];
        i += if angle == 0 {
            memchr::memchr3(needle, b'"', b'<', rest)?
        } else {
            memchr::memchr3(b'"', b'<', b'>', rest)?
        };
        match b[i] {
            b'"' => {
                // Skip the quoted string, backslash escapes included.
                i += 1;
                loop {
                    let k = memchr::memchr2(b'"', b'\\', b.get(i..).unwrap_or(&[]))?;
                    i += k;
                    if b[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'<' => angle += 1,
            b'>' => angle = angle.saturating_sub(1),
            _ => return Some(i),
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
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    // Ten digits fit in a u64: check the range once at the end.
    let mut v = 0u64;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    u32::try_from(v).ok()
}

/// Where `sub` lies in `base` as (start, end) byte offsets, if it is a
/// slice of it (a value borrowed from a message, located in the message or
/// in one of its header values).
pub fn offset_in(base: &[u8], sub: &str) -> Option<(usize, usize)> {
    let off = (sub.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    let end = off.checked_add(sub.len())?;
    (end <= base.len()).then_some((off, end))
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
    fn find_top_level_skips_quotes_escapes_and_angles() {
        assert_eq!(find_top_level(r#"a,b"#, b','), Some(1));
        assert_eq!(find_top_level(r#""x,\",y",z"#, b','), Some(8));
        assert_eq!(find_top_level(r#"<a,b>,c"#, b','), Some(5));
        assert_eq!(find_top_level(r#"<a<b>,>,c"#, b','), Some(7));
        assert_eq!(find_top_level(r#""unterminated,"#, b','), None);
        assert_eq!(find_top_level(r#""esc at end\"#, b','), None);
        assert_eq!(find_top_level(r#">,"#, b','), Some(1));
        assert_eq!(find_top_level(r#"<"a>,",>;"#, b';'), Some(8));
        assert_eq!(find_top_level("", b','), None);
        // `<...>` then plain bytes before the first needle.
        assert_eq!(find_top_level(r#"<a;b>,c"#, b','), Some(5));
        assert_eq!(find_top_level(r#"<a> x,c"#, b','), Some(5));
        assert_eq!(find_top_level(r#"<a>"x,y",z"#, b','), Some(8));
        assert_eq!(find_top_level(r#"<a<b>,>,c"#, b','), Some(7));
        assert_eq!(find_top_level(r#"<a>>,c"#, b','), Some(4));
    }

    #[test]
    fn unquote_handles_escapes() {
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(unquote(r#" "plain" "#), "plain");
        assert_eq!(unquote("bare"), "bare");
    }

    #[test]
    fn eq_no_case_is_eq_ignore_ascii_case() {
        let bytes: Vec<u8> = (0u8..=127).collect();
        for &x in &bytes {
            for &y in &bytes {
                let (a, b) = ((x as char).to_string(), (y as char).to_string());
                assert_eq!(eq_no_case(&a, &b), a.eq_ignore_ascii_case(&b), "{x} {y}");
            }
        }
        assert!(eq_no_case("Branch", "bRANCH"));
        assert!(!eq_no_case("tag", "tags"));
    }

    #[test]
    fn has_lws_agrees_with_bytes() {
        for c in 0..=127u8 {
            for len in 1..20 {
                for at in 0..len {
                    let mut v = vec![b'a'; len];
                    v[at] = c;
                    let s = String::from_utf8(v).unwrap();
                    assert_eq!(has_lws(&s), s.bytes().any(is_lws), "{s:?}");
                }
            }
        }
        assert!(!has_lws("é\u{7f}ü€abcdefgh"));
        assert!(has_lws("éüabcdefgh\u{80}\t"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32("0042"), Some(42));
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(parse_u32(""), None);
        assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32("9999999999"), None);
        assert_eq!(parse_u32("12a"), None);
        assert_eq!(parse_u32("+1"), None);
    }
}
