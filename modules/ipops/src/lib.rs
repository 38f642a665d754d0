//! # ipops: IP address operations
//!
//! Kamailio's `ipops` module, its address part: whether a string is an
//! IPv4 address, an IPv6 address or an IPv6 reference (`[...]`), their
//! comparison, subnet membership (`is_in_subnet`, RFC 1918), and the
//! address type from the IANA special-purpose ranges
//! (`detailed_ip_type`), and host names resolved (`dns_sys_match_ip`,
//! `dns_int_match_ip`, `dns_query` with `$dns`, dns.rs). `srv_query` and
//! `naptr_query` are not built. See `docs/modules/ipops.md`.
#![forbid(unsafe_code)]

pub mod dns;
pub mod kinds;

use sr_sdk::prelude::*;
use sr_sdk::text::atoi;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address.
    V6(Ipv6Addr),
    /// An IPv6 reference (`[address]`).
    V6Ref(Ipv6Addr),
}

impl Kind {
    /// The address.
    pub fn ip(self) -> IpAddr {
        match self {
            Kind::V4(a) => IpAddr::V4(a),
            Kind::V6(a) | Kind::V6Ref(a) => IpAddr::V6(a),
        }
    }

    /// Kamailio's `ip_type` number: 1, 2 or 3.
    pub fn number(self) -> i32 {
        match self {
            Kind::V4(_) => 1,
            Kind::V6(_) => 2,
            Kind::V6Ref(_) => 3,
        }
    }
}

/// What `s` is, if an address (IPv4 octets without leading zeros).
pub fn kind(s: &str) -> Option<Kind> {
    if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return inner.parse().ok().map(Kind::V6Ref);
    }
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Some(Kind::V4(a));
    }
    s.parse::<Ipv6Addr>().ok().map(Kind::V6)
}

/// Whether `ip` is in `subnet` (`address/bits`, the bits read as Kamailio
/// reads them, `atoi`: `10.0.0.0/` is /0, a negative length or none means
/// the address alone), same family; `None` for a subnet that is not one.
pub fn in_subnet(ip: IpAddr, subnet: &str) -> Option<bool> {
    let (net, bits) = match subnet.rsplit_once('/') {
        Some((n, b)) => {
            let v = atoi(b);
            (
                n,
                if v < 0 {
                    None
                } else {
                    Some(u8::try_from(v).ok()?)
                },
            )
        }
        None => (subnet, None),
    };
    let net = match kind(net)? {
        Kind::V6Ref(_) => return None,
        k => k.ip(),
    };
    Some(match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let b = bits.unwrap_or(32);
            if b > 32 {
                return None;
            }
            let m = if b == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(b))
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let b = bits.unwrap_or(128);
            if b > 128 {
                return None;
            }
            let m = if b == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(b))
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    })
}

/// A test of what a string is.
type KindCheck = fn(Option<Kind>) -> bool;

