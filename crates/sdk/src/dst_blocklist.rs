//! The destination blocklist (Kamailio's `dst_blocklist`): addresses that
//! failed recently — a send or connect error, a transaction timeout, a
//! `503` — and are not sent to until their entry expires.
//!
//! The core owns one ([`crate::Core::dst_blocklist`]) when
//! `use_dst_blocklist` is on; tm adds timed-out and 503 destinations and
//! looks each branch up, the core's stateless `forward()` looks up too, and
//! the blst module and the `dst_blocklist.*` RPC commands read and change
//! it. No I/O here: time is passed in.

use crate::msg::Proto;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entry flag: the address is IPv6 (set by the list itself).
pub const IS_IPV6: u8 = 0x01;
/// Entry flag: sending failed.
pub const ERR_SEND: u8 = 0x02;
/// Entry flag: connecting failed (stream transports).
pub const ERR_CONNECT: u8 = 0x04;
/// Entry flag: an ICMP error was received (not used).
pub const ICMP_RCVD: u8 = 0x08;
/// Entry flag: a SIP transaction timed out.
pub const ERR_TIMEOUT: u8 = 0x10;
/// Entry flag: a 503 reply came from it.
pub const ERR_503: u8 = 0x20;
/// Entry flag: added by the script or an administrator (`blst_add`).
pub const ADM_PROHIBITED: u8 = 0x40;
/// Entry flag: never expires.
pub const PERMANENT: u8 = 0x80;

/// How the list is set up (the core's `dst_blocklist_*` globals).
#[derive(Debug, Clone)]
pub struct Config {
    /// `dst_blocklist_expire`: how long an entry lives by default.
    pub expire: Duration,
    /// `dst_blocklist_mem`, in bytes: the most the entries may take, as
    /// Kamailio counts them (20 bytes plus the address's length each).
    pub max_bytes: usize,
    /// `dst_blocklist_{udp,tcp,tls,sctp}_imask`: error flags never added
    /// for a transport, indexed by [`Proto::number`].
    pub imask: [u8; 8],
}

impl Default for Config {
    fn default() -> Self {
        Config {
            expire: Duration::from_secs(60),
            max_bytes: 250 * 1024,
            imask: [0; 8],
        }
    }
}

/// One blocklisted destination, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Transport.
    pub proto: Proto,
    /// Address and port.
    pub addr: SocketAddr,
    /// Why it is there (the `ERR_*`/`ADM_PROHIBITED` bits, and `IS_IPV6`).
    pub flags: u8,
    /// Whole seconds left before it expires.
    pub expires_in: u64,
}

/// Why an entry was not added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddError {
    /// The error is one the message or the transport ignores.
    Ignored,
    /// `dst_blocklist_mem` is used up.
    Full,
}

/// The seconds of a message's `Retry-After` header (RFC 3261 20.33:
/// `delta-seconds` before any comment or parameter), if it has one.
pub fn retry_after(m: &sip_msg::Message<'_>) -> Option<u64> {
    let v = m
        .header(sip_msg::HeaderName::RetryAfter)?
        .value
        .trim_start();
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    v[..digits].parse().ok()
}

type Key = (Proto, IpAddr, u16);

/// The list; shared by every worker.
#[derive(Debug)]
pub struct DstBlocklist {
    cfg: Config,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Key, (u8, Option<Instant>)>,
    bytes: usize,
}

/// Kamailio's size of an entry: its fixed part and the address bytes.
fn entry_size(ip: &IpAddr) -> usize {
    20 + if ip.is_ipv6() { 16 } else { 4 }
}

