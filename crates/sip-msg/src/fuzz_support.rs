//! The bodies of the fuzz targets, shared by `fuzz/fuzz_targets/*` and the
//! stable-toolchain corpus replay test (`tests/fuzz_corpus.rs`).
//!
//! Each function takes arbitrary bytes, drives the public API as a caller
//! would, and panics only when an invariant that must hold for every input
//! is broken (or when the code under test panics by itself).

use crate::build::{self, ReplyOptions};
use crate::edit::{ApplyOptions, Edits};
use crate::framer::{Frame, FrameError, StreamFramer};
use crate::header_name::HeaderName;
use crate::headers::{ContactValue, NameAddr, Via};
use crate::message::{Message, StartLine};
use crate::uri::Uri;

/// Header kinds whose typed accessors the message target always calls.
const KINDS: [HeaderName; 12] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::Contact,
    HeaderName::Route,
    HeaderName::RecordRoute,
    HeaderName::Supported,
    HeaderName::Allow,
    HeaderName::Authorization,
    HeaderName::Other,
];

const AUTH: [HeaderName; 5] = [
    HeaderName::Authorization,
    HeaderName::ProxyAuthorization,
    HeaderName::WwwAuthenticate,
    HeaderName::ProxyAuthenticate,
    HeaderName::AuthenticationInfo,
];

/// Calls every URI accessor and checks that equality is reflexive.
fn touch_uri(u: &Uri<'_>) {
    let _ = (u.scheme, u.user, u.password, u.host_str, u.port, u.headers);
    let _ = u.host.ip();
    let _ = u.host.to_string();
    let _ = (u.is_sip(), u.transport(), u.is_lr(), u.maddr());
    let _ = u.default_port();
    for p in u.param_iter() {
        let _ = u.param(p.name);
    }
    assert!(u.rfc_eq(u), "URI not equal to itself: {:?}", u.raw);
}

fn touch_name_addr(n: &NameAddr<'_>) {
    touch_uri(&n.uri);
    let _ = (n.raw, n.display, n.uri_str, n.params, n.bracketed);
    let _ = (n.tag(), n.display_name(), n.expires(), n.q());
    let _ = n.param("lr");
}

fn touch_via(v: &Via<'_>) {
    let _ = (v.raw, v.protocol, v.transport, v.host_str, v.host, v.port);
    let _ = (v.branch(), v.is_rfc3261_branch(), v.received(), v.rport());
    let _ = (
        v.maddr(),
        v.ttl(),
        v.alias(),
        v.is_reliable(),
        v.default_port(),
    );
}

/// Every typed accessor and iterator of a parsed message.
pub fn exercise_message(msg: &Message<'_>) {
    match msg.start_line() {
        StartLine::Request {
            method,
            uri,
            uri_offset,
        } => {
            let _ = method.as_str();
            touch_uri(uri);
            let at = *uri_offset as usize;
            assert_eq!(
                msg.raw().get(at..at + uri.raw.len()),
                Some(uri.raw.as_bytes()),
                "uri_offset does not point at the Request-URI"
            );
        }
        StartLine::Http {
            method,
            target,
            version,
        } => {
            let _ = method.as_str();
            assert!(!target.is_empty() && version.len() == 8);
        }
        StartLine::Response { code, reason } => {
            assert!((100..700).contains(code));
            let _ = reason;
        }
    }
    let _ = (msg.method(), msg.request_uri(), msg.status(), msg.reason());
    let raw = msg.raw();
    for h in msg.headers() {
        let _ = h.is(h.name_str);
        let _ = h.is("via");
        let (s, e, vs, ve) = (
            h.start as usize,
            h.end as usize,
            h.value_start as usize,
            h.value_end() as usize,
        );
        assert!(s < e && s <= vs && vs <= ve && ve <= e && e <= raw.len());
        assert_eq!(&raw[vs..ve], h.value.as_bytes(), "value offsets");
        let _ = msg.values(h.name).count();
        let _ = msg.headers_by_name(h.name_str).count();
        let _ = msg.headers_named(h.name).count();
    }
    for k in KINDS {
        let _ = msg.header(k);
        let _ = msg.value(k);
        let _ = msg.values(k).count();
        let _ = msg.tokens(k).count();
        let _ = msg.has_token(k, "100rel");
    }
    let _ = msg.call_id();
    let _ = msg.cseq();
    let _ = msg.txn_method();
    if let Ok(n) = msg.from() {
        touch_name_addr(&n);
    }
    if let Ok(n) = msg.to() {
        touch_name_addr(&n);
    }
    // The cached tags are the decoded values' tags, or the same error.
    assert_eq!(msg.from_tag(), msg.from().map(|n| n.tag()), "From tag");
    assert_eq!(msg.to_tag(), msg.to().map(|n| n.tag()), "To tag");
    let fresh = Message::parse(msg.raw()).expect("parsed once");
    assert_eq!(fresh.to_tag(), msg.to().map(|n| n.tag()), "To tag first");
    for v in msg.vias().flatten() {
        touch_via(&v);
    }
    let _ = msg.top_via();
    for c in msg.contacts().flatten() {
        if let ContactValue::Addr(n) = c {
            touch_name_addr(&n);
        }
    }
    for n in msg
        .routes()
        .chain(msg.record_routes())
        .chain(msg.paths())
        .flatten()
    {
        touch_name_addr(&n);
    }
    let _ = (msg.max_forwards(), msg.expires(), msg.min_expires());
    let _ = msg.content_length();
    if let Ok(Some(ct)) = msg.content_type() {
        let _ = (ct.is("application", "sdp"), ct.param("charset"));
    }
    if let Ok(Some(ev)) = msg.event() {
        let _ = ev.id();
    }
    for k in AUTH {
        for a in msg.auth_values(k).flatten() {
            let _ = (a.is_digest(), a.get("realm"), a.get_raw("nonce"));
        }
    }
    let _ = (msg.user_agent(), msg.server(), msg.body());
    let _ = (msg.has_content_length(), msg.check_mandatory());
    assert!(msg.headers_start() <= msg.headers_end());
    assert!(msg.headers_end() <= msg.body_start());
    assert!(msg.body_start() as usize <= raw.len());
}

