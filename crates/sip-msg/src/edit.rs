//! Editing without re-serialising: changes are recorded as edits ("lumps"
//! in Kamailio) against offsets of the original buffer, and applied in one
//! pass when the outgoing bytes are built. Headers nobody touched are
//! copied byte-for-byte.

use crate::header_name::HeaderName;
use crate::message::{Header, Message, StartLine};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy)]
struct Op {
    at: u32,
    del: u32,
    text_start: u32,
    text_len: u32,
}

/// A list of edits against one message.
///
/// Inserted text lives in one buffer owned by the list, so recording an
/// edit allocates nothing once the list has grown to its working size
/// (call [`Edits::clear`] to reuse it for the next message).
#[derive(Debug, Default)]
pub struct Edits {
    ops: Vec<Op>,
    text: Vec<u8>,
    body: Option<(Vec<u8>, Option<String>)>,
    /// How many edits came before the body was set: the new Content-Type
    /// goes where the headers ended then, before later additions there
    /// (Kamailio's lumps keep that order).
    body_seq: u32,
}

impl Clone for Edits {
    /// A copy with room for a few more edits: a copy is usually made to
    /// add a branch's own (its Via, its Request-URI). An empty list copies
    /// without allocating.
    fn clone(&self) -> Self {
        if self.ops.is_empty() {
            return Edits {
                ops: Vec::new(),
                text: Vec::new(),
                body: self.body.clone(),
                body_seq: self.body_seq,
            };
        }
        let mut ops = Vec::with_capacity(self.ops.len() + 4);
        ops.extend_from_slice(&self.ops);
        let mut text = Vec::with_capacity(self.text.len() + 256);
        text.extend_from_slice(&self.text);
        Edits {
            ops,
            text,
            body: self.body.clone(),
            body_seq: self.body_seq,
        }
    }
}

impl Edits {
    /// A copy without room to spare, for a list that is kept rather than
    /// added to (a transaction's copy of its request, alive for seconds).
    pub fn clone_exact(&self) -> Self {
        Edits {
            ops: self.ops.to_vec(),
            text: self.text.to_vec(),
            body: self.body.clone(),
            body_seq: self.body_seq,
        }
    }
}

/// Options for [`Edits::apply`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Add a Content-Length header when the message has none (required on
    /// stream transports, RFC 3261 18.3).
    pub ensure_content_length: bool,
}

