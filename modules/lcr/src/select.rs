//! Choosing gateways: the rules that match a user part, caller and
//! Request-URI, their gateways in order (`load_gws`), the value each is
//! kept as in `gw_uri_avp`, the Request-URI and destination `next_gw`
//! makes of it, and the gateway an address belongs to (`from_gw`,
//! `to_gw`). No I/O: the module feeds it the tables and the message.

use crate::tables::{Gw, Instance};
use std::cmp::Reverse;
use std::net::IpAddr;

/// A gateway a matching rule routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Index of the gateway (1-based).
    pub gw_index: usize,
    /// The rule that matched.
    pub rule_id: u32,
    /// Length of the rule's prefix.
    pub prefix_len: usize,
    /// The target's priority (0 highest).
    pub priority: u32,
    /// The target's weight times a random number.
    pub weight: u64,
}

/// Why [`matching`] gave up.
#[derive(Debug, PartialEq, Eq)]
pub enum MatchError {
    /// A rule with a Request-URI pattern matched, and no Request-URI was
    /// given (the RPC command only).
    NoRequestUri,
}

/// The caller's values in the mtree (`mt_pv_values`), asked for when a
/// rule with an `mt_tvalue` is reached: `None` when the caller's user is
/// not in the tree (such rules then fail).
pub type MtValues<'a> = &'a mut dyn FnMut() -> Option<Vec<String>>;

/// The gateways for `user` (calling party `from_uri`, Request-URI
/// `request_uri`), best first, each once: rules by longest prefix (rules
/// of one prefix length last read first, a stopper ending the search),
/// then priority, then weight times `rand()` (a 23-bit random number, as
/// Kamailio's `kam_rand() >> 8`); with `priority_ordering`, by priority
/// and weight only. Defunct and inactive gateways are left out.
#[allow(clippy::too_many_arguments)] // the request's parts and the settings, as load_gws has them
pub fn matching(
    inst: &Instance,
    user: &str,
    from_uri: &str,
    request_uri: Option<&str>,
    now: u32,
    priority_ordering: bool,
    rand: &mut dyn FnMut() -> u64,
    mut mt: Option<MtValues<'_>>,
) -> Result<Vec<Matched>, MatchError> {
    let user_b = user.as_bytes();
    let mut mt_cache: Option<Option<Vec<String>>> = None;
    let mut found: Vec<Matched> = Vec::new();
    'lens: for &len in &inst.prefix_lens {
        if user_b.len() < len {
            continue;
        }
        let head = &user_b[..len];
        for rule in inst.rules.iter().rev() {
            if rule.prefix.len() != len || rule.prefix.as_bytes() != head {
                continue;
            }
            if let Some(re) = &rule.from_re {
                if !re.is_match(from_uri.as_bytes()) {
                    continue;
                }
            }
            // (Only with a caller: Kamailio skips the test without one.)
            if !rule.mt_tvalue.is_empty() && !from_uri.is_empty() {
                if let Some(f) = mt.as_mut() {
                    let vals = mt_cache.get_or_insert_with(f);
                    if !vals.as_ref().is_some_and(|v| v.contains(&rule.mt_tvalue)) {
                        continue;
                    }
                }
            }
            if let Some(re) = &rule.request_re {
                let r = request_uri
                    .filter(|r| !r.is_empty())
                    .ok_or(MatchError::NoRequestUri)?;
                if !re.is_match(r.as_bytes()) {
                    continue;
                }
            }
            for t in &rule.targets {
                let Some(gw) = inst.gws.get(t.gw_index - 1) else {
                    continue;
                };
                if gw.unusable(now) {
                    continue;
                }
                found.push(Matched {
                    gw_index: t.gw_index,
                    rule_id: rule.id,
                    prefix_len: len,
                    priority: t.priority,
                    weight: u64::from(t.weight) * rand(),
                });
            }
            if rule.stopper {
                break 'lens;
            }
        }
    }
    // Kamailio sorts worst first (a stable sort) and reads from the end.
    if priority_ordering {
        found.sort_by_key(|m| (Reverse(m.priority), m.weight));
    } else {
        found.sort_by_key(|m| (m.prefix_len, Reverse(m.priority), m.weight));
    }
    found.reverse();
    let mut seen = Vec::new();
    found.retain(|m| {
        let first = !seen.contains(&m.gw_index);
        seen.push(m.gw_index);
        first
    });
    Ok(found)
}

/// An address as `gw_uri_avp` keeps it: IPv4 as the number its bytes
/// make in memory on a little-endian machine (Kamailio's `addr32[0]`),
/// IPv6 in brackets; empty for none or an all-zero address.
fn encode_ip(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(a)) if !a.is_unspecified() => u32::from_le_bytes(a.octets()).to_string(),
        Some(IpAddr::V6(a)) if !a.is_unspecified() => format!("[{a}]"),
        _ => String::new(),
    }
}

