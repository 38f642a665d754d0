//! `t_suspend` and `t_continue` (Kamailio's async request processing):
//! the request_route suspends the transaction (no reply, no relay; the
//! script then exits), and later the script of any message resumes it by
//! transaction id, running a `route[...]` block on the transaction's
//! request, where `t_reply()` or `t_relay()` finish it.

use crate::cell::{clone_msg, keep_msg, BranchOut};
use crate::ctx::{tx, TxCtx};
use crate::engine::Engine;
use crate::params::Params;
use crate::relay::NewTran;
use bytes::Bytes;
use sr_sdk::prelude::*;
use sr_sdk::RouteId;

/// The transaction id as `$T(id_index)` and `$T(id_label)` show it: in
/// Kamailio's ranges, an index of 16 bits (its hash slot) and a label
/// that stays within 31 bits (so that a script's `{s.int}` reads both).
pub fn split_id(id: u64) -> (u64, u64) {
    (id & 0xffff, id >> 16)
}

/// The transaction id of `$T(id_index)` and `$T(id_label)`; `None` for
/// an index out of range.
pub fn join_id(index: u64, label: u64) -> Option<u64> {
    if index > 0xffff || label > (u64::MAX >> 16) {
        return None;
    }
    Some((label << 16) | index)
}

/// Suspends a transaction: the routes armed so far, and the blind branch
/// whose timer ends it when nobody continues it. False when it has ended.
fn add_blind(g: &mut crate::cell::Cell, armed: &crate::cell::Armed, now: sip_txn::Instant) -> bool {
    crate::relay::merge_armed(g, armed);
    if g.proxy.suspend(now).is_none() {
        return false;
    }
    let up = g.up;
    g.out.push(BranchOut {
        dest: up,
        uri: String::new(),
        flags: 0,
        target: (String::new(), None),
        location: (None, None),
        on_branch_failure: None,
    });
    true
}

impl Engine {
    /// `t_suspend()`: creates the transaction if needed, sends `100
    /// Trying` for an INVITE (`auto_inv_100`), saves the request as it
    /// is now (edits, flags, AVPs, armed routes) and starts the blind
    /// branch whose `fr_timer` ends a request nobody continues. Returns
    /// 1 suspended, 1 without suspending when the caller already
    /// cancelled, -3 after a final reply, -1 on error.
    pub fn suspend(&self, ctx: &mut Ctx<'_>) -> i32 {
        if ctx.msg.ext.get::<TxCtx>().is_some_and(|t| t.held.is_some()) {
            return self.suspend_held(ctx);
        }
        let c = match self.newtran(ctx) {
            NewTran::Created(c) | NewTran::Own(c) => c,
            NewTran::Retransmission => return 0,
            NewTran::Error => return -1,
        };
        let Some(mut g) = c.take() else {
            return -1;
        };
        if g.proxy.is_canceled() {
            return 1;
        }
        if g.proxy.final_sent() >= 200 {
            return -3;
        }
        let now = self.now();
        let t = tx(ctx.msg);
        let armed = t.armed;
        let auto100 = t
            .auto_inv_100
            .unwrap_or_else(|| Params::flag(&self.params.auto_inv_100));
        let mut effects = Vec::new();
        if g.proxy.is_invite() && auto100 && !g.proxy.has_reply() {
            let built = Params::with_text(&self.params.auto_inv_100_reason, |reason| {
                ctx.core.build_reply(ctx.msg, 100, reason, None, None)
            });
            if let Ok(o) = built {
                self.stats.rpl_generated.inc();
                effects.extend(g.proxy.reply(now, 100, Bytes::from(o.data)));
            }
        }
        if let Some(r) = keep_msg(ctx.msg) {
            g.req = r;
        }
        if !add_blind(&mut g, &armed, now) {
            return -1;
        }
        let g = self.run_effects(ctx.core, g, effects);
        drop(g);
        self.touch(&c);
        1
    }

    /// `t_suspend()` in a failure_route or in a route `t_continue` runs
    /// (`async_sleep` twice in a row): the transaction this thread holds
    /// gets a new blind branch, so that no reply goes out when the route
    /// ends. As in Kamailio, the request kept is the transaction's: what
    /// carries over from this route is its AVPs and flags (saved when the
    /// route ends) and the routes it armed.
    fn suspend_held(&self, ctx: &mut Ctx<'_>) -> i32 {
        let now = self.now();
        let t = tx(ctx.msg);
        let armed = t.armed;
        let Some(g) = t.held.as_mut() else {
            return -1;
        };
        if g.proxy.is_canceled() {
            return 1;
        }
        if g.proxy.final_sent() >= 200 {
            return -3;
        }
        if add_blind(g, &armed, now) {
            1
        } else {
            -1
        }
    }

    /// `t_continue(index, label, route)`: runs `route` on the request of
    /// the suspended transaction (as a failure_route: `t_reply`,
    /// `t_relay`, `t_on_failure` work there). When the route neither
    /// replied nor started a branch, the transaction ends with a 500.
    /// Returns 1 done (also when the transaction was cancelled or timed
    /// out meanwhile: nothing runs), -1 no such transaction, -2 not
    /// suspended.
    pub fn t_continue(&self, core: &dyn Core, id: u64, route: RouteId) -> i32 {
        let Some(c) = self.tables.by_id(id) else {
            lm_warn!("t_continue: active transaction not found");
            return -1;
        };
        let Some(mut g) = c.take() else {
            return -1;
        };
        if !g.proxy.was_suspended() {
            lm_warn!("t_continue: transaction is not suspended");
            return -2;
        }
        // (Answered meanwhile, e.g. through a branch tsilo appended: the
        // route would have nothing left to do.)
        if g.proxy.is_canceled() || g.proxy.final_sent() >= 200 || !g.proxy.resume() {
            return 1;
        }
        let Some(mut msg) = clone_msg(&g.req) else {
            let now = self.now();
            let e = self.failure_done(core, &mut g, now);
            let g = self.run_effects(core, g, e);
            drop(g);
            self.touch(&c);
            return -1;
        };
        tx(&mut msg).held = Some(g);
        core.run_route(route, RouteType::FAILURE, &mut msg);
        let Some(mut t) = msg.ext.remove::<TxCtx>() else {
            unreachable!("the continued message keeps its tm state")
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
        let g = self.run_effects(core, g, e);
        drop(g);
        self.touch(&c);
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = (0x1234_5678u64 << 16) | 0x9abc;
        let (i, l) = split_id(id);
        // Kamailio's ranges: a 16-bit index, the label above it.
        assert_eq!((i, l), (0x9abc, 0x1234_5678));
        assert_eq!(join_id(i, l), Some(id));
        assert_eq!(join_id(0x10000, 1), None);
        assert_eq!(join_id(1, u64::MAX), None);
    }
}