/// The `message` fuzz target: parse, read everything, edit, build replies.
pub fn message(data: &[u8]) {
    let Ok(msg) = Message::parse(data) else {
        return;
    };
    exercise_message(&msg);

    // No edits: the exact bytes go out.
    let out = Edits::new().apply(&msg, ApplyOptions::default());
    assert_eq!(out, msg.raw(), "empty edit list changed the message");

    // A few typical proxy edits must not panic.
    let mut ed = Edits::new();
    ed.prepend_via(&msg, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfuzz");
    ed.remove_top_via(&msg);
    if let Some(h) = msg.headers().first() {
        ed.replace_value(h, "x");
    }
    if let Some(h) = msg.headers().last() {
        ed.remove_header(h);
    }
    ed.set_request_uri(&msg, "sip:fuzz@example.com");
    ed.append_header(&msg, "X-Fuzz", "1");
    let _ = ed.apply(
        &msg,
        ApplyOptions {
            ensure_content_length: true,
        },
    );
    ed.set_body(b"v=0\r\n", Some("application/sdp"));
    let _ = ed.apply(&msg, ApplyOptions::default());

    if msg.is_request() {
        let opts = ReplyOptions {
            to_tag: Some("fuzztag"),
            copy_record_route: true,
            ..ReplyOptions::default()
        };
        if let Ok(r) = build::reply(&msg, 486, "Busy Here", &opts) {
            if let Ok(resp) = Message::parse(&r) {
                exercise_message(&resp);
                let _ = build::ack_for_non2xx(&msg, &resp);
            }
        }
        let _ = build::reply(&msg, 100, "Trying", &ReplyOptions::default());
        if let Ok(c) = build::cancel(&msg, Some("SIP;cause=487")) {
            if let Ok(cm) = Message::parse(&c) {
                exercise_message(&cm);
            }
        }
    }
}

/// The `uri` fuzz target: parse the input and both halves of it, compare
/// them; RFC 3261 URI equality must be reflexive and symmetric.
pub fn uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = Uri::parse(s) {
        touch_uri(&u);
    }
    // Split at a char boundary chosen by the input itself.
    let mut cut = data.first().map_or(0, |&b| b as usize) % (s.len() + 1);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let (a, b) = s.split_at(cut);
    if let (Ok(x), Ok(y)) = (Uri::parse(a), Uri::parse(b)) {
        touch_uri(&x);
        touch_uri(&y);
        assert_eq!(
            x.rfc_eq(&y),
            y.rfc_eq(&x),
            "rfc_eq not symmetric: {a:?} vs {b:?}"
        );
    }
}

/// One thing a framer produced, for comparing two runs.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Msg(Vec<u8>),
    Ping,
    Pong,
    NoLength(Vec<u8>),
    BadLength(Vec<u8>),
}

/// Feeds `stream` in chunks of the given sizes (cycled), collecting every
/// frame; stops at the first `TooLarge` (the connection would be closed).
fn run_framer(stream: &[u8], sizes: &[usize], max: usize) -> Vec<Event> {
    let mut f = StreamFramer::new(max);
    let mut events = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        let end = (pos + n).min(stream.len());
        f.push(&stream[pos..end]);
        pos = end;
        i += 1;
        // Each frame consumes at least one byte, so this loop ends.
        let mut guard = f.buffered() + 2;
        while let Some(r) = f.next_frame() {
            guard -= 1;
            assert!(guard > 0, "framer yields frames without consuming bytes");
            match r {
                Ok(Frame::Message(b)) => {
                    if let Ok(m) = Message::parse(&b) {
                        exercise_message(&m);
                    }
                    events.push(Event::Msg(b.to_vec()));
                }
                Ok(Frame::Ping) => events.push(Event::Ping),
                Ok(Frame::Pong) => events.push(Event::Pong),
                Err(FrameError::Garbage { skipped }) => assert!(skipped > 0),
                Err(FrameError::MissingContentLength(h)) => {
                    events.push(Event::NoLength(h.to_vec()))
                }
                Err(FrameError::BadContentLength(h)) => events.push(Event::BadLength(h.to_vec())),
                Err(FrameError::TooLarge | FrameError::BadChunked) => return events,
            }
        }
        assert!(f.buffered() <= stream.len());
    }
    events
}

/// The `framer` fuzz target: the first bytes choose chunk sizes, the rest
/// is the stream. Chunking must not change which frames come out.
pub fn framer(data: &[u8]) {
    let (head, stream) = data.split_at(data.len().min(4));
    let sizes: Vec<usize> = head.iter().map(|&b| (b as usize % 97) + 1).collect();
    let max = 4096;
    let chunked = run_framer(stream, &sizes, max);
    let whole = run_framer(stream, &[stream.len().max(1)], max);
    assert_eq!(
        chunked,
        whole,
        "chunking {sizes:?} changed the frames of {:?}",
        stream.escape_ascii().to_string()
    );
}
