//! A sharded transaction table with an integrated deadline index.
//!
//! [`TxTable`] splits its entries over N shards (a power of two), each a
//! `std::sync::Mutex` around a hash map, a slab of entries and a timing
//! wheel of `(deadline, sequence, slot)` (8 ms buckets, see `wheel.rs`). Worker threads (handling incoming
//! messages) and a timer thread share one table; they only contend when
//! they touch the same shard.
//!
//! Values implement [`Timed`]. After every access through the table
//! ([`insert`](TxTable::insert), [`with`](TxTable::with),
//! [`with_or_insert`](TxTable::with_or_insert),
//! [`poll_expired`](TxTable::poll_expired)) the table re-reads the value's
//! deadline: an earlier deadline adds a new wheel entry (older entries for
//! that slot become stale and are dropped when read: lazy cancellation), a
//! later one keeps the entry it has and is scheduled again when that one
//! fires,
//! and a terminated value is removed on the spot. So a transaction leaves
//! the table the moment it reaches Terminated, and the wheel is compacted
//! when stale entries pile up.

use crate::wheel::{Entry, Wheel};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard};

/// The default hasher: foldhash, seeded at random per table. Keys come from
/// the network (branches, Call-IDs), so the seed matters; SipHash (std's
/// default) was 6 % of a stateful call's instructions.
pub type RandomState = foldhash::fast::RandomState;

use crate::time::Instant;

/// What the table needs from a stored value.
pub trait Timed {
    /// The next deadline at which the value wants a timeout, if any.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether the value is finished and should be dropped from the table.
    fn is_terminated(&self) -> bool;
}

/// A sharded map from transaction key to transaction with deadline
/// tracking.
///
/// Entries are split over N shards (a power of two), each a
/// `std::sync::Mutex` around a hash map, a slab of entries and a timing
/// wheel of `(deadline, sequence, slot)` in 8 ms buckets, so worker threads
/// and a timer thread only contend when they touch the same shard. After
/// every access through the table the value's [`Timed::poll_timeout`] is
/// re-read: a changed deadline adds a new wheel entry (the old one goes
/// stale and is dropped when read: lazy cancellation) and a
/// [`Timed::is_terminated`] value is removed on the spot. The wheel is
/// compacted when stale entries pile up, and a shard that becomes empty
/// empties its slab and wheel (keeping their room).
///
/// ```
/// use sip_txn::{Instant, NonInviteClient, TimerConfig, TxKey, TxTable, Method, Transaction};
/// let table: TxTable<TxKey, Transaction<&str>> = TxTable::new(16);
/// let cfg = TimerConfig::default();
/// let (tx, _send) = NonInviteClient::start("OPTIONS ...", false, &cfg, Instant::ZERO);
/// table.insert(TxKey::client("z9hG4bK1", Method::Options), tx.into());
/// // Timer thread: fire whatever is due.
/// let mut fired = 0;
/// table.poll_expired(Instant::from_millis(500), |_key, tx| {
///     fired += tx.handle_timeout(Instant::from_millis(500)).len();
/// });
/// assert_eq!(fired, 1); // Timer E retransmission
/// ```
#[derive(Debug)]
pub struct TxTable<K, V, S = RandomState> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    mask: usize,
    hasher: S,
}

#[derive(Debug)]
struct Slot<K, V> {
    key: K,
    value: V,
    /// Deadline currently represented in the wheel (if any).
    deadline: Option<Instant>,
    /// Sequence number of the wheel entry that represents `deadline`.
    seq: u64,
}

#[derive(Debug)]
struct Shard<K, V> {
    map: HashMap<K, usize, RandomState>,
    slots: Vec<Option<Slot<K, V>>>,
    free: Vec<usize>,
    wheel: Wheel,
    next_seq: u64,
}

impl<K: Hash + Eq + Clone, V: Timed> Shard<K, V> {
    fn new() -> Self {
        Shard {
            map: HashMap::with_hasher(RandomState::default()),
            slots: Vec::new(),
            free: Vec::new(),
            wheel: Wheel::default(),
            next_seq: 0,
        }
    }

    fn alloc(&mut self, key: K, value: V) -> usize {
        let slot = Slot {
            key,
            value,
            deadline: None,
            seq: 0,
        };
        match self.free.pop() {
            Some(i) if i < self.slots.len() => {
                self.slots[i] = Some(slot);
                i
            }
            _ => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        }
    }

