//! The RPC commands: `lcr.reload`, `lcr.dump_gws`, `lcr.dump_rules`,
//! `lcr.defunct_gw` and `lcr.load_gws`, answering as Kamailio's do.

use crate::select;
use crate::tables::{Gw, Instance};
use crate::Lcr;
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_opt_str};
use sr_sdk::RpcError;
use std::cmp::Reverse;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A gateway as the dumps show it.
fn gw_json(gw: &Gw, gw_index: usize, lcr_id: usize) -> Json {
    let ip = match gw.ip {
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(a)) => a
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
        None => "0.0.0.0".into(),
    };
    json!({
        "lcr_id": lcr_id,
        "gw_index": gw_index,
        "gw_id": gw.id,
        "gw_name": gw.name,
        "scheme": gw.scheme,
        "ip_addr": ip,
        "hostname": gw.hostname,
        "port": gw.port,
        "params": gw.params,
        "transport": gw.transport,
        "strip": gw.strip,
        "prefix": gw.prefix,
        "tag": gw.tag,
        "flags": gw.flags,
        "state": gw.state.load(Ordering::Relaxed),
        "defunct_until": gw.defunct_until.load(Ordering::Relaxed).to_string(),
    })
}

/// Several values as one answer: nothing, the value, or the list.
fn answer(mut items: Vec<Json>) -> Json {
    match items.len() {
        0 => Json::Null,
        1 => items.remove(0),
        _ => Json::Array(items),
    }
}

fn dump_gws(l: &Lcr) -> Json {
    let tables = l.tables();
    let gws: Vec<Json> = tables
        .iter()
        .enumerate()
        .flat_map(|(i, inst)| {
            inst.gws
                .iter()
                .enumerate()
                .map(move |(j, g)| gw_json(g, j + 1, i + 1))
        })
        .collect();
    if gws.is_empty() {
        return Json::Null;
    }
    json!({ "gw": gws })
}

/// The rules in the order Kamailio's hash table holds them: by slot of
/// the prefix's hash, the last read first within a slot.
fn hash_order(inst: &Instance, size: u32) -> Vec<usize> {
    let slot = |p: &str| {
        let h = sr_sdk::hash::core_hash(p.as_bytes(), None, false);
        h & size.wrapping_sub(1)
    };
    let mut order: Vec<usize> = (0..inst.rules.len()).collect();
    order.sort_by_key(|&i| (slot(&inst.rules[i].prefix), Reverse(i)));
    order
}

fn dump_rules(l: &Lcr, p: &[Json]) -> Result<Json, RpcError> {
    let lcr_filter = param_int(p, 0, "lcr_id").ok().filter(|i| *i > 0);
    let prefix_filter = lcr_filter.and_then(|_| param_opt_str(p, 1));
    let size = l.i("lcr_rule_hash_size") as u32;
    let tables = l.tables();
    let mut out = Vec::new();
    for (i, inst) in tables.iter().enumerate() {
        let lcr_id = i + 1;
        if lcr_filter.is_some_and(|f| f != lcr_id as i64) {
            continue;
        }
        let rules: Vec<Json> = hash_order(inst, size)
            .into_iter()
            .map(|k| &inst.rules[k])
            .filter(|r| {
                prefix_filter
                    .as_deref()
                    .filter(|f| !f.is_empty())
                    .is_none_or(|f| f.as_bytes().starts_with(r.prefix.as_bytes()))
            })
            .map(|r| {
                let mut o = json!({
                    "lcr_id": lcr_id,
                    "rule_id": r.id,
                    "prefix": r.prefix,
                    "from_uri": r.from_uri,
                    "request_uri": r.request_uri,
                    "stopper": u32::from(r.stopper),
                });
                if !r.targets.is_empty() {
                    o["gw"] = r
                        .targets
                        .iter()
                        .map(|t| {
                            json!({"gw_index": t.gw_index, "priority": t.priority, "weight": t.weight})
                        })
                        .collect();
                }
                o
            })
            .collect();
        if rules.is_empty() {
            continue;
        }
        let mut o = json!({ "rule": rules });
        if prefix_filter.is_none() && !inst.prefix_lens.is_empty() {
            o["prefix_len"] = json!(inst.prefix_lens);
        }
        out.push(o);
    }
    if out.is_empty() {
        return Err(RpcError::new(404, "Empty reply"));
    }
    Ok(answer(out))
}

