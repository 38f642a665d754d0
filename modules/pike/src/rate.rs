//! The rate of requests per address, without I/O: counts in windows of
//! `sampling_time_unit`, the rate estimated over the last full window
//! (the current window's count plus the previous one's in proportion to
//! how much of it is still within one unit of now). Tested with virtual
//! time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Counts {
    window: Instant,
    cur: u32,
    prev: u32,
    last: Instant,
    /// Over the limit at the last request.
    hot: bool,
}

/// The per-address counters.
#[derive(Debug)]
pub struct Rates {
    unit: Duration,
    density: u32,
    keep: Duration,
    /// Shards by address, each with its lock: a flood from many
    /// (spoofed) addresses does not make every worker wait on one lock,
    /// and a sweep holds one shard at a time.
    ips: Vec<Mutex<HashMap<IpAddr, Counts>>>,
}

const SHARDS: usize = 16;

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

impl Rates {
    /// `unit`: `sampling_time_unit`; `density`: `reqs_density_per_unit`;
    /// `keep`: `remove_latency` (how long an address is remembered after
    /// its last request).
    pub fn new(unit: Duration, density: u32, keep: Duration) -> Rates {
        Rates {
            unit: unit.max(Duration::from_millis(1)),
            density,
            keep,
            ips: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Counts one request from `ip` at `now`.
    pub fn hit(&self, ip: IpAddr, now: Instant) -> Verdict {
        let mut m = self.shard(ip).lock().unwrap_or_else(|e| e.into_inner());
        let c = m.entry(ip).or_insert(Counts {
            window: now,
            cur: 0,
            prev: 0,
            last: now,
            hot: false,
        });
        let since = now.saturating_duration_since(c.window);
        if since >= self.unit * 2 {
            *c = Counts {
                window: now,
                cur: 0,
                prev: 0,
                last: now,
                hot: false,
            };
        } else if since >= self.unit {
            c.prev = c.cur;
            c.cur = 0;
            c.window += self.unit;
        }
        c.cur = c.cur.saturating_add(1);
        c.last = now;
        let into = now.saturating_duration_since(c.window).as_secs_f64() / self.unit.as_secs_f64();
        let rate = f64::from(c.cur) + f64::from(c.prev) * (1.0 - into.min(1.0));
        let was = c.hot;
        c.hot = rate > f64::from(self.density);
        match (was, c.hot) {
            (_, false) => Verdict::Ok,
            (false, true) => Verdict::Started,
            (true, true) => Verdict::Block,
        }
    }

    /// Forgets addresses quiet for `remove_latency`; how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let keep = self.keep.max(self.unit * 2);
        let mut gone = 0;
        for s in &self.ips {
            let mut m = s.lock().unwrap_or_else(|e| e.into_inner());
            let before = m.len();
            m.retain(|_, c| now.saturating_duration_since(c.last) < keep);
            gone += before - m.len();
        }
        gone
    }

    fn shard(&self, ip: IpAddr) -> &Mutex<HashMap<IpAddr, Counts>> {
        let h = match ip {
            IpAddr::V4(v4) => u32::from(v4).rotate_right(8) as usize,
            IpAddr::V6(v6) => (u128::from(v6) >> 64) as usize ^ u128::from(v6) as usize,
        };
        &self.ips[h % SHARDS]
    }

    /// The addresses remembered, busiest first.
    pub fn top(&self, now: Instant) -> Vec<Entry> {
        let keep = self.keep.max(self.unit * 2);
        let mut v: Vec<Entry> = Vec::new();
        for s in &self.ips {
            let m = s.lock().unwrap_or_else(|e| e.into_inner());
            v.extend(m.iter().map(|(ip, c)| {
                Entry {
                    ip: *ip,
                    prev: c.prev,
                    cur: c.cur,
                    expires: keep
                        .saturating_sub(now.saturating_duration_since(c.last))
                        .as_secs(),
                    hot: c.hot,
                }
            }));
        }
        v.sort_by(|a, b| b.cur.cmp(&a.cur).then(a.ip.cmp(&b.ip)));
        v
    }
}

/// One address as `pike.top` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The address.
    pub ip: IpAddr,
    /// Requests in the previous window.
    pub prev: u32,
    /// Requests in the current window.
    pub cur: u32,
    /// Seconds until it is forgotten if it sends nothing more.
    pub expires: u64,
    /// Over the limit at its last request.
    pub hot: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_flood_is_blocked_and_a_calm_address_is_not() {
        let t0 = Instant::now();
        // 16 per 2 s, as the stock configuration sets it.
        let r = Rates::new(MS * 2000, 16, MS * 4000);
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        for i in 0..16 {
            assert_eq!(r.hit(a, t0 + MS * i), Verdict::Ok, "request {i}");
        }
        assert_eq!(r.hit(a, t0 + MS * 20), Verdict::Started);
        assert_eq!(r.hit(a, t0 + MS * 30), Verdict::Block);
        // Another address is counted on its own.
        assert_eq!(r.hit(b, t0 + MS * 21), Verdict::Ok);
        // Still over the limit early in the next window (the previous one
        // counts in proportion).
        assert_eq!(r.hit(a, t0 + MS * 2100), Verdict::Block);
        // After two quiet units, a clean slate.
        assert_eq!(r.hit(a, t0 + MS * 6200), Verdict::Ok);
    }

    #[test]
    fn a_steady_rate_under_the_limit_passes() {
        let t0 = Instant::now();
        let r = Rates::new(MS * 1000, 10, MS * 5000);
        let a = ip("2001:db8::1");
        // 8 a second for 10 seconds.
        for i in 0..80u32 {
            assert_eq!(r.hit(a, t0 + MS * (125 * i)), Verdict::Ok, "request {i}");
        }
    }

    #[test]
    fn many_addresses_are_counted_apart() {
        let t0 = Instant::now();
        let r = Rates::new(MS * 1000, 3, MS * 5000);
        // 1,000 addresses, three requests each: none over the limit; a
        // fourth from each is.
        let ips: Vec<IpAddr> = (0..1000u32)
            .map(|i| IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + i)))
            .collect();
        for _ in 0..3 {
            for ip in &ips {
                assert_eq!(r.hit(*ip, t0), Verdict::Ok);
            }
        }
        for ip in &ips {
            assert_eq!(r.hit(*ip, t0), Verdict::Started);
        }
        assert_eq!(r.top(t0).len(), 1000);
        assert_eq!(r.sweep(t0 + MS * 6000), 1000);
    }

    #[test]
    fn quiet_addresses_are_forgotten() {
        let t0 = Instant::now();
        let r = Rates::new(MS * 1000, 10, MS * 3000);
        r.hit(ip("192.0.2.1"), t0);
        r.hit(ip("192.0.2.2"), t0 + MS * 2500);
        assert_eq!(r.sweep(t0 + MS * 3100), 1);
        let top = r.top(t0 + MS * 3100);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].ip, ip("192.0.2.2"));
        assert_eq!(top[0].expires, 2, "4 s after its last request at 2.5 s");
    }
}
