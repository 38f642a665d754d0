//! Kamailio's pike IP tree, without I/O: a tree of address prefixes, one
//! byte per level, grown only where requests come from. A request counts
//! on the longest prefix of its address that has a node; a prefix node
//! that gets hot (a quarter of `reqs_density_per_unit` requests in the
//! current or previous unit, or on average) grows a child for the next
//! byte, which inherits its hits but one. Only the node of the whole
//! address counts toward the limit (its "leaf hits"): it turns red when
//! they reach `reqs_density_per_unit` in a unit, and stays red until a
//! unit swap finds it under the limit in both units. Every
//! `sampling_time_unit` the current counts become the previous ones
//! ([`Tree::swap`]). A node with no children is forgotten after
//! `remove_latency` without requests that refreshed it (a cold prefix
//! node is not refreshed); a node whose last child goes gets
//! `remove_latency` again.
//!
//! So a new address's first requests build its branch rather than count
//! (six for an IPv4 address nobody near it used), as in Kamailio.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Under the limit.
    Ok,
    /// Over it, for the first time since it was under it.
    Started,
    /// Over it, still.
    Block,
}

#[derive(Debug, Clone)]
struct Node {
    /// Hits as a prefix: previous and current unit.
    hits: [u16; 2],
    /// Hits as the whole address: previous and current unit.
    leaf_hits: [u16; 2],
    /// The whole address of a request (Kamailio's IP leaf flag).
    leaf: bool,
    red: bool,
    /// When it is forgotten, if it has no children by then.
    expires: Instant,
    kids: u16,
}

const PREV: usize = 0;
const CURR: usize = 1;

/// The tree; one lock per first byte (Kamailio's branches).
#[derive(Debug)]
pub struct Tree {
    max: u16,
    keep: Duration,
    branches: Vec<Mutex<HashMap<Box<[u8]>, Node>>>,
}

/// One address as `pike.top` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The address.
    pub ip: IpAddr,
    /// Requests in the previous unit.
    pub prev: u32,
    /// Requests in the current unit.
    pub cur: u32,
    /// Seconds until it is forgotten if it sends nothing more.
    pub expires: u64,
    /// Over the limit (Kamailio's HOT).
    pub hot: bool,
    /// A quarter of the limit in the current unit (Kamailio's WARM).
    pub warm: bool,
}

fn bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

impl Node {
    fn new(now: Instant, keep: Duration) -> Node {
        Node {
            hits: [0; 2],
            leaf_hits: [0; 2],
            leaf: false,
            red: false,
            expires: now + keep,
            kids: 0,
        }
    }

    fn hot_prefix(&self, max: u16) -> bool {
        let q = max >> 2;
        self.hits[PREV] >= q
            || self.hits[CURR] >= q
            || ((u32::from(self.hits[PREV]) + u32::from(self.hits[CURR])) >> 1) >= u32::from(q)
    }

    fn hot_leaf(&self, max: u16) -> bool {
        self.leaf_hits[PREV] >= max
            || self.leaf_hits[CURR] >= max
            || ((u32::from(self.leaf_hits[PREV]) + u32::from(self.leaf_hits[CURR])) >> 1)
                >= u32::from(max)
    }

    fn warm(&self, max: u16) -> bool {
        self.hits[CURR] >= max >> 2
    }
}

