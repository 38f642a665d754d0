//! A hashed timing wheel: the deadline index of one table shard.
//!
//! An entry `(deadline, sequence, slot)` goes into one of [`BUCKETS`]
//! buckets by `deadline / BUCKET_MS`, so adding one is a push onto a
//! vector and a poll reads the buckets whose time has come front to back,
//! instead of sifting a binary heap whose lower levels are cold in the
//! cache. A deadline more than one turn ([`BUCKET_MS`] × [`BUCKETS`]) away
//! shares a bucket with nearer ones and is simply kept when its bucket is
//! read early. A deadline that is already past when it is added goes into
//! the bucket the next poll reads first. The wheel does not know which
//! entries are stale: its owner checks each one it is handed.

use crate::time::Instant;

/// Width of a bucket in milliseconds.
pub(crate) const BUCKET_MS: u64 = 8;
/// Number of buckets: one turn is 4.096 s.
pub(crate) const BUCKETS: usize = 512;

/// One scheduled deadline of a table slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The deadline.
    pub at: Instant,
    /// The sequence number given when it was added (newer: larger).
    pub seq: u64,
    /// The table slot it belongs to.
    pub idx: usize,
}

/// The wheel. Buckets are allocated on the first [`Wheel::push`].
#[derive(Debug, Default)]
pub(crate) struct Wheel {
    buckets: Vec<Vec<Entry>>,
    /// The first tick the next poll reads; earlier deadlines go there.
    next_tick: u64,
    len: usize,
    /// How many times [`Wheel::clear`] ran (see [`Wheel::put_back`]).
    clears: u64,
}

impl Wheel {
    /// Number of entries, stale ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds an entry.
    pub fn push(&mut self, e: Entry) {
        if self.buckets.is_empty() {
            self.buckets = (0..BUCKETS).map(|_| Vec::new()).collect();
        }
        let tick = (e.at.as_millis() / BUCKET_MS).max(self.next_tick);
        self.buckets[Self::bucket_at(tick)].push(e);
        self.len += 1;
    }

    /// Drops every entry (the buckets keep their room: a shard empties
    /// often at low load) and starts over from tick 0, so that a poll with
    /// a `now` far ahead (a misuse) cannot leave the wheel reading one
    /// bucket for ever once the shard is empty again.
    pub fn clear(&mut self) {
        for b in &mut self.buckets {
            b.clear();
        }
        self.len = 0;
        self.next_tick = 0;
        self.clears += 1;
    }

    /// A mark to give [`Wheel::put_back`]: taken before reading a bucket.
    pub fn clears(&self) -> u64 {
        self.clears
    }

