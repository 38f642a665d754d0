//! When a UDP worker waits before its next receive, so that under load
//! each wake-up takes a batch of datagrams instead of one.
//!
//! A worker that blocks in the kernel after every datagram pays a sleep and
//! a wake-up (a task switch, and for the sender an inter-processor wake-up)
//! per message: on loopback that is most of the CPU a datagram costs. When
//! datagrams come often enough that at least [`MIN_EXPECTED`] are expected
//! within `udp_batch_wait`, the worker instead sleeps after each batch for the time
//! [`TARGET_BATCH`] datagrams take to come (at most `udp_batch_wait`), then
//! takes everything that queued meanwhile in one `recvmmsg` call. A message
//! that arrives while the worker is in that mode waits at most that long; a
//! worker whose datagrams come further apart blocks after each, as before,
//! and adds no delay. This file holds only the decision, without I/O, so it
//! can be tested with virtual time.

use std::time::{Duration, Instant};

/// The batch size a busy worker's sleep aims at. A wake-up costs about as
/// much CPU as handling several datagrams (10–20 µs on a virtual machine,
/// more than a small request), so a batch of 32 keeps it a small part of
/// the cost; 8 gave a quarter more CPU per stateless call at 4,000 calls/s
/// on loopback, for half the added delay (`udp_batch_wait` bounds both).
/// Half of [`crate::udp_batch::RecvBatch::CAPACITY`], so that a sleep that
/// gathers about this many is taken by one receive.
pub const TARGET_BATCH: u32 = 32;

/// How many datagrams must be expected within `udp_batch_wait` for a
/// sleep to pay. A sleep ends with a timer wake-up that the worker pays
/// in full, where a datagram's wake-up is partly paid by its sender: on
/// this project's virtual machines, at 2,000 REGISTER/s from one flow
/// (two datagrams per millisecond) sleeping cost 13.5–18 µs of CPU per
/// REGISTER against 12 µs blocking after each; at 3,000/s sleeping was
/// the cheaper (10.5–11.6 against 12–13; docs/benchmarks.md).
pub const MIN_EXPECTED: u32 = 3;

/// What a worker does after handling one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Block until a datagram comes.
    Block,
    /// Take what is queued now, without waiting (the batch was full).
    TakeNow,
    /// Sleep this long, then take what queued meanwhile, without waiting.
    SleepThenTake(Duration),
}

/// The decision state of one worker: the mean time between its datagrams.
#[derive(Debug, Clone)]
pub struct Pace {
    max_wait: Duration,
    capacity: usize,
    last: Option<Instant>,
    /// Mean gap between datagrams (exponentially weighted, 1/4 per batch).
    gap: Duration,
    /// Datagrams of full batches since `last`.
    run: usize,
}

impl Pace {
    /// `max_wait`: the `udp_batch_wait` setting (zero: never sleep);
    /// `capacity`: the most datagrams one receive takes.
    pub fn new(max_wait: Duration, capacity: usize) -> Pace {
        Pace {
            max_wait,
            capacity,
            last: None,
            gap: Duration::MAX,
            run: 0,
        }
    }

