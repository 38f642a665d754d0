//! Small text rules modules share.

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
}
