//! Edits ("lumps") applied against the original buffer.

use sip_msg::edit::{ApplyOptions, Edits};
use sip_msg::{HeaderName, Message};

const REQ: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
X-Keep:  odd   spacing\r\n\
Content-Type: text/plain\r\n\
Content-Length: 5\r\n\
\r\n\
hello";

fn apply(m: &Message<'_>, e: &Edits) -> String {
    String::from_utf8(e.apply(m, ApplyOptions::default())).unwrap()
}

#[test]
fn no_edits_is_byte_identical() {
    let m = Message::parse(REQ.as_bytes()).unwrap();
    assert_eq!(apply(&m, &Edits::new()), REQ);
}

#[test]
fn proxy_edits_prepend_via_record_route_ruri_and_max_forwards() {
    let m = Message::parse(REQ.as_bytes()).unwrap();
    let mut e = Edits::new();
    e.prepend_via(&m, "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKproxy1");
    e.add_header_first(&m, "Record-Route", "<sip:10.0.0.1;lr>");
    e.set_request_uri(&m, "sip:bob@192.0.2.4:5062");
    e.replace_value(m.header(HeaderName::MaxForwards).unwrap(), "69");
    let out = apply(&m, &e);
    let o = Message::parse(out.as_bytes()).unwrap();
    assert_eq!(o.request_uri().unwrap().raw, "sip:bob@192.0.2.4:5062");
    let vias: Vec<_> = o
        .vias()
        .map(|v| v.unwrap().branch().unwrap().to_string())
        .collect();
    assert_eq!(vias, ["z9hG4bKproxy1", "z9hG4bK776asdhds"]);
    assert_eq!(o.max_forwards().unwrap(), Some(69));
    assert_eq!(o.record_routes().count(), 1);
    assert!(
        out.contains("X-Keep:  odd   spacing\r\n"),
        "untouched header kept byte-for-byte"
    );
    assert_eq!(o.body(), b"hello");
}

#[test]
fn remove_and_replace_headers() {
    let m = Message::parse(REQ.as_bytes()).unwrap();
    let mut e = Edits::new();
    let keep = m.headers_by_name("X-Keep").next().unwrap();
    e.remove_header(keep);
    e.insert_header_before(keep, "X-New", "1");
    e.insert_header_after(m.header(HeaderName::CallId).unwrap(), "X-After-Callid", "2");
    e.append_header(&m, "X-Last", "3");
    let out = apply(&m, &e);
    assert!(!out.contains("X-Keep"));
    let o = Message::parse(out.as_bytes()).unwrap();
    let names: Vec<_> = o.headers().iter().map(|h| h.name_str).collect();
    assert_eq!(
        names,
        [
            "Via",
            "Max-Forwards",
            "To",
            "From",
            "Call-ID",
            "X-After-Callid",
            "CSeq",
            "X-New",
            "Content-Type",
            "Content-Length",
            "X-Last"
        ]
    );
}

#[test]
fn set_body_fixes_content_length_and_type() {
    let m = Message::parse(REQ.as_bytes()).unwrap();
    let mut e = Edits::new();
    e.set_body(b"v=0\r\n", Some("application/sdp"));
    let out = apply(&m, &e);
    let o = Message::parse(out.as_bytes()).unwrap();
    assert_eq!(o.body(), b"v=0\r\n");
    assert_eq!(o.content_length(), Some(5));
    assert!(o.content_type().unwrap().unwrap().is("application", "sdp"));
    assert_eq!(o.headers_named(HeaderName::ContentType).count(), 1);
    // Removing the body entirely.
    let mut e = Edits::new();
    e.set_body(b"", None);
    let o2 = apply(&m, &e);
    let o2 = Message::parse(o2.as_bytes()).unwrap();
    assert_eq!(o2.content_length(), Some(0));
    assert!(o2.body().is_empty());
}

#[test]
fn content_length_added_for_streams_when_missing() {
    let raw = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\nabc";
    let m = Message::parse(raw.as_bytes()).unwrap();
    let out = Edits::new().apply(
        &m,
        ApplyOptions {
            ensure_content_length: true,
        },
    );
    let o = Message::parse(&out).unwrap();
    assert_eq!(o.content_length(), Some(3));
    assert_eq!(o.body(), b"abc");
}

