//! The stateful proxy core of one transaction (RFC 3261 §16 with
//! Kamailio's choices), without I/O: a server transaction towards the
//! caller, one client transaction per branch, and the rules that tie them
//! together (relay provisionals and every 2xx at once, hold negative
//! replies until all branches ended and pick the best, CANCEL pending
//! branches, ACK negative replies, fake a 408 on timeout, call for
//! `failure_route`).
//!
//! Events go in with the current time; [`Effect`]s come out (bytes to
//! send up or down, "run failure_route now"); [`Proxy::poll_timeout`]
//! says when [`Proxy::on_timeout`] is due. The module drives it with the
//! real clock; the tests with a counter.

mod dropped;
pub mod pick;
mod suspend;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use sip_txn::{
    Action, Actions, Instant, InviteClient, InviteServer, NonInviteClient, NonInviteServer,
    ProxyInviteTimer, TimerConfig, Transaction,
};
use sr_sdk::sip_msg::{build, Message};
use std::sync::Arc;
use std::time::Duration;

/// Builds local replies to the transaction's request (a 408 on timeout,
/// a 500 when nothing better exists).
pub trait ReplyFactory {
    /// The bytes of a local reply with this code and reason.
    fn local_reply(&self, code: u16, reason: &str) -> Option<Bytes>;
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send to the caller (the server transaction's reply destination).
    Upstream(Bytes),
    /// Send to the destination of branch `.0`.
    Downstream(usize, Bytes),
    /// Every branch ended negatively and a failure_route is armed: run it
    /// with the winning reply ([`Proxy::winner`]), then call
    /// [`Proxy::failure_done`].
    RunFailure,
}

/// Per-transaction settings (module parameters with per-transaction
/// overrides applied).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Transaction timers: T1/T2, `fr_timer` as B/F/H, `wt_timer` as
    /// D/I/J/K and L/M.
    pub timers: TimerConfig,
    /// `fr_inv_timer`: INVITE branch timeout after a provisional.
    pub fr_inv: Duration,
    /// `restart_fr_on_each_reply`.
    pub restart_fr: bool,
    /// `max_inv_lifetime` / `max_noninv_lifetime`.
    pub max_lifetime: Duration,
    /// `failure_reply_mode` (0-3).
    pub failure_reply_mode: u8,
    /// `aggregate_challenges`.
    pub aggregate_challenges: bool,
    /// `noisy_ctimer`.
    pub noisy_ctimer: bool,
    /// `disable_6xx_block` / `t_set_disable_6xx`: a 6xx cancels nothing.
    pub disable_6xx: bool,
    /// `reply_408_reason`.
    pub reason_408: String,
    /// Upstream transport is a stream (Content-Length is mandatory).
    pub upstream_stream: bool,
}

impl ProxyConfig {
    /// Timer values as Kamailio's tm derives them from its parameters.
    pub fn kamailio(
        fr: Duration,
        fr_inv: Duration,
        t1: Duration,
        t2: Duration,
        wt: Duration,
    ) -> Self {
        let mut timers = TimerConfig::from_base(t1, t2, Duration::from_secs(5));
        timers.timer_b = fr;
        timers.timer_f = fr;
        timers.timer_h = fr;
        timers.timer_d = wt;
        timers.timer_i = wt;
        timers.timer_j = wt;
        timers.timer_k = wt;
        timers.timer_l = wt;
        timers.timer_m = wt;
        timers.timer_c = fr_inv;
        ProxyConfig {
            timers,
            fr_inv,
            restart_fr: true,
            max_lifetime: Duration::from_secs(180),
            failure_reply_mode: 3,
            aggregate_challenges: true,
            noisy_ctimer: true,
            disable_6xx: false,
            reason_408: "Request Timeout".into(),
            upstream_stream: false,
        }
    }
}

