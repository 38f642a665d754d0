//! Module `blst` (Kamailio's): the core's destination blocklist from the
//! script. `blst_add([timeout])` and `blst_add_retry_after(min, max)`
//! blocklist the source of the current message, `blst_del()` and
//! `blst_is_blocklisted()` remove and look it up, and
//! `blst_set_ignore`/`blst_clear_ignore` (`blst_rpl_*` for local replies)
//! choose the errors that must not blocklist where the message is sent.
//!
//! With `use_dst_blocklist` off, as in Kamailio: `blst_add` does nothing
//! and succeeds, the lookups and `blst_del` fail, each with a warning.
#![forbid(unsafe_code)]

use sr_sdk::dst_blocklist::{retry_after, DstBlocklist, ADM_PROHIBITED};
use sr_sdk::lm_warn;
use sr_sdk::prelude::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The blocklist and the current message's source, or the warning.
fn source<'a>(ctx: &'a Ctx<'_>, what: &str) -> Option<(&'a DstBlocklist, Proto, SocketAddr)> {
    match ctx.core.dst_blocklist() {
        Some(b) => Some((b, ctx.msg.rcv.proto, ctx.msg.rcv.src)),
        None => {
            lm_warn!("blst: {what}: blocklist support disabled");
            None
        }
    }
}

/// Adds the source for `secs` seconds (the default expiry for 0).
fn add(ctx: &Ctx<'_>, secs: u64, what: &str) -> i32 {
    if let Some((b, proto, src)) = source(ctx, what) {
        let t = Some(Duration::from_secs(secs));
        if b.force_add(proto, src, ADM_PROHIBITED, t, Instant::now())
            .is_err()
        {
            lm_warn!("blst: {what}: the blocklist is full");
        }
    }
    1
}

/// The ignore mask of forwarded requests, or of local replies.
fn mask<'a>(ctx: &'a mut Ctx<'_>, reply: bool) -> &'a mut u8 {
    if reply {
        &mut ctx.msg.reply_flags.blst_imask
    } else {
        &mut ctx.msg.fwd_flags.blst_imask
    }
}

/// The flags parameter of the ignore functions (all errors without one).
fn flags_of(ctx: &mut Ctx<'_>, p: &[Fixed]) -> u8 {
    p.first().map_or(0xff, |f| (f.int(ctx) & 0xff) as u8)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let any = RouteType::ANY;
    let int = || Some(fixup::f(fixup::igp));
    let mut def = ModuleDef::new("blst")
        .cmd("blst_add", 0, any, None, |ctx, _| add(ctx, 0, "blst_add"))
        .cmd("blst_add", 1, any, int(), |ctx, p| {
            let secs = p[0].int(ctx).max(0) as u64;
            add(ctx, secs, "blst_add")
        })
        .cmd("blst_add_retry_after", 2, any, int(), |ctx, p| {
            let (min, max) = (p[0].int(ctx).max(0) as u64, p[1].int(ctx).max(0) as u64);
            let Some(ra) = retry_after(ctx.msg.msg()) else {
                return -1;
            };
            let secs = if ra < min {
                min
            } else if ra > max {
                max
            } else {
                ra
            };
            add(ctx, secs, "blst_add_retry_after")
        })
        .cmd("blst_del", 0, any, None, |ctx, _| {
            match source(ctx, "blst_del") {
                Some((b, proto, src)) if b.remove(proto, src, Instant::now()) => 1,
                _ => -1,
            }
        })
        .cmd("blst_is_blocklisted", 0, any, None, |ctx, _| {
            match source(ctx, "blst_is_blocklisted") {
                Some((b, proto, src)) if b.check(proto, src, Instant::now()) != 0 => 1,
                _ => -1,
            }
        });
    for (name, reply, set) in [
        ("blst_set_ignore", false, true),
        ("blst_clear_ignore", false, false),
        ("blst_rpl_set_ignore", true, true),
        ("blst_rpl_clear_ignore", true, false),
    ] {
        for n in [0, 1] {
            let fx = if n == 0 { None } else { int() };
            def = def.cmd(name, n, any, fx, move |ctx, p| {
                let f = flags_of(ctx, p);
                let m = mask(ctx, reply);
                if set {
                    *m |= f;
                } else {
                    *m &= !f;
                }
                1
            });
        }
    }
    def
}
