//! `handle_subscribe([watcher_uri])`: a SUBSCRIBE (RFC 6665) makes,
//! refreshes or ends a subscription, or fetches the state once; it is
//! answered as Kamailio answers (200 — 202 with `subs_respond_200=0` —
//! with Expires and Contact, 423, 481, 489, 400, 500) and followed by a
//! NOTIFY with the state.

use crate::common::{event_of, expires_value, reply, EventCheck};
use crate::events::{EventDef, Kind, Status};
use crate::notify;
use crate::publish::{notify_one, send_state};
use crate::store::{Store, Subscription};
use crate::Presence;
use sr_sdk::msg::RecvInfo;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::Uri;

/// Our Contact URI for a request received on `rcv`: `server_address`
/// when set, else the socket's address with its transport.
pub fn local_contact(pr: &Presence, core: &dyn Core, rcv: &RecvInfo) -> String {
    let set = pr.p.server_address();
    if !set.is_empty() {
        return set
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
    }
    let (host, port) = core
        .received_on(rcv)
        .unwrap_or((rcv.dst.ip().to_string(), rcv.dst.port()));
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    format!("sip:{host}:{port};transport={}", rcv.proto.as_str())
}

fn socket_text(rcv: &RecvInfo) -> String {
    format!("{}:{}", rcv.proto.as_str(), rcv.dst)
}

fn user_host(uri: &str) -> Option<(String, String)> {
    let u = Uri::parse(uri.trim().trim_start_matches('<').trim_end_matches('>')).ok()?;
    Some((u.user.unwrap_or("").to_string(), u.host_str.to_string()))
}

