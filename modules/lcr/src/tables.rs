//! The gateways and rules of the LCR instances, read from `lcr_gw`,
//! `lcr_rule` and `lcr_rule_target` as Kamailio reads them: a row it
//! would refuse makes the whole load fail (the tables in use stay).

use regex::bytes::Regex;
use sr_sdk::db::{Cond, DbConn, DbValue};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

/// Longest prefix (rules and gateways).
pub const MAX_PREFIX_LEN: usize = 16;
/// Longest From or Request-URI pattern.
pub const MAX_URI_LEN: usize = 256;
/// Longest gateway host name.
pub const MAX_HOST_LEN: usize = 64;
/// Longest gateway name.
pub const MAX_NAME_LEN: usize = 128;
/// Longest gateway tag.
pub const MAX_TAG_LEN: usize = 64;
/// Largest strip count.
pub const MAX_USER_LEN: u32 = 64;
/// Longest gateway URI parameters.
pub const MAX_PARAMS_LEN: usize = 64;

/// A gateway in use.
pub const GW_ACTIVE: u32 = 0;
/// Failed, pinged until it answers (and above: failures still allowed
/// before it is inactive).
pub const GW_PINGING: u32 = 1;
/// Failed enough times: skipped by `load_gws` until a ping answers.
pub const GW_INACTIVE: u32 = 2;

/// A gateway.
#[derive(Debug)]
pub struct Gw {
    /// `id`.
    pub id: u32,
    /// `gw_name`.
    pub name: String,
    /// `sip:` or `sips:`.
    pub scheme: &'static str,
    /// `ip_addr`, if any.
    pub ip: Option<IpAddr>,
    /// `hostname` (empty if none).
    pub hostname: String,
    /// `port` (0 if none).
    pub port: u32,
    /// Kamailio's protocol number (0 none, 1 udp, 2 tcp, 3 tls, 4 sctp).
    pub transport_code: u32,
    /// `;transport=...` or empty.
    pub transport: &'static str,
    /// URI parameters (start with `;`) or empty.
    pub params: String,
    /// Characters stripped from the user part.
    pub strip: u32,
    /// Put in front of the user part.
    pub prefix: String,
    /// `tag`.
    pub tag: String,
    /// `flags`.
    pub flags: u32,
    /// Unix time until which it is not used.
    pub defunct_until: AtomicU32,
    /// [`GW_ACTIVE`], [`GW_INACTIVE`], or pinging.
    pub state: AtomicU32,
    /// The URI pinged: scheme, address or host, port, transport.
    pub uri: String,
}

impl Gw {
    /// Kamailio's sort key for the gateway table: address family (none
    /// first, then IPv4, then IPv6), then the address bytes.
    pub fn ip_key(ip: Option<IpAddr>) -> (u8, Vec<u8>) {
        match ip {
            None => (0, Vec::new()),
            Some(IpAddr::V4(a)) => (2, a.octets().to_vec()),
            Some(IpAddr::V6(a)) => (10, a.octets().to_vec()),
        }
    }

    /// Whether a defunct time or failures keep it out of `load_gws`.
    pub fn unusable(&self, now: u32) -> bool {
        self.defunct_until.load(Ordering::Relaxed) > now
            || self.state.load(Ordering::Relaxed) == GW_INACTIVE
    }
}

/// A rule's gateway.
#[derive(Debug, Clone)]
pub struct Target {
    /// Index of the gateway in the instance's table (1-based).
    pub gw_index: usize,
    /// 0 (highest) to 255.
    pub priority: u32,
    /// 1 to 254.
    pub weight: u32,
}

