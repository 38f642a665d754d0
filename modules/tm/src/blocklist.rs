//! tm and the core's destination blocklist (`use_dst_blocklist`): a
//! branch to a blocklisted destination is not sent (methods in
//! `blst_methods_lookup`), a branch that timed out without any reply
//! blocklists its destination (methods in `blst_methods_add`), a failed
//! connect does too, and with `blst_503` so does a 503's source.

use crate::cell::Cell;
use crate::engine::Engine;
use sr_sdk::dst_blocklist::{retry_after, ERR_503, ERR_CONNECT, ERR_TIMEOUT};
use sr_sdk::msg::method_id;
use sr_sdk::prelude::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Whether a method parameter (Kamailio's method bits) covers `method`.
fn covers(mask: i64, method: &str) -> bool {
    mask & i64::from(method_id(method)) != 0
}

impl Engine {
    /// Whether a branch of a `method` request must not go to `dest`.
    pub(crate) fn blocklisted(&self, core: &dyn Core, method: &str, dest: &Dest) -> bool {
        let Some(b) = core.dst_blocklist() else {
            return false;
        };
        covers(
            self.params.blst_methods_lookup.load(Ordering::Relaxed),
            method,
        ) && b.check(dest.proto, dest.addr, Instant::now()) != 0
    }

    /// Branch `idx` of `g` timed out with nothing received: blocklists
    /// its destination when the method is one of `blst_methods_add`.
    pub(crate) fn blocklist_timeout(&self, core: &dyn Core, g: &Cell, idx: usize) {
        let (Some(b), Some(out)) = (core.dst_blocklist(), g.out.get(idx)) else {
            return;
        };
        if !covers(
            self.params.blst_methods_add.load(Ordering::Relaxed),
            &g.method,
        ) {
            return;
        }
        let ignore = g.req.fwd_flags.blst_imask;
        let _ = b.add(
            out.dest.proto,
            out.dest.addr,
            ERR_TIMEOUT,
            None,
            ignore,
            Instant::now(),
        );
    }

    /// Connecting to a branch's destination failed.
    pub(crate) fn blocklist_connect(&self, core: &dyn Core, msg: &SipMsg, dest: &Dest) {
        if let Some(b) = core.dst_blocklist() {
            let ignore = msg.fwd_flags.blst_imask;
            let _ = b.add(
                dest.proto,
                dest.addr,
                ERR_CONNECT,
                None,
                ignore,
                Instant::now(),
            );
        }
    }

    /// A 503 came in for a request of `g` (`blst_503`), and onreply_route
    /// ran: its source is
    /// blocklisted for its Retry-After (within `blst_503_min_timeout` and
    /// `blst_503_max_timeout`), or `blst_503_def_timeout` without one
    /// (not at all when that is 0).
    pub(crate) fn blocklist_503(&self, core: &dyn Core, g: &Cell, reply: &SipMsg) {
        let p = &self.params;
        let Some(b) = core.dst_blocklist() else {
            return;
        };
        if p.blst_503.load(Ordering::Relaxed) == 0 {
            return;
        }
        let secs = match retry_after(reply.msg()) {
            Some(ra) => {
                let min = p.blst_503_min_timeout.load(Ordering::Relaxed).max(0) as u64;
                let max = p.blst_503_max_timeout.load(Ordering::Relaxed).max(0) as u64;
                ra.max(min).min(max)
            }
            None => p.blst_503_def_timeout.load(Ordering::Relaxed).max(0) as u64,
        };
        if secs == 0 {
            return;
        }
        // The errors the request's script or the reply's ignores.
        let ignore = g.req.fwd_flags.blst_imask | reply.fwd_flags.blst_imask;
        let _ = b.add(
            reply.rcv.proto,
            reply.rcv.src,
            ERR_503,
            Some(Duration::from_secs(secs)),
            ignore,
            Instant::now(),
        );
    }
}