/// What a branch's CANCEL is doing.
#[derive(Debug, Clone)]
enum Cancel {
    /// Not cancelled.
    No,
    /// To be cancelled as soon as a provisional arrives.
    Wanted,
    /// CANCEL sent; its own client transaction.
    Sent(Box<NonInviteClient<Bytes>>),
    /// CANCEL transaction over.
    Done,
}

/// One outgoing branch.
#[derive(Debug, Clone)]
pub struct BranchState {
    uac: Option<Transaction<Bytes>>,
    request: Bytes,
    timer_c: Option<ProxyInviteTimer>,
    cancel: Cancel,
    /// After a CANCEL: give up on the INVITE if no final reply came by then.
    kill_at: Option<Instant>,
    /// A blind branch (`t_suspend`): nothing was sent; it ends with a
    /// local 408 at this instant unless `t_continue` ends it first.
    blind_until: Option<Instant>,
    /// Highest status received on the branch (0: nothing yet).
    pub last_received: u16,
    /// Final status of the branch (0: pending), received or faked.
    pub final_code: u16,
    /// The final status was made up locally (timeout).
    pub faked: bool,
    /// The branch timed out (no final reply in time).
    pub timed_out: bool,
    /// The relayable form of the final reply (our Via removed).
    pub final_reply: Option<Bytes>,
    /// The failure-route round ("leg") that created it (0: the first).
    pub leg: u32,
    /// Forgotten by `t_drop_replies` or `failure_reply_mode`.
    pub dropped: bool,
}

impl BranchState {
    /// Whether a request went out on it (not a `t_suspend` blind branch).
    pub fn sent(&self) -> bool {
        self.uac.is_some()
    }

    /// A branch of round `leg` that nothing was received on yet.
    fn new(
        uac: Option<Transaction<Bytes>>,
        request: Bytes,
        blind_until: Option<Instant>,
        leg: u32,
    ) -> BranchState {
        BranchState {
            uac,
            request,
            timer_c: None,
            cancel: Cancel::No,
            kill_at: None,
            blind_until,
            last_received: 0,
            final_code: 0,
            faked: false,
            timed_out: false,
            final_reply: None,
            leg,
            dropped: false,
        }
    }

    /// Whether the branch still waits for a final reply.
    pub fn pending(&self) -> bool {
        self.final_code == 0
    }

    /// Whether the CANCEL sent on it (if any) is still running.
    fn cancel_running(&self) -> bool {
        matches!(self.cancel, Cancel::Sent(_))
    }

    /// The request sent on this branch (empty once a final reply made it
    /// useless: see [`BranchState::release_request`]).
    pub fn request(&self) -> &Bytes {
        &self.request
    }

    /// After a final reply the branch's request is sent no more: the
    /// transaction, kept for its wait time, lets it go. The ACK of a
    /// negative reply to an INVITE is built from it again for each
    /// retransmission of that reply (until Timer D ends the client
    /// transaction), so then (`keep_for_ack`) the branch keeps its copy;
    /// the client transaction lets its own go either way.
    fn release_request(&mut self, keep_for_ack: bool) {
        match self.uac.as_mut() {
            Some(Transaction::InviteClient(c)) => {
                c.release_request();
            }
            Some(Transaction::NonInviteClient(c)) => {
                c.release_request();
            }
            _ => {}
        }
        if !keep_for_ack {
            self.request = Bytes::new();
        }
    }
}

/// The proxy state of one transaction.
#[derive(Debug, Clone)]
pub struct Proxy {
    cfg: Arc<ProxyConfig>,
    invite: bool,
    uas: Transaction<Bytes>,
    branches: Vec<BranchState>,
    leg: u32,
    final_sent: u16,
    canceled: bool,
    cancel_reason: Option<String>,
    failure_armed: bool,
    in_failure: bool,
    winner: Option<usize>,
    end_of_life: Instant,
    expired: bool,
    blind: Option<usize>,
    dropped: bool,
}

fn up(acts: Actions<Bytes>, out: &mut Vec<Effect>) {
    for a in acts {
        if let Action::Transmit(b) = a {
            out.push(Effect::Upstream(b));
        }
    }
}

