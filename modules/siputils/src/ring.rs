//! The "ringing" feature (Kamailio siputils' `ring.c`): after
//! `ring_insert_callid()` on a request, a 183 reply of that call within
//! `ring_timeout` seconds becomes a 180 without its body, so that with
//! parallel forking the caller hears one ring tone, not several early
//! media streams. The reply is rewritten as it arrives, before any route
//! sees it.

use sr_sdk::prelude::*;
use sr_sdk::sip_msg::{HeaderName, Message};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Kamailio keeps at most this much of a Call-ID.
const MAX_CALLID: usize = 255;

/// The Call-IDs inserted, oldest first.
#[derive(Default)]
struct Calls {
    order: VecDeque<(Instant, String)>,
    set: HashSet<String>,
}

/// The feature's state.
pub struct Ring {
    timeout: Arc<AtomicI64>,
    calls: Mutex<Calls>,
}

impl Ring {
    fn expire(&self, c: &mut Calls, now: Instant) {
        let keep = Duration::from_secs(self.timeout.load(Ordering::Relaxed).max(0) as u64);
        while let Some((t, _)) = c.order.front() {
            if now.duration_since(*t) <= keep {
                break;
            }
            if let Some((_, id)) = c.order.pop_front() {
                c.set.remove(&id);
            }
        }
    }

    /// Remembers a call (once) for `ring_timeout` seconds.
    pub fn insert(&self, callid: &str, now: Instant) {
        let id: String = callid.chars().take(MAX_CALLID).collect();
        let mut c = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        self.expire(&mut c, now);
        if c.set.insert(id.clone()) {
            c.order.push_back((now, id));
        }
    }

    /// Whether a call was inserted within `ring_timeout` seconds.
    pub fn contains(&self, callid: &str, now: Instant) -> bool {
        let id: String = callid.chars().take(MAX_CALLID).collect();
        let mut c = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        self.expire(&mut c, now);
        c.set.contains(&id)
    }

    /// The bytes to handle instead of `buf`: a 183 of a remembered call
    /// converted.
    fn filter(&self, buf: &[u8]) -> Option<Vec<u8>> {
        if !buf.starts_with(b"SIP/2.0 183 ") {
            return None;
        }
        let m = Message::parse(buf).ok()?;
        let cid = m.headers().iter().find(|h| h.name == HeaderName::CallId)?;
        if !self.contains(cid.value.trim(), Instant::now()) {
            return None;
        }
        conv183(buf, cid.end as usize)
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A 183 made a 180, as Kamailio's `conv183`: the status 180, the reason
/// `Ringing` padded with spaces to the old reason's length, the first
/// `Content-Length:` and `Content-Type:` lines (written so) taken out and
/// the body replaced by `Content-Length: 0`. `None` (left as it is) when
/// either header is missing or comes before the end of the Call-ID header
/// (`parsed_to`), as Kamailio refuses a message parsed that far.
pub fn conv183(buf: &[u8], parsed_to: usize) -> Option<Vec<u8>> {
    let mut d1 = find(buf, b"Content-Length:", 0)?;
    let mut d2 = find(buf, b"Content-Type:", 0)?;
    if d1 > d2 {
        std::mem::swap(&mut d1, &mut d2);
    }
    let e1 = find(buf, b"\r\n", d1)? + 2;
    let e2 = find(buf, b"\r\n", d2)? + 2;
    let eoh = find(buf, b"\r\n\r\n", 0)? + 2;
    if parsed_to > d1 || e1 > d2 || e2 > eoh {
        return None;
    }
    let line_end = find(buf, b"\r\n", 0)?;
    let reason_len = line_end.checked_sub(12)?;
    let mut out = Vec::with_capacity(buf.len());
    out.extend_from_slice(b"SIP/2.0 180 ");
    let ringing = b"Ringing";
    for i in 0..reason_len {
        out.push(*ringing.get(i).unwrap_or(&b' '));
    }
    out.extend_from_slice(&buf[line_end..d1]);
    out.extend_from_slice(&buf[e1..d2]);
    out.extend_from_slice(&buf[e2..eoh]);
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
}

/// Adds `ring_timeout`, `ring_insert_callid()` and the reply filter.
pub fn add(def: ModuleDef) -> ModuleDef {
    let timeout = params::int_cell(0);
    let ring = Arc::new(Ring {
        timeout: timeout.clone(),
        calls: Mutex::new(Calls::default()),
    });
    let (r1, r2) = (ring.clone(), ring);
    def.param("ring_timeout", ParamKind::Int, params::int(&timeout))
        .cmd(
            "ring_insert_callid",
            0,
            RouteType::REQUEST | RouteType::FAILURE,
            None,
            move |ctx, _| {
                // (Kamailio refuses the configuration at load time; a
                // function without parameters has no fixup here.)
                if r1.timeout.load(Ordering::Relaxed) <= 0 {
                    lm_err!("ring_insert_callid functionality deactivated, you need to set a positive ring_timeout");
                    return -1;
                }
                let Ok(callid) = ctx.msg.msg().call_id().map(|c| c.trim().to_string()) else {
                    lm_err!("ring_insert_callid: no callid");
                    return -1;
                };
                r1.insert(&callid, Instant::now());
                1
            },
        )
        .on_net_data_in(move |buf, _rcv| {
            if r2.timeout.load(Ordering::Relaxed) <= 0 {
                return None;
            }
            r2.filter(buf)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const R183: &str = "SIP/2.0 183 Session Progress\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn a_183_becomes_a_180_without_body() {
        let cid_end = R183.find("CSeq").unwrap();
        let out = conv183(R183.as_bytes(), cid_end).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SIP/2.0 180 Ringing         \r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        // Without Content-Type, or with it before the Call-ID: left.
        let no_ct = R183.replace("Content-Type: application/sdp\r\n", "");
        assert!(conv183(no_ct.as_bytes(), cid_end).is_none());
        assert!(conv183(R183.as_bytes(), R183.len()).is_none());
    }

    #[test]
    fn calls_expire() {
        let r = Ring {
            timeout: Arc::new(AtomicI64::new(10)),
            calls: Mutex::new(Calls::default()),
        };
        let t0 = Instant::now();
        r.insert("c1", t0);
        r.insert("c1", t0);
        assert!(r.contains("c1", t0 + Duration::from_secs(10)));
        assert!(!r.contains("c2", t0));
        assert!(!r.contains("c1", t0 + Duration::from_secs(11)));
        assert!(r.calls.lock().unwrap().order.is_empty());
    }
}
