//! How dialogs follow the messages: made from an initial INVITE, moved by
//! the replies tm sends upstream, found again by the in-dialog requests
//! (`did` in our Route entry, else Call-ID and tags), ended by BYE, a
//! failure or their timeout.
//!
//! The table is one lock: it is never held while a route runs, a BYE is
//! sent or tm is called, and every decision is checked again under the
//! lock that acts on it.

use crate::dlg::{
    unix_now, Dialog, Leg, State, DFLAG_NORESET, DFLAG_REPLICATED, DFLAG_TIMEOUT_BYE,
};
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
/// What is left of an answered dialog's life once `noack_timeout` passed
/// without an ACK (Kamailio's 10 seconds).
pub const NOACK_LEFT: Duration = Duration::from_secs(10);

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

/// The dialog the message was given (`dlg_manage`, `loose_route`,
/// `dlg_get`).
pub fn given(msg: &SipMsg) -> Option<(u32, u32)> {
    msg.ext.get::<DlgCtx>().and_then(|c| c.key)
}

/// The dialog of the message: the one it was given, else the one of its
/// Call-ID and tags (replies, requests within before `loose_route`),
/// looked up each time.
pub fn current(d: &Dlg, msg: &mut SipMsg) -> Option<(u32, u32)> {
    if let Some(k) = given(msg) {
        return Some(k);
    }
    if msg.faked {
        return None;
    }
    let (callid, ftag, ttag) = ids(msg.msg())?;
    let hit = d.table().find(&callid, &ftag, &ttag);
    hit.map(|(k, _)| k)
}

fn name_addr(na: &sr_sdk::sip_msg::headers::NameAddr<'_>) -> String {
    if na.bracketed {
        format!("<{}>", na.uri_str)
    } else {
        na.uri_str.to_string()
    }
}

