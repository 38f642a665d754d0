//! The destinations: one line of a list file (or one database row),
//! parsed into a [`Dest`] with its attributes and live state, and the
//! [`Lists`] of sets they make.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// State bit: inactive (not selected).
pub const INACTIVE: u32 = 1;
/// State bit: trying (failing, still selected).
pub const TRYING: u32 = 2;
/// State bit: disabled by the administrator (not selected, not pinged).
pub const DISABLED: u32 = 4;
/// State bit: probing (pinged, see `ds_probing_mode`).
pub const PROBING: u32 = 8;
/// Flag: no DNS resolution at load (never pinged, never matched by
/// `ds_is_from_list`).
pub const NODNS: u32 = 16;
/// Flag: never pinged.
pub const NOPING: u32 = 32;
/// The state bits (what `ds_mark_dst` and the pings change).
pub const STATES: u32 = INACTIVE | TRYING | DISABLED | PROBING;

/// Whether a destination with these flags is skipped by selection.
pub fn skipped(flags: u32) -> bool {
    flags & (INACTIVE | DISABLED) != 0
}

/// The two-letter state `dispatcher.list` shows: `A`ctive, `I`nactive,
/// `D`isabled or `T`rying, then `P`robing or `X`.
pub fn state_letters(flags: u32) -> String {
    let first = if flags & INACTIVE != 0 {
        'I'
    } else if flags & DISABLED != 0 {
        'D'
    } else if flags & TRYING != 0 {
        'T'
    } else {
        'A'
    };
    let second = if flags & PROBING != 0 { 'P' } else { 'X' };
    format!("{first}{second}")
}

/// A destination's attributes (`duid=a;weight=50;socket=udp:1.2.3.4:5060`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// The text as given.
    pub body: String,
    /// `duid`.
    pub duid: String,
    /// `maxload`.
    pub maxload: u32,
    /// `weight` (1–100; 0 when absent or out of range).
    pub weight: u32,
    /// `rweight` (1–100; 0 when absent or out of range).
    pub rweight: u32,
    /// `socket` (`proto:ip:port`) to send from.
    pub socket: String,
    /// `sockname`.
    pub sockname: String,
    /// `ping_from`: the From URI of this destination's pings.
    pub ping_from: String,
    /// `obproxy`: where this destination's pings go.
    pub obproxy: String,
}

impl Attrs {
    /// Parses `k=v;k=v` (names case-insensitive; unknown names kept in
    /// the body only; a trailing `;` dropped).
    pub fn parse(text: &str) -> Attrs {
        let body = text.trim().trim_end_matches(';').to_string();
        let mut a = Attrs {
            body: body.clone(),
            ..Attrs::default()
        };
        let pct = |v: &str| v.parse::<u32>().ok().filter(|w| (1..=100).contains(w));
        for item in body.split(';') {
            let Some((k, v)) = item.split_once('=') else {
                continue;
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "duid" => a.duid = v.to_string(),
                "maxload" => a.maxload = v.parse().unwrap_or(0),
                "weight" => a.weight = pct(v).unwrap_or(0),
                "rweight" => a.rweight = pct(v).unwrap_or(0),
                "socket" => a.socket = v.to_string(),
                "sockname" => a.sockname = v.to_string(),
                "ping_from" => a.ping_from = v.to_string(),
                "obproxy" => a.obproxy = v.to_string(),
                _ => {}
            }
        }
        a
    }
}

/// Where a destination is, for `ds_is_from_list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    /// Its address (resolved at load).
    pub ip: IpAddr,
    /// The port written in its URI (none matches any port).
    pub port: Option<u16>,
    /// The `transport` of its URI, lower case (none matches no protocol
    /// unless the protocol is ignored).
    pub proto: Option<sr_sdk::Proto>,
}

/// One destination of a set.
#[derive(Debug)]
pub struct Dest {
    /// Its SIP URI.
    pub uri: String,
    /// The set it is in.
    pub setid: i32,
    /// `priority` (higher first).
    pub priority: i32,
    /// Its attributes.
    pub attrs: Attrs,
    /// The flags it was loaded with (NODNS, NOPING kept; states below).
    pub load_flags: u32,
    /// State bits and flags now.
    pub flags: AtomicU32,
    /// Failures (or, once inactive, successes) in a row, for the
    /// thresholds.
    pub count: AtomicU32,
    /// Its address, when resolved.
    pub addr: Option<Addr>,
    /// Its `socket` attribute as an address, when it has one.
    pub socket_addr: Option<std::net::SocketAddr>,
}