impl Proxy {
    /// A new transaction for a request just received (`invite`: it is an
    /// INVITE; `reliable`: it came over a stream).
    pub fn new(
        cfg: impl Into<Arc<ProxyConfig>>,
        invite: bool,
        reliable: bool,
        now: Instant,
    ) -> Proxy {
        let cfg: Arc<ProxyConfig> = cfg.into();
        let uas = if invite {
            Transaction::InviteServer(InviteServer::new(reliable, &cfg.timers, now))
        } else {
            Transaction::NonInviteServer(NonInviteServer::new(reliable, &cfg.timers, now))
        };
        let end_of_life = now + cfg.max_lifetime;
        Proxy {
            cfg,
            invite,
            uas,
            branches: Vec::new(),
            leg: 0,
            final_sent: 0,
            canceled: false,
            cancel_reason: None,
            failure_armed: false,
            in_failure: false,
            winner: None,
            end_of_life,
            expired: false,
            blind: None,
            dropped: false,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// Changes the settings for branches created from now on (`t_set_fr`
    /// and friends after the transaction exists).
    pub fn config_mut(&mut self) -> &mut ProxyConfig {
        Arc::make_mut(&mut self.cfg)
    }

    /// Replaces the settings (shared with other transactions).
    pub fn set_config(&mut self, cfg: Arc<ProxyConfig>) {
        self.cfg = cfg;
    }

    /// Whether this is an INVITE transaction.
    pub fn is_invite(&self) -> bool {
        self.invite
    }

    /// The branches, in creation order (their index is `$T_branch_idx`).
    pub fn branches(&self) -> &[BranchState] {
        &self.branches
    }

    /// The final status sent upstream (0: none yet).
    pub fn final_sent(&self) -> u16 {
        self.final_sent
    }

    /// Whether the caller cancelled the request.
    pub fn is_canceled(&self) -> bool {
        self.canceled
    }

    /// Whether the transaction hit `max_*_lifetime`.
    pub fn is_expired(&self) -> bool {
        self.expired
    }

    /// Arms or disarms the failure route.
    pub fn set_failure_armed(&mut self, on: bool) {
        self.failure_armed = on;
    }

    /// Whether a failure route is armed.
    pub fn failure_armed(&self) -> bool {
        self.failure_armed
    }

    /// Whether failure_route is running (waiting for [`Proxy::failure_done`]).
    pub fn in_failure(&self) -> bool {
        self.in_failure
    }

    /// The Reason header value for CANCELs sent downstream.
    pub fn set_cancel_reason(&mut self, r: Option<String>) {
        self.cancel_reason = r;
    }

    /// The winning branch (in failure_route, or after the final reply).
    pub fn winner(&self) -> Option<usize> {
        self.winner
    }

    /// Whether every machine is over: the transaction can be freed.
    pub fn is_done(&self) -> bool {
        self.uas.is_terminated()
            && self
                .branches
                .iter()
                .all(|b| b.uac.as_ref().is_none_or(|u| u.is_terminated()) && !b.cancel_running())
    }

    /// The next instant [`Proxy::on_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.uas.poll_timeout();
        let mut min = |d: Option<Instant>| {
            if let Some(d) = d {
                t = Some(t.map_or(d, |x: Instant| x.min(d)));
            }
        };
        for b in &self.branches {
            min(b.uac.as_ref().and_then(|u| u.poll_timeout()));
            min(b.timer_c.as_ref().and_then(|c| c.poll_timeout()));
            if b.uac.as_ref().is_some_and(|u| !u.is_terminated()) {
                min(b.kill_at);
            }
            if let Cancel::Sent(c) = &b.cancel {
                min(c.poll_timeout());
            }
            if b.final_code == 0 {
                min(b.blind_until);
            }
        }
        if self.final_sent == 0 && !self.uas.is_terminated() && !self.in_failure {
            min(Some(self.end_of_life));
        }
        min(self.dropped_deadline());
        t
    }

    /// Sends a reply of our own (100 Trying, `t_reply`, a relayed final
    /// chosen by the driver). A final reply cancels pending branches.
    pub fn reply(&mut self, now: Instant, code: u16, bytes: Bytes) -> Vec<Effect> {
        let mut out = Vec::new();
        self.send_up(now, code, bytes, &mut out);
        out
    }

    fn send_up(&mut self, now: Instant, code: u16, bytes: Bytes, out: &mut Vec<Effect>) -> bool {
        let acts = match &mut self.uas {
            Transaction::InviteServer(s) => s.send_response(now, bytes, code),
            Transaction::NonInviteServer(s) => s.send_response(now, bytes, code),
            _ => Actions::ignored(),
        };
        let sent = acts.iter().any(|a| matches!(a, Action::Transmit(_)));
        up(acts, out);
        if sent && code >= 200 {
            if self.final_sent == 0 {
                self.final_sent = code;
            }
            self.cancel_pending(now, out);
        }
        sent
    }

    /// Starts a new failure-route round: branches added from now on
    /// belong to it.
    pub fn new_leg(&mut self) {
        self.leg += 1;
        let leg = self.leg;
        match self.cfg.failure_reply_mode {
            1 | 3 => self.branches.iter_mut().for_each(|b| b.dropped = true),
            2 => self
                .branches
                .iter_mut()
                .filter(|b| b.leg + 1 == leg)
                .for_each(|b| b.dropped = true),
            _ => {}
        }
    }

    /// `t_drop_replies`: forget the replies of every branch so far (`all`)
    /// or of the last round only.
    pub fn drop_replies(&mut self, all: bool) {
        let last = self.leg;
        for b in self.branches.iter_mut() {
            if all || b.leg == last {
                b.dropped = true;
            }
        }
    }

    /// Adds a branch and sends its request (`reliable`: a stream
    /// transport, no retransmissions). Refused (None) once the caller
    /// cancelled or a final reply went upstream.
    pub fn add_branch(
        &mut self,
        now: Instant,
        request: Bytes,
        reliable: bool,
    ) -> Option<(usize, Vec<Effect>)> {
        if self.canceled || self.final_sent != 0 {
            return None;
        }
        let idx = self.branches.len();
        let (uac, acts) = if self.invite {
            let (c, a) = InviteClient::start(request.clone(), reliable, &self.cfg.timers, now);
            (Transaction::InviteClient(c), a)
        } else {
            let (c, a) = NonInviteClient::start(request.clone(), reliable, &self.cfg.timers, now);
            (Transaction::NonInviteClient(c), a)
        };
        let mut out = Vec::new();
        for a in acts {
            if let Action::Transmit(b) = a {
                out.push(Effect::Downstream(idx, b));
            }
        }
        let b = BranchState::new(Some(uac), request, None, self.leg);
        crate::cell::push_tight(&mut self.branches, b);
        self.end_of_life = self.end_of_life.max(now);
        Some((idx, out))
    }

    /// A reply to branch `idx` arrived: `raw` as received, `relayed` with
    /// our Via removed (and the onreply_route edits applied). Returns the
    /// effects and whether the reply was new (not a retransmission).
    pub fn on_reply(
        &mut self,
        now: Instant,
        idx: usize,
        code: u16,
        raw: Bytes,
        relayed: Bytes,
        rf: &dyn ReplyFactory,
    ) -> (Vec<Effect>, bool) {
        let mut out = Vec::new();
        let Some(b) = self.branches.get_mut(idx) else {
            return (out, false);
        };
        let acts = match b.uac.as_mut() {
            Some(Transaction::InviteClient(c)) => c.handle_response(now, raw, code),
            Some(Transaction::NonInviteClient(c)) => c.handle_response(now, raw, code),
            _ => Actions::ignored(),
        };
        let mut passed = false;
        for a in acts {
            match a {
                Action::PassToTu(_) => passed = true,
                Action::SendAck(resp) => {
                    if let Some(ack) = build_ack(&b.request, &resp) {
                        out.push(Effect::Downstream(idx, ack));
                    }
                }
                _ => {}
            }
        }
        if !passed {
            return (out, false);
        }
        b.last_received = b.last_received.max(code);
        if code < 200 {
            if self.invite {
                match b.timer_c.as_mut() {
                    Some(c) if self.cfg.restart_fr => c.on_provisional(now),
                    Some(_) => {}
                    None if b.final_code == 0 => {
                        let mut t = self.cfg.timers;
                        t.timer_c = self.cfg.fr_inv;
                        b.timer_c = Some(ProxyInviteTimer::start(&t, now));
                    }
                    None => {}
                }
            }
            if matches!(b.cancel, Cancel::Wanted) {
                let c = self.cancel_reason.clone();
                send_cancel(b, idx, c.as_deref(), &self.cfg.timers, now, &mut out);
            }
            if code > 100 && self.final_sent == 0 && b.final_code == 0 {
                self.send_up(now, code, relayed, &mut out);
            }
            return (out, true);
        }
        if let Some(c) = b.timer_c.as_mut() {
            c.on_final();
        }
        let acks_to_come = self.invite
            && code >= 300
            && matches!(&b.uac, Some(Transaction::InviteClient(c)) if !c.is_terminated());
        b.release_request(acks_to_come);
        let already_final = b.final_code != 0;
        if code < 300 {
            // Every 2xx goes upstream (RFC 3261 §16.7 step 5), even late ones.
            b.final_code = code;
            b.faked = false;
            let reason = Some("SIP;cause=200;text=\"Call completed elsewhere\"".to_string());
            let keep = std::mem::replace(&mut self.cancel_reason, reason);
            self.send_up(now, code, relayed, &mut out);
            self.cancel_reason = keep;
            return (out, true);
        }
        if already_final {
            // A 487 after our CANCEL of a timed-out branch, and the like.
            return (out, false);
        }
        b.final_code = code;
        b.final_reply = Some(relayed);
        if code >= 600 && self.invite && !self.cfg.disable_6xx {
            self.cancel_pending(now, &mut out);
        }
        self.check_complete(now, rf, &mut out);
        (out, true)
    }

    /// The caller's CANCEL arrived: cancel every pending branch (at once
    /// if it had a provisional, else as soon as one arrives).
    pub fn on_cancel(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.invite && self.final_sent == 0 {
            self.canceled = true;
            self.cancel_pending(now, &mut out);
            // A suspended request ends (487) at the next timer run.
            if let Some(b) = self.blind.and_then(|i| self.branches.get_mut(i)) {
                if b.final_code == 0 {
                    b.blind_until = Some(now);
                }
            }
        }
        out
    }

    /// tmx's `t_cancel_callid`: CANCELs for the pending branches of an
    /// INVITE (at once for those with a provisional reply, else when one
    /// arrives) with `reason` as their Reason header; the transaction is
    /// not marked cancelled (the replies that come decide). False when
    /// there is nothing to cancel.
    pub fn cancel_branches(&mut self, now: Instant, reason: Option<String>) -> (bool, Vec<Effect>) {
        let mut out = Vec::new();
        if !self.invite || self.final_sent >= 200 {
            return (false, out);
        }
        if reason.is_some() {
            self.cancel_reason = reason;
        }
        self.cancel_pending(now, &mut out);
        (true, out)
    }

    /// The caller's ACK for our negative final reply (absorbed).
    pub fn on_ack(&mut self, now: Instant, ack: Bytes) -> Vec<Effect> {
        let mut out = Vec::new();
        if let Transaction::InviteServer(s) = &mut self.uas {
            up(s.handle_ack(now, ack), &mut out);
        }
        out
    }

    /// A retransmission of the request: resend the last reply, if any.
    pub fn on_retransmission(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        let acts = match &mut self.uas {
            Transaction::InviteServer(s) => s.handle_request(now),
            Transaction::NonInviteServer(s) => s.handle_request(now),
            _ => Actions::ignored(),
        };
        up(acts, &mut out);
        out
    }

    /// The last reply sent upstream that a retransmission would repeat.
    pub fn has_reply(&self) -> bool {
        match &self.uas {
            Transaction::InviteServer(s) => s.last_response().is_some(),
            Transaction::NonInviteServer(s) => s.last_response().is_some(),
            _ => false,
        }
    }

    /// Timers: retransmissions up and down, branch timeouts (a faked 408
    /// and a CANCEL where a provisional was seen), the lifetime limit.
    pub fn on_timeout(&mut self, now: Instant, rf: &dyn ReplyFactory) -> Vec<Effect> {
        let (mut out, any_final) = self.on_timeout_branches(now);
        if any_final {
            self.check_complete(now, rf, &mut out);
        }
        out
    }

    /// After [`Proxy::on_timeout_branches`] ended some branch: what
    /// follows if every branch has ended (the best reply relayed, or
    /// failure_route).
    pub fn complete(&mut self, now: Instant, rf: &dyn ReplyFactory) -> Vec<Effect> {
        let mut out = Vec::new();
        self.check_complete(now, rf, &mut out);
        out
    }

    /// The timers of [`Proxy::on_timeout`] without the decision on the
    /// transaction: the effects, and whether some branch ended (a
    /// branch-failure route may add branches before [`Proxy::complete`]).
    pub fn on_timeout_branches(&mut self, now: Instant) -> (Vec<Effect>, bool) {
        let mut out = Vec::new();
        up(self.uas.handle_timeout(now), &mut out);
        self.end_dropped(now);
        let reason = self.cancel_reason.clone();
        let timers = self.cfg.timers;
        let mut any_final = false;
        for (idx, b) in self.branches.iter_mut().enumerate() {
            if let Some(u) = b.uac.as_mut() {
                if u.poll_timeout().is_some_and(|t| t <= now) {
                    for a in u.handle_timeout(now) {
                        match a {
                            Action::Transmit(r) => out.push(Effect::Downstream(idx, r)),
                            Action::Timeout if b.final_code == 0 => {
                                b.final_code = 408;
                                b.faked = true;
                                b.timed_out = true;
                                any_final = true;
                            }
                            _ => {}
                        }
                    }
                    if b.final_code != 0 && u.is_terminated() {
                        // Timer D is over: no more ACKs to build from it.
                        b.request = Bytes::new();
                    }
                }
            }
            if b.timer_c.as_mut().is_some_and(|c| c.handle_timeout(now)) && b.final_code == 0 {
                b.final_code = 408;
                b.faked = true;
                b.timed_out = true;
                any_final = true;
                send_cancel(b, idx, reason.as_deref(), &timers, now, &mut out);
            }
            if b.final_code == 0 && b.blind_until.is_some_and(|t| t <= now) {
                b.blind_until = None;
                b.final_code = if self.canceled { 487 } else { 408 };
                b.faked = true;
                b.timed_out = !self.canceled;
                any_final = true;
            }
            if b.kill_at.is_some_and(|k| k <= now) {
                b.kill_at = None;
                if let Some(u) = b.uac.as_mut() {
                    u.terminate();
                }
                if b.final_code == 0 {
                    b.final_code = 408;
                    b.faked = true;
                    b.timed_out = true;
                    any_final = true;
                }
            }
            if let Cancel::Sent(c) = &mut b.cancel {
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    let acts = c.handle_timeout(now);
                    for a in acts {
                        match a {
                            Action::Transmit(r) => out.push(Effect::Downstream(idx, r)),
                            Action::Terminated | Action::Timeout => b.cancel = Cancel::Done,
                            _ => {}
                        }
                    }
                }
            }
        }
        if now >= self.end_of_life
            && self.final_sent == 0
            && !self.in_failure
            && !self.uas.is_terminated()
        {
            self.expired = true;
            for (idx, b) in self.branches.iter_mut().enumerate() {
                if b.final_code == 0 {
                    b.final_code = 408;
                    b.faked = true;
                    b.timed_out = true;
                    any_final = true;
                    if b.last_received > 0 {
                        send_cancel(b, idx, reason.as_deref(), &timers, now, &mut out);
                    } else if let Some(u) = b.uac.as_mut() {
                        u.terminate();
                    }
                }
            }
            if self.branches.is_empty() {
                // A transaction nobody answered (t_newtran without a reply).
                self.uas.terminate();
            }
        }
        (out, any_final)
    }

