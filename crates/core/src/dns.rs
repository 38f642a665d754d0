//! Host name resolution (A/AAAA through the system resolver) with a small
//! cache. Literal addresses never touch the resolver.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a resolved name is kept.
const TTL: Duration = Duration::from_secs(60);

/// A cached SRV answer: the best target (if any) and when it expires.
type SrvEntry = (Option<(String, u16)>, Instant);

/// A resolver cache.
#[derive(Debug, Default)]
pub struct Dns {
    cache: Mutex<HashMap<String, (IpAddr, Instant)>>,
    srv: Mutex<HashMap<String, SrvEntry>>,
}

impl Dns {
    /// The address of `host` (an IP literal, bracketed IPv6 included, or a
    /// name).
    pub fn lookup(&self, host: &str) -> Result<IpAddr, String> {
        let h = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = h.parse::<IpAddr>() {
            return Ok(ip);
        }
        let key = h.to_ascii_lowercase();
        if let Ok(c) = self.cache.lock() {
            if let Some((ip, at)) = c.get(&key) {
                if at.elapsed() < TTL {
                    return Ok(*ip);
                }
            }
        }
        // A query can take seconds: send what this worker holds first.
        crate::udp_send_queue::flush();
        let ip = (key.as_str(), 0)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve '{h}': {e}"))?
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| format!("'{h}' has no address"))?;
        if let Ok(mut c) = self.cache.lock() {
            if c.len() > 10_000 {
                c.retain(|_, (_, at)| at.elapsed() < TTL);
            }
            c.insert(key, (ip, Instant::now()));
        }
        Ok(ip)
    }
}

impl Dns {
    /// The best SRV target of `name` (`_sip._udp.example.com`), if any,
    /// cached for the record's TTL (or 60 s when there is none).
    pub fn srv(&self, name: &str) -> Option<(String, u16)> {
        let key = name.to_ascii_lowercase();
        if let Ok(c) = self.srv.lock() {
            if let Some((v, until)) = c.get(&key) {
                if Instant::now() < *until {
                    return v.clone();
                }
            }
        }
        crate::udp_send_queue::flush();
        let records = crate::dns_srv::lookup_srv(&key);
        let ttl = records
            .first()
            .map_or(60, |r| u64::from(r.ttl).clamp(1, 3600));
        let best = records
            .into_iter()
            .find(|r| r.port != 0 && r.target != ".")
            .map(|r| (r.target, r.port));
        if let Ok(mut c) = self.srv.lock() {
            c.insert(
                key,
                (best.clone(), Instant::now() + Duration::from_secs(ttl)),
            );
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost() {
        let d = Dns::default();
        assert_eq!(d.lookup("[::1]").unwrap(), "::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            d.lookup("10.0.0.1").unwrap(),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert!(d.lookup("localhost").unwrap().is_loopback());
        assert!(d.lookup("no-such-host.invalid").is_err());
    }
}