/// An enabled rule.
#[derive(Debug)]
pub struct Rule {
    /// `id`.
    pub id: u32,
    /// `prefix` (empty matches every user).
    pub prefix: String,
    /// `from_uri` pattern text (empty: any caller).
    pub from_uri: String,
    /// The compiled `from_uri`.
    pub from_re: Option<Regex>,
    /// `request_uri` pattern text (empty: any).
    pub request_uri: String,
    /// The compiled `request_uri`.
    pub request_re: Option<Regex>,
    /// `mt_tvalue`: a value the caller's user must have in the mtree
    /// (with `mt_pv_values` only; empty: no such condition).
    pub mt_tvalue: String,
    /// Rules with shorter prefixes are not tried after this one matched.
    pub stopper: bool,
    /// Its gateways, last read first (as Kamailio keeps them).
    pub targets: Vec<Target>,
}

/// One LCR instance: its gateways (those of instance 0 too), sorted by
/// address as Kamailio sorts them, and its rules.
#[derive(Debug, Default)]
pub struct Instance {
    /// The gateways; gateway index `i` is `gws[i - 1]`.
    pub gws: Vec<Gw>,
    /// Some gateway has no IP address (`from_gw`/`to_gw` then never
    /// match in this instance, as in Kamailio).
    pub null_ip: bool,
    /// The rules, in the order they were read.
    pub rules: Vec<Rule>,
    /// The rule prefix lengths, longest first.
    pub prefix_lens: Vec<usize>,
}

