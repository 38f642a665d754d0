//! `loose_route()`: RFC 3261 §16.4 (our own Route entries removed, the
//! next hop taken from the route set) and §16.12 (strict routers on
//! either side), with Kamailio's return codes.

use crate::route_set::{entries, remove};
use crate::{Params, RrApi, RrCtx};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::{HeaderName, Uri};

/// The route set was processed (next hop in `$du` or the R-URI).
pub const RR_DRIVEN: i32 = 1;
/// No Route header.
pub const NOT_RR_DRIVEN: i32 = -1;
/// A preloaded route set (out of dialog) whose only entry was ours.
pub const RR_PRELOADED: i32 = -3;

fn is_me_uri(core: &dyn Core, u: &Uri<'_>) -> bool {
    core.is_myself(u.host_str, Some(u.port.unwrap_or(u.default_port())))
        || (u.port.is_none() && core.is_myself(u.host_str, None))
}

fn is_me(core: &dyn Core, uri: &str) -> bool {
    Uri::parse(uri).is_ok_and(|u| is_me_uri(core, &u))
}

/// The URI's parameters as `;name=value...` (the route parameters rr's
/// `check_route_param` and `$route_uri` read later).
fn params_of(u: Option<&Uri<'_>>) -> String {
    let mut s = String::new();
    for p in u.into_iter().flat_map(|u| u.param_iter()) {
        s.push(';');
        s.push_str(p.name);
        if let Some(v) = p.value {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

/// The next hop was taken from a Route header (`rr_next_hop_route()`).
fn next_hop_from_route(ctx: &mut Ctx<'_>) {
    if ctx.msg.ext.get::<RrCtx>().is_none() {
        ctx.msg.ext.insert(RrCtx::default());
    }
    if let Some(r) = ctx.msg.ext.get_mut::<RrCtx>() {
        r.next_hop_route = true;
    }
}

fn remember(ctx: &mut Ctx<'_>, ps: String) {
    if ctx.msg.ext.get::<RrCtx>().is_none() {
        ctx.msg.ext.insert(RrCtx::default());
    }
    if let Some(r) = ctx.msg.ext.get_mut::<RrCtx>() {
        r.route_params = Some(ps);
    }
}

/// `loose_route()`, then the callbacks of other modules when the route
/// set started with our own entry.
pub fn loose_route(ctx: &mut Ctx<'_>, p: &Params, api: &RrApi) -> i32 {
    loose_route_mode(ctx, p, api, false)
}

/// `loose_route_mode(vmode)`: as `loose_route()`; with `loose_only` the
/// Request-URI is not checked for ourselves (no strict-router handling),
/// for application servers whose Contact names this proxy.
pub fn loose_route_mode(ctx: &mut Ctx<'_>, p: &Params, api: &RrApi, loose_only: bool) -> i32 {
    let rc = route(ctx, p, loose_only);
    if rc == RR_DRIVEN || rc == NOT_RR_DRIVEN || rc == RR_PRELOADED {
        let params = ctx
            .msg
            .ext
            .get::<RrCtx>()
            .and_then(|r| r.route_params.clone());
        if let Some(ps) = params {
            api.run(ctx, &ps);
        }
    }
    rc
}

fn route(ctx: &mut Ctx<'_>, p: &Params, loose_only: bool) -> i32 {
    if !ctx.msg.is_request() {
        return NOT_RR_DRIVEN;
    }
    let all = entries(ctx.msg.msg());
    let Some(first) = all.first().copied() else {
        return NOT_RR_DRIVEN;
    };
    let core = ctx.core;
    let m = ctx.msg.msg();
    let in_dialog = matches!(m.to_tag(), Ok(Some(_)));
    let first_uri = Uri::parse(first.uri(m)).ok();
    let first_mine = first_uri.as_ref().is_some_and(|u| is_me_uri(core, u));
    let ruri_mine = !loose_only
        && ctx
            .msg
            .ruri_parsed()
            .is_ok_and(|u| u.user.is_none() && is_me_uri(core, &u));
    if ruri_mine && !first_mine {
        // The previous hop is a strict router: the R-URI is the
        // Record-Route we put there, the real target is the last Route.
        let ps = params_of(ctx.msg.ruri_parsed().ok().as_ref());
        remember(ctx, ps);
        let Some(last) = all.last() else {
            return NOT_RR_DRIVEN;
        };
        let target = last.uri(ctx.msg.msg()).to_string();
        let mut edits = std::mem::take(&mut ctx.msg.edits);
        remove(&mut edits, &all, &[all.len() - 1]);
        ctx.msg.edits = edits;
        // Kamailio sets the destination to it as well.
        ctx.msg.dst_uri = Some(target.clone());
        ctx.msg.new_uri = Some(target);
        return RR_DRIVEN;
    }
    if !first_mine {
        ctx.msg.dst_uri = Some(first.uri(m).to_string());
        // 1 whether preloaded or not (Kamailio 5.6, kamailio_parity_path).
        return RR_DRIVEN;
    }
    let double = p.double_rr() > 0
        && first_uri.as_ref().is_some_and(|u| u.param("r2").is_some())
        && all.get(1).is_some_and(|s| is_me(core, s.uri(m)));
    let ps = params_of(first_uri.as_ref());
    let ours = if double { 2 } else { 1 };
    let next = all.get(ours).copied();
    let next_lr = next.map(|n| Uri::parse(n.uri(m)).is_ok_and(|u| u.is_lr()));
    remember(ctx, ps);
    // Our entries go; so does a strict next hop, which moves into the
    // R-URI (one removal, so that a line holding all of them goes whole).
    let gone: &[usize] = match (ours, next_lr) {
        (1, Some(false)) => &[0, 1],
        (2, Some(false)) => &[0, 1, 2],
        (1, _) => &[0],
        _ => &[0, 1],
    };
    let mut edits = std::mem::take(&mut ctx.msg.edits);
    remove(&mut edits, &all, gone);
    let rc = match (next, next_lr) {
        // Kamailio 5.6 (checked by kamailio_parity_path): our entry was
        // the whole of a preloaded route set.
        (None, _) if !in_dialog => RR_PRELOADED,
        (None, _) => RR_DRIVEN,
        (Some(n), Some(true)) => {
            ctx.msg.dst_uri = Some(n.uri(ctx.msg.msg()).to_string());
            next_hop_from_route(ctx);
            RR_DRIVEN
        }
        (Some(n), _) => {
            next_hop_from_route(ctx);
            // The next hop is a strict router: it goes into the R-URI and
            // the R-URI to the end of the route set (RFC 3261 §16.12).
            let m = ctx.msg.msg();
            let at = m
                .headers_named(HeaderName::Route)
                .last()
                .map_or(m.headers_end(), |h| h.end);
            let line = format!("Route: <{}>\r\n", ctx.msg.ruri());
            edits.insert(at, line.as_bytes());
            ctx.msg.new_uri = Some(n.uri(ctx.msg.msg()).to_string());
            RR_DRIVEN
        }
    };
    ctx.msg.edits = edits;
    rc
}
