//! The crate's notion of time: a millisecond instant passed in by the caller.
//!
//! The state machines never read a clock. Every `handle_*` method takes the
//! current [`Instant`], and every deadline a machine reports is an
//! [`Instant`]. In tests this is a plain counter (`Instant::from_millis(1500)`);
//! in production [`Clock`] maps [`std::time::Instant`] onto it.

use std::ops::{Add, AddAssign};
use std::time::Duration;

/// A point in time, in whole milliseconds since an arbitrary epoch chosen by
/// the caller.
///
/// Millisecond resolution is ample for SIP timers (the smallest, T1, is
/// hundreds of milliseconds). Arithmetic saturates instead of overflowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself (millisecond zero).
    pub const ZERO: Instant = Instant(0);

    /// An instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_millis(d)))
    }
}

/// Whole milliseconds of a duration, saturating at `u64::MAX`.
pub(crate) fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Next retransmission deadline: `at + interval`, or `now + interval` if
/// the caller was so late that the former is already in the past.
pub(crate) fn next_deadline(at: Instant, interval: Duration, now: Instant) -> Instant {
    let next = at + interval;
    if next > now {
        next
    } else {
        now + interval
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = self.saturating_add(rhs);
    }
}

/// Maps the real monotonic clock onto [`Instant`] for production use.
///
/// The machines never call this; the I/O layer does, once per event:
///
/// ```
/// let clock = sip_txn::Clock::new();
/// let now = clock.now();
/// assert!(now.as_millis() < 1_000);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: std::time::Instant,
}

impl Clock {
    /// A clock whose epoch is the moment of this call.
    pub fn new() -> Self {
        Clock {
            epoch: std::time::Instant::now(),
        }
    }

    /// A clock with the given epoch.
    pub fn with_epoch(epoch: std::time::Instant) -> Self {
        Clock { epoch }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.to_instant(std::time::Instant::now())
    }

    /// Converts a real instant (clamped to the epoch) to an [`Instant`].
    pub fn to_instant(&self, t: std::time::Instant) -> Instant {
        Instant(duration_millis(t.saturating_duration_since(self.epoch)))
    }

    /// Converts an [`Instant`] back to a real instant (e.g. to sleep until a
    /// deadline).
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        self.epoch + Duration::from_millis(t.0)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(u64::MAX - 1);
        assert_eq!((t + Duration::from_secs(1)).as_millis(), u64::MAX);
        let a = Instant::from_millis(10);
        let b = Instant::from_millis(30);
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(b.saturating_duration_since(a), Duration::from_millis(20));
    }

    #[test]
    fn clock_round_trips() {
        let c = Clock::new();
        let t = Instant::from_millis(1234);
        assert_eq!(c.to_instant(c.to_std(t)), t);
    }
}
