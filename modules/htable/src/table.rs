//! One hash table: items with an optional expiry, in shards that each
//! have a lock, so workers touching different keys rarely wait. Time is
//! given by the caller (tested with virtual time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// An item's value: Kamailio's htable keeps integers and strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}

impl Val {
    /// The value as text (integers in decimal).
    pub fn text(&self) -> String {
        match self {
            Val::Int(i) => i.to_string(),
            Val::Str(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Item {
    val: Val,
    /// When it goes; `None`: never.
    expires: Option<Instant>,
    /// When it was made (Kamailio keeps items of equal hash in the order
    /// they came; an update keeps the place).
    seq: u64,
}

impl Item {
    fn alive(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

const SHARDS: usize = 16;

/// Kamailio's `core_case_hash` of a key (case-insensitive): its slot is
/// the hash modulo the slot count, and within a slot items are kept by
/// increasing hash.
pub fn kamailio_hash(key: &str) -> u32 {
    sr_sdk::hash::core_hash(key.as_bytes(), None, true)
}

/// How many slots Kamailio gives a table of `size` (2^size; 8 below 2,
/// 16384 above 31).
pub fn slot_count(size: u32) -> usize {
    match size {
        0 | 1 => 8,
        s if s > 31 => 16384,
        s => 1usize << s,
    }
}

/// The slots `sht_lock` holds: Kamailio slot → (holder, times taken).
/// Re-entrant per thread, as Kamailio's per process.
#[derive(Debug, Default)]
struct SlotLocks {
    held: Mutex<HashMap<usize, (std::thread::ThreadId, u32)>>,
    freed: std::sync::Condvar,
}

/// Tells a waiting worker to give up (the server is stopping).
#[derive(Clone)]
pub struct Stopping(pub Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for Stopping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stopping")
    }
}

/// A table: `autoexpire` is the lifetime of an item after it was last set
/// (`None`: items stay until removed); `initval` what a missing item
/// reads as.
#[derive(Debug)]
pub struct Table {
    /// Name.
    pub name: String,
    /// `autoexpire`.
    pub autoexpire: Option<Duration>,
    /// `initval`.
    pub initval: Option<Val>,
    /// `updateexpire` (default yes): setting an item restarts its expiry.
    pub updateexpire: bool,
    /// `size` as defined (reported by `htable.listTables`).
    pub size: u32,
    /// `dmqreplicate`: changes go to the other DMQ nodes.
    pub dmqreplicate: bool,
    shards: Vec<Mutex<HashMap<String, Item>>>,
    /// `sht_lock`'s locks, by Kamailio slot.
    locks: SlotLocks,
    /// How many slots are held (0: no access waits).
    held: std::sync::atomic::AtomicUsize,
    /// Whether the server is stopping (a waiting worker gives up).
    pub stopping: OnceLock<Stopping>,
    /// The next item's `seq`.
    next_seq: std::sync::atomic::AtomicU64,
}

fn shard_of(key: &str) -> usize {
    // FNV-1a: cheap and spreads short keys (addresses) well.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h as usize) % SHARDS
}

impl Table {
    /// An empty table.
    pub fn new(name: &str, autoexpire: Option<Duration>, initval: Option<Val>) -> Table {
        Table {
            name: name.to_string(),
            autoexpire,
            initval,
            updateexpire: true,
            size: 4,
            dmqreplicate: false,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            locks: SlotLocks::default(),
            held: std::sync::atomic::AtomicUsize::new(0),
            stopping: OnceLock::new(),
            next_seq: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The place of `key`: its own when it is there, else a new one.
    fn seq_of(&self, m: &HashMap<String, Item>, key: &str, now: Instant) -> u64 {
        match m.get(key) {
            Some(it) if it.alive(now) => it.seq,
            _ => self
                .next_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn with<R>(&self, key: &str, f: impl FnOnce(&mut HashMap<String, Item>) -> R) -> R {
        let shard = shard_of(key);
        if self.held.load(std::sync::atomic::Ordering::Acquire) == 0 {
            let mut g = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
            return f(&mut g);
        }
        // Some slot is locked: wait while another worker holds this key's,
        // and take the item's shard before letting go of the lock state,
        // so no lock can be taken between the check and the access.
        let slot = kamailio_hash(key) as usize % slot_count(self.size);
        let me = std::thread::current().id();
        let mut held = self.locks.held.lock().unwrap_or_else(|e| e.into_inner());
        while held.get(&slot).is_some_and(|(t, _)| *t != me) && !self.is_stopping() {
            held = self
                .locks
                .freed
                .wait_timeout(held, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let mut g = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        drop(held);
        f(&mut g)
    }

    fn is_stopping(&self) -> bool {
        self.stopping.get().is_some_and(|f| (f.0)())
    }

    /// `sht_lock`: takes the lock of `key`'s Kamailio slot (again, when
    /// this thread holds it already); false when the server stopped while
    /// it waited.
    pub fn lock(&self, key: &str) -> bool {
        let slot = kamailio_hash(key) as usize % slot_count(self.size);
        let me = std::thread::current().id();
        let mut held = self.locks.held.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match held.get_mut(&slot) {
                None => {
                    held.insert(slot, (me, 1));
                    self.held.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    return true;
                }
                Some((t, n)) if *t == me => {
                    *n += 1;
                    return true;
                }
                Some(_) if self.is_stopping() => return false,
                Some(_) => {
                    held = self
                        .locks
                        .freed
                        .wait_timeout(held, Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            }
        }
    }

    /// `sht_unlock`: gives back one hold of `key`'s slot (as Kamailio,
    /// whoever holds it).
    pub fn unlock(&self, key: &str) {
        let slot = kamailio_hash(key) as usize % slot_count(self.size);
        let mut held = self.locks.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.get_mut(&slot) {
            Some((_, n)) if *n > 1 => *n -= 1,
            Some(_) => {
                held.remove(&slot);
                self.held.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                self.locks.freed.notify_all();
            }
            None => {}
        }
    }

    /// Every live item with its expiry, in Kamailio's order (by slot of
    /// `slot_count(size)`, then by hash), with its slot.
    pub fn entries(&self, now: Instant) -> Vec<(usize, String, Val, Option<Instant>)> {
        let slots = slot_count(self.size);
        let mut all: Vec<(usize, u32, u64, String, Val, Option<Instant>)> = Vec::new();
        for s in &self.shards {
            let g = s.lock().unwrap_or_else(|e| e.into_inner());
            for (k, it) in g.iter().filter(|(_, it)| it.alive(now)) {
                let h = kamailio_hash(k);
                all.push((
                    h as usize % slots,
                    h,
                    it.seq,
                    k.clone(),
                    it.val.clone(),
                    it.expires,
                ));
            }
        }
        all.sort_by_key(|a| (a.0, a.1, a.2));
        all.into_iter()
            .map(|(s, _, _, k, v, e)| (s, k, v, e))
            .collect()
    }

    /// Replaces every item with `items` (key, value, expiry), shard by
    /// shard: a key reads as old or new, never as missing meanwhile.
    pub fn replace_all(&self, items: Vec<(String, Val, Option<Instant>)>) {
        let mut fresh: Vec<HashMap<String, Item>> = (0..SHARDS).map(|_| HashMap::new()).collect();
        for (k, val, expires) in items {
            let seq = self
                .next_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            fresh[shard_of(&k)].insert(k, Item { val, expires, seq });
        }
        for (shard, m) in self.shards.iter().zip(fresh) {
            *shard.lock().unwrap_or_else(|e| e.into_inner()) = m;
        }
    }

    /// The value of `key`, if it is there and not expired.
    pub fn get(&self, key: &str, now: Instant) -> Option<Val> {
        self.with(key, |m| match m.get(key) {
            Some(it) if it.alive(now) => Some(it.val.clone()),
            Some(_) => {
                m.remove(key);
                None
            }
            None => None,
        })
    }

    /// Sets `key`; its expiry is `autoexpire` from now (or `expire`, when
    /// given: zero for never). An existing item keeps its expiry unless
    /// `updateexpire` or `expire` says otherwise.
    pub fn set(&self, key: &str, val: Val, expire: Option<Duration>, now: Instant) {
        // (A lifetime too long for the clock is "never".)
        let fresh =
            |e: Option<Duration>| e.filter(|d| !d.is_zero()).and_then(|d| now.checked_add(d));
        let (auto, update) = (self.autoexpire, self.updateexpire);
        self.with(key, |m| {
            let expires = match (expire, m.get(key)) {
                // As Kamailio: items of a table without autoexpire never
                // expire, whatever lifetime a function gives them.
                _ if auto.is_none() => None,
                (Some(e), _) => fresh(Some(e)),
                (None, Some(old)) if old.alive(now) && !update => old.expires,
                _ => fresh(auto),
            };
            let seq = self.seq_of(m, key, now);
            m.insert(key.to_string(), Item { val, expires, seq });
        });
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&self, key: &str, now: Instant) -> bool {
        self.with(key, |m| m.remove(key).is_some_and(|it| it.alive(now)))
    }

    /// Adds `delta` to an integer item and returns the new value; a
    /// missing one starts at `initval`, and without one (as in Kamailio)
    /// nothing is made and the result is `None`, as for a string item.
    pub fn add(&self, key: &str, delta: i64, now: Instant) -> Option<i64> {
        let auto = self.autoexpire;
        let init = match &self.initval {
            Some(Val::Int(i)) => Some(*i),
            _ => None,
        };
        let update = self.updateexpire;
        self.with(key, |m| {
            let (cur, expires) = match m.get(key) {
                Some(it) if it.alive(now) => match it.val {
                    Val::Int(i) => (i, if update { None } else { it.expires }),
                    Val::Str(_) => return None,
                },
                _ => (init?, None),
            };
            let n = cur.wrapping_add(delta);
            let expires = expires.or_else(|| auto.and_then(|d| now.checked_add(d)));
            let seq = self.seq_of(m, key, now);
            m.insert(
                key.to_string(),
                Item {
                    val: Val::Int(n),
                    expires,
                    seq,
                },
            );
            Some(n)
        })
    }

    /// Seconds until `key` expires (0: never), if it is there.
    pub fn expires_in(&self, key: &str, now: Instant) -> Option<u64> {
        self.with(key, |m| {
            m.get(key).filter(|it| it.alive(now)).map(|it| {
                it.expires
                    .map_or(0, |e| e.saturating_duration_since(now).as_secs().max(1))
            })
        })
    }

    /// Sets when `key` expires (0: never; no effect in a table without
    /// autoexpire, as in Kamailio); whether it was there.
    pub fn set_expire(&self, key: &str, secs: u64, now: Instant) -> bool {
        let auto = self.autoexpire.is_some();
        self.with(key, |m| match m.get_mut(key) {
            Some(it) if it.alive(now) => {
                if auto {
                    it.expires = (secs > 0)
                        .then(|| now.checked_add(Duration::from_secs(secs)))
                        .flatten();
                }
                true
            }
            _ => false,
        })
    }

    /// Removes the items `drop` picks by name and value; how many.
    pub fn remove_where(&self, now: Instant, drop: impl Fn(&str, &Val) -> bool) -> usize {
        let mut n = 0;
        for s in &self.shards {
            let mut g = s.lock().unwrap_or_else(|e| e.into_inner());
            let before = g.len();
            g.retain(|k, it| it.alive(now) && !drop(k, &it.val));
            n += before - g.len();
        }
        n
    }

    /// Whether a live item satisfies `f`.
    pub fn any(&self, now: Instant, f: impl Fn(&str, &Val) -> bool) -> bool {
        self.shards.iter().any(|s| {
            let g = s.lock().unwrap_or_else(|e| e.into_inner());
            g.iter().any(|(k, it)| it.alive(now) && f(k, &it.val))
        })
    }

    /// How many live items satisfy `f`.
    pub fn count(&self, now: Instant, f: impl Fn(&str, &Val) -> bool) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let g = s.lock().unwrap_or_else(|e| e.into_inner());
                g.iter()
                    .filter(|(k, it)| it.alive(now) && f(k, &it.val))
                    .count()
            })
            .sum()
    }

    /// The live items of each shard, by name (Kamailio dumps by slot).
    pub fn shards(&self, now: Instant) -> Vec<Vec<(String, Val)>> {
        self.shards
            .iter()
            .map(|s| {
                let g = s.lock().unwrap_or_else(|e| e.into_inner());
                let mut v: Vec<_> = g
                    .iter()
                    .filter(|(_, it)| it.alive(now))
                    .map(|(k, it)| (k.clone(), it.val.clone()))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            })
            .collect()
    }

    /// Removes expired items (the timer); how many.
    pub fn expire(&self, now: Instant) -> usize {
        self.remove_where(now, |_, _| false)
    }

    /// Removes everything.
    pub fn clear(&self) {
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn items_expire_after_autoexpire_and_setting_restarts_it() {
        let t0 = Instant::now();
        let t = Table::new("ipban", Some(S * 300), None);
        t.set("10.0.0.1", Val::Int(1), None, t0);
        assert_eq!(t.get("10.0.0.1", t0 + S * 299), Some(Val::Int(1)));
        assert_eq!(t.expires_in("10.0.0.1", t0 + S * 100), Some(200));
        t.set("10.0.0.1", Val::Int(2), None, t0 + S * 200);
        assert_eq!(t.get("10.0.0.1", t0 + S * 450), Some(Val::Int(2)));
        assert_eq!(t.get("10.0.0.1", t0 + S * 500), None);
        // Without updateexpire, the first expiry stays.
        let mut t = Table::new("x", Some(S * 10), None);
        t.updateexpire = false;
        t.set("k", Val::Int(1), None, t0);
        t.set("k", Val::Int(2), None, t0 + S * 5);
        assert_eq!(t.get("k", t0 + S * 11), None);
    }

    #[test]
    fn counters_start_at_initval_and_strings_are_not_counters() {
        let t0 = Instant::now();
        let t = Table::new("c", None, Some(Val::Int(10)));
        assert_eq!(t.add("a", 1, t0), Some(11));
        let bare = Table::new("b", None, None);
        assert_eq!(bare.add("a", 1, t0), None, "no initval: nothing made");
        assert_eq!(bare.get("a", t0), None);
        bare.set("n", Val::Int(4), None, t0);
        assert_eq!(bare.add("n", 1, t0), Some(5));
        assert_eq!(t.add("a", -3, t0), Some(8));
        t.set("s", Val::Str("x".into()), None, t0);
        assert_eq!(t.add("s", 1, t0), None);
        assert_eq!(t.expires_in("a", t0), Some(0), "no autoexpire: never");
    }

    #[test]
    fn removal_by_predicate_and_the_expiry_sweep() {
        let t0 = Instant::now();
        // As Kamailio: without autoexpire nothing expires, whatever the
        // lifetime given.
        let never = Table::new("n", None, None);
        never.set("k", Val::Int(1), Some(S * 5), t0);
        assert!(!never.set_expire("missing", 1, t0));
        assert!(never.set_expire("k", 1, t0));
        assert_eq!(never.get("k", t0 + S * 60), Some(Val::Int(1)));
        assert_eq!(never.expires_in("k", t0), Some(0));
        let t = Table::new("t", Some(S * 1000), None);
        for i in 0..40 {
            let exp = (i % 2 == 0).then_some(S * 5);
            t.set(&format!("k{i}"), Val::Int(i), exp, t0);
        }
        assert_eq!(t.expire(t0 + S * 6), 20);
        assert_eq!(t.count(t0 + S * 6, |_, _| true), 20);
        let n = t.remove_where(t0 + S * 6, |k, v| k.starts_with("k1") || *v == Val::Int(21));
        // k1, k11, k13, ..., k19 (odd ones left) and k21.
        assert_eq!(n, 7);
        assert!(t.remove("k23", t0));
        assert!(!t.remove("k23", t0));
        assert!(t.set_expire("k25", 1, t0));
        assert_eq!(t.get("k25", t0 + S * 2), None);
        t.clear();
        assert_eq!(t.count(t0, |_, _| true), 0);
    }
}
