//! The address types `detailed_ip_type` names, from the IANA special
//! purpose ranges as Kamailio lists them: the first range in list order
//! that holds the address gives its type (an IPv4 address in none is
//! `PUBLIC`).

use std::net::{Ipv4Addr, Ipv6Addr};

/// IPv4 ranges: network, prefix length, type.
const V4: &[([u8; 4], u8, &str)] = &[
    ([255, 255, 255, 255], 32, "BROADCAST"),
    ([203, 0, 113, 0], 24, "TEST-NET"),
    ([198, 51, 100, 0], 24, "TEST-NET"),
    ([192, 88, 99, 0], 24, "6TO4-RELAY"),
    ([192, 0, 2, 0], 24, "TEST-NET"),
    ([192, 0, 0, 0], 24, "RESERVED"),
    ([192, 168, 0, 0], 16, "PRIVATE"),
    ([169, 254, 0, 0], 16, "LINK-LOCAL"),
    ([198, 18, 0, 0], 15, "RESERVED"),
    ([172, 16, 0, 0], 12, "PRIVATE"),
    ([100, 64, 0, 0], 10, "SHARED"),
    ([127, 0, 0, 0], 8, "LOOPBACK"),
    ([10, 0, 0, 0], 8, "PRIVATE"),
    ([0, 0, 0, 0], 8, "PRIVATE"),
    ([240, 0, 0, 0], 4, "RESERVED"),
    ([224, 0, 0, 0], 4, "MULTICAST"),
];

/// IPv6 ranges: network, prefix length, type.
const V6: &[(&str, u8, &str)] = &[
    ("::", 128, "UNSPECIFIED"),
    ("::1", 128, "LOOPBACK"),
    ("::ffff:0:0", 96, "IPV4MAP"),
    ("100::", 64, "DISCARD"),
    ("2001:2::", 48, "BMWG"),
    ("2001::", 32, "TEREDO"),
    ("2001:db8::", 32, "DOCUMENTATION"),
    ("2001:10::", 28, "ORCHID"),
    ("2002::", 16, "6TO4"),
    ("fec0::", 10, "RESERVED"),
    ("fe80::", 10, "LINK-LOCAL-UNICAST"),
    ("fe00::", 9, "RESERVED"),
    ("::", 8, "RESERVED"),
    ("100::", 8, "RESERVED"),
    ("ff00::", 8, "MULTICAST"),
    ("200::", 7, "RESERVED"),
    ("fc00::", 7, "UNIQUE-LOCAL-UNICAST"),
    ("400::", 6, "RESERVED"),
    ("f800::", 6, "RESERVED"),
    ("800::", 5, "RESERVED"),
    ("f000::", 5, "RESERVED"),
    ("e000::", 4, "RESERVED"),
    ("1000::", 4, "RESERVED"),
    ("c000::", 3, "RESERVED"),
    ("2000::", 3, "GLOBAL-UNICAST"),
    ("4000::", 3, "RESERVED"),
    ("6000::", 3, "RESERVED"),
    ("8000::", 3, "RESERVED"),
    ("a000::", 3, "RESERVED"),
];

fn mask32(bits: u8) -> u32 {
    if bits == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(bits.min(32)))
    }
}

fn mask128(bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(bits.min(128)))
    }
}

/// The type of an IPv4 address.
pub fn v4(a: Ipv4Addr) -> &'static str {
    let x = u32::from(a);
    V4.iter()
        .find(|(net, bits, _)| x & mask32(*bits) == u32::from(Ipv4Addr::from(*net)))
        .map_or("PUBLIC", |(_, _, t)| t)
}

/// The type of an IPv6 address (every address is in one range).
pub fn v6(a: Ipv6Addr) -> &'static str {
    let x = u128::from(a);
    V6.iter()
        .find(|(net, bits, _)| {
            net.parse::<Ipv6Addr>()
                .is_ok_and(|n| x & mask128(*bits) == u128::from(n))
        })
        .map_or("RESERVED", |(_, _, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        let t4 = |s: &str| v4(s.parse().unwrap());
        assert_eq!(t4("10.1.2.3"), "PRIVATE");
        assert_eq!(t4("172.17.0.1"), "PRIVATE");
        assert_eq!(t4("172.20.0.1"), "PRIVATE");
        assert_eq!(t4("172.32.0.1"), "PUBLIC");
        assert_eq!(t4("100.100.0.1"), "SHARED");
        assert_eq!(t4("127.0.0.1"), "LOOPBACK");
        assert_eq!(t4("192.0.2.1"), "TEST-NET");
        assert_eq!(t4("224.0.0.1"), "MULTICAST");
        assert_eq!(t4("255.255.255.255"), "BROADCAST");
        assert_eq!(t4("8.8.8.8"), "PUBLIC");
        let t6 = |s: &str| v6(s.parse().unwrap());
        assert_eq!(t6("::"), "UNSPECIFIED");
        assert_eq!(t6("::1"), "LOOPBACK");
        assert_eq!(t6("::ffff:10.0.0.1"), "IPV4MAP");
        assert_eq!(t6("2001:db8::1"), "DOCUMENTATION");
        assert_eq!(t6("fe80::1"), "LINK-LOCAL-UNICAST");
        assert_eq!(t6("fd00::1"), "UNIQUE-LOCAL-UNICAST");
        assert_eq!(t6("ff02::1"), "MULTICAST");
        assert_eq!(t6("2a00::1"), "GLOBAL-UNICAST");
        assert_eq!(t6("::2"), "RESERVED");
    }
}
