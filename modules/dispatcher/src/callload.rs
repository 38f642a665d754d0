//! Call-load distribution (algorithm 10): each INVITE dispatched counts
//! as a call on its destination (named by its `duid` attribute) until
//! its BYE or CANCEL (`ds_load_update()`), `ds_load_unset()`, or its
//! expiry (`ds_hash_initexpire` until a 2xx confirms it, then
//! `ds_hash_expire`). A new call goes to the usable destination with the
//! fewest calls, the first of its set on a tie, skipping those at their
//! `maxload`. The table is keyed by Call-ID, its counters by set and
//! `duid` (so a reload keeps them). Pure apart from the lock: times are
//! handed in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One call's load.
#[derive(Debug, Clone)]
struct Call {
    set: i32,
    duid: String,
    confirmed: bool,
    since: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    calls: HashMap<String, Call>,
    load: HashMap<(i32, String), u32>,
}

impl Inner {
    fn take(&mut self, c: &Call) {
        if let Some(n) = self.load.get_mut(&(c.set, c.duid.clone())) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The call-load table.
#[derive(Debug, Default)]
pub struct CallLoad {
    inner: Mutex<Inner>,
}

impl CallLoad {
    /// The calls on destination `duid` of set `set`.
    pub fn load(&self, set: i32, duid: &str) -> u32 {
        self.inner
            .lock()
            .ok()
            .and_then(|g| g.load.get(&(set, duid.to_string())).copied())
            .unwrap_or(0)
    }

    /// Counts call `callid` on `duid` (a call counted already moves).
    pub fn add(&self, callid: &str, set: i32, duid: &str, now: Instant) {
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        if let Some(old) = g.calls.remove(callid) {
            g.take(&old);
        }
        *g.load.entry((set, duid.to_string())).or_insert(0) += 1;
        g.calls.insert(
            callid.to_string(),
            Call {
                set,
                duid: duid.to_string(),
                confirmed: false,
                since: now,
            },
        );
    }

    /// Chooses for call `callid` among `dests` (each its `duid`, `maxload`
    /// and whether it is usable) the least-loaded one that can take a
    /// call, and counts the call on it, under one lock (two workers cannot
    /// both take a destination's last place). The chosen index, which
    /// destinations could take a call, and whether the call was counted:
    /// a Call-ID counted already (a retransmission, a second rule of
    /// `ds_select_routes`) keeps its count where it is, as Kamailio's
    /// `ds_add_cell` refuses it; nor is a destination without a duid
    /// counted.
    pub fn pick_and_add(
        &self,
        callid: &str,
        set: i32,
        dests: &[(&str, u32, bool)],
        now: Instant,
    ) -> Option<(usize, Vec<bool>, bool)> {
        let mut g = self.inner.lock().ok()?;
        let loads: Vec<Option<u32>> = dests
            .iter()
            .map(|(duid, maxload, usable)| {
                let l = g.load.get(&(set, duid.to_string())).copied().unwrap_or(0);
                let full = *maxload > 0 && l >= *maxload;
                (*usable && !full).then_some(l)
            })
            .collect();
        let chosen = least_loaded(&loads)?;
        let can = loads.iter().map(Option::is_some).collect();
        // (A destination without a duid cannot be counted: Kamailio then
        // dispatches it as without algorithm 10.)
        if g.calls.contains_key(callid) || dests[chosen].0.is_empty() {
            return Some((chosen, can, false));
        }
        let duid = dests[chosen].0.to_string();
        *g.load.entry((set, duid.clone())).or_insert(0) += 1;
        g.calls.insert(
            callid.to_string(),
            Call {
                set,
                duid,
                confirmed: false,
                since: now,
            },
        );
        Some((chosen, can, true))
    }

    /// Moves call `callid` to `duid` (`ds_next_dst`); false when it is not
    /// counted.
    pub fn replace(&self, callid: &str, duid: &str) -> bool {
        let Ok(mut g) = self.inner.lock() else {
            return false;
        };
        let Some(old) = g.calls.get(callid).cloned() else {
            return false;
        };
        g.take(&old);
        *g.load.entry((old.set, duid.to_string())).or_insert(0) += 1;
        if let Some(c) = g.calls.get_mut(callid) {
            c.duid = duid.to_string();
        }
        true
    }

    /// Forgets call `callid`; false when it was not counted.
    pub fn remove(&self, callid: &str) -> bool {
        let Ok(mut g) = self.inner.lock() else {
            return false;
        };
        match g.calls.remove(callid) {
            Some(c) => {
                g.take(&c);
                true
            }
            None => false,
        }
    }

    /// Marks call `callid` answered (its expiry becomes `ds_hash_expire`).
    pub fn confirm(&self, callid: &str, now: Instant) -> bool {
        let Ok(mut g) = self.inner.lock() else {
            return false;
        };
        match g.calls.get_mut(callid) {
            Some(c) => {
                if !c.confirmed {
                    c.confirmed = true;
                    c.since = now;
                }
                true
            }
            None => false,
        }
    }

    /// Forgets the calls older than their expiry: `init` before a 2xx,
    /// `expire` after. How many went.
    pub fn expire(&self, now: Instant, init: Duration, expire: Duration) -> usize {
        let Ok(mut g) = self.inner.lock() else {
            return 0;
        };
        let old: Vec<String> = g
            .calls
            .iter()
            .filter(|(_, c)| {
                let limit = if c.confirmed { expire } else { init };
                now.duration_since(c.since) >= limit
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &old {
            if let Some(c) = g.calls.remove(k) {
                g.take(&c);
            }
        }
        old.len()
    }
}

/// The least-loaded usable destination of `loads` (`None` for one that
/// cannot take a call: unusable, or at its `maxload`), the first on a tie.
pub fn least_loaded(loads: &[Option<u32>]) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, l) in loads.iter().enumerate() {
        if let Some(l) = *l {
            if best.is_none_or(|(_, b)| l < b) {
                best = Some((i, l));
            }
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_moves_and_expires() {
        let t0 = Instant::now();
        let c = CallLoad::default();
        c.add("c1", 1, "a", t0);
        c.add("c2", 1, "a", t0);
        c.add("c3", 1, "b", t0);
        assert_eq!((c.load(1, "a"), c.load(1, "b")), (2, 1));
        assert!(c.replace("c2", "b"));
        assert_eq!((c.load(1, "a"), c.load(1, "b")), (1, 2));
        assert!(c.remove("c1"));
        assert!(!c.remove("c1"));
        assert_eq!(c.load(1, "a"), 0);
        assert!(c.confirm("c3", t0));
        let later = t0 + Duration::from_secs(61);
        // c2 (not confirmed) expires at 60 s, c3 (confirmed) at 3600 s.
        assert_eq!(
            c.expire(later, Duration::from_secs(60), Duration::from_secs(3600)),
            1
        );
        assert_eq!(c.load(1, "b"), 1);
    }

    #[test]
    fn picks_and_counts_at_once() {
        let t0 = Instant::now();
        let c = CallLoad::default();
        let dests = [("a", 1, true), ("b", 0, true), ("c", 0, false)];
        assert_eq!(c.pick_and_add("c1", 1, &dests, t0).unwrap().0, 0);
        // a is at its maxload now, c is not usable.
        let (i, can, counted) = c.pick_and_add("c2", 1, &dests, t0).unwrap();
        assert_eq!((i, can, counted), (1, vec![false, true, false], true));
        assert_eq!((c.load(1, "a"), c.load(1, "b")), (1, 1));
        // The same Call-ID again: chosen, not counted twice or moved.
        let (i, _, counted) = c.pick_and_add("c2", 1, &dests, t0).unwrap();
        assert_eq!((i, counted), (1, false));
        assert_eq!((c.load(1, "a"), c.load(1, "b")), (1, 1));
    }

    #[test]
    fn least_loaded_first_on_a_tie() {
        assert_eq!(least_loaded(&[Some(2), Some(1), Some(1)]), Some(1));
        assert_eq!(least_loaded(&[None, Some(3), Some(3)]), Some(1));
        assert_eq!(least_loaded(&[None, None]), None);
    }
}
