//! Requests a module sends on its own (the dialog module's BYEs, the
//! dispatcher's keepalives): each a non-INVITE client transaction of
//! sip-txn — retransmitted over UDP at tm's timers, given up after
//! `fr_timer` — whose final reply, or timeout, is handed back with the
//! value the sender attached. Replies are told apart by a branch prefix of
//! the sender's own (`z9hG4bK<tag><key>.<n>`).

use sip_txn::{Action, Instant, NonInviteClient, TimerConfig};
use sr_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

struct Pending<T> {
    txn: NonInviteClient<Vec<u8>>,
    to: Dest,
    tag: T,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended<T> {
    /// What the sender attached to it.
    pub tag: T,
    /// The final reply's code (408 when none came in time, 477 when it
    /// could not be sent).
    pub code: u16,
    /// The reply's reason phrase (`Request Timeout`, `Unfortunately error
    /// on sending to next hop occurred` for those two).
    pub reason: String,
    /// Whether a reply came.
    pub replied: bool,
    /// The request as it was sent.
    pub request: Vec<u8>,
}

/// What became of a reply the core's reply hook offered.
#[derive(Debug)]
pub enum Taken<T> {
    /// Not a reply to one of our requests: let others have it.
    NotOurs,
    /// Ours, and nothing more to do (a provisional, a retransmission).
    Absorbed,
    /// The final reply of one of our requests.
    Ended(Ended<T>),
}

/// Our `sent-by` for a request to `dest`: its forced socket, else the
/// address the core advertises towards it (IPv6 in brackets); `None` when
/// there is none.
pub fn via_host(core: &dyn Core, dest: &Dest) -> Option<String> {
    dest.send_socket
        .map(|a| (a.ip().to_string(), a.port()))
        .or_else(|| core.local_addr(dest.proto, Some(dest.addr)))
        .map(|(h, p)| {
            if h.contains(':') {
                format!("[{h}]:{p}")
            } else {
                format!("{h}:{p}")
            }
        })
}

/// Requests in flight, of one sender.
pub struct LocalRequests<T> {
    key: String,
    prefix: String,
    seq: AtomicU64,
    epoch: std::time::Instant,
    pending: Mutex<HashMap<u64, Pending<T>>>,
}

impl<T: Clone> LocalRequests<T> {
    /// A sender whose branches start `z9hG4bK{tag}` and a key of this
    /// process, so that only replies to its own requests are taken.
    pub fn new(tag: &str) -> LocalRequests<T> {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(u64::from(std::process::id()));
        let key = format!("{:012x}", h.finish() & 0xffff_ffff_ffff);
        LocalRequests {
            prefix: format!("z9hG4bK{tag}{key}."),
            key,
            seq: AtomicU64::new(1),
            epoch: std::time::Instant::now(),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The sender's key (hex), for tags and Call-IDs of its own.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Now, on the transactions' clock.
    pub fn now(&self) -> Instant {
        Instant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    /// The head of request `n` (whose branch is `branch`) to `dest`, as
    /// Kamailio's tm writes the requests modules send (`t_uac`): request
    /// line, Via, `To: <to>`, `From: <from>` with a tag, `CSeq: 10`,
    /// Call-ID, Max-Forwards, Content-Length of `body_len` and the
    /// core's User-Agent; every line ends in CRLF, the blank line is the
    /// caller's (after any headers of its own).
    #[allow(clippy::too_many_arguments)] // one per part of the head
    pub fn head(
        &self,
        core: &dyn Core,
        dest: &Dest,
        n: u64,
        branch: &str,
        method: &str,
        ruri: &str,
        to: &str,
        from: &str,
        body_len: usize,
    ) -> String {
        let local = via_host(core, dest).unwrap_or_default();
        let host = local.rsplit_once(':').map_or(local.as_str(), |x| x.0);
        let mut h = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/{} {local};branch={branch}\r\nTo: <{to}>\r\nFrom: <{from}>;tag={key}-{n}\r\nCSeq: 10 {method}\r\nCall-ID: {key}-{n}@{host}\r\nMax-Forwards: 70\r\nContent-Length: {body_len}\r\n",
            dest.proto.via_name(),
            key = self.key,
        );
        if let Some(ua) = core.user_agent_header() {
            h.push_str(&ua);
            h.push_str("\r\n");
        }
        h
    }

    /// A fresh branch for the next request's Via, and its number.
    pub fn next_branch(&self) -> (u64, String) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        (n, format!("{}{n}", self.prefix))
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.lock().map_or(0, |p| p.len())
    }

    /// Sends request `n` (whose Via has [`Self::next_branch`]'s branch)
    /// to `to` and keeps its transaction (kept first, so that a reply
    /// quicker than this thread finds it); when the send fails, the
    /// request ends at once (477).
    pub fn start(
        &self,
        core: &dyn Core,
        n: u64,
        data: Vec<u8>,
        to: Dest,
        timers: &TimerConfig,
        tag: T,
    ) -> Option<Ended<T>> {
        let (txn, actions) =
            NonInviteClient::start(data.clone(), to.proto.is_reliable(), timers, self.now());
        if let Ok(mut p) = self.pending.lock() {
            p.insert(
                n,
                Pending {
                    txn,
                    to,
                    tag: tag.clone(),
                },
            );
        }
        for a in actions {
            if let Action::Transmit(bytes) = a {
                if let Err(e) = core.send(&to, &bytes) {
                    lm_warn!("request to {}: {e}", to.addr);
                    if let Ok(mut p) = self.pending.lock() {
                        p.remove(&n);
                    }
                    return Some(Ended {
                        tag,
                        code: 477,
                        reason: "Unfortunately error on sending to next hop occurred".into(),
                        replied: false,
                        request: data,
                    });
                }
            }
        }
        None
    }

    /// A reply whose top Via has `branch`: `None` when it is not for one
    /// of our requests; `Some(Some(ended))` when it is the final reply,
    /// `Some(None)` for a provisional one or a retransmission.
    pub fn reply(&self, branch: &str, code: u16, reason: &str) -> Option<Option<Ended<T>>> {
        let n: u64 = branch.strip_prefix(&self.prefix)?.parse().ok()?;
        let now = self.now();
        let mut pending = self.pending.lock().ok()?;
        let Some(p) = pending.get_mut(&n) else {
            return Some(None);
        };
        let actions = p.txn.handle_response(now, Vec::new(), code);
        let fin = code >= 200 && actions.iter().any(|a| matches!(a, Action::PassToTu(_)));
        if !fin {
            return Some(None);
        }
        let p = pending.remove(&n)?;
        Some(Some(Ended {
            tag: p.tag,
            code,
            reason: reason.to_string(),
            replied: true,
            request: p.txn.request().clone(),
        }))
    }

    /// A reply from a module's `on_response` hook: whether it answers one
    /// of our requests, and if it ends one, how.
    pub fn take_reply(&self, msg: &SipMsg) -> Taken<T> {
        let m = msg.msg();
        let Some(branch) = m.top_via_branch().ok().flatten() else {
            return Taken::NotOurs;
        };
        if !branch.starts_with(&self.prefix) {
            return Taken::NotOurs;
        }
        let code = m.status().unwrap_or(0);
        let reason = m.reason().unwrap_or("");
        match self.reply(branch, code, reason) {
            None => Taken::NotOurs,
            Some(None) => Taken::Absorbed,
            Some(Some(e)) => Taken::Ended(e),
        }
    }

    /// Runs the timers: retransmits, and gives the requests that got no
    /// final reply in time (408).
    pub fn tick(&self, core: &dyn Core) -> Vec<Ended<T>> {
        let now = self.now();
        let mut out = Vec::new();
        let mut resend = Vec::new();
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|_, p| {
                if p.txn.poll_timeout().is_none_or(|t| t > now) {
                    return true;
                }
                let actions = p.txn.handle_timeout(now);
                for a in actions.iter() {
                    match a {
                        Action::Transmit(b) => resend.push((p.to, b.clone())),
                        Action::Timeout => out.push(Ended {
                            tag: p.tag.clone(),
                            code: 408,
                            reason: "Request Timeout".into(),
                            replied: false,
                            request: p.txn.request().clone(),
                        }),
                        _ => {}
                    }
                }
                !actions.terminated()
            });
        }
        for (to, b) in resend {
            core.send_batched(&to, &b);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_end_requests() {
        let l: LocalRequests<&str> = LocalRequests::new("dlg");
        let (n, branch) = l.next_branch();
        assert!(branch.starts_with(&format!("z9hG4bKdlg{}.", l.key())));
        let req = b"BYE sip:a SIP/2.0\r\n\r\n".to_vec();
        let (txn, _) = NonInviteClient::start(req.clone(), false, &TimerConfig::rfc3261(), l.now());
        let to = Dest::new(Proto::Udp, "127.0.0.1:5060".parse().unwrap());
        l.pending
            .lock()
            .unwrap()
            .insert(n, Pending { txn, to, tag: "x" });
        assert_eq!(l.reply("z9hG4bKother", 200, "OK"), None, "not ours");
        assert_eq!(l.reply(&branch, 100, "Trying"), Some(None));
        assert_eq!(
            l.reply(&branch, 481, "Gone"),
            Some(Some(Ended {
                tag: "x",
                code: 481,
                reason: "Gone".into(),
                replied: true,
                request: req,
            }))
        );
        assert_eq!(l.in_flight(), 0);
        assert_eq!(
            l.reply(&branch, 481, "Gone"),
            Some(None),
            "a late retransmission"
        );
    }
}
