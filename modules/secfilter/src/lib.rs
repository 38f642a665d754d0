//! # secfilter: allow and block lists for requests
//!
//! Kamailio's `secfilter` module: lists of user agents, countries,
//! domains, IP addresses, users and destinations read from the
//! `secfilter` table, checked against the message (`secf_check_ua`,
//! `secf_check_ip`, `secf_check_from_hdr`, ...), a search for SQL
//! injection characters, counters, and RPC commands to show, reload and
//! extend the lists. Kamailio 5.6's behaviour is followed, its quirks
//! included (see docs/modules/secfilter.md).
#![forbid(unsafe_code)]

pub mod lists;

use lists::{any, dst_blocked, Lists};
use sr_sdk::db::{DbPool, DbValue};
use sr_sdk::prelude::*;
use sr_sdk::RpcError;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The counters, in Kamailio's order.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
enum C {
    BlUa,
    BlCountry,
    BlFDomain,
    BlTDomain,
    BlCDomain,
    BlIp,
    BlFName,
    BlTName,
    BlCName,
    BlFUser,
    BlTUser,
    BlCUser,
    WlUa,
    WlCountry,
    WlFDomain,
    WlTDomain,
    WlCDomain,
    WlIp,
    WlFName,
    WlTName,
    WlCName,
    WlFUser,
    WlTUser,
    WlCUser,
    BlDst,
    BlSql,
}

const COUNTERS: usize = 26;
/// The twelve lines of each side of `secfilter.stats`.
const STAT_LINES: [&str; 12] = [
    "[+] By user-agent    : ",
    "[+] By country       : ",
    "[+] By from domain   : ",
    "[+] By to domain     : ",
    "[+] By contact domain: ",
    "[+] By IP address    : ",
    "[+] By from name     : ",
    "[+] By to name       : ",
    "[+] By contact name  : ",
    "[+] By from user     : ",
    "[+] By to user       : ",
    "[+] By contact user  : ",
];

/// The module's state.
struct Secf {
    db_url: Arc<RwLock<String>>,
    table: Arc<RwLock<String>>,
    action_col: Arc<RwLock<String>>,
    type_col: Arc<RwLock<String>>,
    data_col: Arc<RwLock<String>>,
    dst_exact: Arc<AtomicI64>,
    pool: OnceLock<DbPool>,
    lists: RwLock<Arc<Lists>>,
    counters: [AtomicU64; COUNTERS],
    /// One reload or addition at a time (two could undo each other).
    writing: std::sync::Mutex<()>,
}

/// A parameter kept as written (Kamailio 5.6 gives these functions the
/// configuration text itself, pseudo-variables not evaluated).
struct Literal(String);

