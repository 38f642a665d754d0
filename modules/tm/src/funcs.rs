//! The script functions, with Kamailio's names, parameters and return
//! codes.

use crate::ctx::{has_cell, tx, with_cell, TxCtx};
use crate::engine::Engine;
use crate::relay::{NewTran, NextHop};
use sr_sdk::prelude::*;
use sr_sdk::RouteId;
use std::sync::Arc;

const REQ: RouteType = RouteType(RouteType::REQUEST.0 | RouteType::FAILURE.0);
/// Where a relay may be: also the branch-failure route (new branches of
/// the transaction, as the outbound registrar example does).
const RELAY: RouteType =
    RouteType(RouteType::REQUEST.0 | RouteType::FAILURE.0 | RouteType::BRANCH_FAILURE.0);
pub(crate) const ANY_TM: RouteType = RouteType(
    RouteType::REQUEST.0
        | RouteType::FAILURE.0
        | RouteType::TM_ONREPLY.0
        | RouteType::BRANCH.0
        | RouteType::BRANCH_FAILURE.0
        | RouteType::ONEVENT.0,
);

pub(crate) fn b(v: bool) -> i32 {
    if v {
        1
    } else {
        -1
    }
}

/// The reply the current route is about: the one being processed in
/// onreply_route, the winning one in failure_route.
pub fn current_reply_code(ctx: &mut Ctx<'_>) -> Option<u16> {
    if let Some(r) = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.reply.as_ref()) {
        return Some(r.code);
    }
    if !ctx.msg.is_request() {
        return ctx.msg.msg().status();
    }
    with_cell(ctx, |c| c.proxy.final_sent()).filter(|c| *c > 0)
}

fn reply_fixup() -> Option<fixup::FixupFn> {
    Some(Arc::new(|env: &dyn fixup::FixupEnv, i, a: &Arg| {
        if i == 0 {
            fixup::igp(env, i, a)
        } else {
            // (Kamailio's fixup_var_str: one variable, or the text as
            // written.)
            fixup::var_str(env, i, a)
        }
    }))
}

fn route_fixup(kind: RouteType) -> Option<fixup::FixupFn> {
    Some(fixup::route(kind))
}

fn branch_failure_fixup() -> Option<fixup::FixupFn> {
    Some(Arc::new(|env: &dyn fixup::FixupEnv, _i, a: &Arg| {
        let name = format!("tm:branch-failure:{}", a.text());
        env.route_id(RouteType::EVENT, &name)
            .map(Fixed::Route)
            .ok_or_else(|| format!("event_route[{name}] is not defined"))
    }))
}

fn route_of(p: &Fixed) -> Option<RouteId> {
    match p {
        Fixed::Route(r) => Some(*r),
        _ => None,
    }
}

fn code_reason(ctx: &mut Ctx<'_>, p: &[Fixed]) -> Option<(u16, String)> {
    let c = p[0].int(ctx);
    if !(100..700).contains(&c) {
        lm_err!("tm: invalid status code {c}");
        return None;
    }
    Some((c as u16, p[1].str(ctx).into_owned()))
}

pub(crate) fn hop(ctx: &mut Ctx<'_>, p: &[Fixed], proto: Option<Proto>) -> NextHop {
    NextHop {
        host: p.first().map(|x| x.str(ctx).into_owned()),
        port: p.get(1).map(|x| x.str(ctx).into_owned()),
        proto,
    }
}

/// `t_relay_to`'s proxy, `[proto:]host[:port]` (an IPv6 host in
/// brackets).
fn proxy_hop(a: &str) -> Option<NextHop> {
    let a = a.trim();
    let (proto, rest) = match a.split_once(':') {
        Some((p, r)) if !p.starts_with('[') => match Proto::parse(p) {
            Some(x) => (Some(x), r),
            None => (None, a),
        },
        _ => (None, a),
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r.split_once(']')?;
        (
            format!("[{h}]"),
            after.strip_prefix(':').map(str::to_string),
        )
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (rest.to_string(), None),
        }
    };
    if host.is_empty() || port.as_deref().is_some_and(|p| p.parse::<u16>().is_err()) {
        return None;
    }
    Some(NextHop {
        host: Some(host),
        port,
        proto,
    })
}