    /// Re-reads the value's deadline and termination; removes it if
    /// terminated (returning the value).
    fn sync(&mut self, idx: usize) -> Option<V> {
        let slot = self.slots.get_mut(idx)?.as_mut()?;
        if slot.value.is_terminated() {
            return self.remove_slot(idx);
        }
        let d = slot.value.poll_timeout();
        // A deadline that moved later keeps its earlier wheel entry: when
        // that fires, the value is not due and is scheduled again then
        // (most changes move a deadline later, and each new entry costs a
        // push now and a stale read later).
        let later = matches!((slot.deadline, d), (Some(at), Some(new)) if new > at);
        if d != slot.deadline && !later {
            slot.deadline = d;
            if let Some(d) = d {
                self.next_seq += 1;
                slot.seq = self.next_seq;
                self.wheel.push(Entry {
                    at: d,
                    seq: self.next_seq,
                    idx,
                });
            }
        }
        None
    }

    fn remove_slot(&mut self, idx: usize) -> Option<V> {
        let slot = self.slots.get_mut(idx)?.take()?;
        self.map.remove(&slot.key);
        if self.map.is_empty() {
            // Everything is gone: release the slab and any stale timers.
            self.slots.clear();
            self.free.clear();
            self.wheel.clear();
        } else {
            self.free.push(idx);
            self.maybe_compact();
        }
        Some(slot.value)
    }

    fn is_live(slots: &[Option<Slot<K, V>>], d: Instant, seq: u64, idx: usize) -> bool {
        matches!(slots.get(idx), Some(Some(s)) if s.seq == seq && s.deadline == Some(d))
    }

    fn maybe_compact(&mut self) {
        if self.wheel.len() > 64 && self.wheel.len() > 4 * self.map.len() {
            let slots = &self.slots;
            self.wheel
                .retain(|e| Self::is_live(slots, e.at, e.seq, e.idx));
        }
    }
}

impl<K: Hash + Eq + Clone, V: Timed> TxTable<K, V, RandomState> {
    /// A table with `shards` shards, rounded up to a power of two (at
    /// least 1). A few times the number of threads touching it is plenty.
    pub fn new(shards: usize) -> Self {
        Self::with_hasher(shards, RandomState::default())
    }
}

impl<K: Hash + Eq + Clone, V: Timed, S: BuildHasher> TxTable<K, V, S> {
    /// Like [`new`](TxTable::new) with a caller-chosen hasher for shard
    /// selection.
    pub fn with_hasher(shards: usize, hasher: S) -> Self {
        let n = shards.max(1).checked_next_power_of_two().unwrap_or(1 << 16);
        TxTable {
            shards: (0..n).map(|_| Mutex::new(Shard::new())).collect(),
            mask: n - 1,
            hasher,
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, Shard<K, V>> {
        // Truncating the 64-bit hash is fine: only the low bits are used.
        let i = (self.hasher.hash_one(key) as usize) & self.mask;
        lock(&self.shards[i])
    }

    /// Inserts (or replaces) `key → value` and schedules its deadline.
    /// Returns the replaced value. A value that is already terminated is
    /// dropped instead of stored.
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        let mut sh = self.shard(&key);
        let old = match sh.map.get(&key).copied() {
            Some(idx) => sh.remove_slot(idx),
            None => None,
        };
        let idx = sh.alloc(key.clone(), value);
        sh.map.insert(key, idx);
        sh.sync(idx);
        old
    }

    /// Runs `f` on the value for `key` (under the shard lock), then
    /// reschedules it or removes it if it terminated. `None` if absent.
    pub fn with<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let mut sh = self.shard(key);
        let idx = *sh.map.get(key)?;
        let r = f(&mut sh.slots.get_mut(idx)?.as_mut()?.value);
        sh.sync(idx);
        Some(r)
    }

    /// Atomically finds or creates the value for `key`, then runs `f` on it
    /// with `true` if it was just created. This is how a worker creates a
    /// server transaction without racing a retransmission on another
    /// thread.
    pub fn with_or_insert<R>(
        &self,
        key: &K,
        make: impl FnOnce() -> V,
        f: impl FnOnce(&mut V, bool) -> R,
    ) -> R {
        let mut sh = self.shard(key);
        if let Some(idx) = sh.map.get(key).copied() {
            if let Some(Some(slot)) = sh.slots.get_mut(idx) {
                let r = f(&mut slot.value, false);
                sh.sync(idx);
                return r;
            }
        }
        let mut value = make();
        let r = f(&mut value, true);
        let idx = sh.alloc(key.clone(), value);
        sh.map.insert(key.clone(), idx);
        sh.sync(idx);
        r
    }

