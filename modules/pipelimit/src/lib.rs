//! Module `pipelimit` (Kamailio's): named pipes that limit how many
//! requests pass per `timer_interval` — `pl_check(name)` counts and
//! decides (TAILDROP, RED, NETWORK, FEEDBACK), `pl_drop()` answers 503
//! with an optional Retry-After; pipes come from the script
//! (`pl_check(name, algo, limit)`), the `pl_pipes` table or RPC.
#![forbid(unsafe_code)]

pub mod feedback;
pub mod load;
pub mod pipes;

use feedback::{rpc_int, Feedback};
use pipes::{Algo, Pipes};
use sr_sdk::exports::params::{get_int, get_str, int, int_cell, str_cell, string};
use sr_sdk::prelude::*;
use sr_sdk::serde_json::{json, Value as Json};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The module's state.
struct State {
    pipes: Mutex<Pipes>,
    fb: Arc<Feedback>,
    reply_code: u16,
    reply_reason: String,
}

fn rpc_err(code: i64, msg: impl Into<String>) -> RpcError {
    RpcError::new(code, msg.into())
}

/// Loads `pl_pipes` rows: `(pipeid, algorithm, plimit)`.
fn load_table(
    core: &dyn Core,
    url: &str,
    table: &str,
    cols: [&str; 3],
) -> Result<Vec<(String, Algo, i64)>, String> {
    let pool = sr_sdk::db::DbPool::open(core, url).map_err(|e| format!("pipelimit: {url}: {e}"))?;
    let rows = pool
        .with(|c| c.query(table, &[], &cols, None))
        .map_err(|e| format!("pipelimit: {table}: {e}"))?;
    let mut out = Vec::new();
    for r in 0..rows.len() {
        let id = rows.get(r, cols[0]).as_string();
        let algo = rows.get(r, cols[1]).as_string();
        let (Some(id), Some(algo)) = (id, algo) else {
            return Err(format!(
                "pipelimit: {table}: a row without pipe id or algorithm"
            ));
        };
        let a = Algo::parse(&algo).ok_or_else(|| {
            format!("pipelimit: {table}: pipe '{id}': unknown algorithm '{algo}'")
        })?;
        if out.iter().any(|(x, _, _): &(String, Algo, i64)| *x == id) {
            return Err(format!("pipelimit: {table}: pipe '{id}' twice"));
        }
        out.push((id, a, rows.get(r, cols[2]).as_i64().unwrap_or(0)));
    }
    Ok(out)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let timer_interval = int_cell(10);
    let timer_mode = int_cell(0);
    let reply_code = int_cell(503);
    let reply_reason = str_cell("Server Unavailable");
    let db_url = str_cell("");
    let table = str_cell("pl_pipes");
    let c_id = str_cell("pipeid");
    let c_limit = str_cell("plimit");
    let c_algo = str_cell("algorithm");
    let hash_size = int_cell(6);
    let load_fetch = int_cell(1);
    let clean_unused = int_cell(0);
    let state: Arc<OnceLock<State>> = Arc::new(OnceLock::new());
    let fb = Arc::new(Feedback::default());
    let fb_init = fb.clone();
    let mut def = ModuleDef::new("pipelimit")
        .param("timer_interval", ParamKind::Int, int(&timer_interval))
        .param("timer_mode", ParamKind::Int, int(&timer_mode))
        .param("reply_code", ParamKind::Int, int(&reply_code))
        .param("reply_reason", ParamKind::Str, string(&reply_reason))
        .param("db_url", ParamKind::Str, string(&db_url))
        .param("plp_table_name", ParamKind::Str, string(&table))
        .param("plp_pipeid_column", ParamKind::Str, string(&c_id))
        .param("plp_limit_column", ParamKind::Str, string(&c_limit))
        .param("plp_algorithm_column", ParamKind::Str, string(&c_algo))
        .param("hash_size", ParamKind::Int, int(&hash_size))
        .param("load_fetch", ParamKind::Int, int(&load_fetch))
        .param("clean_unused", ParamKind::Int, int(&clean_unused));
    let s_init = state.clone();
    def = def.on_init(move |core| {
        let interval = get_int(&timer_interval);
        if interval <= 0 {
            return Err("pipelimit: timer_interval must be positive".into());
        }
        if get_int(&hash_size) <= 0 {
            return Err("pipelimit: hash_size must be positive".into());
        }
        let mut pipes = Pipes::default();
        let url = get_str(&db_url);
        if !url.is_empty() {
            let (id, li, al) = (get_str(&c_id), get_str(&c_limit), get_str(&c_algo));
            for (name, a, limit) in load_table(core, &url, &get_str(&table), [&id, &al, &li])? {
                pipes.map.insert(name, pipes::Pipe::new(a, limit));
            }
        }
        let _ = s_init.set(State {
            pipes: Mutex::new(pipes),
            fb: fb_init.clone(),
            reply_code: get_int(&reply_code).clamp(100, 699) as u16,
            reply_reason: get_str(&reply_reason),
        });
        let (tick, fetch, clean) = (
            s_init.clone(),
            get_int(&load_fetch) != 0,
            get_int(&clean_unused),
        );
        core.add_timer(
            "pipelimit",
            Duration::from_secs(interval as u64),
            Arc::new(move || {
                let Some(st) = tick.get() else { return };
                let mut net = 0;
                if fetch {
                    let rate = st.fb.tick();
                    net = load::bytes_waiting();
                    if let Ok(mut p) = st.pipes.lock() {
                        p.drop_rate = rate;
                    }
                }
                if let Ok(mut p) = st.pipes.lock() {
                    p.refresh(clean, net);
                }
            }),
        );
        Ok(())
    });
    let spve = || Some(fixup::f(fixup::spve));
    let st = state.clone();
    def = def.cmd("pl_check", 1, RouteType::ANY, spve(), move |ctx, a| {
        let name = a[0].str(ctx).into_owned();
        st.get()
            .and_then(|s| s.pipes.lock().ok().map(|mut p| p.check(&name)))
            .unwrap_or(-1)
    });
    let st = state.clone();
    def = def.cmd("pl_check", 3, RouteType::ANY, spve(), move |ctx, a| {
        let name = a[0].str(ctx).into_owned();
        let algo = a[1].str(ctx).into_owned();
        let limit = a[2].int(ctx);
        if name.is_empty() {
            return -1;
        }
        st.get()
            .and_then(|s| {
                s.pipes
                    .lock()
                    .ok()
                    .map(|mut p| p.check_with(&name, &algo, limit))
            })
            .unwrap_or(-1)
    });
    let st = state.clone();
    def = def.cmd("pl_active", 1, RouteType::ANY, spve(), move |ctx, a| {
        let name = a[0].str(ctx).into_owned();
        match st
            .get()
            .and_then(|s| s.pipes.lock().ok().map(|p| p.map.contains_key(&name)))
        {
            Some(true) => 1,
            _ => -1,
        }
    });
    let drop_routes =
        RouteType::REQUEST | RouteType::BRANCH | RouteType::FAILURE | RouteType::ONSEND;
    for n in 0..=2usize {
        let st = state.clone();
        def = def.cmd("pl_drop", n, drop_routes, spve(), move |ctx, a| {
            let Some(s) = st.get() else { return -1 };
            let (min, max) = match n {
                0 => (0, 0),
                // Kamailio reads a 0 as a missing value: 5 seconds.
                1 => {
                    let v = a[0].int(ctx).max(0);
                    let v = if v == 0 { 5 } else { v };
                    (v, v)
                }
                _ => (a[0].int(ctx).max(0), a[1].int(ctx).max(0)),
            };
            if min > 0 && max > 0 {
                let secs = if max <= min {
                    min
                } else {
                    min + (load::random_u64() % (max - min + 1) as u64) as i64
                };
                ctx.msg
                    .reply_headers
                    .push_str(&format!("Retry-After: {secs}\r\n"));
            }
            match ctx
                .core
                .get_api(sr_mod_sl::SL_API)
                .and_then(|a| a.downcast::<sr_mod_sl::SlApi>().ok())
            {
                Some(sl) => sl.reply(ctx, s.reply_code, &s.reply_reason),
                None => {
                    lm_err!("pl_drop: the sl module is not loaded");
                    0
                }
            }
        });
    }
    let st = state.clone();
    def = def.rpc(
        "pl.stats",
        "Each pipe's load and last interval's count.",
        move |_p| {
            let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
            let p = s.pipes.lock().map_err(|_| rpc_err(500, "Internal error"))?;
            let mut v: Vec<_> = p.map.iter().filter(|(_, x)| x.algo != Algo::Nop).collect();
            v.sort_by(|a, b| a.0.cmp(b.0));
            Ok(Json::Array(
                v.iter()
                    .map(|(n, x)| {
                        json!(format!(
                            "PIPE: id={n} load={} counter={}",
                            x.load, x.last_counter
                        ))
                    })
                    .collect(),
            ))
        },
    );
    let st = state.clone();
    def = def.rpc(
        "pl.get_pipes",
        "Each pipe's algorithm, limit and count.",
        move |_p| {
            let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
            let p = s.pipes.lock().map_err(|_| rpc_err(500, "Internal error"))?;
            let mut v: Vec<_> = p.map.iter().collect();
            v.sort_by(|a, b| a.0.cmp(b.0));
            Ok(Json::Array(
                v.iter()
                    .map(|(n, x)| {
                        json!(format!(
                            "PIPE: id={n} algorithm={} limit={} counter={}",
                            x.algo.name(),
                            x.limit,
                            x.counter
                        ))
                    })
                    .collect(),
            ))
        },
    );
    let st = state.clone();
    def = def.rpc(
        "pl.list",
        "The pipes (or one), with their counters.",
        move |params| {
            let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
            let p = s.pipes.lock().map_err(|_| rpc_err(500, "Internal error"))?;
            let only = params.first().and_then(|v| v.as_str()).map(str::to_string);
            if let Some(n) = &only {
                if !p.map.contains_key(n) {
                    return Err(rpc_err(400, format!("Unknown pipe id {n}")));
                }
            }
            let mut v: Vec<_> = p
                .map
                .iter()
                .filter(|(n, x)| x.algo != Algo::Nop && only.as_ref().is_none_or(|o| o == *n))
                .collect();
            v.sort_by(|a, b| a.0.cmp(b.0));
            Ok(Json::Array(
                v.iter()
                    .map(|(n, x)| {
                        json!({"name": n, "algorithm": x.algo.name(), "limit": x.limit,
                           "counter": x.counter, "last_counter": x.last_counter,
                           "unused_intervals": x.unused})
                    })
                    .collect(),
            ))
        },
    );
    let st = state.clone();
    def = def.rpc(
        "pl.set_pipe",
        "Sets a pipe's algorithm and limit: id algo limit.",
        move |params| {
            let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
            let id = sr_sdk::rpc::param_str(params, 0, "pipe id")?;
            let algo = sr_sdk::rpc::param_str(params, 1, "algorithm")?;
            let limit = rpc_int(params, 2)?;
            let a = Algo::parse(&algo).ok_or_else(|| rpc_err(400, "Unknown algorithm"))?;
            let mut p = s.pipes.lock().map_err(|_| rpc_err(500, "Internal error"))?;
            let pipe = p
                .map
                .get_mut(&id)
                .ok_or_else(|| rpc_err(400, format!("Unknown pipe id {id}")))?;
            pipe.algo = a;
            pipe.limit = limit;
            // FEEDBACK pipes share one setpoint: their limits must agree.
            let fb: Vec<i64> = p
                .map
                .values()
                .filter(|x| x.algo == Algo::Feedback)
                .map(|x| x.limit)
                .collect();
            if fb.iter().any(|l| !(0..=100).contains(l) || *l != fb[0]) {
                return Err(rpc_err(400, "Feedback limits don't match"));
            }
            s.fb.set_setpoint(fb.first().map_or(-0.01, |l| 0.01 * *l as f64));
            Ok(Json::Null)
        },
    );
    let st = state.clone();
    def = def.rpc(
        "pl.reset_pipe",
        "Zeroes a pipe's counters: id.",
        move |params| {
            let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
            let id = sr_sdk::rpc::param_str(params, 0, "pipe id")?;
            let mut p = s.pipes.lock().map_err(|_| rpc_err(500, "Internal error"))?;
            let pipe = p
                .map
                .get_mut(&id)
                .ok_or_else(|| rpc_err(404, format!("Unknown pipe id {id}")))?;
            pipe.counter = 0;
            pipe.last_counter = 0;
            pipe.load = 0;
            pipe.unused = 0;
            Ok(Json::Null)
        },
    );
    let st = state.clone();
    def = def.rpc("pl.rm_pipe", "Removes a pipe: id.", move |params| {
        let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
        let id = sr_sdk::rpc::param_str(params, 0, "pipe id")?;
        let mut p = s.pipes.lock().map_err(|_| rpc_err(500, "Internal error"))?;
        p.map
            .remove(&id)
            .map(|_| Json::Null)
            .ok_or_else(|| rpc_err(404, format!("Pipe not removed - {id}")))
    });
    let st = state.clone();
    feedback::add_rpcs(
        def,
        "pl",
        fb,
        Arc::new(move |rate| {
            if let Some(mut p) = st.get().and_then(|s| s.pipes.lock().ok()) {
                p.drop_rate = rate;
            }
        }),
    )
}
