//! The blind branch of `t_suspend`: a branch on which nothing is sent,
//! whose `fr_timer` ends a request nobody continues, and which
//! `t_continue` ends so that it never wins over a real reply.

use super::{BranchState, Proxy};
use bytes::Bytes;
use sip_txn::Instant;

impl Proxy {
    /// `t_suspend`: adds a blind branch (nothing is sent on it) whose
    /// `fr_timer` keeps running, so that a request never continued ends
    /// with a local 408 (and failure_route). `None` once the caller
    /// cancelled or a final reply went upstream.
    pub fn suspend(&mut self, now: Instant) -> Option<usize> {
        if self.canceled || self.final_sent != 0 {
            return None;
        }
        let idx = self.branches.len();
        let blind_until = Some(now + self.cfg.timers.timer_b);
        let b = BranchState::new(None, Bytes::new(), blind_until, self.leg);
        crate::cell::push_tight(&mut self.branches, b);
        self.blind = Some(idx);
        self.end_of_life = self.end_of_life.max(now);
        Some(idx)
    }

    /// Whether the blind branch of `t_suspend` still waits for
    /// `t_continue`.
    pub fn is_suspended(&self) -> bool {
        self.blind
            .and_then(|i| self.branches.get(i))
            .is_some_and(|b| b.final_code == 0)
    }

    /// Whether `t_suspend` was ever called on this transaction.
    pub fn was_suspended(&self) -> bool {
        self.blind.is_some()
    }

    /// `t_continue`: ends the blind branch with a local 500 that loses
    /// to any real reply. False when it already ended (timed out,
    /// cancelled or continued before).
    pub fn resume(&mut self) -> bool {
        let Some(b) = self.blind.and_then(|i| self.branches.get_mut(i)) else {
            return false;
        };
        if b.final_code != 0 {
            return false;
        }
        b.blind_until = None;
        b.final_code = 500;
        b.faked = true;
        b.dropped = true;
        true
    }
}
