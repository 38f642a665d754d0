//! siputils checks on text and headers: `is_alphanum`, `is_alphanumex`,
//! `cmp_hdr_name`, `is_supported`'s option names.

use sr_sdk::prelude::HeaderName;

/// `is_alphanum`/`is_alphanumex`: 1 when every byte is an ASCII letter, a
/// digit or one of `extra`; -2 for an empty text, -3 for another byte.
pub fn alphanum(text: &str, extra: &str) -> i32 {
    if text.is_empty() {
        return -2;
    }
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || extra.as_bytes().contains(&b))
    {
        1
    } else {
        -3
    }
}

/// `cmp_hdr_name`: 1 for the same header (compact and long forms alike,
/// names compared without case); -1 for two different known headers or
/// a known and another one; -2 for two other headers with different
/// names, or a text that is no header name (empty, white space, ...).
pub fn cmp_header_names(a: &str, b: &str) -> i32 {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c))
    };
    if !token(a) || !token(b) {
        return -2;
    }
    match (HeaderName::parse(a), HeaderName::parse(b)) {
        (HeaderName::Other, HeaderName::Other) if a.eq_ignore_ascii_case(b) => 1,
        (HeaderName::Other, HeaderName::Other) => -2,
        (x, y) if x == y => 1,
        _ => -1,
    }
}

/// The options `is_supported` knows (Kamailio's parsed Supported flags).
pub const SUPPORTED_OPTIONS: &[&str] =
    &["path", "100rel", "timer", "eventlist", "gruu", "outbound"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert_eq!(alphanum("abc123", ""), 1);
        assert_eq!(alphanum("", ""), -2);
        assert_eq!(alphanum("a-b", ""), -3);
        assert_eq!(alphanum("a-b", "-"), 1);
        assert_eq!(cmp_header_names("f", "From"), 1);
        assert_eq!(cmp_header_names("X-A", "x-a"), 1);
        assert_eq!(cmp_header_names("To", "From"), -1);
        assert_eq!(cmp_header_names("X-A", "From"), -1);
        assert_eq!(cmp_header_names("X-A", "X-B"), -2);
        assert_eq!(cmp_header_names("", "From"), -2);
        assert_eq!(cmp_header_names(" From", "From"), -2);
    }
}
