//! Loading the routing data from the four tables, as Kamailio's
//! `dr_load_routing_info` does: a value of the wrong type or a NULL where
//! one is required fails the whole load (the old data stays); a rule that
//! names an unknown gateway, list or group, or holds a prefix the tree
//! cannot, is skipped with an error in the log.

use crate::rules::{parse_groups, parse_gwlist, route_name, Gateway, Rule};
use crate::tree::{GroupRules, PrefixTree};
use sr_mod_tmrec::TmRec;
use sr_sdk::db::{DbConn, DbResult, DbValue, Rows};
use sr_sdk::lm_err;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The table names.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Gateways.
    pub gateways: String,
    /// Rules.
    pub rules: String,
    /// Gateway lists.
    pub lists: String,
}

/// Everything routing needs.
#[derive(Debug, Default)]
pub struct Data {
    /// The gateways.
    pub gws: Vec<Gateway>,
    /// Rules by prefix.
    pub tree: PrefixTree,
    /// Rules without a prefix.
    pub noprefix: GroupRules,
    /// Addresses for `is_from_gw`/`goes_to_gw`: (ip, port or 0, type,
    /// strip), one per (type, port, ip).
    pub addrs: Vec<(IpAddr, u16, i64, usize)>,
}

fn int(rows: &Rows, r: usize, col: &str, table: &str) -> Result<i64, String> {
    rows.get(r, col)
        .as_i64()
        .ok_or_else(|| format!("{table}: column {col} of row {} is not an integer", r + 1))
}

fn text(rows: &Rows, r: usize, col: &str, table: &str, nullable: bool) -> Result<String, String> {
    match rows.get(r, col) {
        DbValue::Null if nullable => Ok(String::new()),
        DbValue::Null => Err(format!("{table}: column {col} of row {} is NULL", r + 1)),
        DbValue::Str(s) => Ok(s.clone()),
        _ => Err(format!(
            "{table}: column {col} of row {} is not text",
            r + 1
        )),
    }
}

/// Reads the three tables through `conn`; `resolve` gives a gateway
/// host's address (`None`: it does not resolve). `force_dns`: a gateway
/// that does not resolve is dropped (else kept for routing, without an
/// address to match).
pub fn load(
    conn: &mut dyn DbConn,
    t: &Tables,
    force_dns: bool,
    resolve: &dyn Fn(&str) -> Option<IpAddr>,
) -> Result<Data, String> {
    let q = |c: &mut dyn DbConn, table: &str, cols: &[&str]| -> DbResult<Rows> {
        c.query(table, &[], cols, None)
    };
    let rows = q(
        conn,
        &t.gateways,
        &["gwid", "address", "strip", "pri_prefix", "type", "attrs"],
    )
    .map_err(|e| format!("{}: {e}", t.gateways))?;
    let mut d = Data::default();
    let mut by_id: HashMap<u32, usize> = HashMap::new();
    for r in 0..rows.len() {
        let tb = t.gateways.as_str();
        let id = int(&rows, r, "gwid", tb)? as u32;
        let address = text(&rows, r, "address", tb, false)?;
        let strip = int(&rows, r, "strip", tb)?;
        let pri_prefix = text(&rows, r, "pri_prefix", tb, true)?;
        let gw_type = int(&rows, r, "type", tb)?;
        let attrs = text(&rows, r, "attrs", tb, true)?;
        let Some((host, port)) = host_port(&address) else {
            lm_err!("drouting: gateway {id}: bad address '{address}', skipped");
            continue;
        };
        let ip = host.parse::<IpAddr>().ok().or_else(|| resolve(&host));
        if ip.is_none() && force_dns {
            lm_err!("drouting: gateway {id}: '{host}' does not resolve, skipped");
            continue;
        }
        let gw = Gateway {
            id,
            address,
            strip: usize::try_from(strip).unwrap_or(0),
            pri_prefix,
            gw_type,
            attrs,
            addr: ip.map(|ip| (ip, port)),
        };
        if let Some((ip, port)) = gw.addr {
            if !d
                .addrs
                .iter()
                .any(|a| a.0 == ip && a.1 == port && a.2 == gw.gw_type)
            {
                d.addrs.push((ip, port, gw.gw_type, gw.strip));
            }
        }
        by_id.insert(id, d.gws.len());
        d.gws.push(gw);
    }
    if d.gws.is_empty() {
        return Ok(d);
    }
    let rows = q(conn, &t.lists, &["id", "gwlist"]).map_err(|e| format!("{}: {e}", t.lists))?;
    let mut lists: HashMap<u32, String> = HashMap::new();
    for r in 0..rows.len() {
        let id = int(&rows, r, "id", &t.lists)? as u32;
        lists.insert(id, text(&rows, r, "gwlist", &t.lists, false)?);
    }
    let cols = [
        "ruleid", "groupid", "prefix", "timerec", "priority", "routeid", "gwlist",
    ];
    let rows = q(conn, &t.rules, &cols).map_err(|e| format!("{}: {e}", t.rules))?;
    let mut n = 0;
    for r in 0..rows.len() {
        let tb = t.rules.as_str();
        let id = int(&rows, r, "ruleid", tb)? as u32;
        let groups = text(&rows, r, "groupid", tb, false)?;
        let prefix = text(&rows, r, "prefix", tb, true)?;
        let timerec = text(&rows, r, "timerec", tb, false)?;
        let priority = int(&rows, r, "priority", tb)? as i32 as u32;
        let routeid = text(&rows, r, "routeid", tb, false)?;
        let gwlist = text(&rows, r, "gwlist", tb, false)?;
        match rule(
            id, &groups, &timerec, priority, &routeid, &gwlist, &lists, &by_id,
        ) {
            Ok((groups, rule)) => {
                let rule = Arc::new(rule);
                let mut ok = true;
                for g in groups {
                    if prefix.is_empty() {
                        d.noprefix.add(g, rule.clone());
                    } else if let Err(e) = d.tree.add(&prefix, g, rule.clone()) {
                        lm_err!("drouting: rule {id}: {e}, skipped");
                        ok = false;
                        break;
                    }
                }
                n += usize::from(ok);
            }
            Err(e) => lm_err!("drouting: rule {id}: {e}, skipped"),
        }
    }
    if n == 0 {
        // No rule: nothing at all (Kamailio frees the gateways too).
        return Ok(Data::default());
    }
    Ok(d)
}

