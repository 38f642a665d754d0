//! The `ws.*` RPC methods, with Kamailio's names and result shapes.

use crate::Ws;
use sr_sdk::prelude::*;
use sr_sdk::WsConnInfo;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The most connections `ws.dump` lists (Kamailio's limit).
const DUMP_MAX: usize = 50;

/// `ws.dump [order]`: one line per connection, as Kamailio writes them,
/// in `order`: `id_hash` (by id, the default), `used_desc` (most
/// recently used first) or `used_asc`.
pub fn dump(mut list: Vec<WsConnInfo>, order: Option<&str>) -> Result<Json, RpcError> {
    match order.unwrap_or("id_hash") {
        "id_hash" => list.sort_by_key(|w| w.id),
        "used_desc" => list.sort_by_key(|w| w.idle),
        "used_asc" => list.sort_by_key(|w| std::cmp::Reverse(w.idle)),
        o => {
            return Err(RpcError::new(
                500,
                format!("Bad order '{o}': id_hash, used_desc or used_asc"),
            ))
        }
    }
    let total = list.len();
    let lines: Vec<Json> = list
        .iter()
        .take(DUMP_MAX)
        .map(|w| {
            Json::String(format!(
                "{}: {}:{} -> {}:{} (state: OPEN, last used {}s ago, sub-protocol: sip)",
                w.id,
                w.proto,
                host_port(w.peer),
                w.proto,
                host_port(w.local),
                w.idle.as_secs()
            ))
        })
        .collect();
    Ok(json!({
        "connections": lines,
        "info": {
            "wscounter": total,
            "truncated": if total > DUMP_MAX { "yes" } else { "no" },
        },
    }))
}

fn host_port(a: std::net::SocketAddr) -> String {
    match a {
        std::net::SocketAddr::V4(v) => v.to_string(),
        std::net::SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

fn rpc_id(p: &[Json]) -> Result<u64, RpcError> {
    p.first()
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
        .ok_or_else(|| RpcError::invalid_params("a connection id is required"))
}

fn unknown() -> RpcError {
    RpcError::new(500, "Unknown connection ID")
}

/// Adds the `ws.*` methods.
pub fn add(m: ModuleDef, w: &Arc<Ws>) -> ModuleDef {
    let (wd, wc, wp, wq, we, wf) = (
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
    );
    m.rpc(
        "ws.dump",
        "The open WebSocket connections: ws.dump [id_hash|used_desc|used_asc].",
        move |p| {
            let list = wd.conns().map(|c| c.ws_conns()).unwrap_or_default();
            dump(list, p.first().and_then(Json::as_str))
        },
    )
    .rpc(
        "ws.close",
        "Closes a WebSocket connection: ws.close <id>.",
        move |p| {
            let id = rpc_id(p)?;
            let c = wc.conns().ok_or_else(unknown)?;
            wc.close(c.as_ref(), id, 1000, "Normal closure")
                .map_err(|_| unknown())?;
            Ok(Json::Null)
        },
    )
    .rpc("ws.ping", "Sends a Ping frame: ws.ping <id>.", move |p| {
        let id = rpc_id(p)?;
        let c = wp.conns().ok_or_else(unknown)?;
        c.ws_ping(id, false, b"").map_err(|_| unknown())?;
        Ok(Json::Null)
    })
    .rpc("ws.pong", "Sends a Pong frame: ws.pong <id>.", move |p| {
        let id = rpc_id(p)?;
        let c = wq.conns().ok_or_else(unknown)?;
        c.ws_ping(id, true, b"").map_err(|_| unknown())?;
        Ok(Json::Null)
    })
    .rpc(
        "ws.disable",
        "Refuses new WebSocket handshakes (503).",
        move |_| {
            we.disabled.store(true, Ordering::Relaxed);
            Ok(Json::Null)
        },
    )
    .rpc(
        "ws.enable",
        "Accepts WebSocket handshakes again.",
        move |_| {
            wf.disabled.store(false, Ordering::Relaxed);
            Ok(Json::Null)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn conn(id: u64, idle: u64) -> WsConnInfo {
        WsConnInfo {
            id,
            peer: "192.0.2.1:40000".parse().unwrap(),
            local: "[2001:db8::1]:443".parse().unwrap(),
            proto: Proto::Wss,
            idle: Duration::from_secs(idle),
            silent: Duration::from_secs(idle),
        }
    }

    #[test]
    fn dump_lines_order_and_limit() {
        let d = dump(vec![conn(2, 5), conn(1, 9)], None).unwrap();
        assert_eq!(
            d["connections"][0],
            "1: wss:192.0.2.1:40000 -> wss:[2001:db8::1]:443 (state: OPEN, last used 9s ago, sub-protocol: sip)"
        );
        assert_eq!(d["info"]["truncated"], "no");
        let d = dump(vec![conn(2, 5), conn(1, 9)], Some("used_desc")).unwrap();
        assert!(d["connections"][0].as_str().unwrap().starts_with("2: "));
        assert!(dump(vec![], Some("sideways")).is_err());
        let many: Vec<WsConnInfo> = (0..60).map(|i| conn(i, 1)).collect();
        let d = dump(many, None).unwrap();
        assert_eq!(d["connections"].as_array().unwrap().len(), 50);
        assert_eq!(
            (
                d["info"]["wscounter"].clone(),
                d["info"]["truncated"].clone()
            ),
            (json!(60), json!("yes"))
        );
    }
}