/// The caller's route set: the INVITE's Record-Route as it came (ours is
/// not in it yet), each entry a name-addr.
fn record_routes(m: &Message<'_>) -> Vec<String> {
    m.record_routes()
        .filter_map(Result::ok)
        .map(|na| name_addr(&na))
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

/// The lifetime of a dialog being made: `timeout_avp` when it holds a
/// number above 0, else `default_timeout`.
fn lifetime(d: &Dlg, core: &dyn Core, msg: &mut SipMsg) -> u32 {
    let avp = params::get_str(&d.p.timeout_avp);
    if !avp.is_empty() {
        let n = match core.pv_get(msg, &avp) {
            Some(Value::Int(n)) => Some(n),
            Some(Value::Str(s)) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        if let Some(n) = n.filter(|n| *n > 0) {
            return n.min(i64::from(u32::MAX)) as u32;
        }
    }
    params::get_int(&d.p.default_timeout).clamp(1, u32::MAX as i64) as u32
}

/// `dlg_manage()` and the `dlg_flag`: a dialog for an initial INVITE
/// (the spiral of one not ended gets that one), `;did=` added to our
/// Record-Route. 1 done, -1 not an initial INVITE (or a broken one).
pub fn create(d: &Dlg, ctx: &mut Ctx<'_>) -> i32 {
    if given(ctx.msg).is_some() {
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
    let cell = d.tm().and_then(|t| t.cell_id(ctx.msg));
    if params::get_int(&d.p.detect_spirals) != 0 {
        let mut t = d.table();
        let spiral = t.by_callid(&callid).into_iter().find(|k| {
            t.get(*k).is_some_and(|x| {
                x.caller.tag == ftag
                    && x.state != State::Deleted
                    && x.dflags & DFLAG_REPLICATED == 0
            })
        });
        if let Some(k) = spiral {
            if let Some(x) = t.get_mut(k) {
                x.caller.cseq = x.caller.cseq.max(cseq);
                x.tm_cell = x.tm_cell.or(cell);
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
        tm_cell: cell,
        answered_at: None,
        closing: false,
        mod_data: BTreeMap::new(),
    };
    let (key, did) = {
        let mut t = d.table();
        let key = t.insert(dialog);
        (key, t.get(key).map(Dialog::did).unwrap_or_default())
    };
    if d.stats_on() {
        d.stats.processed.inc();
    }
    if params::get_int(&d.p.match_mode) != 2 {
        if let Some(rr) = d.rr() {
            let param = format!(";{}={did}", params::get_str(&d.p.rr_param));
            rr.add_rr_param(ctx, &param);
        }
    }
    let c = dctx(ctx.msg);
    c.key = Some(key);
    c.downstream = true;
    c.pending.clear();
    c.vars.clear();
    for hook in d.hooks.created() {
        hook(ctx, key);
    }
    // Its INVITE has its transaction already (t_newtran first): no tm
    // event will come for it, so the other DMQ nodes are told now.
    if cell.is_some() {
        d.rep_create(key);
    }
    1
}

/// Runs `event_route[name]` (looked up now: routes are compiled after
/// `mod_init`, and a reload may change them) with `key` as the message's
/// dialog.
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

/// The unanswered dialog of an initial INVITE.
/// The dialog not yet answered of an initial INVITE (Call-ID and From
/// tag).
pub fn unanswered(d: &Dlg, callid: &str, ftag: &str) -> Option<(u32, u32)> {
    let t = d.table();
    t.by_callid(callid).into_iter().find(|k| {
        t.get(*k).is_some_and(|x| {
            x.caller.tag == ftag
                && matches!(x.state, State::Unconfirmed | State::Early)
                && x.dflags & DFLAG_REPLICATED == 0
        })
    })
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
    match ev.kind {
        TmEventKind::RequestIn => {
            let key = given(ev.req).or_else(|| unanswered(d, &callid, &ftag));
            match key {
                Some(k) => {
                    let cell = d.tm().and_then(|t| t.cell_id(ev.req));
                    if let Some(x) = d.table().get_mut(k) {
                        x.tm_cell = x.tm_cell.or(cell);
                    }
                    d.rep_create(k);
                }
                None => {
                    let flag = params::get_int(&d.p.dlg_flag);
                    if (0..32).contains(&flag) && ev.req.flags & (1 << flag) != 0 {
                        let mut ctx = Ctx::new(ev.req, core, RouteType::REQUEST);
                        create(d, &mut ctx);
                        ev.req_changed = true;
                        if let Some(k) = given(ev.req) {
                            d.rep_create(k);
                        }
                    }
                }
            }
        }
        TmEventKind::ReplyOut => {
            if let Some(k) = unanswered(d, &callid, &ftag) {
                reply(d, core, ev, k);
            }
        }
        TmEventKind::Failure | TmEventKind::ReplyIn => {}
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
    let ct = contact(m);
    let on = d.stats_on();
    // Whether the other DMQ nodes are told (early, or ended).
    let mut tell = false;
    let event = {
        let mut t = d.table();
        let Some(x) = t.get_mut(key) else {
            return;
        };
        // Checked again under this lock: a timer may have ended it.
        if !matches!(x.state, State::Unconfirmed | State::Early) {
            return;
        }
        let was_early = x.state == State::Early;
        if code < 200 {
            if x.state == State::Unconfirmed {
                // The callee's tag is kept from the 2xx only (as
                // Kamailio's: `$dlg(to_tag)` is $null while early).
                x.state = State::Early;
                tell = true;
                if on {
                    d.stats.early.inc();
                }
            }
            None
        } else if code < 300 {
            let did = x.did();
            x.state = State::ConfirmedNa;
            // The callee has sent no request yet: its CSeq counts from 0
            // (its first BYE from us is 1, as Kamailio's).
            x.callee = Leg {
                tag,
                contact: ct,
                cseq: 0,
                route_set: callee_route_set(m, &rr_name, &did, core),
                socket: x.caller.socket.clone(),
            };
            x.start_ts = unix_now();
            let now = Instant::now();
            x.answered_at = Some(now);
            x.deadline = Some(now + Duration::from_secs(u64::from(x.lifetime)));
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
            tell = true;
            Some("dialog:failed")
        }
    };
    if tell {
        d.rep_state(key);
    }
    if let Some(name) = event {
        run_event(core, name, &mut rpl, key);
    }
}

/// The callee's route set from the 2xx's Record-Route: the entries above
/// our own, nearest to us first. Ours is the one with this dialog's `did`,
/// else (no `did` added) the first that is this server.
fn callee_route_set(m: &Message<'_>, rr_param: &str, did: &str, core: &dyn Core) -> Vec<String> {
    let all: Vec<(String, bool, bool)> = m
        .record_routes()
        .filter_map(Result::ok)
        .map(|na| {
            let with_did = na.uri.param(rr_param) == Some(Some(did));
            let me = core.is_myself(na.uri.host_str.trim_matches(['[', ']']), na.uri.port);
            (name_addr(&na), with_did, me)
        })
        .collect();
    let ours = all
        .iter()
        .position(|(_, with_did, _)| *with_did)
        .or_else(|| all.iter().position(|(_, _, me)| *me));
    match ours {
        Some(i) => all[..i].iter().rev().map(|(t, _, _)| t.clone()).collect(),
        None => Vec::new(),
    }
}

/// Whether a request from `ftag` to `ttag` belongs to dialog `x`, and
/// which way (Kamailio's tight match): downstream from the caller (to the
/// callee's tag once known), upstream from the callee.
fn tight(x: &Dialog, callid: &str, ftag: &str, ttag: &str) -> Option<bool> {
    if x.callid != callid {
        return None;
    }
    if x.caller.tag == ftag && (x.callee.tag.is_empty() || x.callee.tag == ttag) {
        return Some(true);
    }
    let upstream = if x.callee.tag.is_empty() {
        x.caller.tag == ttag
    } else {
        x.callee.tag == ftag && x.caller.tag == ttag
    };
    upstream.then_some(false)
}

/// rr's callback: the request's first Route entry was ours, with these
/// parameters. Requests without a To-tag, or that have their dialog
/// already, are left alone; else the dialog of the `did` (the Call-ID and
/// tags must match it), or, with `dlg_match_mode` 1 when that fails (2:
/// always), the one of the Call-ID and tags.
pub fn on_route(d: &Dlg, ctx: &mut Ctx<'_>, route_params: &str) {
    if given(ctx.msg).is_some() {
        return;
    }
    let Some((callid, ftag, ttag)) = ids(ctx.msg.msg()) else {
        return;
    };
    if ttag.is_empty() {
        return;
    }
    let name = params::get_str(&d.p.rr_param);
    let did = route_params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(&name)).then(|| v.trim().to_string())
    });
    let mode = params::get_int(&d.p.match_mode);
    let by_did = match did.as_deref().and_then(crate::dlg::parse_did) {
        Some(key) if mode != 2 => {
            let t = d.table();
            let hit = t
                .get(key)
                .filter(|x| x.dflags & DFLAG_REPLICATED == 0)
                .and_then(|x| tight(x, &callid, &ftag, &ttag))
                .map(|down| (key, down));
            if hit.is_none() {
                lm_dbg!(
                    "dialog: no dialog matches did '{}'",
                    did.unwrap_or_default()
                );
            }
            hit
        }
        _ => None,
    };
    let hit = match by_did {
        Some(h) => Some(h),
        None if mode != 0 => {
            let found = d.table().find(&callid, &ftag, &ttag);
            found
        }
        None => None,
    };
    if let Some((key, down)) = hit {
        within(d, ctx, key, down);
    }
}

/// A request within dialog `key`: ACK confirms, BYE ends, others move
/// the sender's CSeq (and Contact, for a re-INVITE) and restart the
/// timeout.
pub fn within(d: &Dlg, ctx: &mut Ctx<'_>, key: (u32, u32), downstream: bool) {
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
    // Whether the other DMQ nodes are told (confirmed, or ended).
    let mut told = false;
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
                    told = true;
                }
                (false, false)
            }
            Some(Method::Bye) if x.state.answered() && !x.closing => {
                if on {
                    d.stats.active.dec();
                }
                t.end(key, Instant::now());
                told = true;
                (true, false)
            }
            _ => {
                // As Kamailio's: only while early or confirmed.
                if matches!(x.state, State::Early | State::Confirmed) {
                    let leg = if downstream {
                        &mut x.caller
                    } else {
                        &mut x.callee
                    };
                    leg.cseq = leg.cseq.max(cseq);
                    if let Some(ct) = new_contact.filter(|c| !c.is_empty()) {
                        leg.contact = ct;
                    }
                }
                if x.state == State::Confirmed {
                    restart(x);
                }
                (false, true)
            }
        }
    };
    if told {
        d.rep_state(key);
    }
    let c = dctx(ctx.msg);
    c.key = Some(key);
    c.downstream = downstream;
    c.routed = true;
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