#[test]
fn remove_top_via_from_a_multi_value_line() {
    let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP proxy;branch=z9hG4bKp, SIP/2.0/UDP uac;branch=z9hG4bKu\r\nCSeq: 1 INVITE\r\n\r\n";
    let m = Message::parse(raw.as_bytes()).unwrap();
    let mut e = Edits::new();
    e.remove_top_via(&m);
    let out = apply(&m, &e);
    let o = Message::parse(out.as_bytes()).unwrap();
    let v: Vec<_> = o
        .vias()
        .map(|v| v.unwrap().branch().unwrap().to_string())
        .collect();
    assert_eq!(v, ["z9hG4bKu"]);
    // And from a single-value line: the whole line goes.
    let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP proxy;branch=z9hG4bKp\r\nVia: SIP/2.0/UDP uac;branch=z9hG4bKu\r\nCSeq: 1 INVITE\r\n\r\n";
    let m = Message::parse(raw.as_bytes()).unwrap();
    let mut e = Edits::new();
    e.remove_top_via(&m);
    assert_eq!(apply(&m, &e).matches("Via:").count(), 1);
}

#[test]
fn edits_inside_a_deleted_header_are_dropped_and_reuse_works() {
    let m = Message::parse(REQ.as_bytes()).unwrap();
    let mut e = Edits::new();
    let to = m.header(HeaderName::To).unwrap();
    e.remove_header(to);
    e.replace_value(to, "ignored");
    let out = apply(&m, &e);
    assert!(!out.contains("To:"));
    assert!(!out.contains("ignored"));
    e.clear();
    assert!(e.is_empty());
    assert_eq!(apply(&m, &e), REQ);
}

#[test]
fn an_exact_copy_applies_like_the_original_and_takes_more_edits() {
    let m = Message::parse(REQ.as_bytes()).unwrap();
    let mut e = Edits::new();
    e.add_header_first(&m, "Record-Route", "<sip:10.0.0.1;lr>");
    e.replace_value(m.header(HeaderName::MaxForwards).unwrap(), "69");
    e.set_body(b"new body", Some("text/plain"));
    let mut c = e.clone_exact();
    assert_eq!(apply(&m, &c), apply(&m, &e));
    c.prepend_via(&m, "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKcopy");
    let out = apply(&m, &c);
    let o = Message::parse(out.as_bytes()).unwrap();
    assert_eq!(o.top_via().unwrap().branch(), Some("z9hG4bKcopy"));
    assert_eq!(o.record_routes().count(), 1);
    assert_eq!(o.max_forwards().unwrap(), Some(69));
    assert!(out.ends_with("\r\n\r\nnew body"));
    assert!(
        !apply(&m, &e).contains("z9hG4bKcopy"),
        "the original is untouched"
    );
}

#[test]
fn edits_inside_the_body_fix_content_length() {
    let m = Message::parse(REQ.as_bytes()).unwrap();
    let start = m.body_start();
    let mut e = Edits::new();
    // "hello" → "he!!o, world": a replacement inside, an insertion at the
    // end, and a header edit before the body.
    e.replace(start + 2, start + 4, b"!!");
    e.insert(start + 5, b", world");
    e.append_header(&m, "X-A", "1");
    let out = apply(&m, &e);
    let o = Message::parse(out.as_bytes()).unwrap();
    assert_eq!(o.body(), b"he!!o, world");
    assert_eq!(o.content_length(), Some(12));
    assert!(out.contains("X-A: 1\r\n"), "{out}");
    // A deletion of the whole body.
    let mut e = Edits::new();
    e.delete(start, start + 5);
    let o2 = apply(&m, &e);
    assert!(o2.ends_with("Content-Length: 0\r\n\r\n"), "{o2}");
}

#[test]
fn edits_past_the_end_are_dropped_and_a_deletion_into_the_body_holds() {
    let m = Message::parse(REQ.as_bytes()).unwrap();
    let start = m.body_start();
    let len = REQ.len() as u32;
    // An edit beyond the message (from another buffer) is ignored.
    let mut e = Edits::new();
    e.insert(len + 10, b"junk");
    e.insert(start, b">");
    let out = apply(&m, &e);
    assert!(out.ends_with("\r\n\r\n>hello"), "{out}");
    // A deletion from the last header's value into the body, with an edit
    // in the body as well: the body part stays deleted.
    let cl = REQ.find("Content-Length: 5").unwrap() as u32 + 16;
    let mut e = Edits::new();
    e.delete(cl, start + 2);
    e.insert(start + 5, b"!");
    let out = apply(&m, &e);
    assert!(out.ends_with("llo!"), "{out}");
    assert!(!out.contains("hello"), "{out}");
}
