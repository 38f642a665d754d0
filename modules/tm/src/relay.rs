//! Requests: creating transactions (`t_newtran`), relaying them over one
//! or more branches (`t_relay`, with branch_route), ACK and CANCEL
//! handling, and the lookups (`t_check_trans`, `t_lookup_*`).

use crate::cell::{
    clone_msg, keep_msg, keep_msg_with_state_of, push_tight, Armed, BranchOut, Cell, CellBox,
    CellRef, KeyEntry,
};
use crate::ctx::{tx, with_cell, TxCtx};
use crate::engine::Engine;
use crate::params::Params;
use crate::proxy::{Effect, Proxy};
use crate::table::{branch_id, server_key};
use bytes::Bytes;
use sr_sdk::prelude::*;
use sr_sdk::BranchTarget;
use std::time::Duration;

/// The result of `t_newtran`.
#[derive(Debug)]
pub enum NewTran {
    /// A new transaction.
    Created(CellRef),
    /// This message already has one.
    Own(CellRef),
    /// A retransmission of a request with a transaction (handled).
    Retransmission,
    /// Could not create one.
    Error,
}

/// An explicit next hop (`t_relay(host, port)`, `t_relay_to_udp`...).
#[derive(Debug, Clone, Default)]
pub struct NextHop {
    /// Host, if given.
    pub host: Option<String>,
    /// Port, if given.
    pub port: Option<String>,
    /// Forced transport.
    pub proto: Option<Proto>,
}

fn method_of(msg: &SipMsg) -> String {
    msg.msg()
        .method()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default()
}

pub(crate) fn to_tag(msg: &SipMsg, id: u64) -> String {
    let m = msg.msg();
    let idb = id.to_be_bytes();
    let call_id = m.call_id().unwrap_or("").as_bytes();
    let from_tag = m.from_tag().ok().flatten().unwrap_or("").as_bytes();
    let a = sr_sdk::tag::hash64(b't', &[call_id, &idb]);
    let b = sr_sdk::tag::hash64(b'T', &[from_tag, &idb]);
    let mut out = String::with_capacity(50);
    sr_sdk::tag::push_hex64(&mut out, a);
    sr_sdk::tag::push_hex64(&mut out, b);
    out.push('-');
    sr_sdk::sip_msg::text::push_hex_num(&mut out, id);
    out
}