/// `dlg_manage()` on a request within a dialog: found by Call-ID and
/// tags. 1 either way, as Kamailio's.
pub fn manage_within(d: &Dlg, ctx: &mut Ctx<'_>) -> i32 {
    if given(ctx.msg).is_some() {
        return 1;
    }
    let Some((callid, ftag, ttag)) = ids(ctx.msg.msg()) else {
        return 1;
    };
    let hit = d.table().find(&callid, &ftag, &ttag);
    if let Some((key, down)) = hit {
        within(d, ctx, key, down);
    }
    1
}

/// Ends an answered dialog from the outside (timeout, `dlg_bye`, RPC): the
/// timeout route first when it expired, then the BYEs to `sides` (with
/// extra header lines), then `dialog:end` — all while the dialog is still
/// answered, as Kamailio shows it there — and then it ends and is counted.
/// False when it is not answered or already being ended.
pub fn terminate(
    d: &Dlg,
    core: &dyn Core,
    key: (u32, u32),
    sides: Option<(bye::Side, &str)>,
    expired: bool,
) -> bool {
    let snap = {
        let mut t = d.table();
        let Some(x) = t.get_mut(key) else {
            return false;
        };
        // Another node's dialog is that node's to end.
        if !x.state.answered() || x.closing || x.dflags & DFLAG_REPLICATED != 0 {
            return false;
        }
        x.closing = true;
        x.clone()
    };
    let mut msg = SipMsg::faked();
    if expired && !snap.toroute.is_empty() {
        if let Some(id) = core.route_id(RouteType::REQUEST, &snap.toroute) {
            dctx(&mut msg).key = Some(key);
            core.run_route(id, RouteType::REQUEST, &mut msg);
            msg.ext.remove::<DlgCtx>();
        }
    }
    if expired {
        for hook in d.hooks.expired() {
            hook(&snap);
        }
    }
    if let Some((s, extra)) = sides {
        bye::send(d, core, &snap, s, extra);
    }
    run_event(core, "dialog:end", &mut msg, key);
    let mut t = d.table();
    if t.get(key).is_some_and(|x| x.state.answered()) {
        if d.stats_on() {
            d.stats.active.dec();
            if expired {
                d.stats.expired.inc();
            }
        }
        t.end(key, Instant::now());
    }
    true
}