    /// A clone of the value for `key`.
    pub fn get(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        self.with(key, |v| v.clone())
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.shard(key).map.contains_key(key)
    }

    /// Re-reads the deadline of the value for `key` (what [`TxTable::with`]
    /// does after running its closure) and says whether the key is gone:
    /// absent, or removed now because its value terminated. One lookup
    /// where `with` then `remove` made two.
    pub fn sync(&self, key: &K) -> bool {
        let mut sh = self.shard(key);
        let Some(idx) = sh.map.get(key).copied() else {
            return true;
        };
        sh.sync(idx).is_some()
    }

    /// Removes and returns the value for `key` if `pred` says yes to it
    /// (under the shard lock: nobody replaces it in between).
    pub fn remove_if(&self, key: &K, pred: impl FnOnce(&V) -> bool) -> Option<V> {
        let mut sh = self.shard(key);
        let idx = *sh.map.get(key)?;
        if !pred(&sh.slots.get(idx)?.as_ref()?.value) {
            return None;
        }
        sh.remove_slot(idx)
    }

    /// Removes and returns the value for `key`.
    pub fn remove(&self, key: &K) -> Option<V> {
        self.remove_if(key, |_| true)
    }

    /// Number of stored transactions (locks each shard in turn).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// Whether no transaction is stored.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| lock(s).map.is_empty())
    }

    /// Number of timer entries, stale ones included (for leak checks and
    /// metrics). Zero once the table is empty.
    pub fn timer_len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).wheel.len()).sum()
    }

    /// The earliest deadline in any shard (possibly of a stale entry, so
    /// waking up then may find nothing to do). It reads every timer entry:
    /// for tests and occasional use, not for every tick.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.shards
            .iter()
            .filter_map(|s| lock(s).wheel.earliest())
            .min()
    }

    /// Calls `f` for every transaction whose deadline is `<= now`, shard by
    /// shard under that shard's lock, then reschedules or removes it. `f`
    /// typically calls `handle_timeout(now)` and queues the actions for
    /// sending after the call. Returns how many values were visited.
    ///
    /// The order is only roughly that of the deadlines: 8 ms buckets from
    /// the oldest unread one to `now`'s, each in the order its deadlines
    /// were set (a deadline already past when set, or a gap of more than
    /// one 4 s turn between polls, mixes them). Each value is visited at
    /// most once per call even if `f` leaves it with a deadline still
    /// `<= now`. `now` must come from a monotonic clock: a poll far in the
    /// future makes the shard read all its entries at every poll until it
    /// is empty again (use [`TxTable::for_each`] to list them).
    pub fn poll_expired(&self, now: Instant, mut f: impl FnMut(&K, &mut V)) -> usize {
        let mut fired = 0;
        for shard in self.shards.iter() {
            let mut sh = lock(shard);
            if sh.wheel.len() == 0 {
                continue;
            }
            // Entries added during this call (seq > start) wait for the
            // next one, so that each value is visited at most once per call.
            let start_seq = sh.next_seq;
            let (first, count) = sh.wheel.begin_poll(now);
            for tick in first..first + count {
                let b = Wheel::bucket_at(tick);
                let mark = sh.wheel.clears();
                let Some(mut entries) = sh.wheel.take(b) else {
                    continue;
                };
                let mut kept = 0;
                for k in 0..entries.len() {
                    let e = entries[k];
                    let live = Shard::is_live(&sh.slots, e.at, e.seq, e.idx);
                    if e.seq > start_seq || (live && e.at > now) {
                        entries[kept] = e;
                        kept += 1;
                        continue;
                    }
                    if !live {
                        continue; // lazily cancelled
                    }
                    if let Some(Some(slot)) = sh.slots.get_mut(e.idx) {
                        // This entry is consumed. A deadline that moved
                        // later since it was made is scheduled again below
                        // instead of visited.
                        slot.deadline = None;
                        if slot.value.poll_timeout().is_none_or(|d| d <= now) {
                            f(&slot.key, &mut slot.value);
                            fired += 1;
                        }
                    }
                    sh.sync(e.idx);
                }
                entries.truncate(kept);
                sh.wheel.put_back(b, entries, mark);
            }
        }
        fired
    }

    /// Calls `f` on every stored transaction (shard by shard, under lock).
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for shard in self.shards.iter() {
            let sh = lock(shard);
            for slot in sh.slots.iter().flatten() {
                f(&slot.key, &slot.value);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a caller's closure must not wedge the table forever.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