/// `handle_subscribe`: 1 when handled, -1 after an error reply (or, for
/// a Request-URI that does not parse, without one, as Kamailio).
pub fn handle(pr: &Presence, ctx: &mut Ctx<'_>, watcher: Option<String>) -> i32 {
    let now = sr_sdk::db::now();
    let ev = match event_of(pr, ctx) {
        EventCheck::Ok(ev) => ev,
        EventCheck::Replied => return -1,
    };
    let m = ctx.msg.msg();
    let event_id = m
        .event()
        .ok()
        .flatten()
        .and_then(|e| {
            sr_sdk::sip_msg::params::Params::new(e.params)
                .get("id")
                .flatten()
                .map(str::to_string)
        })
        .unwrap_or_default();
    let fail = |ctx: &mut Ctx<'_>| reply(pr, ctx, 500, "Server Internal Error", "");
    let expires = match m.header(HeaderName::Expires) {
        None => i64::from(ev.default_expires),
        Some(h) => expires_value(h.value),
    };
    let (Ok(to), Ok(from), Ok(callid), Ok(cseq)) = (m.to(), m.from(), m.call_id(), m.cseq()) else {
        return fail(ctx);
    };
    let Some(from_tag) = m.from_tag().ok().flatten().map(str::to_string) else {
        return fail(ctx);
    };
    let to_tag = m.to_tag().ok().flatten().map(str::to_string);
    let contact = match m.contacts().next() {
        Some(Ok(sr_sdk::sip_msg::headers::ContactValue::Addr(c))) => Some(c.uri_str.to_string()),
        _ => None,
    };
    let Some(contact) = contact else {
        return fail(ctx);
    };
    let (Some((to_user, to_domain)), Some((from_user, from_domain))) =
        (user_host(to.uri_str), user_host(from.uri_str))
    else {
        return fail(ctx);
    };
    let callid = callid.to_string();
    let cseq = cseq.seq;
    let record_route: Vec<String> = m
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value.trim().to_string())
        .collect();
    let user_agent = m.user_agent().unwrap_or("").to_string();
    let mut expires = expires.min(pr.p.max_expires());
    let min = pr.p.min_expires();
    if expires > 0 && expires < min {
        if pr.p.min_expires_action() == 2 {
            expires = min;
        } else {
            return reply(
                pr,
                ctx,
                423,
                "Interval Too Brief",
                &format!("Min-Expires: {min}\r\n"),
            );
        }
    }
    let lc = local_contact(pr, ctx.core, &ctx.msg.rcv);
    let ok_code = if ev.kind == Kind::Winfo || pr.p.respond_200() {
        200
    } else {
        202
    };
    let ok_hdrs = format!("Expires: {expires}\r\nContact: <{lc}>\r\n");
    let t = pr.tables().clone();
    if let Some(to_tag) = to_tag {
        // Within the dialog: a refresh, or the end. A dialog of another
        // package is not this one.
        let key = (callid.clone(), to_tag, from_tag);
        enum Found {
            Missing,
            Stale,
            Ok(Box<Subscription>),
        }
        let found = {
            let mut st = pr.store();
            match st.subs.get_mut(&key) {
                None => Found::Missing,
                Some(s) if !s.event.eq_ignore_ascii_case(&ev.name) => Found::Missing,
                Some(s) if i64::from(cseq) + pr.p.cseq_offset() <= i64::from(s.remote_cseq) => {
                    Found::Stale
                }
                Some(s) => {
                    s.remote_cseq = cseq;
                    s.contact = contact;
                    s.expires = now + expires;
                    let s = s.clone();
                    if expires == 0 {
                        st.subs.remove(&key);
                    }
                    Found::Ok(Box::new(s))
                }
            }
        };
        let sub = match found {
            Found::Missing => return reply(pr, ctx, 481, "Subscription does not exist", ""),
            Found::Stale => return reply(pr, ctx, 400, "Bad request", ""),
            Found::Ok(s) => *s,
        };
        if expires == 0 {
            pr.db().delete_sub(&t, &sub);
        } else {
            pr.db().save_sub(&t, &sub);
        }
        reply(pr, ctx, ok_code, "OK", &ok_hdrs);
        if expires == 0 {
            if let Some(w) = pr.api.winfo_of(&ev) {
                tell_winfo(pr, ctx.core, &w, &sub.pres_uri, None, now);
            }
            let mut s = sub;
            s.local_cseq = s.local_cseq.saturating_add(1);
            s.version = s.version.saturating_add(1);
            let body = {
                let st = pr.store();
                current_body(pr, &st, &ev, &s, now)
            };
            send_state(
                pr,
                ctx.core,
                &ev,
                &s,
                body.as_deref(),
                now,
                Some("terminated;reason=timeout"),
            );
            // `$subs`: the subscription as its last NOTIFY left it.
            ctx.msg.ext.insert(crate::pv::SubsPv { sub: s, expires });
        } else {
            // A refresh: the watcher-info subscribers hear of it (partial),
            // and the subscriber gets the state when there are such
            // subscribers or with `send_fast_notify`.
            let winfo = pr.api.winfo_of(&ev);
            if let Some(w) = &winfo {
                tell_winfo(pr, ctx.core, w, &sub.pres_uri, Some(&sub), now);
            }
            if winfo.is_some() || pr.p.send_fast_notify() {
                let state = notify::state_value(sub.status, expires);
                notify_one(
                    pr,
                    ctx.core,
                    &ev,
                    &sub.key(),
                    |st, s| current_body(pr, st, &ev, s, now),
                    now,
                    Some(&state),
                );
            }
            let now_sub = pr.store().subs.get(&sub.key()).cloned();
            ctx.msg.ext.insert(crate::pv::SubsPv {
                sub: now_sub.unwrap_or(sub),
                expires,
            });
        }
        return 1;
    }
    // A new subscription.
    let Ok(ruri) = ctx.msg.ruri_parsed() else {
        return -1;
    };
    let pres_uri = crate::store::uri(ruri.user.unwrap_or(""), ruri.host_str);
    let (watcher_user, watcher_domain) = match &watcher {
        Some(w) => match user_host(w) {
            Some(x) => x,
            None => return reply(pr, ctx, 400, "Bad request", ""),
        },
        None => (from_user.clone(), from_domain.clone()),
    };
    let our_tag = pr
        .tm()
        .and_then(|tm| tm.local_to_tag(ctx))
        .or_else(|| ctx.core.stateless_to_tag(ctx.msg))
        .unwrap_or_else(|| format!("{:x}", pr.next_counter()));
    let status = if ev.kind == Kind::Winfo || !ev.req_auth {
        Status::Active
    } else {
        authorise(pr, &ev, &pres_uri, &watcher_user, &watcher_domain, now)
    };
    let sub = Subscription {
        pres_uri,
        event: ev.name.clone(),
        event_id,
        to_user,
        to_domain,
        from_user,
        from_domain,
        watcher_user,
        watcher_domain,
        to_tag: our_tag,
        from_tag,
        callid,
        local_cseq: 0,
        remote_cseq: cseq,
        contact,
        record_route: record_route.join(", "),
        expires: now + expires,
        status,
        reason: String::new(),
        version: 0,
        socket: socket_text(&ctx.msg.rcv),
        local_contact: lc,
        user_agent,
        seq: 0,
    };
    pr.counter_tick();
    // `$subs` after `handle_subscribe()`: the subscription as handled,
    // before it is stored (Kamailio's version 1, Expires in seconds).
    ctx.msg.ext.insert(crate::pv::SubsPv {
        sub: Subscription {
            version: 1,
            ..sub.clone()
        },
        expires,
    });
    if expires == 0 {
        // A fetch: the state once, nothing kept.
        reply(pr, ctx, ok_code, "OK", &ok_hdrs);
        if pr.p.send_fast_notify() {
            let body = {
                let st = pr.store();
                current_body(pr, &st, &ev, &sub, now)
            };
            send_state(
                pr,
                ctx.core,
                &ev,
                &sub,
                body.as_deref(),
                now,
                Some("terminated;reason=timeout"),
            );
        }
        return 1;
    }
    let sub = {
        let mut st = pr.store();
        let seq = st.next_seq();
        let sub = Subscription { seq, ..sub };
        st.subs.insert(sub.key(), sub.clone());
        sub
    };
    pr.db().save_sub(&t, &sub);
    reply(pr, ctx, ok_code, "OK", &ok_hdrs);
    let winfo = pr.api.winfo_of(&ev);
    if let Some(w) = &winfo {
        tell_winfo(pr, ctx.core, w, &sub.pres_uri, Some(&sub), now);
    }
    if winfo.is_some() || pr.p.send_fast_notify() {
        let state = notify::state_value(sub.status, expires);
        notify_one(
            pr,
            ctx.core,
            &ev,
            &sub.key(),
            |st, s| current_body(pr, st, &ev, s, now),
            now,
            Some(&state),
        );
    }
    1
}

