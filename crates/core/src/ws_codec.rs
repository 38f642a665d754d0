//! WebSocket framing (RFC 6455 section 5), without I/O: the server side's
//! decoder of client frames and encoder of its own.
//!
//! A client's frames must be masked (5.1); the server's are not. Data
//! messages may come in fragments (5.4), control frames (Close, Ping, Pong)
//! may come between them, carry at most 125 bytes and are never fragmented
//! (5.5). Each complete data message is one SIP message (RFC 7118 5.1).

use bytes::{Buf, Bytes, BytesMut};

/// Frame opcodes (RFC 6455 5.2).
pub mod opcode {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// Text data (UTF-8).
    pub const TEXT: u8 = 0x1;
    /// Binary data.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// Close status codes used here (RFC 6455 7.4.1).
pub mod status {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
}

/// What the decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete data message (text or binary).
    Message(Bytes),
    /// A Ping, with its application data (to be echoed in a Pong).
    Ping(Bytes),
    /// A Pong.
    Pong,
    /// A Close, with the peer's status code if it gave one.
    Close(Option<u16>),
}

/// A fault that ends the connection: the Close status to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsError {
    /// Status for the Close frame.
    pub status: u16,
    /// What was wrong.
    pub reason: &'static str,
}

fn fault(status: u16, reason: &'static str) -> WsError {
    WsError { status, reason }
}

/// Accumulates bytes from a client and yields [`WsEvent`]s.
#[derive(Debug)]
pub struct WsDecoder {
    buf: BytesMut,
    /// The data message being reassembled from fragments: its opcode and
    /// what came so far.
    partial: Option<(u8, BytesMut)>,
    max_size: usize,
    frames: u64,
}

impl WsDecoder {
    /// A decoder refusing messages larger than `max_size` bytes.
    pub fn new(max_size: usize) -> WsDecoder {
        WsDecoder {
            buf: BytesMut::new(),
            partial: None,
            max_size,
            frames: 0,
        }
    }

    /// Frames cut so far (fragments and control frames included).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next event, `None` when more bytes are needed. After an error
    /// the connection must be closed (the stream is out of step).
    pub fn next_event(&mut self) -> Option<Result<WsEvent, WsError>> {
        loop {
            let (fin, op, payload) = match self.next_frame()? {
                Ok(f) => f,
                Err(e) => return Some(Err(e)),
            };
            let event = match op {
                opcode::CLOSE => {
                    if payload.len() == 1 {
                        return Some(Err(fault(status::PROTOCOL_ERROR, "one-byte close payload")));
                    }
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    if code.is_some_and(|c| !valid_close_status(c)) {
                        return Some(Err(fault(status::PROTOCOL_ERROR, "invalid close status")));
                    }
                    if std::str::from_utf8(payload.get(2..).unwrap_or_default()).is_err() {
                        return Some(Err(fault(
                            status::INVALID_DATA,
                            "close reason is not UTF-8",
                        )));
                    }
                    WsEvent::Close(code)
                }
                opcode::PING => WsEvent::Ping(payload.freeze()),
                opcode::PONG => WsEvent::Pong,
                opcode::TEXT | opcode::BINARY if self.partial.is_some() => {
                    return Some(Err(fault(
                        status::PROTOCOL_ERROR,
                        "new message inside a fragmented one",
                    )))
                }
                opcode::TEXT | opcode::BINARY if fin => match check_data(op, payload) {
                    Ok(b) => WsEvent::Message(b),
                    Err(e) => return Some(Err(e)),
                },
                opcode::TEXT | opcode::BINARY => {
                    self.partial = Some((op, payload));
                    continue;
                }
                opcode::CONTINUATION => {
                    let Some((first, mut so_far)) = self.partial.take() else {
                        return Some(Err(fault(
                            status::PROTOCOL_ERROR,
                            "continuation without a message",
                        )));
                    };
                    if so_far.len() + payload.len() > self.max_size {
                        return Some(Err(fault(status::TOO_BIG, "message too big")));
                    }
                    so_far.extend_from_slice(&payload);
                    if !fin {
                        self.partial = Some((first, so_far));
                        continue;
                    }
                    match check_data(first, so_far) {
                        Ok(b) => WsEvent::Message(b),
                        Err(e) => return Some(Err(e)),
                    }
                }
                _ => return Some(Err(fault(status::PROTOCOL_ERROR, "unknown opcode"))),
            };
            return Some(Ok(event));
        }
    }

