//! The samples, without I/O: every `interval` the time and each tracked
//! statistic go into slot `steps % items`; a report walks the slots from
//! the newest back to the first, then from the last down to the one after
//! the newest — all `items` of them, the empty ones as zeros — as
//! Kamailio's statsc does.

/// One tracked statistic.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// The name in reports (`shm.free`).
    pub report: String,
    /// The statistic read (`free_size`).
    pub stat: String,
    /// Its samples, by slot.
    pub vals: Vec<i64>,
}

/// The ring.
#[derive(Debug)]
pub struct Ring {
    /// Samples taken so far.
    pub steps: u64,
    /// When each slot was taken (seconds since the epoch).
    pub times: Vec<i64>,
    /// The statistics, in the order they were added.
    pub tracked: Vec<Tracked>,
}

/// One item of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// When the sample was taken (0 for an empty slot).
    pub timestamp: u32,
    /// The value, or its difference with the sample before.
    pub value: i32,
    /// Its place in the report.
    pub index: i32,
}

impl Ring {
    /// `items` slots, the default statistics tracked.
    pub fn new(items: usize) -> Ring {
        let mut r = Ring {
            steps: 0,
            times: vec![0; items.max(1)],
            tracked: Vec::new(),
        };
        for (report, stat) in [
            ("shm.free", "free_size"),
            ("shm.used", "used_size"),
            ("shm.real_used", "real_used_size"),
        ] {
            r.track(report, stat);
        }
        r
    }

    /// Tracks `stat` under the name `report`.
    pub fn track(&mut self, report: &str, stat: &str) {
        self.tracked.push(Tracked {
            report: report.to_string(),
            stat: stat.to_string(),
            vals: vec![0; self.times.len()],
        });
    }

    /// Takes a sample at `now`; `value` reads a statistic (`None`: the
    /// slot keeps what it held).
    pub fn sample(&mut self, now: i64, value: &dyn Fn(&str) -> Option<i64>) {
        let n = (self.steps % self.times.len() as u64) as usize;
        self.times[n] = now;
        for t in &mut self.tracked {
            if let Some(v) = value(&t.stat) {
                t.vals[n] = v;
            }
        }
        self.steps += 1;
    }

    /// The report of one statistic: its values (`diff`: differences with
    /// the sample before). As Kamailio's walk: each loop (newest back to
    /// the first slot, then the last slot down to the one after the
    /// newest) stops once `limit` items (0: no limit) are out — the
    /// second loop still gives one — and a skipped difference leaves an
    /// empty entry (`None`).
    pub fn report(&self, t: &Tracked, diff: bool, limit: usize) -> Vec<Option<Item>> {
        let items = self.times.len();
        let n = ((self.steps.max(1) - 1) % items as u64) as usize;
        let mut out = Vec::new();
        let mut m = 0;
        let item = |k: usize, v: i64, m: &mut i32| {
            let it = Item {
                timestamp: self.times[k] as u32,
                value: v as i32,
                index: *m,
            };
            *m += 1;
            Some(it)
        };
        for k in (0..=n).rev() {
            let mut v = i64::from(t.vals[k] as i32);
            if diff {
                if n == items - 1 && k == 0 {
                    out.push(None);
                    continue;
                }
                let before = if k == 0 {
                    t.vals[items - 1]
                } else {
                    t.vals[k - 1]
                };
                v = i64::from((v as i32).wrapping_sub(before as i32));
            }
            out.push(item(k, v, &mut m));
            if limit > 0 && m as usize >= limit {
                break;
            }
        }
        for k in (n + 1..items).rev() {
            let mut v = i64::from(t.vals[k] as i32);
            if diff {
                if n == k - 1 {
                    out.push(None);
                    continue;
                }
                v = i64::from((v as i32).wrapping_sub(t.vals[k - 1] as i32));
            }
            out.push(item(k, v, &mut m));
            if limit > 0 && m as usize >= limit {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_walk_the_ring_as_kamailio() {
        let mut r = Ring::new(3);
        r.tracked.clear();
        r.track("x", "x");
        let t = std::cell::Cell::new(10);
        let read = |_: &str| Some(t.get());
        r.sample(100, &read);
        t.set(15);
        r.sample(101, &read);
        let x = r.tracked[0].clone();
        let vals: Vec<(u32, i32)> = r
            .report(&x, false, 0)
            .iter()
            .flatten()
            .map(|i| (i.timestamp, i.value))
            .collect();
        assert_eq!(
            vals,
            vec![(101, 15), (100, 10), (0, 0)],
            "newest first, the empty slot too"
        );
        let d: Vec<Option<i32>> = r
            .report(&x, true, 0)
            .iter()
            .map(|i| i.as_ref().map(|i| i.value))
            .collect();
        // 15-10, 10-0 (the last slot), and the slot after the newest skipped.
        assert_eq!(d, vec![Some(5), Some(10), None]);
        assert_eq!(
            r.report(&x, false, 1).len(),
            2,
            "the second loop gives one more"
        );
        t.set(30);
        r.sample(102, &read);
        let x = r.tracked[0].clone();
        let d: Vec<Option<i32>> = r
            .report(&x, true, 0)
            .iter()
            .map(|i| i.as_ref().map(|i| i.value))
            .collect();
        assert_eq!(
            d,
            vec![Some(15), Some(5), None],
            "a full ring: the first slot's difference skipped"
        );
    }
}
