//! The script functions (`handle_publish`, `handle_subscribe`,
//! `pres_has_subscribers`, `pres_refresh_watchers`,
//! `pres_update_watchers`, `pres_auth_status`), the timers that end
//! expired publications and subscriptions, and the `presence.*` RPC
//! methods.

use crate::events::Status;
use crate::publish::{send_state, tell_watchers};
use crate::Presence;
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_str};
use std::sync::Arc;

/// Ends the publications whose time is up and tells their watchers (no
/// NOTIFY with `force_delete`).
pub fn expire_publications(pr: &Presence, core: &dyn Core, now: i64) {
    let gone: Vec<crate::store::Presentity> = {
        let mut st = pr.store();
        let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut st.pres)
            .into_iter()
            .partition(|p| p.expires < now);
        st.pres = keep;
        gone
    };
    for p in &gone {
        pr.db().delete_pres(pr.tables(), p);
    }
    if params::get_int(&pr.p.force_delete) != 0 {
        return;
    }
    let mut told: std::collections::HashSet<(String, String)> = Default::default();
    for p in gone {
        let k = (p.uri(), p.event.clone());
        if !told.insert(k.clone()) {
            continue;
        }
        if let Some(ev) = pr.api.find(&p.event) {
            tell_watchers(pr, core, &ev, &k.0, None, None, now);
        }
    }
}

/// Ends the subscriptions whose time is up (`expires_offset` seconds
/// after) — taken out of the tables in one step, so that one refreshed
/// meanwhile stays — each with a last NOTIFY `terminated;reason=timeout`
/// without a body when `notify` is set.
pub fn end_subscriptions(pr: &Presence, core: &dyn Core, now: i64, notify: bool) {
    let off = pr.p.expires_offset();
    let gone: Vec<crate::store::Subscription> = {
        let mut st = pr.store();
        let keys: Vec<crate::store::SubKey> = st
            .subs
            .iter()
            .filter(|(_, s)| s.expires < now - off)
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| st.subs.remove(k)).collect()
    };
    for mut s in gone {
        pr.db().delete_sub(pr.tables(), &s);
        if notify {
            if let Some(ev) = pr.api.find(&s.event) {
                s.local_cseq = s.local_cseq.saturating_add(1);
                s.version = s.version.saturating_add(1);
                send_state(
                    pr,
                    core,
                    &ev,
                    &s,
                    None,
                    now,
                    Some("terminated;reason=timeout"),
                );
            }
        }
    }
}

/// The subscription timer.
pub fn expire_subscriptions(pr: &Presence, core: &dyn Core, now: i64) {
    end_subscriptions(pr, core, now, true);
}

/// Sends every active watcher of `uri` for `event` its state again.
fn renotify(pr: &Presence, core: &dyn Core, uri: &str, event: &str) -> bool {
    let Some(ev) = pr.api.find(event) else {
        lm_err!("presence: unknown event '{event}'");
        return false;
    };
    tell_watchers(pr, core, &ev, uri, None, None, sr_sdk::db::now());
    true
}

