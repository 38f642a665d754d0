//! RFC 3261 retransmission schedule (section 17.1, timers A/B and E/F)
//! and the timer queues the engines run on.
//!
//! Every timer in this tool has one of a handful of fixed delays (T1,
//! 2*T1, ... and the 64*T1 timeout), so each delay gets its own FIFO:
//! entries pushed with a fixed delay expire in push order, which makes
//! push and pop O(1) without a heap.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// RFC 3261 T1: round-trip time estimate.
pub const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2: the cap on non-INVITE (and 2xx) retransmission intervals.
pub const T2: Duration = Duration::from_secs(4);
/// RFC 3261 64*T1: transaction timeout (timers B, F, H).
pub const TIMEOUT: Duration = Duration::from_secs(32);

/// The kind of client transaction, which decides the retransmission rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnKind {
    /// INVITE: T1, 2*T1, 4*T1, ... (timer A) until the timeout.
    Invite,
    /// Non-INVITE (and 2xx retransmission by a UAS): T1 doubling, capped
    /// at T2 (timer E).
    NonInvite,
}

/// The wait before retransmission number `n` (0 for the first one).
pub fn retrans_interval(kind: TxnKind, n: u32) -> Duration {
    let d = T1.saturating_mul(1u32 << n.min(16));
    match kind {
        TxnKind::Invite => d,
        TxnKind::NonInvite => d.min(T2),
    }
}

/// The times (from the first transmission) of every retransmission sent
/// before `timeout`, for reports and tests.
pub fn schedule(kind: TxnKind, timeout: Duration) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut at = Duration::ZERO;
    for n in 0.. {
        at += retrans_interval(kind, n);
        if at >= timeout {
            break;
        }
        out.push(at);
    }
    out
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// Send the request (UAC) or the 2xx (UAS) again.
    Retrans,
    /// The transaction timed out (no final reply, or no ACK).
    Timeout,
    /// The call's hold time ended: send BYE.
    Pause,
}

/// One armed timer. It is stale (ignored) when the call's epoch moved on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// When it fires.
    pub at: Instant,
    /// The call it belongs to.
    pub key: u64,
    /// The call's epoch (transaction number) when it was armed.
    pub epoch: u32,
    /// What to do.
    pub kind: TimerKind,
    /// For retransmissions: how many were sent before this one.
    pub n: u32,
}

/// Timer queues, one FIFO per distinct delay.
#[derive(Debug, Default)]
pub struct Timers {
    queues: Vec<(Duration, VecDeque<Timer>)>,
}

impl Timers {
    /// Arms a timer `delay` from `now`. `now` must not go backwards
    /// between calls (it comes from [`Instant::now`]).
    pub fn push(
        &mut self,
        now: Instant,
        delay: Duration,
        key: u64,
        epoch: u32,
        kind: TimerKind,
        n: u32,
    ) {
        let t = Timer {
            at: now + delay,
            key,
            epoch,
            kind,
            n,
        };
        match self.queues.iter_mut().find(|(d, _)| *d == delay) {
            Some((_, q)) => q.push_back(t),
            None => {
                let mut q = VecDeque::with_capacity(1024);
                q.push_back(t);
                self.queues.push((delay, q));
            }
        }
    }

    /// The earliest deadline, if any timer is armed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queues
            .iter()
            .filter_map(|(_, q)| q.front().map(|t| t.at))
            .min()
    }

    /// Takes the earliest timer that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let q = self
            .queues
            .iter_mut()
            .filter(|(_, q)| q.front().is_some_and(|t| t.at <= now))
            .min_by_key(|(_, q)| q.front().map(|t| t.at))?;
        q.1.pop_front()
    }

    /// Number of armed timers (stale ones included).
    pub fn len(&self) -> usize {
        self.queues.iter().map(|(_, q)| q.len()).sum()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn invite_doubles_until_the_timeout() {
        assert_eq!(
            schedule(TxnKind::Invite, TIMEOUT),
            ms(&[500, 1500, 3500, 7500, 15500, 31500])
        );
    }

    #[test]
    fn non_invite_is_capped_at_t2() {
        assert_eq!(retrans_interval(TxnKind::NonInvite, 3), T2);
        assert_eq!(retrans_interval(TxnKind::NonInvite, 30), T2);
        assert_eq!(
            schedule(TxnKind::NonInvite, TIMEOUT),
            ms(&[500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])
        );
    }

    #[test]
    fn queues_pop_in_deadline_order_across_delays() {
        let mut t = Timers::default();
        let now = Instant::now();
        t.push(now, Duration::from_millis(30), 1, 0, TimerKind::Timeout, 0);
        t.push(now, Duration::from_millis(10), 2, 0, TimerKind::Retrans, 0);
        t.push(now, Duration::from_millis(20), 3, 0, TimerKind::Pause, 0);
        t.push(now, Duration::from_millis(10), 4, 0, TimerKind::Retrans, 1);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));
        assert!(t.pop_due(now).is_none());
        let later = now + Duration::from_millis(25);
        let keys: Vec<u64> = std::iter::from_fn(|| t.pop_due(later))
            .map(|x| x.key)
            .collect();
        assert_eq!(keys, vec![2, 4, 3]);
        assert_eq!(t.len(), 1);
    }
}
