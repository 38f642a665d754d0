//! `record_route`, `record_route_preset` and `add_rr_param`: the
//! Record-Route header(s) this proxy inserts, as an edit of the request.

use crate::{Params, RrCtx};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::edit::Edits;
use sr_sdk::sip_msg::text::{push_dec, push_ip_host};
use sr_sdk::sip_msg::Uri;
use sr_sdk::SendInfo;

/// The text every Record-Route edit of ours starts with.
pub const RR_PREFIX: &[u8] = b"Record-Route: <";

fn rr_ctx(msg: &mut SipMsg) -> &mut RrCtx {
    if msg.ext.get::<RrCtx>().is_none() {
        msg.ext.insert(RrCtx::default());
    }
    msg.ext
        .get_mut::<RrCtx>()
        .unwrap_or_else(|| unreachable!("inserted just above"))
}

/// The parameters `add_rr_param` kept for the next Record-Route (taken).
fn take_pending(msg: &mut SipMsg) -> String {
    msg.ext
        .get_mut::<RrCtx>()
        .map(|c| std::mem::take(&mut c.pending))
        .unwrap_or_default()
}

/// The transport the request will most likely leave on: the `transport`
/// parameter of `$du` or the Request-URI, else UDP (`sips:` means TLS).
fn outbound_proto(msg: &SipMsg) -> Proto {
    let target = msg.dst_uri.as_deref().unwrap_or_else(|| msg.ruri());
    match Uri::parse(target) {
        Ok(u) => match u.transport().and_then(Proto::parse) {
            Some(p) => p,
            None if target.starts_with("sips:") => Proto::Tls,
            None => Proto::Udp,
        },
        Err(_) => Proto::Udp,
    }
}

/// Our address on the socket the request came in on.
fn inbound_addr(ctx: &Ctx<'_>) -> Option<(String, u16)> {
    if let Some((h, p)) = &ctx.msg.advertised {
        let port = p.unwrap_or(ctx.msg.rcv.dst.port());
        return Some((h.clone(), port));
    }
    if let Some(a) = ctx.core.received_on(&ctx.msg.rcv) {
        return Some(a);
    }
    let dst = ctx.msg.rcv.dst;
    if dst.ip().is_unspecified() {
        return ctx
            .core
            .local_addr(ctx.msg.rcv.proto, Some(ctx.msg.rcv.src));
    }
    Some((host_text(dst.ip()), dst.port()))
}

/// An address as a URI host: dotted quad, or bracketed IPv6.
fn host_text(ip: std::net::IpAddr) -> String {
    let mut s = String::with_capacity(15);
    push_ip_host(&mut s, ip);
    s
}

/// `sip:host:port` followed by `params`.
fn sip_uri(host: &str, port: u16, params: &str) -> String {
    let mut s = String::with_capacity(host.len() + params.len() + 10);
    s.push_str("sip:");
    s.push_str(host);
    s.push(':');
    push_dec(&mut s, u64::from(port));
    s.push_str(params);
    s
}

/// The parameters after the host part: transport, r2, lr, ftag, extra.
fn uri_params(p: &Params, msg: &SipMsg, proto: Option<Proto>, r2: bool, extra: &str) -> String {
    let mut s = String::new();
    if let Some(pr) = proto.filter(|p| *p != Proto::Udp) {
        s.push_str(";transport=");
        s.push_str(pr.as_str());
    }
    if r2 {
        s.push_str(";r2=on");
    }
    s.push_str(if p.full_lr() { ";lr=on" } else { ";lr" });
    if p.append_fromtag() {
        if let Ok(Some(tag)) = msg.msg().from_tag() {
            s.push_str(";ftag=");
            s.push_str(tag);
        }
    }
    s.push_str(extra);
    s
}