impl Edits {
    /// An empty edit list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets all edits, keeping the allocated space.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.text.clear();
        self.body = None;
        self.body_seq = 0;
    }

    /// Whether no edit was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.body.is_none()
    }

    fn push(&mut self, at: u32, del: u32, parts: &[&[u8]]) {
        // One reservation for all the parts, with room for a few more
        // edits' text at the first one: a relayed request gets several.
        let need: usize = parts.iter().map(|p| p.len()).sum();
        if self.text.capacity() - self.text.len() < need {
            self.text.reserve(need.max(256));
        }
        let text_start = self.text.len() as u32;
        for p in parts {
            self.text.extend_from_slice(p);
        }
        self.ops.push(Op {
            at,
            del,
            text_start,
            text_len: self.text.len() as u32 - text_start,
        });
    }

    /// Inserts bytes at an offset of the original message.
    pub fn insert(&mut self, at: u32, text: &[u8]) {
        self.push(at, 0, &[text]);
    }

    /// Deletes the bytes `start..end` of the original message.
    pub fn delete(&mut self, start: u32, end: u32) {
        self.push(start, end.saturating_sub(start), &[]);
    }

    /// Replaces the bytes `start..end` of the original message.
    pub fn replace(&mut self, start: u32, end: u32, text: &[u8]) {
        self.push(start, end.saturating_sub(start), &[text]);
    }

    fn header_line(&mut self, at: u32, name: &str, value: &str) {
        self.push(at, 0, &[name.as_bytes(), b": ", value.as_bytes(), b"\r\n"]);
    }

    /// Adds `name: value` as the first header.
    pub fn add_header_first(&mut self, msg: &Message<'_>, name: &str, value: &str) {
        self.header_line(msg.headers_start(), name, value);
    }

    /// Adds `name: value` after the last header.
    pub fn append_header(&mut self, msg: &Message<'_>, name: &str, value: &str) {
        self.header_line(msg.headers_end(), name, value);
    }

    /// Adds raw header text (one or more complete lines ending in CRLF)
    /// after the last header, as Kamailio's `append_hf` does.
    pub fn append_raw(&mut self, msg: &Message<'_>, text: &str) {
        self.insert(msg.headers_end(), text.as_bytes());
    }

    /// Adds `name: value` just before `before`.
    pub fn insert_header_before(&mut self, before: &Header<'_>, name: &str, value: &str) {
        self.header_line(before.start, name, value);
    }

    /// Adds `name: value` just after `after`.
    pub fn insert_header_after(&mut self, after: &Header<'_>, name: &str, value: &str) {
        self.header_line(after.end, name, value);
    }

    /// Removes a header line (with its continuation lines).
    pub fn remove_header(&mut self, h: &Header<'_>) {
        self.delete(h.start, h.end);
    }

    /// Replaces a header's value, keeping its name as written.
    pub fn replace_value(&mut self, h: &Header<'_>, value: &str) {
        self.replace(h.value_start, h.value_end(), value.as_bytes());
    }

    /// Rewrites the Request-URI of a request (no-op for a reply).
    pub fn set_request_uri(&mut self, msg: &Message<'_>, uri: &str) {
        if let StartLine::Request {
            uri: old,
            uri_offset,
            ..
        } = msg.start_line()
        {
            let end = *uri_offset + old.raw.len() as u32;
            self.replace(*uri_offset, end, uri.as_bytes());
        }
    }

    /// Adds a Via above the topmost one (`value` without the header name).
    pub fn prepend_via(&mut self, msg: &Message<'_>, value: &str) {
        let at = msg
            .header(HeaderName::Via)
            .map_or(msg.headers_start(), |h| h.start);
        self.header_line(at, "Via", value);
    }

    /// Removes the topmost Via value: the whole first Via line, or only its
    /// first value when the line holds several (as a proxy does to a reply).
    pub fn remove_top_via(&mut self, msg: &Message<'_>) {
        let Some(h) = msg.header(HeaderName::Via) else {
            return;
        };
        match crate::scan::find_top_level(h.value, b',') {
            None => self.remove_header(h),
            Some(comma) => {
                let rest = &h.value[comma + 1..];
                let skip = rest.len() - crate::scan::trim_lws(rest).len();
                let end = h.value_start + (comma + 1 + skip) as u32;
                self.delete(h.value_start, end);
            }
        }
    }

    /// Replaces the body; Content-Length is fixed when applying, and
    /// Content-Type set when `content_type` is given.
    pub fn set_body(&mut self, body: &[u8], content_type: Option<&str>) {
        self.body = Some((body.to_vec(), content_type.map(str::to_string)));
        self.body_seq = self.ops.len() as u32;
    }

    /// The body set by [`Edits::set_body`], with its Content-Type if one
    /// was given (`None` when the body was not replaced).
    pub fn body(&self) -> Option<(&[u8], Option<&str>)> {
        self.body
            .as_ref()
            .map(|(b, ct)| (b.as_slice(), ct.as_deref()))
    }

    /// Index of the last edit whose inserted text starts with `prefix`
    /// (e.g. a Record-Route a module inserted earlier), for
    /// [`Edits::text`] and [`Edits::set_text`].
    pub fn find_text(&self, prefix: &[u8]) -> Option<usize> {
        self.ops.iter().rposition(|o| {
            let t = &self.text[o.text_start as usize..(o.text_start + o.text_len) as usize];
            t.starts_with(prefix)
        })
    }

    /// The text the edit at `index` inserts.
    pub fn text(&self, index: usize) -> Option<&[u8]> {
        let o = self.ops.get(index)?;
        self.text
            .get(o.text_start as usize..(o.text_start + o.text_len) as usize)
    }

    /// Replaces the text the edit at `index` inserts (its position and
    /// deletion stay). False when there is no such edit.
    pub fn set_text(&mut self, index: usize, text: &[u8]) -> bool {
        let start = self.text.len() as u32;
        let Some(o) = self.ops.get_mut(index) else {
            return false;
        };
        o.text_start = start;
        o.text_len = text.len() as u32;
        self.text.extend_from_slice(text);
        true
    }

    /// The recorded edits in the order they were made, as `(start, end,
    /// text)` against the original bytes (an insertion has `start == end`).
    /// The body set by [`Edits::set_body`] is not among them.
    pub fn ops(&self) -> impl Iterator<Item = (u32, u32, &[u8])> + '_ {
        self.ops.iter().map(|o| {
            let t = &self.text[o.text_start as usize..(o.text_start + o.text_len) as usize];
            (o.at, o.at + o.del, t)
        })
    }

    /// Builds the outgoing bytes.
    pub fn apply(&self, msg: &Message<'_>, opts: ApplyOptions) -> Vec<u8> {
        let mut out = Vec::with_capacity(msg.raw().len() + self.text.len() + 64);
        self.apply_into(msg, opts, &mut out);
        out
    }

    /// Builds the outgoing bytes into `out` (appended).
    pub fn apply_into(&self, msg: &Message<'_>, opts: ApplyOptions, out: &mut Vec<u8>) {
        let raw = msg.raw();
        let body_start = msg.body_start();
        // Edits inside the body (textopsx's body-line iterators) make a new
        // body, so that Content-Length follows it, as a body set whole does.
        let edited_body = match &self.body {
            None => self.body_from_ops(raw, body_start),
            Some(_) => None,
        };
        let new_body: Option<&[u8]> = match (&self.body, &edited_body) {
            (Some((b, _)), _) => Some(b),
            (None, Some(b)) => Some(b),
            (None, None) => None,
        };
        let head_end = if new_body.is_some() {
            body_start as usize
        } else {
            raw.len()
        };
        let mut before_body = 0;
        let mut ops: Vec<(u32, u32, Cow<'_, [u8]>)> = self
            .ops
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                (o.at as usize) <= head_end && (edited_body.is_none() || o.at < body_start)
            })
            .map(|(i, o)| {
                if (i as u32) < self.body_seq {
                    before_body += 1;
                }
                let t = &self.text[o.text_start as usize..(o.text_start + o.text_len) as usize];
                (o.at, o.del, Cow::Borrowed(t))
            })
            .collect();
        if let Some((_, Some(ct))) = &self.body {
            for h in msg.headers_named(HeaderName::ContentType) {
                ops.push((h.start, h.end - h.start, Cow::Borrowed(&[][..])));
            }
            let line = format!("Content-Type: {ct}\r\n");
            ops.insert(
                before_body,
                (msg.headers_end(), 0, Cow::Owned(line.into_bytes())),
            );
        }
        let new_len = match new_body {
            Some(b) => Some(b.len()),
            None if opts.ensure_content_length && !msg.has_content_length() => {
                Some(msg.body().len())
            }
            None => None,
        };
        if let Some(len) = new_len {
            let mut any = false;
            for h in msg.headers_named(HeaderName::ContentLength) {
                any = true;
                let v = len.to_string().into_bytes();
                ops.push((h.value_start, h.value.len() as u32, Cow::Owned(v)));
            }
            if !any {
                let line = format!("Content-Length: {len}\r\n");
                ops.push((msg.headers_end(), 0, Cow::Owned(line.into_bytes())));
            }
        }
        splice(raw, 0, head_end, &mut ops, out);
        if let Some(b) = new_body {
            out.extend_from_slice(b);
        }
    }

    /// The body with the edits made inside it, when there are any.
    fn body_from_ops(&self, raw: &[u8], body_start: u32) -> Option<Vec<u8>> {
        let end = raw.len() as u32;
        if !self.ops.iter().any(|o| o.at >= body_start && o.at <= end) {
            return None;
        }
        let mut ops: Vec<(u32, u32, Cow<'_, [u8]>)> = self
            .ops
            .iter()
            .filter_map(|o| {
                if o.at >= body_start && o.at <= end {
                    let t = &self.text[o.text_start as usize..(o.text_start + o.text_len) as usize];
                    return Some((o.at, o.del, Cow::Borrowed(t)));
                }
                // A deletion in the head that runs on into the body takes
                // that part of the body too.
                let reach = o.at.saturating_add(o.del);
                (o.at < body_start && reach > body_start)
                    .then(|| (body_start, reach - body_start, Cow::Borrowed(&[][..])))
            })
            .collect();
        let mut body = Vec::with_capacity(raw.len() - body_start as usize + 64);
        splice(raw, body_start as usize, raw.len(), &mut ops, &mut body);
        Some(body)
    }
}