impl DstBlocklist {
    /// An empty list.
    pub fn new(cfg: Config) -> DstBlocklist {
        DstBlocklist {
            cfg,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds (or renews) `addr` over `proto` for `err` (one of the `ERR_*`
    /// bits, or `ADM_PROHIBITED`), for `timeout` (the configured expiry
    /// when `None` or zero), unless `ignore` (the message's ignore mask)
    /// or the transport's mask covers `err`. An entry that exists gets the
    /// new flag too and the new expiry.
    pub fn add(
        &self,
        proto: Proto,
        addr: SocketAddr,
        err: u8,
        timeout: Option<Duration>,
        ignore: u8,
        now: Instant,
    ) -> Result<(), AddError> {
        let imask = self.cfg.imask[usize::from(proto.number()) & 7];
        if err & (ignore | imask) != 0 {
            return Err(AddError::Ignored);
        }
        self.force_add(proto, addr, err, timeout, now)
    }

    /// Adds (or renews) as [`DstBlocklist::add`], whatever the ignore
    /// masks say (`blst_add`, `dst_blocklist.add`).
    pub fn force_add(
        &self,
        proto: Proto,
        addr: SocketAddr,
        err: u8,
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<(), AddError> {
        // (At most ten years: an expiry from a header or the script must
        // not overflow the clock.)
        let ttl = timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(self.cfg.expire)
            .min(Duration::from_secs(10 * 365 * 86400));
        let flags = err | if addr.is_ipv6() { IS_IPV6 } else { 0 };
        let expires = if flags & PERMANENT != 0 {
            None
        } else {
            now.checked_add(ttl)
        };
        let key = (proto, addr.ip(), addr.port());
        let mut e = self.lock();
        if let Some(x) = e.map.get_mut(&key) {
            x.0 |= flags;
            x.1 = if x.0 & PERMANENT != 0 { None } else { expires };
            return Ok(());
        }
        let size = entry_size(&addr.ip());
        if e.bytes + size > self.cfg.max_bytes {
            Self::sweep(&mut e, now);
            if e.bytes + size > self.cfg.max_bytes {
                return Err(AddError::Full);
            }
        }
        e.map.insert(key, (flags, expires));
        e.bytes += size;
        Ok(())
    }

    /// The reasons of the live entry for `addr` over `proto` (its flags
    /// but `IS_IPV6`; 0: not blocklisted). An entry without a reason does
    /// not block.
    pub fn check(&self, proto: Proto, addr: SocketAddr, now: Instant) -> u8 {
        let e = self.lock();
        match e.map.get(&(proto, addr.ip(), addr.port())) {
            Some((f, exp)) if exp.is_none_or(|x| x > now) => *f & !IS_IPV6,
            _ => 0,
        }
    }

    /// Removes `addr` over `proto`; whether a live entry was there.
    pub fn remove(&self, proto: Proto, addr: SocketAddr, now: Instant) -> bool {
        let mut e = self.lock();
        let key = (proto, addr.ip(), addr.port());
        match e.map.remove(&key) {
            Some((_, exp)) => {
                e.bytes -= entry_size(&key.1);
                exp.is_none_or(|x| x > now)
            }
            None => false,
        }
    }

    /// Removes every entry but the permanent ones.
    pub fn clear(&self) {
        let mut e = self.lock();
        e.map.retain(|_, (f, _)| *f & PERMANENT != 0);
        e.bytes = e.map.keys().map(|k| entry_size(&k.1)).sum();
    }

    /// The live entries.
    pub fn entries(&self, now: Instant) -> Vec<Entry> {
        let mut e = self.lock();
        Self::sweep(&mut e, now);
        e.map
            .iter()
            .map(|((proto, ip, port), (flags, exp))| Entry {
                proto: *proto,
                addr: SocketAddr::new(*ip, *port),
                flags: *flags,
                expires_in: exp.map_or(0, |x| x.saturating_duration_since(now).as_secs()),
            })
            .collect()
    }

    /// Bytes the entries take, as `dst_blocklist.mem_info` reports them.
    pub fn used_bytes(&self, now: Instant) -> usize {
        let mut e = self.lock();
        Self::sweep(&mut e, now);
        e.bytes
    }

    /// Drops expired entries (Kamailio's garbage collection timer).
    pub fn collect(&self, now: Instant) {
        Self::sweep(&mut self.lock(), now);
    }

    fn sweep(e: &mut Entries, now: Instant) {
        let before = e.map.len();
        e.map.retain(|_, (_, exp)| exp.is_none_or(|x| x > now));
        if e.map.len() != before {
            e.bytes = e.map.keys().map(|k| entry_size(&k.1)).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entries_expire_renew_and_merge_flags() {
        let l = DstBlocklist::new(Config::default());
        let t0 = Instant::now();
        let d = a("127.0.0.1:5070");
        assert_eq!(l.check(Proto::Udp, d, t0), 0);
        l.add(Proto::Udp, d, ERR_TIMEOUT, None, 0, t0).unwrap();
        assert_eq!(l.check(Proto::Udp, d, t0), ERR_TIMEOUT);
        // Another transport is another destination.
        assert_eq!(l.check(Proto::Tcp, d, t0), 0);
        let t1 = t0 + Duration::from_secs(50);
        l.add(Proto::Udp, d, ERR_503, Some(Duration::from_secs(30)), 0, t1)
            .unwrap();
        assert_eq!(l.check(Proto::Udp, d, t1), ERR_TIMEOUT | ERR_503);
        let e = l.entries(t1);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].expires_in, 30);
        assert_eq!(l.check(Proto::Udp, d, t1 + Duration::from_secs(31)), 0);
        assert!(l.entries(t1 + Duration::from_secs(31)).is_empty());
        assert_eq!(l.used_bytes(t1 + Duration::from_secs(31)), 0);
    }

    #[test]
    fn any_expiry_is_taken_without_overflow() {
        let l = DstBlocklist::new(Config::default());
        let t = Instant::now();
        let d = a("127.0.0.1:5080");
        l.add(Proto::Udp, d, ERR_503, Some(Duration::MAX), 0, t)
            .unwrap();
        assert_eq!(l.check(Proto::Udp, d, t), ERR_503);
        assert!(l.entries(t)[0].expires_in >= 9 * 365 * 86400);
    }

    #[test]
    fn ignore_masks_keep_errors_out() {
        let mut cfg = Config::default();
        cfg.imask[usize::from(Proto::Tcp.number())] = ERR_CONNECT;
        let l = DstBlocklist::new(cfg);
        let t = Instant::now();
        let d = a("[::1]:5060");
        assert_eq!(
            l.add(Proto::Udp, d, ERR_503, None, ERR_503, t),
            Err(AddError::Ignored)
        );
        assert_eq!(
            l.add(Proto::Tcp, d, ERR_CONNECT, None, 0, t),
            Err(AddError::Ignored)
        );
        l.add(Proto::Tcp, d, ERR_SEND, None, 0, t).unwrap();
        assert_eq!(l.check(Proto::Tcp, d, t), ERR_SEND);
        // An IPv6 entry without a reason blocks nothing either.
        let e = a("[::1]:5070");
        l.force_add(Proto::Udp, e, 0, None, t).unwrap();
        assert_eq!(l.check(Proto::Udp, e, t), 0);
        assert_eq!(l.used_bytes(t), 72);
        assert!(l.remove(Proto::Tcp, d, t));
        assert!(!l.remove(Proto::Tcp, d, t));
    }

    #[test]
    fn the_memory_limit_refuses_new_entries() {
        let l = DstBlocklist::new(Config {
            max_bytes: 48,
            ..Config::default()
        });
        let t = Instant::now();
        l.add(Proto::Udp, a("10.0.0.1:1"), ERR_SEND, None, 0, t)
            .unwrap();
        l.add(Proto::Udp, a("10.0.0.2:1"), ERR_SEND, None, 0, t)
            .unwrap();
        assert_eq!(
            l.add(Proto::Udp, a("10.0.0.3:1"), ERR_SEND, None, 0, t),
            Err(AddError::Full)
        );
        // Expired entries make room.
        let later = t + Duration::from_secs(61);
        l.add(Proto::Udp, a("10.0.0.3:1"), ERR_SEND, None, 0, later)
            .unwrap();
        l.clear();
        assert!(l.entries(later).is_empty());
    }
}
