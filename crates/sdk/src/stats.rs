//! Statistics: counters and gauges a module registers and updates without
//! locks, read through RPC as `group:name = value`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A statistic: a shared counter or gauge.
///
/// Cloning shares the value. Updates are single atomic operations.
#[derive(Debug, Clone, Default)]
pub struct Stat(Arc<AtomicI64>);

impl Stat {
    /// A new statistic starting at 0.
    pub fn new() -> Stat {
        Stat::default()
    }

    /// Adds 1 (Kamailio's `update_stat(s, 1)`).
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts 1.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds `n` (negative to subtract).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the value (gauges).
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The current value (`get_stat_val`).
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Resets to 0 (`reset_stat`).
    pub fn reset(&self) {
        self.set(0);
    }
}

/// Where a statistic's value comes from.
#[derive(Clone)]
pub enum StatSource {
    /// A counter or gauge the module updates.
    Value(Stat),
    /// Computed when read (Kamailio's `STAT_IS_FUNC`).
    Func(Arc<dyn Fn() -> i64 + Send + Sync>),
}

impl StatSource {
    /// The current value.
    pub fn read(&self) -> i64 {
        match self {
            StatSource::Value(s) => s.get(),
            StatSource::Func(f) => f(),
        }
    }
}

impl std::fmt::Debug for StatSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatSource::Value(s) => write!(f, "Value({})", s.get()),
            StatSource::Func(_) => f.write_str("Func"),
        }
    }
}

/// A statistic a module exports.
#[derive(Debug, Clone)]
pub struct StatExport {
    /// Name within the module's group (`accepted_regs`).
    pub name: String,
    /// Not cleared by `stats.reset_statistics` (Kamailio's `STAT_NO_RESET`).
    pub no_reset: bool,
    /// The value.
    pub source: StatSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_across_threads() {
        let s = Stat::new();
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| s.inc()))
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(s.get(), 4000);
        s.reset();
        assert_eq!(StatSource::Value(s).read(), 0);
        assert_eq!(StatSource::Func(Arc::new(|| 7)).read(), 7);
    }
}