    /// What to do after `n` datagrams received at `now` were handled.
    pub fn after(&mut self, n: usize, now: Instant) -> Next {
        if self.max_wait.is_zero() {
            return if n >= self.capacity {
                Next::TakeNow
            } else {
                Next::Block
            };
        }
        if n >= self.capacity {
            // More are queued: take them now; the gap is measured over the
            // whole run of full batches when it ends.
            self.run += n;
            return Next::TakeNow;
        }
        let n = n + std::mem::take(&mut self.run);
        let since = self.last.map(|t| now.saturating_duration_since(t));
        self.last = Some(now);
        let sample = match (since, n) {
            (None, _) => return Next::Block,
            // Nothing came during a whole wait: the load is gone.
            (Some(_), 0) => {
                self.gap = Duration::MAX;
                return Next::Block;
            }
            (Some(d), n) => d / u32::try_from(n).unwrap_or(u32::MAX),
        };
        self.gap = if self.gap == Duration::MAX {
            sample
        } else {
            (self.gap.saturating_mul(3).saturating_add(sample)) / 4
        };
        if self.gap.saturating_mul(MIN_EXPECTED) > self.max_wait {
            return Next::Block;
        }
        Next::SleepThenTake(self.gap.saturating_mul(TARGET_BATCH).min(self.max_wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(1);

    #[test]
    fn sparse_datagrams_block_after_each_and_wait_for_nothing() {
        let t0 = Instant::now();
        let mut p = Pace::new(MS, 32);
        for i in 0..10u32 {
            // 5 ms apart: not two within the 1 ms wait.
            assert_eq!(p.after(1, t0 + MS * (5 * i)), Next::Block);
        }
    }

    #[test]
    fn close_datagrams_switch_to_batches_until_a_wait_brings_nothing() {
        let t0 = Instant::now();
        let max = MS * 20;
        let mut p = Pace::new(max, 64);
        assert_eq!(p.after(1, t0), Next::Block);
        // 100 µs later: TARGET_BATCH of them take TARGET_BATCH × 100 µs.
        let t1 = t0 + US * 100;
        let sleep = (US * 100 * TARGET_BATCH).min(max);
        assert_eq!(p.after(1, t1), Next::SleepThenTake(sleep));
        // As many came in the sleep: the same gap, the same sleep.
        let t2 = t1 + sleep;
        let n = (sleep.as_micros() / 100) as usize;
        assert_eq!(p.after(n, t2), Next::SleepThenTake(sleep));
        // A quarter of that came in the next: a 400 µs gap, weighted in by
        // 1/4: (3 × 100 + 400) / 4 = 175 µs.
        let t3 = t2 + sleep;
        let sleep3 = (US * 175 * TARGET_BATCH).min(max);
        assert_eq!(p.after(n / 4, t3), Next::SleepThenTake(sleep3));
        // A wait that brings nothing: back to blocking, and the next
        // datagram after a long pause does not sleep either.
        assert_eq!(p.after(0, t3 + sleep3), Next::Block);
        assert_eq!(p.after(1, t3 + MS * 500), Next::Block);
    }

    #[test]
    fn the_batch_target_is_reached_under_the_cap() {
        // 10 µs apart (100,000 datagrams/s): the sleep gathers the target.
        let t0 = Instant::now();
        let mut p = Pace::new(MS, 64);
        p.after(1, t0);
        assert_eq!(
            p.after(1, t0 + US * 10),
            Next::SleepThenTake(US * 10 * TARGET_BATCH)
        );
    }

    #[test]
    fn the_wait_never_exceeds_the_setting() {
        let t0 = Instant::now();
        let mut p = Pace::new(US * 300, 32);
        p.after(1, t0);
        // 90 µs apart: three expected within 300 µs, 32 take 2,880 µs.
        assert_eq!(p.after(1, t0 + US * 90), Next::SleepThenTake(US * 300));
        // 110 µs apart: fewer than three in 300 µs, no sleep.
        let mut q = Pace::new(US * 300, 32);
        q.after(1, t0);
        assert_eq!(q.after(1, t0 + US * 110), Next::Block);
    }

    #[test]
    fn two_datagrams_per_wait_block_three_sleep() {
        let t0 = Instant::now();
        // 2,000 datagrams/s with the default 1 ms: block after each.
        let mut p = Pace::new(MS, 64);
        p.after(1, t0);
        assert_eq!(p.after(1, t0 + US * 500), Next::Block);
        assert_eq!(p.after(1, t0 + US * 1000), Next::Block);
        // 3,000/s: sleep the whole wait (32 would take 10.7 ms).
        let mut q = Pace::new(MS, 64);
        q.after(1, t0);
        assert_eq!(q.after(1, t0 + US * 333), Next::SleepThenTake(MS));
    }

    #[test]
    fn a_full_batch_is_followed_by_an_immediate_take() {
        let t0 = Instant::now();
        let mut p = Pace::new(MS * 5, 4);
        assert_eq!(p.after(4, t0), Next::TakeNow);
        assert_eq!(p.after(5, t0), Next::TakeNow);
        // The first datagrams only start the clock (no gap yet).
        assert_eq!(p.after(1, t0 + US * 100), Next::Block);
        // The run of full batches counts in the gap: 4 + 4 + 2 in 600 µs,
        // 60 µs each.
        assert_eq!(p.after(4, t0 + US * 200), Next::TakeNow);
        assert_eq!(p.after(4, t0 + US * 200), Next::TakeNow);
        assert_eq!(
            p.after(2, t0 + US * 700),
            Next::SleepThenTake((US * 60 * TARGET_BATCH).min(MS * 5))
        );
        let mut off = Pace::new(Duration::ZERO, 4);
        assert_eq!(off.after(4, t0), Next::TakeNow);
    }

    #[test]
    fn zero_wait_always_blocks() {
        let t0 = Instant::now();
        let mut p = Pace::new(Duration::ZERO, 32);
        for i in 0..5u32 {
            assert_eq!(p.after(3, t0 + US * i), Next::Block);
        }
    }
}
