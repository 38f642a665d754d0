//! Module `benchmark` (Kamailio's): named timers around sections of the
//! script.
//!
//! - `bm_start_timer(name)` / `bm_log_timer(name)`: the time between the
//!   two (µs, wall clock) is added to the timer's statistics; every
//!   `granularity` runs a line is logged at `loglevel` with the period's
//!   and the global figures; `$BM_time_diff` is this worker's last time;
//! - params `enable` (1: all timers on; 0: only those enabled by RPC;
//!   -1 as 0), `granularity` (1), `loglevel` (2, `L_INFO`), `register`
//!   (a timer made before any function names it);
//! - RPCs `benchmark.enable_global`, `.enable_timer`, `.granularity`,
//!   `.loglevel`, `.timer_list`, `.timer_name_list`.
//!
//! A timer's start is the worker's own (Kamailio's is the process's).
#![forbid(unsafe_code)]

pub mod timers;

use sr_sdk::fixup::{Arg, FixupEnv, FixupFn};
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_str};
use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use timers::{Timer, Timers};

/// The module's state.
struct Bm {
    enable_global: AtomicI64,
    granularity: AtomicI64,
    loglevel: AtomicI64,
    timers: Mutex<Timers>,
}

impl Bm {
    fn timers(&self) -> MutexGuard<'_, Timers> {
        self.timers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn active(&self, t: &Timer) -> bool {
        self.enable_global.load(Ordering::Relaxed) > 0 || t.enabled
    }

    fn start(&self, id: u32) -> i32 {
        let on = self
            .timers()
            .list
            .get(id as usize)
            .is_some_and(|t| self.active(t));
        if on {
            STARTS.with(|s| {
                let mut s = s.borrow_mut();
                if s.len() <= id as usize {
                    s.resize(id as usize + 1, 0);
                }
                s[id as usize] = now_us();
            });
        }
        1
    }

    fn log(&self, id: u32) -> i32 {
        let granularity = self.granularity.load(Ordering::Relaxed).max(1) as u64;
        let line = {
            let mut timers = self.timers();
            let Some(t) = timers.list.get_mut(id as usize) else {
                return -1;
            };
            if !(self.enable_global.load(Ordering::Relaxed) > 0 || t.enabled) {
                return 1;
            }
            let start = STARTS.with(|s| s.borrow().get(id as usize).copied().unwrap_or(0));
            let diff = now_us().wrapping_sub(start);
            // (Kamailio keeps it in an int.)
            LAST_DIFF.with(|d| *d.borrow_mut() = i64::from(diff as i32));
            t.add(diff, granularity)
        };
        if let Some(line) = line {
            let level = self.loglevel.load(Ordering::Relaxed) as i32;
            if sr_sdk::log::enabled(level) {
                sr_sdk::log::write(level, "benchmark", format_args!("{line}"));
            }
        }
        1
    }

    /// A timer as `benchmark.timer_list` gives it.
    fn rpc_struct(&self, t: &Timer) -> Json {
        let granularity = self.granularity.load(Ordering::Relaxed);
        let mut m = sr_sdk::serde_json::Map::new();
        m.insert("name".into(), Json::from(t.name.clone()));
        let state = if self.active(t) {
            "enabled"
        } else {
            "disabled"
        };
        m.insert("state".into(), Json::from(state));
        m.insert("id".into(), Json::from(t.id));
        m.insert("granularity".into(), Json::from(granularity));
        m.insert("period_sum".into(), Json::from(t.period_sum.to_string()));
        m.insert("period_min".into(), Json::from(t.period_min.to_string()));
        m.insert("period_max".into(), Json::from(t.period_max.to_string()));
        if granularity > 0 {
            let media = t.period_sum as f64 / granularity as f64;
            m.insert("period_media".into(), number(media));
        }
        m.insert("calls".into(), Json::from(t.calls.to_string()));
        m.insert("sum".into(), Json::from(t.sum.to_string()));
        m.insert("global_min".into(), Json::from(t.global_min.to_string()));
        m.insert("global_max".into(), Json::from(t.global_max.to_string()));
        if t.calls > 0 {
            m.insert("global_media".into(), number(t.sum as f64 / t.calls as f64));
        }
        Json::Object(m)
    }
}

/// A double as Kamailio's JSON writer gives it: a whole number without
/// a fraction.
fn number(v: f64) -> Json {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        Json::from(v as i64)
    } else {
        Json::from(v)
    }
}

