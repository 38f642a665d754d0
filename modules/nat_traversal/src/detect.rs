//! The NAT tests of `client_nat_test` and the Contact `fix_contact`
//! writes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// RFC 1918 networks and RFC 6598's shared address space (as Kamailio's
/// list): a private IPv4 address.
pub fn is_private(host: &str) -> bool {
    let Ok(ip) = host.parse::<Ipv4Addr>() else {
        return false;
    };
    let n = u32::from(ip);
    [
        (0x0a00_0000u32, 0xff00_0000u32),
        (0xac10_0000, 0xfff0_0000),
        (0xc0a8_0000, 0xffff_0000),
        (0x6440_0000, 0xffc0_0000),
    ]
    .iter()
    .any(|(net, mask)| n & mask == *net)
}

/// Whether the top Via's sent-by differs from where the request came
/// from (the address, as text, or the port, 5060 when not written).
pub fn source_differs(via_host: &str, via_port: Option<u16>, src: SocketAddr) -> bool {
    let host = via_host.trim_start_matches('[').trim_end_matches(']');
    let same_ip = host.parse::<IpAddr>().is_ok_and(|ip| ip == src.ip());
    !same_ip || via_port.unwrap_or(5060) != src.port()
}

/// The source as a URI host and port: `ip:port` (`[v6]:port`).
pub fn host_port(src: SocketAddr) -> String {
    match src.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", src.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", src.port()),
    }
}

/// `fix_contact`'s URI: the host and port of `uri` (text from `host_at`
/// to `port_end`) replaced by the source; `None` when they are already
/// the source's.
pub fn fixed_uri(
    uri: &str,
    host: &str,
    port: Option<u16>,
    host_at: usize,
    port_end: usize,
    src: SocketAddr,
) -> Option<String> {
    let ip = match src.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    if host == ip && port.unwrap_or(5060) == src.port() {
        return None;
    }
    Some(format!(
        "{}{ip}:{}{}",
        &uri[..host_at],
        src.port(),
        &uri[port_end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
        ] {
            assert!(is_private(a), "{a}");
        }
        for a in [
            "172.32.0.1",
            "192.169.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "fd00::1",
            "host.example",
        ] {
            assert!(!is_private(a), "{a}");
        }
    }

    #[test]
    fn source_tests() {
        let src: SocketAddr = "203.0.113.5:5060".parse().unwrap();
        assert!(!source_differs("203.0.113.5", None, src));
        assert!(source_differs("203.0.113.5", Some(5070), src));
        assert!(source_differs("10.0.0.1", None, src));
        assert!(source_differs("host.example", None, src));
    }

    #[test]
    fn contacts_get_the_source() {
        let src: SocketAddr = "203.0.113.5:40000".parse().unwrap();
        let uri = "sip:alice@10.0.0.1:5070;transport=udp";
        assert_eq!(
            fixed_uri(uri, "10.0.0.1", Some(5070), 10, 23, src).as_deref(),
            Some("sip:alice@203.0.113.5:40000;transport=udp")
        );
        let uri = "sip:alice@10.0.0.1";
        assert_eq!(
            fixed_uri(uri, "10.0.0.1", None, 10, 18, src).as_deref(),
            Some("sip:alice@203.0.113.5:40000")
        );
        let same: SocketAddr = "10.0.0.1:5060".parse().unwrap();
        assert_eq!(fixed_uri(uri, "10.0.0.1", None, 10, 18, same), None);
    }
}
