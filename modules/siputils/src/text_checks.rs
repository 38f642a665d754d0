//! siputils checks on text and headers: `is_alphanum`, `is_alphanumex`,
//! `cmp_hdr_name`, `is_supported`'s option names, `hdr_date_check`'s
//! date (RFC 1123, as SIP's Date header writes it).

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

/// Seconds since 1970 of an RFC 1123 date (`Sat, 13 Nov 2010 23:29:00
/// GMT`), as SIP's Date header has it.
pub fn rfc1123(text: &str) -> Option<i64> {
    let t = text.trim();
    let rest = t.split_once(',').map_or(t, |(_, r)| r).trim();
    let mut it = rest.split_whitespace();
    let day: i64 = it.next()?.parse().ok()?;
    let mon = match it.next()?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let s: i64 = hms.next()?.parse().ok()?;
    if !it.next()?.eq_ignore_ascii_case("GMT") {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from 1970-01-01 (civil calendar).
    let (y, mo) = if mon <= 2 {
        (year - 1, mon + 9)
    } else {
        (year, mon - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

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
        assert_eq!(
            rfc1123("Sat, 13 Nov 2010 23:29:00 GMT"),
            Some(1_289_690_940)
        );
        assert_eq!(rfc1123("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(rfc1123("yesterday"), None);
    }
}
