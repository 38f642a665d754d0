//! NOTIFY requests: built from a subscription's dialog in the order of
//! Kamailio's tm and presence (Via, Route, To, From, CSeq, Call-ID,
//! Content-Length, User-Agent, Max-Forwards, Event, Contact,
//! Subscription-State, Content-Type), each sent as a client transaction
//! of tm's [`sr_mod_tm::local::LocalRequests`]; the bodies they carry
//! (the presentity's publications, merged by the event's package, or a
//! watcher-info document).

use crate::events::{EventDef, Kind, Status};
use crate::store::{Store, SubKey, Subscription};
use crate::Presence;
use sr_mod_tm::local::{Ended, Taken};
use sr_sdk::prelude::*;
use std::fmt::Write;

/// What a NOTIFY in flight belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTag {
    /// The subscription.
    pub key: SubKey,
    /// Whether it ended the subscription.
    pub terminated: bool,
    /// The subscription as it was when the NOTIFY went (for `$subs` in
    /// `event_route[presence:notify-reply]`).
    pub sub: Box<Subscription>,
}

/// The `Subscription-State` value for a subscription `left` seconds from
/// its end: `terminated;reason=timeout` when none is left.
pub fn state_value(status: Status, left: i64) -> String {
    if left <= 0 || status == Status::Terminated {
        return "terminated;reason=timeout".into();
    }
    format!("{};expires={left}", status.word())
}

/// A record-route set (comma-joined values) as a list of values.
pub fn split_routes(rr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start, mut escaped) = (0i32, false, 0usize, false);
    for (i, c) in rr.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => {
                out.push(rr[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(rr[start..].trim().to_string());
    out.retain(|r| !r.is_empty());
    out
}

/// Whether a route URI has the `lr` parameter (in any case).
fn loose(uri: &str) -> bool {
    uri.split(';').skip(1).any(|p| {
        p.split('=')
            .next()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case("lr"))
    })
}

/// The URI inside a name-addr (`<sip:p;lr>` gives `sip:p;lr`).
fn uri_of(na: &str) -> &str {
    match (na.find('<'), na.rfind('>')) {
        (Some(a), Some(b)) if b > a => &na[a + 1..b],
        _ => na.trim(),
    }
}

/// A NOTIFY for `sub` with CSeq `cseq`: its text and the URI it goes to
/// (the first route when the route set is loose, else the Contact).
pub fn build(
    sub: &Subscription,
    cseq: u32,
    state: &str,
    body: Option<(&str, &str)>,
    via: (&str, &str),
    branch: &str,
    ua: Option<&str>,
) -> (String, String) {
    let routes = split_routes(&sub.record_route);
    let target = if sub.contact.is_empty() {
        sub.watcher_uri()
    } else {
        sub.contact.clone()
    };
    let strict = routes.first().is_some_and(|r| !loose(uri_of(r)));
    let (ruri, route_hdrs, next): (String, Vec<String>, String) = if strict {
        let mut rest: Vec<String> = routes[1..].to_vec();
        rest.push(format!("<{target}>"));
        (
            uri_of(&routes[0]).to_string(),
            rest,
            uri_of(&routes[0]).to_string(),
        )
    } else {
        let next = routes
            .first()
            .map_or(target.clone(), |r| uri_of(r).to_string());
        (target.clone(), routes.clone(), next)
    };
    let mut s = format!(
        "NOTIFY {ruri} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={branch}\r\n",
        via.0, via.1
    );
    for r in &route_hdrs {
        let _ = write!(s, "Route: {r}\r\n");
    }
    let body_len = body.map_or(0, |(_, b)| b.len());
    let _ = write!(
        s,
        "To: <{}>;tag={}\r\nFrom: <{}>;tag={}\r\nCSeq: {cseq} NOTIFY\r\nCall-ID: {}\r\nContent-Length: {body_len}\r\n",
        crate::store::uri(&sub.from_user, &sub.from_domain),
        sub.from_tag,
        crate::store::uri(&sub.to_user, &sub.to_domain),
        sub.to_tag,
        sub.callid
    );
    if let Some(ua) = ua {
        s.push_str(ua);
        s.push_str("\r\n");
    }
    s.push_str("Max-Forwards: 70\r\n");
    let _ = write!(s, "Event: {}", sub.event);
    if !sub.event_id.is_empty() {
        let _ = write!(s, ";id={}", sub.event_id);
    }
    let _ = write!(
        s,
        "\r\nContact: <{}>\r\nSubscription-State: {state}\r\n",
        sub.local_contact
    );
    match body {
        Some((ct, b)) if !b.is_empty() => {
            let _ = write!(s, "Content-Type: {ct}\r\n\r\n{b}");
        }
        _ => s.push_str("\r\n"),
    }
    (s, next)
}

/// The socket a subscription's string names (`udp:127.0.0.1:5060`).
pub fn parse_socket(s: &str) -> Option<(Proto, std::net::SocketAddr)> {
    let (proto, addr) = s.split_once(':')?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "udp" => Proto::Udp,
        "tcp" => Proto::Tcp,
        "tls" => Proto::Tls,
        "ws" => Proto::Ws,
        "wss" => Proto::Wss,
        _ => return None,
    };
    let addr = addr.trim_start_matches('[').replacen("]:", ":", 1);
    let sa: std::net::SocketAddr = addr.parse().ok().or_else(|| {
        let (h, p) = addr.rsplit_once(':')?;
        format!("[{h}]:{p}").parse().ok()
    })?;
    Some((proto, sa))
}

