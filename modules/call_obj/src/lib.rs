//! Module `call_obj` (Kamailio's): numbers calls from a ring of integers.
//!
//! - params `start` and `end` (both required, above 0): the range;
//! - `call_obj_get(pv)`: the next free number (see [`ring::Ring::get`])
//!   for this Call-ID, written to `pv` as text; -1 when none is free;
//! - `call_obj_free(num)`: frees it (a free one too); -1 when out of the
//!   range or not a number;
//! - RPCs `call_obj.free num`, `call_obj.free_all`, `call_obj.stats`,
//!   `call_obj.list duration [limit]` (the calls taken at least
//!   `duration` seconds ago, the newest `limit` of them).
#![forbid(unsafe_code)]

pub mod ring;

use ring::Ring;
use sr_sdk::fixup::Assign;
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_opt_str};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The module's state: the range parameters, then the ring built from
/// them at start.
struct CallObj {
    start: Arc<std::sync::atomic::AtomicI64>,
    end: Arc<std::sync::atomic::AtomicI64>,
    ring: OnceLock<Mutex<Ring>>,
}

impl CallObj {
    fn ring(&self) -> Option<std::sync::MutexGuard<'_, Ring>> {
        Some(
            self.ring
                .get()?
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// A number as Kamailio's `str2int` reads it: digits only.
fn number(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Lines as Kamailio's RPC printf gives them: one is a string, more an
/// array.
fn lines(mut v: Vec<String>) -> Json {
    if v.len() == 1 {
        return Json::String(v.remove(0));
    }
    Json::Array(v.into_iter().map(Json::String).collect())
}

fn get(c: &CallObj, ctx: &mut Ctx<'_>, out: &Fixed) -> i32 {
    let Ok(callid) = ctx.msg.msg().call_id().map(|c| c.trim().to_string()) else {
        lm_err!("call_obj_get: cannot get the Call-ID");
        return -1;
    };
    if callid.is_empty() {
        return -1;
    }
    let Some(n) = c.ring().and_then(|mut r| r.get(now_ms(), &callid)) else {
        lm_err!("call_obj_get: no free objects available");
        return -1;
    };
    let Fixed::Pv(pv) = out else {
        return -1;
    };
    match Assign::assign(&**pv, ctx, Value::Str(n.to_string().into())) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("call_obj_get: setting the result failed: {e}");
            -1
        }
    }
}

fn free(c: &CallObj, text: &str) -> bool {
    let Some(n) = number(text) else {
        lm_err!("call_obj: cannot convert {text} to a number");
        return false;
    };
    let ok = c.ring().is_some_and(|mut r| r.free(n));
    if !ok {
        lm_err!("call_obj: object {n} out of range");
    }
    ok
}

fn rpc_stats(c: &CallObj) -> Result<Json, RpcError> {
    let r = c
        .ring()
        .ok_or_else(|| RpcError::new(500, "cannot get statistics for module"))?;
    let total = r.end() - r.start() + 1;
    let pct = 100.0 * r.assigned() as f64 / total as f64;
    Ok(lines(vec![
        format!("Start: {}  End: {}", r.start(), r.end()),
        format!("Total: {total}  Assigned: {}  ({pct:.2}%)", r.assigned()),
    ]))
}

fn rpc_list(c: &CallObj, p: &[Json]) -> Result<Json, RpcError> {
    let usage = || {
        RpcError::new(
            400,
            "requires arguments for duration number (and optionally limit)",
        )
    };
    // Read as C ints: one out of their range is negative, as Kamailio's
    // conversion makes it.
    let int = |i: usize, what: &str| {
        param_int(p, i, what)
            .map(|v| i64::from(i32::try_from(v).unwrap_or(i32::MIN)))
            .map_err(|_| usage())
    };
    let duration = int(0, "duration")?;
    let limit = if p.len() > 1 { int(1, "limit")? } else { 0 };
    if duration < 0 {
        return Err(RpcError::new(
            400,
            "duration argument shouldn't be negative",
        ));
    }
    if limit < 0 {
        return Err(RpcError::new(400, "limit argument shouldn't be negative"));
    }
    let now = now_ms();
    let dur = (duration as u64).saturating_mul(1000);
    if now < dur {
        return Err(RpcError::new(400, "duration is too long"));
    }
    let r = c
        .ring()
        .ok_or_else(|| RpcError::new(500, "error getting call list"))?;
    let (n, listed) = r.taken_before(now - dur, limit as usize);
    let mut out = vec![format!("Number of calls: {n}")];
    if limit > 0 && (limit as usize) < n {
        out.push(format!("Showing only: {limit}"));
    }
    out.extend(
        listed
            .into_iter()
            .map(|(num, ms, cid)| format!("{num}  ts: {ms}  Call-ID: {cid}")),
    );
    Ok(lines(out))
}

/// The module definition.
pub fn module() -> ModuleDef {
    let c = Arc::new(CallObj {
        start: params::int_cell(0),
        end: params::int_cell(0),
        ring: OnceLock::new(),
    });
    let (c1, c2, c3, c4, c5, c6, c7) = (
        c.clone(),
        c.clone(),
        c.clone(),
        c.clone(),
        c.clone(),
        c.clone(),
        c.clone(),
    );
    ModuleDef::new("call_obj")
        .param("start", ParamKind::Int, params::int(&c.start))
        .param("end", ParamKind::Int, params::int(&c.end))
        .on_init(move |_| {
            let ring = Ring::new(params::get_int(&c1.start), params::get_int(&c1.end))?;
            let _ = c1.ring.set(Mutex::new(ring));
            Ok(())
        })
        .cmd(
            "call_obj_get",
            1,
            RouteType::ANY,
            Some(fixup::f(fixup::pvar)),
            move |ctx, p| get(&c2, ctx, &p[0]),
        )
        .cmd(
            "call_obj_free",
            1,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            move |ctx, p| {
                let s = p[0].str(ctx).into_owned();
                if free(&c3, &s) {
                    1
                } else {
                    -1
                }
            },
        )
        .rpc(
            "call_obj.free",
            "Free an object so it can be assigned again",
            move |p| {
                let s = param_opt_str(p, 0)
                    .ok_or_else(|| RpcError::new(400, "required object number argument"))?;
                if number(&s).is_none() {
                    return Err(RpcError::new(400, "cannot convert string to number"));
                }
                if !free(&c4, &s) {
                    return Err(RpcError::new(500, "error freeing object"));
                }
                Ok(Json::Null)
            },
        )
        .rpc(
            "call_obj.stats",
            "Show statistics about module objects",
            move |_| rpc_stats(&c5),
        )
        .rpc("call_obj.free_all", "Free all objects at once", move |_| {
            if let Some(mut r) = c6.ring() {
                r.free_all();
            }
            Ok(Json::Null)
        })
        .rpc(
            "call_obj.list",
            "Get a list of objects with a longer duration (in seconds) than a number",
            move |p| rpc_list(&c7, p),
        )
}