/// Once a second: answered dialogs past their lifetime end (BYE to both
/// sides when asked); an answered dialog without its ACK after
/// `noack_timeout` has 10 seconds left; unanswered ones past
/// `early_timeout`, whose transaction is gone, or never relayed, go;
/// ended ones are removed.
pub fn tick(d: &Dlg, core: &dyn Core) {
    d.table().expire_remote(sr_sdk::db::now());
    let now = Instant::now();
    let early = Duration::from_secs(params::get_int(&d.p.early_timeout).max(1) as u64);
    let noack = Duration::from_secs(params::get_int(&d.p.noack_timeout).max(1) as u64);
    let mut due = d.table().due(now, early, UNBOUND_TIMEOUT);
    // Unanswered dialogs whose INVITE transaction ended without a reply
    // the module saw (a stateless answer after t_newtran, a drop).
    let bound: Vec<((u32, u32), u64)> = {
        let t = d.table();
        t.all()
            .into_iter()
            .filter(|x| matches!(x.state, State::Unconfirmed | State::Early))
            .filter_map(|x| Some(((x.h_entry, x.h_id), x.tm_cell?)))
            .collect()
    };
    if let Some(tm) = d.tm() {
        for (k, cell) in bound {
            if !tm.cell_alive(cell) && !due.contains(&k) {
                due.push(k);
            }
        }
    }
    {
        let mut t = d.table();
        for x in t.all_mut() {
            if x.state == State::ConfirmedNa
                && x.answered_at
                    .is_some_and(|a| now.saturating_duration_since(a) >= noack)
            {
                x.answered_at = None;
                let left = now + NOACK_LEFT;
                if x.deadline.is_none_or(|dl| dl > left) {
                    x.deadline = Some(left);
                }
            }
        }
    }
    for key in due {
        let (answered, bye) = {
            let mut t = d.table();
            let Some(x) = t.get(key) else {
                continue;
            };
            match x.state {
                State::ConfirmedNa | State::Confirmed => {
                    // Checked again: a request may have restarted it.
                    if x.deadline.is_none_or(|dl| dl > now) {
                        continue;
                    }
                    // Another node's dialog: gone here, quietly.
                    if x.dflags & DFLAG_REPLICATED != 0 {
                        t.end(key, now);
                        continue;
                    }
                    // A dialog of another node ends without a BYE.
                    let bye = x.dflags & DFLAG_TIMEOUT_BYE != 0
                        && x.dflags & crate::dlg::DFLAG_REPLICATED == 0;
                    (true, bye)
                }
                State::Unconfirmed | State::Early => {
                    if x.state == State::Early && d.stats_on() && x.dflags & DFLAG_REPLICATED == 0 {
                        d.stats.early.dec();
                    }
                    t.end(key, now);
                    continue;
                }
                State::Deleted => continue,
            }
        };
        if answered {
            lm_info!("dialog: dialog {}:{} timed out", key.0, key.1);
            terminate(d, core, key, bye.then_some((bye::Side::Both, "")), true);
        }
    }
    let gone = d.table().sweep(now, KEEP_ENDED);
    for x in &gone {
        d.rep_removed(x);
    }
}