/// Sends one NOTIFY for `sub` (whose `local_cseq` the caller has moved
/// on), with CSeq `cseq`.
pub fn send(
    pr: &Presence,
    core: &dyn Core,
    sub: &Subscription,
    cseq: u32,
    state: &str,
    body: Option<(&str, &str)>,
) {
    let Some(tm) = pr.tm() else {
        return;
    };
    let (n, branch) = pr.notifies.next_branch();
    let probe = build(sub, cseq, state, None, ("UDP", "0.0.0.0"), &branch, None).1;
    // The dialog's transport is the SUBSCRIBE's (as tm's send socket
    // makes it in Kamailio) unless the next hop names one.
    let socket = parse_socket(&sub.socket);
    let proto = socket
        .map(|(p, _)| p)
        .filter(|p| *p != Proto::Udp && !probe.to_ascii_lowercase().contains(";transport="));
    let mut dest = match core.resolve(&probe, proto) {
        Ok(d) => d,
        Err(e) => {
            lm_warn!("presence: NOTIFY for {} to {probe}: {e}", sub.callid);
            return;
        }
    };
    if let Some((proto, addr)) = socket {
        if proto == dest.proto && addr.is_ipv4() == dest.addr.is_ipv4() {
            dest.send_socket = Some(addr);
        }
    }
    let local = sr_mod_tm::local::via_host(core, &dest).unwrap_or_default();
    let ua = core.user_agent_header();
    let (text, _) = build(
        sub,
        cseq,
        state,
        body,
        (dest.proto.via_name(), &local),
        &branch,
        ua.as_deref(),
    );
    let tag = NotifyTag {
        key: sub.key(),
        terminated: state.starts_with("terminated"),
        sub: Box::new(Subscription {
            status: if state.starts_with("terminated") {
                Status::Terminated
            } else {
                sub.status
            },
            ..sub.clone()
        }),
    };
    if let Some(e) = pr
        .notifies
        .start(core, n, text.into_bytes(), dest, &tm.uac_timers(), tag)
    {
        ended(pr, core, e, None);
    }
}

/// `event_route[presence:notify-reply]` for a NOTIFY's final reply (or
/// Kamailio's faked 408 when none came): the NOTIFY is the route's
/// message, `$subs` its subscription, `$notify_reply` reads the reply.
fn notify_reply_route(core: &dyn Core, e: &Ended<NotifyTag>, reply: Option<&SipMsg>) {
    let Some(id) = core.route_id(RouteType::EVENT, "presence:notify-reply") else {
        return;
    };
    let req = bytes::Bytes::from(e.request.clone());
    let Ok(mut m) = SipMsg::parse(req, sr_sdk::msg::RecvInfo::loopback(), 0) else {
        return;
    };
    let rpl = match reply {
        Some(r) => SipMsg::parse(r.bytes().clone(), r.rcv, 0).ok(),
        None => None,
    }
    .or_else(|| {
        SipMsg::parse(
            bytes::Bytes::from_static(crate::pv::FAKED_408.as_bytes()),
            sr_sdk::msg::RecvInfo::loopback(),
            0,
        )
        .ok()
    });
    m.ext.insert(crate::pv::SubsPv {
        expires: e.tag.sub.expires,
        sub: (*e.tag.sub).clone(),
    });
    if let Some(r) = rpl {
        m.ext.insert(crate::pv::NotifyReply(r));
    }
    core.run_route(id, RouteType::LOCAL, &mut m);
}

