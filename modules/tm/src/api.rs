//! What tm offers other modules: sl's [`StatefulReply`] (so
//! `send_reply` replies within a transaction) and [`TmApi`] (tmx's
//! pseudo-variables and checks, `t_suspend`/`t_continue`, transaction
//! callbacks for acc, and any module that needs to reply statefully).

use crate::ctx::{has_cell, with_cell, TxCtx};
use crate::engine::Engine;
use crate::relay::NewTran;
use sr_mod_sl::StatefulReply;
use sr_sdk::prelude::*;
use sr_sdk::RouteId;
use std::sync::Arc;

/// The name tm publishes [`TmApi`] under.
pub const TM_API: &str = "tm";

/// tm's API for other modules (Kamailio's `load_tm_api`).
#[derive(Debug, Clone)]
pub struct TmApi {
    e: Arc<Engine>,
}

impl TmApi {
    /// The API over an engine.
    pub fn new(e: Arc<Engine>) -> TmApi {
        TmApi { e }
    }

    /// `t_newtran`: 1 created (or already there), 0 retransmission, -1 error.
    pub fn t_newtran(&self, ctx: &mut Ctx<'_>) -> i32 {
        match self.e.newtran(ctx) {
            NewTran::Created(_) | NewTran::Own(_) => 1,
            NewTran::Retransmission => 0,
            NewTran::Error => -1,
        }
    }

    /// `t_replicate`: the request relayed statefully to `$du` (and to
    /// the appended branches), without a 100 Trying and without tm's own
    /// error reply when it fails; the replies are absorbed by the
    /// transaction. dmq's `dmq_t_replicate` sends its copies with it.
    pub fn replicate(&self, ctx: &mut Ctx<'_>) -> i32 {
        crate::funcs::replicate(&self.e, ctx)
    }

    /// `t_reply`.
    pub fn t_reply(&self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> i32 {
        self.e.t_reply(ctx, code, reason)
    }

    /// tmx's `t_reply_callid`: a reply to the transaction with this
    /// Call-ID and CSeq number; 1, or -1 when there is none to reply to.
    pub fn reply_callid(
        &self,
        core: &dyn Core,
        callid: &str,
        cseq: &str,
        code: u16,
        reason: &str,
    ) -> i32 {
        self.e.reply_callid(core, callid, cseq, code, reason)
    }

    /// tmx's `t_cancel_callid`: CANCELs for that INVITE transaction's
    /// pending branches; 1, or -1 when there is none.
    pub fn cancel_callid(
        &self,
        core: &dyn Core,
        callid: &str,
        cseq: &str,
        flag: i64,
        rcode: Option<i64>,
    ) -> i32 {
        self.e.cancel_callid(core, callid, cseq, flag, rcode)
    }

    /// The To-tag tm's replies to this request carry (its transaction's),
    /// `None` when it has no transaction.
    pub fn local_to_tag(&self, ctx: &mut Ctx<'_>) -> Option<String> {
        with_cell(ctx, |c| c.to_tag.get(&c.req, c.id).to_string())
    }

    /// Whether the message has a transaction.
    pub fn has_transaction(&self, msg: &SipMsg) -> bool {
        has_cell(msg)
    }

    /// `$T_branch_idx`: the branch in branch_route / onreply_route, else
    /// the number of branches (Kamailio's value in failure_route is the
    /// index the next branch will get).
    pub fn branch_idx(&self, ctx: &mut Ctx<'_>) -> Option<i64> {
        if let Some(i) = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.branch) {
            return Some(i as i64);
        }
        with_cell(ctx, |c| c.proxy.branches().len() as i64)
    }

