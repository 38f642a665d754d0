//! The tls module's RPC methods: `tls.info` (connection counts),
//! `tls.list` (the open TLS connections), `tls.options` (the settings in
//! force) and `tls.reload` (read `tls.cfg` and the files it names again,
//! for the connections made from then on), with Kamailio's field names.

use crate::runtime::Runtime;
use crate::tls::{TlsConfigs, TlsParams};
use crate::transport::TcpConns;
use sr_sdk::exports::ModuleDef;
use sr_sdk::prelude::{json, Json, Proto, RpcError};
use std::sync::{Arc, Mutex, Weak};

/// The connection table, once the server runs.
fn conns(rt: &Weak<Runtime>) -> Option<Arc<TcpConns>> {
    rt.upgrade()?.transport.get()?.tcp.clone()
}

fn lifetime(rt: &Weak<Runtime>) -> u64 {
    rt.upgrade()
        .map_or(120, |r| r.settings.tcp_connection_lifetime)
}

/// Adds the RPC methods; `params` are the module's parameters.
pub(crate) fn add(def: ModuleDef, rt: Weak<Runtime>, params: Arc<Mutex<TlsParams>>) -> ModuleDef {
    let (rt1, rt2, rt3) = (rt.clone(), rt.clone(), rt.clone());
    let (p1, p2) = (params.clone(), params);
    def.rpc(
        "tls.info",
        "Returns internal tls related info.",
        move |_| {
            let (max, open) = match (conns(&rt1), rt1.upgrade()) {
                (Some(t), Some(r)) => (
                    r.settings.tcp_max_connections,
                    t.all().iter().filter(|c| c.proto == Proto::Tls).count(),
                ),
                (_, Some(r)) => (r.settings.tcp_max_connections, 0),
                _ => (0, 0),
            };
            Ok(json!({
                "max_connections": max,
                "opened_connections": open,
                "clear_text_write_queued_bytes": 0,
            }))
        },
    )
    .rpc(
        "tls.list",
        "List currently open TLS connections",
        move |_| {
            let Some(t) = conns(&rt2) else {
                return Ok(Json::Array(Vec::new()));
            };
            let default_life = lifetime(&rt2);
            let mut all = t.all();
            all.sort_by_key(|c| c.id);
            let list = all
                .iter()
                .filter(|c| c.proto == Proto::Tls && c.usable())
                .map(|c| {
                    let own = c.lifetime_ms.load(std::sync::atomic::Ordering::Relaxed);
                    let life = if own > 0 { own / 1000 } else { default_life };
                    let left = life.saturating_sub(c.idle_for().as_secs());
                    let st = c.tls_state();
                    let cipher = st
                        .as_ref()
                        .and_then(|s| crate::tls_cert::cipher(s.suite))
                        .map_or_else(
                            || "unknown".to_string(),
                            |x| x.description().trim_end_matches('\n').to_string(),
                        );
                    let state = match &st {
                        Some(_) => "established",
                        None if c.accepted_tls() => "tls_accept",
                        None => "tls_connect",
                    };
                    json!({
                        "id": c.id,
                        "timeout": left,
                        "src_ip": c.peer.ip().to_string(),
                        "src_port": c.peer.port(),
                        "dst_ip": c.local.ip().to_string(),
                        "dst_port": c.local.port(),
                        "cipher": cipher,
                        "ct_wq_size": 0,
                        "enc_rd_buf": 0,
                        "flags": 0,
                        "state": state,
                    })
                })
                .collect();
            Ok(Json::Array(list))
        },
    )
    .rpc(
        "tls.options",
        "Dumps all the tls config options.",
        move |_| {
            let p = p1
                .lock()
                .map_err(|_| RpcError::new(500, "tls parameters lock poisoned"))?
                .clone();
            let b = &p.base;
            Ok(json!({
                "force_run": 0,
                "method": b.method,
                "verify_certificate": i64::from(b.verify_certificate),
                "verify_depth": 9,
                "require_certificate": i64::from(b.require_certificate),
                "private_key": b.private_key,
                "ca_list": b.ca_list,
                "certificate": b.certificate,
                "cipher_list": "",
                "session_cache": 0,
                "session_id": "",
                "config": p.config,
                "log": 3,
                "debug": 3,
                "connection_timeout": lifetime(&rt3),
                "disable_compression": 1,
                "ssl_release_buffers": -1,
                "ssl_freelist_max": -1,
                "ssl_max_send_fragment": -1,
                "ssl_read_ahead": 0,
                "send_close_notify": 1,
                "low_mem_threshold1": -1,
                "low_mem_threshold2": -1,
                "ct_wq_max": 10_485_760,
                "con_ct_wq_max": 65536,
                "ct_wq_blk_size": 4096,
            }))
        },
    )
    .rpc("tls.reload", "Reload TLS configuration file", move |_| {
        let p = p2
            .lock()
            .map_err(|_| RpcError::new(500, "tls parameters lock poisoned"))?
            .clone();
        if p.config.is_empty() {
            return Err(RpcError::new(500, "No TLS configuration file configured"));
        }
        let new: TlsConfigs = crate::tls::build(&p).map_err(|e| {
            sr_sdk::lm_err!("tls.reload: {e}");
            RpcError::new(
                500,
                "Error while loading TLS configuration file (consult server log)",
            )
        })?;
        let Some(t) = conns(&rt) else {
            return Err(RpcError::new(500, "TLS is not running"));
        };
        let had_server = t.tls_configs().map(|c| c.server.is_some()).unwrap_or(false);
        if had_server && new.server.is_none() {
            return Err(RpcError::new(
                500,
                "No server listening socket found for one of TLS domains (consult server log)",
            ));
        }
        t.set_tls_configs(new);
        sr_sdk::lm_info!("tls.reload: TLS configuration successfully loaded");
        Ok(Json::Null)
    })
}
