//! Copying a parsed message onto another borrow of the same bytes without
//! parsing it again: what [`crate::OwnedMessage`]'s `Clone` does.
//!
//! A transaction keeps its own copy of the request it relays (and of each
//! branch); parsing the bytes again for every copy was an eighth of a
//! stateful call's instructions. Every text in a [`Message`] is a slice of
//! its buffer, so the copy rebuilds each slice at the same offset of the
//! new borrow, which must hold the same bytes.

use crate::message::{Header, Message, StartLine};
use crate::uri::{Host, Uri};

/// Re-slices texts of one buffer (`old`) out of another with equal bytes
/// (`new`, already checked as UTF-8 as far as `old`'s head goes).
struct Rebase<'o, 'b> {
    old: &'o [u8],
    new: &'b str,
}

impl<'b> Rebase<'_, 'b> {
    /// The same slice in the new buffer; `None` if `s` is not a slice of
    /// the old one (an empty text may be a literal and stays empty).
    fn str(&self, s: &str) -> Option<&'b str> {
        if s.is_empty() {
            return Some("");
        }
        let (a, b) = crate::scan::offset_in(self.old, s)?;
        self.new.get(a..b)
    }

    fn opt(&self, s: Option<&str>) -> Option<Option<&'b str>> {
        match s {
            None => Some(None),
            Some(s) => self.str(s).map(Some),
        }
    }

    fn uri(&self, u: &Uri<'_>) -> Option<Uri<'b>> {
        let host_str = self.str(u.host_str)?;
        Some(Uri {
            raw: self.str(u.raw)?,
            scheme: u.scheme,
            user: self.opt(u.user)?,
            password: self.opt(u.password)?,
            host_str,
            host: match u.host {
                Host::Name(n) => Host::Name(self.str(n)?),
                Host::V4(a) => Host::V4(a),
                Host::V6(a) => Host::V6(a),
            },
            port: u.port,
            params: self.str(u.params)?,
            headers: self.opt(u.headers)?,
            opaque: self.str(u.opaque)?,
        })
    }
}

impl<'a> Message<'a> {
    /// This message over `buf`, which must start with the same bytes as
    /// the message (typically a clone of the `Bytes` it was parsed from,
    /// which may run on past Content-Length); `None` when it does not. The
    /// decoded-header cache comes along.
    pub fn rebased<'b>(&self, buf: &'b [u8]) -> Option<Message<'b>> {
        let old = self.raw();
        let buf = buf.get(..old.len())?;
        if buf.as_ptr() != old.as_ptr() && buf != old {
            return None;
        }
        // Same bytes: the head is UTF-8 here as it was there.
        let head_end = self.body_start() as usize;
        let new = std::str::from_utf8(buf.get(..head_end)?).ok()?;
        let r = Rebase { old, new };
        let start_line = match self.start_line() {
            StartLine::Request {
                method,
                uri,
                uri_offset,
            } => StartLine::Request {
                method: method.map_name(|s| r.str(s))?,
                uri: r.uri(uri)?,
                uri_offset: *uri_offset,
            },
            StartLine::Http {
                method,
                target,
                version,
            } => StartLine::Http {
                method: method.map_name(|s| r.str(s))?,
                target: r.str(target)?,
                version: r.str(version)?,
            },
            StartLine::Response { code, reason } => StartLine::Response {
                code: *code,
                reason: r.str(reason)?,
            },
        };
        let mut headers: Vec<Header<'b>> = Vec::with_capacity(self.headers().len());
        for h in self.headers() {
            headers.push(Header {
                name: h.name,
                name_str: r.str(h.name_str)?,
                value: r.str(h.value)?,
                start: h.start,
                end: h.end,
                value_start: h.value_start,
            });
        }
        Some(self.with_parts(buf, start_line, headers))
    }
}
