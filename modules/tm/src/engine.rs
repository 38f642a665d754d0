//! The module's engine: drives the sans-IO [`Proxy`](crate::proxy::Proxy)
//! of each cell with the real clock and the core's services: sends what
//! it asks for, runs failure_route, frees finished cells, and runs the
//! timer.

use crate::callbacks::TmCallback;
use crate::cell::{clone_msg, Cell, CellGuard, CellRef, LocalTag, WinningReply};
use crate::ctx::{tx, TxCtx};
use crate::params::Params;
use crate::proxy::{Effect, ReplyFactory};
use crate::stats::Stats;
use crate::table::Tables;
use bytes::Bytes;
use sip_txn::{Clock, Instant};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};

/// The tm state shared by every worker and the timer.
pub struct Engine {
    /// Parameters.
    pub params: Params,
    /// Counters.
    pub stats: Stats,
    /// The tables.
    pub tables: Tables,
    next_id: AtomicU64,
    clock: Clock,
    core: OnceLock<Weak<dyn Core>>,
    /// Callbacks of other modules ([`crate::callbacks`]).
    /// Copied on registration (at startup) so that each event takes only
    /// a reference count, not a copy of the list.
    pub(crate) callbacks: RwLock<Arc<Vec<TmCallback>>>,
    /// Whether any callback is registered (checked without locking).
    pub(crate) has_callbacks: AtomicBool,
    /// Whether a callback asked for `RequestIn` events.
    pub(crate) wants_request_in: AtomicBool,
    /// Whether a callback asked for `ReplyIn` events.
    pub(crate) wants_reply_in: AtomicBool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cells", &self.tables.cells.len())
            .finish()
    }
}

/// Local replies to a cell's request.
pub struct LocalReplies<'a> {
    /// The core.
    pub core: &'a dyn Core,
    /// The request.
    pub req: &'a SipMsg,
    /// Our To-tag (made when first needed).
    pub tag: &'a LocalTag,
    /// The transaction id (for the tag).
    pub id: u64,
    /// Counters.
    pub stats: &'a Stats,
}

