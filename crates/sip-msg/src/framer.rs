//! Cutting SIP messages out of a byte stream (TCP, TLS): RFC 3261 18.3
//! framing by Content-Length, RFC 5626 CRLF keep-alives, and recovery
//! after garbage without losing the next good message.

use crate::header_name::HeaderName;
use crate::scan::parse_u32;
use bytes::{Bytes, BytesMut};

/// What [`StreamFramer::next_frame`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete message (head and body), ready for
    /// [`crate::Message::parse`].
    Message(Bytes),
    /// A double-CRLF keep-alive ping (RFC 5626 3.5.1); the transport
    /// answers with a single CRLF pong.
    Ping,
    /// A single CRLF (a pong, or padding); nothing to do.
    Pong,
}

/// A framing fault. After every error except [`FrameError::TooLarge`] and
/// [`FrameError::BadChunked`], the framer has skipped the bad bytes and
/// can go on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Bytes that do not start a SIP message were skipped.
    Garbage {
        /// How many bytes were dropped.
        skipped: usize,
    },
    /// A message head has no Content-Length (required on streams). The
    /// head is returned so a 400 can be sent; a zero-length body is
    /// assumed so the stream stays in step.
    MissingContentLength(Bytes),
    /// Content-Length is not a number; the head is returned as above.
    BadContentLength(Bytes),
    /// A message exceeds the size limit: the connection should be closed.
    TooLarge,
    /// An HTTP request's chunked body is malformed: the stream is out of
    /// step, the connection should be closed.
    BadChunked,
}

/// Accumulates stream bytes and yields framed messages.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    /// A chunked HTTP body being read: where the next chunk starts in
    /// `buf`, and the body so far.
    chunked: Option<(usize, Vec<u8>)>,
    max_size: usize,
    /// Garbage without a line end was dropped: the bytes up to the next
    /// LF still belong to that garbage line.
    in_garbage_line: bool,
}

