//! The server side (UAS) of the call scenario: answers INVITE with 180
//! and 200 (with SDP), retransmits the 200 until the ACK comes (UDP),
//! answers BYE and anything else with 200.

use crate::keymap::{hash_bytes, KeyMap};
use crate::net::{Net, Peer, Proto};
use crate::stats::UasStats;
use crate::timers::{retrans_interval, TimerKind, Timers, TxnKind, TIMEOUT};
use sip_msg::{HeaderName, Message, Method};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Our to-tag (one per UAS: dialogs differ by Call-ID and from-tag).
const TO_TAG: &str = "sbuas";

/// SDP answer of the 200.
const SDP: &str = "v=0\r\no=sipbench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

struct Pending {
    epoch: u32,
    acked: bool,
    /// The 200, kept until the ACK for retransmission.
    reply: Option<Box<[u8]>>,
    peer: Peer,
}

/// The UAS engine.
pub struct Uas {
    net: Net,
    proto: Proto,
    contact: String,
    calls: KeyMap<Pending>,
    timers: Timers,
    out: Vec<u8>,
    epoch: u32,
    /// What was counted.
    pub stats: UasStats,
}

impl Uas {
    /// Binds the UAS socket (UDP) or listener (TCP) at `addr`.
    pub fn bind(addr: std::net::SocketAddr, proto: Proto) -> Result<Uas, String> {
        let net = match proto {
            Proto::Udp => Net::udp(addr),
            Proto::Tcp => Net::tcp_listen(addr),
        }
        .map_err(|e| format!("UAS bind {addr}: {e}"))?;
        let tp = if proto == Proto::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        Ok(Uas {
            contact: format!("Contact: <sip:uas@{}{tp}>\r\n", net.local()),
            net,
            proto,
            calls: KeyMap::default(),
            timers: Timers::default(),
            out: Vec::with_capacity(2048),
            epoch: 0,
            stats: UasStats::default(),
        })
    }

    /// Serves until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            while let Some(t) = self.timers.pop_due(now) {
                self.on_timer(t.key, t.epoch, t.kind, t.n, now);
            }
            let mut wake = now + Duration::from_millis(10);
            if let Some(t) = self.timers.next_deadline() {
                wake = wake.min(t);
            }
            self.net.wait(wake.saturating_duration_since(now));
            let mut got = 0;
            while got < 512 {
                let Some((len, from)) = self.net.recv(&mut buf) else {
                    break;
                };
                got += 1;
                self.on_message(&buf[..len], from, Instant::now());
            }
        }
        self.stats.no_ack += self.calls.values().filter(|c| !c.acked).count() as u64;
    }

    fn send(&mut self, to: Peer) {
        self.stats.sent += 1;
        if self.net.send(to, &self.out).is_err() {
            self.stats.send_errors += 1;
        }
    }

    fn on_timer(&mut self, key: u64, epoch: u32, kind: TimerKind, k: u32, now: Instant) {
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        if c.epoch != epoch || c.acked {
            return;
        }
        match kind {
            TimerKind::Retrans => {
                if let Some(r) = &c.reply {
                    self.stats.retrans_sent += 1;
                    self.stats.sent += 1;
                    if self.net.send(c.peer, r).is_err() {
                        self.stats.send_errors += 1;
                    }
                    let d = retrans_interval(TxnKind::NonInvite, k + 1);
                    self.timers
                        .push(now, d, key, epoch, TimerKind::Retrans, k + 1);
                }
            }
            TimerKind::Timeout => {
                self.stats.no_ack += 1;
                c.acked = true;
                c.reply = None;
            }
            TimerKind::Pause => {}
        }
    }

    fn on_message(&mut self, buf: &[u8], from: Peer, now: Instant) {
        let Ok(msg) = Message::parse(buf) else {
            self.stats.unparsable += 1;
            return;
        };
        let (Some(method), Ok(cid)) = (msg.method(), msg.call_id()) else {
            // Replies are not expected here.
            self.stats.unparsable += 1;
            return;
        };
        self.stats.requests += 1;
        let key = hash_bytes(0, cid.as_bytes());
        match method {
            Method::Invite => {
                if let Some(c) = self.calls.get(&key) {
                    self.stats.dup_invites += 1;
                    if let (Some(r), false) = (&c.reply, c.acked) {
                        self.stats.sent += 1;
                        if self.net.send(from, r).is_err() {
                            self.stats.send_errors += 1;
                        }
                    }
                    return;
                }
                build_reply(&mut self.out, &msg, 180, "Ringing", Some(&self.contact), "");
                self.send(from);
                build_reply(&mut self.out, &msg, 200, "OK", Some(&self.contact), SDP);
                self.send(from);
                self.epoch = self.epoch.wrapping_add(1);
                let reliable = self.proto.reliable();
                self.calls.insert(
                    key,
                    Pending {
                        epoch: self.epoch,
                        acked: false,
                        reply: (!reliable).then(|| self.out.clone().into_boxed_slice()),
                        peer: from,
                    },
                );
                if !reliable {
                    let d = retrans_interval(TxnKind::NonInvite, 0);
                    self.timers
                        .push(now, d, key, self.epoch, TimerKind::Retrans, 0);
                }
                self.timers
                    .push(now, TIMEOUT, key, self.epoch, TimerKind::Timeout, 0);
            }
            Method::Ack => match self.calls.get_mut(&key) {
                Some(c) if !c.acked => {
                    c.acked = true;
                    c.reply = None;
                }
                _ => self.stats.ack_unknown += 1,
            },
            Method::Bye => {
                if self.calls.remove(&key).is_none() {
                    self.stats.bye_unknown += 1;
                }
                build_reply(&mut self.out, &msg, 200, "OK", None, "");
                self.send(from);
            }
            _ => {
                build_reply(&mut self.out, &msg, 200, "OK", None, "");
                self.send(from);
            }
        }
    }
}