/// Relays with `t_relay_to`'s flags for this transaction.
fn relay_to_flags(e: &Engine, ctx: &mut Ctx<'_>, h: NextHop, flags: i64) -> i32 {
    let t = tx(ctx.msg);
    if flags & 1 != 0 {
        t.auto_inv_100 = Some(false);
    }
    if flags & 2 != 0 {
        t.no_internal_reply = true;
    }
    e.relay(ctx, &h)
}

/// Adds every tm function to the module.
pub fn export(def: ModuleDef, e: &Arc<Engine>) -> ModuleDef {
    let int = Some(fixup::f(fixup::igp));
    let spve = Some(fixup::f(fixup::spve));
    let mut def = def;
    // Relaying.
    for (name, proto) in [
        ("t_relay", None),
        ("t_relay_to_udp", Some(Proto::Udp)),
        ("t_relay_to_tcp", Some(Proto::Tcp)),
        ("t_relay_to_tls", Some(Proto::Tls)),
    ] {
        let (e0, e2) = (e.clone(), e.clone());
        def = def
            .cmd(name, 0, RELAY, None, move |ctx, _| {
                let h = NextHop {
                    proto,
                    ..Default::default()
                };
                e0.relay(ctx, &h)
            })
            .cmd(name, 2, RELAY, spve.clone(), move |ctx, p| {
                let h = hop(ctx, p, proto);
                e2.relay(ctx, &h)
            });
    }
    // t_relay_to([proxy][, flags]): `proxy` as `[proto:]host[:port]`;
    // flags 1: no 100 Trying, 2: no reply on an internal error, 4: no DNS
    // failover (none is done).
    let (e0, e1, e2) = (e.clone(), e.clone(), e.clone());
    def = def
        .cmd("t_relay_to", 0, RELAY, None, move |ctx, _| {
            e0.relay(ctx, &NextHop::default())
        })
        .cmd("t_relay_to", 1, RELAY, spve.clone(), move |ctx, p| {
            let a = p[0].str(ctx).into_owned();
            match a.trim().parse::<i64>() {
                Ok(flags) => relay_to_flags(&e1, ctx, NextHop::default(), flags),
                Err(_) => match proxy_hop(&a) {
                    Some(h) => e1.relay(ctx, &h),
                    None => {
                        lm_err!("t_relay_to: bad proxy '{a}'");
                        -1
                    }
                },
            }
        })
        .cmd("t_relay_to", 2, RELAY, spve.clone(), move |ctx, p| {
            let a = p[0].str(ctx).into_owned();
            let flags = p[1].int(ctx);
            let Some(h) = proxy_hop(&a) else {
                lm_err!("t_relay_to: bad proxy '{a}'");
                return -1;
            };
            relay_to_flags(&e2, ctx, h, flags)
        });
    let e1 = e.clone();
    def = def.cmd("t_replicate", 1, REQ, spve.clone(), move |ctx, p| {
        let uri = p[0].str(ctx).into_owned();
        let saved = ctx.msg.dst_uri.replace(uri);
        let rc = replicate(&e1, ctx);
        ctx.msg.dst_uri = saved;
        rc
    });
    let e1 = e.clone();
    def = def.cmd(
        "t_relay_cancel",
        0,
        RouteType::REQUEST,
        None,
        move |ctx, _| {
            if ctx.msg.msg().method() != Some(Method::Cancel) {
                return 1;
            }
            e1.relay_cancel(ctx, true)
        },
    );
    // Transactions and replies.
    let e1 = e.clone();
    def = def.cmd("t_newtran", 0, RouteType::REQUEST, None, move |ctx, _| {
        if ctx.msg.msg().method() == Some(Method::Ack) {
            return match e1.check_trans(ctx) {
                0 => 0,
                _ => 1,
            };
        }
        match e1.newtran(ctx) {
            NewTran::Created(_) | NewTran::Own(_) => 1,
            NewTran::Retransmission => 0,
            NewTran::Error => -1,
        }
    });
    let e1 = e.clone();
    let rt_reply = RouteType::REQUEST | RouteType::FAILURE | RouteType::TM_ONREPLY;
    def = def.cmd("t_reply", 2, rt_reply, reply_fixup(), move |ctx, p| {
        let Some((c, r)) = code_reason(ctx, p) else {
            return -1;
        };
        e1.t_reply(ctx, c, &r)
    });
    let e1 = e.clone();
    def = def.cmd("t_send_reply", 2, rt_reply, reply_fixup(), move |ctx, p| {
        let Some((c, r)) = code_reason(ctx, p) else {
            return -1;
        };
        if !has_cell(ctx.msg) {
            match e1.newtran(ctx) {
                NewTran::Created(_) | NewTran::Own(_) => {}
                NewTran::Retransmission => return 0,
                NewTran::Error => return -1,
            }
        }
        e1.t_reply(ctx, c, &r)
    });
    let e1 = e.clone();
    def = def.cmd("t_reply_error", 0, rt_reply, None, move |ctx, _| {
        let (c, r) = ctx.msg.error_reply("TM");
        e1.t_reply(ctx, c, &r)
    });
    let e1 = e.clone();
    def = def.cmd(
        "t_check_trans",
        0,
        RouteType::REQUEST | RouteType::ONREPLY | RouteType::BRANCH | RouteType::FAILURE,
        None,
        move |ctx, _| e1.check_trans(ctx),
    );
    let e1 = e.clone();
    def = def.cmd(
        "t_lookup_request",
        0,
        RouteType::REQUEST,
        None,
        move |ctx, _| {
            let k = crate::table::server_key_of(ctx.msg);
            b(k.and_then(|k| e1.tables.by_key(&k)).is_some())
        },
    );
    for n in [0usize, 1] {
        let e1 = e.clone();
        def = def.cmd(
            "t_lookup_cancel",
            n,
            RouteType::REQUEST,
            int.clone(),
            move |ctx, p| {
                let Some(c) = e1.cancel_target(ctx.msg) else {
                    return -1;
                };
                if p.first().is_some_and(|x| x.int(ctx) == 1) {
                    if let Some(g) = c.take() {
                        ctx.msg.flags |= g.req.flags;
                    }
                }
                1
            },
        );
    }
    // Arming routes.
    def = def
        .cmd(
            "t_on_failure",
            1,
            ANY_TM,
            route_fixup(RouteType::FAILURE),
            |ctx, p| {
                tx(ctx.msg).armed.failure = route_of(&p[0]);
                1
            },
        )
        .cmd(
            "t_on_reply",
            1,
            ANY_TM,
            route_fixup(RouteType::TM_ONREPLY),
            |ctx, p| {
                tx(ctx.msg).armed.reply = route_of(&p[0]);
                1
            },
        )
        .cmd(
            "t_on_branch",
            1,
            ANY_TM,
            route_fixup(RouteType::BRANCH),
            |ctx, p| {
                tx(ctx.msg).armed.branch = route_of(&p[0]);
                1
            },
        )
        .cmd(
            "t_on_branch_failure",
            1,
            ANY_TM,
            branch_failure_fixup(),
            |ctx, p| {
                tx(ctx.msg).armed.branch_failure = route_of(&p[0]);
                1
            },
        )
        .cmd(
            "t_is_set",
            1,
            ANY_TM,
            Some(fixup::f(fixup::const_str)),
            |ctx, p| {
                let what = p[0].str(ctx).into_owned();
                let local = ctx
                    .msg
                    .ext
                    .get::<TxCtx>()
                    .map(|t| t.armed)
                    .unwrap_or_default();
                let cell = with_cell(ctx, |c| c.armed).unwrap_or_default();
                let pick = |a: crate::cell::Armed| match what.as_str() {
                    "failure_route" => a.failure.is_some(),
                    "branch_route" => a.branch.is_some(),
                    "onreply_route" => a.reply.is_some(),
                    "branch_failure_route" => a.branch_failure.is_some(),
                    _ => false,
                };
                b(pick(local) || pick(cell))
            },
        );
    // Inspection.
    def = def
        .cmd(
            "t_check_status",
            1,
            ANY_TM,
            Some(fixup::f(fixup::regexp)),
            |ctx, p| {
                let Some(code) = current_reply_code(ctx) else {
                    return -1;
                };
                match &p[0] {
                    Fixed::Regex(r) => b(r.is_match(&code.to_string())),
                    other => {
                        let s = other.str(ctx).into_owned();
                        b(s == code.to_string())
                    }
                }
            },
        )
        .cmd("t_is_canceled", 0, ANY_TM, None, |ctx, _| {
            b(with_cell(ctx, |c| c.proxy.is_canceled()).unwrap_or(false))
        })
        .cmd("t_is_expired", 0, ANY_TM, None, |ctx, _| {
            b(with_cell(ctx, |c| c.proxy.is_expired()).unwrap_or(false))
        })
        .cmd("t_branch_timeout", 0, ANY_TM, None, |ctx, _| {
            let idx = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.branch);
            b(with_cell(ctx, |c| {
                let i = idx.or(c.proxy.winner());
                i.and_then(|i| c.proxy.branches().get(i))
                    .is_some_and(|x| x.timed_out)
            })
            .unwrap_or(false))
        })
        .cmd("t_branch_replied", 0, ANY_TM, None, |ctx, _| {
            // (The reply being handled does not count yet, as in Kamailio.)
            let idx = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.branch);
            b(with_cell(ctx, |c| {
                let i = idx.or(c.proxy.winner());
                i.and_then(|i| c.proxy.branches().get(i))
                    .is_some_and(|x| x.last_received > 0)
            })
            .unwrap_or(false))
        })
        .cmd("t_any_timeout", 0, ANY_TM, None, |ctx, _| {
            b(with_cell(ctx, |c| c.proxy.branches().iter().any(|x| x.timed_out)).unwrap_or(false))
        })
        .cmd("t_any_replied", 0, ANY_TM, None, |ctx, _| {
            b(with_cell(ctx, |c| {
                c.proxy.branches().iter().any(|x| x.last_received > 0)
            })
            .unwrap_or(false))
        })
        .cmd("t_grep_status", 1, ANY_TM, int.clone(), |ctx, p| {
            let code = p[0].int(ctx);
            b(with_cell(ctx, |c| {
                c.proxy
                    .branches()
                    .iter()
                    .any(|x| i64::from(x.final_code) == code || i64::from(x.last_received) == code)
            })
            .unwrap_or(false))
        });
    // Per-transaction settings.
    for n in [1usize, 2] {
        def = def.cmd("t_set_fr", n, ANY_TM, int.clone(), |ctx, p| {
            let inv = p[0].int(ctx).max(0) as u64;
            let non = p.get(1).map_or(0, |x| x.int(ctx).max(0) as u64);
            set_fr(ctx, inv, non);
            1
        });
    }
    def = def
        .cmd("t_reset_fr", 0, ANY_TM, None, |ctx, _| {
            let t = tx(ctx.msg);
            t.overrides.fr = 0;
            t.overrides.fr_inv = 0;
            1
        })
        .cmd("t_set_retr", 2, ANY_TM, int.clone(), |ctx, p| {
            let (t1, t2) = (p[0].int(ctx).max(0) as u64, p[1].int(ctx).max(0) as u64);
            let t = tx(ctx.msg);
            t.overrides.t1 = t1;
            t.overrides.t2 = t2;
            1
        })
        .cmd("t_reset_retr", 0, ANY_TM, None, |ctx, _| {
            let t = tx(ctx.msg);
            t.overrides.t1 = 0;
            t.overrides.t2 = 0;
            1
        })
        .cmd("t_set_max_lifetime", 2, ANY_TM, int.clone(), |ctx, p| {
            let (i, n) = (p[0].int(ctx).max(0) as u64, p[1].int(ctx).max(0) as u64);
            let t = tx(ctx.msg);
            t.overrides.max_inv = i;
            t.overrides.max_noninv = n;
            1
        })
        .cmd("t_reset_max_lifetime", 0, ANY_TM, None, |ctx, _| {
            let t = tx(ctx.msg);
            t.overrides.max_inv = 0;
            t.overrides.max_noninv = 0;
            1
        })
        .cmd("t_set_disable_6xx", 1, ANY_TM, int.clone(), |ctx, p| {
            let on = p[0].int(ctx) != 0;
            tx(ctx.msg).overrides.disable_6xx = Some(on);
            with_cell(ctx, |c| c.proxy.config_mut().disable_6xx = on);
            1
        })
        // siprouter does no DNS failover (the next SRV or address record
        // after a failed one), so there is nothing to turn off.
        .cmd("t_set_disable_failover", 1, ANY_TM, int.clone(), |_, _| 1)
        .cmd("t_set_auto_inv_100", 1, ANY_TM, int.clone(), |ctx, p| {
            let on = p[0].int(ctx) != 0;
            tx(ctx.msg).auto_inv_100 = Some(on);
            1
        })
        .cmd(
            "t_set_disable_internal_reply",
            1,
            ANY_TM,
            int.clone(),
            |ctx, p| {
                tx(ctx.msg).no_internal_reply = p[0].int(ctx) != 0;
                1
            },
        )
        .cmd("t_drop_replies", 0, RouteType::FAILURE, None, |ctx, _| {
            with_cell(ctx, |c| c.proxy.drop_replies(true));
            1
        })
        .cmd(
            "t_drop_replies",
            1,
            RouteType::FAILURE,
            spve.clone(),
            |ctx, p| {
                let mode = p[0].str(ctx).into_owned();
                match mode.as_str() {
                    "n" => {}
                    "l" => {
                        with_cell(ctx, |c| c.proxy.drop_replies(false));
                    }
                    _ => {
                        with_cell(ctx, |c| c.proxy.drop_replies(true));
                    }
                }
                1
            },
        )
        .cmd("t_release", 0, RouteType::REQUEST, None, |ctx, _| {
            b(has_cell(ctx.msg))
        });
    crate::contacts::export(def, e)
}