fn insert(ctx: &mut Ctx<'_>, lines: &[String]) -> i32 {
    let mut text = String::new();
    for l in lines {
        text.push_str("Record-Route: <");
        text.push_str(l);
        text.push_str(">\r\n");
    }
    // Above the first header, whatever is there: Kamailio's `insert_RR`
    // (checked by kamailio_parity_topoh, with a Record-Route below).
    let at = ctx.msg.msg().headers_start();
    ctx.msg.edits.insert(at, text.as_bytes());
    1
}

/// The user part outbound wants in our Record-Route (RFC 5626 §5.3): a
/// token of the flow the request came on, or the one in its top Route
/// when it is going back down a flow; empty when outbound is not loaded
/// or the request does not use it.
fn flow_user(ctx: &Ctx<'_>, p: &Params) -> String {
    let Some(ob) = p.outbound.get(ctx.core) else {
        return String::new();
    };
    match ob.use_outbound(ctx.core, ctx.msg) {
        1 => ob.encode(&ctx.msg.rcv),
        2 => ctx
            .msg
            .msg()
            .routes()
            .next()
            .and_then(Result::ok)
            .and_then(|r| r.uri.user)
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    }
}

/// `uri` with `user@` after its scheme (unless it has a user part
/// already: a preset Record-Route written with one keeps it).
fn with_user(uri: String, user: &str) -> String {
    let hostpart = uri.split(';').next().unwrap_or("");
    if user.is_empty() || hostpart.contains('@') {
        return uri;
    }
    match uri.find(':') {
        Some(i) => format!("{}{user}@{}", &uri[..=i], &uri[i + 1..]),
        None => uri,
    }
}

/// `record_route([params])`.
pub fn record_route(ctx: &mut Ctx<'_>, p: &Params, params: &str) -> i32 {
    if !ctx.msg.is_request() {
        return -1;
    }
    let added = ctx.msg.ext.get::<RrCtx>().is_some_and(|r| r.rr_added);
    if added || ctx.msg.edits.find_text(RR_PREFIX).is_some() {
        lm_err!("record_route: a Record-Route was already added to this request");
        return -1;
    }
    rr_ctx(ctx.msg).rr_added = true;
    let pending = take_pending(ctx.msg);
    let mut extra = String::with_capacity(params.len() + pending.len());
    extra.push_str(params);
    extra.push_str(&pending);
    let Some((ih, ip)) = inbound_addr(ctx) else {
        lm_err!("record_route: no local address");
        return -1;
    };
    let in_proto = ctx.msg.rcv.proto;
    // A flow token (outbound) goes in each of our Record-Routes, as in
    // Kamailio 5.6 (whose documentation says no second one is added).
    let user = flow_user(ctx, p);
    if p.double_rr() != 2 {
        let ps = uri_params(p, ctx.msg, Some(in_proto), false, &extra);
        let r = insert(ctx, &[with_user(sip_uri(&ih, ip, &ps), &user)]);
        if p.double_rr() == 1 {
            // Whether a second one is needed is known when the request is
            // sent (a `lookup` may come after `record_route`, as in the
            // stock configuration): see `double_at_send`.
            ctx.msg.send_fixups.push(double_at_send);
        }
        return r;
    }
    // enable_double_rr=2: always two, the outgoing transport guessed from
    // `$du`/the Request-URI.
    let out_proto = outbound_proto(ctx.msg);
    let (oh, op) = ctx
        .core
        .local_addr(out_proto, None)
        .unwrap_or((ih.clone(), ip));
    let out = with_user(
        sip_uri(
            &oh,
            op,
            &uri_params(p, ctx.msg, Some(out_proto), true, &extra),
        ),
        &user,
    );
    let inn = with_user(
        sip_uri(
            &ih,
            ip,
            &uri_params(p, ctx.msg, Some(in_proto), true, &extra),
        ),
        &user,
    );
    insert(ctx, &[out, inn])
}

