//! Keepalives to registered user agents behind NAT (`natping_interval`):
//! every interval, each valid contact the registrar marked as behind NAT
//! (usrloc's `nat_bflag`; every contact with `ping_nated_only=0`) gets a
//! 4-byte UDP datagram at the address its REGISTER came from, or, when the
//! contact carries the `sipping_bflag` branch flag, a SIP OPTIONS from
//! `sipping_from`. Either keeps the NAT's binding open, so requests reach
//! the user agent. With `keepalive_timeout`, a contact pinged with SIP
//! that answered none of its pings for that many seconds is removed from
//! the location table (the replies to the pings are taken here and go no
//! further).

use sr_mod_usrloc::contact::{Contact, FL_NAT};
use sr_mod_usrloc::Usrloc;
use sr_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What `keepalive_timeout` needs to know between rounds.
#[derive(Debug, Default)]
pub struct Answers {
    /// SIP pings out: their number → (the contact's ruid, when sent).
    sent: Mutex<HashMap<u64, (String, i64)>>,
    /// Per contact (ruid): when it last answered (or was first pinged).
    seen: Mutex<HashMap<String, i64>>,
}

impl Answers {
    /// A reply with this Call-ID: true when it answers one of our pings
    /// (the contact is then alive as of `now`).
    pub fn answer(&self, call_id: &str, now: i64) -> bool {
        let Some(n) = call_id
            .strip_prefix(call_id_prefix())
            .and_then(|r| r.split('@').next())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return false;
        };
        let ruid = self.sent.lock().ok().and_then(|mut s| s.remove(&n));
        if let (Some((ruid, _)), Ok(mut seen)) = (ruid, self.seen.lock()) {
            seen.insert(ruid, now);
        }
        true
    }
}

/// The settings of the pinger.
#[derive(Debug, Clone)]
pub struct Pinger {
    /// `ping_nated_only`.
    pub nated_only: bool,
    /// `sipping_bflag` (none: only UDP pings).
    pub sipping_bflag: Option<u32>,
    /// `sipping_from`.
    pub sipping_from: String,
    /// `sipping_method` (OPTIONS).
    pub sipping_method: String,
    /// `keepalive_timeout` in seconds (0: contacts are never removed).
    pub keepalive_timeout: i64,
    /// The pings' answers.
    pub answers: Arc<Answers>,
}

static SEQ: AtomicU64 = AtomicU64::new(1);

/// The start of our pings' Call-IDs: `natping-` and a key drawn at start,
/// so that only answers to this process's pings are taken for them.
fn call_id_prefix() -> &'static str {
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        format!("natping-{:016x}-", h.finish())
    })
}

impl Pinger {
    /// Whether `c` is pinged.
    pub fn wanted(&self, c: &Contact, now: i64) -> bool {
        c.is_valid(now) && (!self.nated_only || c.flags & FL_NAT != 0)
    }

    /// Whether `c` gets a SIP request rather than a UDP datagram.
    pub fn sipping(&self, c: &Contact) -> bool {
        self.sipping_bflag.is_some_and(|b| c.cflags & (1 << b) != 0)
    }

    /// The SIP keepalive for `c`, sent from `local` (`host:port`), and its
    /// number (in its Call-ID).
    pub fn request(&self, c: &Contact, local: &str) -> (u64, String) {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let m = &self.sipping_method;
        let text = format!(
            "{m} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKnatping{n}\r\nFrom: <{from}>;tag=natping{n}\r\nTo: <{uri}>\r\nCall-ID: {prefix}{n}@{local}\r\nCSeq: 1 {m}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            uri = c.contact,
            from = self.sipping_from,
            prefix = call_id_prefix(),
        );
        (n, text)
    }

    /// With `keepalive_timeout`: whether `c` (pinged with SIP) has gone
    /// unanswered for longer than it, counting from its first ping.
    fn silent_too_long(&self, c: &Contact, now: i64) -> bool {
        if self.keepalive_timeout <= 0 {
            return false;
        }
        let Ok(mut seen) = self.answers.seen.lock() else {
            return false;
        };
        // A registration refresh counts as a sign of life, as in Kamailio.
        let last = seen.entry(c.ruid.clone()).or_insert(now);
        *last = (*last).max(c.last_modified);
        now - *last > self.keepalive_timeout
    }