impl Engine {
    /// `t_newtran`: the transaction of this request, created if needed.
    pub fn newtran(&self, ctx: &mut Ctx<'_>) -> NewTran {
        if let Some(c) = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.cell.clone()) {
            return NewTran::Own(c);
        }
        let Some(key) = crate::table::server_key_of(ctx.msg) else {
            return NewTran::Error;
        };
        let now = self.now();
        if let Some(c) = self.tables.by_key(&key) {
            self.with_guard(ctx.core, &c, |cell| cell.proxy.on_retransmission(now));
            return NewTran::Retransmission;
        }
        let Ok(up) = ctx.core.reply_dest(ctx.msg) else {
            return NewTran::Error;
        };
        let id = self.new_id();
        // The transaction shares the parsed request with the message the
        // script goes on with.
        let Some(req) = keep_msg(ctx.msg) else {
            return NewTran::Error;
        };
        let method = method_of(ctx.msg);
        let invite = method == "INVITE";
        let reliable = ctx.msg.rcv.proto.is_reliable();
        let ov = ctx
            .msg
            .ext
            .get::<TxCtx>()
            .map(|t| t.overrides)
            .unwrap_or_default();
        let cfg = self.params.proxy_config(invite, &ov, reliable);
        let proxy = Proxy::new(cfg, invite, reliable, now);
        let cell = Cell::new(id, key.clone(), method, proxy, req, up);
        let mut fresh: Option<CellRef> = None;
        let got = self.tables.keys.with_or_insert(
            &key,
            || KeyEntry(CellBox::new(cell)),
            |e, new| {
                if new {
                    fresh = Some(e.0.clone());
                }
                e.0.clone()
            },
        );
        match fresh {
            Some(c) => {
                self.tables
                    .cells
                    .insert(c.id, crate::cell::CellEntry(c.clone()));
                self.stats.uas.inc();
                self.stats.active.inc();
                tx(ctx.msg).cell = Some(c.clone());
                if self.request_in(ctx.core, ctx.msg) {
                    // The transaction keeps the request as the callbacks
                    // left it.
                    if let (Some(mut g), Some(r)) = (c.take(), keep_msg(ctx.msg)) {
                        g.req = r;
                    }
                }
                NewTran::Created(c)
            }
            None => {
                // Another worker created it a moment ago.
                self.with_guard(ctx.core, &got, |cell| cell.proxy.on_retransmission(now));
                NewTran::Retransmission
            }
        }
    }

    /// `t_relay` and its variants.
    pub fn relay(&self, ctx: &mut Ctx<'_>, hop: &NextHop) -> i32 {
        if ctx.msg.ext.get::<TxCtx>().is_some_and(|t| t.held.is_some()) {
            return self.relay_in_failure(ctx, hop);
        }
        match ctx.msg.msg().method() {
            Some(Method::Ack) => return self.relay_ack(ctx, hop),
            Some(Method::Cancel) => {
                let rc = self.relay_cancel(ctx, false);
                if rc != 2 {
                    return rc;
                }
            }
            _ => {}
        }
        // A transaction created by this call holds a copy of the request
        // as it is now; one made earlier by t_newtran gets the script's
        // changes since.
        let (c, just_created) = match self.newtran(ctx) {
            NewTran::Created(c) => (c, true),
            NewTran::Own(c) => (c, false),
            NewTran::Retransmission => return 1,
            NewTran::Error => {
                ctx.msg.set_error(500, "Server Internal Error");
                return -1;
            }
        };
        let Some(mut g) = c.take() else {
            return -1;
        };
        let now = self.now();
        if !just_created {
            if let Some(mut r) = keep_msg(ctx.msg) {
                if g.lumps_saved {
                    let same = |a: &SipMsg, b: &SipMsg| {
                        let (x, y) = (a.msg().raw(), b.msg().raw());
                        x.as_ptr() == y.as_ptr() && x.len() == y.len()
                    };
                    if same(&r, &g.req) {
                        std::mem::swap(&mut r.edits, &mut g.req.edits);
                    } else if let Some(n) = keep_msg_with_state_of(&mut g.req, &r) {
                        // Parsed again since (msg_apply_changes): the saved
                        // edits stay with the bytes they were made on.
                        r = n;
                    }
                }
                g.req = r;
            }
        }
        let t = tx(ctx.msg);
        if t.e2e_cancel_reason.is_some() {
            g.e2e_cancel_reason = t.e2e_cancel_reason;
        }
        merge_armed(&mut g, &t.armed);
        self.apply_overrides(&mut g, &t.overrides);
        let auto100 = t
            .auto_inv_100
            .unwrap_or_else(|| Params::flag(&self.params.auto_inv_100));
        let mut effects = Vec::new();
        if g.proxy.is_invite() && auto100 && !g.proxy.has_reply() && g.proxy.branches().is_empty() {
            let built = Params::with_text(&self.params.auto_inv_100_reason, |reason| {
                ctx.core.build_reply(ctx.msg, 100, reason, None, None)
            });
            if let Ok(o) = built {
                self.stats.rpl_generated.inc();
                effects.extend(g.proxy.reply(now, 100, Bytes::from(o.data)));
            }
        }
        g.relayed = true;
        let (n, why) = self.add_branches(ctx.core, &mut g, ctx.msg, hop);
        let replied = g.proxy.final_sent() != 0;
        let g = self.run_effects(ctx.core, g, effects);
        drop(g);
        self.touch(&c);
        if n == 0 {
            // (477 and 478 are Kamailio's numbered errors: sl_reply_error
            // and tm's own reply add the number.)
            match why {
                Some((430, reason)) => ctx.msg.set_error(430, reason),
                Some((code, reason)) => ctx.msg.set_numbered_error(code, reason),
                None => ctx.msg.set_error(500, "Forwarding failed"),
            }
            // As Kamailio's tm: the transaction answers the failure itself,
            // so the caller is not left waiting and its retransmissions get
            // the same answer — when request_route of a received request
            // ends (what the script replies meanwhile goes first), else at
            // once.
            if !replied && !tx(ctx.msg).no_internal_reply {
                let (code, reason) = ctx.msg.error_reply("TM");
                if ctx.msg.received && ctx.route == RouteType::REQUEST {
                    tx(ctx.msg).delayed_error = Some((code, reason));
                } else {
                    self.t_reply(ctx, code, &reason);
                }
            }
            return -1;
        }
        // (A relay that sent something owes no error reply for an earlier
        // one that did not.)
        tx(ctx.msg).delayed_error = None;
        1
    }

    fn relay_in_failure(&self, ctx: &mut Ctx<'_>, hop: &NextHop) -> i32 {
        let t = tx(ctx.msg);
        let Some(mut g) = t.held.take() else {
            return -1;
        };
        if !t.leg_started {
            g.proxy.new_leg();
            t.leg_started = true;
        }
        let armed = std::mem::take(&mut t.armed);
        merge_armed(&mut g, &armed);
        let (n, _) = self.add_branches(ctx.core, &mut g, ctx.msg, hop);
        tx(ctx.msg).held = Some(g);
        if n == 0 {
            // Also when there was nothing to send to: the Request-URI was
            // used and no branch was added (Kamailio's "no branches for
            // forwarding").
            ctx.msg.set_error(500, "Forwarding failed");
            return -1;
        }
        1
    }

    /// Sends one branch per target of the destination set (R-URI first,
    /// unless it was used already and not rewritten, then the appended
    /// branches),
    /// each through branch_route. Returns
    /// how many were sent, and the status for the last failure: 478
    /// (Kamailio's E_BAD_ADDRESS) when a request could not be built for its
    /// destination, 477 (E_SEND) when a stream send failed.
    fn add_branches(
        &self,
        core: &dyn Core,
        g: &mut Cell,
        msg: &SipMsg,
        hop: &NextHop,
    ) -> (usize, Option<(u16, &'static str)>) {
        let mut why = None;
        let now = self.now();
        // A Request-URI already used for forking (failure_route, a branch
        // appended from it) and not written since is not sent to, as in
        // Kamailio (kamailio_parity_dialplan, kamailio_parity_uac_redirect).
        let skip_ruri = msg.ruri_is_consumed();
        let mut targets = Vec::with_capacity(1 + msg.branches.len());
        if !skip_ruri {
            targets.push(msg.ruri_branch());
        }
        targets.extend(msg.branches.iter().cloned());
        let mut sent = 0;
        for (n, b) in targets.into_iter().enumerate() {
            let idx = g.proxy.branches().len();
            let location = (b.ruid.clone(), b.instance.clone());
            // The first branch, with no branch_route to change it and no
            // next hop but the message's own, is the request as it is:
            // built from it directly instead of from a copy.
            let first_as_is = n == 0
                && !skip_ruri
                && g.armed.branch.is_none()
                && explicit_dst(msg, hop).is_none();
            let copy;
            let bm: &SipMsg = if first_as_is {
                msg
            } else {
                match self.branch_msg(core, g, msg, hop, n, idx, &b) {
                    Some(mut m) => {
                        // t_set_fr in branch_route (rtjson_update_branch):
                        // the transaction's timeouts from this branch on.
                        let ov = tx(&mut m).overrides;
                        if ov.fr_inv > 0 {
                            g.proxy.config_mut().fr_inv = Duration::from_millis(ov.fr_inv);
                        }
                        if ov.fr > 0 {
                            let t = &mut g.proxy.config_mut().timers;
                            t.timer_b = Duration::from_millis(ov.fr);
                            t.timer_f = Duration::from_millis(ov.fr);
                        }
                        copy = m;
                        &copy
                    }
                    None => continue,
                }
            };
            let via_branch = branch_id(g.id, idx);
            // (What the branch was asked for, kept when branch_route may
            // have changed it: empty for the request as it is.)
            let (target, asked) = if first_as_is {
                // `b` was made from this very message.
                let t = BranchTarget {
                    uri: b.uri,
                    dst_uri: b.dst_uri,
                    path: b.path,
                    send_socket: b.socket,
                    via_branch,
                };
                (t, (String::new(), None))
            } else {
                let t = BranchTarget {
                    uri: bm.ruri().to_string(),
                    dst_uri: bm.dst_uri.clone(),
                    path: bm.path.clone(),
                    send_socket: bm.force_send_socket.clone(),
                    via_branch,
                };
                (t, (b.uri, b.ruid))
            };
            let out = match core.build_request(bm, &target) {
                Ok(o) => o,
                Err(e) => {
                    lm_err!("tm: cannot relay to {}: {e}", target.uri);
                    why = Some((478, "Unresolvable destination"));
                    continue;
                }
            };
            if self.blocklisted(core, &g.method, &out.dest) {
                lm_dbg!("tm: {} {} is blocklisted", out.dest.proto, out.dest.addr);
                why = Some((477, "Unfortunately error on sending to next hop occurred"));
                continue;
            }
            let reliable = out.dest.proto.is_reliable();
            let bflags = bm.bflags;
            let data = Bytes::from(out.data);
            if g.proxy.is_canceled() || g.proxy.final_sent() != 0 {
                // (What add_branch refuses: nothing may go out.)
                break;
            }
            if reliable {
                // A stream send happens now: a failure (no connection to a
                // WebSocket client, a refused connect) fails the branch
                // before it starts.
                if let Err(e) = core.send(&out.dest, &data) {
                    lm_err!("tm: cannot send to {}: {e}", target.uri);
                    if bm.fwd_flags.flow {
                        // An outbound flow whose connection is gone.
                        why = Some((430, "Flow Failed"));
                        continue;
                    }
                    self.blocklist_connect(core, bm, &out.dest);
                    why = Some((477, "Unfortunately error on sending to next hop occurred"));
                    continue;
                }
            }
            let Some((_, effects)) = g.proxy.add_branch(now, data, reliable) else {
                break;
            };
            push_tight(
                &mut g.out,
                BranchOut {
                    dest: out.dest,
                    uri: target.uri,
                    flags: bflags,
                    target: asked,
                    location,
                    on_branch_failure: g.armed.branch_failure,
                },
            );
            for e in effects {
                match e {
                    // (Sent above.)
                    Effect::Downstream(..) if reliable => {}
                    Effect::Downstream(_, data) => core.send_batched(&out.dest, &data),
                    _ => {}
                }
            }
            sent += 1;
        }
        (sent, why)
    }

    /// The message of branch `n` (index `idx` in the cell): a copy of the
    /// request with the branch's target, through branch_route if armed;
    /// `None` when the copy fails or branch_route drops it.
    #[allow(clippy::too_many_arguments)]
    fn branch_msg(
        &self,
        core: &dyn Core,
        g: &Cell,
        msg: &SipMsg,
        hop: &NextHop,
        n: usize,
        idx: usize,
        b: &Branch,
    ) -> Option<SipMsg> {
        let mut bm = clone_msg(msg)?;
        bm.branches.clear();
        bm.new_uri = Some(b.uri.clone());
        bm.dst_uri = b.dst_uri.clone();
        bm.path = b.path.clone();
        bm.bflags = b.flags;
        if b.socket.is_some() {
            bm.force_send_socket = b.socket.clone();
        }
        if n == 0 {
            if let Some(d) = explicit_dst(&bm, hop) {
                bm.dst_uri = Some(d);
            }
        }
        if let Some(r) = g.armed.branch {
            let t = tx(&mut bm);
            t.branch = Some(idx);
            t.cell_id = Some(g.id);
            let res = core.run_route(r, RouteType::BRANCH, &mut bm);
            if res.dropped {
                lm_dbg!("tm: branch {idx} dropped in branch_route");
                return None;
            }
        }
        Some(bm)
    }

    fn relay_ack(&self, ctx: &mut Ctx<'_>, hop: &NextHop) -> i32 {
        if let Some(c) = crate::table::server_key_of(ctx.msg).and_then(|k| self.tables.by_key(&k)) {
            let now = self.now();
            let ack = ctx.msg.bytes().clone();
            let mut absorbed = false;
            self.with_guard(ctx.core, &c, |cell| {
                if cell.proxy.final_sent() >= 300 {
                    absorbed = true;
                    cell.proxy.on_ack(now, ack)
                } else {
                    Vec::new()
                }
            });
            if absorbed {
                return 0;
            }
        }
        let target = explicit_dst(ctx.msg, hop);
        let core = ctx.core;
        match core.forward(ctx.msg, target.as_deref()) {
            Ok(()) => 1,
            Err(e) => {
                lm_err!("tm: ACK not forwarded: {e}");
                -1
            }
        }
    }

    /// The `t_set_*` timers of the script into the transaction's
    /// configuration (nothing when none was set).
    fn apply_overrides(&self, g: &mut Cell, o: &crate::params::Overrides) {
        if *o != Default::default() {
            let invite = g.proxy.is_invite();
            let stream = g.req.rcv.proto.is_reliable();
            g.proxy
                .set_config(self.params.proxy_config(invite, o, stream));
        }
    }

    /// Gives the request's transaction the routes `t_on_*` armed and the
    /// timers `t_set_*` set so far (Kamailio sets them on the transaction
    /// at once; here they wait for the relay): for a module that adds the
    /// transaction's branches later (tsilo). False without a transaction
    /// (or inside a tm route, where they are the cell's already).
    pub fn commit_armed(&self, ctx: &mut Ctx<'_>) -> bool {
        let Some(t) = ctx.msg.ext.get::<TxCtx>() else {
            return false;
        };
        if t.held.is_some() {
            return false;
        }
        let Some(c) = t.cell.clone() else {
            return false;
        };
        let Some(mut g) = c.take() else {
            return false;
        };
        let t = tx(ctx.msg);
        merge_armed(&mut g, &t.armed);
        self.apply_overrides(&mut g, &t.overrides);
        true
    }

    /// Kamailio's `t_append_branches` for transaction `id`: a branch for
    /// each of `targets` whose URI has none yet (with `only`, that URI's
    /// alone), sent at once through branch_route as t_relay sends. The
    /// number of branches added; -1 no such transaction (or it is in
    /// use), -2 cancelled, -3 answered already.
    pub fn append_branches(
        &self,
        core: &dyn Core,
        id: u64,
        targets: Vec<Branch>,
        only: Option<&str>,
    ) -> i32 {
        let Some(c) = self.tables.by_id(id) else {
            return -1;
        };
        let Some(mut g) = c.take() else {
            return -1;
        };
        let refused = if g.proxy.is_canceled() {
            -2
        } else if g.proxy.final_sent() >= 200 {
            -3
        } else {
            0
        };
        let mut n = 0;
        if refused == 0 {
            if let Some(mut msg) = clone_msg(&g.req) {
                msg.branches = targets
                    .into_iter()
                    .filter(|t| only.is_none_or(|o| o == t.uri))
                    .filter(|t| !g.out.iter().any(|o| o.asked_for(t)))
                    .collect();
                msg.consume_ruri();
                n = self.add_branches(core, &mut g, &msg, &NextHop::default()).0;
            }
        }
        let g = self.run_effects(core, g, Vec::new());
        drop(g);
        self.touch(&c);
        if refused != 0 {
            refused
        } else {
            n as i32
        }
    }

    /// The INVITE transaction a CANCEL targets.
    pub fn cancel_target(&self, msg: &SipMsg) -> Option<CellRef> {
        let k = server_key(msg.msg())?.for_cancel_target();
        self.tables.by_key(&k)
    }

    /// A CANCEL: answered 200 and passed to the INVITE's pending branches.
    /// Returns 1 (t_relay) or 0 (`t_relay_cancel`) when an INVITE was
    /// found; otherwise per `unmatched_cancel`, with 2 meaning "relay it
    /// as any other request".
    pub fn relay_cancel(&self, ctx: &mut Ctx<'_>, only: bool) -> i32 {
        let Some(c) = self.cancel_target(ctx.msg) else {
            if only {
                return 1;
            }
            return match self
                .params
                .unmatched_cancel
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                1 => {
                    let core = ctx.core;
                    if core.forward(ctx.msg, None).is_ok() {
                        1
                    } else {
                        -1
                    }
                }
                2 => 0,
                _ => 2,
            };
        };
        let tag = to_tag(ctx.msg, c.id);
        if let Ok(o) = ctx
            .core
            .build_reply(ctx.msg, 200, "canceling", Some(&tag), None)
        {
            self.stats.rpl_generated.inc();
            self.stats.rpl_sent.inc();
            let _ = ctx.core.send(&o.dest, &o.data);
        }
        let reason = ctx
            .msg
            .msg()
            .value(sr_sdk::sip_msg::HeaderName::Reason)
            .map(str::to_string);
        let copy = Params::flag(&self.params.e2e_cancel_reason);
        let now = self.now();
        self.with_guard(ctx.core, &c, |cell| {
            if reason.is_some() && cell.e2e_cancel_reason.unwrap_or(copy) {
                cell.proxy.set_cancel_reason(reason);
            }
            cell.proxy.on_cancel(now)
        });
        if only {
            0
        } else {
            1
        }
    }

    /// `t_check_trans`.
    pub fn check_trans(&self, ctx: &mut Ctx<'_>) -> i32 {
        if !ctx.msg.is_request() {
            return if crate::reply::reply_cell(self, ctx.msg).is_some() {
                1
            } else {
                -1
            };
        }
        let method = ctx.msg.msg().method();
        let is_ack = method == Some(Method::Ack);
        if method == Some(Method::Cancel) {
            return if self.cancel_target(ctx.msg).is_some() {
                1
            } else {
                -1
            };
        }
        let Some(c) = crate::table::server_key_of(ctx.msg).and_then(|k| self.tables.by_key(&k))
        else {
            return -1;
        };
        let now = self.now();
        if is_ack {
            let ack = ctx.msg.bytes().clone();
            let mut negative = false;
            self.with_guard(ctx.core, &c, |cell| {
                if cell.proxy.final_sent() >= 300 {
                    negative = true;
                    cell.proxy.on_ack(now, ack)
                } else {
                    Vec::new()
                }
            });
            return if negative { 0 } else { 1 };
        }
        self.with_guard(ctx.core, &c, |cell| cell.proxy.on_retransmission(now));
        0
    }

    /// Sends the delayed error reply of a relay that sent nothing, unless
    /// the transaction was answered meanwhile (the request-done hook).
    pub fn send_delayed_error(&self, ctx: &mut Ctx<'_>) {
        let Some((code, reason)) = ctx
            .msg
            .ext
            .get_mut::<TxCtx>()
            .and_then(|t| t.delayed_error.take())
        else {
            return;
        };
        // Only a transaction nothing else answered or forwarded.
        let idle = with_cell(ctx, |c| {
            c.proxy.final_sent() == 0 && c.proxy.branches().iter().all(|b| b.final_code != 0)
        });
        if idle == Some(true) {
            self.t_reply(ctx, code, &reason);
        }
    }

    /// `t_reply`: a stateful reply within the message's transaction.
    pub fn t_reply(&self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> i32 {
        if let Some(t) = ctx.msg.ext.get_mut::<TxCtx>() {
            t.delayed_error = None;
        }
        if !crate::ctx::has_cell(ctx.msg) {
            lm_err!("t_reply: no transaction for this request (call t_newtran first)");
            return -1;
        }
        let tag = with_cell(ctx, |c| c.to_tag.get(&c.req, c.id).to_string()).unwrap_or_default();
        let out = match ctx
            .core
            .build_reply(ctx.msg, code, reason, Some(&tag), None)
        {
            Ok(o) => o,
            Err(e) => {
                lm_err!("t_reply {code}: {e}");
                return -1;
            }
        };
        self.stats.rpl_generated.inc();
        let now = self.now();
        let data = Bytes::from(out.data);
        let held = ctx.msg.ext.get::<TxCtx>().is_some_and(|t| t.held.is_some());
        if held {
            // Inside a tm route: send now, the route runner finishes up.
            let core = ctx.core;
            let effects = with_cell(ctx, |c| {
                let e = c.proxy.reply(now, code, data);
                for x in &e {
                    if let Effect::Upstream(b) = x {
                        self.reply_out(core, c, b, false);
                    }
                }
                (e, c.up, c.out.iter().map(|o| o.dest).collect::<Vec<_>>())
            });
            if let Some((effects, up, outs)) = effects {
                for e in effects {
                    match e {
                        Effect::Upstream(b) => {
                            self.stats.rpl_sent.inc();
                            ctx.core.send_batched(&up, &b);
                        }
                        Effect::Downstream(i, b) => {
                            if let Some(d) = outs.get(i) {
                                ctx.core.send_batched(d, &b);
                            }
                        }
                        Effect::RunFailure => {}
                    }
                }
            }
            return 1;
        }
        let Some(c) = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.cell.clone()) else {
            return -1;
        };
        let ok = self.with_guard(ctx.core, &c, |cell| cell.proxy.reply(now, code, data));
        if ok {
            1
        } else {
            -1
        }
    }
}