    /// failure_route ended: relay the winning reply unless it replied or
    /// started new branches.
    pub fn failure_done(&mut self, now: Instant, rf: &dyn ReplyFactory) -> Vec<Effect> {
        let mut out = Vec::new();
        self.in_failure = false;
        if self.final_sent != 0 || self.uas.is_terminated() {
            return out;
        }
        if self.branches.iter().any(|b| b.pending()) {
            return out;
        }
        self.relay_winner(now, rf, &mut out);
        out
    }

    /// A CANCEL for a branch: the caller's or ours.
    /// tmx's `t_cancel_branches`: CANCELs for the pending branches that
    /// `pick` selects by index (a branch without a provisional reply yet
    /// is cancelled when one comes).
    pub fn cancel_some(&mut self, now: Instant, pick: impl Fn(usize) -> bool) -> Vec<Effect> {
        let mut out = Vec::new();
        if !self.invite {
            return out;
        }
        let reason = self.cancel_reason.clone();
        let timers = self.cfg.timers;
        for (idx, b) in self.branches.iter_mut().enumerate() {
            if !pick(idx) || b.final_code != 0 || !matches!(b.cancel, Cancel::No) {
                continue;
            }
            if b.last_received > 0 {
                send_cancel(b, idx, reason.as_deref(), &timers, now, &mut out);
            } else {
                b.cancel = Cancel::Wanted;
            }
        }
        out
    }