    /// Forgets pings never answered long ago and contacts no longer there.
    fn prune(&self, live: &std::collections::HashSet<String>, now: i64) {
        let keep_for = self.keepalive_timeout.max(1) * 2;
        if let Ok(mut s) = self.answers.sent.lock() {
            s.retain(|_, (_, at)| now - *at <= keep_for);
        }
        if let Ok(mut seen) = self.answers.seen.lock() {
            seen.retain(|ruid, _| live.contains(ruid));
        }
    }

    /// One round: pings every contact it wants; how many were sent.
    pub fn round(&self, core: &dyn Core, ul: &Usrloc, now: i64) -> usize {
        let mut sent = 0;
        let mut live = std::collections::HashSet::new();
        for d in ul.domains() {
            let Ok(all) = d.dump() else { continue };
            for c in all.iter().flat_map(|(_, cs)| cs.iter()) {
                if !self.wanted(c, now) {
                    continue;
                }
                if self.sipping(c) && self.silent_too_long(c, now) {
                    lm_info!(
                        "nathelper: {} ({}) answered no keepalive for {} s: removed",
                        c.aor,
                        c.contact,
                        self.keepalive_timeout
                    );
                    let _ = d.with_record(&c.aor, now, |r| Ok(r.remove(&c.ruid)));
                    continue;
                }
                live.insert(c.ruid.clone());
                let target = c.received.as_deref().unwrap_or(&c.contact);
                let Ok(dest) = core.resolve(target, None) else {
                    continue;
                };
                if dest.proto != Proto::Udp {
                    // Streams keep their own bindings open.
                    continue;
                }
                let data = if self.sipping(c) {
                    let local = core
                        .local_addr(Proto::Udp, Some(dest.addr))
                        .map(|(h, p)| format!("{h}:{p}"))
                        .unwrap_or_default();
                    let (n, text) = self.request(c, &local);
                    if let Ok(mut s) = self.answers.sent.lock() {
                        s.insert(n, (c.ruid.clone(), now));
                    }
                    text.into_bytes()
                } else {
                    vec![0u8; 4]
                };
                if core.send(&dest, &data).is_ok() {
                    sent += 1;
                }
            }
        }
        self.prune(&live, now);
        sent
    }
}

/// Starts the pinger on the timer thread.
pub fn start(core: &dyn Core, every: std::time::Duration, p: Pinger) -> Result<(), String> {
    let ul = bind::<Usrloc>(core, sr_mod_usrloc::USRLOC_API)
        .ok_or("nathelper: natping_interval needs the usrloc module")?;
    let handle = core
        .handle()
        .ok_or("nathelper: no core handle for the pinger")?;
    core.add_timer(
        "nathelper-natping",
        every,
        Arc::new(move || {
            let Some(core) = handle.upgrade() else { return };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            p.round(&*core, &ul, now);
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_is_pinged_and_how() {
        let p = Pinger {
            nated_only: true,
            sipping_bflag: Some(7),
            sipping_from: "sip:pinger@example.com".into(),
            sipping_method: "OPTIONS".into(),
            keepalive_timeout: 0,
            answers: Arc::default(),
        };
        let mut c = Contact::new("bob", "sip:bob@10.0.0.7:5060");
        c.expires = 2_000;
        assert!(!p.wanted(&c, 1_000), "not behind NAT");
        c.flags |= FL_NAT;
        assert!(p.wanted(&c, 1_000));
        assert!(!p.wanted(&c, 3_000), "expired");
        assert!(!p.sipping(&c));
        c.cflags |= 1 << 7;
        assert!(p.sipping(&c));
        let (n, r) = p.request(&c, "192.0.2.1:5060");
        let id = format!("{}{n}@192.0.2.1:5060", call_id_prefix());
        assert!(r.contains(&format!("Call-ID: {id}\r\n")));
        assert!(p.answers.answer(&id, 5));
        assert!(!p.answers.answer(&format!("natping-{n}@192.0.2.1:5060"), 5));
        assert!(!p.answers.answer("a84b4c76e66710@pc33", 5));
        assert!(r.starts_with("OPTIONS sip:bob@10.0.0.7:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnatping"), "{r}");
        assert!(r.contains("From: <sip:pinger@example.com>;tag=natping"));
        let all = Pinger {
            nated_only: false,
            ..p
        };
        let plain = Contact {
            expires: 2_000,
            ..Contact::new("x", "sip:x@192.0.2.9")
        };
        assert!(all.wanted(&plain, 1_000));
    }
}
