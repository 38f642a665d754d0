//! The timers: their statistics, shared by all workers, in microseconds.

/// Timer names are at most this many bytes (Kamailio's `BM_NAME_LEN` - 1).
pub const NAME_MAX: usize = 31;

/// The initial minimum (Kamailio's `0xffffffff`).
pub const NO_MIN: u64 = 0xffff_ffff;

/// One timer's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// Its name.
    pub name: String,
    /// Its number, in registration order from 0.
    pub id: u32,
    /// Enabled on its own (`benchmark.enable_timer`).
    pub enabled: bool,
    /// Runs measured.
    pub calls: u64,
    /// Their total.
    pub sum: u64,
    /// Total, minimum and maximum since the last log line.
    pub last_sum: u64,
    /// Minimum since the last log line.
    pub last_min: u64,
    /// Maximum since the last log line.
    pub last_max: u64,
    /// Minimum since start.
    pub global_min: u64,
    /// Maximum since start.
    pub global_max: u64,
    /// The last complete period's total.
    pub period_sum: u64,
    /// The last complete period's minimum.
    pub period_min: u64,
    /// The last complete period's maximum.
    pub period_max: u64,
}

impl Timer {
    fn new(name: &str, id: u32) -> Timer {
        Timer {
            name: name.to_string(),
            id,
            enabled: false,
            calls: 0,
            sum: 0,
            last_sum: 0,
            last_min: NO_MIN,
            last_max: 0,
            global_min: NO_MIN,
            global_max: 0,
            period_sum: 0,
            period_min: NO_MIN,
            period_max: 0,
        }
    }

    /// Adds a run of `diff` µs; the log line's text when `granularity`
    /// runs completed a period (the period's figures then kept and
    /// restarted).
    pub fn add(&mut self, diff: u64, granularity: u64) -> Option<String> {
        self.sum = self.sum.wrapping_add(diff);
        self.last_sum = self.last_sum.wrapping_add(diff);
        self.calls += 1;
        self.last_min = self.last_min.min(diff);
        self.last_max = self.last_max.max(diff);
        self.global_min = self.global_min.min(diff);
        self.global_max = self.global_max.max(diff);
        let g = granularity.max(1);
        if !self.calls.is_multiple_of(g) {
            return None;
        }
        let line = format!(
            "benchmark (timer {} [{}]): {diff} [ msgs/total/min/max/avg - LR: {g}/{}/{}/{}/{:.6} | GB: {}/{}/{}/{}/{:.6}]",
            self.name,
            self.id,
            self.last_sum,
            self.last_min,
            self.last_max,
            self.last_sum as f64 / g as f64,
            self.calls,
            self.sum,
            self.global_min,
            self.global_max,
            self.sum as f64 / self.calls as f64,
        );
        self.period_sum = self.last_sum;
        self.period_min = self.last_min;
        self.period_max = self.last_max;
        self.last_sum = 0;
        self.last_min = NO_MIN;
        self.last_max = 0;
        Some(line)
    }
}

/// All timers, by id.
#[derive(Debug, Default)]
pub struct Timers {
    /// Index = id.
    pub list: Vec<Timer>,
}

impl Timers {
    /// The id of timer `name`, registering it when `create` (ids in
    /// registration order); `None` for an unknown name without `create`,
    /// an empty one or one too long.
    pub fn id(&mut self, name: &str, create: bool) -> Option<u32> {
        if name.is_empty() || name.len() > NAME_MAX {
            return None;
        }
        if let Some(t) = self.list.iter().find(|t| t.name == name) {
            return Some(t.id);
        }
        if !create {
            return None;
        }
        let id = u32::try_from(self.list.len()).ok()?;
        self.list.push(Timer::new(name, id));
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_gives_ids_in_order() {
        let mut t = Timers::default();
        assert_eq!(t.id("a", true), Some(0));
        assert_eq!(t.id("b", true), Some(1));
        assert_eq!(t.id("a", true), Some(0));
        assert_eq!(t.id("c", false), None);
        assert_eq!(t.id("", true), None);
        assert_eq!(t.id(&"x".repeat(32), true), None);
        assert_eq!(t.id(&"x".repeat(31), true), Some(2));
    }

    #[test]
    fn a_line_every_granularity_runs() {
        let mut t = Timer::new("t", 0);
        assert_eq!(t.add(10, 2), None);
        let line = t.add(30, 2).unwrap();
        assert_eq!(
            line,
            "benchmark (timer t [0]): 30 [ msgs/total/min/max/avg - LR: 2/40/10/30/20.000000 | GB: 2/40/10/30/20.000000]"
        );
        assert_eq!((t.period_sum, t.period_min, t.period_max), (40, 10, 30));
        assert_eq!((t.last_sum, t.last_min, t.last_max), (0, NO_MIN, 0));
        assert_eq!(t.add(5, 2), None);
        let line = t.add(6, 2).unwrap();
        assert!(
            line.ends_with("LR: 2/11/5/6/5.500000 | GB: 4/51/5/30/12.750000]"),
            "{line}"
        );
    }
}