/// A send-time fix-up turning our single Record-Route into two when the
/// request leaves on another transport or socket than it came in on
/// (`enable_double_rr` 1): the outbound one on top, both with `r2=on`,
/// keeping every other parameter (also those `add_rr_param` added). The
/// inbound side is read back from the single one (its host, port and
/// `transport`).
fn double_at_send(edits: &mut Edits, to: &SendInfo<'_>) {
    if to.same_socket {
        return;
    }
    let Some(i) = edits.find_text(RR_PREFIX) else {
        return;
    };
    let Some(text) = edits
        .text(i)
        .map(|t| String::from_utf8_lossy(t).into_owned())
    else {
        return;
    };
    let Some(uri) = text
        .strip_prefix("Record-Route: <sip:")
        .and_then(|t| t.strip_suffix(">\r\n"))
        .filter(|u| !u.contains('>'))
    else {
        return;
    };
    // A user part (an outbound flow token) stays on both.
    let (user, uri) = match uri.find('@') {
        Some(at) if !uri[..at].contains(';') => uri.split_at(at + 1),
        _ => ("", uri),
    };
    let (hostport, params) = uri.split_once(';').unwrap_or((uri, ""));
    let mut in_proto = Proto::Udp;
    let rest: String = params
        .split(';')
        .filter(|p| match p.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("transport") => {
                in_proto = Proto::parse(v).unwrap_or(Proto::Udp);
                false
            }
            _ => !p.is_empty(),
        })
        .flat_map(|p| [";", p])
        .collect();
    let line = |hostport: &str, proto: Proto| {
        let mut s = format!("Record-Route: <sip:{user}{hostport}");
        if proto != Proto::Udp {
            s.push_str(";transport=");
            s.push_str(proto.as_str());
        }
        s.push_str(";r2=on");
        s.push_str(&rest);
        s.push_str(">\r\n");
        s
    };
    let out = sip_uri(to.host, to.port, "");
    let new = line(&out["sip:".len()..], to.proto) + &line(hostport, in_proto);
    edits.set_text(i, new.as_bytes());
}

/// `record_route_advertised_address(addr)`: a Record-Route with `addr`
/// (`host[:port][;params]`, variables allowed) instead of our own
/// address, the From tag and `lr` after it as Kamailio writes them.
pub fn record_route_advertised(ctx: &mut Ctx<'_>, p: &Params, addr: &str) -> i32 {
    if !ctx.msg.is_request() || addr.is_empty() {
        return -1;
    }
    let added = ctx.msg.ext.get::<RrCtx>().is_some_and(|r| r.rr_added);
    if added || ctx.msg.edits.find_text(RR_PREFIX).is_some() {
        lm_err!(
            "record_route_advertised_address: a Record-Route was already added to this request"
        );
        return -1;
    }
    rr_ctx(ctx.msg).rr_added = true;
    let pending = take_pending(ctx.msg);
    let mut uri = format!("sip:{addr}");
    if p.append_fromtag() {
        if let Ok(Some(tag)) = ctx.msg.msg().from_tag() {
            uri.push_str(";ftag=");
            uri.push_str(tag);
        }
    }
    uri.push_str(if p.full_lr() { ";lr=on" } else { ";lr" });
    uri.push_str(&pending);
    insert(ctx, &[uri])
}

/// `record_route_preset(addr[, addr2])`.
pub fn record_route_preset(ctx: &mut Ctx<'_>, p: &Params, a: &str, b: Option<&str>) -> i32 {
    if !ctx.msg.is_request() || a.is_empty() {
        return -1;
    }
    let pending = take_pending(ctx.msg);
    let user = flow_user(ctx, p);
    let uri = |x: &str| {
        let u = if x.starts_with("sip:") || x.starts_with("sips:") {
            x.to_string()
        } else {
            format!("sip:{x}")
        };
        with_user(u, &user)
    };
    match b {
        None => {
            let ps = uri_params(p, ctx.msg, None, false, &pending);
            insert(ctx, &[format!("{}{ps}", uri(a))])
        }
        Some(b) => {
            let ps = uri_params(p, ctx.msg, None, true, &pending);
            insert(ctx, &[format!("{}{ps}", uri(a)), format!("{}{ps}", uri(b))])
        }
    }
}