/// Copies the routes armed on the message into the cell.
pub(crate) fn merge_armed(g: &mut Cell, a: &Armed) {
    if a.failure.is_some() {
        g.armed.failure = a.failure;
    }
    if a.reply.is_some() {
        g.armed.reply = a.reply;
    }
    if a.branch.is_some() {
        g.armed.branch = a.branch;
    }
    if a.branch_failure.is_some() {
        g.armed.branch_failure = a.branch_failure;
    }
    g.proxy.set_failure_armed(g.armed.failure.is_some());
}

/// The `$du` an explicit next hop stands for.
fn explicit_dst(msg: &SipMsg, hop: &NextHop) -> Option<String> {
    if hop.host.is_none() && hop.proto.is_none() {
        return None;
    }
    let (host, port) = match &hop.host {
        Some(h) => (h.clone(), hop.port.clone().filter(|p| !p.is_empty())),
        None => {
            let cur = msg
                .dst_uri
                .clone()
                .unwrap_or_else(|| msg.ruri().to_string());
            let u = sr_sdk::sip_msg::Uri::parse(&cur).ok()?;
            (u.host_str.to_string(), u.port.map(|p| p.to_string()))
        }
    };
    let mut s = format!("sip:{host}");
    if let Some(p) = port {
        s.push(':');
        s.push_str(&p);
    }
    if let Some(pr) = hop.proto {
        s.push_str(";transport=");
        s.push_str(pr.as_str());
    }
    Some(s)
}
