//! The ring of call numbers, without I/O: numbers `start..=end` handed
//! out in turn (the next free one after the last handed out, so that a
//! freed number comes back only after a turn of the ring), each holding
//! the Call-ID and the time it was taken, as Kamailio's `cobj.c`.

/// One number in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// When it was taken, milliseconds since the epoch.
    pub ms: u64,
    /// The call's Call-ID.
    pub callid: String,
}

/// The ring.
#[derive(Debug)]
pub struct Ring {
    start: i64,
    end: i64,
    /// The last number handed out; 0 before the first (and after
    /// `free_all`).
    cur: i64,
    slots: Vec<Option<Taken>>,
    assigned: usize,
}

/// A listed number: it, when it was taken, its Call-ID.
pub type Listed = (i64, u64, String);

impl Ring {
    /// A ring of `start..=end`: both above 0 and in order, else the reason.
    pub fn new(start: i64, end: i64) -> Result<Ring, String> {
        if start <= 0 {
            return Err("call_obj: the start parameter must be set above 0".into());
        }
        if end <= 0 {
            return Err("call_obj: the end parameter must be set above 0".into());
        }
        if start > end {
            return Err(format!(
                "call_obj: end should be greater than start [{start}, {end}]"
            ));
        }
        let n = usize::try_from(end - start + 1).map_err(|_| "call_obj: range too large")?;
        if n > 10_000_000 {
            return Err(format!("call_obj: range of {n} numbers too large"));
        }
        Ok(Ring {
            start,
            end,
            cur: 0,
            slots: vec![None; n],
            assigned: 0,
        })
    }

    /// The first number.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// The last number.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// How many are in use.
    pub fn assigned(&self) -> usize {
        self.assigned
    }

    /// Takes the next free number for `callid` at `ms`: the first number
    /// at the start, else the next free one after the last handed out,
    /// round the ring (the last handed out itself is not looked at, as
    /// Kamailio's walk stops there). `None` when none is free.
    pub fn get(&mut self, ms: u64, callid: &str) -> Option<i64> {
        let take = Taken {
            ms,
            callid: callid.to_string(),
        };
        let n = self.slots.len();
        let pos = if self.cur == 0 {
            0
        } else {
            let last = (self.cur - self.start) as usize;
            (1..n)
                .map(|k| (last + k) % n)
                .find(|&p| self.slots[p].is_none())?
        };
        self.slots[pos] = Some(take);
        self.cur = self.start + pos as i64;
        self.assigned += 1;
        Some(self.cur)
    }

    /// Frees `num`: false when it is out of the range (freeing a free one
    /// is no error).
    pub fn free(&mut self, num: i64) -> bool {
        if num < self.start || num > self.end {
            return false;
        }
        if self.slots[(num - self.start) as usize].take().is_some() {
            self.assigned -= 1;
        }
        true
    }

    /// Frees every number; the next one taken is the first again.
    pub fn free_all(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.cur = 0;
        self.assigned = 0;
    }

    /// The numbers taken at or before `ms`: how many, and the newest
    /// `limit` of them (0: all) oldest first (equal times in number
    /// order).
    pub fn taken_before(&self, ms: u64, limit: usize) -> (usize, Vec<Listed>) {
        let mut all: Vec<Listed> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let t = s.as_ref().filter(|t| t.ms <= ms)?;
                Some((self.start + i as i64, t.ms, t.callid.clone()))
            })
            .collect();
        // Kamailio inserts each before the first not older, so among equal
        // times the later number comes first.
        all.sort_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
        let n = all.len();
        if limit > 0 && n > limit {
            all.drain(..n - limit);
        }
        (n, all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_go_round_and_freed_ones_wait_a_turn() {
        let mut r = Ring::new(10, 13).unwrap();
        assert_eq!(r.get(1, "a"), Some(10));
        assert_eq!(r.get(2, "b"), Some(11));
        assert!(r.free(10));
        assert_eq!(r.get(3, "c"), Some(12), "10 waits for the turn");
        assert_eq!(r.get(4, "d"), Some(13));
        assert_eq!(r.get(5, "e"), Some(10));
        assert_eq!(r.get(6, "f"), None, "all taken");
        assert_eq!(r.assigned(), 4);
        assert!(!r.free(14) && !r.free(9));
        assert!(r.free(12) && r.free(12), "freeing twice is no error");
        assert_eq!(r.assigned(), 3);
        r.free_all();
        assert_eq!((r.assigned(), r.get(7, "g")), (0, Some(10)));
    }

    #[test]
    fn a_ring_of_one_gives_its_number_once_per_start() {
        let mut r = Ring::new(5, 5).unwrap();
        assert_eq!(r.get(1, "a"), Some(5));
        r.free(5);
        assert_eq!(
            r.get(2, "b"),
            None,
            "Kamailio's walk never looks at the last one"
        );
        r.free_all();
        assert_eq!(r.get(3, "c"), Some(5));
    }

    #[test]
    fn listing_keeps_the_newest() {
        let mut r = Ring::new(1, 5).unwrap();
        for (ms, c) in [(30, "a"), (10, "b"), (20, "c"), (40, "d")] {
            r.get(ms, c);
        }
        let (n, l) = r.taken_before(30, 0);
        assert_eq!(n, 3);
        assert_eq!(
            l.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![2, 3, 1],
            "oldest first"
        );
        let (n, l) = r.taken_before(100, 2);
        assert_eq!(
            (n, l.iter().map(|x| x.0).collect::<Vec<_>>()),
            (4, vec![1, 4])
        );
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(Ring::new(0, 5).is_err());
        assert!(Ring::new(5, 0).is_err());
        assert!(Ring::new(6, 5).is_err());
    }
}
