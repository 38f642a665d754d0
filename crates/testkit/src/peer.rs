//! Test user agents: they send real SIP over real sockets and parse what
//! comes back.

use sip_msg::{HeaderName, OwnedMessage};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// A received message, parsed, with its text for assertions.
#[derive(Debug)]
pub struct Reply {
    /// The parsed message.
    pub msg: OwnedMessage,
    /// Where it came from.
    pub from: SocketAddr,
}

impl Reply {
    /// The text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.msg.msg().raw()).into_owned()
    }

    /// The status code (replies).
    pub fn status(&self) -> Option<u16> {
        self.msg.msg().status()
    }

    /// First value of a header by name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.msg
            .msg()
            .headers_by_name(name)
            .next()
            .map(|h| h.value.to_string())
    }

    /// Every value of header `name`, as received, joined with ", "
    /// (empty without one).
    pub fn all(&self, name: &str) -> String {
        self.msg
            .msg()
            .headers_by_name(name)
            .map(|h| h.value.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Builds a request from its parts. `via` is `host:port` of the sender;
/// `extra` are header lines without CRLF; the body gets a Content-Length.
#[allow(clippy::too_many_arguments)] // mirrors the parts of a request line by line
pub fn req(
    method: &str,
    ruri: &str,
    via: SocketAddr,
    branch: &str,
    call_id: &str,
    cseq: u32,
    extra: &[&str],
    body: &str,
) -> String {
    let mut s = format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=from-{call_id}\r\nTo: <{ruri}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
    );
    for h in extra {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s
}

/// An INVITE from `uac` (alice) to `sip:{user}@example.com` with Call-ID
/// `call` (which also makes its branch) and a Contact: the call the
/// routing tests place.
pub fn invite(uac: &UdpPeer, user: &str, call: &str) -> String {
    req(
        "INVITE",
        &format!("sip:{user}@example.com"),
        uac.addr(),
        &format!("b{call}"),
        call,
        1,
        &["Contact: <sip:alice@127.0.0.1>"],
        "",
    )
}

/// The reply a UAS sends to request `r`: its Vias and Record-Routes,
/// From, To (with `tag` added unless it already has one), Call-ID and
/// CSeq, plus `extra` header lines (without CRLF) and no body.
pub fn answer(r: &Reply, code: u16, reason: &str, tag: &str, extra: &[&str]) -> String {
    let m = r.msg.msg();
    let mut s = format!("SIP/2.0 {code} {reason}\r\n");
    for h in m.headers_named(HeaderName::Via) {
        s.push_str(&format!("Via: {}\r\n", h.value));
    }
    for h in m.headers_named(HeaderName::RecordRoute) {
        s.push_str(&format!("Record-Route: {}\r\n", h.value));
    }
    s.push_str(&format!("From: {}\r\n", m.value(HeaderName::From).unwrap()));
    let to = m.value(HeaderName::To).unwrap();
    if to.contains("tag=") {
        s.push_str(&format!("To: {to}\r\n"));
    } else {
        s.push_str(&format!("To: {to};tag={tag}\r\n"));
    }
    s.push_str(&format!("Call-ID: {}\r\n", m.call_id().unwrap()));
    s.push_str(&format!("CSeq: {}\r\n", m.value(HeaderName::CSeq).unwrap()));
    for e in extra {
        s.push_str(e);
        s.push_str("\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

/// A request the caller sends within the dialog a 2xx (`ok`) set up: a
/// Route from each of its Record-Routes, Request-URI `ruri` (the
/// callee's Contact), the To with the callee's tag, `extra` header
/// lines (without CRLF); sent from `via`.
pub fn from_caller(
    method: &str,
    ok: &Reply,
    via: SocketAddr,
    ruri: &str,
    cseq: u32,
    branch: &str,
    extra: &[&str],
) -> String {
    let m = ok.msg.msg();
    let mut lines: Vec<String> = m
        .headers_by_name("Record-Route")
        .map(|h| format!("Route: {}", h.value))
        .collect();
    lines.extend(extra.iter().map(|e| e.to_string()));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let to = m.headers_by_name("To").next().map_or("", |h| h.value);
    let call = m.call_id().unwrap_or("");
    req(method, ruri, via, branch, call, cseq, &lines, "").replacen(
        &format!("To: <{ruri}>\r\n"),
        &format!("To: {to}\r\n"),
        1,
    )
}

/// A UDP test peer on 127.0.0.1.
pub struct UdpPeer {
    /// The socket.
    pub sock: UdpSocket,
}

impl Default for UdpPeer {
    fn default() -> Self {
        Self::new()
    }
}

impl UdpPeer {
    /// A peer on a free port.
    pub fn new() -> UdpPeer {
        Self::on("127.0.0.1:0")
    }

    /// A peer bound to `addr` (`[::1]:0` for one on IPv6).
    pub fn on(addr: &str) -> UdpPeer {
        let sock = UdpSocket::bind(addr).expect("bind");
        UdpPeer { sock }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    /// Sends text to `to`.
    pub fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).expect("send");
    }

    /// Waits for one message (up to `timeout`).
    pub fn recv(&self, timeout: Duration) -> Option<Reply> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let b = bytes::Bytes::copy_from_slice(&buf[..n]);
                    if let Ok(msg) = OwnedMessage::parse(b) {
                        return Some(Reply { msg, from });
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Waits for one datagram (up to `timeout`), whatever it holds.
    pub fn recv_raw(&self, timeout: Duration) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .ok()?;
        let (n, _) = self.sock.recv_from(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// Waits for the first message `want` accepts, dropping the others
    /// (up to `timeout` in all).
    pub fn recv_matching(
        &self,
        timeout: Duration,
        mut want: impl FnMut(&Reply) -> bool,
    ) -> Option<Reply> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let r = self.recv(left)?;
            if want(&r) {
                return Some(r);
            }
        }
    }

    /// Sends `text` to `to` and gives header `name` of the final reply
    /// (empty when it has none); panics when no final reply comes within
    /// 3 seconds.
    pub fn final_header(&self, to: SocketAddr, text: &str, name: &str) -> String {
        self.send(to, text);
        self.recv_final(Duration::from_secs(3))
            .expect("a final reply")
            .header(name)
            .unwrap_or_default()
    }

    /// Waits for a message, skipping provisional replies.
    pub fn recv_final(&self, timeout: Duration) -> Option<Reply> {
        self.recv_matching(timeout, |r| r.status().is_none_or(|c| c >= 200))
    }

    /// Waits for a request with this method, dropping other messages.
    pub fn recv_method(&self, method: &str, timeout: Duration) -> Option<Reply> {
        self.recv_matching(timeout, |r| {
            r.msg.msg().method().is_some_and(|m| m.as_str() == method)
        })
    }

    /// Waits for a reply with this status code, dropping other messages.
    pub fn recv_status(&self, code: u16, timeout: Duration) -> Option<Reply> {
        self.recv_matching(timeout, |r| r.status() == Some(code))
    }
}

/// Asks the server at `to` with OPTIONS (its own Call-ID each time) until
/// `done` accepts the reply's `header`, every 100 ms, for at most `tries`
/// rounds; the last reply (`None` when none came).
pub fn probe_until(
    peer: &UdpPeer,
    to: SocketAddr,
    header: &str,
    tries: u32,
    done: impl Fn(&Reply) -> bool,
) -> Option<Reply> {
    let mut last = None;
    for n in 0..tries {
        let call = format!("probe-until-{n}");
        peer.send(
            to,
            &req(
                "OPTIONS",
                "sip:p@x",
                peer.addr(),
                &format!("pu{n}"),
                &call,
                1,
                &[],
                "",
            ),
        );
        let r = peer.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        if let Some(r) = r {
            let finished = r.header(header).is_some() && done(&r);
            last = Some(r);
            if finished {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

/// A TCP test peer connected to the server.
pub struct TcpPeer {
    /// The stream.
    pub stream: TcpStream,
    framer: sip_msg::framer::StreamFramer,
}

impl TcpPeer {
    /// Connects to `to`.
    pub fn connect(to: SocketAddr) -> TcpPeer {
        let stream = TcpStream::connect(to).expect("connect");
        TcpPeer {
            stream,
            framer: sip_msg::framer::StreamFramer::new(65535),
        }
    }

    /// Its local address.
    pub fn addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("addr")
    }

    /// Sends text.
    pub fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).expect("write");
    }

    /// Waits for one framed message.
    pub fn recv(&mut self, timeout: Duration) -> Option<Reply> {
        let deadline = Instant::now() + timeout;
        let mut chunk = vec![0u8; 65536];
        loop {
            if let Some(Ok(sip_msg::framer::Frame::Message(b))) = self.framer.next_frame() {
                let from = self.stream.peer_addr().ok()?;
                return OwnedMessage::parse(b).ok().map(|msg| Reply { msg, from });
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.framer.push(&chunk[..n]),
            }
        }
    }
}
