//! The `htable.*` RPC methods, with Kamailio's result shapes.

use crate::table::Val;
use crate::Htable;
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_str};
use std::sync::Arc;
use std::time::Instant;

fn table(ht: &Htable, p: &[Json]) -> Result<Arc<crate::table::Table>, RpcError> {
    let name = param_str(p, 0, "htable name")?;
    ht.table(&name)
        .ok_or_else(|| RpcError::new(500, "No such htable"))
}

/// An item in `htable.dump`: its name, type and value.
fn item(name: &str, v: &Val) -> Json {
    match v {
        Val::Int(i) => json!({"name": name, "value": i, "type": "int"}),
        Val::Str(s) => json!({"name": name, "value": s, "type": "str"}),
    }
}

/// Kamailio's `AVP_VAL_STR` flag of a string item.
const FLAG_STR: i64 = 2;

fn get(ht: &Htable, p: &[Json]) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let k = param_str(p, 1, "key")?;
    let now = Instant::now();
    let v = t
        .get(&k, now)
        .ok_or_else(|| RpcError::new(500, "Key name doesn't exist in htable."))?;
    // As Kamailio: the flags (string or not) and when it expires.
    let expire = match t.expires_in(&k, now) {
        None | Some(0) => json!("NEVER"),
        Some(secs) => json!(secs),
    };
    let (flags, value) = match v {
        Val::Int(i) => (0, json!(i)),
        Val::Str(s) => (FLAG_STR, json!(s)),
    };
    Ok(json!({ "item": {"name": k, "value": value, "flags": flags, "expire": expire} }))
}

fn set(ht: &Htable, p: &[Json], int: bool) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let k = param_str(p, 1, "key")?;
    let v = if int {
        Val::Int(param_int(p, 2, "value")?)
    } else {
        Val::Str(param_str(p, 2, "value")?)
    };
    ht.rep_set(&t, &k, &v);
    t.set(&k, v, None, Instant::now());
    Ok(json!("Ok. Key set to new value."))
}

/// `htable.setxs`/`htable.setxi`: a value with its own lifetime.
fn set_with_expire(ht: &Htable, p: &[Json], int: bool) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let k = param_str(p, 1, "key")?;
    let v = if int {
        Val::Int(param_int(p, 2, "value")?)
    } else {
        Val::Str(param_str(p, 2, "value")?)
    };
    let secs = param_int(p, 3, "expire")?;
    let secs = u64::try_from(secs).unwrap_or(0);
    ht.rep_set(&t, &k, &v);
    ht.rep_expire(&t, &k, secs);
    t.set(
        &k,
        v,
        Some(std::time::Duration::from_secs(secs)),
        Instant::now(),
    );
    Ok(json!("Ok. Key set to new value."))
}

/// `htable.setex`: a new lifetime for an item there (none on a table
/// without autoexpire, as in Kamailio); "Ok" either way.
fn set_expire(ht: &Htable, p: &[Json]) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let k = param_str(p, 1, "key")?;
    let secs = u64::try_from(param_int(p, 2, "expire")?).unwrap_or(0);
    ht.rep_expire(&t, &k, secs);
    t.set_expire(&k, secs, Instant::now());
    Ok(json!("Ok"))
}

fn delete(ht: &Htable, p: &[Json]) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let k = param_str(p, 1, "key")?;
    // As in Kamailio, a key that is not there is no error.
    ht.rep_delete(&t, &k);
    t.remove(&k, Instant::now());
    Ok(json!("Ok. Key deleted."))
}

/// A table's items by Kamailio slot (only slots with items).
fn by_slot(t: &crate::table::Table) -> Vec<(usize, Vec<(String, Val)>)> {
    let mut out: Vec<(usize, Vec<(String, Val)>)> = Vec::new();
    for (slot, k, v, _) in t.entries(Instant::now()) {
        match out.last_mut() {
            Some((s, items)) if *s == slot => items.push((k, v)),
            _ => out.push((slot, vec![(k, v)])),
        }
    }
    out
}