impl Dest {
    /// The flags now.
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }
}

pub use sr_sdk::socket_addr;

/// One line (or row), before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Set id.
    pub setid: i32,
    /// Destination URI (`sip:` added when missing).
    pub uri: String,
    /// Flags.
    pub flags: u32,
    /// Priority.
    pub priority: i32,
    /// Attributes text.
    pub attrs: String,
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse::<T>()
        .map_err(|_| format!("{what} '{s}' is not a decimal number"))
}

/// Adds `sip:` to a destination without a scheme.
pub fn with_scheme(uri: &str) -> String {
    let lower = uri
        .get(..5)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        uri.to_string()
    } else {
        format!("sip:{uri}")
    }
}

/// Parses one line of a list file: `setid uri [flags [priority [attrs]]]`;
/// `None` for a blank line or a comment; a `#` after a field ends the line.
pub fn parse_line(line: &str) -> Option<Result<Entry, String>> {
    let line = line.split('#').next().unwrap_or("");
    let mut f = line.split_whitespace();
    let setid = f.next()?;
    Some((|| {
        let uri = f.next().ok_or("no destination after the set id")?;
        let e = Entry {
            setid: num(setid, "set id")?,
            uri: with_scheme(uri),
            flags: f.next().map_or(Ok(0), |s| num(s, "flags"))?,
            priority: f.next().map_or(Ok(0), |s| num(s, "priority"))?,
            attrs: f.next().unwrap_or("").to_string(),
        };
        if sr_sdk::sip_msg::Uri::parse(&e.uri).is_err() {
            return Err(format!("'{}' is not a SIP URI", e.uri));
        }
        Ok(e)
    })())
}

/// One destination set.
#[derive(Debug)]
pub struct Set {
    /// Set id.
    pub id: i32,
    /// Its destinations, higher priority first (equal priorities in the
    /// reverse of their load order, as Kamailio keeps them).
    pub dests: Vec<Arc<Dest>>,
    /// Round-robin position (algorithms 4 and 5).
    pub rr: AtomicU32,
    /// The weight slots (algorithm 9): 100 destination indexes.
    pub wlist: Vec<u32>,
    /// Next weight slot.
    pub wlast: AtomicU32,
    /// The relative weight slots (algorithm 11), with which destinations
    /// were usable when they were made, and the next slot.
    pub rwlist: Mutex<(Vec<bool>, Vec<u32>, usize)>,
}

impl Set {
    /// A set from its destinations in load order.
    pub fn new(id: i32, mut dests: Vec<Arc<Dest>>, seed: u64) -> Set {
        dests.reverse();
        dests.sort_by_key(|d| std::cmp::Reverse(d.priority));
        let wlist = weight_slots(&dests, seed);
        Set {
            id,
            dests,
            rr: AtomicU32::new(0),
            wlist,
            wlast: AtomicU32::new(0),
            rwlist: Mutex::new((Vec::new(), Vec::new(), 0)),
        }
    }
}

/// A small random permutation source (xorshift), enough to shuffle slots.
pub struct Shuffle(u64);