    fn cancel_pending(&mut self, now: Instant, out: &mut Vec<Effect>) {
        if !self.invite {
            return;
        }
        let reason = self.cancel_reason.clone();
        let timers = self.cfg.timers;
        for (idx, b) in self.branches.iter_mut().enumerate() {
            if b.final_code != 0 || !matches!(b.cancel, Cancel::No) {
                continue;
            }
            if b.last_received > 0 {
                send_cancel(b, idx, reason.as_deref(), &timers, now, out);
            } else {
                b.cancel = Cancel::Wanted;
            }
        }
    }

    fn check_complete(&mut self, now: Instant, rf: &dyn ReplyFactory, out: &mut Vec<Effect>) {
        if self.final_sent != 0 || self.in_failure || self.uas.is_terminated() {
            return;
        }
        if self.branches.is_empty() || self.branches.iter().any(|b| b.pending()) {
            return;
        }
        self.winner = self.pick();
        if self.failure_armed {
            self.failure_armed = false;
            self.in_failure = true;
            out.push(Effect::RunFailure);
            return;
        }
        self.relay_winner(now, rf, out);
    }

    fn pick(&self) -> Option<usize> {
        let cands = |all: bool| {
            self.branches
                .iter()
                .enumerate()
                .filter(move |(_, b)| all || !b.dropped)
                .filter(|(_, b)| b.final_code >= 300)
                .map(|(i, b)| (i, b.final_code, b.faked))
        };
        pick::best(cands(false)).or_else(|| pick::best(cands(true)))
    }