/// Column and table names (module parameters).
#[derive(Debug, Clone)]
pub struct Names {
    /// `lcr_gw_table`.
    pub gw_table: String,
    /// `lcr_rule_table`.
    pub rule_table: String,
    /// `lcr_rule_target_table`.
    pub target_table: String,
    /// Columns by Kamailio's default name (`id`, `lcr_id`, `prefix`, ...)
    /// → the name in use.
    pub cols: Vec<(&'static str, String)>,
}

impl Names {
    /// The column in use for Kamailio's default name `c`.
    pub fn col<'a>(&'a self, c: &'a str) -> &'a str {
        self.cols
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(c, |(_, v)| v.as_str())
    }
}

fn text(v: Option<&DbValue>) -> Result<Option<String>, ()> {
    match v {
        None | Some(DbValue::Null) => Ok(None),
        Some(DbValue::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

fn int(v: Option<&DbValue>) -> Result<Option<i64>, ()> {
    match v {
        None | Some(DbValue::Null) => Ok(None),
        Some(DbValue::Int(i)) => Ok(Some(i64::from(*i))),
        Some(DbValue::BigInt(i)) => Ok(Some(*i)),
        Some(_) => Err(()),
    }
}

/// An address as `ip_addr` holds it: IPv4, or IPv6 with or without
/// brackets. (Kamailio 5.6 also refuses the integer notations its
/// documentation mentions, and takes anything else with an undefined
/// address; here anything else is refused.)
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let inner = s.strip_prefix('[').and_then(|x| x.strip_suffix(']'));
    inner.unwrap_or(s).parse().ok()
}

/// The URI a gateway is pinged at.
fn gw_uri(scheme: &str, ip: Option<IpAddr>, host: &str, port: u32, transport: &str) -> String {
    let mut u = scheme.to_string();
    match ip {
        Some(IpAddr::V6(a)) => u.push_str(&format!("[{a}]")),
        Some(IpAddr::V4(a)) => u.push_str(&a.to_string()),
        None => u.push_str(host),
    }
    if port > 0 {
        u.push_str(&format!(":{port}"));
    }
    u.push_str(transport);
    u
}

/// One `lcr_gw` row (columns in [`GW_COLS`] order), `None` for a
/// disabled gateway (`defunct` at or above 4294967295).
fn gw_row(row: &[DbValue], i: usize) -> Result<Option<(Gw, bool)>, String> {
    let bad = |what: &str| format!("lcr_gw {what} at row <{i}>");
    let id = int(row.get(12))
        .ok()
        .flatten()
        .ok_or_else(|| bad("id is null or not int"))?;
    let defunct = int(row.get(11)).map_err(|_| bad("defunct is not int"))?;
    if defunct.is_some_and(|d| d > 4_294_967_294) {
        return Ok(None);
    }
    let name = text(row.first())
        .map_err(|_| bad("gw_name is not null or string"))?
        .unwrap_or_default();
    if name.len() > MAX_NAME_LEN {
        return Err(bad("gw_name is too long"));
    }
    let ip_text = text(row.get(1)).map_err(|_| bad("ip_addr is not null or string"))?;
    let ip = match ip_text.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            parse_ip(s).ok_or_else(|| format!("lcr_gw ip_addr <{s}> at row <{i}> is invalid"))?,
        ),
    };
    let port = int(row.get(2))
        .map_err(|_| bad("port is not int"))?
        .unwrap_or(0);
    if !(0..=65536).contains(&port) {
        return Err(bad(&format!("port <{port}> is too large")));
    }
    let scheme_code = int(row.get(3)).map_err(|_| bad("uri scheme is not int"))?;
    let scheme = match scheme_code {
        None | Some(1) => "sip:",
        Some(2) => "sips:",
        Some(n) => return Err(bad(&format!("has unknown or unsupported URI scheme <{n}>"))),
    };
    let transport_code = int(row.get(4)).map_err(|_| bad("transport is not int"))?;
    let (transport_code, transport) = match transport_code {
        None => (0, ""),
        Some(1) => (1, ";transport=udp"),
        Some(2) => (2, ";transport=tcp"),
        Some(3) => (3, ";transport=tls"),
        Some(4) => (4, ";transport=sctp"),
        Some(n) => return Err(bad(&format!("has unknown or unsupported transport <{n}>"))),
    };
    if scheme == "sips:" && transport_code == 1 {
        return Err(bad("has wrong transport <1> for SIPS URI scheme"));
    }
    let params = text(row.get(5))
        .map_err(|_| bad("params is not string"))?
        .unwrap_or_default();
    if !params.is_empty() && !params.starts_with(';') {
        return Err(bad("params does not start with ';'"));
    }
    if params.len() > MAX_PARAMS_LEN {
        return Err(bad("params is too long"));
    }
    let hostname = text(row.get(6)).map_err(|_| bad("hostname is not string"))?;
    if hostname.is_none() && ip.is_none() {
        return Err(bad("gw ip_addr and hostname are both null"));
    }
    let hostname = hostname.unwrap_or_default();
    if hostname.len() > MAX_HOST_LEN {
        return Err(bad("hostname is too long"));
    }
    let strip = int(row.get(7))
        .map_err(|_| bad("strip count is not int"))?
        .unwrap_or(0);
    if !(0..=i64::from(MAX_USER_LEN)).contains(&strip) {
        return Err(bad(&format!("strip count <{strip}> is too large")));
    }
    let prefix = text(row.get(8))
        .map_err(|_| bad("prefix is not string"))?
        .unwrap_or_default();
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(bad("prefix is too long"));
    }
    let tag = text(row.get(9))
        .map_err(|_| bad("tag is not string"))?
        .unwrap_or_default();
    if tag.len() > MAX_TAG_LEN {
        return Err(bad("tag is too long"));
    }
    let flags = int(row.get(10))
        .map_err(|_| bad("flags is not int"))?
        .unwrap_or(0);
    let port = port as u32;
    Ok(Some((
        Gw {
            id: id as u32,
            uri: gw_uri(scheme, ip, &hostname, port, transport),
            name,
            scheme,
            ip,
            hostname,
            port,
            transport_code,
            transport,
            params,
            strip: strip as u32,
            prefix,
            tag,
            flags: flags as u32,
            defunct_until: AtomicU32::new(defunct.unwrap_or(0) as u32),
            state: AtomicU32::new(GW_ACTIVE),
        },
        ip.is_none(),
    )))
}