thread_local! {
    /// This worker's start time of each timer (µs since the epoch).
    static STARTS: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    /// This worker's last measured time (`$BM_time_diff`).
    static LAST_DIFF: RefCell<i64> = const { RefCell::new(0) };
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The timer-name fixup: a constant name, registered now; the id kept.
fn timer_fixup(bm: Arc<Bm>) -> FixupFn {
    Arc::new(move |env: &dyn FixupEnv, i: usize, arg: &Arg| {
        let Fixed::Str(name) = fixup::const_str(env, i, arg)? else {
            return Err("benchmark: the timer name must be a constant".into());
        };
        bm.timers()
            .id(&name, true)
            .map(|id| Fixed::Int(i64::from(id)))
            .ok_or_else(|| format!("benchmark: cannot register timer [{name}]"))
    })
}

fn id_of(p: &[Fixed]) -> u32 {
    match p.first() {
        Some(Fixed::Int(i)) => *i as u32,
        _ => u32::MAX,
    }
}

/// An integer RPC parameter in `lo..=hi`.
fn rpc_int(p: &[Json], i: usize, lo: i64, hi: i64) -> Result<i64, RpcError> {
    let v = param_int(p, i, "value").map_err(|_| RpcError::new(500, "Invalid Parameters"))?;
    if v < lo || v > hi {
        return Err(RpcError::new(500, "Invalid Parameter Value"));
    }
    Ok(v)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let bm = Arc::new(Bm {
        enable_global: AtomicI64::new(0),
        granularity: AtomicI64::new(1),
        loglevel: AtomicI64::new(sr_sdk::log::L_INFO as i64),
        timers: Mutex::new(Timers::default()),
    });
    let int_param = |cell: fn(&Bm) -> &AtomicI64| {
        let bm = bm.clone();
        move |v: ParamValue| {
            let n = match v {
                ParamValue::Int(n) => n,
                ParamValue::Str(s) => s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("'{s}' is not an integer"))?,
            };
            cell(&bm).store(n, Ordering::Relaxed);
            Ok(())
        }
    };
    let p_enable = int_param(|b| &b.enable_global);
    let p_granularity = int_param(|b| &b.granularity);
    let p_loglevel = int_param(|b| &b.loglevel);
    let (b_reg, b_start, b_log, b_fx) = (bm.clone(), bm.clone(), bm.clone(), bm.clone());
    let (r1, r2, r3, r4, r5, r6) = (
        bm.clone(),
        bm.clone(),
        bm.clone(),
        bm.clone(),
        bm.clone(),
        bm,
    );
    let routes = RouteType::REQUEST
        | RouteType::FAILURE
        | RouteType::ONREPLY
        | RouteType::BRANCH
        | RouteType::LOCAL;
    let fx = timer_fixup(b_fx);
    ModuleDef::new("benchmark")
        .param("enable", ParamKind::Int, p_enable)
        .param("granularity", ParamKind::Int, p_granularity)
        .param("loglevel", ParamKind::Int, p_loglevel)
        .param("register", ParamKind::Str, move |v| {
            let name = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(n) => n.to_string(),
            };
            let id = b_reg
                .timers()
                .id(&name, true)
                .ok_or_else(|| format!("benchmark: cannot find timer [{name}]"))?;
            lm_info!("timer [{name}] registered: {id}");
            Ok(())
        })
        .cmd(
            "bm_start_timer",
            1,
            routes,
            Some(fx.clone()),
            move |_, p| b_start.start(id_of(p)),
        )
        .cmd("bm_log_timer", 1, routes, Some(fx), move |_, p| {
            b_log.log(id_of(p))
        })
        .pv("BM_time_diff", |_, _| {
            Value::Int(LAST_DIFF.with(|d| *d.borrow()))
        })
        .rpc(
            "benchmark.enable_global",
            "Enable/disable benchmarking",
            move |p| {
                let v = rpc_int(p, 0, -1, 1)?;
                r1.enable_global.store(v, Ordering::Relaxed);
                Ok(Json::Null)
            },
        )
        .rpc(
            "benchmark.enable_timer",
            "Enable/disable a benchmark timer",
            move |p| {
                let name = param_str(p, 0, "name")
                    .map_err(|_| RpcError::new(500, "Invalid Parameters"))?;
                let v = rpc_int(p, 1, 0, 1)?;
                let mut t = r2.timers();
                let id = t
                    .id(&name, false)
                    .ok_or_else(|| RpcError::new(500, "Register timer failure"))?;
                t.list[id as usize].enabled = v == 1;
                Ok(Json::Null)
            },
        )
        .rpc(
            "benchmark.granularity",
            "Set benchmarking granularity",
            move |p| {
                let v = rpc_int(p, 0, 1, i64::from(i32::MAX))?;
                r3.granularity.store(v, Ordering::Relaxed);
                Ok(Json::Null)
            },
        )
        .rpc(
            "benchmark.loglevel",
            "Set benchmarking log level",
            move |p| {
                let v = rpc_int(p, 0, -1, 1)?;
                r4.loglevel.store(v, Ordering::Relaxed);
                Ok(Json::Null)
            },
        )
        .rpc("benchmark.timer_list", "List all timers", move |_| {
            let list: Vec<Timer> = r5.timers().list.clone();
            let mut out: Vec<Json> = list.iter().map(|t| r5.rpc_struct(t)).collect();
            Ok(match out.len() {
                0 => Json::Null,
                1 => out.remove(0),
                _ => Json::Array(out),
            })
        })
        .rpc(
            "benchmark.timer_name_list",
            "List a timer based on its name",
            move |p| {
                let name = param_str(p, 0, "name")
                    .map_err(|_| RpcError::new(400, "Invalid timer name"))?;
                let t = {
                    let mut timers = r6.timers();
                    let id = timers
                        .id(&name, false)
                        .ok_or_else(|| RpcError::new(500, "Register timer failure"))?;
                    timers.list[id as usize].clone()
                };
                Ok(r6.rpc_struct(&t))
            },
        )
}