    fn relay_winner(&mut self, now: Instant, rf: &dyn ReplyFactory, out: &mut Vec<Effect>) {
        self.winner = self.pick();
        let Some(w) = self.winner else {
            if let Some(r) = rf.local_reply(500, "Server Internal Error") {
                self.send_up(now, 500, r, out);
            }
            return;
        };
        let b = &self.branches[w];
        let mut code = b.final_code;
        if b.faked
            && self.blind != Some(w)
            && !self.cfg.noisy_ctimer
            && self.invite
            && self.branches.len() == 1
            && b.last_received == 0
        {
            // noisy_ctimer=0: a lone silent branch ends without a 408.
            self.uas.terminate();
            self.final_sent = code;
            return;
        }
        let bytes = match (&b.final_reply, b.faked) {
            // RFC 3261 16.7 step 6: a 503 is not relayed, the caller gets
            // a 500 of ours (with Kamailio's reason).
            (Some(_), false) if code == 503 => {
                code = 500;
                rf.local_reply(500, "Service Unavailable")
            }
            (Some(r), false) => {
                let mut r = r.clone();
                if self.cfg.aggregate_challenges && matches!(code, 401 | 407) {
                    // Several challenges: a reply of ours with all of them.
                    let all: Vec<&Bytes> = self
                        .branches
                        .iter()
                        .filter(|o| !o.dropped && matches!(o.final_code, 401 | 407))
                        .filter_map(|o| o.final_reply.as_ref())
                        .collect();
                    if all.len() > 1 {
                        let reason = Message::parse(&r)
                            .ok()
                            .and_then(|m| m.reason().map(str::to_string))
                            .unwrap_or_default();
                        let merged = rf.local_reply(code, &reason).and_then(|l| {
                            pick::with_challenges(&l, &all, self.cfg.upstream_stream)
                        });
                        if let Some(a) = merged {
                            r = a;
                        }
                    }
                }
                Some(r)
            }
            _ => {
                let reason = match code {
                    408 => self.cfg.reason_408.clone(),
                    487 => "Request Terminated".to_string(),
                    // A continued request whose route neither replied nor
                    // relayed: Kamailio's t_continue kills the
                    // transaction with its unspecified-error text.
                    _ if self.blind == Some(w) => {
                        "I'm terribly sorry, server error occurred (1/TM)".to_string()
                    }
                    _ => "Server Internal Error".to_string(),
                };
                rf.local_reply(code, &reason)
            }
        };
        if let Some(bytes) = bytes {
            self.send_up(now, code, bytes, out);
        }
    }
}

