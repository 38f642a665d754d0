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
        .ok_or_else(|| RpcError::new(500, format!("no such htable: {name}")))
}

fn item(name: &str, v: &Val) -> Json {
    match v {
        Val::Int(i) => json!({"name": name, "value": i}),
        Val::Str(s) => json!({"name": name, "value": s}),
    }
}

fn get(ht: &Htable, p: &[Json]) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let k = param_str(p, 1, "key")?;
    let v = t
        .get(&k, Instant::now())
        .ok_or_else(|| RpcError::new(500, "Key name doesn't exist in htable."))?;
    Ok(json!({ "item": item(&k, &v) }))
}

fn set(ht: &Htable, p: &[Json], int: bool) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let k = param_str(p, 1, "key")?;
    let v = if int {
        Val::Int(param_int(p, 2, "value")?)
    } else {
        Val::Str(param_str(p, 2, "value")?)
    };
    t.set(&k, v, None, Instant::now());
    Ok(Json::Null)
}

fn delete(ht: &Htable, p: &[Json]) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let k = param_str(p, 1, "key")?;
    // As in Kamailio, a key that is not there is no error.
    t.remove(&k, Instant::now());
    Ok(Json::Null)
}

fn dump(ht: &Htable, p: &[Json]) -> Result<Json, RpcError> {
    let t = table(ht, p)?;
    let slots: Vec<Json> = t
        .shards(Instant::now())
        .iter()
        .enumerate()
        .filter(|(_, items)| !items.is_empty())
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

fn list(ht: &Htable) -> Result<Json, RpcError> {
    let tables = ht.tables.read().map_err(|_| RpcError::new(500, "lock"))?;
    let mut v: Vec<Json> = tables
        .values()
        .map(|t| {
            json!({
                "name": t.name,
                "dbtable": "",
                "dbmode": 0,
                "expire": t.autoexpire.map_or(0, |d| d.as_secs()),
                "updateexpire": u8::from(t.updateexpire),
                "size": t.size,
                "dmqreplicate": 0,
            })
        })
        .collect();
    v.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(json!(v))
}

/// Adds the RPC methods to the module.
pub fn add(def: ModuleDef, ht: Arc<Htable>) -> ModuleDef {
    let h = |f: fn(&Htable, &[Json]) -> Result<Json, RpcError>| {
        let ht = ht.clone();
        move |p: &[Json]| f(&ht, p)
    };
    let (l, flush) = (ht.clone(), ht.clone());
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
                Ok(Json::Null)
            },
        )
        .rpc(
            "htable.listTables",
            "The tables and their settings.",
            move |_| list(&l),
        )
}