fn truth(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

/// `is_ip_rfc1918`, as Kamailio's parser decides it: three octets of a
/// private network and a digit (what follows is not read, so
/// `10.0.0.1:5060` is private too).
pub fn rfc1918(s: &str) -> bool {
    let octet = |t: &str| -> Option<u16> {
        let ok = !t.is_empty()
            && t.len() <= 3
            && t.bytes().all(|b| b.is_ascii_digit())
            && !(t.len() > 1 && t.starts_with('0'));
        ok.then(|| t.parse().ok()).flatten().filter(|&v| v <= 255)
    };
    let mut parts = s.splitn(4, '.');
    let (Some(a), Some(b), Some(_c), Some(rest)) = (
        parts.next().and_then(octet),
        parts.next().and_then(octet),
        parts.next().and_then(octet),
        parts.next(),
    ) else {
        return false;
    };
    let private = a == 10 || (a == 172 && (16..=31).contains(&b)) || (a == 192 && b == 168);
    private && rest.bytes().next().is_some_and(|d| d.is_ascii_digit())
}

/// `compare_ips` / `compare_pure_ips`: the same address (references
/// allowed unless `pure`).
fn compare(a: &str, b: &str, pure: bool) -> bool {
    let (Some(x), Some(y)) = (kind(a), kind(b)) else {
        return false;
    };
    if pure && (matches!(x, Kind::V6Ref(_)) || matches!(y, Kind::V6Ref(_))) {
        return false;
    }
    x.ip() == y.ip()
}

/// `detailed_*_type`: writes the type of `ip` into the pseudo-variable
/// (`want`: which families are taken).
fn detailed(ctx: &mut Ctx<'_>, p: &[Fixed], v4: bool, v6: bool) -> i32 {
    let ip = p[0].str(ctx).into_owned();
    let t = if v4 && v6 {
        match kind(&ip) {
            Some(Kind::V4(a)) => kinds::v4(a),
            Some(Kind::V6(a) | Kind::V6Ref(a)) => kinds::v6(a),
            None => return -1,
        }
    } else {
        // The one-family forms read the address as Kamailio does: blanks
        // trimmed, and for IPv6 a leading `[` and the last character
        // dropped.
        let t = ip.trim();
        let parsed = if v4 {
            t.parse::<Ipv4Addr>().ok().map(kinds::v4)
        } else {
            let inner = match t.strip_prefix('[') {
                Some(r) => r.get(..r.len().saturating_sub(1)).unwrap_or(""),
                None => t,
            };
            inner.parse::<Ipv6Addr>().ok().map(kinds::v6)
        };
        match parsed {
            Some(t) => t,
            None => return -1,
        }
    };
    let Fixed::Pv(pv) = &p[1] else { return -1 };
    match pv.assign(ctx, Value::str(t)) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("ipops: {e}");
            -1
        }
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let any = RouteType::ANY;
    let spve = || Some(fixup::f(fixup::spve));
    let mut def = ModuleDef::new("ipops");
    let checks: [(&str, KindCheck); 5] = [
        ("is_ip", |k| k.is_some()),
        ("is_pure_ip", |k| {
            matches!(k, Some(Kind::V4(_) | Kind::V6(_)))
        }),
        ("is_ipv4", |k| matches!(k, Some(Kind::V4(_)))),
        ("is_ipv6", |k| matches!(k, Some(Kind::V6(_)))),
        ("is_ipv6_reference", |k| matches!(k, Some(Kind::V6Ref(_)))),
    ];
    for (name, check) in checks {
        def = def.cmd(name, 1, any, spve(), move |ctx, p| {
            truth(check(kind(&p[0].str(ctx))))
        });
    }
    def = def
        .cmd("ip_type", 1, any, spve(), |ctx, p| {
            kind(&p[0].str(ctx)).map_or(-1, Kind::number)
        })
        .cmd("compare_ips", 2, any, spve(), |ctx, p| {
            let (a, b) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            truth(compare(&a, &b, false))
        })
        .cmd("compare_pure_ips", 2, any, spve(), |ctx, p| {
            let (a, b) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            truth(compare(&a, &b, true))
        })
        .cmd("is_ip_rfc1918", 1, any, spve(), |ctx, p| {
            truth(rfc1918(&p[0].str(ctx)))
        })
        .cmd("is_in_subnet", 2, any, spve(), |ctx, p| {
            let ip = p[0].str(ctx).into_owned();
            let nets = p[1].str(ctx).into_owned();
            // A plain address only (not a reference), as Kamailio.
            let Some(k) = kind(&ip).filter(|k| !matches!(k, Kind::V6Ref(_))) else {
                return -1;
            };
            // A list of subnets: the first that holds the address counts.
            let hit = nets
                .split(',')
                .map(|n| n.trim_matches(' '))
                .any(|n| in_subnet(k.ip(), n) == Some(true));
            truth(hit)
        });
    let pv_fx: fixup::FixupFn = std::sync::Arc::new(|env, i, arg| {
        if i == 1 {
            fixup::pvar(env, i, arg)
        } else {
            fixup::spve(env, i, arg)
        }
    });
    for (name, v4, v6) in [
        ("detailed_ip_type", true, true),
        ("detailed_ipv4_type", true, false),
        ("detailed_ipv6_type", false, true),
    ] {
        def = def.cmd(name, 2, any, Some(pv_fx.clone()), move |ctx, p| {
            detailed(ctx, p, v4, v6)
        });
    }
    for name in ["dns_sys_match_ip", "dns_int_match_ip"] {
        def = def.cmd(name, 2, any, spve(), |ctx, p| {
            let host = p[0].str(ctx).into_owned();
            let ip = p[1].str(ctx).into_owned();
            dns::match_ip(&host, &ip)
        });
    }
    def.cmd("dns_query", 2, any, spve(), |ctx, p| {
        let host = p[0].str(ctx).into_owned();
        let id = p[1].str(ctx).into_owned();
        dns::query(&host, &id)
    })
    .pv("dns", dns::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_strings() {
        assert!(matches!(kind("10.0.0.1"), Some(Kind::V4(_))));
        assert!(matches!(kind("::1"), Some(Kind::V6(_))));
        assert!(matches!(kind("[::1]"), Some(Kind::V6Ref(_))));
        assert_eq!(kind("[10.0.0.1]"), None);
        assert_eq!(kind("10.0.0"), None);
        assert_eq!(kind("example.com"), None);
        assert_eq!(kind(""), None);
    }

    #[test]
    fn subnets_and_comparisons() {
        let ip = |s: &str| kind(s).unwrap().ip();
        assert_eq!(in_subnet(ip("10.1.2.3"), "10.0.0.0/8"), Some(true));
        assert_eq!(in_subnet(ip("11.1.2.3"), "10.0.0.0/8"), Some(false));
        assert_eq!(in_subnet(ip("10.1.2.3"), "10.1.2.3"), Some(true));
        assert_eq!(in_subnet(ip("2001:db8::1"), "2001:db8::/32"), Some(true));
        assert_eq!(in_subnet(ip("2001:db8::1"), "10.0.0.0/8"), Some(false));
        assert_eq!(in_subnet(ip("10.1.2.3"), "10.0.0.0/33"), None);
        assert_eq!(in_subnet(ip("10.1.2.3"), "nonsense/8"), None);
        assert_eq!(
            in_subnet(ip("11.1.2.3"), "10.0.0.0/"),
            Some(true),
            "atoi: /0"
        );
        assert_eq!(in_subnet(ip("10.1.2.3"), "10.0.0.0/8x"), Some(true));
        assert_eq!(
            in_subnet(ip("10.0.0.5"), "10.0.0.5/-1"),
            Some(true),
            "the address alone"
        );
        assert_eq!(in_subnet(ip("10.0.0.6"), "10.0.0.5/-1"), Some(false));
        assert!(rfc1918("10.0.0.1:5060"));
        assert!(rfc1918("172.31.0.5x"));
        assert!(!rfc1918("172.32.0.5"));
        assert!(!rfc1918("010.1.2.3"));
        assert!(!rfc1918("10.0.0."));
        assert!(!rfc1918("8.8.8.8"));
        assert!(compare("::1", "[::1]", false));
        assert!(!compare("::1", "[::1]", true));
        assert!(compare("2001:db8::1", "2001:DB8:0::1", true));
        assert!(!compare("10.0.0.1", "::ffff:10.0.0.1", false));
    }
}