    /// Keeps the entries for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        let mut len = 0;
        for b in &mut self.buckets {
            b.retain(&mut keep);
            len += b.len();
        }
        self.len = len;
    }

    /// The earliest deadline of any entry (a scan of the whole wheel).
    pub fn earliest(&self) -> Option<Instant> {
        self.buckets.iter().flatten().map(|e| e.at).min()
    }

    /// Starts a poll at `now`: the buckets to read, oldest first (each
    /// at most once), as `(first tick, count)` for [`Wheel::bucket_at`].
    /// Deadlines added from now on that are already past go into the
    /// bucket of `now`'s tick, which the next poll reads first.
    pub fn begin_poll(&mut self, now: Instant) -> (u64, u64) {
        let first = self.next_tick;
        let last = (now.as_millis() / BUCKET_MS).max(first);
        self.next_tick = last;
        let count = (last - first + 1).min(BUCKETS as u64);
        (last + 1 - count, count)
    }

    /// The bucket of `tick`.
    pub fn bucket_at(tick: u64) -> usize {
        // The remainder is below BUCKETS, so it fits.
        (tick % BUCKETS as u64) as usize
    }

    /// Takes bucket `b`'s entries out for reading (`None`: it has none).
    pub fn take(&mut self, b: usize) -> Option<Vec<Entry>> {
        let bucket = self.buckets.get_mut(b).filter(|b| !b.is_empty())?;
        let taken = std::mem::take(bucket);
        self.len -= taken.len();
        Some(taken)
    }

    /// Puts back what a reader of bucket `b` keeps, in front of anything
    /// added to the bucket meanwhile. `mark` is [`Wheel::clears`] from
    /// before the read: after a [`Wheel::clear`] meanwhile (the table
    /// emptied, so every kept entry is stale) they are dropped.
    pub fn put_back(&mut self, b: usize, mut kept: Vec<Entry>, mark: u64) {
        let Some(bucket) = self.buckets.get_mut(b) else {
            return;
        };
        if mark != self.clears {
            kept.clear();
        }
        self.len += kept.len();
        kept.append(bucket);
        *bucket = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(ms: u64, seq: u64) -> Entry {
        Entry {
            at: Instant::from_millis(ms),
            seq,
            idx: seq as usize,
        }
    }

    /// Everything a poll at `now` reads, bucket by bucket, kept in place.
    fn read(w: &mut Wheel, now: u64) -> Vec<u64> {
        let (first, count) = w.begin_poll(Instant::from_millis(now));
        let mut seen = Vec::new();
        for t in first..first + count {
            let b = Wheel::bucket_at(t);
            let mark = w.clears();
            if let Some(got) = w.take(b) {
                seen.extend(got.iter().map(|x| x.seq));
                w.put_back(b, got, mark);
            }
        }
        seen
    }

    #[test]
    fn a_poll_reads_the_buckets_up_to_now_in_order() {
        let mut w = Wheel::default();
        w.push(e(30, 1));
        w.push(e(5, 2));
        w.push(e(100, 3));
        w.push(e(7, 4));
        assert_eq!(w.len(), 4);
        assert_eq!(w.earliest(), Some(Instant::from_millis(5)));
        // Ticks 0..=3: bucket 0 (5 and 7 ms, as added), bucket 3 (30 ms).
        assert_eq!(read(&mut w, 31), [2, 4, 1]);
        // The next poll starts at tick 3 again (31 ms is in it).
        assert_eq!(read(&mut w, 40), [1]);
        assert_eq!(read(&mut w, 104), [3]);
        assert_eq!(w.len(), 4, "reading keeps what is put back");
    }

    #[test]
    fn a_past_deadline_goes_to_the_bucket_read_next() {
        let mut w = Wheel::default();
        read(&mut w, 1_000); // cursor at tick 125
        w.push(e(10, 1));
        assert_eq!(read(&mut w, 1_000), [1]);
    }

    #[test]
    fn a_far_deadline_is_read_once_per_turn_and_kept() {
        let mut w = Wheel::default();
        let turn = BUCKET_MS * BUCKETS as u64;
        w.push(e(turn + 16, 1)); // same bucket as 16 ms
        assert_eq!(read(&mut w, 30), [1], "read a turn early, kept");
        assert!(read(&mut w, 60).is_empty(), "its bucket is behind");
        assert_eq!(read(&mut w, turn + 16), [1]);
    }

    #[test]
    fn a_poll_far_ahead_is_forgotten_at_the_next_clear() {
        let mut w = Wheel::default();
        w.push(e(10, 1));
        assert_eq!(read(&mut w, u64::MAX), [1]);
        w.clear();
        w.push(e(100, 2));
        assert!(read(&mut w, 50).is_empty());
        assert_eq!(read(&mut w, 100), [2]);
    }

    #[test]
    fn a_poll_with_an_earlier_now_rereads_only_the_current_bucket() {
        let mut w = Wheel::default();
        w.push(e(100, 1));
        w.push(e(20, 2));
        assert_eq!(read(&mut w, 100), [2, 1]);
        assert_eq!(read(&mut w, 30), [1], "tick 12 again, nothing older");
    }

    #[test]
    fn a_long_gap_reads_each_bucket_once() {
        let mut w = Wheel::default();
        for i in 0..BUCKETS as u64 {
            w.push(e(i * BUCKET_MS, i));
        }
        let seen = read(&mut w, 10 * BUCKET_MS * BUCKETS as u64);
        assert_eq!(seen.len(), BUCKETS);
    }

    #[test]
    fn taking_and_putting_back_counts_and_keeps_new_entries() {
        let mut w = Wheel::default();
        w.push(e(0, 1));
        w.push(e(0, 2));
        let (first, _) = w.begin_poll(Instant::from_millis(0));
        let b = Wheel::bucket_at(first);
        let mark = w.clears();
        let got = w.take(b).expect("two entries");
        assert_eq!(w.len(), 0);
        assert!(w.take(b).is_none(), "taken");
        w.push(e(0, 3)); // added while the bucket is out
        w.put_back(b, vec![got[1]], mark);
        assert_eq!(w.len(), 2);
        assert_eq!(read(&mut w, 0), [2, 3]);
        w.retain(|x| x.seq != 2);
        assert_eq!(w.len(), 1);
        w.clear();
        assert_eq!((w.len(), w.earliest()), (0, None));
        w.put_back(b, vec![got[0]], mark);
        assert_eq!(w.len(), 0, "dropped after a clear");
        w.push(e(0, 4));
        assert_eq!(read(&mut w, 0), [4], "the buckets still work after a clear");
    }
}
