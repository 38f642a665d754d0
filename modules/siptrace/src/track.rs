//! Transactions traced as a whole (`sip_trace()` in transaction mode):
//! found again by the branch parameters of their Vias in every message
//! received and sent, each message traced once (retransmissions are not).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a transaction is followed after its last message (longer than
/// any SIP transaction lives: 64·T1 is 32 s).
pub const KEEP: Duration = Duration::from_secs(40);

/// Where a traced transaction's messages go.
#[derive(Debug)]
pub struct Entry {
    /// The copy's destination (`None`: the database only).
    pub copy_to: Option<SocketAddr>,
    /// The HEPv3 correlation id.
    pub cid: Option<String>,
    /// Fingerprints of the messages traced (retransmissions are not).
    seen: HashSet<u64>,
    until: Instant,
}

/// The traced transactions, by branch.
#[derive(Debug, Default)]
pub struct Tracked {
    by_branch: Mutex<HashMap<String, Arc<Mutex<Entry>>>>,
    count: AtomicUsize,
}

fn fingerprint(b: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

impl Tracked {
    /// Whether none is followed (read without the lock, on every message).
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// Follows the transaction of `branch`, `first` (its request) already
    /// traced.
    pub fn add(
        &self,
        branch: &str,
        copy_to: Option<SocketAddr>,
        cid: Option<String>,
        first: &[u8],
    ) {
        let mut seen = HashSet::new();
        seen.insert(fingerprint(first));
        let e = Arc::new(Mutex::new(Entry {
            copy_to,
            cid,
            seen,
            until: Instant::now() + KEEP,
        }));
        if let Ok(mut m) = self.by_branch.lock() {
            m.insert(branch.to_string(), e);
            self.count.store(m.len(), Ordering::Relaxed);
        }
    }

    /// Whether `branch` is followed.
    pub fn has(&self, branch: &str) -> bool {
        !self.is_empty() && self.by_branch.lock().is_ok_and(|m| m.contains_key(branch))
    }

    /// Also follows `alias` (the branch this server gave a relayed
    /// request) as the transaction of `branch`.
    pub fn alias(&self, branch: &str, alias: &str) {
        if let Ok(mut m) = self.by_branch.lock() {
            if let Some(e) = m.get(branch).cloned() {
                m.insert(alias.to_string(), e);
                self.count.store(m.len(), Ordering::Relaxed);
            }
        }
    }

    /// The copy's destination and correlation id for a message of the
    /// transaction of `branch`, unless that message was traced already.
    pub fn first_time(
        &self,
        branch: &str,
        msg: &[u8],
    ) -> Option<(Option<SocketAddr>, Option<String>)> {
        let e = self.by_branch.lock().ok()?.get(branch).cloned()?;
        let mut e = e.lock().ok()?;
        e.until = Instant::now() + KEEP;
        if !e.seen.insert(fingerprint(msg)) {
            return None;
        }
        Some((e.copy_to, e.cid.clone()))
    }

    /// Forgets the transactions quiet for [`KEEP`].
    pub fn sweep(&self) {
        let now = Instant::now();
        if let Ok(mut m) = self.by_branch.lock() {
            m.retain(|_, e| e.lock().is_ok_and(|e| e.until > now));
            self.count.store(m.len(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_reported_once_and_aliases_share_the_entry() {
        let t = Tracked::default();
        assert!(t.is_empty());
        t.add("z9hG4bKa", None, Some("c".into()), b"INVITE");
        t.alias("z9hG4bKa", "z9hG4bKproxy");
        assert!(t.has("z9hG4bKproxy"));
        assert_eq!(t.first_time("z9hG4bKproxy", b"INVITE"), None);
        assert_eq!(
            t.first_time("z9hG4bKproxy", b"SIP/2.0 180"),
            Some((None, Some("c".into())))
        );
        assert_eq!(t.first_time("z9hG4bKa", b"SIP/2.0 180"), None);
        assert_eq!(t.first_time("other", b"x"), None);
        t.sweep();
        assert!(!t.is_empty());
    }
}
