//! Small text rules modules share.

/// C's `strtol(s, &end, base)`: leading white space, a sign, then digits
/// of `base` (0: `0x` hex, `0` octal, else decimal; 16 also takes `0x`);
/// the value, held at the 64-bit limits, and the bytes read (0 when there
/// is no number, as `end` stays at the start).
pub fn strtol(s: &str, base: u32) -> (i64, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let hex_prefix = b.len() > i + 2
        && b[i] == b'0'
        && (b[i + 1] | 0x20) == b'x'
        && b[i + 2].is_ascii_hexdigit();
    let radix = match base {
        0 if hex_prefix => 16,
        0 if b.get(i) == Some(&b'0') => 8,
        0 => 10,
        r => r.clamp(2, 36),
    };
    if radix == 16 && hex_prefix {
        i += 2;
    }
    let start = i;
    let mut v: i64 = 0;
    while let Some(d) = b.get(i).and_then(|c| char::from(*c).to_digit(radix)) {
        v = v
            .saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d));
        i += 1;
    }
    if i == start {
        return (0, 0);
    }
    (if neg { v.saturating_neg() } else { v }, i)
}

/// C's `atoi`: leading white space, a sign, the digits that follow (none:
/// 0), held at the 64-bit limits instead of overflowing.
pub fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = t.bytes().take_while(u8::is_ascii_digit).fold(0i64, |n, d| {
        n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    if neg {
        -n
    } else {
        n
    }
}

/// `host` without `prefix` when it starts with it (ASCII case ignored) and
/// is longer, as Kamailio's modules strip a `domain_prefix`.
pub fn strip_domain_prefix<'a>(host: &'a str, prefix: &str) -> &'a str {
    if !prefix.is_empty()
        && host.len() > prefix.len()
        && host.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        &host[prefix.len()..]
    } else {
        host
    }
}

/// Decodes `%xx` escapes in a URI user part.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_goes_when_shorter_than_the_host() {
        assert_eq!(strip_domain_prefix("sip.other.com", "sip."), "other.com");
        assert_eq!(strip_domain_prefix("SIP.other.com", "sip."), "other.com");
        assert_eq!(strip_domain_prefix("sip.", "sip."), "sip.");
        assert_eq!(strip_domain_prefix("other.com", ""), "other.com");
    }

    #[test]
    fn strtol_as_c() {
        assert_eq!(strtol(" -42x", 10), (-42, 4));
        assert_eq!(strtol("0x1f", 0), (31, 4));
        assert_eq!(strtol("010", 0), (8, 3));
        assert_eq!(strtol("09", 0), (0, 1));
        assert_eq!(strtol("abc", 10), (0, 0));
        assert_eq!(strtol("", 0), (0, 0));
        assert_eq!(strtol("99999999999999999999", 10).0, i64::MAX);
    }
}

/// The user and domain of a digest `username`, as Kamailio's parser reads
/// them (`$au`, `$ad`, the user auth_db looks up): `user@domain`, and a
/// `sip:` (anything up to the first `:`) before the user dropped; a
/// username of two characters or less is all user.
pub fn split_digest_username(username: &str) -> (&str, Option<&str>) {
    if username.len() <= 2 {
        return (username, None);
    }
    let (user, domain) = match username.split_once('@') {
        Some((u, d)) => (u, Some(d)),
        None => (username, None),
    };
    let user = user.split_once(':').map_or(user, |(_, u)| u);
    (user, domain)
}

#[cfg(test)]
mod digest_username_tests {
    use super::split_digest_username as split;

    #[test]
    fn user_and_domain_as_kamailio_reads_them() {
        assert_eq!(split("alice"), ("alice", None));
        assert_eq!(split("alice@b.com"), ("alice", Some("b.com")));
        assert_eq!(split("sip:alice@b.com"), ("alice", Some("b.com")));
        assert_eq!(split("1795840203:alice"), ("alice", None));
        assert_eq!(split("a@"), ("a@", None));
        assert_eq!(split("1:a:b@c"), ("a:b", Some("c")));
    }
}
