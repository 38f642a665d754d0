//! Private address ranges and the `alias` parameter's text, without I/O.

use sr_sdk::Proto;
use std::net::{IpAddr, Ipv4Addr};

/// Whether `ip` is in a range NAT hides (RFC 1918, RFC 6598 shared
/// address space, RFC 6333 DS-Lite 192.0.0.0/29), as nathelper's tests
/// count them; IPv6 unique local addresses (fc00::/7) too.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let n = u32::from(v4);
            let within = |net: Ipv4Addr, bits: u32| {
                let mask = u32::MAX << (32 - bits);
                n & mask == u32::from(net) & mask
            };
            within(Ipv4Addr::new(10, 0, 0, 0), 8)
                || within(Ipv4Addr::new(172, 16, 0, 0), 12)
                || within(Ipv4Addr::new(192, 168, 0, 0), 16)
                || within(Ipv4Addr::new(100, 64, 0, 0), 10)
                || within(Ipv4Addr::new(192, 0, 0, 0), 29)
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// An address as a URI host: IPv6 in brackets.
pub fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `ip~port~proto` (IPv6 in brackets, as Kamailio writes it; the
/// transport as its number).
pub fn alias_value(ip: IpAddr, port: u16, proto: Proto) -> String {
    format!("{}~{port}~{}", host(ip), proto.number())
}

/// Reads `ip~port~proto`.
pub fn parse_alias(v: &str) -> Option<(IpAddr, u16, Proto)> {
    let mut parts = v.rsplitn(3, '~');
    let proto = Proto::from_number(parts.next()?.parse().ok()?)?;
    let port = parts.next()?.parse().ok()?;
    let ip = parts
        .next()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some((ip, port, proto))
}

/// A SIP URI for the address: `sip:ip:port` with `;transport=` unless
/// UDP.
pub fn address_uri(ip: IpAddr, port: u16, proto: Proto) -> String {
    let host = host(ip);
    if proto == Proto::Udp {
        format!("sip:{host}:{port}")
    } else {
        format!("sip:{host}:{port};transport={}", proto.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for p in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.7.1",
            "100.64.0.9",
            "192.0.0.5",
            "fd00::1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in [
            "172.32.0.1",
            "192.0.2.1",
            "100.128.0.1",
            "8.8.8.8",
            "127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }

    #[test]
    fn aliases_round_trip() {
        let a = alias_value("192.0.2.4".parse().unwrap(), 5071, Proto::Tcp);
        assert_eq!(a, "192.0.2.4~5071~2");
        assert_eq!(
            parse_alias(&a),
            Some(("192.0.2.4".parse().unwrap(), 5071, Proto::Tcp))
        );
        let b = alias_value("2001:db8::7".parse().unwrap(), 5060, Proto::Udp);
        assert_eq!(b, "[2001:db8::7]~5060~1");
        assert_eq!(
            parse_alias(&b).unwrap().0,
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(parse_alias("1.2.3.4~x~1"), None);
        assert_eq!(parse_alias("1.2.3.4~5060~9"), None);
        assert_eq!(
            address_uri("192.0.2.4".parse().unwrap(), 5071, Proto::Tls),
            "sip:192.0.2.4:5071;transport=tls"
        );
    }
}
