//! # tmx: tm extensions
//!
//! Kamailio's `tmx` module over tm's [`TmApi`]: `t_precheck_trans()`,
//! `t_flush_flags()`, `t_is_branch_route()`, `t_is_failure_route()`,
//! `t_is_reply_route()`, `t_suspend()`, `t_continue(index, label,
//! route)`, and the pseudo-variables `$T_branch_idx`,
//! `$T_reply_code`, `$T_reply_reason`, `$T_reply_ruid`, `$T_req(pv)`, `$T_rpl(pv)` and
//! `$T(name)`. The transaction statistics Kamailio shows under `tmx:`
//! are registered by tm under that group.
#![forbid(unsafe_code)]

mod precheck;

use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::sync::{Arc, OnceLock};

type Api = Arc<OnceLock<Arc<TmApi>>>;

fn api(a: &Api, core: &dyn Core) -> Option<Arc<TmApi>> {
    if let Some(x) = a.get() {
        return Some(x.clone());
    }
    let x = bind::<TmApi>(core, TM_API)?;
    let _ = a.set(x.clone());
    Some(x)
}

fn b(v: bool) -> i32 {
    if v {
        1
    } else {
        -1
    }
}

fn int_or_null(v: Option<i64>) -> Value<'static> {
    v.map_or(Value::Null, Value::Int)
}

/// `t_reply_callid(callid, cseq, code, reason)` and
/// `t_cancel_callid(callid, cseq, flag[, rcode])`: a transaction named by
/// its Call-ID and CSeq number, answered or its branches cancelled.
fn by_callid(def: ModuleDef, a: Api) -> ModuleDef {
    let (r, c3, c4) = (a.clone(), a.clone(), a);
    let mut def = def.cmd("t_reply_callid", 4, RouteType::ANY, None, move |ctx, p| {
        let (callid, cseq) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        let code = p[2].int(ctx);
        let reason = p[3].str(ctx).into_owned();
        let (Some(t), Ok(code)) = (api(&r, ctx.core), u16::try_from(code)) else {
            return -1;
        };
        t.reply_callid(ctx.core, &callid, &cseq, code, &reason)
    });
    for (n, a) in [(3usize, c3), (4, c4)] {
        def = def.cmd("t_cancel_callid", n, RouteType::ANY, None, move |ctx, p| {
            let (callid, cseq) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            let flag = p[2].int(ctx);
            let rcode = p.get(3).map(|x| x.int(ctx));
            match api(&a, ctx.core) {
                Some(t) => t.cancel_callid(ctx.core, &callid, &cseq, flag, rcode),
                None => -1,
            }
        });
    }
    def
}

