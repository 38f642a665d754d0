//! What PUBLISH and SUBSCRIBE share: the Event check (489 with
//! Allow-Events) and replies with extra header lines.

use crate::events::EventDef;
use crate::Presence;
use sr_sdk::prelude::*;
use std::sync::Arc;

/// The outcome of the Event check.
pub enum EventCheck {
    /// A package presence serves.
    Ok(Arc<EventDef>),
    /// None: 489 (or 400) was sent.
    Replied,
}

/// The request's event package: 489 Bad Event with Allow-Events when the
/// Event header is missing, names no package served here or carries
/// parameters (Kamailio matches parameters too, and its packages have
/// none); 400 when it does not parse.
pub fn event_of(pr: &Presence, ctx: &mut Ctx<'_>) -> EventCheck {
    let ev = match ctx.msg.msg().event() {
        Err(_) => {
            reply(pr, ctx, 400, "Bad request", "");
            return EventCheck::Replied;
        }
        Ok(None) => None,
        Ok(Some(e)) if !e.params.trim().is_empty() => None,
        Ok(Some(e)) => pr.api.find(e.package),
    };
    match ev {
        Some(ev) => EventCheck::Ok(ev),
        None => {
            let allow = format!("Allow-Events: {}\r\n", pr.api.allow_events());
            reply(pr, ctx, 489, "Bad Event", &allow);
            EventCheck::Replied
        }
    }
}

/// Replies (within the transaction when there is one, else statelessly)
/// with `extra` header lines; -1, the script's error.
pub fn reply(pr: &Presence, ctx: &mut Ctx<'_>, code: u16, reason: &str, extra: &str) -> i32 {
    let ok = ctx.with_reply_headers(&[extra], |ctx| pr.replier.send(ctx, code, reason));
    if !ok {
        lm_err!("presence: cannot send the {code} reply");
    }
    -1
}

/// An Expires value read as Kamailio reads it: its leading digits, 0
/// when there are none or they overflow (so `soon` and `-5` mean 0).
pub fn expires_value(v: &str) -> i64 {
    let v = v.trim();
    let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    v[..end].parse::<u32>().map_or(0, i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_as_kamailio_reads_it() {
        assert_eq!(expires_value(" 600 "), 600);
        assert_eq!(expires_value("12abc"), 12);
        assert_eq!(expires_value("soon"), 0);
        assert_eq!(expires_value("-5"), 0);
        assert_eq!(expires_value("4294967296"), 0);
    }
}
