//! The `ul.*` RPC methods.

use crate::contact::{Contact, FL_MEM};
use crate::domain::Domain;
use crate::Usrloc;
use sr_sdk::db::now;
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_str};
use std::sync::Arc;

/// A contact as Kamailio's `ul.dump` shows it; `no_db`: the contacts
/// are never written to a database (they stay CS_NEW, as in Kamailio's
/// db_mode 0).
fn contact_json(c: &Contact, now: i64, no_db: bool) -> Json {
    let expires = if c.expires == 0 {
        json!("permanent")
    } else {
        json!(c.expires - now)
    };
    json!({
        "Address": c.contact,
        "Expires": expires,
        // Kamailio's raw q (thousandths, -1 unspecified).
        "Q": c.q,
        "Call-ID": c.callid,
        "CSeq": c.cseq,
        "User-Agent": c.user_agent,
        "Received": c.received.clone().unwrap_or_else(|| "[not set]".into()),
        "Path": c.path.clone().unwrap_or_else(|| "[not set]".into()),
        "State": if no_db || c.flags & FL_MEM != 0 { "CS_NEW" } else { "CS_SYNC" },
        "Flags": c.flags,
        "CFlags": c.cflags,
        "Socket": c.socket.clone().unwrap_or_else(|| "[not set]".into()),
        "Methods": c.methods,
        "Ruid": c.ruid,
        "Instance": c.instance.clone().unwrap_or_else(|| "[not set]".into()),
        "Reg-Id": c.reg_id,
        "Server-Id": 0,
        // -1 without a stream connection, as in Kamailio.
        "Tcpconn-Id": if c.connection_id == 0 { -1 } else { c.connection_id },
        "Keepalive": c.keepalive,
        "Last-Keepalive": c.last_modified,
        "KA-Roundtrip": 0,
        "Last-Modified": c.last_modified,
    })
}

/// An AoR's hash as Kamailio's usrloc computes it (`HashID`).
fn aor_hash(aor: &str) -> u32 {
    sr_sdk::hash::core_hash(aor.as_bytes(), None, false)
}

/// An AoR and its contacts (`ul.dump` adds its `HashID`).
fn aor_json(aor: &str, cs: &[Contact], now: i64, no_db: bool, hash: bool) -> Json {
    let contacts: Vec<Json> = cs
        .iter()
        .map(|c| json!({"Contact": contact_json(c, now, no_db)}))
        .collect();
    if hash {
        json!({"AoR": aor, "HashID": aor_hash(aor), "Contacts": contacts})
    } else {
        json!({"AoR": aor, "Contacts": contacts})
    }
}

fn table(ul: &Usrloc, p: &[Json]) -> Result<Arc<Domain>, RpcError> {
    let name = param_str(p, 0, "table")?;
    ul.domain(&name)
        .ok_or_else(|| RpcError::new(500, format!("table '{name}' not found")))
}

fn internal(e: String) -> RpcError {
    RpcError::new(500, e)
}

/// Parses a q value given as `0.5` (or `-1` for none) into thousandths.
fn parse_q(s: &str) -> Result<i32, RpcError> {
    let f: f64 = s
        .trim()
        .parse()
        .map_err(|_| RpcError::invalid_params("q: expected a number"))?;
    if f < 0.0 {
        Ok(crate::Q_UNSPECIFIED)
    } else if f <= 1.0 {
        Ok((f * 1000.0).round() as i32)
    } else {
        Err(RpcError::invalid_params("q: 0..1"))
    }
}

/// What `ul.db_users`, `ul.db_contacts` and `ul.db_expired_contacts`
/// count in a table of the database.
#[derive(Clone, Copy)]
enum DbCount {
    /// AoRs with a contact not expired.
    Users,
    /// Contacts not expired.
    Contacts,
    /// Contacts expired.
    Expired,
}

