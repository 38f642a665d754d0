//! A caller and user agents behind a proxy, for scenarios compared
//! between servers: requests from the caller with `X-*` headers telling
//! the script what to do, user agents answering what they get, and every
//! observation written with the peers' ports replaced by their names
//! (`<caller>`, `<u0>`, ...), so that two runs with other ports compare.

use crate::{answer, Reply, UdpPeer};
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The peers of a scenario.
pub struct Scene {
    /// The caller.
    pub caller: UdpPeer,
    /// The user agents behind the server.
    pub uas: Vec<UdpPeer>,
    /// The server.
    pub srv: SocketAddr,
    n: Cell<u32>,
}

/// The status line (or request line) of a message.
pub fn first_line(r: &Reply) -> String {
    r.text().lines().next().unwrap_or_default().to_string()
}

impl Scene {
    /// A caller and `uas` user agents, for the server at `srv`.
    pub fn new(srv: SocketAddr, uas: usize) -> Scene {
        Scene {
            caller: UdpPeer::new(),
            uas: (0..uas).map(|_| UdpPeer::new()).collect(),
            srv,
            n: Cell::new(0),
        }
    }

    /// The SIP URI of user agent `i`.
    pub fn uri(&self, i: usize) -> String {
        format!("sip:127.0.0.1:{}", self.uas[i].addr().port())
    }

    /// `text` with each peer's port replaced by its name.
    pub fn names(&self, text: &str) -> String {
        let mut t = text.replace(&self.caller.addr().port().to_string(), "<caller>");
        for (i, u) in self.uas.iter().enumerate() {
            t = t.replace(&u.addr().port().to_string(), &format!("<u{i}>"));
        }
        t
    }

    /// Sends a `method` request from the caller, with `headers` (lines
    /// ending in CRLF) and a Call-ID of its own made with `tag`; the
    /// Call-ID.
    pub fn send(&self, method: &str, tag: &str, headers: &str) -> String {
        self.send_to(method, "sip:x@127.0.0.1", tag, headers)
    }

    /// [`Scene::send`] with the Request-URI `ruri`.
    pub fn send_to(&self, method: &str, ruri: &str, tag: &str, headers: &str) -> String {
        self.n.set(self.n.get() + 1);
        let call = format!("scene-{}-{tag}", self.n.get());
        let req = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nContact: <sip:a@{}>\r\n{headers}Content-Length: 0\r\n\r\n",
            self.caller.addr(),
            self.caller.addr()
        );
        self.caller.send(self.srv, &req);
        call
    }

    /// A CANCEL of the request `send` sent as `call` (its Request-URI,
    /// Via branch, From, To, Call-ID, CSeq number), with `headers`.
    pub fn cancel(&self, call: &str, headers: &str) {
        let req = format!(
            "CANCEL sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 CANCEL\r\n{headers}Content-Length: 0\r\n\r\n",
            self.caller.addr()
        );
        self.caller.send(self.srv, &req);
    }

    /// The next request user agent `i` gets within `wait`, answered with
    /// `(code, reason, extra headers)` when given (To tag `u<i>`).
    pub fn uas_request(
        &self,
        i: usize,
        wait: Duration,
        answer_with: Option<(u16, &str, &[&str])>,
    ) -> Option<Reply> {
        let u = &self.uas[i];
        let r = u.recv_matching(wait, |r| r.status().is_none())?;
        if let Some((code, reason, extra)) = answer_with {
            u.send(r.from, &answer(&r, code, reason, &format!("u{i}"), extra));
        }
        Some(r)
    }

    /// As [`Scene::uas_request`], passing over ACKs (those of negative
    /// replies to earlier requests).
    pub fn uas_answer(
        &self,
        i: usize,
        wait: Duration,
        answer_with: Option<(u16, &str, &[&str])>,
    ) -> Option<Reply> {
        let u = &self.uas[i];
        let r = u.recv_matching(wait, |r| {
            r.msg.msg().method().is_some_and(|m| m.as_str() != "ACK")
        })?;
        if let Some((code, reason, extra)) = answer_with {
            u.send(r.from, &answer(&r, code, reason, &format!("u{i}"), extra));
        }
        Some(r)
    }

    /// What user agent `i` gets within `wait` ("u1 got MESSAGE" or "u1
    /// got nothing"), answered as [`Scene::uas_request`] does.
    pub fn uas_gets(
        &self,
        i: usize,
        wait: Duration,
        answer_with: Option<(u16, &str, &[&str])>,
    ) -> String {
        match self.uas_request(i, wait, answer_with) {
            Some(r) => format!(
                "u{i} got {}",
                r.msg.msg().method().map(|m| m.as_str()).unwrap_or("?")
            ),
            None => format!("u{i} got nothing"),
        }
    }

    /// The first final reply to `call` within 3 s.
    pub fn final_of(&self, call: &str) -> String {
        let r = self.caller.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call) && r.status().is_some_and(|c| c >= 200)
        });
        r.map_or("no final reply".into(), |r| first_line(&r))
    }

    /// Every different reply to `call` the caller gets within `wait`, in
    /// order, each written by `show`.
    pub fn replies_with(
        &self,
        call: &str,
        wait: Duration,
        show: &dyn Fn(&Reply) -> String,
    ) -> String {
        let end = Instant::now() + wait;
        let mut seen: Vec<String> = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Some(r) = self
                .caller
                .recv_matching(left, |r| r.msg.msg().call_id().ok() == Some(call))
            else {
                break;
            };
            let l = show(&r);
            if !seen.contains(&l) {
                seen.push(l);
            }
        }
        seen.join(" | ")
    }

    /// A message as two servers' runs compare it: its header lines joined
    /// by ` / `, with the server's port, the Via branches it made (all but
    /// the caller's `scene-` ones and `x`-prefixed ones), its local To
    /// tags (any not starting with `u`) and its Server header written
    /// alike, and the peers' ports named.
    pub fn whole(&self, r: &Reply) -> String {
        let text = r.text();
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut out = Vec::new();
        for l in head.lines() {
            let mut l = l.replace(&self.srv.port().to_string(), "<srv>");
            if l.starts_with("Server:") {
                l = "Server: <server's>".into();
            }
            if let Some(i) = l.find(";tag=").filter(|_| l.starts_with("To:")) {
                if !l[i + 5..].starts_with('u') {
                    l = format!("{};tag=<server's>", &l[..i]);
                }
            }
            if let Some(i) = l.find("branch=z9hG4bK") {
                let rest = &l[i + 14..];
                if !rest.starts_with("scene-") && !rest.starts_with('x') {
                    let end = rest
                        .find(|c: char| c == ';' || c == ',' || c.is_whitespace())
                        .unwrap_or(rest.len());
                    l = format!("{}branch=<b>{}", &l[..i], &rest[end..]);
                }
            }
            out.push(self.names(&l));
        }
        out.join(" / ")
    }

    /// Every different status line the caller gets for `call` within
    /// `wait`.
    pub fn replies(&self, call: &str, wait: Duration) -> String {
        self.replies_with(call, wait, &first_line)
    }
}