fn rc(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

/// Adds the script functions and RPC methods.
pub fn export(mut def: ModuleDef, pr: &Arc<Presence>) -> ModuleDef {
    for n in 0..=1 {
        let p = pr.clone();
        def = def.cmd(
            "handle_publish",
            n,
            RouteType::REQUEST,
            (n == 1).then(|| fixup::f(fixup::spve)),
            move |ctx, a| {
                let sender = a.first().map(|x| x.str(ctx).into_owned());
                crate::publish::handle(&p, ctx, sender)
            },
        );
        let p = pr.clone();
        def = def.cmd(
            "handle_subscribe",
            n,
            RouteType::REQUEST,
            (n == 1).then(|| fixup::f(fixup::spve)),
            move |ctx, a| {
                let w = a.first().map(|x| x.str(ctx).into_owned());
                crate::subscribe::handle(&p, ctx, w)
            },
        );
    }
    let p = pr.clone();
    def = def.cmd(
        "pres_has_subscribers",
        2,
        RouteType::ANY,
        Some(fixup::f(fixup::spve)),
        move |ctx, a| {
            let (uri, ev) = (a[0].str(ctx).into_owned(), a[1].str(ctx).into_owned());
            let st = p.store();
            let now = sr_sdk::db::now();
            rc(st
                .subs
                .values()
                .any(|s| s.pres_uri == uri && s.event.eq_ignore_ascii_case(&ev) && s.expires > now))
        },
    );
    let p = pr.clone();
    def = def.cmd(
        "pres_refresh_watchers",
        3,
        RouteType::ANY,
        Some(fixup::f(|env, i, arg| {
            if i == 2 {
                fixup::igp(env, i, arg)
            } else {
                fixup::spve(env, i, arg)
            }
        })),
        move |ctx, a| {
            let (uri, ev) = (a[0].str(ctx).into_owned(), a[1].str(ctx).into_owned());
            match a[2].int(ctx) {
                0 | 1 => rc(renotify(&p, ctx.core, &uri, &ev)),
                other => {
                    lm_err!("pres_refresh_watchers: type {other} is not supported (0 or 1)");
                    -1
                }
            }
        },
    );
    def = def.cmd(
        "pres_update_watchers",
        2,
        RouteType::ANY,
        Some(fixup::f(fixup::spve)),
        |_ctx, _a| {
            lm_err!("pres_update_watchers: no authorization rules document (XCAP rules are not supported)");
            -1
        },
    );
    def = def.cmd(
        "pres_auth_status",
        2,
        RouteType::REQUEST,
        Some(fixup::f(fixup::spve)),
        |_ctx, _a| Status::Pending as i32,
    );
    let p = pr.clone();
    def = def.rpc(
        "presence.cleanup",
        "Ends expired publications and drops expired subscriptions.",
        move |_params| {
            let core = p.core().ok_or_else(|| RpcError::new(500, "not running"))?;
            let now = sr_sdk::db::now();
            expire_publications(&p, &*core, now);
            end_subscriptions(&p, &*core, now, false);
            Ok(Json::String("Reload OK".into()))
        },
    );
    let p = pr.clone();
    def = def.rpc(
        "presence.refreshWatchers",
        "Sends the watchers of a presentity (uri, event, type 0 or 1) its state again.",
        move |params| {
            let uri = param_str(params, 0, "presentity URI")?;
            let ev = param_str(params, 1, "event")?;
            let ty = param_int(params, 2, "type")?;
            if uri.is_empty() {
                return Err(RpcError::new(500, "Empty presentity URI"));
            }
            if !(0..=1).contains(&ty) {
                return Err(RpcError::new(500, "Execution failed"));
            }
            let core = p.core().ok_or_else(|| RpcError::new(500, "not running"))?;
            if renotify(&p, &*core, &uri, &ev) {
                Ok(Json::Object(Default::default()))
            } else {
                Err(RpcError::new(500, "Execution failed"))
            }
        },
    );
    def = def.rpc(
        "presence.updateWatchers",
        "Applies a presentity's authorization rules again (not supported: no XCAP rules).",
        |_params| Err(RpcError::new(500, "Processing error")),
    );
    let p = pr.clone();
    def = def.rpc(
        "presence.presentity_list",
        "The publications kept (\"full\" adds their bodies).",
        move |params| {
            let full = params.first().and_then(|v| v.as_str()) == Some("full");
            let st = p.store();
            let list = st
                .pres
                .iter()
                .map(|x| {
                    let mut o = JsonMap::new();
                    o.insert("user".into(), x.user.clone().into());
                    o.insert("domain".into(), x.domain.clone().into());
                    o.insert("event".into(), x.event.clone().into());
                    o.insert("etag".into(), x.etag.clone().into());
                    o.insert("sender".into(), x.sender.clone().into());
                    o.insert("expires".into(), x.expires.into());
                    if full {
                        o.insert("received_time".into(), x.received_time.into());
                        o.insert("priority".into(), 0.into());
                        o.insert("body".into(), x.body.clone().into());
                    }
                    Json::Object(o)
                })
                .collect();
            Ok(Json::Array(list))
        },
    );
    def
}
