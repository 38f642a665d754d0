//! What happens to each received message: parse, core checks, statistics,
//! then `request_route` for requests; `reply_route`, the modules' reply
//! hooks and stateless relaying by Via for replies.

use crate::runtime::Runtime;
use bytes::Bytes;
use sip_msg::{ParseError, ParseOptions};
use sr_sdk::{lm_dbg, Core, Ctx, Dest, Proto, RecvInfo, RouteType, SipMsg};
use std::sync::atomic::Ordering;

/// Datagrams shorter than this are dropped (Kamailio's `MIN_UDP_PACKET`).
pub const MIN_UDP_PACKET: usize = 32;
impl Runtime {
    /// [`Runtime::receive`] with a panic contained: a bug in a module
    /// costs that one message (logged and counted in
    /// [`Runtime::panics`]), never the worker thread.
    pub fn receive_guarded(&self, buf: Bytes, rcv: RecvInfo) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.receive(buf, rcv)));
        if r.is_err() {
            self.panics.fetch_add(1, Ordering::Relaxed);
            sr_sdk::lm_err!(
                "a message from {} caused a panic; the worker goes on",
                rcv.src
            );
        }
    }

    /// Handles one received message (a datagram or a framed stream
    /// message).
    pub fn receive(&self, buf: Bytes, rcv: RecvInfo) {
        if rcv.proto == Proto::Udp && buf.first().is_some_and(|b| *b < 4) {
            if let Some(hooks) = self.stun_in.get().filter(|h| !h.is_empty()) {
                self.stun(hooks, &buf, rcv);
                return;
            }
        }
        // Kamailio's MIN_UDP_PACKET: shorter datagrams (keepalives,
        // probes) are dropped unseen, before any hook or counter.
        if rcv.proto == Proto::Udp && buf.len() < MIN_UDP_PACKET {
            lm_dbg!("probing packet received from {}", rcv.src);
            return;
        }
        let buf = match self.net_data_in.get() {
            Some(hooks) if !hooks.is_empty() => hooks
                .iter()
                .fold(buf, |b, h| h(&b, &rcv).map(Bytes::from).unwrap_or(b)),
            _ => buf,
        };
        let id = self.msg_ids.fetch_add(1, Ordering::Relaxed);
        let opts = ParseOptions {
            max_size: self.settings.max_msg_size,
            ..ParseOptions::default()
        };
        let msg = match sip_msg::OwnedMessage::parse_or_return(buf, &opts) {
            Ok(m) => SipMsg::from_owned(m, rcv, id),
            Err((e, buf)) => {
                self.stats.bad_msg_hdr.inc();
                if matches!(e, ParseError::BadUri(_)) {
                    self.stats.bad_uris_rcvd.inc();
                }
                if !buf.starts_with(b"SIP/") {
                    self.stats.err_requests.inc();
                }
                let taken = self
                    .unparsed
                    .get()
                    .is_some_and(|hooks| hooks.iter().any(|h| h(&buf, &rcv)));
                if !taken {
                    self.reply_unparsable(&buf, &e, rcv);
                }
                return;
            }
        };
        if msg.msg().is_http() {
            self.handle_nonsip(msg);
        } else if msg.is_request() {
            self.handle_request(msg);
        } else {
            self.handle_reply(msg);
        }
    }

    /// A STUN datagram: the first hook that answers has its answer sent
    /// back from the socket it came in on (not through the sent-data
    /// hooks, which are for SIP, as the request skipped the received-data
    /// ones).
    fn stun(&self, hooks: &[sr_sdk::exports::StunInFn], buf: &[u8], rcv: RecvInfo) {
        if let Some(answer) = hooks.iter().find_map(|h| h(buf, &rcv)) {
            let mut dest = Dest::new(Proto::Udp, rcv.src);
            dest.send_socket = Some(rcv.dst);
            let sent = self
                .transport()
                .map_err(|e| e.to_string())
                .and_then(|t| t.send_now(&dest, &answer));
            if let Err(e) = sent {
                lm_dbg!("STUN answer to {} not sent: {e}", rcv.src);
            }
        }
    }

    fn handle_request(&self, mut msg: SipMsg) {
        // `force_rport=yes`: from the start, so that every reply (also a
        // module's or the core's own) goes to the source port.
        if self.settings.force_rport {
            msg.force_rport = true;
        }
        let method = msg.msg().method().map(|m| m.as_str()).unwrap_or("");
        self.stats.request(method);
        let check = msg
            .msg()
            .check_mandatory()
            .and_then(|_| msg.msg().top_via().map(|_| ()))
            .and_then(|_| msg.msg().cseq().map(|_| ()))
            .and_then(|_| msg.msg().call_id().map(|_| ()));
        if let Err(e) = check {
            self.stats.err_requests.inc();
            self.stats.bad_msg_hdr.inc();
            lm_dbg!("request from {} rejected: {e}", msg.rcv.src);
            let raw = msg.bytes().clone();
            self.reply_unparsable(&raw, &e, msg.rcv);
            return;
        }
        // Modules' request hooks (sl absorbs the ACKs of its own replies).
        let consumed = self.requests.read().is_ok_and(|hooks| {
            hooks
                .iter()
                .any(|h| h(&mut Ctx::new(&mut msg, self, RouteType::REQUEST)))
        });
        if consumed {
            return;
        }
        let routes = self.routes();
        let Some(idx) = routes.request else {
            self.stats.drop_requests.inc();
            return;
        };
        msg.received = true;
        let out = crate::script::exec::Exec::new(&routes)
            .run_top(idx, &mut Ctx::new(&mut msg, self, RouteType::REQUEST));
        if out.dropped {
            self.stats.drop_requests.inc();
        }
        if let Ok(hooks) = self.request_done.read() {
            for h in hooks.iter() {
                h(&mut Ctx::new(&mut msg, self, RouteType::REQUEST));
            }
        }
        msg.received = false;
    }

    /// An HTTP request: offered to the modules' non-SIP hooks (xhttp),
    /// on stream connections only; dropped when none takes it.
    fn handle_nonsip(&self, mut msg: SipMsg) {
        let taken = matches!(msg.rcv.proto, Proto::Tcp | Proto::Tls)
            && self.nonsip.read().is_ok_and(|hooks| {
                hooks
                    .iter()
                    .any(|h| h(&mut Ctx::new(&mut msg, self, RouteType::EVENT)))
            });
        if !taken {
            lm_dbg!(
                "HTTP request from {} over {} dropped (no module takes it)",
                msg.rcv.src,
                msg.rcv.proto
            );
        }
    }

    fn handle_reply(&self, mut msg: SipMsg) {
        let code = msg.msg().status().unwrap_or(0);
        self.stats.reply(code);
        if msg.msg().top_via().is_err() || msg.msg().cseq().is_err() {
            self.stats.err_replies.inc();
            return;
        }
        let routes = self.routes();
        if let Some(idx) = routes.reply {
            let out = crate::script::exec::Exec::new(&routes)
                .run_top(idx, &mut Ctx::new(&mut msg, self, RouteType::CORE_ONREPLY));
            if out.dropped || out.code <= 0 {
                self.stats.drop_replies.inc();
                return;
            }
        }
        // The modules' reply hooks (tm matches its transactions here), run
        // under the read lock: the list only changes at startup.
        let consumed = self.responses.read().is_ok_and(|hooks| {
            hooks
                .iter()
                .any(|h| h(&mut Ctx::new(&mut msg, self, RouteType::CORE_ONREPLY)))
        });
        if consumed {
            return;
        }
        if let Err(e) = self.forward_reply(&mut msg) {
            lm_dbg!("reply dropped: {e}");
        }
    }

    /// Answers a request that could not be parsed with the status its
    /// fault calls for, when enough of it is readable to address a reply.
    fn reply_unparsable(&self, buf: &[u8], e: &ParseError, rcv: RecvInfo) {
        if !e.can_reply() || buf.starts_with(b"SIP/") {
            return;
        }
        let Some(data) = error_reply(buf, e.status(), &e.reason()) else {
            return;
        };
        let mut d = Dest::new(rcv.proto, rcv.src);
        if rcv.proto.is_reliable() {
            d.conn_id = Some(rcv.conn_id);
        }
        let _ = self.send(&d, &data);
    }
}