/// A NOTIFY's outcome: `event_route[presence:notify-reply]` runs; with
/// `timeout_rm_subs`, a 404, 481 or 408 ends the subscription (Kamailio's
/// `p_tm_callback`).
pub fn ended(pr: &Presence, core: &dyn Core, e: Ended<NotifyTag>, reply: Option<&SipMsg>) {
    notify_reply_route(core, &e, reply);
    if e.code < 300 {
        return;
    }
    lm_info!(
        "presence: NOTIFY for {} ended with {} {}",
        e.tag.key.0,
        e.code,
        e.reason
    );
    let remove = matches!(e.code, 404 | 481) || (e.code == 408 && !e.tag.terminated);
    if remove && pr.p.timeout_rm_subs() {
        let gone = pr.store().subs.remove(&e.tag.key);
        if let Some(sub) = gone {
            pr.db().delete_sub(pr.tables(), &sub);
        }
    }
}

/// A reply: true when it answers one of our NOTIFYs.
pub fn on_reply(pr: &Presence, ctx: &mut Ctx<'_>) -> bool {
    match pr.notifies.take_reply(ctx.msg) {
        Taken::NotOurs => false,
        Taken::Absorbed => true,
        Taken::Ended(e) => {
            ended(pr, ctx.core, e, Some(ctx.msg));
            true
        }
    }
}

/// The body of the state of `pres_uri` for `ev` now: the live
/// publications merged (newest first), the one with entity tag
/// `offline_etag` replaced by its offline body; for a watcher-info
/// package, the watchers of the package it watches.
pub fn state_body(
    pr: &Presence,
    st: &Store,
    ev: &EventDef,
    pres_uri: &str,
    offline_etag: Option<&str>,
    now: i64,
) -> Option<String> {
    if ev.kind == Kind::Winfo {
        let watched = ev.name.strip_suffix(".winfo").unwrap_or(&ev.name);
        return Some(winfo_body(st, pres_uri, watched, None, 0));
    }
    // A package that merges nothing: the newest body, and none in the
    // NOTIFY for a removal (as Kamailio's, which sends the removing
    // PUBLISH's empty body then).
    if offline_etag.is_some() && ev.agg.is_none() {
        return None;
    }
    let (user, domain) = split_pres_uri(pres_uri)?;
    let pubs = st.bodies(user, domain, &ev.name, now, offline_etag);
    let mut bodies: Vec<String> = Vec::new();
    for p in pubs {
        if Some(p.etag.as_str()) == offline_etag {
            if let Some(off) = ev.offline.as_ref().and_then(|f| f(&p.body)) {
                bodies.push(off);
            }
        } else {
            bodies.push(p.body.clone());
        }
    }
    let _ = pr;
    if bodies.is_empty() {
        return None;
    }
    match &ev.agg {
        Some(agg) => {
            let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
            agg(&refs).or_else(|| bodies.into_iter().next())
        }
        None => bodies.into_iter().next(),
    }
}

/// `sip:user@domain` split.
pub fn split_pres_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    rest.split_once('@')
}

/// A watcher-info document (RFC 3857) about the subscriptions to
/// `pres_uri` for `package`: all of them (`full`), or only `only`
/// (`partial`); `version` is the watcher-info subscription's count.
pub fn winfo_body(
    st: &Store,
    pres_uri: &str,
    package: &str,
    only: Option<&Subscription>,
    version: u32,
) -> String {
    let mut ws: Vec<Subscription> = match only {
        Some(s) => vec![s.clone()],
        None => st.watchers_of(pres_uri, package),
    };
    ws.retain(|w| w.status != Status::Terminated || only.is_some());
    let state = if only.is_some() { "partial" } else { "full" };
    let mut s = format!(
        "<?xml version=\"1.0\"?>\n<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"{version}\" state=\"{state}\">\n  <watcher-list resource=\"{}\" package=\"{}\"",
        xml_escape(pres_uri),
        xml_escape(package)
    );
    if ws.is_empty() {
        s.push_str("/>\n</watcherinfo>\n");
        return s;
    }
    s.push_str(">\n");
    for w in &ws {
        let _ = writeln!(
            s,
            "    <watcher id=\"{}\" event=\"subscribe\" status=\"{}\">{}</watcher>",
            xml_escape(&w.callid),
            w.status.word(),
            xml_escape(&w.watcher_uri())
        );
    }
    s.push_str("  </watcher-list>\n</watcherinfo>\n");
    s
}

