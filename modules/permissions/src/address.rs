//! The `address` table: groups of IP addresses, subnets and names, each
//! with a port (0: any) and a tag, and how Kamailio matches them. Exact
//! addresses (mask 32, or 128 for IPv6) are looked up first, newest row
//! first; then subnets, lowest group first (rows of a group in load
//! order); names (rows whose address is not an IP) only by
//! `allow_address` given a name.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

/// One row as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `grp` (above 0).
    pub grp: u32,
    /// `ip_addr`.
    pub addr: String,
    /// `mask`.
    pub mask: u32,
    /// `port` (0: any).
    pub port: u16,
    /// `tag`.
    pub tag: Option<String>,
}

/// An exact address or a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Group.
    pub grp: u32,
    /// Address (the network as written, for a subnet).
    pub ip: IpAddr,
    /// Prefix length.
    pub mask: u8,
    /// Port (0: any).
    pub port: u16,
    /// Tag.
    pub tag: Option<String>,
}

/// A row whose address is not an IP: matched by its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// Group.
    pub grp: u32,
    /// The name as written.
    pub name: String,
    /// Port (0: any).
    pub port: u16,
    /// Tag.
    pub tag: Option<String>,
}

/// The loaded table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Exact addresses, newest row first.
    pub hosts: Vec<Entry>,
    /// Where each address is in `hosts`, in that order.
    by_ip: HashMap<IpAddr, Vec<usize>>,
    /// Subnets, by group (rows of a group in load order).
    pub subnets: Vec<Entry>,
    /// Names, newest row first.
    pub names: Vec<Named>,
}

/// An IP written `1.2.3.4` (an octet may have leading zeros, as
/// Kamailio's parser takes), `::1` or `[::1]`; as written, no spaces.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    if s.starts_with('[') || s.contains(':') {
        let inner = s
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(s);
        return inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    parts
        .next()
        .is_none()
        .then(|| IpAddr::V4(Ipv4Addr::from(octets)))
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// Whether `ip` is in `net`/`mask` (same family, the first `mask` bits
/// equal).
pub fn in_subnet(ip: IpAddr, net: IpAddr, mask: u8) -> bool {
    let ((a, fa), (b, fb)) = (bits(ip), bits(net));
    if fa != fb {
        return false;
    }
    // IPv4 addresses sit in the top 32 bits, so one mask serves both.
    let m = u32::from(mask.min(fa));
    if m == 0 {
        return true;
    }
    let keep = u128::MAX << (128 - m);
    a & keep == b & keep
}

impl Table {
    /// The table from rows in load order, or the first fault (a mask out
    /// of range). Subnets beyond `max_subnets` are left out with a log
    /// line, as in Kamailio.
    pub fn build(rows: &[Row], max_subnets: usize) -> Result<Table, String> {
        let mut t = Table::default();
        for r in rows {
            let Some(ip) = parse_ip(&r.addr) else {
                t.names.push(Named {
                    grp: r.grp,
                    name: r.addr.clone(),
                    port: r.port,
                    tag: r.tag.clone(),
                });
                continue;
            };
            let full = if ip.is_ipv4() { 32 } else { 128 };
            if r.mask > full {
                return Err(format!("bad mask {} for {}", r.mask, r.addr));
            }
            let mask = if r.mask == 0 { full } else { r.mask } as u8;
            let e = Entry {
                grp: r.grp,
                ip,
                mask,
                port: r.port,
                tag: r.tag.clone(),
            };
            if u32::from(mask) == full {
                t.hosts.push(e);
            } else if t.subnets.len() < max_subnets {
                t.subnets.push(e);
            } else {
                sr_sdk::lm_err!(
                    "permissions: subnet table is full: {}/{} left out",
                    r.addr,
                    r.mask
                );
            }
        }
        t.hosts.reverse();
        for (k, e) in t.hosts.iter().enumerate() {
            t.by_ip.entry(e.ip).or_default().push(k);
        }
        t.names.reverse();
        t.subnets.sort_by_key(|e| e.grp);
        Ok(t)
    }

    /// The first entry of group `grp` (any group with `None`) that `ip`
    /// and `port` match: exact addresses first, then subnets.
    pub fn find(&self, grp: Option<u32>, ip: IpAddr, port: u16) -> Option<&Entry> {
        let wanted = |e: &&Entry| grp.is_none_or(|g| g == e.grp) && (e.port == 0 || e.port == port);
        self.by_ip
            .get(&ip)
            .into_iter()
            .flatten()
            .filter_map(|&k| self.hosts.get(k))
            .find(|e| wanted(e))
            .or_else(|| {
                self.subnets
                    .iter()
                    .filter(wanted)
                    .find(|e| in_subnet(ip, e.ip, e.mask))
            })
    }

    /// The first name row of group `grp` (any with `None`) written as
    /// `name` (exactly) whose port matches.
    pub fn find_name(&self, grp: Option<u32>, name: &str, port: u16) -> Option<&Named> {
        self.names.iter().find(|n| {
            grp.is_none_or(|g| g == n.grp) && n.name == name && (n.port == 0 || n.port == port)
        })
    }
}

