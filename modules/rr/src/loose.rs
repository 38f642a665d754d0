//! `loose_route()`: RFC 3261 §16.4 (our own Route entries removed, the
//! next hop taken from the route set) and §16.12 (strict routers on
//! either side), with Kamailio's return codes.

use crate::route_set::{entries, remove};
use crate::{Params, RrCtx};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::{HeaderName, Uri};

/// The route set was processed (next hop in `$du` or the R-URI).
pub const RR_DRIVEN: i32 = 1;
/// No Route header, or only our own on an out-of-dialog request.
pub const NOT_RR_DRIVEN: i32 = -1;
/// The first Route is not ours (a preloaded route set): `$du` set to it.
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

fn remember(ctx: &mut Ctx<'_>, uri: Option<&Uri<'_>>) {
    let ps = params_of(uri);
    if ctx.msg.ext.get::<RrCtx>().is_none() {
        ctx.msg.ext.insert(RrCtx::default());
    }
    if let Some(r) = ctx.msg.ext.get_mut::<RrCtx>() {
        r.route_params = Some(ps);
    }
}

/// `loose_route()`.
pub fn loose_route(ctx: &mut Ctx<'_>, p: &Params) -> i32 {
    if !ctx.msg.is_request() {
        return NOT_RR_DRIVEN;
    }
    let all = entries(ctx.msg.msg());
    let Some(first) = all.first() else {
        return NOT_RR_DRIVEN;
    };
    let core = ctx.core;
    let in_dialog = matches!(ctx.msg.msg().to_tag(), Ok(Some(_)));
    let ruri = ctx.msg.ruri().to_string();
    let first_uri = Uri::parse(&first.uri).ok();
    let first_mine = first_uri.as_ref().is_some_and(|u| is_me_uri(core, u));
    let ruri_mine = ctx
        .msg
        .ruri_parsed()
        .is_ok_and(|u| u.user.is_none() && is_me_uri(core, &u));
    if ruri_mine && !first_mine {
        // The previous hop is a strict router: the R-URI is the
        // Record-Route we put there, the real target is the last Route.
        remember(ctx, Uri::parse(&ruri).ok().as_ref());
        let Some(last) = all.last() else {
            return NOT_RR_DRIVEN;
        };
        let target = last.uri.clone();
        let gone = [all.len() - 1];
        let mut edits = std::mem::take(&mut ctx.msg.edits);
        remove(&mut edits, &all, &gone);
        ctx.msg.edits = edits;
        ctx.msg.new_uri = Some(target);
        return RR_DRIVEN;
    }
    if !first_mine {
        ctx.msg.dst_uri = Some(first.uri.clone());
        return if in_dialog { RR_DRIVEN } else { RR_PRELOADED };
    }
    remember(ctx, first_uri.as_ref());
    let mut gone = vec![0usize];
    if p.double_rr() > 0 && first_uri.as_ref().is_some_and(|u| u.param("r2").is_some()) {
        if let Some(second) = all.get(1) {
            if is_me(core, &second.uri) {
                gone.push(1);
            }
        }
    }
    let next = all.get(gone.len()).cloned();
    let mut edits = std::mem::take(&mut ctx.msg.edits);
    remove(&mut edits, &all, &gone);
    let rc = match next {
        None if !in_dialog => NOT_RR_DRIVEN,
        None => RR_DRIVEN,
        Some(n) if Uri::parse(&n.uri).is_ok_and(|u| u.is_lr()) => {
            ctx.msg.dst_uri = Some(n.uri.clone());
            RR_DRIVEN
        }
        Some(n) => {
            // The next hop is a strict router: it goes into the R-URI and
            // the R-URI to the end of the route set (RFC 3261 §16.12).
            let idx = gone.len();
            remove(&mut edits, &all, &[idx]);
            let m = ctx.msg.msg();
            let at = m
                .headers_named(HeaderName::Route)
                .last()
                .map_or(m.headers_end(), |h| h.end);
            edits.insert(at, format!("Route: <{ruri}>\r\n").as_bytes());
            ctx.msg.new_uri = Some(n.uri.clone());
            RR_DRIVEN
        }
    };
    ctx.msg.edits = edits;
    rc
}