#[allow(clippy::too_many_arguments)]
fn rule(
    id: u32,
    groups: &str,
    timerec: &str,
    priority: u32,
    routeid: &str,
    gwlist: &str,
    lists: &HashMap<u32, String>,
    by_id: &HashMap<u32, usize>,
) -> Result<(Vec<u32>, Rule), String> {
    let groups = parse_groups(groups)?;
    let time = if timerec.is_empty() {
        None
    } else {
        Some(TmRec::parse_drouting(timerec).map_err(|e| format!("timerec '{timerec}': {e}"))?)
    };
    let list = match gwlist.strip_prefix('#') {
        Some(n) => {
            let n: u32 = n
                .parse()
                .map_err(|_| format!("bad gateway list reference '{gwlist}'"))?;
            lists
                .get(&n)
                .ok_or_else(|| format!("unknown gateway list {n}"))?
                .as_str()
        }
        None => gwlist,
    };
    let mut gws = Vec::new();
    for (gw, grp) in parse_gwlist(list)? {
        let idx = u32::try_from(gw)
            .ok()
            .and_then(|g| by_id.get(&g))
            .ok_or_else(|| format!("invalid GW id {gw}"))?;
        gws.push((*idx, grp));
    }
    Ok((
        groups,
        Rule {
            id,
            priority,
            time,
            route: route_name(routeid),
            gws,
        },
    ))
}

/// The host and explicit port (0 when none) of a gateway address
/// (`host[:port][;params]`, `sip:` added when missing).
pub fn host_port(address: &str) -> Option<(String, u16)> {
    let lower = address.to_ascii_lowercase();
    let uri = if address.len() < 5 || !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
        format!("sip:{address}")
    } else {
        address.to_string()
    };
    let u = sr_sdk::sip_msg::Uri::parse(&uri).ok()?;
    let host = u.host_str.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), u.port.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_addresses() {
        assert_eq!(host_port("10.0.0.1"), Some(("10.0.0.1".into(), 0)));
        assert_eq!(
            host_port("10.0.0.1:5070;transport=tcp"),
            Some(("10.0.0.1".into(), 5070))
        );
        assert_eq!(
            host_port("sip:gw.example.com:5080"),
            Some(("gw.example.com".into(), 5080))
        );
        assert_eq!(
            host_port("[2001:db8::1]:5060"),
            Some(("2001:db8::1".into(), 5060))
        );
        assert_eq!(host_port("bad host"), None);
    }
}
