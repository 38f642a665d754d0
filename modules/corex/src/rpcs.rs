//! The corex RPC methods: `corex.debug`, `corex.list_sockets`,
//! `corex.list_aliases`.

use sr_sdk::log;
use sr_sdk::prelude::*;
use sr_sdk::rpc::param_int;
use std::sync::{Arc, OnceLock, Weak};

type CoreCell = Arc<OnceLock<Weak<dyn Core>>>;

fn core_of(c: &CoreCell) -> Result<Arc<dyn Core>, RpcError> {
    c.get()
        .and_then(Weak::upgrade)
        .ok_or_else(|| RpcError::new(500, "server not running"))
}

/// `corex.debug`: without a parameter the log level; with one, sets it
/// and returns the old and new levels.
pub fn debug(p: &[Json]) -> Result<Json, RpcError> {
    let old = log::level();
    if p.is_empty() {
        return Ok(json!({"debug": old}));
    }
    let new = param_int(p, p.len() - 1, "level")?;
    if !(log::L_ALERT as i64..=log::L_DBG as i64 + 10).contains(&new) {
        return Err(RpcError::invalid_params(format!(
            "level {new} out of range ({}..)",
            log::L_ALERT
        )));
    }
    log::set_level(new as i32);
    Ok(json!({"old": old, "new": new}))
}

/// Adds the RPCs.
pub fn add(def: ModuleDef, core: CoreCell) -> ModuleDef {
    let (c1, c2) = (core.clone(), core);
    def.rpc(
        "corex.debug",
        "Shows or sets the log level: corex.debug [level].",
        debug,
    )
    .rpc(
        "corex.list_sockets",
        "Lists the listening sockets.",
        move |_| {
            let core = core_of(&c1)?;
            let list = core.rpc_call("core.sockets_list", &[])?;
            // core.sockets_list: one socket as a struct (Kamailio's shape),
            // several as a list.
            let socks = match list.get("socket") {
                Some(Json::Array(a)) => a.clone(),
                Some(o @ Json::Object(_)) => vec![o.clone()],
                _ => Vec::new(),
            };
            Ok(Json::Array(
                socks
                    .iter()
                    .map(|s| {
                        let addr = s.get("address").cloned().unwrap_or(Json::Null);
                        let mut o = json!({
                            "PROTO": s.get("proto").cloned().unwrap_or(Json::Null),
                            "NAME": addr.clone(),
                            "ADDRLIST": {"ADDR": addr},
                            "PORT": s.get("port").cloned().unwrap_or(Json::Null),
                            "MCAST": "no",
                            "MHOMED": "no",
                        });
                        if let (Some(a), Some(m)) = (s.get("advertise"), o.as_object_mut()) {
                            m.insert("ADVERTISE".into(), a.clone());
                        }
                        if let (Some(n), Some(m)) = (s.get("sockname"), o.as_object_mut()) {
                            m.insert("SOCKNAME".into(), n.clone());
                        }
                        o
                    })
                    .collect(),
            ))
        },
    )
    .rpc(
        "corex.list_aliases",
        "Lists the host aliases (alias=).",
        move |_| {
            let core = core_of(&c2)?;
            Ok(Json::Array(
                core.aliases()
                    .into_iter()
                    .map(|(h, p)| json!({"PROTO": "*", "ADDR": h, "PORT": p.unwrap_or(0)}))
                    .collect(),
            ))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_level() {
        let before = log::level();
        assert_eq!(debug(&[]).ok(), Some(json!({"debug": before})));
        assert!(debug(&[json!("x")]).is_err());
        assert!(debug(&[json!(-9)]).is_err());
        log::set_level(before);
    }
}
