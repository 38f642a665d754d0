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