fn defunct_gw(l: &Lcr, p: &[Json]) -> Result<Json, RpcError> {
    let (Ok(lcr_id), Ok(gw_id), Ok(period)) = (
        param_int(p, 0, "lcr_id"),
        param_int(p, 1, "gw_id"),
        param_int(p, 2, "period"),
    ) else {
        return Err(RpcError::new(
            400,
            "lcr_id, gw_id, and timestamp parameters required",
        ));
    };
    let bad = || RpcError::new(400, "parameter value error (see syslog)");
    if lcr_id < 1 || lcr_id > l.i("lcr_count") {
        lm_err!("lcr: invalid lcr_id value <{lcr_id}>");
        return Err(bad());
    }
    let tables = l.tables();
    let inst = tables.get(lcr_id as usize - 1).ok_or_else(bad)?;
    let Some(gw) = inst.gws.iter().find(|g| i64::from(g.id) == gw_id) else {
        lm_err!("lcr: gateway with id <{gw_id}> not found");
        return Err(bad());
    };
    let until = crate::defunct_until(period);
    gw.defunct_until.store(until, Ordering::Relaxed);
    Ok(Json::Null)
}

fn load_gws(l: &Lcr, p: &[Json]) -> Result<Json, RpcError> {
    let (Ok(lcr_id), Some(user)) = (param_int(p, 0, "lcr_id"), param_opt_str(p, 1)) else {
        return Err(RpcError::new(
            400,
            "parameter error; if using cli, remember to prefix numeric uri_user param value with 's:'",
        ));
    };
    let caller = param_opt_str(p, 2).unwrap_or_default();
    let request_uri = param_opt_str(p, 3).unwrap_or_default();
    let failed = || RpcError::new(400, "load_gws excution error (see syslog)");
    if lcr_id < 1 || lcr_id > l.i("lcr_count") {
        lm_err!("lcr: invalid lcr_id parameter value {lcr_id}");
        return Err(failed());
    }
    let tables = l.tables();
    let inst = tables.get(lcr_id as usize - 1).ok_or_else(failed)?;
    let mut rand = || sr_sdk::hash::random_u64() & 0x7f_ffff;
    let caller_user = l.caller_user(&caller).map_err(|_| failed())?;
    let mut values_of = || {
        let (vals, ok) = l.mt_match(caller_user.as_deref().unwrap_or(""));
        ok.then_some(vals)
    };
    let mt: Option<select::MtValues<'_>> = caller_user.is_some().then_some(&mut values_of);
    let found = select::matching(
        inst,
        &user,
        &caller,
        Some(&request_uri),
        sr_sdk::db::now() as u32,
        l.i("priority_ordering") == 1,
        &mut rand,
        mt,
    )
    .map_err(|_| {
        lm_err!("lcr: lcr_rule has non-null request_uri and request_uri param has not been given.");
        failed()
    })?;
    let gws: Vec<Json> = found
        .iter()
        .map(|m| gw_json(&inst.gws[m.gw_index - 1], m.gw_index, lcr_id as usize))
        .collect();
    if gws.is_empty() {
        return Ok(Json::Null);
    }
    // One list (not a value per gateway), as Kamailio answers.
    Ok(Json::Array(vec![Json::Array(gws)]))
}

/// Adds the commands to the module.
pub fn register(def: ModuleDef, l: &Arc<Lcr>) -> ModuleDef {
    let (a, b, c, d, e) = (l.clone(), l.clone(), l.clone(), l.clone(), l.clone());
    def.rpc("lcr.reload", "Reload lcr tables from database.", move |_| {
        a.reload().map_err(|err| {
            lm_err!("lcr: reload failed: {err}");
            RpcError::new(500, "LCR Module Reload Failed")
        })?;
        Ok(Json::Null)
    })
    .rpc(
        "lcr.dump_gws",
        "Dump the contents of lcr_gws table.",
        move |_| Ok(dump_gws(&b)),
    )
    .rpc(
        "lcr.dump_rules",
        "Dump the contents of the lcr_rules table.",
        move |p| dump_rules(&c, p),
    )
    .rpc(
        "lcr.defunct_gw",
        "Defunct gateway until specified time (Unix timestamp).",
        move |p| defunct_gw(&d, p),
    )
    .rpc(
        "lcr.load_gws",
        "Load matching gateways and prints their info in priority order.  Mandatory parameters are lcr_id and uri_user followed by optional parameters caller_uri and request_uri.  Error is reported if an lcr_rule with matching prefix and from_uri has non-null request_uri and request_uri parameter has not been given.",
        move |p| load_gws(&e, p),
    )
}