/// Parses an address file: `grp addr [mask [port [tag]]]` per line, `#`
/// comments; the first fault as `line N: what`.
pub fn parse_file(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let mut f = line.split_whitespace();
        let Some(grp) = f.next() else { continue };
        let bad = |what: &str| format!("line {}: {what}", i + 1);
        let grp: u32 = grp
            .parse()
            .ok()
            .filter(|&g| g > 0)
            .ok_or_else(|| bad("the group must be a number above 0"))?;
        let addr = f.next().ok_or_else(|| bad("no address"))?.to_string();
        let full = if parse_ip(&addr).is_some_and(|ip| ip.is_ipv6()) {
            128
        } else {
            32
        };
        let mask = match f.next() {
            Some(m) => m.parse().map_err(|_| bad("the mask must be a number"))?,
            None => full,
        };
        let port = match f.next() {
            Some(p) => p.parse().map_err(|_| bad("the port must be a number"))?,
            None => 0,
        };
        let tag = f.next().map(str::to_string);
        rows.push(Row {
            grp,
            addr,
            mask,
            port,
            tag,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(grp: u32, addr: &str, mask: u32, port: u16, tag: &str) -> Row {
        Row {
            grp,
            addr: addr.into(),
            mask,
            port,
            tag: (!tag.is_empty()).then(|| tag.into()),
        }
    }

    fn ip(s: &str) -> IpAddr {
        parse_ip(s).unwrap()
    }

    #[test]
    fn subnets() {
        assert!(in_subnet(ip("10.1.2.3"), ip("10.1.0.0"), 16));
        assert!(!in_subnet(ip("10.2.2.3"), ip("10.1.0.0"), 16));
        assert!(
            in_subnet(ip("10.1.2.3"), ip("10.1.99.99"), 16),
            "host bits ignored"
        );
        assert!(in_subnet(ip("2001:db8::1"), ip("2001:db8::"), 32));
        assert!(!in_subnet(ip("2001:db9::1"), ip("2001:db8::"), 32));
        assert!(!in_subnet(ip("10.1.2.3"), ip("::"), 0), "families differ");
        assert!(
            in_subnet(ip("10.1.2.3"), ip("192.168.0.0"), 0),
            "mask 0: all"
        );
        assert!(in_subnet(ip("10.1.2.3"), ip("10.1.2.3"), 32));
        assert!(!in_subnet(ip("10.1.2.4"), ip("10.1.2.3"), 32));
    }

    #[test]
    fn lookups_follow_kamailio_order() {
        let t = Table::build(
            &[
                row(1, "10.0.0.1", 32, 0, "old"),
                row(2, "10.0.0.1", 32, 5060, "new"),
                row(5, "10.0.0.0", 8, 0, "net5"),
                row(1, "10.0.0.0", 24, 0, "net1"),
                row(3, "gw.example.com", 32, 0, "name"),
                row(1, "[2001:db8::1]", 128, 0, "v6"),
            ],
            512,
        )
        .unwrap();
        assert_eq!(t.hosts.len(), 3);
        assert_eq!(t.subnets.len(), 2);
        assert_eq!(t.names.len(), 1);
        // The newest row for an address comes first.
        assert_eq!(
            t.find(None, ip("10.0.0.1"), 5060).unwrap().tag.as_deref(),
            Some("new")
        );
        assert_eq!(
            t.find(None, ip("10.0.0.1"), 5070).unwrap().tag.as_deref(),
            Some("old")
        );
        assert_eq!(
            t.find(Some(1), ip("10.0.0.1"), 5060)
                .unwrap()
                .tag
                .as_deref(),
            Some("old")
        );
        // Subnets: the lowest group first.
        assert_eq!(t.find(None, ip("10.0.0.9"), 1).unwrap().grp, 1);
        assert_eq!(t.find(None, ip("10.9.0.9"), 1).unwrap().grp, 5);
        assert!(t.find(Some(2), ip("10.0.0.9"), 1).is_none());
        assert_eq!(
            t.find(None, ip("2001:db8::1"), 1).unwrap().tag.as_deref(),
            Some("v6")
        );
        assert!(t.find_name(Some(3), "gw.example.com", 9).is_some());
        assert!(
            t.find_name(Some(3), "GW.example.com", 9).is_none(),
            "names are exact"
        );
        assert!(Table::build(&[row(1, "10.0.0.0", 33, 0, "")], 512).is_err());
        let full = Table::build(
            &[row(1, "10.0.0.0", 8, 0, ""), row(1, "11.0.0.0", 8, 0, "")],
            1,
        )
        .unwrap();
        assert_eq!(full.subnets.len(), 1, "max_subnets");
    }

    #[test]
    fn addresses_as_kamailio_reads_them() {
        assert_eq!(parse_ip("10.0.0.01"), Some(ip("10.0.0.1")), "leading zeros");
        assert_eq!(parse_ip(" 10.0.0.1"), None, "no spaces");
        assert_eq!(parse_ip("10.0.0"), None);
        assert_eq!(parse_ip("10.0.0.256"), None);
        assert_eq!(parse_ip("10.0.0.1.2"), None);
        assert_eq!(parse_ip("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_ip("gw.example.com"), None);
    }

    #[test]
    fn files() {
        let rows =
            parse_file("# peers\n1 10.0.0.1\n2 10.0.0.0 8 5060 carrier # comment\n\n3 ::1\n")
                .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], row(2, "10.0.0.0", 8, 5060, "carrier"));
        assert_eq!((rows[0].mask, rows[2].mask), (32, 128));
        assert!(parse_file("0 10.0.0.1").is_err());
        assert!(parse_file("1").is_err());
        assert!(parse_file("1 10.0.0.1 x").unwrap_err().contains("line 1"));
    }
}
