//! How dialogs follow the messages: made from an initial INVITE, moved by
//! the replies tm sends upstream, found again by the in-dialog requests
//! (`did` in our Route entry, else Call-ID and tags), ended by BYE, a
//! failure or their timeout.

use crate::dlg::{unix_now, Dialog, Leg, State, DFLAG_NORESET, DFLAG_TIMEOUT_BYE};
use crate::{bye, Dlg, DlgCtx};
use sr_mod_tm::{TmEvent, TmEventKind};
use sr_sdk::prelude::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Dialogs whose INVITE got no transaction (never relayed) are dropped
/// after this long.
pub const UNBOUND_TIMEOUT: Duration = Duration::from_secs(10);
/// Ended dialogs stay findable this long (late ACKs, BYE retransmissions).
pub const KEEP_ENDED: Duration = Duration::from_secs(5);

/// The message's dialog context, made if missing.
pub fn dctx(msg: &mut SipMsg) -> &mut DlgCtx {
    if msg.ext.get::<DlgCtx>().is_none() {
        msg.ext.insert(DlgCtx::default());
    }
    msg.ext
        .get_mut::<DlgCtx>()
        .expect("dialog context just inserted")
}

fn ids(m: &Message<'_>) -> Option<(String, String, String)> {
    let callid = m.call_id().ok()?.trim().to_string();
    let ftag = m.from_tag().ok().flatten().unwrap_or("").to_string();
    let ttag = m.to_tag().ok().flatten().unwrap_or("").to_string();
    Some((callid, ftag, ttag))
}

/// The dialog of the message: the one `dlg_manage`, `loose_route` or
/// `dlg_get` found, else the one of its Call-ID and tags (replies,
/// requests within before `loose_route`), looked up each time.
pub fn current(d: &Dlg, msg: &mut SipMsg) -> Option<(u32, u32)> {
    if let Some(k) = msg.ext.get::<DlgCtx>().and_then(|c| c.key) {
        return Some(k);
    }
    if msg.faked {
        return None;
    }
    let (callid, ftag, ttag) = ids(msg.msg())?;
    d.table().find(&callid, &ftag, &ttag).map(|(k, _)| k)
}

/// The dialog's route set as written in Record-Route, each entry a
/// name-addr.
fn record_routes(m: &Message<'_>) -> Vec<String> {
    m.record_routes()
        .filter_map(Result::ok)
        .map(|na| {
            if na.bracketed {
                format!("<{}>", na.uri_str)
            } else {
                na.uri_str.to_string()
            }
        })
        .collect()
}