fn dump(ht: &Htable, p: &[Json]) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let slots: Vec<Json> = by_slot(&t)
        .iter()
        .map(|(i, items)| {
            json!({
                "entry": i,
                "size": items.len(),
                "slot": items.iter().map(|(k, v)| item(k, v)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!(slots))
}

/// `htable.stats`: per table, its slots, items, and the fewest and most
/// items in a slot.
fn stats(ht: &Htable) -> Result<Json, RpcError> {
    let defs = ht
        .defs
        .lock()
        .map_err(|_| RpcError::new(500, "lock"))?
        .clone();
    if defs.is_empty() {
        return Err(RpcError::new(500, "No htables"));
    }
    let mut out = Vec::new();
    // In reverse order of definition, as Kamailio lists them.
    for d in defs.iter().rev() {
        let Some(t) = ht.table(&d.name) else { continue };
        let slots = crate::table::slot_count(t.size);
        let mut counts: std::collections::HashMap<usize, usize> = Default::default();
        let mut all = 0;
        for (slot, ..) in t.entries(Instant::now()) {
            *counts.entry(slot).or_default() += 1;
            all += 1;
        }
        // A slot with no item counts 0.
        let min = if counts.len() < slots {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        out.push(json!({
            "name": t.name,
            "slots": slots,
            "all": all,
            "min": min,
            "max": counts.values().copied().max().unwrap_or(0),
        }));
    }
    Ok(json!(out))
}

/// The definition of the database table the first parameter names, with
/// Kamailio's faults for what is missing.
fn db_def(ht: &Htable, p: &[Json]) -> Result<crate::spec::Def, RpcError> {
    if params::get_str(&ht.db_url).is_empty() {
        return Err(RpcError::new(500, "No htable db_url"));
    }
    let name =
        param_str(p, 0, "htable name").map_err(|_| RpcError::new(500, "No htable name given"))?;
    let d = ht
        .def(&name)
        .ok_or_else(|| RpcError::new(500, "No such htable"))?;
    if d.dbtable.is_none() {
        return Err(RpcError::new(500, "No database htable"));
    }
    Ok(d)
}

/// `htable.reload table`: the table's items replaced by its database
/// table's rows.
fn reload(ht: &Htable, p: &[Json]) -> Result<Json, RpcError> {
    let d = db_def(ht, p)?;
    ht.load_db(&d).map_err(|e| {
        lm_err!("{e}");
        RpcError::new(500, "Htable reload failed")
    })?;
    ht.mark_loaded(&d.name);
    Ok(json!("Ok. Htable reloaded."))
}

/// `htable.store table`: the table's items written to its database table.
fn store(ht: &Htable, p: &[Json]) -> Result<Json, RpcError> {
    let d = db_def(ht, p)?;
    ht.store_db(&d).map_err(|e| {
        lm_err!("{e}");
        RpcError::new(500, "Htable store failed")
    })?;
    Ok(json!("Ok. Htable successfully stored to DB."))
}

fn list(ht: &Htable) -> Result<Json, RpcError> {
    let defs = ht
        .defs
        .lock()
        .map_err(|_| RpcError::new(500, "lock"))?
        .clone();
    // In reverse order of definition, as Kamailio lists them.
    let v: Vec<Json> = defs
        .iter()
        .rev()
        .filter_map(|d| {
            let t = ht.table(&d.name)?;
            Some(json!({
                "name": t.name,
                "dbtable": d.dbtable.clone().unwrap_or_default(),
                "dbmode": d.dbmode,
                "expire": t.autoexpire.map_or(0, |d| d.as_secs()),
                "updateexpire": u8::from(t.updateexpire),
                "size": crate::table::slot_count(t.size),
                "dmqreplicate": i32::from(t.dmqreplicate),
            }))
        })
        .collect();
    Ok(json!(v))
}

/// Adds the RPC methods to the module.
pub fn add(def: ModuleDef, ht: Arc<Htable>) -> ModuleDef {
    let h = |f: fn(&Htable, &[Json]) -> Result<Json, RpcError>| {
        let ht = ht.clone();
        move |p: &[Json]| f(&ht, p)
    };
    let (l, flush, st) = (ht.clone(), ht.clone(), ht.clone());
    def.rpc("htable.get", "An item: htable.get table key.", h(get))
        .rpc(
            "htable.sets",
            "Sets a string: htable.sets table key value.",
            h(|ht, p| set(ht, p, false)),
        )
        .rpc(
            "htable.seti",
            "Sets an integer: htable.seti table key value.",
            h(|ht, p| set(ht, p, true)),
        )
        .rpc(
            "htable.setxs",
            "Sets a string with a lifetime: htable.setxs table key value expire.",
            h(|ht, p| set_with_expire(ht, p, false)),
        )
        .rpc(
            "htable.setxi",
            "Sets an integer with a lifetime: htable.setxi table key value expire.",
            h(|ht, p| set_with_expire(ht, p, true)),
        )
        .rpc(
            "htable.setex",
            "Sets the lifetime of an item: htable.setex table key expire.",
            h(set_expire),
        )
        .rpc(
            "htable.delete",
            "Removes an item: htable.delete table key.",
            h(delete),
        )
        .rpc(
            "htable.dump",
            "Every item of a table, by slot: htable.dump table.",
            h(dump),
        )
        .rpc(
            "htable.flush",
            "Removes every item: htable.flush table.",
            move |p| {
                table(&flush, p)?.clear();
                Ok(json!("Ok. Htable flushed."))
            },
        )
        .rpc(
            "htable.listTables",
            "The tables and their settings.",
            move |_| list(&l),
        )
        .rpc(
            "htable.reload",
            "Loads a table from its database table again: htable.reload table.",
            h(reload),
        )
        .rpc(
            "htable.store",
            "Writes a table to its database table: htable.store table.",
            h(store),
        )
        .rpc(
            "htable.stats",
            "Per table: slots, items, fewest and most items in a slot.",
            move |_| stats(&st),
        )
}
