//! More of tm's script functions: `t_get_status_code()`,
//! `t_retransmit_reply()`, `t_set_no_e2e_cancel_reason(0|1)`,
//! `t_save_lumps()`, `t_forward_nonack*`, `t_use_uac_headers()`,
//! `t_clean()`, `t_is_retr_async_reply()` and `t_uac_send(...)`.

use crate::cell::keep_msg;
use crate::ctx::{has_cell, tx, with_cell, TxCtx};
use crate::engine::Engine;
use crate::funcs::{b, current_reply_code, hop, ANY_TM};
use crate::relay::NextHop;
use crate::rpc_uac::RpcUac;
use crate::table::server_key_of;
use sr_sdk::prelude::*;
use std::sync::Arc;

/// `t_retransmit_reply`: the last reply of this request's transaction
/// sent again; -1 without a transaction or a reply (or for an ACK).
fn retransmit_reply(e: &Engine, ctx: &mut Ctx<'_>) -> i32 {
    if ctx.msg.msg().method() == Some(Method::Ack) {
        lm_warn!("t_retransmit_reply: ACKs transmit no replies");
        return -1;
    }
    let own = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.cell.clone());
    let Some(c) = own.or_else(|| server_key_of(ctx.msg).and_then(|k| e.tables.by_key(&k))) else {
        return -1;
    };
    let now = e.now();
    let mut had = false;
    e.with_guard(ctx.core, &c, |cell| {
        had = cell.proxy.has_reply();
        cell.proxy.on_retransmission(now)
    });
    b(had)
}

/// `t_forward_nonack*`: relays the request of an existing transaction
/// (made by `t_newtran`), without the automatic 100 Trying of `t_relay`.
fn forward_nonack(e: &Engine, ctx: &mut Ctx<'_>, h: NextHop) -> i32 {
    if !has_cell(ctx.msg) {
        lm_err!("t_forward_nonack: no transaction found for request forwarding");
        return -1;
    }
    let t = tx(ctx.msg);
    let saved = t.auto_inv_100.replace(false);
    let rc = e.relay(ctx, &h);
    tx(ctx.msg).auto_inv_100 = saved;
    rc
}

/// `t_save_lumps`: the transaction keeps the request's changes as they
/// are now; a later `t_relay` does not replace them, so failure_route's
/// branches start from them.
fn save_lumps(ctx: &mut Ctx<'_>) -> i32 {
    if ctx.route != RouteType::REQUEST {
        return 1;
    }
    if !has_cell(ctx.msg) {
        lm_err!("t_save_lumps: transaction has not been created yet");
        return -1;
    }
    let Some(r) = keep_msg(ctx.msg) else {
        return -1;
    };
    with_cell(ctx, |c| {
        c.req = r;
        c.lumps_saved = true;
    })
    .map_or(-1, |_| 1)
}

/// Adds the functions.
pub fn export(def: ModuleDef, e: &Arc<Engine>, uac: &Arc<RpcUac>) -> ModuleDef {
    let int = Some(fixup::f(fixup::igp));
    let spve = Some(fixup::f(fixup::spve));
    let mut def = def
        .cmd("t_get_status_code", 0, ANY_TM, None, |ctx, _| {
            current_reply_code(ctx).map_or(-1, i32::from)
        })
        .cmd("t_is_retr_async_reply", 0, ANY_TM, None, |ctx, _| {
            b(with_cell(ctx, |c| c.proxy.is_suspended()).unwrap_or(false))
        })
        .cmd("t_save_lumps", 0, ANY_TM, None, |ctx, _| save_lumps(ctx))
        // siprouter builds the ACKs and CANCELs of a branch from the
        // request sent on it (From and To as changed by the script), what
        // this asks Kamailio to do.
        .cmd("t_use_uac_headers", 0, ANY_TM, None, |_, _| 1)
        // Transactions end by their timers; none outlives them.
        .cmd("t_clean", 0, RouteType::ANY, None, |_, _| 1);
    for name in ["t_set_no_e2e_cancel_reason", "t_disable_e2e_cancel_reason"] {
        def = def.cmd(name, 1, ANY_TM, int.clone(), |ctx, p| {
            let copy = p[0].int(ctx) == 0;
            tx(ctx.msg).e2e_cancel_reason = Some(copy);
            with_cell(ctx, |c| c.e2e_cancel_reason = Some(copy));
            1
        });
    }
    let e1 = e.clone();
    def = def.cmd(
        "t_retransmit_reply",
        0,
        RouteType::REQUEST,
        None,
        move |ctx, _| retransmit_reply(&e1, ctx),
    );
    for (name, proto) in [
        ("t_forward_nonack", None),
        ("t_forward_nonack_udp", Some(Proto::Udp)),
        ("t_forward_nonack_tcp", Some(Proto::Tcp)),
        ("t_forward_nonack_tls", Some(Proto::Tls)),
    ] {
        let e1 = e.clone();
        def = def.cmd(name, 2, RouteType::REQUEST, spve.clone(), move |ctx, p| {
            let h = hop(ctx, p, proto);
            forward_nonack(&e1, ctx, h)
        });
    }
    let e1 = e.clone();
    def = def.cmd(
        "t_forward_nonack_uri",
        0,
        RouteType::REQUEST,
        None,
        move |ctx, _| forward_nonack(&e1, ctx, NextHop::default()),
    );
    let (e1, u1) = (e.clone(), uac.clone());
    def.cmd("t_uac_send", 6, RouteType::ANY, spve, move |ctx, p| {
        let args: Vec<Json> = p
            .iter()
            .map(|x| Json::from(x.str(ctx).into_owned()))
            .collect();
        match u1.send(ctx.core, &e1.uac_timers(), &args, None) {
            Ok(()) => 1,
            Err(err) => {
                lm_err!("t_uac_send: {}", err.message);
                -1
            }
        }
    })
}
