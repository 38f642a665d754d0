//! # maxfwd: Max-Forwards processing
//!
//! Kamailio's `maxfwd` module.
//!
//! - `mf_process_maxfwd_header(n)` (aliases `maxfwd_process(n)`,
//!   `process_maxfwd(n)`): a request without Max-Forwards gets
//!   `Max-Forwards: n` (returns 2); a value above 0 is decremented, and
//!   the result lowered to the `max_limit` parameter if above it (returns
//!   1); a value of 0 returns -1 (the script then answers 483); an
//!   unparsable value returns -2.
//! - `is_maxfwd_lt(n)` (aliases `maxfwd_at_least(n)` and `mf_lowlimit(n)`,
//!   which Kamailio exports with the same handler): 1 when the value (the
//!   new one, if this proxy set or decremented it) is below `n`, -1 when
//!   not, -2 with no header, -3 on a parse error.
//!
//! Parameter: `max_limit` (default 70; 0 disables the cap).
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The Max-Forwards value this proxy wrote into the message, so that
/// `is_maxfwd_lt` sees the new value and a second call does not
/// decrement twice.
#[derive(Debug, Clone, Copy)]
struct Processed {
    value: u32,
    rc: i32,
}

/// The highest value accepted in a Max-Forwards header (RFC 3261 says
/// 0-255 is enough; Kamailio refuses more than 255 as the parameter).
const MAX_PARAM: i64 = 255;

fn process(ctx: &mut Ctx<'_>, n: i64, limit: i64) -> i32 {
    if !ctx.msg.is_request() {
        return -2;
    }
    if let Some(p) = ctx.msg.ext.get::<Processed>() {
        // Already done for this message: report the same outcome.
        return p.rc;
    }
    if !(0..=MAX_PARAM).contains(&n) {
        lm_err!("mf_process_maxfwd_header: invalid value {n} (0-255)");
        return -2;
    }
    // Work out the edit with the message borrowed, then record it.
    let m = ctx.msg.msg();
    let (value, rc, at, end) = match m.header(HeaderName::MaxForwards) {
        None => (n as u32, 2, m.headers_start(), None),
        Some(h) => {
            let Ok(Some(v)) = m.max_forwards() else {
                lm_err!(
                    "mf_process_maxfwd_header: invalid Max-Forwards '{}'",
                    h.value
                );
                return -2;
            };
            if v == 0 {
                ctx.msg.ext.insert(Processed { value: 0, rc: -1 });
                return -1;
            }
            let next = v - 1;
            let capped = if limit > 0 && next as i64 > limit {
                limit as u32
            } else {
                next
            };
            (capped, 1, h.value_start, Some(h.value_end()))
        }
    };
    match end {
        None => {
            let line = format!("Max-Forwards: {value}\r\n");
            ctx.msg.edits.insert(at, line.as_bytes());
        }
        Some(end) => {
            let mut buf = [0; 20];
            let digits = sr_sdk::sip_msg::text::dec(u64::from(value), &mut buf);
            ctx.msg.edits.replace(at, end, digits.as_bytes());
        }
    }
    ctx.msg.ext.insert(Processed { value, rc });
    rc
}

/// The current value: the one this proxy set, else the header's.
fn current(ctx: &Ctx<'_>) -> Result<Option<u32>, ()> {
    if let Some(p) = ctx.msg.ext.get::<Processed>() {
        return Ok(Some(p.value));
    }
    ctx.msg.msg().max_forwards().map_err(|_| ())
}

fn is_lt(ctx: &mut Ctx<'_>, n: i64) -> i32 {
    match current(ctx) {
        Err(()) => -3,
        Ok(None) => -2,
        Ok(Some(v)) if (v as i64) < n => 1,
        Ok(Some(_)) => -1,
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let limit = Arc::new(AtomicI64::new(70));
    let int = Some(fixup::f(fixup::igp));
    let route = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let mut def = ModuleDef::new("maxfwd").param("max_limit", ParamKind::Int, params::int(&limit));
    for name in [
        "mf_process_maxfwd_header",
        "maxfwd_process",
        "process_maxfwd",
    ] {
        let l = limit.clone();
        def = def.cmd(name, 1, RouteType::REQUEST, int.clone(), move |ctx, p| {
            let n = p[0].int(ctx);
            process(ctx, n, l.load(Ordering::Relaxed))
        });
    }
    for name in ["is_maxfwd_lt", "maxfwd_at_least", "mf_lowlimit"] {
        def = def.cmd(name, 1, route, int.clone(), |ctx, p| {
            let n = p[0].int(ctx);
            is_lt(ctx, n)
        });
    }
    def
}