    /// `$T_reply_ruid`: the location record (`ruid`) the branch whose
    /// reply is handled was sent to: the failing branch in
    /// `event_route[tm:branch-failure]`, the winning one in failure_route;
    /// empty when there is none.
    pub fn reply_ruid(&self, ctx: &mut Ctx<'_>) -> String {
        let idx = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.branch);
        with_cell(ctx, |c| {
            let i = idx.or_else(|| c.proxy.winner())?;
            c.out.get(i)?.location.0.clone()
        })
        .flatten()
        .unwrap_or_default()
    }

    /// tmx's `t_cancel_branches(which)` in onreply_route: `all`, `others`
    /// (all but the branch of this reply) or `this`; 1, -1 outside a
    /// transaction's reply or for another word.
    pub fn cancel_branches(&self, ctx: &mut Ctx<'_>, which: &str) -> i32 {
        let this = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.branch);
        let pick: Box<dyn Fn(usize) -> bool> = match (which, this) {
            ("all", _) => Box::new(|_| true),
            ("others", Some(b)) => Box::new(move |i| i != b),
            ("this", Some(b)) => Box::new(move |i| i == b),
            _ => return -1,
        };
        let now = self.e.now();
        let Some((effects, outs)) = with_cell(ctx, |c| {
            let e = c.proxy.cancel_some(now, pick);
            (e, c.out.iter().map(|o| o.dest).collect::<Vec<_>>())
        }) else {
            return -1;
        };
        for e in effects {
            if let crate::proxy::Effect::Downstream(i, b) = e {
                if let Some(d) = outs.get(i) {
                    ctx.core.send_batched(d, &b);
                }
            }
        }
        1
    }

    /// `$T_reply_code`.
    pub fn reply_code(&self, ctx: &mut Ctx<'_>) -> Option<u16> {
        crate::funcs::current_reply_code(ctx)
    }

    /// `$T_reply_reason`.
    pub fn reply_reason(&self, ctx: &mut Ctx<'_>) -> Option<String> {
        if let Some(r) = ctx.msg.ext.get::<TxCtx>().and_then(|t| t.reply.as_ref()) {
            return Some(r.reason.clone());
        }
        if !ctx.msg.is_request() {
            return ctx.msg.msg().reason().map(str::to_string);
        }
        None
    }

    /// `$T_req(pv)`: a pseudo-variable of the transaction's request.
    pub fn t_req(&self, ctx: &mut Ctx<'_>, pv: &str) -> Option<Value<'static>> {
        let mut m = with_cell(ctx, |c| crate::cell::keep_msg(&mut c.req)).flatten()?;
        ctx.core.pv_get(&mut m, pv)
    }

    /// `$T_rpl(pv)`: a pseudo-variable of the reply (winning reply in
    /// failure_route, current one in onreply_route).
    pub fn t_rpl(&self, ctx: &mut Ctx<'_>, pv: &str) -> Option<Value<'static>> {
        let bytes = ctx
            .msg
            .ext
            .get::<TxCtx>()
            .and_then(|t| t.reply.as_ref())
            .and_then(|r| r.bytes.clone())?;
        let mut m = SipMsg::parse(bytes, ctx.msg.rcv, ctx.msg.id).ok()?;
        ctx.core.pv_get(&mut m, pv)
    }

    /// `$T(id_index)` / `$T(id_label)` and friends: the cell id split as
    /// Kamailio's hash index and label.
    pub fn t_ids(&self, ctx: &mut Ctx<'_>) -> Option<(u64, u64)> {
        with_cell(ctx, |c| crate::suspend::split_id(c.id))
    }

    /// Registers a transaction callback (Kamailio's `register_tmcb` for
    /// every transaction): called when a reply goes upstream and before
    /// failure_route runs; see [`crate::callbacks`].
    pub fn register_callback(&self, cb: crate::callbacks::TmCallback) {
        self.e.register_callback(cb);
    }

    /// The id of the message's transaction, if it has one (stays unique
    /// for the life of the process).
    pub fn cell_id(&self, msg: &SipMsg) -> Option<u64> {
        let t = msg.ext.get::<TxCtx>()?;
        t.cell
            .as_ref()
            .map(|c| c.id)
            .or_else(|| t.held.as_ref().map(|g| g.id))
            .or(t.cell_id)
    }

    /// Whether the transaction `id` still exists (not ended and freed).
    pub fn cell_alive(&self, id: u64) -> bool {
        self.e.tables.by_id(id).is_some()
    }

    /// Asks for `RequestIn` events (transactions being created) too: they
    /// cost a copy of each new transaction's request, so they are sent
    /// only to modules that want them (the dialog module).
    pub fn want_request_in(&self) {
        self.e
            .wants_request_in
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Asks for `ReplyIn` events (each reply from downstream, before
    /// onreply_route).
    pub fn want_reply_in(&self) {
        self.e
            .wants_reply_in
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// In failure_route: the winning reply's code, its bytes (`None` for
    /// a reply tm made itself, such as a timeout's 408) and the
    /// Request-URI of its branch.
    pub fn winning_reply(
        &self,
        ctx: &mut Ctx<'_>,
    ) -> Option<(u16, Option<bytes::Bytes>, Option<String>)> {
        let r = ctx.msg.ext.get::<TxCtx>()?.reply.clone()?;
        let uri = with_cell(ctx, |c| {
            c.proxy
                .winner()
                .and_then(|i| c.out.get(i))
                .map(|o| o.uri.clone())
        })
        .flatten();
        Some((r.code, r.bytes, uri))
    }

    /// In failure_route: the branches of the round that failed (in
    /// Kamailio, those from the last "first branch" on), each with the
    /// highest status it received and its final reply's bytes (`None`
    /// when tm made the reply itself, as a timeout's 408).
    pub fn failed_branches(&self, ctx: &mut Ctx<'_>) -> Vec<(u16, Option<bytes::Bytes>)> {
        with_cell(ctx, |c| {
            let branches = c.proxy.branches();
            let leg = branches.iter().map(|b| b.leg).max().unwrap_or(0);
            branches
                .iter()
                .filter(|b| b.leg == leg)
                .map(|b| {
                    let reply = if b.faked { None } else { b.final_reply.clone() };
                    (b.last_received, reply)
                })
                .collect()
        })
        .unwrap_or_default()
    }

    /// `t_suspend()`: 1 suspended (or already cancelled), -3 after a
    /// final reply, -1 error.
    pub fn t_suspend(&self, ctx: &mut Ctx<'_>) -> i32 {
        self.e.suspend(ctx)
    }

    /// `t_continue(index, label, route)`: 1 done, -1 no such
    /// transaction, -2 not suspended.
    pub fn t_continue(&self, core: &dyn Core, index: u64, label: u64, route: RouteId) -> i32 {
        match crate::suspend::join_id(index, label) {
            Some(id) => self.e.t_continue(core, id, route),
            None => -1,
        }
    }

    /// `t_append_branches` for the transaction `$T(id_index)`/`$T(id_label)`
    /// name: a branch for each target whose URI has none yet (with
    /// `only`, that URI's alone). The number added; -1 no such
    /// transaction, -2 cancelled, -3 answered already.
    pub fn append_branches(
        &self,
        core: &dyn Core,
        index: u64,
        label: u64,
        targets: Vec<Branch>,
        only: Option<&str>,
    ) -> i32 {
        match crate::suspend::join_id(index, label) {
            Some(id) => self.e.append_branches(core, id, targets, only),
            None => -1,
        }
    }

    /// Gives the request's transaction the routes armed and timers set so
    /// far by the script (see `Engine::commit_armed`).
    pub fn commit_armed(&self, ctx: &mut Ctx<'_>) -> bool {
        self.e.commit_armed(ctx)
    }

    /// The request of transaction `index`/`label` (a copy): its
    /// Request-URI and method, for what a module does for it.
    pub fn request_of(&self, index: u64, label: u64) -> Option<SipMsg> {
        let id = crate::suspend::join_id(index, label)?;
        let c = self.e.tables.by_id(id)?;
        let g = c.take()?;
        let m = crate::cell::clone_msg(&g.req);
        drop(g);
        m
    }

    /// `t_flush_flags`: copies the message flags into the transaction.
    pub fn flush_flags(&self, ctx: &mut Ctx<'_>) -> bool {
        let f = ctx.msg.flags;
        with_cell(ctx, |c| c.req.flags = f).is_some()
    }

    /// tmx's `t_drop([rcode])`: the transaction counts as answered with
    /// `code` and nothing is sent (no reply is relayed or made for it from
    /// now on). Kamailio returns 0 (the script ends); -1 without a
    /// transaction.
    pub fn t_drop(&self, ctx: &mut Ctx<'_>, code: u16) -> i32 {
        match with_cell(ctx, |c| c.proxy.drop_transaction(code)) {
            Some(()) => 0,
            None => {
                lm_err!("t_drop: no transaction");
                -1
            }
        }
    }

    /// `t_flush_xflags`: copies the extended flags into the transaction.
    pub fn flush_xflags(&self, ctx: &mut Ctx<'_>) -> bool {
        let f = ctx.msg.xflags;
        with_cell(ctx, |c| c.req.xflags = f).is_some()
    }

    /// Whether the current route is failure_route.
    pub fn in_failure(&self, ctx: &Ctx<'_>) -> bool {
        ctx.msg.ext.get::<TxCtx>().is_some_and(|t| t.in_failure)
    }

    /// Whether a transaction with this request's key exists (used by
    /// `t_precheck_trans` as a second line).
    pub fn exists(&self, msg: &mut SipMsg) -> bool {
        crate::table::server_key_of(msg).is_some_and(|k| self.e.tables.by_key(&k).is_some())
    }

    /// `t_set_fr(fr_inv, fr)` (milliseconds) for the current request's
    /// transaction (Kamailio's `tmb.set_fr`).
    pub fn set_fr(&self, ctx: &mut Ctx<'_>, fr_inv_ms: u64, fr_ms: u64) {
        crate::funcs::set_fr(ctx, fr_inv_ms, fr_ms);
    }

    /// Cells in the table.
    pub fn inuse(&self) -> usize {
        self.e.inuse()
    }

    /// The timers of a non-INVITE request another module sends on its own
    /// (dispatcher's keepalives): those of tm's own transactions, from its
    /// parameters as they are now (`retr_timer1`, `retr_timer2`,
    /// `fr_timer`, `wt_timer`).
    pub fn uac_timers(&self) -> sip_txn::TimerConfig {
        self.e.uac_timers()
    }
}

/// The bridge sl uses for `send_reply`.
#[derive(Debug)]
pub struct SlBridge(pub Arc<Engine>);

impl StatefulReply for SlBridge {
    fn reply_if_transaction(&self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> Option<i32> {
        if !has_cell(ctx.msg) {
            return None;
        }
        Some(self.0.t_reply(ctx, code, reason))
    }
}