/// The module definition.
pub fn module() -> ModuleDef {
    let a: Api = Arc::new(OnceLock::new());
    let pre = Arc::new(precheck::Precheck::default());
    let any = RouteType::ANY;
    let (a0, a1, a2, a3, a4, a5, a6) = (
        a.clone(),
        a.clone(),
        a.clone(),
        a.clone(),
        a.clone(),
        a.clone(),
        a.clone(),
    );
    let (pre1, a7, a8, a9) = (pre.clone(), a.clone(), a.clone(), a.clone());
    let (a10, a11, a12, a4r) = (a.clone(), a.clone(), a.clone(), a.clone());
    let continue_fixup: fixup::FixupFn = Arc::new(|env: &dyn fixup::FixupEnv, i, arg: &Arg| {
        if i == 2 {
            fixup::route(RouteType::REQUEST)(env, i, arg)
        } else {
            fixup::igp(env, i, arg)
        }
    });
    ModuleDef::new("tmx")
        .on_init(move |core| {
            if api(&a0, core).is_none() {
                return Err("tmx needs the tm module (load tm before tmx)".into());
            }
            Ok(())
        })
        .cmd("t_is_branch_route", 0, any, None, |ctx, _| {
            b(ctx.route == RouteType::BRANCH)
        })
        .cmd("t_is_failure_route", 0, any, None, |ctx, _| {
            b(ctx.route == RouteType::FAILURE)
        })
        .cmd("t_is_reply_route", 0, any, None, |ctx, _| {
            b(ctx.route == RouteType::TM_ONREPLY)
        })
        .cmd("t_is_request_route", 0, any, None, |ctx, _| {
            b(ctx.route == RouteType::REQUEST)
        })
        .cmd(
            "t_cancel_branches",
            1,
            RouteType::ONREPLY,
            Some(fixup::f(fixup::const_str)),
            move |ctx, p| {
                let which = p[0].str(ctx).into_owned();
                match api(&a10, ctx.core) {
                    Some(t) => t.cancel_branches(ctx, &which),
                    None => -1,
                }
            },
        )
        .pipe(|d| by_callid(d, a.clone()))
        .cmd(
            "t_flush_flags",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| match api(&a1, ctx.core) {
                Some(t) => b(t.flush_flags(ctx)),
                None => -1,
            },
        )
        .pipe(|d| {
            let mut d = d;
            for n in [0usize, 1] {
                let a = a12.clone();
                d = d.cmd(
                    "t_drop",
                    n,
                    any,
                    Some(fixup::f(fixup::igp)),
                    move |ctx, p| {
                        let code = p.first().map_or(500, |x| x.int(ctx));
                        match (api(&a, ctx.core), u16::try_from(code)) {
                            (Some(t), Ok(code)) => t.t_drop(ctx, code),
                            _ => -1,
                        }
                    },
                );
            }
            d
        })
        .cmd("t_flush_xflags", 0, any, None, move |ctx, _| {
            match api(&a11, ctx.core) {
                Some(t) => b(t.flush_xflags(ctx)),
                None => -1,
            }
        })
        .cmd(
            "t_precheck_trans",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| {
                let exists = api(&a7, ctx.core).is_some_and(|t| t.exists(ctx.msg));
                b(pre1.check(ctx.msg) || exists)
            },
        )
        .cmd(
            "t_suspend",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| match api(&a8, ctx.core) {
                Some(t) => t.t_suspend(ctx),
                None => -1,
            },
        )
        .cmd("t_continue", 3, any, Some(continue_fixup), move |ctx, p| {
            let (Ok(index), Ok(label)) =
                (u64::try_from(p[0].int(ctx)), u64::try_from(p[1].int(ctx)))
            else {
                return -1;
            };
            let Fixed::Route(r) = &p[2] else {
                return -1;
            };
            match api(&a9, ctx.core) {
                Some(t) => t.t_continue(ctx.core, index, label, *r),
                None => -1,
            }
        })
        .pv("T_branch_idx", move |ctx, _| {
            int_or_null(api(&a2, ctx.core).and_then(|t| t.branch_idx(ctx)))
        })
        .pv("T_reply_code", move |ctx, _| {
            int_or_null(
                api(&a3, ctx.core)
                    .and_then(|t| t.reply_code(ctx))
                    .map(i64::from),
            )
        })
        .pv("T_reply_ruid", move |ctx, _| {
            api(&a4r, ctx.core).map_or(Value::Null, |t| Value::from(t.reply_ruid(ctx)))
        })
        .pv("T_reply_reason", move |ctx, _| {
            api(&a4, ctx.core)
                .and_then(|t| t.reply_reason(ctx))
                .map_or(Value::Null, Value::from)
        })
        .pv("T_req", move |ctx, n| {
            let Some(pv) = n.inner.clone() else {
                return Value::Null;
            };
            api(&a5, ctx.core)
                .and_then(|t| t.t_req(ctx, &pv))
                .unwrap_or(Value::Null)
        })
        .pv("T_rpl", move |ctx, n| {
            let Some(pv) = n.inner.clone() else {
                return Value::Null;
            };
            api(&a6, ctx.core)
                .and_then(|t| t.t_rpl(ctx, &pv))
                .unwrap_or(Value::Null)
        })
        .pv("T", move |ctx, n| {
            let Some(t) = api(&a, ctx.core) else {
                return Value::Null;
            };
            let ids = t.t_ids(ctx);
            match n.inner.as_deref() {
                Some("id_index") => int_or_null(ids.map(|x| x.0 as i64)),
                Some("id_label") => int_or_null(ids.map(|x| x.1 as i64)),
                Some("reply_code") => int_or_null(t.reply_code(ctx).map(i64::from)),
                Some("reply_reason") => t.reply_reason(ctx).map_or(Value::Null, Value::from),
                Some("branch_index") => int_or_null(t.branch_idx(ctx)),
                _ => Value::Null,
            }
        })
        .on_destroy(move || drop(pre.clone()))
}
