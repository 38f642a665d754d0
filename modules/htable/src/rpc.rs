//! The `htable.*` RPC methods.

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

/// Adds the RPC methods to the module.
pub fn add(def: ModuleDef, ht: Arc<Htable>) -> ModuleDef {
    let (a, b, c, d, e, f, g) = (
        ht.clone(),
        ht.clone(),
        ht.clone(),
        ht.clone(),
        ht.clone(),
        ht.clone(),
        ht,
    );
    def.rpc("htable.get", "An item: htable.get table key.", move |p| {
        let t = table(&a, p)?;
        let k = param_str(p, 1, "key")?;
        let v = t
            .get(&k, Instant::now())
            .ok_or_else(|| RpcError::new(404, "key not found"))?;
        Ok(json!({ "item": item(&k, &v) }))
    })
    .rpc(
        "htable.sets",
        "Sets a string: htable.sets table key value.",
        move |p| {
            let t = table(&b, p)?;
            let k = param_str(p, 1, "key")?;
            let v = param_str(p, 2, "value")?;
            t.set(&k, Val::Str(v), None, Instant::now());
            Ok(json!("Ok"))
        },
    )
    .rpc(
        "htable.seti",
        "Sets an integer: htable.seti table key value.",
        move |p| {
            let t = table(&c, p)?;
            let k = param_str(p, 1, "key")?;
            let v = param_int(p, 2, "value")?;
            t.set(&k, Val::Int(v), None, Instant::now());
            Ok(json!("Ok"))
        },
    )
    .rpc(
        "htable.delete",
        "Removes an item: htable.delete table key.",
        move |p| {
            let t = table(&d, p)?;
            let k = param_str(p, 1, "key")?;
            if !t.remove(&k, Instant::now()) {
                return Err(RpcError::new(404, "key not found"));
            }
            Ok(json!("Ok"))
        },
    )
    .rpc(
        "htable.dump",
        "Every item of a table: htable.dump table.",
        move |p| {
            let t = table(&e, p)?;
            let items: Vec<Json> = t
                .items(Instant::now())
                .iter()
                .map(|(k, v, left)| {
                    let mut j = item(k, v);
                    j["expires"] = json!(left.unwrap_or(0));
                    j
                })
                .collect();
            Ok(json!(items))
        },
    )
    .rpc(
        "htable.flush",
        "Removes every item: htable.flush table.",
        move |p| {
            table(&f, p)?.clear();
            Ok(json!("Ok"))
        },
    )
    .rpc(
        "htable.listTables",
        "The tables and their settings.",
        move |_| {
            let tables = g.tables.read().map_err(|_| RpcError::new(500, "lock"))?;
            let mut v: Vec<Json> = tables
                .values()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "autoexpire": t.autoexpire.map_or(0, |d| d.as_secs()),
                        "updateexpire": u8::from(t.updateexpire),
                    })
                })
                .collect();
            v.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            Ok(json!(v))
        },
    )
}