/// `add_rr_param(params)`: to the Record-Route already added (also from
/// branch_route, on the copy of the request), else kept for the next
/// `record_route`.
pub fn add_rr_param(ctx: &mut Ctx<'_>, params: &str) -> i32 {
    if let Some(i) = ctx.msg.edits.find_text(RR_PREFIX) {
        let Some(old) = ctx.msg.edits.text(i) else {
            return -1;
        };
        let text = String::from_utf8_lossy(old).into_owned();
        let new: String = text
            .split_inclusive("\r\n")
            .map(|line| match line.rfind('>') {
                Some(gt) => format!("{}{params}{}", &line[..gt], &line[gt..]),
                None => line.to_string(),
            })
            .collect();
        ctx.msg.edits.set_text(i, new.as_bytes());
        return 1;
    }
    rr_ctx(ctx.msg).pending.push_str(params);
    1
}

#[cfg(test)]
mod tests {
    use super::{double_at_send, host_text, sip_uri, RR_PREFIX};
    use sr_sdk::sip_msg::edit::Edits;
    use sr_sdk::{Proto, SendInfo};

    /// Runs the send-time fix-up of a single Record-Route (in on TCP
    /// 10.0.0.1:5060) for a request leaving to `to`; the edit's text after.
    fn fixed(rr: &str, to: SendInfo<'_>) -> String {
        let mut e = Edits::new();
        e.insert(0, rr.as_bytes());
        double_at_send(&mut e, &to);
        let i = e.find_text(RR_PREFIX).unwrap();
        String::from_utf8(e.text(i).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn a_second_record_route_when_the_request_leaves_elsewhere() {
        let rr = "Record-Route: <sip:10.0.0.1:5060;transport=tcp;lr;ftag=a;nat=yes>\r\n";
        let same = SendInfo {
            proto: Proto::Tcp,
            host: "10.0.0.1",
            port: 5060,
            same_socket: true,
        };
        assert_eq!(fixed(rr, same), rr);
        let udp = SendInfo {
            proto: Proto::Udp,
            same_socket: false,
            ..same
        };
        assert_eq!(
            fixed(rr, udp),
            "Record-Route: <sip:10.0.0.1:5060;r2=on;lr;ftag=a;nat=yes>\r\n\
             Record-Route: <sip:10.0.0.1:5060;transport=tcp;r2=on;lr;ftag=a;nat=yes>\r\n"
        );
        let ws_elsewhere = SendInfo {
            proto: Proto::Ws,
            host: "[::1]",
            port: 8080,
            same_socket: false,
        };
        assert!(fixed(rr, ws_elsewhere).starts_with(
            "Record-Route: <sip:[::1]:8080;transport=ws;r2=on;lr;ftag=a;nat=yes>\r\n"
        ));
        // An outbound flow token stays on both.
        let tok = "Record-Route: <sip:AbC+/x=@10.0.0.1:5060;transport=tcp;lr>\r\n";
        assert_eq!(
            fixed(tok, udp),
            "Record-Route: <sip:AbC+/x=@10.0.0.1:5060;r2=on;lr>\r\n\
             Record-Route: <sip:AbC+/x=@10.0.0.1:5060;transport=tcp;r2=on;lr>\r\n"
        );
        // Already two (record_route saw the destination): left alone.
        let two = "Record-Route: <sip:a;r2=on;lr>\r\nRecord-Route: <sip:b;r2=on;lr>\r\n";
        assert_eq!(fixed(two, udp), two);
    }

    #[test]
    fn hosts_and_uris_are_written_as_in_a_uri() {
        assert_eq!(host_text("10.0.255.1".parse().unwrap()), "10.0.255.1");
        assert_eq!(host_text("0.0.0.0".parse().unwrap()), "0.0.0.0");
        assert_eq!(host_text("::1".parse().unwrap()), "[::1]");
        assert_eq!(sip_uri("10.0.0.1", 5060, ";lr"), "sip:10.0.0.1:5060;lr");
        assert_eq!(sip_uri("[::1]", 0, ""), "sip:[::1]:0");
    }
}