/// The `gw_uri_avp` value for gateway `gw_index` reached through rule
/// `rule_id`: index, scheme, strip, prefix, tag, address, host name,
/// port, parameters, transport, flags and rule id, separated by `|`.
pub fn encode(gw: &Gw, gw_index: usize, rule_id: u32) -> String {
    let port = if gw.port > 0 {
        gw.port.to_string()
    } else {
        String::new()
    };
    format!(
        "{gw_index}|{}|{}|{}|{}|{}|{}|{port}|{}|{}|{}|{rule_id}",
        gw.scheme,
        gw.strip,
        gw.prefix,
        gw.tag,
        encode_ip(gw.ip),
        gw.hostname,
        gw.params,
        gw.transport,
        gw.flags
    )
}

/// A `gw_uri_avp` value, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Index of the gateway.
    pub gw_index: usize,
    /// `sip:` or `sips:`.
    pub scheme: String,
    /// Characters to strip.
    pub strip: usize,
    /// Prefix to add.
    pub prefix: String,
    /// The gateway's tag.
    pub tag: String,
    /// Its address, if any.
    pub ip: Option<IpAddr>,
    /// Its host name (may be empty).
    pub hostname: String,
    /// Its port, as text (may be empty).
    pub port: String,
    /// URI parameters.
    pub params: String,
    /// `;transport=...` or empty.
    pub transport: String,
    /// The gateway's flags.
    pub flags: u32,
    /// The rule that chose it.
    pub rule_id: u32,
}

fn decode_ip(s: &str) -> Option<IpAddr> {
    if s.is_empty() {
        return None;
    }
    if let Some(v6) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return v6.parse().ok();
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let n: u32 = s.parse().ok()?;
    Some(IpAddr::V4(n.to_le_bytes().into()))
}

/// Reads a `gw_uri_avp` value; `None` when it is not one.
pub fn decode(v: &str) -> Option<Decoded> {
    let f: Vec<&str> = v.splitn(12, '|').collect();
    if f.len() < 11 {
        return None;
    }
    let num = |s: &str| s.parse::<u64>().unwrap_or(0);
    Some(Decoded {
        gw_index: num(f[0]) as usize,
        scheme: f[1].to_string(),
        strip: num(f[2]) as usize,
        prefix: f[3].to_string(),
        tag: f[4].to_string(),
        ip: decode_ip(f[5]),
        hostname: f[6].to_string(),
        port: f[7].to_string(),
        params: f[8].to_string(),
        transport: f[9].to_string(),
        flags: num(f[10]) as u32,
        rule_id: f.get(11).map_or(0, |s| num(s) as u32),
    })
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(a) => format!("[{a}]"),
        IpAddr::V4(a) => a.to_string(),
    }
}

/// The Request-URI and destination URI (if any) for `user` through the
/// gateway `d`: the user stripped and prefixed (unless `keep_user`), at
/// the host name with the parameters and `$du` at the address when the
/// gateway has both, else at whichever it has. `None` when the strip
/// count is longer than the user.
pub fn uris(d: &Decoded, user: &str, keep_user: bool) -> Option<(String, Option<String>)> {
    let (strip, prefix) = if keep_user {
        (0, "")
    } else {
        (d.strip, d.prefix.as_str())
    };
    let rest = user.get(strip..)?;
    let mut r = format!("{}{prefix}{rest}@", d.scheme);
    let port = if d.port.is_empty() {
        String::new()
    } else {
        format!(":{}", d.port)
    };
    match d.ip {
        Some(ip) if !d.hostname.is_empty() => {
            r.push_str(&d.hostname);
            r.push_str(&d.params);
            let du = format!("{}{}{port}{}", d.scheme, host_of(ip), d.transport);
            Some((r, Some(du)))
        }
        ip => {
            match ip {
                Some(ip) => r.push_str(&host_of(ip)),
                None => r.push_str(&d.hostname),
            }
            r.push_str(&port);
            r.push_str(&d.transport);
            r.push_str(&d.params);
            Some((r, None))
        }
    }
}