impl Secf {
    fn count(&self, c: C) {
        self.counters[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn lists(&self) -> Arc<Lists> {
        self.lists
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn edit(&self, f: impl FnOnce(&mut Lists) -> Result<(), String>) -> Result<(), String> {
        let _one = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut g = self.lists.write().map_err(|_| "poisoned")?;
        let mut l = (**g).clone();
        f(&mut l)?;
        *g = Arc::new(l);
        Ok(())
    }

    /// Reads the table into new lists.
    fn load(&self) -> Result<Lists, String> {
        let pool = self.pool.get().ok_or("no database connection")?;
        let table = params::get_str(&self.table);
        let cols = [
            params::get_str(&self.action_col),
            params::get_str(&self.type_col),
            params::get_str(&self.data_col),
        ];
        let names: Vec<&str> = cols.iter().map(String::as_str).collect();
        let rows = pool
            .with(|c| c.query(&table, &[], &names, None))
            .map_err(|e| format!("cannot read {table}: {e}"))?;
        let mut l = Lists::default();
        for row in &rows.rows {
            let int = |i: usize, what: &str| {
                row.get(i)
                    .and_then(DbValue::as_i64)
                    .ok_or_else(|| format!("a row without a readable {what}"))
            };
            let (action, ty) = (int(0, "action")?, int(1, "type")?);
            // An empty value would match everything: such a row is left
            // out (Kamailio would keep it).
            let Some(data) = row
                .get(2)
                .and_then(DbValue::as_string)
                .filter(|d| !d.is_empty())
            else {
                lm_err!(
                    "secfilter: a row with an empty value (action {action}, type {ty}) - skipped"
                );
                continue;
            };
            l.add_row(action, ty, &data)?;
        }
        Ok(l)
    }
}

/// Kamailio's text of an IP address: IPv6 as eight groups of upper-case
/// hexadecimal without leading zeros, nothing compressed.
fn ip_text(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:X}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// A From/To/Contact address as secfilter reads it: the display name
/// (one pair of quotes taken off), the URI user and host; `None` when
/// the URI has no user or host.
fn parts(na: &sr_sdk::sip_msg::headers::NameAddr<'_>) -> Option<(String, String, String)> {
    let user = na.uri.user.filter(|u| !u.is_empty())?;
    let host = na.uri.host_str;
    if host.is_empty() {
        return None;
    }
    let mut name = na.display.unwrap_or("").trim();
    if name.len() > 1 && name.starts_with('"') && name.ends_with('"') {
        name = &name[1..name.len() - 1];
    }
    Some((name.to_string(), user.to_string(), host.to_string()))
}

/// Which header a name/user/domain check reads.
#[derive(Clone, Copy)]
enum Hdr {
    From,
    To,
    Contact,
}

fn header_parts(msg: &sr_sdk::sip_msg::Message, h: Hdr) -> Option<(String, String, String)> {
    match h {
        Hdr::From => parts(&msg.from().ok()?),
        Hdr::To => parts(&msg.to().ok()?),
        Hdr::Contact => match msg.contacts().next()?.ok()? {
            sr_sdk::sip_msg::headers::ContactValue::Addr(na) => {
                // A Contact has no name for secfilter.
                parts(&na).map(|(_, u, d)| (String::new(), u, d))
            }
            _ => None,
        },
    }
}

/// `secf_check_from_hdr`, `_to_hdr`, `_contact_hdr`.
fn check_hdr(s: &Secf, ctx: &mut Ctx<'_>, h: Hdr) -> i32 {
    let Some((name, user, domain)) = header_parts(ctx.msg.msg(), h) else {
        return 1;
    };
    let l = s.lists();
    let (wn, wu, wd, bn, bu, bd) = match h {
        Hdr::From => (
            C::WlFName,
            C::WlFUser,
            C::WlFDomain,
            C::BlFName,
            C::BlFUser,
            C::BlFDomain,
        ),
        Hdr::To => (
            C::WlTName,
            C::WlTUser,
            C::WlTDomain,
            C::BlTName,
            C::BlTUser,
            C::BlTDomain,
        ),
        Hdr::Contact => (
            C::WlCName,
            C::WlCUser,
            C::WlCDomain,
            C::BlCName,
            C::BlCUser,
            C::BlCDomain,
        ),
    };
    for (list, sign, cn, cu) in [(&l.white.user, 1, wn, wu), (&l.black.user, -1, bn, bu)] {
        for e in list {
            if !name.is_empty() && lists::matches(e, &name) {
                s.count(cn);
                return 4 * sign;
            }
            if lists::matches(e, &user) {
                s.count(cu);
                return 2 * sign;
            }
        }
    }
    if any(&l.white.domain, &domain) {
        s.count(wd);
        return 3;
    }
    if any(&l.black.domain, &domain) {
        s.count(bd);
        return -3;
    }
    1
}

/// A white/black check of one value: 2, -2 or 1.
fn check_value(s: &Secf, white: &[String], black: &[String], v: &str, cw: C, cb: C) -> i32 {
    if any(white, v) {
        s.count(cw);
        2
    } else if any(black, v) {
        s.count(cb);
        -2
    } else {
        1
    }
}

/// `secf_check_sqli_all`: 0 (the script ends: the message is dropped) at
/// the first value with an SQL injection character, else 1.
fn sqli_all(s: &Secf, ctx: &mut Ctx<'_>) -> i32 {
    let msg = ctx.msg.msg();
    let mut values: Vec<(&str, String)> = Vec::new();
    if let Some(ua) = msg.user_agent() {
        values.push(("User-agent", ua.to_string()));
    }
    for (h, label) in [
        (Hdr::From, "From"),
        (Hdr::To, "To"),
        (Hdr::Contact, "Contact"),
    ] {
        if let Some((n, u, d)) = header_parts(msg, h) {
            if !matches!(h, Hdr::Contact) {
                values.push((
                    if label == "From" {
                        "From name"
                    } else {
                        "To name"
                    },
                    n,
                ));
            }
            let (lu, ld) = match h {
                Hdr::From => ("From user", "From domain"),
                Hdr::To => ("To user", "To domain"),
                Hdr::Contact => ("Contact user", "Contact domain"),
            };
            values.push((lu, u));
            values.push((ld, d));
        }
    }
    for (part, v) in values {
        if !v.is_empty() && lists::sqli(&v) {
            s.count(C::BlSql);
            lm_info!("secfilter: Possible SQL injection found in {part} ({v})");
            return 0;
        }
    }
    1
}

/// `secfilter.print`'s lines for the sections `filter` selects (a
/// prefix of a section's keyword; all without one).
fn print_lines(l: &Lists, filter: Option<&str>) -> Vec<String> {
    let f = filter.unwrap_or("");
    let mut out = Vec::new();
    let entries = |out: &mut Vec<String>, list: &[String]| {
        for (i, v) in list.iter().enumerate() {
            out.push(format!("    {:04} -> {v}", i + 1));
        }
    };
    type Pick = fn(&lists::Side) -> &Vec<String>;
    let sections: [(&str, &str, Pick); 6] = [
        ("dst", "Destinations", |s| &s.dst),
        ("ua", "User-agent", |s| &s.ua),
        ("country", "Country", |s| &s.country),
        ("domain", "Domain", |s| &s.domain),
        ("ip", "IP Address", |s| &s.ip),
        ("user", "User", |s| &s.user),
    ];
    for (key, title, pick) in sections {
        if !key.starts_with(f) {
            continue;
        }
        out.push(String::new());
        out.push(title.to_string());
        out.push("=".repeat(title.len()));
        out.push("[+] Blacklisted".to_string());
        out.push("    -----------".to_string());
        entries(&mut out, pick(&l.black));
        if key != "dst" {
            out.push(String::new());
            out.push("[+] Whitelisted".to_string());
            out.push("    -----------".to_string());
            entries(&mut out, pick(&l.white));
        }
    }
    out.push(String::new());
    out
}

fn stats_lines(s: &Secf) -> Vec<String> {
    let v = |i: usize| s.counters[i].load(Ordering::Relaxed);
    let mut out = vec![
        String::new(),
        "Blocked messages (blacklist)".to_string(),
        "=".repeat(28),
    ];
    out.extend(
        STAT_LINES
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{l}{}", v(i))),
    );
    out.extend([
        String::new(),
        "Allowed messages (whitelist)".to_string(),
        "=".repeat(28),
    ]);
    out.extend(
        STAT_LINES
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{l}{}", v(12 + i))),
    );
    out.extend([
        String::new(),
        "Other blocked messages".to_string(),
        "=".repeat(22),
        format!("[+] Destinations   : {}", v(C::BlDst as usize)),
        format!("[+] SQL injection  : {}", v(C::BlSql as usize)),
        String::new(),
    ]);
    out
}

fn lines(v: Vec<String>) -> Json {
    Json::Array(v.into_iter().map(Json::String).collect())
}

fn text_param(p: &[Json], i: usize) -> Option<String> {
    match p.get(i)? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `secfilter.add_bl` / `add_wl`.
fn rpc_add(s: &Secf, p: &[Json], white: bool) -> Result<Json, RpcError> {
    let (word, example) = if white {
        ("whitelist", "secfilter.add_wl user trusted_user")
    } else {
        ("blacklist", "secfilter.add_bl user sipvicious")
    };
    let usage = || {
        RpcError::new(
            0,
            format!(
                "Invalid Parameters. Usage: secfilter.add_{} type value\n     Example: {example}",
                if white { "wl" } else { "bl" }
            ),
        )
    };
    // Strings only, as Kamailio scans them (kamcmd sends an empty
    // argument as a number).
    let text = |i: usize| match p.get(i) {
        Some(Json::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let (Some(ty), Some(value)) = (text(0), text(1)) else {
        return Err(usage());
    };
    let kinds = ["ua", "country", "domain", "ip", "user"];
    let Some(k) = kinds.iter().position(|k| k.starts_with(ty.as_str())) else {
        lm_err!("secfilter: Invalid type");
        return Err(RpcError::new(
            500,
            if white {
                "Error insert values in the whitelist"
            } else {
                "Error inserting values in the blacklist"
            },
        ));
    };
    s.edit(|l| {
        let side = if white { &mut l.white } else { &mut l.black };
        if let Some(list) = lists::by_type(side, k as i64) {
            list.push(value.clone());
        }
        Ok(())
    })
    .map_err(|e| RpcError::new(500, e))?;
    Ok(json!(format!(
        "Values ({ty}, {value}) inserted into {word}"
    )))
}

/// The module definition.
pub fn module() -> ModuleDef {
    let s = Arc::new(Secf {
        db_url: params::str_cell("mysql://kamailioro:kamailioro@localhost/kamailio"),
        table: params::str_cell("secfilter"),
        action_col: params::str_cell("action"),
        type_col: params::str_cell("type"),
        data_col: params::str_cell("data"),
        dst_exact: params::int_cell(1),
        pool: OnceLock::new(),
        lists: RwLock::new(Arc::new(Lists::default())),
        counters: std::array::from_fn(|_| AtomicU64::new(0)),
        writing: std::sync::Mutex::new(()),
    });
    let mut def = ModuleDef::new("secfilter");
    for (name, cell) in [
        ("db_url", &s.db_url),
        ("table_name", &s.table),
        ("action_col", &s.action_col),
        ("type_col", &s.type_col),
        ("data_col", &s.data_col),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    def = def.param("dst_exact_match", ParamKind::Int, params::int(&s.dst_exact));
    let init = s.clone();
    def = def.on_init(move |core| {
        let pool = DbPool::open(core, &params::get_str(&init.db_url))
            .map_err(|e| format!("secfilter: {e}"))?;
        let table = params::get_str(&init.table);
        pool.with(|c| sr_sdk::db::check_version(c, &table, 1))
            .map_err(|e| format!("secfilter: {e}"))?;
        let _ = init.pool.set(pool);
        let l = init
            .load()
            .map_err(|e| format!("secfilter: error loading data from database: {e}"))?;
        *init.lists.write().map_err(|_| "poisoned")? = Arc::new(l);
        Ok(())
    });
    let literal: fixup::FixupFn =
        Arc::new(|_env, _i, arg| Ok(Fixed::Custom(Arc::new(Literal(arg.text().into_owned())))));
    let lit = |p: &[Fixed]| {
        p[0].custom::<Literal>()
            .map_or(String::new(), |l| l.0.clone())
    };
    let c = s.clone();
    def = def.cmd("secf_check_ip", 0, RouteType::ANY, None, move |ctx, _| {
        let ip = ip_text(ctx.msg.rcv.src.ip());
        let l = c.lists();
        check_value(&c, &l.white.ip, &l.black.ip, &ip, C::WlIp, C::BlIp)
    });
    let c = s.clone();
    def = def.cmd("secf_check_ua", 0, RouteType::ANY, None, move |ctx, _| {
        let Some(ua) = ctx.msg.msg().user_agent().map(str::to_string) else {
            return 1;
        };
        let l = c.lists();
        check_value(&c, &l.white.ua, &l.black.ua, &ua, C::WlUa, C::BlUa)
    });
    let c = s.clone();
    def = def.cmd(
        "secf_check_country",
        1,
        RouteType::ANY,
        Some(literal.clone()),
        move |_ctx, p| {
            let v = lit(p);
            let l = c.lists();
            check_value(
                &c,
                &l.white.country,
                &l.black.country,
                &v,
                C::WlCountry,
                C::BlCountry,
            )
        },
    );
    for (name, h) in [
        ("secf_check_from_hdr", Hdr::From),
        ("secf_check_to_hdr", Hdr::To),
        ("secf_check_contact_hdr", Hdr::Contact),
    ] {
        let c = s.clone();
        def = def.cmd(name, 0, RouteType::ANY, None, move |ctx, _| {
            check_hdr(&c, ctx, h)
        });
    }
    let c = s.clone();
    def = def.cmd(
        "secf_check_dst",
        1,
        RouteType::ANY,
        Some(literal.clone()),
        move |_ctx, p| {
            let v = lit(p);
            let exact = params::get_int(&c.dst_exact) != 0;
            if dst_blocked(&c.lists().black.dst, &v, exact) {
                c.count(C::BlDst);
                -2
            } else {
                1
            }
        },
    );
    let c = s.clone();
    def = def.cmd(
        "secf_check_sqli_hdr",
        1,
        RouteType::ANY,
        Some(literal),
        move |_ctx, p| {
            if lists::sqli(&lit(p)) {
                c.count(C::BlSql);
                -1
            } else {
                1
            }
        },
    );
    let c = s.clone();
    def = def.cmd(
        "secf_check_sqli_all",
        0,
        RouteType::ANY,
        None,
        move |ctx, _| sqli_all(&c, ctx),
    );
    let r = s.clone();
    def = def.rpc("secfilter.reload", "Reload data from database", move |_| {
        let _one = r.writing.lock().unwrap_or_else(|e| e.into_inner());
        let l = r.load().map_err(|e| {
            lm_err!("secfilter: {e}");
            RpcError::new(500, "Error loading data from database")
        })?;
        *r.lists
            .write()
            .map_err(|_| RpcError::new(500, "poisoned"))? = Arc::new(l);
        Ok(json!("Data reloaded"))
    });
    let r = s.clone();
    def = def.rpc(
        "secfilter.print",
        "Print blacklisted and whitelisted values",
        move |p| Ok(lines(print_lines(&r.lists(), text_param(p, 0).as_deref()))),
    );
    let r = s.clone();
    def = def.rpc(
        "secfilter.stats",
        "Print statistics of blocked and allowed messages",
        move |_| Ok(lines(stats_lines(&r))),
    );
    let r = s.clone();
    def = def.rpc("secfilter.stats_reset", "Reset the statistics", move |_| {
        for c in &r.counters {
            c.store(0, Ordering::Relaxed);
        }
        Ok(json!("The statistics has been reset"))
    });
    let r = s.clone();
    def = def.rpc("secfilter.add_dst", "Add a destination to the blacklist", move |p| {
        let n = match p.first() {
            Some(Json::Number(n)) => n.as_i64(),
            Some(Json::String(s)) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| {
            RpcError::new(
                500,
                "Invalid Parameters. Usage: secfilter.add_dst number\n     Example: secfilter.add_dst 555123123",
            )
        })?;
        r.edit(|l| {
            l.black.dst.push(n.to_string());
            Ok(())
        })
        .map_err(|_| RpcError::new(500, "Error insert values in the blacklist"))?;
        Ok(json!(format!("Values ({n}) inserted into blacklist destinations")))
    });
    for (name, white) in [("secfilter.add_bl", false), ("secfilter.add_wl", true)] {
        let r = s.clone();
        def = def.rpc(name, "Add a value to a list", move |p| {
            rpc_add(&r, p, white)
        });
    }
    def
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_written_as_kamailio_writes_it() {
        assert_eq!(ip_text("::1".parse().unwrap()), "0:0:0:0:0:0:0:1");
        assert_eq!(
            ip_text("2001:db8::a".parse().unwrap()),
            "2001:DB8:0:0:0:0:0:A"
        );
        assert_eq!(ip_text("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    #[test]
    fn print_selects_sections_by_prefix() {
        let mut l = Lists::default();
        l.add_row(0, 0, "bad-ua").unwrap();
        l.add_row(2, 0, "0900").unwrap();
        let all = print_lines(&l, None).join("\n");
        assert!(all.contains("Destinations") && all.contains("    0001 -> bad-ua"));
        let u = print_lines(&l, Some("u")).join("\n");
        assert!(u.contains("User-agent") && u.contains("User\n====") && !u.contains("Country"));
    }
}
