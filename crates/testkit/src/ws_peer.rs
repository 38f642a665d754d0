//! A WebSocket client for tests (RFC 6455, written here): the opening
//! handshake, masked frames out, frames in, SIP messages in text frames
//! (RFC 7118). Generic over the stream, so it runs over TCP or TLS.

use crate::peer::Reply;
use sip_msg::OwnedMessage;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A key whose accept value RFC 6455 1.3 gives
/// (`s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`).
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A WebSocket client on `S` (whose reads must time out: set a read
/// timeout on the socket before handing it over).
pub struct WsPeer<S: Read + Write> {
    /// The stream.
    pub stream: S,
    /// The server's address.
    pub server: SocketAddr,
    buf: Vec<u8>,
}

impl WsPeer<TcpStream> {
    /// Connects over TCP (no handshake yet).
    pub fn connect(to: SocketAddr) -> WsPeer<TcpStream> {
        let s = TcpStream::connect(to).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        WsPeer::over(s, to)
    }
}

impl<S: Read + Write> WsPeer<S> {
    /// A client on an open stream to `server`.
    pub fn over(stream: S, server: SocketAddr) -> WsPeer<S> {
        WsPeer {
            stream,
            server,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, data: &[u8]) {
        self.stream.write_all(data).expect("write");
        self.stream.flush().expect("flush");
    }

    /// Reads more bytes into the buffer, waiting until `deadline`.
    fn read_more(&mut self, deadline: Instant) -> Got {
        let mut chunk = [0u8; 16384];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Got::Closed,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Got::Bytes;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() > deadline {
                        return Got::Nothing;
                    }
                }
                Err(_) => return Got::Closed,
            }
        }
    }

    /// Reads more bytes into the buffer; `false` on end of stream or
    /// after `deadline`.
    fn fill(&mut self, deadline: Instant) -> bool {
        matches!(self.read_more(deadline), Got::Bytes)
    }

    /// Sends an HTTP request as written and reads the reply's head:
    /// (status, head text). `None` when no reply came.
    pub fn http(&mut self, request: &str, timeout: Duration) -> Option<(u16, String)> {
        self.send_raw(request.as_bytes());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end + 4]).into_owned();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.trim()
                            .eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + len {
                    if !self.fill(deadline) {
                        return None;
                    }
                }
                let body = String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).into_owned();
                self.buf.drain(..end + 4 + len);
                let code = head.split(' ').nth(1)?.parse().ok()?;
                return Some((code, head + &body));
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// The opening handshake for the `sip` sub-protocol, with `extra`
    /// header lines (each ending in CRLF); the reply's status and head.
    pub fn handshake(&mut self, extra: &str) -> Option<(u16, String)> {
        let req = format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: sip\r\n{extra}\r\n",
            self.server
        );
        self.http(&req, Duration::from_secs(3))
    }

    /// Sends a frame with this first byte (FIN, opcode), masked.
    pub fn send_frame(&mut self, first: u8, payload: &[u8]) {
        let key = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut f = vec![first];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
        self.send_raw(&f);
    }

    /// Sends a SIP message as one text frame.
    pub fn send(&mut self, text: &str) {
        self.send_frame(0x81, text.as_bytes());
    }

    /// The next frame: (first byte, payload). Server frames are not
    /// masked; a masked one is returned with its mask removed.
    pub fn recv_frame(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((first, payload, used)) = cut_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((first, payload));
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// Whether the server closed the connection within `timeout` (frames
    /// still arriving are read and dropped).
    pub fn closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_more(deadline) {
                Got::Bytes => self.buf.clear(),
                Got::Closed => return true,
                Got::Nothing => return false,
            }
        }
    }

    /// The next SIP message (text or binary frame), skipping control
    /// frames (a Ping is answered, as a live client does).
    pub fn recv(&mut self, timeout: Duration) -> Option<Reply> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (first, payload) = self.recv_frame(left)?;
            if first & 0x0F == 9 {
                self.send_frame(0x8A, &payload);
            }
            if matches!(first & 0x0F, 1 | 2) {
                return OwnedMessage::parse(payload.into()).ok().map(|msg| Reply {
                    msg,
                    from: self.server,
                });
            }
        }
    }
}

/// What a read brought.
enum Got {
    Bytes,
    Closed,
    Nothing,
}

/// One whole frame at the start of `b`: (first byte, payload, bytes used).
fn cut_frame(b: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if b.len() < 2 {
        return None;
    }
    let masked = b[1] & 0x80 != 0;
    let (len, mut at) = match b[1] & 0x7F {
        126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(b.get(2..10)?);
            (u64::from_be_bytes(n) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let key = if masked {
        let k = [
            *b.get(at)?,
            *b.get(at + 1)?,
            *b.get(at + 2)?,
            *b.get(at + 3)?,
        ];
        at += 4;
        Some(k)
    } else {
        None
    };
    let mut payload = b.get(at..at + len)?.to_vec();
    if let Some(k) = key {
        for (i, x) in payload.iter_mut().enumerate() {
            *x ^= k[i & 3];
        }
    }
    Some((b[0], payload, at + len))
}
