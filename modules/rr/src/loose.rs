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
/// Our top Route carried an outbound flow token: the request goes down
/// that flow (RFC 5626 §5.3).
pub const RR_OB_DRIVEN: i32 = 2;
/// Our top Route carried a flow token that failed its check (tampered,
/// another proxy's key) or names a socket we do not have.
pub const RR_FLOW_TOKEN_BROKEN: i32 = -2;

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
    loose_route_mode(ctx, p, api, 0)
}

/// `loose_route_mode(vmode)`: as `loose_route()`; with bit 1 of `mode`
/// the Request-URI is not checked for ourselves (no strict-router
/// handling), for application servers whose Contact names this proxy;
/// with bit 2 a flow token in our Route is not used.
pub fn loose_route_mode(ctx: &mut Ctx<'_>, p: &Params, api: &RrApi, mode: i64) -> i32 {
    let rc = route(ctx, p, mode);
    if rc == RR_DRIVEN || rc == NOT_RR_DRIVEN || rc == RR_PRELOADED || rc == RR_OB_DRIVEN {
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

/// Kamailio's `process_outbound`: when our top Route's user part is a
/// flow token of a flow other than the one the request came on, the
/// request is sent down it (`$du` the flow's far end, the socket its near
/// end). `Ok(true)`: done so; `Ok(false)`: no token, or the request came
/// on that very flow; `Err`: a bad token or an unknown socket.
fn process_outbound(ctx: &mut Ctx<'_>, p: &Params, user: Option<&str>) -> Result<bool, ()> {
    let Some(ob) = p.outbound.get(ctx.core) else {
        return Ok(false);
    };
    let flow = match ob.decode(user.unwrap_or("")) {
        Ok(f) => f,
        Err(sr_mod_outbound::TokenError::NotToken) => return Ok(false),
        Err(sr_mod_outbound::TokenError::Invalid) => {
            lm_info!("loose_route: flow-token failed validation");
            return Err(());
        }
    };
    if flow.src == ctx.msg.rcv.src {
        return Ok(false);
    }
    let near = sr_sdk::RecvInfo {
        src: flow.src,
        dst: flow.dst,
        proto: flow.proto,
        conn_id: 0,
    };
    if ctx.core.received_on(&near).is_none() {
        lm_info!("loose_route: cannot find socket from flow-token");
        return Err(());
    }
    let mut du = String::from("sip:");
    sr_sdk::sip_msg::text::push_ip_host(&mut du, flow.src.ip());
    du.push(':');
    sr_sdk::sip_msg::text::push_dec(&mut du, u64::from(flow.src.port()));
    du.push_str(";transport=");
    du.push_str(flow.proto.as_str());
    // The socket the flow came in on (`proto:ip:port`). A WebSocket flow
    // is its connection: the socket comes with it, and forcing the
    // listening TCP/TLS socket would make the send look for a plain TCP
    // connection.
    if !matches!(flow.proto, Proto::Ws | Proto::Wss) {
        let mut sock = String::from(flow.proto.as_str());
        sock.push(':');
        sr_sdk::sip_msg::text::push_ip_host(&mut sock, flow.dst.ip());
        sock.push(':');
        sr_sdk::sip_msg::text::push_dec(&mut sock, u64::from(flow.dst.port()));
        ctx.msg.force_send_socket = Some(sock);
    }
    ctx.msg.dst_uri = Some(du);
    if flow.proto != Proto::Udp {
        // The user agent's own connection or nothing (RFC 5626 §5.3): a
        // flow whose connection is gone fails with 430 Flow Failed, which
        // tells the registrar to try the instance's next flow; a new
        // connection to the agent's ephemeral port would be refused, or
        // reach someone else.
        ctx.msg.fwd_flags.no_connect = true;
        ctx.msg.fwd_flags.flow = true;
    }
    Ok(true)
}

fn route(ctx: &mut Ctx<'_>, p: &Params, mode: i64) -> i32 {
    let loose_only = mode & 1 != 0;
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
    let user = first_uri.as_ref().and_then(|u| u.user).map(str::to_string);
    let use_ob = if mode & 2 == 0 && user.is_some() {
        match process_outbound(ctx, p, user.as_deref()) {
            Ok(b) => b,
            Err(()) => return RR_FLOW_TOKEN_BROKEN,
        }
    } else {
        false
    };
    let m = ctx.msg.msg();
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
            if !use_ob {
                ctx.msg.dst_uri = Some(n.uri(ctx.msg.msg()).to_string());
            }
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
    if use_ob {
        RR_OB_DRIVEN
    } else {
        rc
    }
}