    /// Cuts the next whole frame: (FIN, opcode, unmasked payload).
    fn next_frame(&mut self) -> Option<Result<(bool, u8, BytesMut), WsError>> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return None;
        }
        let (fin, rsv, op) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
        let masked = b[1] & 0x80 != 0;
        if rsv != 0 {
            return Some(Err(fault(status::PROTOCOL_ERROR, "reserved bits set")));
        }
        if !masked {
            return Some(Err(fault(
                status::PROTOCOL_ERROR,
                "client frame not masked",
            )));
        }
        let (len, mut at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as u64, 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            126 | 127 => return None,
            n => (n as u64, 2),
        };
        if op >= opcode::CLOSE && (len > 125 || !fin) {
            return Some(Err(fault(
                status::PROTOCOL_ERROR,
                "control frame fragmented or longer than 125 bytes",
            )));
        }
        if len > self.max_size as u64 {
            return Some(Err(fault(status::TOO_BIG, "message too big")));
        }
        let len = len as usize;
        if b.len() < at + 4 + len {
            return None;
        }
        let key = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        at += 4;
        self.buf.advance(at);
        let mut payload = self.buf.split_to(len);
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= key[i & 3];
        }
        self.frames += 1;
        Some(Ok((fin, op, payload)))
    }
}