impl Tree {
    /// `density`: `reqs_density_per_unit`; `keep`: `remove_latency`.
    pub fn new(density: u32, keep: Duration) -> Tree {
        Tree {
            max: u16::try_from(density).unwrap_or(u16::MAX),
            keep,
            branches: (0..256).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn branch(&self, first: u8) -> std::sync::MutexGuard<'_, HashMap<Box<[u8]>, Node>> {
        self.branches[usize::from(first)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one request from `ip` at `now`.
    pub fn hit(&self, ip: IpAddr, now: Instant) -> Verdict {
        let ip = bytes(ip);
        let (max, keep) = (self.max, self.keep);
        let mut b = self.branch(ip[0]);
        // The longest prefix with a node (a node's parent always has one).
        let mut k = 0;
        while k < ip.len() && b.contains_key(&ip[..=k]) {
            k += 1;
        }
        if k == ip.len() {
            let Some(n) = b.get_mut(&ip[..]) else {
                return Verdict::Ok;
            };
            n.leaf = true;
            n.leaf_hits[CURR] = n.leaf_hits[CURR].saturating_add(1);
            n.expires = now + keep;
            if n.red {
                return Verdict::Block;
            }
            if n.hot_leaf(max) {
                n.red = true;
                return Verdict::Started;
            }
            return Verdict::Ok;
        }
        if k == 0 {
            let mut n = Node::new(now, keep);
            n.hits[CURR] = 1;
            b.insert(ip[..1].into(), n);
            return Verdict::Ok;
        }
        let Some(dad) = b.get_mut(&ip[..k]) else {
            return Verdict::Ok;
        };
        dad.hits[CURR] = dad.hits[CURR].saturating_add(1);
        if dad.hot_prefix(max) {
            // A child for the next byte, with the father's hits but one.
            let mut n = Node::new(now, keep);
            n.hits[CURR] = dad.hits[CURR].saturating_sub(1);
            if dad.leaf_hits[CURR] >= 1 {
                n.leaf_hits[PREV] = dad.leaf_hits[PREV].saturating_sub(1);
            }
            dad.kids += 1;
            b.insert(ip[..=k].into(), n);
        } else if dad.warm(max) {
            dad.expires = now + keep;
        }
        Verdict::Ok
    }

    /// The end of a `sampling_time_unit`: current counts become the
    /// previous ones; a red address under the limit in both is let go.
    pub fn swap(&self) {
        let max = self.max;
        for b in &self.branches {
            let mut m = b.lock().unwrap_or_else(|e| e.into_inner());
            for n in m.values_mut() {
                n.hits = [n.hits[CURR], 0];
                n.leaf_hits = [n.leaf_hits[CURR], 0];
                if n.red && !n.hot_leaf(max) {
                    n.red = false;
                }
            }
        }
    }

    /// Forgets childless nodes past their time (their father, left
    /// without children, gets `remove_latency` more); how many went.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut gone = 0;
        for b in &self.branches {
            let mut m = b.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let dead: Vec<Box<[u8]>> = m
                    .iter()
                    .filter(|(_, n)| n.kids == 0 && n.expires <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                if dead.is_empty() {
                    break;
                }
                for k in dead {
                    m.remove(&k);
                    gone += 1;
                    if k.len() > 1 {
                        if let Some(dad) = m.get_mut(&k[..k.len() - 1]) {
                            dad.kids = dad.kids.saturating_sub(1);
                            if dad.kids == 0 {
                                dad.expires = now + self.keep;
                            }
                        }
                    }
                }
            }
        }
        gone
    }

    /// The addresses counted (their nodes are whole addresses), busiest
    /// first.
    pub fn top(&self, now: Instant) -> Vec<Entry> {
        let mut v = Vec::new();
        for b in &self.branches {
            let m = b.lock().unwrap_or_else(|e| e.into_inner());
            for (k, n) in m.iter().filter(|(_, n)| n.leaf) {
                let ip = match k.len() {
                    4 => <[u8; 4]>::try_from(&k[..]).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(&k[..]).ok().map(IpAddr::from),
                    _ => None,
                };
                let Some(ip) = ip else { continue };
                v.push(Entry {
                    ip,
                    prev: u32::from(n.leaf_hits[PREV]),
                    cur: u32::from(n.leaf_hits[CURR]),
                    expires: n.expires.saturating_duration_since(now).as_secs(),
                    hot: n.hot_leaf(self.max),
                    warm: n.warm(self.max),
                });
            }
        }
        v.sort_by(|a, b| b.cur.cmp(&a.cur).then(a.ip.cmp(&b.ip)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The number of the first request refused, of `n` quick ones.
    fn first_refused(t: &Tree, a: IpAddr, n: u32, now: Instant) -> Option<u32> {
        (1..=n).find(|_| t.hit(a, now) != Verdict::Ok)
    }

    #[test]
    fn a_fresh_ipv4_address_is_refused_from_its_22nd_request() {
        // 16 per unit, as the stock configuration: six requests build
        // the branch, the 16th on the address's own node is refused.
        let t = Tree::new(16, Duration::from_secs(120));
        let now = Instant::now();
        let a = ip("192.0.2.7");
        assert_eq!(first_refused(&t, a, 40, now), Some(22));
        assert_eq!(t.hit(a, now), Verdict::Block);
        // A neighbour finds the prefix built: its first request grows its
        // own node, the next sixteen count.
        let b = ip("192.0.2.8");
        assert_eq!(first_refused(&t, b, 40, now), Some(17));
    }

    #[test]
    fn red_lasts_until_a_swap_finds_it_under_the_limit_twice() {
        let t = Tree::new(16, Duration::from_secs(120));
        let now = Instant::now();
        let a = ip("198.51.100.1");
        assert!(first_refused(&t, a, 40, now).is_some());
        t.swap();
        // The previous unit was over the limit: still blocked.
        assert_eq!(t.hit(a, now), Verdict::Block);
        t.swap();
        t.swap();
        assert_eq!(t.hit(a, now), Verdict::Ok);
    }

    #[test]
    fn quiet_branches_are_forgotten_and_listed_until_then() {
        let t = Tree::new(8, Duration::from_secs(10));
        let now = Instant::now();
        let a = ip("2001:db8::1");
        for _ in 0..30 {
            t.hit(a, now);
        }
        let top = t.top(now);
        assert_eq!(top.len(), 1, "{top:?}");
        assert_eq!(top[0].ip, a);
        assert!(top[0].hot);
        assert_eq!(t.sweep(now + Duration::from_secs(5)), 0);
        // Leaf first, then each prefix in turn (a father gets its time
        // again when its last child goes).
        let mut gone = 0;
        for s in 1..40 {
            gone += t.sweep(now + Duration::from_secs(10 * s));
        }
        assert_eq!(gone, 16);
        assert!(t.top(now).is_empty());
    }
}
