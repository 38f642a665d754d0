//! `handle_publish([sender_uri])`: a PUBLISH (RFC 3903) makes, refreshes,
//! changes or removes a publication, answered as Kamailio answers (200
//! with Expires and SIP-ETag, 400, 412, 415, 489 with Allow-Events, 500),
//! and the presentity's watchers are told.

use crate::common::{event_of, expires_value, reply, EventCheck};
use crate::events::{EventDef, Status};
use crate::notify;
use crate::store::{Presentity, Store, SubKey, Subscription};
use crate::Presence;
use sr_sdk::prelude::*;

/// The entity tag of a new publication state: `a.<start>.<pid>.<n>.<count>`
/// (Kamailio's form; `count` is how many times the publication has been
/// refreshed or changed).
pub fn etag(pr: &Presence, count: u32) -> String {
    let n = pr.next_counter();
    format!("a.{}.{}.{n}.{count}", pr.startup, std::process::id())
}

/// The refresh count an entity tag carries (digits after its last dot):
/// `None` when it has none (Kamailio answers 500 then).
pub fn etag_count(etag: &str) -> Option<u32> {
    let (_, tail) = etag.rsplit_once('.')?;
    if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tail.parse().ok()
}

/// `handle_publish`: 1 when handled (a 412 included), -1 after an error
/// reply.
pub fn handle(pr: &Presence, ctx: &mut Ctx<'_>, sender: Option<String>) -> i32 {
    let now = sr_sdk::db::now();
    let ev = match event_of(pr, ctx) {
        EventCheck::Ok(ev) => ev,
        EventCheck::Replied => return -1,
    };
    let m = ctx.msg.msg();
    let expires = match m.header(HeaderName::Expires) {
        None => i64::from(ev.default_expires),
        Some(h) => expires_value(h.value),
    }
    .min(pr.p.max_expires());
    let Ok(ruri) = ctx.msg.ruri_parsed() else {
        return reply(pr, ctx, 400, "Bad request", "");
    };
    let user = ruri.user.unwrap_or("").to_string();
    let domain = ruri.host_str.to_string();
    let m = ctx.msg.msg();
    if !m.has_content_length() {
        return reply(pr, ctx, 400, "Bad request", "");
    }
    let body = String::from_utf8_lossy(m.body()).into_owned();
    let if_match = m
        .headers_by_name("SIP-If-Match")
        .next()
        .map(|h| h.value.trim().to_string());
    if body.is_empty() && if_match.is_none() {
        return reply(pr, ctx, 400, "Invalid request", "");
    }
    if let Some(s) = &sender {
        if sr_sdk::sip_msg::Uri::parse(s).is_err() {
            return reply(pr, ctx, 400, "Bad request", "");
        }
    }
    if !body.is_empty() {
        if let Some(check) = &ev.check {
            if !check(&body) {
                if ev.check_fails_with_500 {
                    return reply(pr, ctx, 500, "Server Internal Error", "");
                }
                return reply(pr, ctx, 415, "Unsupported media type", "");
            }
        }
    }
    let t = pr.tables().clone();
    let offset = pr.p.expires_offset();
    let pres_uri = crate::store::uri(&user, &domain);
    match if_match {
        None => {
            let tag = etag(pr, 0);
            let p = {
                let mut st = pr.store();
                let p = Presentity {
                    user,
                    domain,
                    event: ev.name.clone(),
                    etag: tag.clone(),
                    expires: now + expires,
                    received_time: now,
                    body,
                    sender: sender.clone().unwrap_or_default(),
                    seq: st.next_seq(),
                };
                st.pres.push(p.clone());
                p
            };
            pr.db().insert_pres(&t, &p);
            let shown = if expires == 0 { 0 } else { expires - offset };
            reply(
                pr,
                ctx,
                200,
                "OK",
                &format!("Expires: {shown}\r\nSIP-ETag: {tag}\r\n"),
            );
            tell_watchers(pr, ctx.core, &ev, &p.uri(), None, sender.as_deref(), now);
            1
        }
        Some(old) if expires <= 0 => {
            let found = {
                let st = pr.store();
                st.find_pres(&user, &domain, &ev.name, &old)
            };
            if found.is_none() {
                reply(pr, ctx, 412, "Conditional request failed", "");
                return 1;
            }
            reply(
                pr,
                ctx,
                200,
                "OK",
                &format!("Expires: 0\r\nSIP-ETag: {old}\r\n"),
            );
            tell_watchers(
                pr,
                ctx.core,
                &ev,
                &pres_uri,
                Some(&old),
                sender.as_deref(),
                now,
            );
            let removed = {
                let mut st = pr.store();
                st.find_pres(&user, &domain, &ev.name, &old)
                    .map(|i| st.pres.remove(i))
            };
            if let Some(p) = removed {
                pr.db().delete_pres(&t, &p);
            }
            1
        }
        Some(old) => {
            let Some(count) = etag_count(&old) else {
                return reply(pr, ctx, 500, "Server Internal Error", "");
            };
            let tag = etag(pr, count.wrapping_add(1));
            let updated = {
                let mut st = pr.store();
                match st.find_pres(&user, &domain, &ev.name, &old) {
                    None => None,
                    Some(i) => {
                        let p = &mut st.pres[i];
                        p.etag = tag.clone();
                        p.expires = now + expires;
                        p.received_time = now;
                        if !body.is_empty() {
                            p.body = body;
                        }
                        if let Some(s) = &sender {
                            p.sender = s.clone();
                        }
                        Some(p.clone())
                    }
                }
            };
            let Some(updated) = updated else {
                reply(pr, ctx, 412, "Conditional request failed", "");
                return 1;
            };
            pr.db().update_pres(&t, &old, &updated);
            reply(
                pr,
                ctx,
                200,
                "OK",
                &format!("Expires: {}\r\nSIP-ETag: {tag}\r\n", expires - offset),
            );
            tell_watchers(pr, ctx.core, &ev, &pres_uri, None, sender.as_deref(), now);
            1
        }
    }
}