/// Copies `raw[start..limit]` into `out` with the edits `ops` (offsets in
/// `raw`) made: sorted by offset first, edits at one offset keeping the
/// order they were made in.
fn splice(
    raw: &[u8],
    start: usize,
    limit: usize,
    ops: &mut [(u32, u32, Cow<'_, [u8]>)],
    out: &mut Vec<u8>,
) {
    ops.sort_by_key(|(at, _, _)| *at);
    let mut cursor = start;
    let mut del_start = usize::MAX;
    for (at, del, text) in ops.iter() {
        let (at, end) = (*at as usize, at.saturating_add(*del) as usize);
        if at > limit {
            // (An edit past the end: made against another buffer.)
            continue;
        }
        if at < cursor {
            // Inside an earlier deletion. Text inserted where that
            // deletion starts still goes out (remove + insert = replace);
            // anything else anchored inside it is dropped, and the
            // deletion grows if this one reaches further.
            if at == del_start {
                out.extend_from_slice(text);
            }
            cursor = cursor.max(end.min(limit));
            continue;
        }
        out.extend_from_slice(&raw[cursor..at]);
        out.extend_from_slice(text);
        if end > at {
            del_start = at;
        }
        cursor = end.min(limit);
    }
    out.extend_from_slice(&raw[cursor..limit]);
}