fn send_cancel(
    b: &mut BranchState,
    idx: usize,
    reason: Option<&str>,
    timers: &TimerConfig,
    now: Instant,
    out: &mut Vec<Effect>,
) {
    let reliable = matches!(&b.uac, Some(Transaction::InviteClient(c)) if c.is_reliable());
    let Ok(m) = Message::parse(&b.request) else {
        b.cancel = Cancel::Done;
        return;
    };
    let Ok(cancel) = build::cancel(&m, reason) else {
        b.cancel = Cancel::Done;
        return;
    };
    let (c, acts) = NonInviteClient::start(Bytes::from(cancel), reliable, timers, now);
    for a in acts {
        if let Action::Transmit(r) = a {
            out.push(Effect::Downstream(idx, r));
        }
    }
    b.cancel = Cancel::Sent(Box::new(c));
    b.kill_at = Some(now + timers.timer_b);
}

impl Proxy {
    /// A reply to the CANCEL sent on branch `idx` (absorbed). Returns
    /// false when no CANCEL runs there.
    pub fn on_cancel_reply(&mut self, now: Instant, idx: usize, code: u16, raw: Bytes) -> bool {
        let Some(b) = self.branches.get_mut(idx) else {
            return false;
        };
        let Cancel::Sent(c) = &mut b.cancel else {
            return false;
        };
        let acts = c.handle_response(now, raw, code);
        if acts.terminated() || c.is_terminated() {
            b.cancel = Cancel::Done;
        }
        true
    }
}

/// The ACK for a negative reply to the request sent on a branch.
fn build_ack(request: &Bytes, resp: &Bytes) -> Option<Bytes> {
    let req = Message::parse(request).ok()?;
    let rsp = Message::parse(resp).ok()?;
    build::ack_for_non2xx(&req, &rsp).ok().map(Bytes::from)
}
