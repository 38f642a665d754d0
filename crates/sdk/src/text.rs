//! Small text rules modules share.

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