/// Builds an error reply from the raw lines of a message that failed to
/// parse: Via, From, To, Call-ID and CSeq are copied as they are. `None`
/// when those lines are missing or the start line is not a request.
pub fn error_reply(buf: &[u8], code: u16, reason: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(buf);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let first = lines.find(|l| !l.is_empty())?;
    if !first.ends_with("SIP/2.0") && !first.to_ascii_uppercase().contains(" SIP/") {
        return None;
    }
    if first.starts_with("ACK ") {
        return None;
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    let mut need = [false; 5];
    // Whether the header line before was copied: its continuation lines
    // (folded values, starting with white space) go with it.
    let mut copying = false;
    for l in lines {
        if l.is_empty() {
            break;
        }
        if l.starts_with([' ', '\t']) {
            if copying {
                out.push_str(l);
                out.push_str("\r\n");
            }
            continue;
        }
        copying = false;
        let Some((name, _)) = l.split_once(':') else {
            continue;
        };
        let k = sip_msg::HeaderName::parse(name.trim());
        let slot = match k {
            sip_msg::HeaderName::Via => 0,
            sip_msg::HeaderName::From => 1,
            sip_msg::HeaderName::To => 2,
            sip_msg::HeaderName::CallId => 3,
            sip_msg::HeaderName::CSeq => 4,
            _ => continue,
        };
        need[slot] = true;
        copying = true;
        out.push_str(l);
        out.push_str("\r\n");
    }
    if !need.iter().all(|x| *x) {
        return None;
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::error_reply;

    #[test]
    fn error_reply_copies_the_addressing_headers() {
        let raw = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 99\r\n\r\nshort";
        let r = String::from_utf8(error_reply(raw, 400, "Bad Request - x").unwrap()).unwrap();
        assert!(r.starts_with("SIP/2.0 400 Bad Request - x\r\n"));
        assert!(r.contains("Call-ID: c\r\n"));
        assert!(error_reply(b"garbage", 400, "x").is_none());
        assert!(error_reply(b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n", 400, "x").is_none());
    }

    #[test]
    fn error_reply_keeps_folded_lines_with_their_header() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bK1\r\nX-Other: 1\r\n 2\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 7\r\n\r\n";
        let r = String::from_utf8(error_reply(raw, 400, "Bad").unwrap()).unwrap();
        assert!(
            r.contains("Via: SIP/2.0/UDP h\r\n ;branch=z9hG4bK1\r\nFrom:"),
            "{r}"
        );
        assert!(!r.contains("X-Other") && !r.contains(" 2\r\n"), "{r}");
    }
}
