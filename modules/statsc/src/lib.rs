//! Module `statsc` (Kamailio's): statistics sampled every `interval`
//! seconds into a ring of `items` samples (see [`ring`]), reported by the
//! RPC `statsc.report list|diff [name|all [limit]]`.
//!
//! Parameters `interval` (540, Kamailio's default), `items` (100),
//! `track` (`report=statistic;...`, repeatable); `shm.free`, `shm.used`
//! and `shm.real_used` are tracked from the start (siprouter has no
//! shared-memory pool: they read 0). `statsc_reset()` logs "not
//! implemented yet", as Kamailio's.
#![forbid(unsafe_code)]

pub mod ring;

use ring::Ring;
use sr_sdk::db::now;
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_opt_str};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

struct Statsc {
    interval: Arc<std::sync::atomic::AtomicI64>,
    items: Arc<std::sync::atomic::AtomicI64>,
    tracks: RwLock<Vec<(String, String)>>,
    ring: OnceLock<Mutex<Ring>>,
}

fn report(s: &Statsc, p: &[Json]) -> Result<Json, RpcError> {
    let ring = s
        .ring
        .get()
        .ok_or_else(|| RpcError::new(500, "Statistics collector not initialized"))?
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if ring.steps == 0 {
        return Err(RpcError::new(500, "Nothing collected yet - try later"));
    }
    let cmd = param_opt_str(p, 0).ok_or_else(|| RpcError::new(500, "Missing command parameter"))?;
    let diff = match cmd.as_str() {
        "list" => false,
        "diff" => true,
        _ => return Err(RpcError::new(500, "Invalid command")),
    };
    let name = param_opt_str(p, 1).filter(|n| n != "all");
    let items = ring.times.len() as i64;
    let limit = match p.get(2) {
        Some(_) => param_int(p, 2, "limit").unwrap_or(0),
        None => 0,
    };
    let limit = if (0..=items).contains(&limit) {
        limit as usize
    } else {
        0
    };
    let stats: Vec<Json> = ring
        .tracked
        .iter()
        .filter(|t| name.as_deref().is_none_or(|n| n == t.report))
        .map(|t| {
            let data: Vec<Json> = ring
                .report(t, diff, limit)
                .into_iter()
                .map(|i| match i {
                    Some(i) => serde_json::json!({"timestamp": i.timestamp, "value": i.value, "index": i.index}),
                    None => serde_json::json!({}),
                })
                .collect();
            serde_json::json!({"name": t.report, "data": data})
        })
        .collect();
    Ok(serde_json::json!({"timestamp": now() as u32, "stats": stats}))
}

use sr_sdk::serde_json;

/// The module definition.
pub fn module() -> ModuleDef {
    let s = Arc::new(Statsc {
        interval: params::int_cell(540),
        items: params::int_cell(100),
        tracks: RwLock::new(Vec::new()),
        ring: OnceLock::new(),
    });
    let (st, si, sr) = (s.clone(), s.clone(), s.clone());
    ModuleDef::new("statsc")
        .param("interval", ParamKind::Int, params::int(&s.interval))
        .param("items", ParamKind::Int, params::int(&s.items))
        .param("track", ParamKind::Str, move |v| {
            let text = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(n) => n.to_string(),
            };
            let mut t = st.tracks.write().unwrap_or_else(PoisonError::into_inner);
            // (Kamailio's parameter parser lists them last first.)
            for part in text.trim_end_matches(';').split(';').rev() {
                let (report, stat) = part.split_once('=').unwrap_or((part, ""));
                let (report, stat) = (report.trim(), stat.trim());
                if report.is_empty() {
                    return Err(format!("statsc: bad track value '{text}'"));
                }
                t.push((report.to_string(), stat.to_string()));
            }
            Ok(())
        })
        .on_init(move |core| {
            let items = params::get_int(&si.items);
            if !(1..=100_000).contains(&items) {
                return Err(format!("statsc: items must be 1 to 100000, not {items}"));
            }
            let mut ring = Ring::new(items as usize);
            for (report, stat) in si
                .tracks
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
            {
                ring.track(report, stat);
            }
            let _ = si.ring.set(Mutex::new(ring));
            let interval = params::get_int(&si.interval).max(1) as u64;
            let h = core
                .handle()
                .ok_or("statsc: no core handle for its timer")?;
            let s2 = si.clone();
            core.add_timer(
                "statsc",
                Duration::from_secs(interval),
                Arc::new(move || {
                    let Some(core) = h.upgrade() else { return };
                    let all = core.statistics();
                    let read =
                        |name: &str| all.iter().find(|(_, n, _)| n == name).map(|(_, _, v)| *v);
                    if let Some(r) = s2.ring.get() {
                        r.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .sample(now(), &read);
                    }
                }),
            );
            Ok(())
        })
        .cmd("statsc_reset", 0, RouteType::ANY, None, |_, _| {
            lm_err!("statsc_reset: not implemented yet");
            1
        })
        .rpc(
            "statsc.report",
            "Statistics collector control command",
            move |p| report(&sr, p),
        )
}
