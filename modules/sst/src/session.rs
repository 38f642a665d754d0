//! The session timer of a dialog: chosen when the dialog is made from
//! its INVITE, agreed by the 2xx (and by each refresh), and made the
//! dialog's lifetime, so that a session nobody refreshes ends with its
//! dialog (with a BYE to both sides when the dialog module sends them).

use crate::headers::{self, SessionExpires};
use crate::Sst;
use sr_mod_dialog::dlg::Dialog;
use sr_mod_dialog::Dlg;
use sr_mod_tm::callbacks::{TmEvent, TmEventKind};
use sr_sdk::prelude::*;

/// The key of the module's data in a dialog.
pub const DATA: &str = "sst";

/// What the module keeps with a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// The session interval, seconds.
    pub interval: u32,
    /// This proxy asked for the timer (the INVITE had no
    /// `Session-Expires`).
    pub by_proxy: bool,
    /// The caller said `Supported: timer`.
    pub uac_supports: bool,
    /// A timer was agreed and is enforced (the dialog's lifetime is the
    /// interval); `false` until the 2xx, and when nobody refreshes.
    pub active: bool,
}

impl Info {
    fn encode(self) -> String {
        format!(
            "{} {} {} {}",
            self.interval,
            u8::from(self.by_proxy),
            u8::from(self.uac_supports),
            u8::from(self.active)
        )
    }

    fn decode(s: &str) -> Option<Info> {
        let mut it = s.split(' ');
        Some(Info {
            interval: it.next()?.parse().ok()?,
            by_proxy: it.next()? == "1",
            uac_supports: it.next()? == "1",
            active: it.next()? == "1",
        })
    }

    /// The module's data of a dialog.
    pub fn of(d: &Dialog) -> Option<Info> {
        d.mod_data.get(DATA).and_then(|s| Info::decode(s))
    }
}

/// A 422 with this proxy's `Min-SE` (Kamailio's text).
pub fn reply_422(ctx: &mut Ctx<'_>, min_se: u32) -> bool {
    ctx.with_reply_headers(&["Min-SE: ", &min_se.to_string(), "\r\n"], |ctx| {
        ctx.core
            .send_reply(ctx.msg, 422, "Session Timer Too Small")
            .is_ok()
    })
}

/// A dialog was made of an INVITE carrying the `sst_flag`: with a
/// `Session-Expires` below `min_se`, a caller that supports timers gets
/// a 422 (with `reject_to_small`; the dialog then has no timer), another
/// has its `Min-SE` raised to ours; without one, this proxy asks for a
/// timer of `min_se` seconds (or the request's `Min-SE`, if higher).
pub fn created(s: &Sst, ctx: &mut Ctx<'_>, dlg: &Dlg, key: (u32, u32)) {
    let flag = s.flag();
    if !(0..32).contains(&flag) || ctx.msg.flags & (1 << flag) == 0 {
        return;
    }
    if ctx.msg.msg().method() != Some(Method::Invite) {
        return;
    }
    let m = ctx.msg.msg();
    let asked_min = headers::min_se(m).and_then(Result::ok).unwrap_or(0);
    let min = s.min_se().max(asked_min);
    let uac_supports = headers::supports_timer(m);
    let info = match headers::session_expires(m) {
        Some(Err(e)) => {
            lm_err!("sst: Session-Expires of the INVITE: {e}; no session timer");
            return;
        }
        Some(Ok(SessionExpires { interval, .. })) => {
            if interval < min {
                if uac_supports {
                    if s.reject() {
                        lm_info!("sst: Session-Expires {interval} below {min}: 422");
                        reply_422(ctx, min);
                        return;
                    }
                } else if headers::min_se(m).is_none_or(|v| v.map_or(true, |v| v < min)) {
                    let gone: Vec<(u32, u32)> = headers::min_se_headers(m)
                        .map(|h| (h.start, h.end))
                        .collect();
                    let mut edits = std::mem::take(&mut ctx.msg.edits);
                    for (start, end) in gone {
                        edits.delete(start, end);
                    }
                    edits.append_header(ctx.msg.msg(), "Min-SE", &min.to_string());
                    ctx.msg.edits = edits;
                }
            }
            Info {
                interval: interval.max(min),
                by_proxy: false,
                uac_supports,
                active: false,
            }
        }
        None => {
            let mut edits = std::mem::take(&mut ctx.msg.edits);
            edits.append_header(ctx.msg.msg(), "Session-Expires", &min.to_string());
            ctx.msg.edits = edits;
            Info {
                interval: min,
                by_proxy: true,
                uac_supports,
                active: false,
            }
        }
    };
    if let Some(x) = dlg.table().get_mut(key) {
        x.mod_data.insert(DATA.to_string(), info.encode());
    }
}