/// Builds a reply to `req` into `out`: Via, From, Call-ID, CSeq copied as
/// received, To with our tag, Record-Route copied for INVITE, optional
/// Contact line and SDP body.
pub fn build_reply(
    out: &mut Vec<u8>,
    req: &Message<'_>,
    code: u16,
    reason: &str,
    contact: Option<&str>,
    sdp: &str,
) {
    out.clear();
    out.extend_from_slice(b"SIP/2.0 ");
    crate::template::push_u64(out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let raw = req.raw();
    let invite = req.method() == Some(Method::Invite);
    for h in req.headers() {
        let line = raw
            .get(h.start as usize..h.end as usize)
            .unwrap_or_default();
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                out.extend_from_slice(line)
            }
            HeaderName::RecordRoute if invite => out.extend_from_slice(line),
            HeaderName::To => {
                out.extend_from_slice(b"To: ");
                out.extend_from_slice(h.value.as_bytes());
                let tagged = req.to().ok().is_some_and(|t| t.tag().is_some());
                if !tagged {
                    out.extend_from_slice(b";tag=");
                    out.extend_from_slice(TO_TAG.as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            _ => {}
        }
    }
    if let Some(c) = contact {
        out.extend_from_slice(c.as_bytes());
    }
    if !sdp.is_empty() {
        out.extend_from_slice(b"Content-Type: application/sdp\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    crate::template::push_u64(out, sdp.len() as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(sdp.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_copies_the_transaction_headers() {
        let req = "INVITE sip:s@127.0.0.1:5090 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp\r\nv: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKu\r\nRecord-Route: <sip:127.0.0.1;lr>\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:s@b>\r\nCall-ID: 1-t\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        build_reply(
            &mut out,
            &m,
            200,
            "OK",
            Some("Contact: <sip:uas@127.0.0.1:5090>\r\n"),
            SDP,
        );
        let r = Message::parse(&out).unwrap();
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.vias().count(), 2);
        assert_eq!(r.to().unwrap().tag(), Some(TO_TAG));
        assert_eq!(r.values(HeaderName::RecordRoute).count(), 1);
        assert_eq!(r.body(), SDP.as_bytes());
        assert!(r.value(HeaderName::MaxForwards).is_none());
    }
}
