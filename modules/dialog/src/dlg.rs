//! The dialogs: their state machine (Kamailio's states 1 to 5), the two
//! legs as the proxy saw them, and the table that holds them, found by
//! `h_entry`/`h_id` (the `did` Route parameter) or by Call-ID and tags.

use crate::profile::{Counts, Link};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A dialog's state, numbered as Kamailio's `$dlg(state)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// 1: the INVITE went out, no reply yet.
    Unconfirmed = 1,
    /// 2: a provisional reply came.
    Early = 2,
    /// 3: a 2xx came, no ACK yet.
    ConfirmedNa = 3,
    /// 4: the ACK came.
    Confirmed = 4,
    /// 5: ended (BYE, timeout, failure).
    Deleted = 5,
}

impl State {
    /// The number Kamailio shows.
    pub fn num(self) -> i64 {
        self as i64
    }

    /// Whether the dialog was answered (2xx) and not ended.
    pub fn answered(self) -> bool {
        matches!(self, State::ConfirmedNa | State::Confirmed)
    }
}

/// One side of the dialog.
#[derive(Debug, Clone, Default)]
pub struct Leg {
    /// Its tag (From-tag of the caller, To-tag of the callee).
    pub tag: String,
    /// Its Contact URI.
    pub contact: String,
    /// The CSeq number of its last request.
    pub cseq: u32,
    /// The route set towards it (Route header values, nearest first).
    pub route_set: Vec<String>,
    /// The local socket its messages came in on (`proto:ip:port`).
    pub socket: String,
}

/// A dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Hash entry (of the Call-ID).
    pub h_entry: u32,
    /// Id within the entry.
    pub h_id: u32,
    /// State.
    pub state: State,
    /// Call-ID.
    pub callid: String,
    /// From URI.
    pub from_uri: String,
    /// To URI.
    pub to_uri: String,
    /// The initial INVITE's Request-URI.
    pub req_uri: String,
    /// Caller's side.
    pub caller: Leg,
    /// Callee's side (empty until a reply with a To-tag).
    pub callee: Leg,
    /// Created (unix seconds).
    pub init_ts: u64,
    /// Answered (unix seconds; 0 before).
    pub start_ts: u64,
    /// Ended (unix seconds; 0 before).
    pub end_ts: u64,
    /// Lifetime after the 2xx, seconds (`default_timeout`, `dlg_set_timeout`).
    pub lifetime: u32,
    /// When it times out (set once answered).
    pub deadline: Option<Instant>,
    /// Created (monotonic), for the early timeout.
    pub created: Instant,
    /// Ended (monotonic), to remove it a little later.
    pub ended: Option<Instant>,
    /// Script flags (`dlg_setflag`).
    pub sflags: u32,
    /// Internal flags (`dflags`: BYE on timeout, no reset of the timeout).
    pub dflags: u32,
    /// Route run on timeout (`$dlg_ctx(timeout_route)`).
    pub toroute: String,
    /// The profiles it is in.
    pub profiles: Vec<Link>,
    /// Its variables (`$dlg_var`).
    pub vars: BTreeMap<String, String>,
    /// The transaction carrying its INVITE (tm's cell id), once there is
    /// one.
    pub tm_cell: Option<u64>,
    /// Answered (monotonic), for `noack_timeout`.
    pub answered_at: Option<Instant>,
    /// Being ended (BYEs and routes under way): ended once only.
    pub closing: bool,
    /// What other modules keep with the dialog (sst's session interval),
    /// by module name; not a `$dlg_var`.
    pub mod_data: BTreeMap<String, String>,
}

/// `dflags`: send BYE to both sides on timeout.
pub const DFLAG_TIMEOUT_BYE: u32 = 1 << 7;
/// `dflags`: in-dialog requests do not restart the timeout.
pub const DFLAG_NORESET: u32 = 1 << 8;
/// `dflags`: the dialog came from another node over DMQ (no sockets, never
/// sent on, ended without a BYE).
pub const DFLAG_REPLICATED: u32 = 1 << 20;
/// `dflags`: the dialog was sent to the other DMQ nodes (once, when its
/// INVITE got its transaction).
pub const DFLAG_SENT: u32 = 1 << 21;
/// The `dflags` bits only siprouter keeps (not shown).
pub const DFLAG_INTERNAL: u32 = DFLAG_REPLICATED | DFLAG_SENT;

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Dialog {
    /// The `did` Route parameter's value: `h_entry` and `h_id` as
    /// Kamailio writes them (hex, least significant digit first) joined
    /// by a dot.
    pub fn did(&self) -> String {
        format!("{}.{}", reverse_hex(self.h_entry), reverse_hex(self.h_id))
    }

    /// Seconds left before it times out (0 when not running).
    pub fn timeout_left(&self, now: Instant) -> u64 {
        self.deadline
            .map_or(0, |d| d.saturating_duration_since(now).as_secs())
    }
}

/// Hex digits, least significant first (Kamailio's `int2reverse_hex`).
pub fn reverse_hex(mut n: u32) -> String {
    let mut s = String::new();
    loop {
        s.push(char::from_digit(n & 0xf, 16).unwrap_or('0'));
        n >>= 4;
        if n == 0 {
            return s;
        }
    }
}

/// The inverse of [`reverse_hex`].
pub fn parse_reverse_hex(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    let mut n: u32 = 0;
    for c in s.chars().rev() {
        n = (n << 4) | c.to_digit(16)?;
    }
    Some(n)
}

/// A `did` value split into `h_entry` and `h_id`.
pub fn parse_did(s: &str) -> Option<(u32, u32)> {
    let (e, i) = s.split_once('.')?;
    Some((parse_reverse_hex(e)?, parse_reverse_hex(i)?))
}

/// At most this many memberships without a dialog are kept.
pub const MAX_REMOTE: usize = 1_000_000;

/// The dialog table.
#[derive(Debug)]
pub struct Table {
    size: u32,
    next_id: Vec<u32>,
    step: u32,
    start: u32,
    dialogs: HashMap<(u32, u32), Dialog>,
    by_callid: HashMap<String, Vec<(u32, u32)>>,
    /// Profile counts.
    pub counts: Counts,
    /// Memberships without a dialog (`dlg_remote_profile`): per profile
    /// and value, their unique ids and expiry (unix seconds, 0: none).
    pub remote: HashMap<Link, Vec<(String, i64)>>,
    /// How many there are in `remote`.
    remote_count: usize,
}

impl Table {
    /// A table of `size` entries. Each entry's ids start at a
    /// pseudo-random point (below three times the size) and grow by 1;
    /// with a `step` above 1 they are `start` plus a multiple of `step`
    /// (Kamailio's `h_id_start` and `h_id_step`, which split the ids
    /// between servers).
    pub fn new(size: u32, start: i64, step: u32) -> Table {
        let size = size.max(1);
        let step = step.max(1);
        let start = start.max(0) as u32;
        let seed = unix_now() as u32 ^ std::process::id().rotate_left(16);
        let next_id = (0..size)
            .map(|i| {
                let r = seed
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(i.wrapping_mul(40_503))
                    .rotate_left(i % 31)
                    % size.saturating_mul(3).max(1);
                if step > 1 {
                    start.wrapping_add(step.wrapping_mul(r + 1))
                } else {
                    r + 1
                }
            })
            .collect();
        Table {
            size,
            next_id,
            step,
            start,
            dialogs: HashMap::new(),
            by_callid: HashMap::new(),
            counts: Counts::default(),
            remote: HashMap::new(),
            remote_count: 0,
        }
    }

    /// `dlg_remote_profile("add", ...)`: a membership without a dialog;
    /// false when [`MAX_REMOTE`] are kept already.
    pub fn add_remote(&mut self, l: Link, uid: &str, expires: i64) -> bool {
        if self.remote_count >= MAX_REMOTE {
            return false;
        }
        self.remote
            .entry(l)
            .or_default()
            .push((uid.to_string(), expires));
        self.remote_count += 1;
        true
    }

    /// `dlg_remote_profile("rm", ...)`: the first membership with this
    /// profile, value and unique id; whether there was one.
    pub fn remove_remote(&mut self, l: &Link, uid: &str) -> bool {
        let Some(v) = self.remote.get_mut(l) else {
            return false;
        };
        let Some(i) = v.iter().position(|(u, _)| u == uid) else {
            return false;
        };
        v.remove(i);
        if v.is_empty() {
            self.remote.remove(l);
        }
        self.remote_count -= 1;
        true
    }

    /// Removes the memberships without a dialog whose expiry passed.
    pub fn expire_remote(&mut self, now: i64) {
        let mut gone = 0;
        self.remote.retain(|_, v| {
            let before = v.len();
            v.retain(|(_, e)| !(*e > 0 && *e < now));
            gone += before - v.len();
            !v.is_empty()
        });
        self.remote_count -= gone;
    }

    /// The size of a profile (`get_profile_size`): the dialogs' memberships
    /// and those without a dialog — which, as in Kamailio 5.6, count in a
    /// profile with values only when a value is asked for.
    pub fn profile_size(&self, profile: &str, value: Option<&str>, with_value: bool) -> usize {
        // (A profile without values keeps its memberships under "".)
        let key = match (with_value, value) {
            (false, _) => Some(""),
            (true, Some(v)) => Some(v),
            (true, None) => None,
        };
        let remote = key.map_or(0, |v| {
            self.remote
                .get(&Link {
                    profile: profile.to_string(),
                    value: v.to_string(),
                })
                .map_or(0, Vec::len)
        });
        self.counts.size(profile, value) + remote
    }

    /// The entry of a Call-ID.
    pub fn entry_of(&self, callid: &str) -> u32 {
        sr_sdk::hash::core_hash(callid.as_bytes(), None, false) % self.size
    }

    /// Adds a dialog, giving it its `h_entry` and `h_id` (never 0, never
    /// one in use: after a wrap the ids start again at `h_id_start` plus a
    /// step).
    pub fn insert(&mut self, mut d: Dialog) -> (u32, u32) {
        let e = self.entry_of(&d.callid);
        let (step, start) = (self.step, self.start);
        let id = loop {
            let slot = &mut self.next_id[e as usize];
            let id = *slot;
            *slot = match slot.checked_add(step) {
                Some(n) => n,
                None => start.wrapping_add(step),
            };
            if id != 0 && !self.dialogs.contains_key(&(e, id)) {
                break id;
            }
        };
        d.h_entry = e;
        d.h_id = id;
        self.by_callid
            .entry(d.callid.clone())
            .or_default()
            .push((e, id));
        for l in &d.profiles {
            self.counts.add(l);
        }
        self.dialogs.insert((e, id), d);
        (e, id)
    }

    /// Adds a dialog under the ids another node gave it (DMQ); false when
    /// they are taken.
    pub fn insert_at(&mut self, mut d: Dialog, key: (u32, u32)) -> bool {
        if key.1 == 0 || key.0 >= self.size || self.dialogs.contains_key(&key) {
            return false;
        }
        d.h_entry = key.0;
        d.h_id = key.1;
        self.by_callid
            .entry(d.callid.clone())
            .or_default()
            .push(key);
        for l in &d.profiles {
            self.counts.add(l);
        }
        self.dialogs.insert(key, d);
        true
    }

    /// A dialog by its ids.
    pub fn get(&self, key: (u32, u32)) -> Option<&Dialog> {
        self.dialogs.get(&key)
    }

    /// A dialog by its ids, to change.
    pub fn get_mut(&mut self, key: (u32, u32)) -> Option<&mut Dialog> {
        self.dialogs.get_mut(&key)
    }

    /// The dialogs of a Call-ID.
    pub fn by_callid(&self, callid: &str) -> Vec<(u32, u32)> {
        self.by_callid.get(callid).cloned().unwrap_or_default()
    }

    /// The dialog of a message: Call-ID, From-tag and To-tag (either way
    /// round); the direction is `true` when the From-tag is the caller's.
    /// A dialog without a callee yet matches any To-tag or none.
    pub fn find(&self, callid: &str, ftag: &str, ttag: &str) -> Option<((u32, u32), bool)> {
        for k in self.by_callid.get(callid)? {
            let Some(d) = self.dialogs.get(k) else {
                continue;
            };
            // Another node's dialog: its requests are that node's.
            if d.dflags & DFLAG_REPLICATED != 0 {
                continue;
            }
            if d.caller.tag == ftag
                && (d.callee.tag.is_empty() || d.callee.tag == ttag || ttag.is_empty())
            {
                return Some((*k, true));
            }
            if !d.callee.tag.is_empty() && d.callee.tag == ftag && d.caller.tag == ttag {
                return Some((*k, false));
            }
        }
        None
    }

    /// Adds `d` to a profile (once per profile and value); not an ended
    /// one.
    pub fn link(&mut self, key: (u32, u32), l: Link) -> bool {
        let Some(d) = self.dialogs.get_mut(&key) else {
            return false;
        };
        if d.state == State::Deleted {
            return false;
        }
        if !d.profiles.contains(&l) {
            self.counts.add(&l);
            d.profiles.push(l);
        }
        true
    }

    /// Takes `d` out of a profile (every value when `value` is `None`);
    /// whether it was in.
    pub fn unlink(&mut self, key: (u32, u32), profile: &str, value: Option<&str>) -> bool {
        let Some(d) = self.dialogs.get_mut(&key) else {
            return false;
        };
        let mut found = false;
        let counts = &mut self.counts;
        d.profiles.retain(|l| {
            let hit = l.profile == profile && value.is_none_or(|v| v == l.value);
            if hit {
                counts.remove(l);
                found = true;
            }
            !hit
        });
        found
    }

    /// Ends a dialog: state 5, out of its profiles; removed from the table
    /// a little later ([`Table::sweep`]), so that the last requests still
    /// find it.
    pub fn end(&mut self, key: (u32, u32), now: Instant) {
        let Some(d) = self.dialogs.get_mut(&key) else {
            return;
        };
        d.state = State::Deleted;
        d.end_ts = unix_now();
        d.deadline = None;
        d.ended = Some(now);
        for l in d.profiles.drain(..) {
            self.counts.remove(&l);
        }
    }

    /// Removes a dialog now.
    pub fn remove(&mut self, key: (u32, u32)) -> Option<Dialog> {
        let mut d = self.dialogs.remove(&key)?;
        for l in d.profiles.drain(..) {
            self.counts.remove(&l);
        }
        if let Some(v) = self.by_callid.get_mut(&d.callid) {
            v.retain(|k| *k != key);
            if v.is_empty() {
                self.by_callid.remove(&d.callid);
            }
        }
        Some(d)
    }

    /// The dialogs due: answered ones past their deadline, and ones never
    /// answered after `early` (those never relayed after `unbound`).
    pub fn due(&self, now: Instant, early: Duration, unbound: Duration) -> Vec<(u32, u32)> {
        self.dialogs
            .iter()
            .filter(|(_, d)| match d.state {
                State::ConfirmedNa | State::Confirmed => d.deadline.is_some_and(|t| t <= now),
                State::Unconfirmed | State::Early => {
                    let age = now.saturating_duration_since(d.created);
                    // (A dialog of another node has no transaction here.)
                    age >= early
                        || (d.tm_cell.is_none()
                            && d.dflags & DFLAG_REPLICATED == 0
                            && age >= unbound)
                }
                State::Deleted => false,
            })
            .map(|(k, _)| *k)
            .collect()
    }

    /// Removes the dialogs ended more than `keep` ago; gives them back.
    pub fn sweep(&mut self, now: Instant, keep: Duration) -> Vec<Dialog> {
        let old: Vec<(u32, u32)> = self
            .dialogs
            .iter()
            .filter(|(_, d)| {
                d.ended
                    .is_some_and(|t| now.saturating_duration_since(t) >= keep)
            })
            .map(|(k, _)| *k)
            .collect();
        old.into_iter().filter_map(|k| self.remove(k)).collect()
    }

    /// Every dialog, to change.
    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut Dialog> {
        self.dialogs.values_mut()
    }

    /// Every dialog, in `h_entry`/`h_id` order.
    pub fn all(&self) -> Vec<&Dialog> {
        let mut v: Vec<&Dialog> = self.dialogs.values().collect();
        v.sort_by_key(|d| (d.h_entry, d.h_id));
        v
    }

    /// How many dialogs are in a state.
    pub fn count(&self, f: impl Fn(State) -> bool) -> usize {
        self.dialogs.values().filter(|d| f(d.state)).count()
    }
}

/// A dialog for tests: made, caller tag `ftag`, nothing else known.
#[cfg(test)]
pub(crate) fn sample(callid: &str, ftag: &str) -> Dialog {
    Dialog {
        h_entry: 0,
        h_id: 0,
        state: State::Unconfirmed,
        callid: callid.into(),
        from_uri: "sip:a@x".into(),
        to_uri: "sip:b@x".into(),
        req_uri: "sip:b@x".into(),
        caller: Leg {
            tag: ftag.into(),
            ..Leg::default()
        },
        callee: Leg::default(),
        init_ts: 0,
        start_ts: 0,
        end_ts: 0,
        lifetime: 10,
        deadline: None,
        created: Instant::now(),
        ended: None,
        sflags: 0,
        dflags: 0,
        toroute: String::new(),
        profiles: Vec::new(),
        vars: BTreeMap::new(),
        tm_cell: Some(1),
        answered_at: None,
        closing: false,
        mod_data: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog(callid: &str, ftag: &str) -> Dialog {
        sample(callid, ftag)
    }

    #[test]
    fn did_is_reversed_hex() {
        assert_eq!(reverse_hex(0), "0");
        assert_eq!(reverse_hex(0x1a3), "3a1");
        assert_eq!(parse_reverse_hex("3a1"), Some(0x1a3));
        assert_eq!(parse_did("3a1.0f"), Some((0x1a3, 0xf0)));
        assert_eq!(parse_did("3a1"), None);
        assert_eq!(parse_did("zz.1"), None);
        assert_eq!(parse_reverse_hex("123456789"), None);
        for n in [0u32, 1, 15, 16, 4095, u32::MAX] {
            assert_eq!(parse_reverse_hex(&reverse_hex(n)), Some(n));
        }
    }

    #[test]
    fn ids_and_lookup() {
        let mut t = Table::new(16, 5, 2);
        let k1 = t.insert(dialog("c1", "f1"));
        let k2 = t.insert(dialog("c1", "f2"));
        assert_eq!(k1.0, t.entry_of("c1"));
        assert_eq!(k1.1 % 2, 1, "h_id_start plus a multiple of h_id_step");
        assert_eq!(k2.1, k1.1 + 2, "then h_id_step more");
        let mut t1 = Table::new(1, 0, 1);
        let a = t1.insert(dialog("x", "1"));
        t1.next_id[0] = a.1;
        let b = t1.insert(dialog("x", "2"));
        assert_ne!(a, b, "an id in use is skipped");
        assert_eq!(t.find("c1", "f2", ""), Some((k2, true)));
        t.get_mut(k1).unwrap().callee.tag = "t1".into();
        assert_eq!(
            t.find("c1", "t1", "f1"),
            Some((k1, false)),
            "from the callee"
        );
        assert_eq!(t.find("c1", "f1", "t1"), Some((k1, true)));
        assert_eq!(t.find("c1", "f1", "other"), None);
        assert_eq!(t.find("c9", "f1", ""), None);
    }

    #[test]
    fn profiles_follow_the_dialog() {
        let mut t = Table::new(4, 0, 1);
        let k = t.insert(dialog("c", "f"));
        let l = |v: &str| Link {
            profile: "p".into(),
            value: v.into(),
        };
        assert!(t.link(k, l("a")));
        assert!(t.link(k, l("a")), "twice is once");
        assert!(t.link(k, l("b")));
        assert_eq!(t.counts.size("p", None), 2);
        assert!(t.unlink(k, "p", Some("a")));
        assert!(!t.unlink(k, "p", Some("a")));
        assert_eq!(t.counts.size("p", None), 1);
        let now = Instant::now();
        t.end(k, now);
        assert_eq!(t.counts.size("p", None), 0);
        assert!(!t.link(k, l("c")), "not into an ended dialog");
        assert_eq!(t.get(k).unwrap().state, State::Deleted);
        t.sweep(now, Duration::from_secs(1));
        assert!(t.get(k).is_some(), "kept a moment");
        t.sweep(now + Duration::from_secs(2), Duration::from_secs(1));
        assert!(t.get(k).is_none());
        assert!(t.by_callid("c").is_empty());
    }

    #[test]
    fn timeouts() {
        let mut t = Table::new(4, 0, 1);
        let now = Instant::now();
        let k1 = t.insert(dialog("c1", "f"));
        let mut d = dialog("c2", "f");
        d.tm_cell = None;
        let k2 = t.insert(d);
        let mut d = dialog("c3", "f");
        d.state = State::Confirmed;
        d.deadline = Some(now + Duration::from_secs(5));
        let k3 = t.insert(d);
        let (e, u) = (Duration::from_secs(100), Duration::from_secs(3));
        assert!(t.due(now, e, u).is_empty());
        assert_eq!(t.due(now + Duration::from_secs(4), e, u), vec![k2]);
        let mut due = t.due(now + Duration::from_secs(200), e, u);
        due.sort();
        let mut want = vec![k1, k2, k3];
        want.sort();
        assert_eq!(due, want);
    }
}