impl StreamFramer {
    /// A framer refusing messages larger than `max_size` bytes.
    pub fn new(max_size: usize) -> Self {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            chunked: None,
            max_size,
            in_garbage_line: false,
        }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes waiting for the rest of their message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the bytes not framed yet (the stream changes protocol, as
    /// after a WebSocket upgrade).
    pub fn take_buffered(&mut self) -> BytesMut {
        self.in_garbage_line = false;
        self.chunked = None;
        self.buf.split()
    }

    /// The next frame, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        if self.in_garbage_line {
            // Finish skipping the garbage line cut by a read boundary, so
            // that its tail is not taken for a keep-alive or a start line.
            let skip = match memchr::memchr(b'\n', &self.buf) {
                Some(nl) => {
                    self.in_garbage_line = false;
                    nl + 1
                }
                None => self.buf.len(),
            };
            if skip == 0 {
                return None;
            }
            let _ = self.buf.split_to(skip);
            return Some(Err(FrameError::Garbage { skipped: skip }));
        }
        // Keep-alives: CRLFCRLF is a ping, a lone CRLF a pong.
        if self.buf.starts_with(b"\r\n\r\n") {
            let _ = self.buf.split_to(4);
            return Some(Ok(Frame::Ping));
        }
        if self.buf.starts_with(b"\r\n") {
            if self.buf.len() < 4 && b"\r\n\r\n".starts_with(&self.buf[..]) {
                // Could still become a ping: wait, unless a message follows.
                return None;
            }
            let _ = self.buf.split_to(2);
            return Some(Ok(Frame::Pong));
        }
        if self.buf.is_empty() || self.buf[..] == b"\r"[..] {
            // (A lone CR may be the start of a CRLF keep-alive.)
            return None;
        }
        if !looks_like_start(&self.buf) {
            return Some(Err(self.skip_garbage()));
        }
        let head_end = match memchr::memmem::find(&self.buf, b"\r\n\r\n") {
            Some(i) => i + 4,
            None => {
                if self.buf.len() > self.max_size {
                    self.buf.clear();
                    return Some(Err(FrameError::TooLarge));
                }
                return None;
            }
        };
        if head_end > self.max_size {
            self.buf.clear();
            return Some(Err(FrameError::TooLarge));
        }
        if is_http_head(&self.buf) && chunked(&self.buf[..head_end]) {
            return self.chunked_frame(head_end);
        }
        let cl = match content_length(&self.buf[..head_end]) {
            Ok(Some(n)) => n as usize,
            // An HTTP request without Content-Length has no body.
            Ok(None) if is_http_head(&self.buf) => 0,
            Ok(None) => {
                return Some(Err(FrameError::MissingContentLength(
                    self.buf.split_to(head_end).freeze(),
                )))
            }
            Err(()) => {
                return Some(Err(FrameError::BadContentLength(
                    self.buf.split_to(head_end).freeze(),
                )))
            }
        };
        let total = head_end + cl;
        if total > self.max_size {
            self.buf.clear();
            return Some(Err(FrameError::TooLarge));
        }
        if self.buf.len() < total {
            return None;
        }
        Some(Ok(Frame::Message(self.buf.split_to(total).freeze())))
    }

    /// An HTTP request whose body comes in chunks (RFC 7230 4.1): the head
    /// followed by the body put back together, once the last chunk (and
    /// any trailer) is in. Where it got to is kept between calls, so each
    /// byte is looked at once however the stream is cut.
    fn chunked_frame(&mut self, head_end: usize) -> Option<Result<Frame, FrameError>> {
        let (mut pos, mut body) = match self.chunked.take() {
            Some(state) => state,
            None => (head_end, Vec::new()),
        };
        let room = self.max_size.saturating_sub(head_end);
        loop {
            let b = &self.buf[..];
            let Some(nl) = memchr::memchr(b'\n', &b[pos..]) else {
                return self.need_more(pos, body);
            };
            let line = &b[pos..pos + nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let hex = line.split(|&c| c == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| usize::from_str_radix(h.trim(), 16).ok());
            let Some(size) = size else {
                return self.fail(FrameError::BadChunked);
            };
            if size > room.saturating_sub(body.len()) {
                return self.fail(FrameError::TooLarge);
            }
            let start = pos + nl + 1;
            if size == 0 {
                // Trailer lines up to an empty one.
                let mut at = start;
                loop {
                    let Some(nl) = memchr::memchr(b'\n', &b[at..]) else {
                        return self.need_more(pos, body);
                    };
                    let empty = nl == 0 || (nl == 1 && b[at] == b'\r');
                    at += nl + 1;
                    if empty {
                        break;
                    }
                }
                let mut msg = BytesMut::with_capacity(head_end + body.len());
                msg.extend_from_slice(&b[..head_end]);
                msg.extend_from_slice(&body);
                let _ = self.buf.split_to(at);
                return Some(Ok(Frame::Message(msg.freeze())));
            }
            // (size <= room, so this does not overflow.)
            let end = start + size;
            if b.len() < end + 2 {
                return self.need_more(pos, body);
            }
            if &b[end..end + 2] != b"\r\n" {
                return self.fail(FrameError::BadChunked);
            }
            body.extend_from_slice(&b[start..end]);
            pos = end + 2;
        }
    }

    /// More bytes are needed to go on from `pos` with `body` so far;
    /// unless the buffer already holds more than a message may.
    fn need_more(&mut self, pos: usize, body: Vec<u8>) -> Option<Result<Frame, FrameError>> {
        if self.buf.len() > self.max_size * 2 {
            return self.fail(FrameError::TooLarge);
        }
        self.chunked = Some((pos, body));
        None
    }

    /// A fault that ends the stream: what is buffered is dropped.
    fn fail(&mut self, e: FrameError) -> Option<Result<Frame, FrameError>> {
        self.buf.clear();
        self.chunked = None;
        Some(Err(e))
    }

    /// Drops bytes up to the next line that could start a message.
    fn skip_garbage(&mut self) -> FrameError {
        let mut pos = 0;
        let skip = loop {
            match memchr::memchr(b'\n', &self.buf[pos..]) {
                Some(nl) => {
                    pos += nl + 1;
                    let rest = &self.buf[pos..];
                    if rest.starts_with(b"\r\n") || looks_like_start(rest) {
                        break pos;
                    }
                    if rest.len() < 8 && !rest.contains(&b'\n') {
                        // Not enough to judge the line: keep it for later.
                        break pos;
                    }
                }
                None => {
                    self.in_garbage_line = true;
                    break self.buf.len();
                }
            }
        };
        let _ = self.buf.split_to(skip);
        FrameError::Garbage { skipped: skip }
    }
}

/// Whether `b` plausibly starts a request or status line: `SIP/` or a
/// token followed by a space and a URI-ish word, ending its line with
/// ` SIP/<digit>`. Short input that could still be either counts as yes.
fn looks_like_start(b: &[u8]) -> bool {
    if b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"SIP/") {
        return true;
    }
    let line_end = memchr::memchr(b'\n', b);
    let line = match line_end {
        Some(e) => &b[..e],
        None => {
            // Incomplete line: judge what is there as the check below will
            // judge the whole line (a non-empty token before the first
            // space), so that where a read ends changes nothing.
            let b = b.strip_suffix(b"\r").unwrap_or(b);
            let method_end = b.iter().position(|&c| c == b' ').unwrap_or(b.len());
            return method_end > 0
                && b[..method_end]
                    .iter()
                    .all(|&c| crate::scan::is_token_byte(c));
        }
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(sp) = line.iter().position(|&c| c == b' ') else {
        return false;
    };
    let method = &line[..sp];
    !method.is_empty()
        && method.iter().all(|&c| crate::scan::is_token_byte(c))
        && line.len() >= 9
        && (line[line.len() - 8..].eq_ignore_ascii_case(b" SIP/2.0") || http_line(line))
}