/// `t_set_fr(fr_inv, fr)` (milliseconds; a 0 `fr` leaves the non-INVITE
/// timeout): the current transaction's final-response timeouts, or the
/// one about to be made.
pub(crate) fn set_fr(ctx: &mut Ctx<'_>, inv: u64, non: u64) {
    let t = tx(ctx.msg);
    t.overrides.fr_inv = inv;
    if non > 0 {
        t.overrides.fr = non;
    }
    let ov = t.overrides;
    with_cell(ctx, |c| {
        if ov.fr_inv > 0 {
            c.proxy.config_mut().fr_inv = std::time::Duration::from_millis(ov.fr_inv);
        }
        if ov.fr > 0 {
            let d = std::time::Duration::from_millis(ov.fr);
            let t = &mut c.proxy.config_mut().timers;
            t.timer_b = d;
            t.timer_f = d;
        }
    });
}

/// `t_replicate`'s relay: to `$du` and the appended branches, with no 100
/// Trying and no internal error reply (a failed copy is the script's
/// business, not the caller's).
pub fn replicate(e: &Engine, ctx: &mut Ctx<'_>) -> i32 {
    let t = tx(ctx.msg);
    t.auto_inv_100 = Some(false);
    let no_reply = std::mem::replace(&mut t.no_internal_reply, true);
    let rc = e.relay(ctx, &NextHop::default());
    tx(ctx.msg).no_internal_reply = no_reply;
    rc
}