impl Shuffle {
    /// Seeded (0 is replaced).
    pub fn new(seed: u64) -> Shuffle {
        Shuffle(seed | 1)
    }
    /// The next number.
    pub fn draw(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Shuffles in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.draw() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Fills 100 slots with destination indexes, each taking `share(i)`
/// slots (those past 100 dropped; any gap filled with the last index
/// written, or the last destination when none was), then shuffles them
/// (Kamailio's weight and relative-weight lists).
pub fn fill_slots(n: usize, share: impl Fn(usize) -> usize, seed: u64) -> Vec<u32> {
    let mut slots = Vec::with_capacity(100);
    for i in 0..n {
        let room = 100 - slots.len();
        slots.extend(std::iter::repeat_n(i as u32, share(i).min(room)));
    }
    let last = slots.last().copied().unwrap_or(n.saturating_sub(1) as u32);
    slots.resize(100, last);
    Shuffle::new(seed).shuffle(&mut slots);
    slots
}

/// The weight slots of algorithm 9: made only when the first destination
/// has a weight (else every slot is the first destination).
fn weight_slots(dests: &[Arc<Dest>], seed: u64) -> Vec<u32> {
    if dests.first().is_none_or(|d| d.attrs.weight == 0) {
        return vec![0; 100];
    }
    fill_slots(dests.len(), |i| dests[i].attrs.weight as usize, seed)
}

/// Every set, as loaded.
#[derive(Debug, Default)]
pub struct Lists {
    /// The sets, by id.
    pub sets: Vec<Set>,
    /// The sets in the order Kamailio walks them (`dispatcher.list`,
    /// `ds_is_from_list`): indexes into `sets`.
    pub walk: Vec<usize>,
}

impl Lists {
    /// Sets made from `sets` (any order) whose ids were first seen in the
    /// order `seen`.
    pub fn new(mut sets: Vec<Set>, seen: &[i32]) -> Lists {
        sets.sort_by_key(|s| s.id);
        let walk = crate::order::avl_post_order(seen)
            .into_iter()
            .filter_map(|id| sets.binary_search_by_key(&id, |s| s.id).ok())
            .collect();
        Lists { sets, walk }
    }

    /// A set by id.
    pub fn set(&self, id: i32) -> Option<&Set> {
        self.sets
            .binary_search_by_key(&id, |s| s.id)
            .ok()
            .map(|i| &self.sets[i])
    }

    /// The sets in Kamailio's order.
    pub fn walk(&self) -> impl Iterator<Item = &Set> + '_ {
        self.walk.iter().filter_map(|&i| self.sets.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines() {
        assert_eq!(parse_line("   "), None);
        assert_eq!(parse_line("# a comment"), None);
        let e = parse_line("1 sip:127.0.0.1:5080 8 5 duid=a;weight=40; # gw")
            .unwrap()
            .unwrap();
        assert_eq!(
            e,
            Entry {
                setid: 1,
                uri: "sip:127.0.0.1:5080".into(),
                flags: 8,
                priority: 5,
                attrs: "duid=a;weight=40;".into()
            }
        );
        let e = parse_line("2 10.0.0.1:5060").unwrap().unwrap();
        assert_eq!(e.uri, "sip:10.0.0.1:5060");
        assert_eq!((e.flags, e.priority), (0, 0));
        assert!(parse_line("x sip:a").unwrap().is_err());
        assert!(parse_line("1 sip:a 0x8").unwrap().is_err());
        assert!(parse_line("1").unwrap().is_err());
    }

    #[test]
    fn attributes() {
        let a = Attrs::parse(
            "DUID=gw1;weight=150;rweight=30;socket=udp:127.0.0.1:5060;ping_from=sip:p@x;",
        );
        assert_eq!(a.duid, "gw1");
        assert_eq!(a.weight, 0, "out of range");
        assert_eq!(a.rweight, 30);
        assert_eq!(a.socket, "udp:127.0.0.1:5060");
        assert_eq!(a.ping_from, "sip:p@x");
        assert_eq!(
            a.body,
            "DUID=gw1;weight=150;rweight=30;socket=udp:127.0.0.1:5060;ping_from=sip:p@x"
        );
    }

    #[test]
    fn states_as_letters() {
        assert_eq!(state_letters(0), "AX");
        assert_eq!(state_letters(PROBING), "AP");
        assert_eq!(state_letters(INACTIVE | PROBING), "IP");
        assert_eq!(state_letters(DISABLED), "DX");
        assert_eq!(state_letters(TRYING | PROBING), "TP");
    }

    #[test]
    fn slots_follow_the_shares() {
        let s = fill_slots(3, |i| [50, 30, 10][i], 7);
        assert_eq!(s.len(), 100);
        let count = |k| s.iter().filter(|&&x| x == k).count();
        assert_eq!(
            (count(0), count(1), count(2)),
            (50, 30, 20),
            "the last fills the gap"
        );
        let t = fill_slots(2, |_| 80, 7);
        assert_eq!(t.iter().filter(|&&x| x == 0).count(), 80, "excess dropped");
        // The gap goes to the last destination that has slots, not to one
        // with none (weights 50, 30 and nothing).
        let u = fill_slots(3, |i| [50, 30, 0][i], 7);
        assert_eq!(u.iter().filter(|&&x| x == 1).count(), 50);
        assert_eq!(u.iter().filter(|&&x| x == 2).count(), 0);
        assert!(fill_slots(2, |_| 0, 7).iter().all(|&x| x == 1));
    }
}