fn contact(m: &Message<'_>) -> String {
    m.contacts()
        .filter_map(Result::ok)
        .find_map(|c| match c {
            sr_sdk::sip_msg::headers::ContactValue::Addr(na) => Some(na.uri_str.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

fn socket(rcv: &sr_sdk::RecvInfo) -> String {
    format!("{}:{}", rcv.proto.as_str().to_ascii_lowercase(), rcv.dst)
}

fn lifetime(d: &Dlg, core: &dyn Core, msg: &mut SipMsg) -> u32 {
    let avp = params::get_str(&d.p.timeout_avp);
    if !avp.is_empty() {
        if let Some(Value::Int(n)) = core.pv_get(msg, &avp) {
            if n > 0 {
                return n as u32;
            }
        }
        if let Some(Value::Str(s)) = core.pv_get(msg, &avp) {
            if let Ok(n) = s.trim().parse::<u32>() {
                return n;
            }
        }
    }
    params::get_int(&d.p.default_timeout).clamp(1, u32::MAX as i64) as u32
}

/// `dlg_manage()` and the `dlg_flag`: a dialog for an initial INVITE
/// (the spiral of one already made gets that one), `;did=` added to our
/// Record-Route. 1 done, -1 not an initial INVITE (or a broken one).
pub fn create(d: &Dlg, ctx: &mut Ctx<'_>) -> i32 {
    if ctx.msg.ext.get::<DlgCtx>().is_some_and(|c| c.key.is_some()) {
        return 1;
    }
    if ctx.msg.msg().method() != Some(Method::Invite) {
        return -1;
    }
    let Some((callid, ftag, ttag)) = ids(ctx.msg.msg()) else {
        return -1;
    };
    if !ttag.is_empty() {
        return -1;
    }
    let cseq = ctx.msg.msg().cseq().map_or(0, |c| c.seq);
    let bound = d.tm().is_some_and(|t| t.has_transaction(ctx.msg));
    if params::get_int(&d.p.detect_spirals) != 0 {
        let mut t = d.table();
        let spiral = t.by_callid(&callid).into_iter().find(|k| {
            t.get(*k).is_some_and(|x| {
                x.caller.tag == ftag && matches!(x.state, State::Unconfirmed | State::Early)
            })
        });
        if let Some(k) = spiral {
            if let Some(x) = t.get_mut(k) {
                x.caller.cseq = x.caller.cseq.max(cseq);
                x.tm_bound |= bound;
            }
            drop(t);
            let c = dctx(ctx.msg);
            c.key = Some(k);
            c.downstream = true;
            return 1;
        }
    }
    let pending = ctx.msg.ext.get::<DlgCtx>().cloned().unwrap_or_default();
    let life = lifetime(d, ctx.core, ctx.msg);
    let m = ctx.msg.msg();
    let (from_uri, to_uri) = (
        m.from().map(|f| f.uri_str.to_string()).unwrap_or_default(),
        m.to().map(|f| f.uri_str.to_string()).unwrap_or_default(),
    );
    let mut dflags = 0;
    if pending
        .timeout_bye
        .unwrap_or(params::get_int(&d.p.send_bye) != 0)
    {
        dflags |= DFLAG_TIMEOUT_BYE;
    }
    if params::get_int(&d.p.timeout_noreset) != 0 {
        dflags |= DFLAG_NORESET;
    }
    let dialog = Dialog {
        h_entry: 0,
        h_id: 0,
        state: State::Unconfirmed,
        callid,
        from_uri,
        to_uri,
        req_uri: ctx.msg.ruri().to_string(),
        caller: Leg {
            tag: ftag,
            contact: contact(m),
            cseq,
            route_set: record_routes(m),
            socket: socket(&ctx.msg.rcv),
        },
        callee: Leg::default(),
        init_ts: unix_now(),
        start_ts: 0,
        end_ts: 0,
        lifetime: life,
        deadline: None,
        created: Instant::now(),
        ended: None,
        sflags: pending.flags,
        dflags,
        toroute: pending.timeout_route.clone().unwrap_or_default(),
        profiles: pending.pending.clone(),
        vars: pending
            .vars
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect::<BTreeMap<_, _>>(),
        tm_bound: bound,
    };
    let key = d.table().insert(dialog);
    if d.stats_on() {
        d.stats.processed.inc();
    }
    let did = {
        let t = d.table();
        t.get(key).map(Dialog::did).unwrap_or_default()
    };
    let param = format!(";{}={did}", params::get_str(&d.p.rr_param));
    if let (Some(rr), false) = (d.rr(), params::get_int(&d.p.match_mode) == 2) {
        rr.add_rr_param(ctx, &param);
    }
    let c = dctx(ctx.msg);
    c.key = Some(key);
    c.downstream = true;
    c.pending.clear();
    c.vars.clear();
    1
}

/// A route block by name (looked up now: routes are compiled after
/// `mod_init`, and a reload may change them).
fn run_event(core: &dyn Core, name: &str, msg: &mut SipMsg, key: (u32, u32)) {
    if let Some(id) = core.route_id(RouteType::EVENT, name) {
        let before = msg.ext.remove::<DlgCtx>();
        let c = dctx(msg);
        c.key = Some(key);
        c.downstream = before.as_ref().is_none_or(|b| b.downstream);
        core.run_route(id, RouteType::EVENT, msg);
        msg.ext.remove::<DlgCtx>();
        if let Some(b) = before {
            msg.ext.insert(b);
        }
    }
}

/// tm's callbacks: a transaction made for an INVITE binds its dialog (or
/// makes one when the `dlg_flag` is set); the replies sent upstream move
/// the dialog of the initial INVITE.
pub fn on_tm(d: &Dlg, core: &dyn Core, ev: &mut TmEvent<'_>) {
    if ev.req.msg().method() != Some(Method::Invite) {
        return;
    }
    let Some((callid, ftag, ttag)) = ids(ev.req.msg()) else {
        return;
    };
    if !ttag.is_empty() {
        return;
    }
    let found = {
        let t = d.table();
        t.by_callid(&callid).into_iter().find(|k| {
            t.get(*k).is_some_and(|x| {
                x.caller.tag == ftag && matches!(x.state, State::Unconfirmed | State::Early)
            })
        })
    };
    match ev.kind {
        TmEventKind::RequestIn => match found {
            Some(k) => {
                if let Some(x) = d.table().get_mut(k) {
                    x.tm_bound = true;
                }
            }
            None => {
                let flag = params::get_int(&d.p.dlg_flag);
                if (0..32).contains(&flag) && ev.req.flags & (1 << flag) != 0 {
                    let mut ctx = Ctx::new(ev.req, core, RouteType::REQUEST);
                    create(d, &mut ctx);
                }
            }
        },
        TmEventKind::ReplyOut => {
            if let Some(k) = found {
                reply(d, core, ev, k);
            }
        }
        TmEventKind::Failure => {}
    }
}

fn reply(d: &Dlg, core: &dyn Core, ev: &mut TmEvent<'_>, key: (u32, u32)) {
    let Some(bytes) = ev.reply.clone() else {
        return;
    };
    let Ok(mut rpl) = SipMsg::parse(bytes, ev.req.rcv, 0) else {
        return;
    };
    let code = ev.code;
    let m = rpl.msg();
    let tag = m.to_tag().ok().flatten().unwrap_or("").to_string();
    let rr_name = params::get_str(&d.p.rr_param);
    let (rs, ct) = (callee_route_set(m, &rr_name), contact(m));
    let on = d.stats_on();
    let event = {
        let mut t = d.table();
        let Some(x) = t.get_mut(key) else {
            return;
        };
        let was_early = x.state == State::Early;
        if code < 200 {
            if x.state == State::Unconfirmed {
                x.state = State::Early;
                // The callee's tag is kept from the 2xx only (as
                // Kamailio's: `$dlg(to_tag)` is $null while early).
                if on {
                    d.stats.early.inc();
                }
            }
            None
        } else if code < 300 {
            x.state = State::ConfirmedNa;
            // The callee has sent no request yet: its CSeq counts from 0
            // (its first BYE from us is 1, as Kamailio's).
            x.callee = Leg {
                tag,
                contact: ct,
                cseq: 0,
                route_set: rs,
                socket: x.caller.socket.clone(),
            };
            x.start_ts = unix_now();
            x.deadline = Some(Instant::now() + Duration::from_secs(u64::from(x.lifetime)));
            if on {
                if was_early {
                    d.stats.early.dec();
                }
                d.stats.active.inc();
            }
            Some("dialog:start")
        } else {
            if on {
                if was_early {
                    d.stats.early.dec();
                }
                d.stats.failed.inc();
            }
            t.end(key, Instant::now());
            Some("dialog:failed")
        }
    };
    if let Some(name) = event {
        run_event(core, name, &mut rpl, key);
    }
}

/// The callee's route set from the 2xx's Record-Route: the entries above
/// our own (the first with our `did` parameter), nearest to us first.
fn callee_route_set(m: &Message<'_>, rr_param: &str) -> Vec<String> {
    let all: Vec<(String, bool)> = m
        .record_routes()
        .filter_map(Result::ok)
        .map(|na| {
            let ours = na.uri.param(rr_param).is_some();
            let text = if na.bracketed {
                format!("<{}>", na.uri_str)
            } else {
                na.uri_str.to_string()
            };
            (text, ours)
        })
        .collect();
    let Some(i) = all.iter().position(|(_, ours)| *ours) else {
        return Vec::new();
    };
    all[..i].iter().rev().map(|(t, _)| t.clone()).collect()
}

/// rr's callback: the request's first Route entry was ours, with these
/// parameters; the dialog of its `did` (checked against the Call-ID and
/// tags), else, with `dlg_match_mode` 1, the one of its Call-ID and tags.
pub fn on_route(d: &Dlg, ctx: &mut Ctx<'_>, route_params: &str) {
    let name = params::get_str(&d.p.rr_param);
    let did = route_params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(&name)).then(|| v.trim().to_string())
    });
    let mode = params::get_int(&d.p.match_mode);
    let Some((callid, ftag, ttag)) = ids(ctx.msg.msg()) else {
        return;
    };
    let by_ids = |d: &Dlg| d.table().find(&callid, &ftag, &ttag);
    let hit = match did.as_deref().and_then(crate::dlg::parse_did) {
        Some(key) if mode != 2 => {
            let t = d.table();
            match t.get(key) {
                Some(x) if x.callid == callid && x.caller.tag == ftag => Some((key, true)),
                Some(x) if x.callid == callid && x.caller.tag == ttag => Some((key, false)),
                _ => {
                    drop(t);
                    lm_dbg!("dialog: no dialog for did '{}'", did.unwrap_or_default());
                    if mode == 1 {
                        by_ids(d)
                    } else {
                        None
                    }
                }
            }
        }
        _ if mode != 0 => by_ids(d),
        _ => None,
    };
    if let Some((key, down)) = hit {
        within(d, ctx, key, down);
    }
}

/// A request within dialog `key`: ACK confirms, BYE ends, others move
/// the sender's CSeq and restart the timeout.
pub fn within(d: &Dlg, ctx: &mut Ctx<'_>, key: (u32, u32), downstream: bool) {
    let c = dctx(ctx.msg);
    c.key = Some(key);
    c.downstream = downstream;
    let m = ctx.msg.msg();
    let method = m.method();
    let cseq = m.cseq().map_or(0, |c| c.seq);
    let new_contact = (method == Some(Method::Invite)).then(|| contact(m));
    let on = d.stats_on();
    let restart = |x: &mut Dialog| {
        if x.dflags & DFLAG_NORESET == 0 {
            x.deadline = Some(Instant::now() + Duration::from_secs(u64::from(x.lifetime)));
        }
    };
    let (ended, again) = {
        let mut t = d.table();
        let Some(x) = t.get_mut(key) else {
            return;
        };
        if x.state == State::Deleted {
            return;
        }
        match method {
            Some(Method::Ack) => {
                if x.state == State::ConfirmedNa {
                    x.state = State::Confirmed;
                    restart(x);
                }
                (false, false)
            }
            Some(Method::Bye) if x.state.answered() => {
                if on {
                    d.stats.active.dec();
                }
                t.end(key, Instant::now());
                (true, false)
            }
            _ => {
                let leg = if downstream {
                    &mut x.caller
                } else {
                    &mut x.callee
                };
                leg.cseq = leg.cseq.max(cseq);
                if let Some(ct) = new_contact.filter(|c| !c.is_empty()) {
                    leg.contact = ct;
                }
                if x.state == State::Confirmed {
                    restart(x);
                }
                (false, true)
            }
        }
    };
    // As Kamailio's: the did goes on the Record-Route of the requests
    // within the dialog too (when the script record-routes them).
    if again && params::get_int(&d.p.match_mode) != 2 {
        let did = d.table().get(key).map(Dialog::did);
        if let (Some(rr), Some(did)) = (d.rr(), did) {
            let param = format!(";{}={did}", params::get_str(&d.p.rr_param));
            rr.add_rr_param(ctx, &param);
        }
    }
    if ended {
        run_event(ctx.core, "dialog:end", ctx.msg, key);
    }
}

/// `dlg_manage()` on a request within a dialog: found by Call-ID and tags.
pub fn manage_within(d: &Dlg, ctx: &mut Ctx<'_>) -> i32 {
    let Some((callid, ftag, ttag)) = ids(ctx.msg.msg()) else {
        return -1;
    };
    match d.table().find(&callid, &ftag, &ttag) {
        Some((key, down)) => {
            if ctx.msg.ext.get::<DlgCtx>().and_then(|c| c.key) != Some(key) {
                within(d, ctx, key, down);
            }
            1
        }
        None => -1,
    }
}

/// Ends a dialog from the outside (timeout, `dlg_bye`, RPC): counted, out
/// of its profiles, BYE to `sides` when asked, `dialog:end` run.
pub fn terminate(
    d: &Dlg,
    core: &dyn Core,
    key: (u32, u32),
    sides: Option<(bye::Side, &str)>,
    expired: bool,
) {
    let snap = {
        let mut t = d.table();
        let Some(x) = t.get(key) else {
            return;
        };
        if x.state == State::Deleted {
            return;
        }
        let snap = x.clone();
        if d.stats_on() {
            match x.state {
                State::Early => d.stats.early.dec(),
                State::ConfirmedNa | State::Confirmed => d.stats.active.dec(),
                _ => {}
            }
            if expired {
                d.stats.expired.inc();
            }
        }
        t.end(key, Instant::now());
        snap
    };
    // As Kamailio's: the timeout route first, then the BYEs.
    let mut msg = SipMsg::faked();
    if expired && !snap.toroute.is_empty() {
        if let Some(id) = core.route_id(RouteType::REQUEST, &snap.toroute) {
            let c = dctx(&mut msg);
            c.key = Some(key);
            core.run_route(id, RouteType::REQUEST, &mut msg);
            msg.ext.remove::<DlgCtx>();
        }
    }
    if let Some((s, extra)) = sides {
        if snap.state.answered() {
            bye::send(d, core, &snap, s, extra);
        }
    }
    run_event(core, "dialog:end", &mut msg, key);
}

/// Once a second: answered dialogs past their lifetime end (BYE to both
/// sides when asked); unanswered ones past `early_timeout`, or never
/// relayed, go; ended ones are removed.
pub fn tick(d: &Dlg, core: &dyn Core) {
    let now = Instant::now();
    let early = Duration::from_secs(params::get_int(&d.p.early_timeout).max(1) as u64);
    let due = d.table().due(now, early, UNBOUND_TIMEOUT);
    for key in due {
        let (answered, bye) = {
            let t = d.table();
            match t.get(key) {
                Some(x) => (x.state.answered(), x.dflags & DFLAG_TIMEOUT_BYE != 0),
                None => continue,
            }
        };
        if answered {
            lm_info!("dialog: dialog {}:{} timed out", key.0, key.1);
            terminate(d, core, key, bye.then_some((bye::Side::Both, "")), true);
        } else {
            let mut t = d.table();
            let early = t.get(key).is_some_and(|x| x.state == State::Early);
            if early && d.stats_on() {
                d.stats.early.dec();
            }
            t.end(key, now);
        }
    }
    d.table().sweep(now, KEEP_ENDED);
}