/// Whether a peer may send this Close status (RFC 6455 7.4 and the IANA
/// registry: 1004-1006 and 1015 are reserved, below 1000 and 1016-2999
/// not for use).
fn valid_close_status(c: u16) -> bool {
    matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A whole data message: text must be UTF-8 (RFC 6455 8.1).
fn check_data(op: u8, payload: BytesMut) -> Result<Bytes, WsError> {
    if op == opcode::TEXT && std::str::from_utf8(&payload).is_err() {
        return Err(fault(status::INVALID_DATA, "text message is not UTF-8"));
    }
    Ok(payload.freeze())
}

/// Appends one unmasked, unfragmented frame (the server's) to `out`.
pub fn encode(op: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(payload.len() + 10);
    out.push(0x80 | op);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// A Close frame's payload: the status, then the reason (cut to fit the
/// 125 bytes of a control frame, at a character boundary).
pub fn close_payload(status: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut p = status.to_be_bytes().to_vec();
    p.extend_from_slice(&reason.as_bytes()[..end]);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked with a fixed key.
    fn client(first: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x11, 0x22, 0x33, 0x44];
        let mut out = Vec::new();
        encode(0, payload, &mut out);
        out[0] = first;
        out[1] |= 0x80;
        let at = out.len() - payload.len();
        let masked: Vec<u8> = payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i & 3])
            .collect();
        out.truncate(at);
        out.extend_from_slice(&key);
        out.extend_from_slice(&masked);
        out
    }

    fn events(bytes: &[u8], max: usize) -> Vec<Result<WsEvent, WsError>> {
        let mut d = WsDecoder::new(max);
        let mut out = Vec::new();
        // One byte at a time: where reads end must not matter.
        for b in bytes {
            d.push(&[*b]);
            while let Some(e) = d.next_event() {
                let stop = e.is_err();
                out.push(e);
                if stop {
                    return out;
                }
            }
        }
        out
    }

    #[test]
    fn messages_of_every_length_encoding() {
        for len in [0usize, 5, 125, 126, 300, 65_535, 65_536, 70_000] {
            let body = vec![b'a'; len];
            let got = events(&client(0x81, &body), 100_000);
            assert_eq!(got, vec![Ok(WsEvent::Message(Bytes::from(body)))], "{len}");
        }
    }

    #[test]
    fn fragments_with_a_ping_between() {
        let mut b = client(0x01, b"INVITE sip:a@b ");
        b.extend(client(0x89, b"hi"));
        b.extend(client(0x00, b"SIP/2.0\r\n"));
        b.extend(client(0x80, b"\r\n"));
        assert_eq!(
            events(&b, 1000),
            vec![
                Ok(WsEvent::Ping(Bytes::from_static(b"hi"))),
                Ok(WsEvent::Message(Bytes::from_static(
                    b"INVITE sip:a@b SIP/2.0\r\n\r\n"
                ))),
            ]
        );
    }

    #[test]
    fn close_pong_and_binary() {
        let mut b = client(0x82, &[0xff, 0x00]);
        b.extend(client(0x8A, b""));
        b.extend(client(0x88, &close_payload(1001, "bye")));
        assert_eq!(
            events(&b, 1000),
            vec![
                Ok(WsEvent::Message(Bytes::from_static(&[0xff, 0x00]))),
                Ok(WsEvent::Pong),
                Ok(WsEvent::Close(Some(1001))),
            ]
        );
        assert_eq!(
            events(&client(0x88, b""), 10),
            vec![Ok(WsEvent::Close(None))]
        );
    }

    #[test]
    fn protocol_errors() {
        let err = |b: &[u8], max| events(b, max).pop().unwrap().unwrap_err().status;
        // Not masked.
        assert_eq!(err(&[0x81, 0x01, b'a'], 100), status::PROTOCOL_ERROR);
        // Reserved bit.
        assert_eq!(err(&client(0xC1, b"a"), 100), status::PROTOCOL_ERROR);
        // Unknown opcode.
        assert_eq!(err(&client(0x83, b"a"), 100), status::PROTOCOL_ERROR);
        // Fragmented or long control frame.
        assert_eq!(err(&client(0x09, b"a"), 100), status::PROTOCOL_ERROR);
        assert_eq!(err(&client(0x89, &[0; 126]), 1000), status::PROTOCOL_ERROR);
        // Continuation out of nowhere; a new message inside a fragmented one.
        assert_eq!(err(&client(0x80, b"a"), 100), status::PROTOCOL_ERROR);
        let mut b = client(0x01, b"a");
        b.extend(client(0x81, b"b"));
        assert_eq!(err(&b, 100), status::PROTOCOL_ERROR);
        // Too big, whole or by fragments.
        assert_eq!(err(&client(0x81, &[b'a'; 101]), 100), status::TOO_BIG);
        let mut b = client(0x01, &[b'a'; 60]);
        b.extend(client(0x80, &[b'a'; 60]));
        assert_eq!(err(&b, 100), status::TOO_BIG);
        // Text that is not UTF-8.
        assert_eq!(err(&client(0x81, &[0xff]), 100), status::INVALID_DATA);
        // A one-byte close payload; a reserved status; a reason not UTF-8.
        assert_eq!(err(&client(0x88, &[3]), 100), status::PROTOCOL_ERROR);
        assert_eq!(
            err(&client(0x88, &1005u16.to_be_bytes()), 100),
            status::PROTOCOL_ERROR
        );
        assert_eq!(
            err(&client(0x88, &[0x03, 0xE8, 0xff]), 100),
            status::INVALID_DATA
        );
    }

    #[test]
    fn server_frames_and_close_payloads() {
        let mut out = Vec::new();
        encode(opcode::TEXT, b"abc", &mut out);
        assert_eq!(out, [0x81, 3, b'a', b'b', b'c']);
        out.clear();
        encode(opcode::BINARY, &[0; 200], &mut out);
        assert_eq!(&out[..4], &[0x82, 126, 0, 200]);
        let p = close_payload(1000, &"é".repeat(100));
        assert!(p.len() <= 125 && std::str::from_utf8(&p[2..]).is_ok());
    }
}
