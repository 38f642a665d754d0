//! tmx's `t_drop`: the transaction counts as answered (no reply is
//! relayed or made for it from now on) without sending anything; the
//! caller's retransmissions are absorbed until its lifetime ends.

use super::Proxy;
use sip_txn::Instant;

impl Proxy {
    /// Marks the transaction answered with `code` (kept when a final reply
    /// went already) and sends nothing. The server side ends at the end of
    /// the transaction's lifetime, as a transaction nobody answered.
    pub fn drop_transaction(&mut self, code: u16) {
        if self.final_sent == 0 {
            self.final_sent = code;
        }
        self.dropped = true;
    }

    /// The end of a dropped transaction's lifetime, when its server side
    /// has not ended yet.
    pub(super) fn dropped_deadline(&self) -> Option<Instant> {
        (self.dropped && !self.uas.is_terminated()).then_some(self.end_of_life)
    }

    /// Ends the server side of a dropped transaction whose lifetime is
    /// over.
    pub(super) fn end_dropped(&mut self, now: Instant) {
        if self.dropped_deadline().is_some_and(|t| t <= now) {
            self.uas.terminate();
        }
    }
}
