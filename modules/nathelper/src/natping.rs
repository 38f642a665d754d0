//! Keepalives to registered user agents behind NAT (`natping_interval`):
//! every interval, each valid contact the registrar marked as behind NAT
//! (usrloc's `nat_bflag`; every contact with `ping_nated_only=0`) gets a
//! 4-byte UDP datagram at the address its REGISTER came from, or, when the
//! contact carries the `sipping_bflag` branch flag, a SIP OPTIONS from
//! `sipping_from`. Either keeps the NAT's binding open, so requests reach
//! the user agent.

use sr_mod_usrloc::contact::{Contact, FL_NAT};
use sr_mod_usrloc::Usrloc;
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
}

static SEQ: AtomicU64 = AtomicU64::new(1);

impl Pinger {
    /// Whether `c` is pinged.
    pub fn wanted(&self, c: &Contact, now: i64) -> bool {
        c.is_valid(now) && (!self.nated_only || c.flags & FL_NAT != 0)
    }

    /// Whether `c` gets a SIP request rather than a UDP datagram.
    pub fn sipping(&self, c: &Contact) -> bool {
        self.sipping_bflag.is_some_and(|b| c.cflags & (1 << b) != 0)
    }

    /// The SIP keepalive for `c`, sent from `local` (`host:port`).
    pub fn request(&self, c: &Contact, local: &str) -> String {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let m = &self.sipping_method;
        format!(
            "{m} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKnatping{n}\r\nFrom: <{from}>;tag=natping{n}\r\nTo: <{uri}>\r\nCall-ID: natping-{n}@{local}\r\nCSeq: 1 {m}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            uri = c.contact,
            from = self.sipping_from,
        )
    }

    /// One round: pings every contact it wants; how many were sent.
    pub fn round(&self, core: &dyn Core, ul: &Usrloc, now: i64) -> usize {
        let mut sent = 0;
        for d in ul.domains() {
            let Ok(all) = d.dump() else { continue };
            for c in all.iter().flat_map(|(_, cs)| cs.iter()) {
                if !self.wanted(c, now) {
                    continue;
                }
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
                    self.request(c, &local).into_bytes()
                } else {
                    vec![0u8; 4]
                };
                if core.send(&dest, &data).is_ok() {
                    sent += 1;
                }
            }
        }
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
        let r = p.request(&c, "192.0.2.1:5060");
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