/// The gateway of `inst` at `ip` (and `port`, unless 0) whose transport
/// is `transport` (0: any): `None` also when some gateway of the
/// instance has no address. Without a port the gateways are searched as
/// glibc's `bsearch` searches Kamailio's sorted table (so of two
/// gateways at one address, the one it lands on decides).
pub fn find_by_addr(inst: &Instance, ip: IpAddr, transport: u32, port: u32) -> Option<&Gw> {
    if inst.null_ip {
        return None;
    }
    let key = Gw::ip_key(Some(ip));
    let gw = if port != 0 {
        inst.gws
            .iter()
            .find(|g| Gw::ip_key(g.ip) == key && g.port == port)
    } else {
        let (mut l, mut u) = (0usize, inst.gws.len());
        let mut hit = None;
        while l < u {
            let idx = (l + u) / 2;
            match key.cmp(&Gw::ip_key(inst.gws[idx].ip)) {
                std::cmp::Ordering::Less => u = idx,
                std::cmp::Ordering::Greater => l = idx + 1,
                std::cmp::Ordering::Equal => {
                    hit = Some(&inst.gws[idx]);
                    break;
                }
            }
        }
        hit
    }?;
    (transport == 0 || gw.transport_code == transport).then_some(gw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{Rule, Target, GW_ACTIVE, GW_INACTIVE};
    use std::sync::atomic::AtomicU32;

    fn gw(id: u32, ip: Option<&str>, host: &str, port: u32, transport: u32) -> Gw {
        Gw {
            id,
            name: format!("gw{id}"),
            scheme: "sip:",
            ip: ip.map(|s| s.parse().unwrap()),
            hostname: host.into(),
            port,
            transport_code: transport,
            transport: if transport == 1 { ";transport=udp" } else { "" },
            params: String::new(),
            strip: 0,
            prefix: String::new(),
            tag: String::new(),
            flags: 0,
            defunct_until: AtomicU32::new(0),
            state: AtomicU32::new(GW_ACTIVE),
            uri: String::new(),
        }
    }

    fn rule(id: u32, prefix: &str, from: &str, stopper: bool, targets: &[(usize, u32)]) -> Rule {
        Rule {
            id,
            prefix: prefix.into(),
            from_uri: from.into(),
            from_re: (!from.is_empty()).then(|| regex::bytes::Regex::new(from).unwrap()),
            request_uri: String::new(),
            request_re: None,
            mt_tvalue: String::new(),
            stopper,
            targets: targets
                .iter()
                .map(|&(gw_index, priority)| Target {
                    gw_index,
                    priority,
                    weight: 1,
                })
                .collect(),
        }
    }

    fn instance() -> Instance {
        Instance {
            gws: vec![
                gw(1, Some("10.0.0.1"), "", 0, 0),
                gw(2, Some("10.0.0.2"), "", 0, 0),
                gw(3, Some("10.0.0.3"), "", 0, 0),
            ],
            null_ip: false,
            rules: vec![
                rule(1, "", "", false, &[(1, 5)]),
                rule(2, "1", "", false, &[(2, 2), (3, 1)]),
                rule(3, "12", "alice", true, &[(3, 0)]),
            ],
            prefix_lens: vec![2, 1, 0],
        }
    }

    fn order(inst: &Instance, user: &str, from: &str) -> Vec<usize> {
        let mut r = || 7;
        matching(inst, user, from, Some("sip:x"), 0, false, &mut r, None)
            .unwrap()
            .iter()
            .map(|m| m.gw_index)
            .collect()
    }

    #[test]
    fn longest_prefix_then_priority_then_once_each() {
        let inst = instance();
        assert_eq!(order(&inst, "1999", ""), vec![3, 2, 1]);
        assert_eq!(order(&inst, "555", ""), vec![1]);
        // A stopper ends the search at its prefix length.
        assert_eq!(order(&inst, "1234", "sip:alice@a"), vec![3]);
        assert_eq!(order(&inst, "1234", "sip:bob@a"), vec![3, 2, 1]);
        inst.gws[2]
            .state
            .store(GW_INACTIVE, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(order(&inst, "1999", ""), vec![2, 1]);
    }

    #[test]
    fn values_round_trip_and_make_uris() {
        let mut g = gw(2, Some("127.0.0.2"), "gw2.example.com", 5072, 0);
        g.params = ";x=y".into();
        g.strip = 2;
        g.prefix = "99".into();
        g.tag = "t2".into();
        let v = encode(&g, 4, 2);
        assert_eq!(v, "4|sip:|2|99|t2|33554559|gw2.example.com|5072|;x=y||0|2");
        let d = decode(&v).unwrap();
        assert_eq!(
            uris(&d, "1234", false),
            Some((
                "sip:9934@gw2.example.com;x=y".into(),
                Some("sip:127.0.0.2:5072".into())
            ))
        );
        assert_eq!(
            uris(&d, "1234", true).unwrap().0,
            "sip:1234@gw2.example.com;x=y"
        );
        assert_eq!(uris(&d, "1", false), None, "strip longer than the user");
        let v6 = gw(6, Some("::1"), "", 5090, 1);
        let d = decode(&encode(&v6, 5, 4)).unwrap();
        assert_eq!(
            uris(&d, "1234", false).unwrap(),
            ("sip:1234@[::1]:5090;transport=udp".into(), None)
        );
    }

    #[test]
    fn address_lookup_as_bsearch_lands() {
        let mut inst = Instance {
            gws: vec![
                gw(4, Some("10.0.0.1"), "", 0, 0),
                gw(11, Some("127.0.0.1"), "", 5071, 1),
                gw(13, Some("127.0.0.1"), "", 0, 2),
                gw(12, Some("127.0.0.3"), "", 0, 0),
            ],
            ..Default::default()
        };
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(find_by_addr(&inst, lo, 1, 0).map(|g| g.id), None);
        assert_eq!(find_by_addr(&inst, lo, 0, 0).map(|g| g.id), Some(13));
        assert_eq!(find_by_addr(&inst, lo, 1, 5071).map(|g| g.id), Some(11));
        inst.null_ip = true;
        assert_eq!(find_by_addr(&inst, lo, 0, 0).map(|g| g.id), None);
    }
}
