//! Loading the destination sets: from the list file or the database
//! table, resolving each destination once (Kamailio's `ds_load_list` /
//! `ds_load_db` and `add_dest2list`).

pub use crate::dest::Entry;
use crate::dest::{Addr, Attrs, Dest, Lists, Set, NODNS};
use sr_sdk::db::{self, DbValue};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::Uri;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Where the sets come from.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `list_file`.
    pub list_file: String,
    /// `db_url` (when set, the table is read instead of the file).
    pub db_url: String,
    /// `table_name`.
    pub table: String,
    /// Column names: set id, destination, flags, priority, attrs.
    pub cols: [String; 5],
    /// `ds_load_mode`: 1 refuses the whole list when a line is bad.
    pub strict: bool,
}

/// Reads the list file: its entries, or the first fault as
/// `file:line: what`.
pub fn read_file(path: &str, strict: bool) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("dispatcher: cannot read list_file {path}: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match crate::dest::parse_line(line) {
            None => {}
            Some(Ok(e)) => out.push(e),
            Some(Err(e)) if strict => return Err(format!("{path}:{}: {e}", i + 1)),
            Some(Err(e)) => lm_err!("dispatcher: {path}:{}: {e}: line skipped", i + 1),
        }
    }
    Ok(out)
}

/// Reads the table.
pub fn read_db(core: &dyn Core, src: &Source) -> Result<Vec<Entry>, String> {
    let mut conn = db::open(core, &src.db_url).map_err(|e| format!("dispatcher: {e}"))?;
    db::check_version(&mut *conn, &src.table, db::schema::DISPATCHER_VERSION)
        .map_err(|e| format!("dispatcher: {e}"))?;
    let cols: Vec<&str> = src.cols.iter().map(String::as_str).collect();
    let rows = conn
        .query(&src.table, &[], &cols, None)
        .map_err(|e| format!("dispatcher: reading table {}: {e}", src.table))?;
    let mut out = Vec::new();
    for r in 0..rows.len() {
        let get = |c: &str| rows.get(r, c);
        let text = |v: &DbValue| v.as_string().unwrap_or_default();
        let uri = text(get(cols[1]));
        let e = Entry {
            setid: get(cols[0]).as_i64().unwrap_or(0) as i32,
            uri: crate::dest::with_scheme(uri.trim()),
            flags: get(cols[2]).as_i64().unwrap_or(0) as u32,
            priority: get(cols[3]).as_i64().unwrap_or(0) as i32,
            attrs: text(get(cols[4])),
        };
        if Uri::parse(&e.uri).is_err() {
            let m = format!(
                "table {} row {}: '{}' is not a SIP URI",
                src.table,
                r + 1,
                uri
            );
            if src.strict {
                return Err(format!("dispatcher: {m}"));
            }
            lm_err!("dispatcher: {m}: skipped");
            continue;
        }
        out.push(e);
    }
    Ok(out)
}

/// The entries of the configured source.
pub fn read(core: &dyn Core, src: &Source) -> Result<Vec<Entry>, String> {
    if src.db_url.is_empty() {
        read_file(&src.list_file, src.strict)
    } else {
        read_db(core, src)
    }
}

/// Where a destination is: its address (resolved now unless the entry
/// says not to), the port and transport its URI names. `Err` when the
/// host does not resolve.
fn address(core: &dyn Core, e: &Entry) -> Result<Option<Addr>, String> {
    if e.flags & NODNS != 0 {
        return Ok(None);
    }
    let u = Uri::parse(&e.uri).map_err(|err| format!("'{}': {err}", e.uri))?;
    let proto = crate::params_value(u.params, "transport").and_then(Proto::parse);
    let ip = match u.host.ip() {
        Some(ip) => ip,
        None => core
            .resolve(&e.uri, None)
            .map_err(|err| format!("could not resolve {}: {err}", u.host_str))?
            .addr
            .ip(),
    };
    Ok(Some(Addr {
        ip,
        port: u.port,
        proto,
    }))
}

/// Makes the sets from entries; the state of a destination already in
/// `keep` (same set, same URI) carries over (RPC add and remove), else it
/// starts from its flags. Unresolvable entries are skipped (all refused
/// with `strict`).
pub fn build(
    core: &dyn Core,
    entries: &[Entry],
    keep: Option<&Lists>,
    strict: bool,
    attrs_none: bool,
) -> Result<Lists, String> {
    let mut by_set: Vec<(i32, Vec<Arc<Dest>>)> = Vec::new();
    let old: HashMap<(i32, &str), &Arc<Dest>> = keep
        .map(|l| {
            l.sets
                .iter()
                .flat_map(|s| s.dests.iter().map(move |d| ((s.id, d.uri.as_str()), d)))
                .collect()
        })
        .unwrap_or_default();
    for e in entries {
        let addr = match address(core, e) {
            Ok(a) => a,
            Err(m) if strict => return Err(format!("dispatcher: {m}")),
            Err(m) => {
                lm_err!("dispatcher: {m}: destination skipped");
                continue;
            }
        };
        let attrs = if e.attrs.is_empty() && attrs_none {
            Attrs::parse("none=yes")
        } else {
            Attrs::parse(&e.attrs)
        };
        // A socket must be one of the server's, as in Kamailio.
        if !attrs.socket.is_empty() {
            let local = crate::dest::socket_addr(&attrs.socket)
                .is_some_and(|a| core.is_myself(&a.ip().to_string(), Some(a.port())));
            if !local {
                let m = format!(
                    "{}: socket {} is not one of the server's",
                    e.uri, attrs.socket
                );
                if strict {
                    return Err(format!("dispatcher: {m}"));
                }
                lm_err!("dispatcher: {m}: destination skipped");
                continue;
            }
        }
        let (flags, count) = match old.get(&(e.setid, e.uri.as_str())) {
            Some(d) => (d.flags(), d.count.load(Ordering::Relaxed)),
            None => (e.flags, 0),
        };
        let d = Arc::new(Dest {
            uri: e.uri.clone(),
            setid: e.setid,
            priority: e.priority,
            load_flags: e.flags,
            flags: AtomicU32::new(flags),
            count: AtomicU32::new(count),
            addr,
            socket_addr: crate::dest::socket_addr(&attrs.socket),
            attrs,
        });
        match by_set.iter_mut().find(|(id, _)| *id == e.setid) {
            Some((_, v)) => v.push(d),
            None => by_set.push((e.setid, vec![d])),
        }
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    let seen: Vec<i32> = by_set.iter().map(|(id, _)| *id).collect();
    let sets = by_set
        .into_iter()
        .enumerate()
        .map(|(k, (id, v))| Set::new(id, v, seed.wrapping_add(k as u64)))
        .collect();
    Ok(Lists::new(sets, &seen))
}

/// Every entry of the lists now (for RPC add and remove), in load order
/// within a set as far as it can be told (priority order otherwise).
pub fn entries_of(l: &Lists) -> Vec<Entry> {
    l.sets
        .iter()
        .flat_map(|s| {
            s.dests.iter().rev().map(|d| Entry {
                setid: d.setid,
                uri: d.uri.clone(),
                flags: d.load_flags,
                priority: d.priority,
                attrs: d.attrs.body.clone(),
            })
        })
        .collect()
}