/// Whether a request line ends with ` HTTP/1.0` or ` HTTP/1.1` (an HTTP
/// request on a SIP stream: a WebSocket handshake).
fn http_line(line: &[u8]) -> bool {
    line.len() >= 9
        && line[line.len() - 9..line.len() - 1].eq_ignore_ascii_case(b" HTTP/1.")
        && matches!(line[line.len() - 1], b'0' | b'1')
}

/// Whether the head in `b` starts with an HTTP request line.
fn is_http_head(b: &[u8]) -> bool {
    let line = memchr::memchr(b'\n', b).map_or(b, |e| &b[..e]);
    http_line(line.strip_suffix(b"\r").unwrap_or(line))
}

/// Whether a head says `Transfer-Encoding: chunked`.
fn chunked(head: &[u8]) -> bool {
    head.split(|&c| c == b'\n').skip(1).any(|line| {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return false;
        };
        line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"transfer-encoding")
            && line[colon + 1..]
                .split(|&c| c == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    })
}

/// Finds Content-Length (or `l`) in a head. `Err` when it is not a number.
fn content_length(head: &[u8]) -> Result<Option<u32>, ()> {
    for line in head.split(|&c| c == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = std::str::from_utf8(&line[..colon]).map_err(|_| ())?;
        if HeaderName::parse(name.trim_end()) == HeaderName::ContentLength {
            let v = std::str::from_utf8(&line[colon + 1..]).map_err(|_| ())?;
            return parse_u32(v.trim()).map(Some).ok_or(());
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_requests_frame_without_content_length() {
        let get: &[u8] = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
        let sip: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";
        assert_eq!(
            frames(&[get, sip]),
            vec![
                Frame::Message(Bytes::from_static(get)),
                Frame::Message(Bytes::from_static(sip))
            ]
        );
        let post: &[u8] = b"POST /rpc HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(
            frames(&[post]),
            vec![Frame::Message(Bytes::from_static(post))]
        );
        // A chunked body, cut anywhere, comes out whole after the head.
        let head: &[u8] = b"POST /RPC HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let wire = [
            head,
            b"4;x=y\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n",
            sip,
        ]
        .concat();
        for cut in 1..wire.len() {
            let (a, b) = wire.split_at(cut);
            assert_eq!(
                frames(&[a, b]),
                vec![
                    Frame::Message(Bytes::from([head, b"{\"a\":1}"].concat())),
                    Frame::Message(Bytes::from_static(sip))
                ],
                "cut at {cut}"
            );
        }
        let mut f = StreamFramer::new(4096);
        f.push(head);
        f.push(b"zz\r\n");
        assert_eq!(f.next_frame(), Some(Err(FrameError::BadChunked)));
        assert_eq!(f.buffered(), 0);
        // A chunk size that would overflow: refused, no panic.
        for size in ["ffffffffffffffff", "1001"] {
            let mut f = StreamFramer::new(4096);
            f.push(head);
            f.push(format!("{size}\r\nabc").as_bytes());
            assert_eq!(f.next_frame(), Some(Err(FrameError::TooLarge)), "{size}");
        }
        // HTTP/2 is not HTTP/1.x: garbage on a SIP stream.
        let mut f = StreamFramer::new(4096);
        f.push(b"GET / HTTP/2.0\r\n\r\n");
        assert!(matches!(
            f.next_frame(),
            Some(Err(FrameError::Garbage { .. }))
        ));
    }

    fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut f = StreamFramer::new(4096);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            while let Some(r) = f.next_frame() {
                if let Ok(fr) = r {
                    out.push(fr);
                }
            }
        }
        out
    }

    /// Found by fuzzing: garbage without a line end was dropped whole, and
    /// the rest of that line, arriving in the next read, was taken for a
    /// pong or even for the start of a message.
    #[test]
    fn garbage_line_cut_by_a_read_is_skipped_to_its_end() {
        let msg: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";
        let whole = [b"\x01junk OPTIONS sip:x@y SIP/2.0\r\n\r\n".as_slice(), msg].concat();
        let expected = frames(&[&whole]);
        assert_eq!(
            expected,
            vec![Frame::Pong, Frame::Message(Bytes::from(msg))]
        );
        // A method that is a token but does not start with a letter.
        let odd = b"- sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";
        for cut in 1..odd.len() {
            let (a, b) = odd.split_at(cut);
            assert_eq!(frames(&[a, b]), frames(&[odd]), "cut at {cut}");
        }
        for cut in 1..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(frames(&[a, b]), expected, "cut at {cut}");
        }
    }
}