fn ids(m: &Message<'_>) -> Option<(String, String, String)> {
    let callid = m.call_id().ok()?.to_string();
    let ftag = m.from().ok()?.tag()?.to_string();
    let ttag = m.to_tag().ok().flatten().unwrap_or("").to_string();
    Some((callid, ftag, ttag))
}

/// A 2xx received for an INVITE or UPDATE of a dialog with a session
/// timer. To the initial INVITE: a `Session-Expires` in it agrees the
/// timer; without one, one is added (`;refresher=uac`) when the caller
/// supports timers or this proxy asked, and the timer is enforced only
/// when the caller supports them (a caller that does not would never
/// refresh). The agreed interval becomes the dialog's lifetime, which
/// then only such 2xx renew. To a refresh (re-INVITE, UPDATE) of an
/// enforced timer: its `Session-Expires` (else the request's) is the new
/// interval; with neither the session has no timer any more and the
/// dialog gets `default_timeout` back.
pub fn on_tm(s: &Sst, ev: &mut TmEvent<'_>) {
    if ev.kind != TmEventKind::ReplyIn || !(200..300).contains(&ev.code) {
        return;
    }
    let Some(dlg) = s.dialog() else { return };
    let req = ev.req.msg();
    if !matches!(req.method(), Some(Method::Invite | Method::Update)) {
        return;
    }
    let Some((callid, ftag, ttag)) = ids(req) else {
        return;
    };
    let initial = ttag.is_empty();
    let asked = headers::session_expires(req).and_then(Result::ok);
    let Some(rpl) = ev.received.as_deref_mut() else {
        return;
    };
    let key = if initial {
        // Not answered yet; or answered by this 2xx's first copy (a
        // retransmission, which gets the same header).
        sr_mod_dialog::track::unanswered(&dlg, &callid, &ftag).or_else(|| {
            let callee = rpl.msg().to_tag().ok().flatten().unwrap_or("");
            dlg.table()
                .find(&callid, &ftag, callee)
                .filter(|_| !callee.is_empty())
                .map(|(k, _)| k)
        })
    } else {
        dlg.table().find(&callid, &ftag, &ttag).map(|(k, _)| k)
    };
    let Some(key) = key else { return };
    let Some(info) = dlg.table().get(key).and_then(Info::of) else {
        return;
    };
    let agreed = match headers::session_expires(rpl.msg()) {
        Some(Ok(se)) if se.interval > 0 => Some(se.interval),
        Some(Ok(_)) => None,
        Some(Err(e)) => {
            lm_err!("sst: Session-Expires of a 2xx: {e}");
            return;
        }
        None if initial => {
            if !(info.uac_supports || info.by_proxy) {
                lm_dbg!("sst: neither side supports session timers");
                return;
            }
            let value = format!("{};refresher=uac", info.interval);
            let mut edits = std::mem::take(&mut rpl.edits);
            edits.append_header(rpl.msg(), "Session-Expires", &value);
            rpl.edits = edits;
            info.uac_supports.then_some(info.interval)
        }
        None => asked.map(|se| se.interval).filter(|i| *i > 0),
    };
    if !initial && !info.active {
        return;
    }
    let mut t = dlg.table();
    let Some(x) = t.get_mut(key) else { return };
    match agreed {
        Some(interval) => {
            let info = Info {
                interval,
                active: true,
                ..info
            };
            x.mod_data.insert(DATA.to_string(), info.encode());
            // Only refreshes renew it, not every request in the dialog.
            x.dflags |= sr_mod_dialog::dlg::DFLAG_NORESET;
            drop(t);
            sr_mod_dialog::funcs::set_timeout(&dlg, key, interval);
        }
        None if info.active => {
            let info = Info {
                active: false,
                ..info
            };
            x.mod_data.insert(DATA.to_string(), info.encode());
            drop(t);
            let default = params::get_int(&dlg.p.default_timeout).clamp(1, i64::from(u32::MAX));
            sr_mod_dialog::funcs::set_timeout(&dlg, key, default as u32);
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_round_trips() {
        let i = Info {
            interval: 1800,
            by_proxy: true,
            uac_supports: false,
            active: true,
        };
        assert_eq!(Info::decode(&i.encode()), Some(i));
        assert_eq!(Info::decode("x 1 0 1"), None);
        assert_eq!(Info::decode("90 1 0"), None);
    }
}