/// `lcr_gw` columns, in the order [`gw_row`] reads them.
const GW_COLS: [&str; 13] = [
    "gw_name",
    "ip_addr",
    "port",
    "uri_scheme",
    "transport",
    "params",
    "hostname",
    "strip",
    "prefix",
    "tag",
    "flags",
    "defunct",
    "id",
];

/// A rule's pattern, read as Kamailio's PCRE (no UTF mode) reads it.
fn compile(pattern: &str, what: &str, rule: u32) -> Result<Regex, String> {
    sr_sdk::pcre::compile(pattern.as_bytes(), sr_sdk::pcre::Options::default())
        .map_err(|e| format!("failed to compile lcr rule <{rule}> {what}: {e}"))
}

/// One enabled `lcr_rule` row (id, prefix, from_uri, stopper, enabled,
/// request_uri, mt_tvalue); `None` when disabled. `mt`: `mt_tvalue` is
/// read (`mt_pv_values` set).
fn rule_row(row: &[DbValue], i: usize, mt: bool) -> Result<Option<Rule>, String> {
    let id = int(row.first())
        .ok()
        .flatten()
        .ok_or_else(|| format!("lcr rule id at row <{i}> is null or not int"))? as u32;
    let bad = |what: &str| format!("lcr rule <{id}> {what}");
    let enabled = int(row.get(4))
        .ok()
        .flatten()
        .ok_or_else(|| bad("enabled is NULL or not int"))?;
    if enabled != 0 && enabled != 1 {
        return Err(bad("enabled is not 0 or 1"));
    }
    if enabled == 0 {
        return Ok(None);
    }
    let prefix = text(row.get(1))
        .map_err(|_| bad("prefix is not string"))?
        .unwrap_or_default();
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(bad("prefix is too long"));
    }
    let stopper = int(row.get(3))
        .ok()
        .flatten()
        .ok_or_else(|| bad("stopper is NULL or not int"))?;
    if stopper != 0 && stopper != 1 {
        return Err(bad("stopper is not 0 or 1"));
    }
    let from_uri = text(row.get(2))
        .map_err(|_| bad("from_uri is not string"))?
        .unwrap_or_default();
    let request_uri = text(row.get(5))
        .map_err(|_| bad("request_uri is not string"))?
        .unwrap_or_default();
    if from_uri.len() > MAX_URI_LEN {
        return Err(bad("from_uri is too long"));
    }
    let mt_tvalue = if mt {
        text(row.get(6))
            .map_err(|_| bad("mt_tvalue is not string"))?
            .unwrap_or_default()
    } else {
        String::new()
    };
    if mt_tvalue.len() > 128 {
        return Err(bad("mt_tvalue is too long"));
    }
    if request_uri.len() > MAX_URI_LEN {
        return Err(bad("request_uri is too long"));
    }
    let from_re = (!from_uri.is_empty())
        .then(|| compile(&from_uri, "from_uri", id))
        .transpose()?;
    let request_re = (!request_uri.is_empty())
        .then(|| compile(&request_uri, "request_uri", id))
        .transpose()?;
    Ok(Some(Rule {
        id,
        prefix,
        from_uri,
        from_re,
        request_uri,
        request_re,
        mt_tvalue,
        stopper: stopper == 1,
        targets: Vec::new(),
    }))
}