fn xml_escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub() -> Subscription {
        Subscription {
            pres_uri: "sip:alice@ex.test".into(),
            event: "presence".into(),
            to_user: "alice".into(),
            to_domain: "ex.test".into(),
            from_user: "bob".into(),
            from_domain: "ex.test".into(),
            watcher_user: "bob".into(),
            watcher_domain: "ex.test".into(),
            to_tag: "tt".into(),
            from_tag: "ft".into(),
            callid: "c1".into(),
            contact: "sip:bob@10.0.0.2:5070".into(),
            local_contact: "sip:127.0.0.1:5060;transport=udp".into(),
            status: Status::Active,
            ..Subscription::default()
        }
    }

    #[test]
    fn notify_has_kamailios_headers_in_its_order() {
        let (t, next) = build(
            &sub(),
            2,
            "active;expires=600",
            Some(("application/pidf+xml", "<x/>")),
            ("UDP", "127.0.0.1:5060"),
            "z9hG4bKx",
            Some("User-Agent: k"),
        );
        assert_eq!(
            t,
            "NOTIFY sip:bob@10.0.0.2:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nTo: <sip:bob@ex.test>;tag=ft\r\nFrom: <sip:alice@ex.test>;tag=tt\r\nCSeq: 2 NOTIFY\r\nCall-ID: c1\r\nContent-Length: 4\r\nUser-Agent: k\r\nMax-Forwards: 70\r\nEvent: presence\r\nContact: <sip:127.0.0.1:5060;transport=udp>\r\nSubscription-State: active;expires=600\r\nContent-Type: application/pidf+xml\r\n\r\n<x/>"
        );
        assert_eq!(next, "sip:bob@10.0.0.2:5070");
        assert!(sr_sdk::sip_msg::Message::parse(t.as_bytes()).is_ok());
    }

    #[test]
    fn route_sets_and_states() {
        let mut s = sub();
        s.record_route = "<sip:p1.ex;lr>, <sip:p2.ex;lr;x=\"a,b\">".into();
        s.event_id = "7".into();
        let (t, next) = build(
            &s,
            3,
            "terminated;reason=timeout",
            None,
            ("TCP", "h"),
            "b",
            None,
        );
        assert!(t.contains("Route: <sip:p1.ex;lr>\r\nRoute: <sip:p2.ex;lr;x=\"a,b\">\r\n"));
        assert!(t.contains("Event: presence;id=7\r\n"));
        assert!(t.ends_with("Subscription-State: terminated;reason=timeout\r\n\r\n"));
        assert!(!t.contains("Content-Type"));
        assert_eq!(next, "sip:p1.ex;lr");
        assert_eq!(
            split_routes("\"a\\\"b, c\" <sip:p1;LR>, <sip:p2;lr>"),
            vec![
                "\"a\\\"b, c\" <sip:p1;LR>".to_string(),
                "<sip:p2;lr>".to_string()
            ]
        );
        s.record_route = "<sip:edge.ex;LR>".into();
        let (t, next) = build(&s, 4, "active;expires=1", None, ("UDP", "h"), "b", None);
        assert!(t.starts_with("NOTIFY sip:bob@10.0.0.2:5070 SIP/2.0"), "{t}");
        assert_eq!(next, "sip:edge.ex;LR");
        assert_eq!(state_value(Status::Active, 5), "active;expires=5");
        assert_eq!(state_value(Status::Pending, 5), "pending;expires=5");
        assert_eq!(state_value(Status::Active, 0), "terminated;reason=timeout");
        assert_eq!(
            parse_socket("udp:127.0.0.1:5060"),
            Some((Proto::Udp, "127.0.0.1:5060".parse().unwrap()))
        );
        assert_eq!(
            parse_socket("tcp:[::1]:5060"),
            Some((Proto::Tcp, "[::1]:5060".parse().unwrap()))
        );
        assert_eq!(parse_socket("x"), None);
    }

    #[test]
    fn watcher_info_lists_watchers() {
        let mut st = Store::default();
        let s = sub();
        st.subs.insert(s.key(), s.clone());
        let full = winfo_body(&st, "sip:alice@ex.test", "presence", None, 1);
        assert_eq!(
            full,
            "<?xml version=\"1.0\"?>\n<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"1\" state=\"full\">\n  <watcher-list resource=\"sip:alice@ex.test\" package=\"presence\">\n    <watcher id=\"c1\" event=\"subscribe\" status=\"active\">sip:bob@ex.test</watcher>\n  </watcher-list>\n</watcherinfo>\n"
        );
        let none = winfo_body(&st, "sip:carol@ex.test", "presence", None, 2);
        assert!(none.contains(
            "<watcher-list resource=\"sip:carol@ex.test\" package=\"presence\"/>\n</watcherinfo>\n"
        ));
        assert!(winfo_body(&st, "sip:x@y", "presence", Some(&s), 3).contains("state=\"partial\""));
    }
}
