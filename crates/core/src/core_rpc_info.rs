//! Kamailio's informational core RPC commands: `core.echo`, `core.printi`,
//! `core.prints`, `core.arg`, `core.pwd`, `core.runinfo`, `core.info`,
//! `core.flags`, `core.ppdefines`, `core.ppdefines_full`, `core.psa`,
//! `core.aliases_list`, `core.tcp_options`, `core.tcp_info`,
//! `core.udp4_raw_info`, `core.shmmem`, `stats.fetchn`,
//! `system.methodSignature` — in the shapes `kamcmd` shows for Kamailio.

use crate::runtime::Runtime;
use serde_json::json;
use sr_sdk::prelude::*;
use sr_sdk::RpcError;
use std::sync::Weak;

use crate::core_module::rt_of;

/// What siprouter is built with, in Kamailio's flag names where they mean
/// the same.
const FLAGS: &str = "USE_TCP, USE_TLS, DISABLE_NAGLE, USE_DNS_CACHE, USE_WEBSOCKET";

/// Seconds as Kamailio's `utime_days`: `1d 2h 3m 4s`.
fn days(s: u64) -> String {
    format!(
        "{}d {}h {}m {}s",
        s / 86400,
        s % 86400 / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// The parameters as they came, each a value of its own (`core.echo`).
fn echo(p: &[Json]) -> Json {
    Json::Array(p.to_vec())
}

/// The process's memory as Kamailio's shared-memory figures (siprouter
/// has one heap for every thread, no pool of a fixed size): `total` the
/// address space (`VmSize`), `used` and `real_used` what is resident
/// (`VmRSS`), `free` the difference, `max_used` the resident peak
/// (`VmHWM`).
fn heap() -> Json {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let (rss, peak, limit) = (kb("VmRSS:"), kb("VmHWM:"), kb("VmSize:"));
    json!({
        "total": limit,
        "free": limit.saturating_sub(rss),
        "used": rss,
        "real_used": rss,
        "max_used": peak,
        "fragments": 0,
    })
}

/// Adds the commands to the core's module.
pub fn add(def: ModuleDef, w: Weak<Runtime>) -> ModuleDef {
    let w_ = |w: &Weak<Runtime>| w.clone();
    let (w1, w2, w3, w4, w5, w6) = (w_(&w), w_(&w), w_(&w), w_(&w), w_(&w), w_(&w));
    def.rpc("core.echo", "Returns back its parameters.", |p| Ok(echo(p)))
        .rpc(
            "core.prints",
            "Returns the strings given as parameters.",
            |p| Ok(echo(p)),
        )
        .rpc(
            "core.printi",
            "Returns the integers given as parameters.",
            |p| {
                p.iter()
                    .map(|v| match v {
                        Json::Number(n) => n
                            .as_i64()
                            .map(|i| json!(i))
                            .ok_or_else(|| RpcError::new(400, "Invalid Parameter Value")),
                        Json::String(s) => s
                            .trim()
                            .parse::<i64>()
                            .map(|i| json!(i))
                            .map_err(|_| RpcError::new(400, "Invalid Parameter Value")),
                        _ => Err(RpcError::new(400, "Invalid Parameter Value")),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Json::Array)
            },
        )
        .rpc(
            "core.arg",
            "Returns the list of command line arguments.",
            |_| {
                Ok(Json::Array(
                    std::env::args_os()
                        .map(|a| Json::String(a.to_string_lossy().into_owned()))
                        .collect(),
                ))
            },
        )
        .rpc("core.pwd", "Returns the working directory.", |_| {
            std::env::current_dir()
                .map(|d| json!(d.display().to_string()))
                .map_err(|e| RpcError::new(500, format!("getcwd failed: {e}")))
        })
        .rpc("core.runinfo", "Returns runtime info.", move |_| {
            let rt = rt_of(&w1)?;
            let up = rt.uptime().as_secs();
            let ctime = sr_sdk::localtime::ctime;
            Ok(json!({
                "name": "siprouter",
                "version": rt.version().trim_start_matches("siprouter ").to_string(),
                "sourceid": "unknown",
                "compiler": "rustc",
                "compiled": "",
                "time_now": ctime(crate::script::state::now_secs()),
                "time_started": ctime(crate::script::state::start_time()),
                "uptime_secs": up,
                "utime_days": days(up),
            }))
        })
        .rpc(
            "core.info",
            "Verbose info: version, compiler, flags.",
            move |_| {
                let rt = rt_of(&w2)?;
                Ok(json!({
                    "version": rt.version(),
                    "id": "unknown",
                    "compiler": "rustc",
                    "compiled": "",
                    "flags": FLAGS,
                }))
            },
        )
        .rpc("core.flags", "Returns the compile flags.", |_| {
            Ok(json!(FLAGS))
        })
        .rpc(
            "core.ppdefines",
            "Returns the preprocessor defines.",
            move |_| {
                let rt = rt_of(&w3)?;
                let d = rt.defines.get().cloned().unwrap_or_default();
                Ok(Json::Array(d.into_iter().map(|(k, _)| json!(k)).collect()))
            },
        )
        .rpc(
            "core.ppdefines_full",
            "Returns the preprocessor defines with their values.",
            move |_| {
                let rt = rt_of(&w4)?;
                let d = rt.defines.get().cloned().unwrap_or_default();
                Ok(Json::Array(
                    d.into_iter()
                        .map(|(k, v)| {
                            json!({
                                "name": k,
                                "type": i32::from(v.is_some()),
                                "value": v.unwrap_or_else(|| "none".into()),
                            })
                        })
                        .collect(),
                ))
            },
        )
        .rpc(
            "core.psa",
            "The threads (Kamailio's processes) with their rank.",
            move |p| {
                let rt = rt_of(&w5)?;
                let x = rt.rpc_call("core.psx", p)?;
                let ps = x.as_array().cloned().unwrap_or_default();
                let n = ps.len();
                Ok(Json::Array(
                    ps.into_iter()
                        .enumerate()
                        .map(|(i, t)| {
                            // main 0, the receivers 1.., the timer -1.
                            let rank = match i {
                                0 => 0,
                                i if i + 1 == n => -1,
                                i => i as i64,
                            };
                            json!({
                                "index": t["IDX"], "pid": t["PID"], "status": 1,
                                "rank": rank, "description": t["DSC"],
                            })
                        })
                        .collect(),
                ))
            },
        )
        .rpc("core.aliases_list", "The names that are us.", move |_| {
            let rt = rt_of(&w6)?;
            let aliases: Vec<Json> = rt
                .settings
                .aliases
                .iter()
                .map(|(h, p)| json!({"proto": "*", "address": h, "port": p.unwrap_or(0)}))
                .collect();
            let aliases = match aliases.len() {
                1 => json!({ "alias": aliases[0] }),
                _ => json!({ "alias": aliases }),
            };
            Ok(json!({"myself_callbacks": "no", "aliases": aliases}))
        })
        .rpc(
            "core.shmmem",
            "The process's memory, as Kamailio's shared memory figures.",
            |_| Ok(heap()),
        )
        .rpc(
            "core.udp4_raw_info",
            "Raw UDP sockets (none in siprouter).",
            |_| Ok(json!({"udp4_raw": 0, "udp4_raw_mtu": 1500, "udp4_raw_ttl": 64})),
        )
        .rpc(
            "system.methodSignature",
            "Returns the signature of a method (not implemented, as Kamailio).",
            |_| Err(RpcError::new(500, "Not Implemented Yet")),
        )
        .pipe(|d| tcp_and_stats(d, w))
}

/// `core.tcp_options`, `core.tcp_info`, `stats.fetchn`.
fn tcp_and_stats(def: ModuleDef, w: Weak<Runtime>) -> ModuleDef {
    let (w1, w2, w3) = (w.clone(), w.clone(), w);
    def.rpc("core.tcp_options", "The TCP settings.", move |_| {
        let rt = rt_of(&w1)?;
        let s = &rt.settings;
        Ok(json!({
            "connect_timeout": s.tcp_connect_timeout,
            "send_timeout": 10,
            "connection_lifetime": s.tcp_connection_lifetime,
            "max_connections(soft)": s.tcp_max_connections,
            "max_tls_connections(soft)": s.tcp_max_connections,
            "no_connect": 0,
            "fd_cache": 0,
            "async": 1,
            "connect_wait": 1,
            "conn_wq_max": 32768,
            "wq_max": 10485760,
            "defer_accept": 0,
            "delayed_ack": 0,
            "syncnt": 0,
            "linger2": 0,
            "keepalive": 1,
            "keepidle": 0,
            "keepintvl": 0,
            "keepcnt": 0,
            "crlf_ping": 1,
            "accept_aliases": 0,
            "alias_flags": 1,
            "new_conn_alias_flags": 2,
        }))
    })
    .rpc("core.tcp_info", "TCP connection counts.", move |_| {
        let rt = rt_of(&w2)?;
        let s = &rt.settings;
        let conns = rt
            .transport
            .get()
            .and_then(|t| t.tcp.clone())
            .map(|t| t.all())
            .unwrap_or_default();
        let tls = conns
            .iter()
            .filter(|c| c.proto == sr_sdk::Proto::Tls)
            .count();
        Ok(json!({
            "readers": s.tcp_children.unwrap_or(s.children),
            "max_connections": s.tcp_max_connections,
            "max_tls_connections": s.tcp_max_connections,
            "opened_connections": conns.len() - tls,
            "opened_tls_connections": tls,
            "write_queued_bytes": 0,
        }))
    })
    .rpc(
        "stats.fetchn",
        "Statistics as a map of group.name to number.",
        move |p| {
            let rt = rt_of(&w3)?;
            let x = rt.rpc_call("stats.fetch", p)?;
            let m = x
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| {
                            let n = v.as_str().and_then(|s| s.parse::<i64>().ok());
                            (k.clone(), n.map_or(v.clone(), |n| json!(n)))
                        })
                        .collect::<serde_json::Map<_, _>>()
                })
                .unwrap_or_default();
            Ok(Json::Object(m))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_in_days() {
        assert_eq!(days(2), "0d 0h 0m 2s");
        assert_eq!(days(90061), "1d 1h 1m 1s");
    }
}