/// Sends the presentity's state to its active watchers of `ev` (not to
/// one whose Contact is `sender`), the publication `offline` standing as
/// its offline body. The body and each NOTIFY's CSeq are taken under one
/// lock, so that of two changes at once the later CSeq carries the later
/// state.
pub fn tell_watchers(
    pr: &Presence,
    core: &dyn Core,
    ev: &EventDef,
    pres_uri: &str,
    offline: Option<&str>,
    sender: Option<&str>,
    now: i64,
) {
    let (body, subs) = {
        let mut st = pr.store();
        let keys: Vec<SubKey> = st
            .watchers_of(pres_uri, &ev.name)
            .into_iter()
            .filter(|s| s.status == Status::Active)
            .filter(|s| sender.is_none_or(|x| x != s.contact))
            .map(|s| s.key())
            .collect();
        if keys.is_empty() {
            return;
        }
        let body = notify::state_body(pr, &st, ev, pres_uri, offline, now);
        let subs: Vec<Subscription> = keys
            .iter()
            .filter_map(|k| next_notify(&mut st, k))
            .collect();
        (body, subs)
    };
    for s in subs {
        send_state(pr, core, ev, &s, body.as_deref(), now, None);
    }
}

/// Moves a stored subscription's CSeq and version on for its next NOTIFY:
/// the subscription as that NOTIFY goes (`None` when it is gone).
pub fn next_notify(st: &mut Store, key: &SubKey) -> Option<Subscription> {
    let s = st.subs.get_mut(key)?;
    s.local_cseq = s.local_cseq.saturating_add(1);
    s.version = s.version.saturating_add(1);
    Some(s.clone())
}

/// Sends `sub` (moved on by [`next_notify`]) a NOTIFY with `body` (only
/// when it is active) and the state it is in, or `state` when given.
pub fn send_state(
    pr: &Presence,
    core: &dyn Core,
    ev: &EventDef,
    sub: &Subscription,
    body: Option<&str>,
    now: i64,
    state: Option<&str>,
) {
    let state = state.map_or_else(
        || notify::state_value(sub.status, sub.expires - now),
        str::to_string,
    );
    let body = body
        .filter(|_| sub.status == Status::Active)
        .map(|b| (ev.content_type.as_str(), b));
    notify::send(
        pr,
        core,
        sub,
        sub.local_cseq.saturating_add(1),
        &state,
        body,
    );
}

/// Moves one subscription on and sends it the body `body` makes from the
/// tables, both under one lock.
pub fn notify_one(
    pr: &Presence,
    core: &dyn Core,
    ev: &EventDef,
    key: &SubKey,
    body: impl FnOnce(&Store, &Subscription) -> Option<String>,
    now: i64,
    state: Option<&str>,
) {
    let (sub, body) = {
        let mut st = pr.store();
        let Some(sub) = next_notify(&mut st, key) else {
            return;
        };
        let b = body(&st, &sub);
        (sub, b)
    };
    send_state(pr, core, ev, &sub, body.as_deref(), now, state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_counts() {
        assert_eq!(etag_count("a.1795760648.26322.3.1"), Some(1));
        assert_eq!(etag_count("a.1.2.3.41"), Some(41));
        assert_eq!(etag_count("nonexist"), None);
        assert_eq!(etag_count("abc.def"), None);
        assert_eq!(etag_count("abc."), None);
        assert_eq!(etag_count("x.18446744073709551615"), None, "above 32 bits");
    }
}
