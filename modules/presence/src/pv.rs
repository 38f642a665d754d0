//! `$subs(name)` — the subscription `handle_subscribe()` just handled (as
//! it was before it was stored) and, in `event_route[presence:notify-reply]`,
//! the one the NOTIFY belongs to — and `$notify_reply(pv)`, any
//! pseudo-variable read from that NOTIFY's reply (a faked `408 TIMEOUT`
//! when none came), as Kamailio's.

use crate::store::Subscription;
use crate::Presence;
use sr_sdk::exports::PvName;
use sr_sdk::prelude::*;
use std::sync::Arc;

/// The subscription `$subs` reads, kept on the message.
#[derive(Debug, Clone)]
pub struct SubsPv {
    /// The subscription.
    pub sub: Subscription,
    /// `expires` as `$subs(expires)` gives it (seconds, or the absolute
    /// time for a stored one).
    pub expires: i64,
}

/// The reply `$notify_reply` reads, kept on the NOTIFY's message.
pub struct NotifyReply(pub SipMsg);

/// Kamailio's faked reply when a NOTIFY got none.
pub const FAKED_408: &str = "SIP/2.0 408 TIMEOUT\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nFrom: invalid;\r\nTo: invalid\r\nCall-ID: invalid\r\nCSeq: 1 TIMEOUT\r\nContent-Length: 0\r\n\r\n";

fn text(v: &str) -> Value<'static> {
    Value::Str(v.to_string().into())
}

/// One field of a subscription.
pub fn field(p: &SubsPv, name: &str) -> Value<'static> {
    let s = &p.sub;
    match name {
        "uri" | "pres_uri" => text(&s.pres_uri),
        "to_user" => text(&s.to_user),
        "to_domain" => text(&s.to_domain),
        "from_user" => text(&s.from_user),
        "from_domain" => text(&s.from_domain),
        "watcher_username" => text(&s.watcher_user),
        "watcher_domain" => text(&s.watcher_domain),
        "event" => text(&s.event),
        "event_id" => text(&s.event_id),
        "to_tag" => text(&s.to_tag),
        "from_tag" => text(&s.from_tag),
        "callid" => text(&s.callid),
        "remote_cseq" => Value::Int(i64::from(s.remote_cseq)),
        "local_cseq" => Value::Int(i64::from(s.local_cseq)),
        "contact" => text(&s.contact),
        "local_contact" => text(&s.local_contact),
        "record_route" => text(&s.record_route),
        "expires" => Value::Int(p.expires),
        "status" => Value::Int(s.status as i64),
        "reason" => text(&s.reason),
        "version" => Value::Int(i64::from(s.version)),
        "flags" => Value::Int(0),
        "user_agent" => text(&s.user_agent),
        "sockinfo" => text(&s.socket),
        _ => Value::Null,
    }
}

/// The names `$subs` knows.
pub const NAMES: &[&str] = &[
    "uri",
    "pres_uri",
    "to_user",
    "to_domain",
    "from_user",
    "from_domain",
    "watcher_username",
    "watcher_domain",
    "event",
    "event_id",
    "to_tag",
    "from_tag",
    "callid",
    "remote_cseq",
    "local_cseq",
    "contact",
    "local_contact",
    "record_route",
    "expires",
    "status",
    "reason",
    "version",
    "flags",
    "user_agent",
    "sockinfo",
];

/// Adds `$subs` and `$notify_reply`.
pub fn export(def: ModuleDef, _pr: &Arc<Presence>) -> ModuleDef {
    def.pv("subs", |ctx, n: &PvName| {
        let name = n.inner.as_deref().unwrap_or("").trim();
        ctx.msg
            .ext
            .get::<SubsPv>()
            .map_or(Value::Null, |p| field(p, name))
    })
    .pv("notify_reply", |ctx, n: &PvName| {
        let name = n.inner.as_deref().unwrap_or("").trim().to_string();
        let Some(NotifyReply(mut r)) = ctx.msg.ext.remove::<NotifyReply>() else {
            return Value::Null;
        };
        let v = ctx.core.pv_get(&mut r, &name).unwrap_or(Value::Null);
        ctx.msg.ext.insert(NotifyReply(r));
        v
    })
}
