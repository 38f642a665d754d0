//! The endpoints kept alive: a source address (`sip:ip:port`) with the
//! local socket it reached, until its registration and subscription
//! expire; and the requests `nat_keepalive()` marked, waiting for their
//! 2xx reply.

use std::collections::HashMap;
use std::net::SocketAddr;

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The local socket its requests came in on (keepalives leave from it).
    pub socket: SocketAddr,
    /// When its registration ends (unix seconds; 0: none).
    pub registration: i64,
    /// When its subscription ends (0: none).
    pub subscription: i64,
}

/// What a marked request waits for.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The source URI.
    pub source: String,
    /// The local socket.
    pub socket: SocketAddr,
    /// REGISTER: the request's Contact URIs; `None` for SUBSCRIBE.
    pub contacts: Option<Vec<String>>,
    /// When it was marked.
    pub at: i64,
}

/// Requests waiting for their reply are forgotten after this long.
pub const PENDING_TTL: i64 = 64;

/// At most this many endpoints and marked requests are kept.
pub const MAX_ENTRIES: usize = 100_000;

/// The table.
#[derive(Debug, Default)]
pub struct Table {
    /// By source URI.
    pub endpoints: HashMap<String, Endpoint>,
    /// By (Call-ID, CSeq number, method).
    pub pending: HashMap<(String, u32, String), Pending>,
}

impl Table {
    /// A registration of `source` until `expire` (kept when later).
    pub fn register(&mut self, source: &str, socket: SocketAddr, expire: i64) {
        self.update(source, socket, |e| {
            e.registration = e.registration.max(expire)
        });
    }

    /// A subscription of `source` until `expire`.
    pub fn subscribe(&mut self, source: &str, socket: SocketAddr, expire: i64) {
        self.update(source, socket, |e| {
            e.subscription = e.subscription.max(expire)
        });
    }

    fn update(&mut self, source: &str, socket: SocketAddr, f: impl FnOnce(&mut Endpoint)) {
        if !self.endpoints.contains_key(source) && self.endpoints.len() >= MAX_ENTRIES {
            return;
        }
        let e = self
            .endpoints
            .entry(source.to_string())
            .or_insert(Endpoint {
                socket,
                registration: 0,
                subscription: 0,
            });
        f(e);
    }

    /// Marks a request; false when too many are waiting.
    pub fn mark(&mut self, key: (String, u32, String), p: Pending) -> bool {
        if self.pending.len() >= MAX_ENTRIES {
            return false;
        }
        self.pending.insert(key, p);
        true
    }

    /// Ends registrations and subscriptions past `now`, forgets endpoints
    /// with neither and marked requests older than [`PENDING_TTL`].
    pub fn purge(&mut self, now: i64) {
        self.endpoints.retain(|_, e| {
            if e.registration != 0 && now > e.registration {
                e.registration = 0;
            }
            if e.subscription != 0 && now > e.subscription {
                e.subscription = 0;
            }
            e.registration != 0 || e.subscription != 0
        });
        self.pending.retain(|_, p| now - p.at <= PENDING_TTL);
    }
}

/// The largest `expires` of the reply's Contacts that are among the
/// request's (`expires` parameters), or 0.
pub fn register_expire(
    request_contacts: &[String],
    reply_contacts: &[(String, Option<u32>)],
) -> u32 {
    request_contacts
        .iter()
        .filter_map(|c| {
            reply_contacts
                .iter()
                .find(|(u, _)| u == c)
                .and_then(|(_, e)| *e)
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock() -> SocketAddr {
        "127.0.0.1:5060".parse().unwrap()
    }

    #[test]
    fn endpoints_live_until_both_expire() {
        let mut t = Table::default();
        t.register("sip:1.2.3.4:5060", sock(), 100);
        t.subscribe("sip:1.2.3.4:5060", sock(), 50);
        t.register("sip:1.2.3.4:5060", sock(), 80);
        assert_eq!(t.endpoints["sip:1.2.3.4:5060"].registration, 100);
        t.purge(60);
        assert_eq!(t.endpoints["sip:1.2.3.4:5060"].subscription, 0);
        t.purge(101);
        assert!(t.endpoints.is_empty());
    }

    #[test]
    fn the_expiry_of_a_registration() {
        let req = vec!["sip:a@10.0.0.1".to_string(), "sip:b@10.0.0.1".to_string()];
        let rep = vec![
            ("sip:a@10.0.0.1".to_string(), Some(60)),
            ("sip:b@10.0.0.1".to_string(), Some(300)),
            ("sip:other@x".to_string(), Some(900)),
        ];
        assert_eq!(register_expire(&req, &rep), 300);
        assert_eq!(register_expire(&req[..1], &rep), 60);
        assert_eq!(register_expire(&["sip:z@y".to_string()], &rep), 0);
    }
}