/// The state a subscription's NOTIFY carries now (a watcher-info
/// document numbered with the subscription's version).
fn current_body(
    pr: &Presence,
    st: &Store,
    ev: &EventDef,
    sub: &Subscription,
    now: i64,
) -> Option<String> {
    if ev.kind == Kind::Winfo {
        let watched = ev.name.strip_suffix(".winfo").unwrap_or(&ev.name);
        return Some(notify::winfo_body(
            st,
            &sub.pres_uri,
            watched,
            None,
            sub.version.max(1),
        ));
    }
    notify::state_body(pr, st, ev, &sub.pres_uri, None, now)
}

/// A new watcher's state: the one recorded for it, else the package's
/// decision (recorded in `watchers`).
fn authorise(
    pr: &Presence,
    ev: &EventDef,
    pres_uri: &str,
    user: &str,
    domain: &str,
    now: i64,
) -> Status {
    let key = (
        pres_uri.to_string(),
        user.to_string(),
        domain.to_string(),
        ev.name.clone(),
    );
    if let Some((s, _)) = pr.store().watchers.get(&key) {
        return *s;
    }
    let watcher = crate::store::uri(user, domain);
    let status = ev
        .auth
        .as_ref()
        .map_or(Status::Pending, |f| f(&watcher, pres_uri));
    pr.store().watchers.insert(key.clone(), (status, now));
    pr.db().save_watcher(pr.tables(), &key, status, now);
    status
}

/// Tells the watcher-info subscribers of `pres_uri`: only about `only`
/// (partial) when given, else everything (full).
pub fn tell_winfo(
    pr: &Presence,
    core: &dyn Core,
    w: &EventDef,
    pres_uri: &str,
    only: Option<&Subscription>,
    now: i64,
) {
    let watched = w.name.strip_suffix(".winfo").unwrap_or(&w.name).to_string();
    let subs = pr.store().watchers_of(pres_uri, &w.name);
    for s in subs {
        notify_one(
            pr,
            core,
            w,
            &s.key(),
            |st, sub| {
                Some(notify::winfo_body(
                    st,
                    pres_uri,
                    &watched,
                    only,
                    sub.version,
                ))
            },
            now,
            None,
        );
    }
}