impl ReplyFactory for LocalReplies<'_> {
    fn local_reply(&self, code: u16, reason: &str) -> Option<Bytes> {
        self.stats.rpl_generated.inc();
        self.core
            .build_reply(
                self.req,
                code,
                reason,
                Some(self.tag.get(self.req, self.id)),
                None,
            )
            .ok()
            .map(|o| Bytes::from(o.data))
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// A fresh engine.
    pub fn new() -> Engine {
        let seed = std::collections::hash_map::RandomState::new();
        // (Labels, the id above its low 16 bits, start below 2^30: they
        // stay within 31 bits, as scripts reading `$T(id_label)` with
        // `{s.int}` need.)
        let start = std::hash::BuildHasher::hash_one(&seed, std::process::id()) & 0x3fff_ffff;
        Engine {
            params: Params::default(),
            stats: Stats::default(),
            tables: Tables::new(),
            next_id: AtomicU64::new(start << 16),
            clock: Clock::new(),
            core: OnceLock::new(),
            callbacks: RwLock::new(Arc::new(Vec::new())),
            has_callbacks: AtomicBool::new(false),
            wants_request_in: AtomicBool::new(false),
            wants_reply_in: AtomicBool::new(false),
        }
    }

    /// Remembers the core (from `mod_init`) for the timer.
    pub fn set_core(&self, core: &dyn Core) {
        if let Some(w) = core.handle() {
            let _ = self.core.set(w);
        }
    }

    /// The core remembered at `mod_init`, while the server runs.
    pub fn core(&self) -> Option<Arc<dyn Core>> {
        self.core.get().and_then(|w| w.upgrade())
    }

    /// The timers of a non-INVITE request sent on its own (a module's
    /// keepalive, an RPC's request): tm's, from its parameters as they are
    /// now (`retr_timer1`, `retr_timer2`, `fr_timer`, `wt_timer`).
    pub fn uac_timers(&self) -> sip_txn::TimerConfig {
        use std::sync::atomic::AtomicI64;
        let p = &self.params;
        let ms = |a: &AtomicI64| {
            std::time::Duration::from_millis(a.load(Ordering::Relaxed).max(1) as u64)
        };
        crate::proxy::ProxyConfig::kamailio(
            ms(&p.fr_timer),
            ms(&p.fr_inv_timer),
            ms(&p.retr_timer1),
            ms(&p.retr_timer2),
            ms(&p.wt_timer),
        )
        .timers
    }

    /// The current time on the transaction clock.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A new cell id.
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Number of cells in the table.
    pub fn inuse(&self) -> usize {
        self.tables.cells.len()
    }

    /// Re-reads a cell's deadline into the table and frees it if it ended.
    pub fn touch(&self, c: &CellRef) {
        let gone = self.tables.cells.sync(&c.id);
        if c.is_done() {
            self.free(c, gone);
        }
    }

    /// Takes an ended cell out of both tables (`gone`: the cells table no
    /// longer has it). Its server key is removed only while it still
    /// names this cell: a new transaction may have taken the key over.
    fn free(&self, c: &CellRef, gone: bool) {
        if !gone {
            self.tables.cells.remove(&c.id);
        }
        if let Some(k) = c.key() {
            self.tables.keys.remove_if(k, |e| e.0.id == c.id);
        }
        if c.clear_active() {
            self.stats.active.dec();
        }
    }

    /// Sends what the proxy asked for; runs failure_route when asked,
    /// as often as it takes; counts the final reply.
    pub fn run_effects(
        &self,
        core: &dyn Core,
        mut g: CellGuard,
        effects: Vec<Effect>,
    ) -> CellGuard {
        let mut effects = effects;
        loop {
            let mut failure = false;
            for e in effects.drain(..) {
                match e {
                    Effect::Upstream(b) => {
                        self.stats.rpl_sent.inc();
                        core.send_batched(&g.up, &b);
                        self.reply_out(core, &mut g, &b, false);
                    }
                    Effect::Downstream(i, b) => {
                        if let Some(o) = g.out.get(i) {
                            core.send_batched(&o.dest, &b);
                        }
                    }
                    Effect::RunFailure => failure = true,
                }
            }
            if !failure {
                break;
            }
            self.on_failure_event(core, &mut g);
            let (ng, more) = self.run_failure(core, g);
            g = ng;
            effects = more;
        }
        self.account(&mut g);
        g
    }

    fn account(&self, g: &mut CellGuard) {
        let code = g.proxy.final_sent();
        if code >= 200 && !g.counted {
            g.counted = true;
            self.stats.final_code(code);
            if g.owner().clear_active() {
                self.stats.active.dec();
            }
        }
    }

    /// The winning reply of a cell, for failure_route.
    pub fn winning_reply(cell: &Cell) -> Option<WinningReply> {
        let w = cell.proxy.winner()?;
        let b = cell.proxy.branches().get(w)?;
        let (reason, bytes) = match (&b.final_reply, b.faked) {
            (Some(r), false) => {
                let reason = sr_sdk::sip_msg::Message::parse(r)
                    .ok()
                    .and_then(|m| m.reason().map(str::to_string))
                    .unwrap_or_default();
                (reason, Some(r.clone()))
            }
            _ => (cell.proxy.config().reason_408.clone(), None),
        };
        Some(WinningReply {
            code: b.final_code,
            reason,
            bytes,
        })
    }

    /// Runs failure_route on a copy of the request with the cell held,
    /// then lets the proxy decide what follows.
    fn run_failure(&self, core: &dyn Core, mut g: CellGuard) -> (CellGuard, Vec<Effect>) {
        let route = g.armed.failure.take();
        g.proxy.set_failure_armed(false);
        let reply = Self::winning_reply(&g);
        let Some(mut msg) = clone_msg(&g.req) else {
            let now = self.now();
            let e = self.failure_done(core, &mut g, now);
            return (g, e);
        };
        msg.branches.clear();
        // As Kamailio's faked_env: the Request-URI was used; t_relay here
        // sends to it again only after the script writes `$ru`, `$rU` or
        // `$du` (or a module renews it, as uac_auth).
        msg.consume_ruri();
        // As in Kamailio (checked by kamailio_parity_uac), `$du` stays as
        // the request route left it: a trunk's next hop is used again by
        // `uac_auth(); t_relay();`.
        // As in Kamailio, the route sees the branch flags of the branch
        // whose reply won (the stock configuration's NAT handling tests
        // them there).
        if let Some(b) = g.proxy.winner().and_then(|w| g.out.get(w)) {
            msg.bflags = b.flags;
        }
        {
            let t = tx(&mut msg);
            t.held = Some(g);
            t.reply = reply;
            t.in_failure = true;
        }
        if let Some(r) = route {
            core.run_route(r, RouteType::FAILURE, &mut msg);
        }
        let Some(mut t) = msg.ext.remove::<TxCtx>() else {
            unreachable!("the failure route message keeps its tm state")
        };
        let Some(mut g) = t.held.take() else {
            unreachable!("only this function puts the cell back")
        };
        g.req.avps = msg.avps.clone();
        g.req.xavps = msg.xavps.clone();
        g.req.flags = msg.flags;
        g.req.xflags = msg.xflags;
        let now = self.now();
        let e = self.failure_done(core, &mut g, now);
        (g, e)
    }

    pub(crate) fn failure_done(&self, core: &dyn Core, g: &mut Cell, now: Instant) -> Vec<Effect> {
        let Cell {
            proxy,
            req,
            to_tag,
            id,
            ..
        } = g;
        let rf = LocalReplies {
            core,
            req,
            tag: to_tag,
            id: *id,
            stats: &self.stats,
        };
        proxy.failure_done(now, &rf)
    }

    /// One timer tick: every cell whose deadline passed.
    pub fn tick(&self) {
        let Some(core) = self.core.get().and_then(|w| w.upgrade()) else {
            return;
        };
        let now = self.now();
        let mut due: Vec<CellRef> = Vec::new();
        self.tables
            .cells
            .poll_expired(now, |_, c| due.push(c.0.clone()));
        for c in due {
            if let Some(mut g) = c.take() {
                // Branches still waiting for their first reply (the first
                // 64), to blocklist the ones that time out now.
                let silent = if core.dst_blocklist().is_some() {
                    silent_branches(&g)
                } else {
                    0
                };
                // Branches (of the first 64) with a branch-failure route
                // armed and no final reply yet: those that time out now
                // run it.
                let watched = g
                    .out
                    .iter()
                    .zip(g.proxy.branches())
                    .take(64)
                    .enumerate()
                    .filter(|(_, (o, b))| o.on_branch_failure.is_some() && b.final_code == 0)
                    .fold(0u64, |m, (i, _)| m | 1 << i);
                let (mut eff, any_final) = g.proxy.on_timeout_branches(now);
                if any_final && watched != 0 && !g.proxy.is_expired() && g.proxy.final_sent() == 0 {
                    // event_route[tm:branch-failure] for each branch that
                    // timed out now (as Kamailio, with its local 408),
                    // before the transaction's fate is decided.
                    let mut held = Some(g);
                    for idx in (0..64).filter(|i| watched & (1 << i) != 0) {
                        let Some(cur) = held.take() else { break };
                        let Some(b) = cur.proxy.branches().get(idx) else {
                            held = Some(cur);
                            continue;
                        };
                        let route = cur.out.get(idx).and_then(|o| o.on_branch_failure);
                        match route {
                            Some(r) if b.timed_out => {
                                let reply = WinningReply {
                                    code: b.final_code,
                                    reason: Params::text(&self.params.reply_408_reason),
                                    bytes: None,
                                };
                                held = self.run_branch_failure(&*core, cur, r, idx, reply);
                            }
                            _ => held = Some(cur),
                        }
                    }
                    match held {
                        Some(ng) => g = ng,
                        None => {
                            self.touch(&c);
                            continue;
                        }
                    }
                }
                if any_final {
                    let Cell {
                        proxy,
                        req,
                        to_tag,
                        id,
                        ..
                    } = &mut *g;
                    let rf = LocalReplies {
                        core: &*core,
                        req,
                        tag: to_tag,
                        id: *id,
                        stats: &self.stats,
                    };
                    eff.extend(proxy.complete(now, &rf));
                }
                if silent != 0 {
                    for (idx, b) in g.proxy.branches().iter().enumerate().take(64) {
                        if silent & (1 << idx) != 0 && b.timed_out {
                            self.blocklist_timeout(&*core, &g, idx);
                        }
                    }
                }
                let g = self.run_effects(&*core, g, eff);
                drop(g);
            }
            self.touch(&c);
        }
    }

    /// Runs `f` with the cell checked out, runs the effects it returns,
    /// puts the cell back and updates the table.
    pub fn with_guard(
        &self,
        core: &dyn Core,
        c: &CellRef,
        f: impl FnOnce(&mut Cell) -> Vec<Effect>,
    ) -> bool {
        let Some(mut g) = c.take() else {
            return false;
        };
        let eff = f(&mut g);
        let g = self.run_effects(core, g, eff);
        drop(g);
        self.touch(c);
        true
    }
}

/// Shared engine.
pub type EngineRef = Arc<Engine>;

/// The branches (of the first 64) that are pending and received nothing
/// yet, one bit each.
fn silent_branches(g: &Cell) -> u64 {
    g.proxy
        .branches()
        .iter()
        .take(64)
        .enumerate()
        .filter(|(_, b)| b.sent() && b.final_code == 0 && b.last_received == 0)
        .fold(0, |m, (i, _)| m | 1 << i)
}
