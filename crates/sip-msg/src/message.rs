//! The message model and the zero-copy parser.
//!
//! [`Message::parse`] reads the start line and splits the header section
//! into [`Header`]s that borrow from the input; no header value is decoded
//! until something asks for it (see the typed accessors in
//! [`crate::access`]).

use crate::error::ParseError;
use crate::header_name::{known_name_at, HeaderName};
use crate::method::Method;
use crate::scan::{is_token, is_token_byte, lws_trimmed_bytes, lws_trimmed_range, parse_u32};
use crate::uri::Uri;

/// The default maximum message size (Kamailio's BUF_SIZE is 64 KiB).
pub const DEFAULT_MAX_SIZE: usize = 65_535;

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Largest message accepted, in bytes.
    pub max_size: usize,
    /// Largest number of header lines accepted.
    pub max_headers: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_size: DEFAULT_MAX_SIZE,
            max_headers: 256,
        }
    }
}

/// The first line of a message.
#[derive(Debug, Clone, Copy)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP-Version`
    Request {
        /// The method.
        method: Method<'a>,
        /// The Request-URI, parsed.
        uri: Uri<'a>,
        /// Byte offset of the Request-URI in the message.
        uri_offset: u32,
    },
    /// `Method SP Request-Target SP HTTP-Version`: an HTTP/1.x request on
    /// a SIP stream (a WebSocket handshake, an HTTP API call), which the
    /// core hands to the modules' non-SIP hooks (Kamailio's xhttp).
    Http {
        /// The method (`GET`, `POST`, ...).
        method: Method<'a>,
        /// The request target as written (`/`, `/ws?x=1`).
        target: &'a str,
        /// The version as written (`HTTP/1.1`).
        version: &'a str,
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`
    Response {
        /// Status code, 100 to 699.
        code: u16,
        /// Reason phrase (may be empty).
        reason: &'a str,
    },
}

/// One header line (with its continuation lines) as received.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// The kind of header, [`HeaderName::Other`] for unknown ones.
    pub name: HeaderName,
    /// The name as written (compact forms stay compact).
    pub name_str: &'a str,
    /// The value, trimmed; folded line breaks stay inside.
    pub value: &'a str,
    /// Offset of the first byte of the header line.
    pub start: u32,
    /// Offset just past the line break ending the header.
    pub end: u32,
    /// Offset of the first byte of the value.
    pub value_start: u32,
}

impl Header<'_> {
    /// Whether this header has the given name (case-insensitive, compact
    /// forms recognised).
    pub fn is(&self, name: &str) -> bool {
        match HeaderName::parse(name) {
            HeaderName::Other => {
                self.name == HeaderName::Other && self.name_str.eq_ignore_ascii_case(name)
            }
            k => self.name == k,
        }
    }

    /// Offset just past the last byte of the value.
    pub fn value_end(&self) -> u32 {
        self.value_start + self.value.len() as u32
    }
}

/// A parsed SIP message borrowing from the buffer it was read from.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    start_line: StartLine<'a>,
    headers: Vec<Header<'a>>,
    first: [u16; HeaderName::COUNT],
    headers_start: u32,
    headers_end: u32,
    body_start: u32,
    has_content_length: bool,
    /// Headers decoded on first read (see [`crate::decoded`]).
    pub(crate) decoded: crate::decoded::Decoded,
}

const NONE: u16 = u16::MAX;

impl Message<'_> {
    /// Gives back the header index's spare room.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.headers.shrink_to_fit();
    }
}

/// Where the head ends: (offset of the empty line, offset of the body).
///
/// The first empty line ends the head, whether its line break and the one
/// before it are CRLF or bare LF. (One `memchr` per header line: cheaper
/// than building a substring searcher for every message.)
fn find_head_end(b: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 0;
    while let Some(nl) = memchr::memchr(b'\n', &b[pos..]) {
        let at = pos + nl + 1;
        match b.get(at) {
            Some(b'\n') => return Some((at, at + 1)),
            Some(b'\r') if b.get(at + 1) == Some(&b'\n') => return Some((at, at + 2)),
            _ => pos = at,
        }
    }
    None
}

fn check_version(v: &str) -> Result<(), ParseError> {
    // (Exact bytes first: a fixed-size comparison, no case folding.)
    if v.as_bytes() == b"SIP/2.0" || v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let well_formed = v.len() > 4
        && v.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/")
        && v[4..].split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
    if well_formed {
        Err(ParseError::UnsupportedVersion)
    } else {
        Err(ParseError::BadStartLine("invalid SIP version"))
    }
}

/// Whether a request line's version is HTTP/1.0 or HTTP/1.1.
fn is_http_version(v: &str) -> bool {
    v.len() == 8
        && v.as_bytes()[..7].eq_ignore_ascii_case(b"HTTP/1.")
        && matches!(v.as_bytes()[7], b'0' | b'1')
}

/// Splits `s` at its first space (a short byte loop: the method and the
/// version are a few bytes long).
fn split_at_space(s: &str) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == b' ')?;
    Some((&s[..i], &s[i + 1..]))
}

fn parse_start_line(line: &str, line_offset: usize) -> Result<StartLine<'_>, ParseError> {
    // Byte comparisons: `line[..4]` would panic inside a multi-byte char.
    if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        let (version, rest) =
            split_at_space(line).ok_or(ParseError::BadStartLine("no status code"))?;
        check_version(version)?;
        let (code, reason) = split_at_space(rest).unwrap_or((rest, ""));
        if code.len() != 3 {
            return Err(ParseError::BadStartLine("status code is not three digits"));
        }
        let code = parse_u32(code).ok_or(ParseError::BadStartLine("invalid status code"))?;
        if !(100..700).contains(&code) {
            return Err(ParseError::BadStartLine("status code out of range"));
        }
        return Ok(StartLine::Response {
            code: code as u16,
            reason,
        });
    }
    let (method, rest) = split_at_space(line).ok_or(ParseError::BadStartLine("no Request-URI"))?;
    if !is_token(method) {
        return Err(ParseError::BadStartLine("invalid method"));
    }
    let sp = rest
        .bytes()
        .rposition(|b| b == b' ')
        .ok_or(ParseError::BadStartLine("no SIP version"))?;
    let (uri, version) = (&rest[..sp], &rest[sp + 1..]);
    if is_http_version(version) && !uri.is_empty() {
        return Ok(StartLine::Http {
            method: Method::parse(method),
            target: uri,
            version,
        });
    }
    check_version(version)?;
    // White space in the URI always makes `Uri::parse` fail: look for it
    // only then, to give the more precise reason.
    let parsed = Uri::parse(uri).map_err(|e| {
        if uri.is_empty() || uri.bytes().any(|b| b == b' ' || b == b'\t') {
            ParseError::BadStartLine("white space in Request-URI")
        } else {
            e
        }
    })?;
    Ok(StartLine::Request {
        method: Method::parse(method),
        uri: parsed,
        uri_offset: (line_offset + method.len() + 1) as u32,
    })
}

/// Reads the start line's end and the header lines in one pass over the
/// head: each line is scanned once, the name through the token table up to
/// the colon, then `memchr` to the line end. Returns (end of the start line,
/// offset of the empty line, offset of the body).
///
/// An error here is only provisional: [`head_error`] decides which fault
/// to report, in the order the checks are documented to run.
fn scan_head<'a>(
    text: &'a str,
    skip: usize,
    opts: &ParseOptions,
    headers: &mut Vec<Header<'a>>,
    first: &mut [u16; HeaderName::COUNT],
) -> Result<(usize, usize, usize), ParseError> {
    let b = text.as_bytes();
    let line_end = |from: usize| memchr::memchr(b'\n', &b[from..]).map(|n| from + n);
    let sl_end = line_end(skip).ok_or(ParseError::Truncated)?;
    let mut pos = sl_end + 1;
    loop {
        match b.get(pos).copied() {
            None => return Err(ParseError::Truncated),
            Some(b'\n') => return Ok((sl_end, pos, pos + 1)),
            Some(b'\r') if b.get(pos + 1) == Some(&b'\n') => return Ok((sl_end, pos, pos + 2)),
            Some(b' ' | b'\t') => {
                // A continuation line: extend the previous header's value.
                let nl = line_end(pos).ok_or(ParseError::Truncated)?;
                let last = headers.last_mut().ok_or(ParseError::BadHeaderLine)?;
                last.end = nl as u32 + 1;
                let line = &text[pos..nl];
                let line = line.strip_suffix('\r').unwrap_or(line);
                let vstart = last.value_start as usize;
                let vend = pos + line.trim_end_matches([' ', '\t']).len();
                if vend > vstart {
                    let (lead, end) = lws_trimmed_range(&text[vstart..vend]);
                    last.value_start = (vstart + lead) as u32;
                    last.value = &text[vstart + lead..vstart + end];
                }
                pos = nl + 1;
            }
            Some(_) => {
                if headers.len() >= opts.max_headers {
                    return Err(ParseError::TooLarge {
                        limit: opts.max_size,
                    });
                }
                // token *(SP / HTAB) ":", a known name found directly
                // when it can be.
                let (name, name_end, colon) = match known_name_at(b, pos) {
                    Some((name, colon)) => (name, colon, colon),
                    None => {
                        let mut i = pos;
                        while i < b.len() && is_token_byte(b[i]) {
                            i += 1;
                        }
                        let name_end = i;
                        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                            i += 1;
                        }
                        if name_end == pos || b.get(i) != Some(&b':') {
                            return Err(ParseError::BadHeaderLine);
                        }
                        (HeaderName::parse(&text[pos..name_end]), name_end, i)
                    }
                };
                let nl = line_end(colon + 1).ok_or(ParseError::Truncated)?;
                // The value: without the CR of the line break, then the
                // same trim as `trim_lws` (a stray CR included), so that
                // `value_start` really is where `value` starts.
                let raw_end = if nl > colon + 1 && b[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                let (lead, vend) = lws_trimmed_bytes(&b[colon + 1..raw_end]);
                let name_str = &text[pos..name_end];
                if name != HeaderName::Other && first[name as usize] == NONE {
                    first[name as usize] = headers.len() as u16;
                }
                headers.push(Header {
                    name,
                    name_str,
                    value: &text[colon + 1 + lead..colon + 1 + vend],
                    start: pos as u32,
                    end: nl as u32 + 1,
                    value_start: (colon + 1 + lead) as u32,
                });
                pos = nl + 1;
            }
        }
    }
}

/// The fault to report when [`scan_head`] stopped at `err`, in the order
/// the checks are documented: no end of head, head not UTF-8, bad start
/// line, then the header fault itself.
fn head_error(buf: &[u8], skip: usize, err: ParseError) -> ParseError {
    let Some((empty_line, _)) = find_head_end(&buf[skip..]) else {
        return ParseError::Truncated;
    };
    let Ok(head) = std::str::from_utf8(&buf[..skip + empty_line]) else {
        return ParseError::NotUtf8;
    };
    let sl = head[skip..].split('\n').next().unwrap_or("");
    match parse_start_line(sl.strip_suffix('\r').unwrap_or(sl), skip) {
        Err(e) => e,
        Ok(_) => err,
    }
}

impl<'a> Message<'a> {
    /// Parses a whole message (a datagram, or a frame cut by the stream
    /// framer) with the default limits.
    ///
    /// A missing Content-Length means the body is the rest of the buffer;
    /// bytes past Content-Length are ignored.
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Self::parse_with(buf, &ParseOptions::default())
    }

    /// Parses with explicit limits.
    pub fn parse_with(buf: &'a [u8], opts: &ParseOptions) -> Result<Message<'a>, ParseError> {
        if buf.len() > opts.max_size {
            return Err(ParseError::TooLarge {
                limit: opts.max_size,
            });
        }
        let skip = buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .ok_or(ParseError::Empty)?;
        // The head must be UTF-8, the body need not be: validate as far as
        // the buffer is valid (a single pass, fast on ASCII) and let the
        // header scan fail if the head runs past that.
        let text = match std::str::from_utf8(buf) {
            Ok(t) => t,
            Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or_default(),
        };
        let mut headers: Vec<Header<'a>> = Vec::with_capacity(24);
        let mut first = [NONE; HeaderName::COUNT];
        let scanned = scan_head(text, skip, opts, &mut headers, &mut first);
        let (sl_end, empty_line, body_start) = match scanned {
            Ok(ends) => ends,
            Err(e) => return Err(head_error(buf, skip, e)),
        };
        let sl = &text[skip..sl_end];
        let start_line = parse_start_line(sl.strip_suffix('\r').unwrap_or(sl), skip)?;
        let headers_start = sl_end as u32 + 1;

        let mut msg = Message {
            raw: buf,
            start_line,
            headers,
            first,
            headers_start,
            headers_end: empty_line as u32,
            body_start: body_start as u32,
            has_content_length: false,
            decoded: Default::default(),
        };
        let available = buf.len() - body_start;
        let mut declared: Option<u32> = None;
        for h in msg.headers_named(HeaderName::ContentLength) {
            let n = parse_u32(h.value).ok_or(ParseError::BadHeader {
                name: "Content-Length",
                what: "not a number",
            })?;
            if declared.is_some_and(|d| d != n) {
                return Err(ParseError::ConflictingContentLength);
            }
            declared = Some(n);
        }
        msg.has_content_length = declared.is_some();
        let body_len = match declared {
            Some(n) if n as usize > available => {
                return Err(ParseError::BodyTooShort {
                    expected: n as usize,
                    got: available,
                })
            }
            Some(n) => n as usize,
            None => available,
        };
        msg.raw = &buf[..body_start + body_len];
        Ok(msg)
    }

    /// The message bytes, up to the end of the body (bytes past
    /// Content-Length excluded).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The start line.
    pub fn start_line(&self) -> &StartLine<'a> {
        &self.start_line
    }

    /// Whether this is a SIP request.
    pub fn is_request(&self) -> bool {
        matches!(self.start_line, StartLine::Request { .. })
    }

    /// Whether this is an HTTP request ([`StartLine::Http`]).
    pub fn is_http(&self) -> bool {
        matches!(self.start_line, StartLine::Http { .. })
    }

    /// The method of a SIP or HTTP request, `None` for a reply (see
    /// [`crate::access`] for the CSeq method of replies).
    pub fn method(&self) -> Option<Method<'a>> {
        match self.start_line {
            StartLine::Request { method, .. } | StartLine::Http { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The request target of an HTTP request (`/path?query`).
    pub fn http_target(&self) -> Option<&'a str> {
        match self.start_line {
            StartLine::Http { target, .. } => Some(target),
            _ => None,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&Uri<'a>> {
        match &self.start_line {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Http { .. } | StartLine::Response { .. } => None,
        }
    }

    /// The status code of a reply.
    pub fn status(&self) -> Option<u16> {
        match self.start_line {
            StartLine::Response { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The reason phrase of a reply.
    pub fn reason(&self) -> Option<&'a str> {
        match self.start_line {
            StartLine::Response { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// All headers in their original order.
    pub fn headers(&self) -> &[Header<'a>] {
        &self.headers
    }

    /// The first header of a known kind.
    pub fn header(&self, name: HeaderName) -> Option<&Header<'a>> {
        if name == HeaderName::Other {
            return None;
        }
        match self.first[name as usize] {
            NONE => None,
            i => self.headers.get(i as usize),
        }
    }

    /// All headers of a known kind, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &Header<'a>> + '_ {
        let from = match (name, self.header(name)) {
            (HeaderName::Other, _) | (_, None) => self.headers.len(),
            _ => self.first[name as usize] as usize,
        };
        self.headers[from..].iter().filter(move |h| h.name == name)
    }

    /// All headers with this name (any spelling; unknown names compared
    /// case-insensitively).
    pub fn headers_by_name<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Header<'a>> {
        let kind = HeaderName::parse(name);
        self.headers.iter().filter(move |h| match kind {
            HeaderName::Other => {
                h.name == HeaderName::Other && h.name_str.eq_ignore_ascii_case(name)
            }
            k => h.name == k,
        })
    }

    /// The body (empty when there is none).
    pub fn body(&self) -> &'a [u8] {
        &self.raw[self.body_start as usize..]
    }

    /// Whether the message carried a Content-Length header.
    pub fn has_content_length(&self) -> bool {
        self.has_content_length
    }

    /// Offset of the first header line (just after the start line).
    pub fn headers_start(&self) -> u32 {
        self.headers_start
    }

    /// Offset of the empty line that ends the headers: where appended
    /// headers go.
    pub fn headers_end(&self) -> u32 {
        self.headers_end
    }

    /// Offset of the first body byte.
    pub fn body_start(&self) -> u32 {
        self.body_start
    }

    /// A message with the parts of this one moved to `raw` (see
    /// [`Message::rebased`]).
    pub(crate) fn with_parts<'b>(
        &self,
        raw: &'b [u8],
        start_line: StartLine<'b>,
        headers: Vec<Header<'b>>,
    ) -> Message<'b> {
        Message {
            raw,
            start_line,
            headers,
            first: self.first,
            headers_start: self.headers_start,
            headers_end: self.headers_end,
            body_start: self.body_start,
            has_content_length: self.has_content_length,
            decoded: self.decoded.clone(),
        }
    }

    /// Checks the headers every request (RFC 3261 8.1.1) or reply needs to
    /// be handled: Via, From, To, Call-ID, CSeq.
    pub fn check_mandatory(&self) -> Result<(), ParseError> {
        for h in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            if self.header(h).is_none() {
                return Err(ParseError::MissingHeader(h.as_str()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn http_requests_parse_as_http() {
        let m = Message::parse(b"GET /ws?a=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
            .unwrap();
        assert!(m.is_http() && !m.is_request());
        assert_eq!(m.method().unwrap().as_str(), "GET");
        assert_eq!(m.http_target(), Some("/ws?a=1"));
        assert!(m.request_uri().is_none() && m.status().is_none());
        assert_eq!(
            m.headers_by_name("upgrade").next().unwrap().value,
            "websocket"
        );
        // Other versions stay SIP's business.
        assert!(matches!(
            Message::parse(b"GET / HTTP/2.0\r\n\r\n"),
            Err(ParseError::BadStartLine(_))
        ));
        assert!(Message::parse(b"GET sip:a@b SIP/2.0\r\n\r\n")
            .unwrap()
            .is_request());
    }

    use super::*;

    /// Found by fuzzing: a value starting with a stray CR was trimmed by
    /// `trim_lws` but `value_start` only skipped spaces and tabs, so the
    /// offsets (used by `Edits::replace_value`) pointed one byte early.
    #[test]
    fn value_start_matches_trimmed_value() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nTo:  \rsip:c@d\r\nX:\t\r \r\n\r\n";
        let m = Message::parse(raw).unwrap();
        for h in m.headers() {
            let (s, e) = (h.value_start as usize, h.value_end() as usize);
            assert_eq!(&raw[s..e], h.value.as_bytes(), "{}", h.name_str);
        }
        assert_eq!(m.headers()[0].value, "sip:c@d");
        assert_eq!(m.headers()[1].value, "");
    }

    #[test]
    fn first_empty_line_ends_the_head() {
        // A bare-LF line break followed by a CRLF empty line ends the head
        // even when a CRLFCRLF comes later (it is then body).
        let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\nX: 1\n\r\nY: 2\r\n\r\n").unwrap();
        assert_eq!(m.headers().len(), 1);
        assert_eq!(m.body(), b"Y: 2\r\n\r\n");
        let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nX: 1\r\n\r\nbody").unwrap();
        assert_eq!((m.headers_end(), m.body_start()), (31, 33));
        assert_eq!(
            Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nX: 1\r\n").unwrap_err(),
            ParseError::Truncated
        );
    }

    /// Found by fuzzing: the start line and the version were sliced at
    /// byte 4 as `str`, which panics when a multi-byte character spans it.
    #[test]
    fn multibyte_char_at_byte_four_is_an_error_not_a_panic() {
        for raw in [
            "ABC\u{58c} sip:a@b SIP/2.0\r\n\r\n",
            "INVITE sip:a@b SIP\u{e9}\r\n\r\n",
            "SIP\u{e9} 200 OK\r\n\r\n",
        ] {
            assert!(Message::parse(raw.as_bytes()).is_err(), "{raw:?}");
        }
    }
}
