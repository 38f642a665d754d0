//! The `cnt.*` RPC methods, over every statistic of the server.

use crate::Counters;
use sr_sdk::prelude::*;
use sr_sdk::rpc::param_str;
use std::sync::{Arc, Weak};

fn core_of(c: &Counters) -> Result<Arc<dyn Core>, RpcError> {
    c.core
        .get()
        .and_then(Weak::upgrade)
        .ok_or_else(|| RpcError::new(500, "server not running"))
}

fn group_stats(core: &dyn Core, group: &str) -> Vec<(String, i64)> {
    core.statistics()
        .into_iter()
        .filter(|(g, _, _)| g == group)
        .map(|(_, n, v)| (n, v))
        .collect()
}

fn not_found(g: &str, n: &str) -> RpcError {
    RpcError::new(400, format!("non-existent counter {g}.{n}"))
}

/// Adds the RPCs.
pub fn add(def: ModuleDef, cnt: Arc<Counters>) -> ModuleDef {
    let (c1, c2, c3, c4, c5, c6) = (
        cnt.clone(),
        cnt.clone(),
        cnt.clone(),
        cnt.clone(),
        cnt.clone(),
        cnt,
    );
    def.rpc(
        "cnt.get",
        "Value of a counter: cnt.get group name.",
        move |p| {
            let core = core_of(&c1)?;
            let g = param_str(p, 0, "group")?;
            let n = param_str(p, 1, "name")?;
            group_stats(&*core, &g)
                .into_iter()
                .find(|(x, _)| *x == n)
                .map(|(_, v)| json!(v))
                .ok_or_else(|| not_found(&g, &n))
        },
    )
    .rpc(
        "cnt.reset",
        "Resets a counter: cnt.reset group name.",
        move |p| {
            let core = core_of(&c2)?;
            let g = param_str(p, 0, "group")?;
            let n = param_str(p, 1, "name")?;
            if !group_stats(&*core, &g).iter().any(|(x, _)| *x == n) {
                return Err(not_found(&g, &n));
            }
            core.rpc_call("stats.reset_statistics", &[json!(format!("{g}:{n}"))])?;
            Ok(Json::Null)
        },
    )
    .rpc("cnt.grps_list", "Lists the counter groups.", move |_| {
        let core = core_of(&c3)?;
        let mut groups: Vec<String> = Vec::new();
        for (g, _, _) in core.statistics() {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        Ok(Json::Array(groups.into_iter().map(Json::String).collect()))
    })
    .rpc(
        "cnt.var_list",
        "Lists the counters of a group: cnt.var_list group.",
        move |p| {
            let core = core_of(&c4)?;
            let g = param_str(p, 0, "group")?;
            let names: Vec<Json> = group_stats(&*core, &g)
                .into_iter()
                .map(|(n, _)| Json::String(n))
                .collect();
            if names.is_empty() {
                return Err(RpcError::new(400, format!("no counters in group {g}")));
            }
            Ok(Json::Array(names))
        },
    )
    .rpc(
        "cnt.grp_get_all",
        "Every counter of a group with its value: cnt.grp_get_all group.",
        move |p| {
            let core = core_of(&c5)?;
            let g = param_str(p, 0, "group")?;
            let all = group_stats(&*core, &g);
            if all.is_empty() {
                return Err(RpcError::new(400, format!("no counters in group {g}")));
            }
            let mut m = JsonMap::new();
            for (n, v) in all {
                m.insert(n, json!(v));
            }
            Ok(Json::Object(m))
        },
    )
    .rpc(
        "cnt.help",
        "Description of a counter: cnt.help group name.",
        move |p| {
            let core = core_of(&c6)?;
            let g = param_str(p, 0, "group")?;
            let n = param_str(p, 1, "name")?;
            if let Some(c) = c6
                .map
                .read()
                .ok()
                .and_then(|m| m.get(&(g.clone(), n.clone())).cloned())
            {
                return Ok(json!(c.desc));
            }
            if group_stats(&*core, &g).iter().any(|(x, _)| *x == n) {
                Ok(json!(""))
            } else {
                Err(not_found(&g, &n))
            }
        },
    )
}
