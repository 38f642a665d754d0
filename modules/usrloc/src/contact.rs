//! A stored contact (Kamailio's `ucontact_t`) and the helpers around it:
//! method bitmasks, AoR splitting, unique record ids.

use std::sync::atomic::{AtomicU64, Ordering};

/// Contact flag: the UA is behind NAT (set from `nat_bflag`).
pub const FL_NAT: u32 = 1 << 0;
/// Contact flag: kept in memory only, never written to the database.
pub const FL_MEM: u32 = 1 << 1;

/// Contact flag: the contact came from another node (dmq_usrloc), so it
/// is not replicated again.
pub const FL_RPL: u32 = 1 << 6;

/// `q` when the Contact had none (Kamailio's `Q_UNSPECIFIED`).
pub const Q_UNSPECIFIED: i32 = -1;

/// Whether a binding with absolute expiry `expires` (0: never) is valid
/// at `now`.
pub fn valid_at(expires: i64, now: i64) -> bool {
    expires == 0 || expires > now
}

/// Seconds left at `now` of a binding with absolute expiry `expires` (0
/// for permanent or expired ones).
pub fn remaining_at(expires: i64, now: i64) -> i64 {
    if expires == 0 {
        0
    } else {
        (expires - now).max(0)
    }
}

/// One binding of an address-of-record.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// The address-of-record (`user@domain`, or `user` without `use_domain`).
    pub aor: String,
    /// Unique record id.
    pub ruid: String,
    /// The contact URI.
    pub contact: String,
    /// Where the REGISTER really came from (`received_avp`), as a URI.
    pub received: Option<String>,
    /// The Path vector (RFC 3327) as `<uri>,<uri>`.
    pub path: Option<String>,
    /// Absolute expiry in unix seconds; 0 never expires.
    pub expires: i64,
    /// q in thousandths, or [`Q_UNSPECIFIED`].
    pub q: i32,
    /// Call-ID of the last REGISTER.
    pub callid: String,
    /// CSeq of the last REGISTER.
    pub cseq: u32,
    /// Last change, unix seconds.
    pub last_modified: i64,
    /// usrloc flags ([`FL_NAT`], ...).
    pub flags: u32,
    /// Branch flags to restore on lookup.
    pub cflags: u32,
    /// User-Agent.
    pub user_agent: String,
    /// The local socket it registered through (`udp:ip:port`).
    pub socket: Option<String>,
    /// Methods it accepts (bitmask of `METHOD_*`; all when it sent no Allow).
    pub methods: u32,
    /// `+sip.instance`.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: u32,
    /// Connection id for stream transports.
    pub connection_id: i64,
    /// Keepalive flag.
    pub keepalive: i32,
}

impl Contact {
    /// A contact with everything else at its default.
    pub fn new(aor: &str, contact: &str) -> Contact {
        Contact {
            aor: aor.to_string(),
            ruid: new_ruid(),
            contact: contact.to_string(),
            received: None,
            path: None,
            expires: 0,
            q: Q_UNSPECIFIED,
            callid: "Default-Call-ID".to_string(),
            cseq: 1,
            last_modified: 0,
            flags: 0,
            cflags: 0,
            user_agent: String::new(),
            socket: None,
            methods: METHODS_ALL,
            instance: None,
            reg_id: 0,
            connection_id: 0,
            keepalive: 0,
        }
    }

    /// Whether it is still valid at `now` (Kamailio's `VALID_CONTACT`).
    pub fn is_valid(&self, now: i64) -> bool {
        valid_at(self.expires, now)
    }

    /// Seconds left at `now` (0 for permanent or expired ones).
    pub fn remaining(&self, now: i64) -> i64 {
        remaining_at(self.expires, now)
    }

    /// q as Kamailio writes it (`0.5`), `None` when unspecified.
    pub fn q_str(&self) -> Option<String> {
        if self.q < 0 {
            return None;
        }
        let (i, f) = (self.q / 1000, self.q % 1000);
        let mut s = format!("{i}.{f:03}");
        while s.ends_with('0') && !s.ends_with(".0") {
            s.pop();
        }
        Some(s)
    }
}

/// Every method (no `Allow` header).
pub const METHODS_ALL: u32 = u32::MAX;

/// Kamailio's method bits usrloc keeps, by name (the ids up to KDMQ).
const METHOD_BITS: &[(&str, u32)] = sr_sdk::msg::METHOD_IDS.split_at(15).0;

/// Bit for any method not in Kamailio's list (`METHOD_OTHER`).
pub const METHOD_OTHER: u32 = 1 << 15;

/// The bit of a method name.
pub fn method_bit(name: &str) -> u32 {
    METHOD_BITS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or(METHOD_OTHER, |(_, b)| *b)
}

/// The bitmask of an `Allow` list (method names).
pub fn methods_mask<'a>(names: impl IntoIterator<Item = &'a str>) -> u32 {
    names
        .into_iter()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .fold(0, |m, n| m | method_bit(n))
}

/// Splits an AoR into (username, domain).
pub fn split_aor(aor: &str, use_domain: bool) -> (&str, Option<&str>) {
    if use_domain {
        match aor.rsplit_once('@') {
            Some((u, d)) => (u, Some(d)),
            None => (aor, None),
        }
    } else {
        (aor, None)
    }
}

static RUID_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new unique record id: `uloc-<start time>-<pid>-<counter>`.
pub fn new_ruid() -> String {
    // `uloc-<start time>-<pid>-`, formatted once.
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        format!("uloc-{start:x}-{:x}-", std::process::id())
    });
    let n = RUID_SEQ.fetch_add(1, Ordering::Relaxed) + 1;
    let mut ruid = String::with_capacity(prefix.len() + 20);
    ruid.push_str(prefix);
    sr_sdk::sip_msg::text::push_dec(&mut ruid, n);
    ruid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            methods_mask(["INVITE", " bye", "FOO"]),
            1 | 8 | METHOD_OTHER
        );
        assert_eq!(split_aor("a@b@c", true), ("a@b", Some("c")));
        assert_eq!(split_aor("a@b", false), ("a@b", None));
        let mut c = Contact::new("a", "sip:a@h");
        assert_eq!(c.q_str(), None);
        c.q = 500;
        assert_eq!(c.q_str().unwrap(), "0.5");
        c.q = 1000;
        assert_eq!(c.q_str().unwrap(), "1.0");
        c.q = 125;
        assert_eq!(c.q_str().unwrap(), "0.125");
        assert_ne!(new_ruid(), new_ruid());
        // uloc-<hex start>-<hex pid>-<decimal counter>, as Kamailio's.
        let r = new_ruid();
        let parts: Vec<&str> = r.split('-').collect();
        assert_eq!(parts.len(), 4, "{r}");
        assert_eq!(parts[0], "uloc");
        assert!(
            u64::from_str_radix(parts[1], 16).is_ok() && u32::from_str_radix(parts[2], 16).is_ok()
        );
        assert!(parts[3].parse::<u64>().is_ok_and(|n| n > 0), "{r}");
        c.expires = 100;
        assert!(c.is_valid(99) && !c.is_valid(100));
        assert_eq!(c.remaining(40), 60);
    }
}