/// Counts rows of a location table in the database, as Kamailio's
/// `ul.db_*` commands (which use MySQL's SQL; siprouter reads the rows
/// through the database API, so every driver answers).
fn db_count(ul: &Usrloc, p: &[Json], what: DbCount) -> Result<Json, RpcError> {
    if ul.db_mode() == crate::DbMode::NoDb {
        return Err(RpcError::new(500, "Command is not supported in db_mode=0"));
    }
    let Some(table) = sr_sdk::rpc::param_opt_str(p, 0) else {
        return Err(RpcError::new(500, "Not enough parameters (table to query)"));
    };
    let pool = ul
        .db_pool()
        .ok_or_else(|| RpcError::new(500, "Failed to use table"))?;
    let rows = pool
        .with(|c| c.query(&table, &[], &["username", "domain", "expires"], None))
        .map_err(|_| RpcError::new(500, "Failed to query AoR count"))?;
    let t = now();
    let alive = |i: usize| {
        let e = rows.get(i, "expires").as_time().unwrap_or(0);
        e == 0 || e > t
    };
    let n = match what {
        DbCount::Contacts => (0..rows.len()).filter(|&i| alive(i)).count(),
        DbCount::Expired => (0..rows.len()).filter(|&i| !alive(i)).count(),
        DbCount::Users => (0..rows.len())
            .filter(|&i| alive(i))
            .map(|i| {
                // (Databases compare user names without case.)
                (
                    rows.get(i, "username")
                        .as_string()
                        .unwrap_or_default()
                        .to_lowercase(),
                    rows.get(i, "domain")
                        .as_string()
                        .unwrap_or_default()
                        .to_lowercase(),
                )
            })
            .collect::<std::collections::HashSet<_>>()
            .len(),
    };
    Ok(json!(n))
}

