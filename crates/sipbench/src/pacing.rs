//! Holding a target rate: how many calls should have started by a given
//! moment, and when the next one is due.

use std::time::{Duration, Instant};

/// Calls due by `elapsed` at `rate` per second: call 0 starts at once,
/// call k at k/rate seconds.
pub fn due(elapsed: Duration, rate: f64) -> u64 {
    if rate <= 0.0 {
        return 0;
    }
    (elapsed.as_secs_f64() * rate).floor() as u64 + 1
}

/// When call number `k` (from 0) is due.
pub fn due_at(start: Instant, k: u64, rate: f64) -> Instant {
    if rate <= 0.0 {
        return start + Duration::from_secs(3600);
    }
    start + Duration::from_secs_f64(k as f64 / rate)
}

/// How many calls to start now: those due and not started yet, within
/// the cap on concurrent calls and the total limit.
pub fn to_start(due: u64, started: u64, active: usize, cap: usize, max_total: u64) -> u64 {
    let room = cap.saturating_sub(active) as u64;
    due.min(max_total).saturating_sub(started).min(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_counts_follow_the_rate() {
        assert_eq!(due(Duration::ZERO, 1000.0), 1);
        assert_eq!(due(Duration::from_micros(999), 1000.0), 1);
        assert_eq!(due(Duration::from_millis(1), 1000.0), 2);
        assert_eq!(due(Duration::from_secs(10), 250.0), 2501);
        assert_eq!(due(Duration::from_secs(10), 0.0), 0);
    }

    #[test]
    fn due_at_inverts_due() {
        let s = Instant::now();
        for k in [0u64, 1, 7, 1234] {
            let t = due_at(s, k, 300.0);
            assert_eq!(due(t - s + Duration::from_nanos(10), 300.0), k + 1);
        }
    }

    #[test]
    fn cap_and_total_limit_the_burst() {
        assert_eq!(to_start(100, 40, 0, 1000, u64::MAX), 60);
        assert_eq!(to_start(100, 40, 990, 1000, u64::MAX), 10);
        assert_eq!(to_start(100, 40, 1200, 1000, u64::MAX), 0);
        assert_eq!(to_start(100, 40, 0, 1000, 50), 10);
        assert_eq!(to_start(10, 40, 0, 1000, 50), 0);
    }
}