/// Reads instance `lcr_id`: its rules, its gateways and those of
/// instance 0 (at most `gw_count - 1` in all), and the rules' targets.
pub fn load_instance(
    c: &mut dyn DbConn,
    n: &Names,
    lcr_id: i64,
    gw_count: usize,
    mt: bool,
) -> Result<Instance, String> {
    let lcr_col = n.col("lcr_id");
    let eq = |id: i64| vec![Cond::eq(lcr_col, DbValue::Int(id as i32))];
    let rule_cols: Vec<&str> = [
        "id",
        "prefix",
        "from_uri",
        "stopper",
        "enabled",
        "request_uri",
        "mt_tvalue",
    ]
    .iter()
    .map(|c| n.col(c))
    .collect();
    let rows = c
        .query(&n.rule_table, &eq(lcr_id), &rule_cols, None)
        .map_err(|e| format!("db query on {} table failed: {e}", n.rule_table))?;
    let mut inst = Instance::default();
    for (i, row) in rows.rows.iter().enumerate() {
        if let Some(r) = rule_row(row, i, mt)? {
            if !inst.prefix_lens.contains(&r.prefix.len()) {
                inst.prefix_lens.push(r.prefix.len());
            }
            inst.rules.push(r);
        }
    }
    inst.prefix_lens.sort_unstable_by(|a, b| b.cmp(a));
    let gw_cols: Vec<&str> = GW_COLS.iter().map(|c| n.col(c)).collect();
    for id in [lcr_id, 0] {
        let rows = c
            .query(&n.gw_table, &eq(id), &gw_cols, None)
            .map_err(|e| format!("failed to query gw data: {e}"))?;
        if inst.gws.len() + rows.rows.len() + 1 > gw_count {
            return Err("too many gateways".into());
        }
        for (i, row) in rows.rows.iter().enumerate() {
            if let Some((gw, null_ip)) = gw_row(row, i)? {
                inst.null_ip |= null_ip;
                inst.gws.push(gw);
            }
        }
    }
    // Stable, as glibc's qsort (a merge sort) is for these sizes.
    inst.gws.sort_by_key(|g| Gw::ip_key(g.ip));
    let target_cols: Vec<&str> = ["rule_id", "gw_id", "priority", "weight"]
        .iter()
        .map(|c| n.col(c))
        .collect();
    let rows = c
        .query(&n.target_table, &eq(lcr_id), &target_cols, None)
        .map_err(|e| format!("db query on {} table failed: {e}", n.target_table))?;
    for (i, row) in rows.rows.iter().enumerate() {
        let get = |k: usize, what: &str| {
            int(row.get(k))
                .ok()
                .flatten()
                .ok_or_else(|| format!("lcr_rule_target {what} at row <{i}> is null or not int"))
        };
        let (rule_id, gw_id) = (get(0, "rule_id")?, get(1, "gw_id")?);
        let priority = get(2, "priority")?;
        if !(0..=255).contains(&priority) {
            return Err(format!(
                "lcr_rule_target priority value at row <{i}> is not 0-255"
            ));
        }
        let weight = get(3, "weight")?;
        if !(1..=254).contains(&weight) {
            return Err(format!(
                "lcr_rule_target weight value at row <{i}> is not 1-254"
            ));
        }
        let Some(gw_index) = inst.gws.iter().position(|g| i64::from(g.id) == gw_id) else {
            sr_sdk::lm_info!("lcr: skipping disabled <gw/rule> = <{gw_id}/{rule_id}>");
            continue;
        };
        let Some(rule) = inst.rules.iter_mut().find(|r| i64::from(r.id) == rule_id) else {
            sr_sdk::lm_info!("lcr: skipping disabled <gw/rule> = <{gw_id}/{rule_id}>");
            continue;
        };
        rule.targets.insert(
            0,
            Target {
                gw_index: gw_index + 1,
                priority: priority as u32,
                weight: weight as u32,
            },
        );
    }
    Ok(inst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_kamailio_reads_them() {
        assert_eq!(parse_ip("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip("16777343"), None);
        assert_eq!(parse_ip("gw.example.com"), None);
    }

    #[test]
    fn ping_uris() {
        let ip = Some("::1".parse().unwrap());
        assert_eq!(
            gw_uri("sip:", ip, "", 5090, ";transport=udp"),
            "sip:[::1]:5090;transport=udp"
        );
        assert_eq!(
            gw_uri("sips:", None, "gw.example.com", 0, ""),
            "sips:gw.example.com"
        );
    }
}