/// Adds the RPC methods to the definition.
pub fn export(def: ModuleDef, ul: Arc<Usrloc>) -> ModuleDef {
    let (a, b, c, d, e, f, g) = (
        ul.clone(),
        ul.clone(),
        ul.clone(),
        ul.clone(),
        ul.clone(),
        ul.clone(),
        ul,
    );
    def.rpc("ul.dump", "Every table, AoR and contact.", move |p| {
        let brief = matches!(p.first(), Some(Json::String(s)) if s == "brief");
        let no_db = a.db_mode() == crate::DbMode::NoDb;
        let t = now();
        let mut domains = Vec::new();
        for dom in a.domains() {
            let all = dom.dump().map_err(internal)?;
            let aors: Vec<Json> = all
                .iter()
                .map(|(aor, cs)| {
                    if brief {
                        json!({"Info": {"AoR": aor, "Contacts": cs.iter().map(|c| json!({"Address": c.contact, "Expires": c.remaining(t)})).collect::<Vec<_>>()}})
                    } else {
                        json!({"Info": aor_json(aor, cs, t, no_db, true)})
                    }
                })
                .collect();
            // Kamailio's hash table: its size, and the records and the
            // most of them in one slot.
            let size = 1u32 << a.hash_bits();
            let mut per_slot = std::collections::HashMap::new();
            for (aor, _) in &all {
                *per_slot.entry(aor_hash(aor) & (size - 1)).or_insert(0u32) += 1;
            }
            let max_slots = per_slot.values().copied().max().unwrap_or(0);
            domains.push(json!({"Domain": {
                "Domain": dom.name(),
                "Size": size,
                "AoRs": aors,
                "Stats": {"Records": all.len(), "Max-Slots": max_slots},
            }}));
        }
        Ok(json!({"Domains": domains}))
    })
    .rpc("ul.lookup", "Contacts of an AoR: ul.lookup table aor.", move |p| {
        let dom = table(&b, p)?;
        let mut aor = param_str(p, 1, "aor")?;
        // Without use_domain the AoR is its user part, as in Kamailio.
        if !b.use_domain() {
            if let Some(i) = aor.find('@') {
                aor.truncate(i);
            }
        }
        let t = now();
        let cs = dom.lookup(&aor, t).map_err(internal)?;
        if cs.is_empty() {
            // Kamailio's words and code.
            return Err(RpcError::new(500, format!("AOR not found in {} table", dom.name())));
        }
        Ok(aor_json(&aor, &cs, t, b.db_mode() == crate::DbMode::NoDb, false))
    })
    .rpc("ul.rm", "Removes an AoR: ul.rm table aor.", move |p| {
        let dom = table(&c, p)?;
        let aor = param_str(p, 1, "aor")?;
        let n = dom
            .with_record(&aor, now(), |r| Ok(r.clear()))
            .map_err(internal)?;
        if n == 0 {
            return Err(RpcError::new(404, "AOR not found"));
        }
        Ok(json!({"Removed": n}))
    })
    .rpc(
        "ul.rm_contact",
        "Removes one contact: ul.rm_contact table aor contact.",
        move |p| {
            let dom = table(&d, p)?;
            let aor = param_str(p, 1, "aor")?;
            let uri = param_str(p, 2, "contact")?;
            let found = dom
                .with_record(&aor, now(), |r| {
                    let ruids: Vec<String> = r
                        .iter()
                        .filter(|c| c.contact() == uri)
                        .map(|c| c.ruid().to_string())
                        .collect();
                    ruids.iter().for_each(|x| {
                        r.remove(x);
                    });
                    Ok(!ruids.is_empty())
                })
                .map_err(internal)?;
            if !found {
                return Err(RpcError::new(404, "Contact not found"));
            }
            Ok(json!({"Removed": 1}))
        },
    )
    .rpc(
        "ul.add",
        "Adds a contact: ul.add table aor contact expires q path flags cflags methods.",
        move |p| {
            let dom = table(&e, p)?;
            let aor = param_str(p, 1, "aor")?;
            let uri = param_str(p, 2, "contact")?;
            let expires = param_int(p, 3, "expires")?;
            let q = match p.get(4) {
                Some(_) => parse_q(&param_str(p, 4, "q")?)?,
                None => crate::Q_UNSPECIFIED,
            };
            let path = p.get(5).and_then(|v| v.as_str()).filter(|s| !s.is_empty() && *s != "0");
            let flags = param_int(p, 6, "flags").unwrap_or(0) as u32;
            let cflags = param_int(p, 7, "cflags").unwrap_or(0) as u32;
            let methods = param_int(p, 8, "methods").map_or(crate::METHODS_ALL, |m| m as u32);
            let t = now();
            let mut ct = Contact::new(&aor, &uri);
            ct.expires = if expires > 0 { t + expires } else { 0 };
            ct.q = q;
            ct.path = path.map(str::to_string);
            ct.flags = flags;
            ct.cflags = cflags;
            ct.methods = methods;
            ct.last_modified = t;
            ct.callid = "dfjrewr12386fd6-343@kamailio.mi".into();
            ct.user_agent = "SIP Router MI Server".into();
            dom.with_record(&aor, t, |r| {
                match r.find(|c| c.contact() == uri) {
                    Some(old) => {
                        ct.ruid = old.ruid;
                        r.update(ct);
                    }
                    None => r.insert(ct),
                }
                Ok(())
            })
            .map_err(internal)?;
            Ok(json!({}))
        },
    )
    .rpc("ul.flush", "Writes pending changes (db_mode 2) and drops expired contacts.", move |_| {
        f.timer(now());
        let n = f.flush().map_err(internal)?;
        Ok(json!({"Flushed": n}))
    })
    .pipe(|d| db_counts(d, g))
}

/// `ul.db_users`, `ul.db_contacts`, `ul.db_expired_contacts`.
fn db_counts(def: ModuleDef, ul: Arc<Usrloc>) -> ModuleDef {
    let mut def = def;
    for (name, doc, what) in [
        (
            "ul.db_users",
            "Number of AoRs with a contact not expired in a location table of the database.",
            DbCount::Users,
        ),
        (
            "ul.db_contacts",
            "Number of contacts not expired in a location table of the database.",
            DbCount::Contacts,
        ),
        (
            "ul.db_expired_contacts",
            "Number of expired contacts in a location table of the database.",
            DbCount::Expired,
        ),
    ] {
        let ul = ul.clone();
        def = def.rpc(name, doc, move |p| db_count(&ul, p, what));
    }
    def
}
