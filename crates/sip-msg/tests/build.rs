//! Replies, CANCEL and ACK built from a request.

use sip_msg::build::{ack_for_non2xx, cancel, reply, ReplyOptions};
use sip_msg::{HeaderName, Message, Method};

const REQ: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp1, SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776\r\n\
Via: SIP/2.0/UDP third.example;branch=z9hG4bK3\r\n\
Route: <sip:edge.example;lr>\r\n\
Record-Route: <sip:proxy.example;lr>\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Timestamp: 54\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn reply_copies_the_right_headers_and_adds_a_to_tag() {
    let req = Message::parse(REQ.as_bytes()).unwrap();
    let opts = ReplyOptions {
        to_tag: Some("xyz"),
        top_via: Some("SIP/2.0/UDP proxy.example;branch=z9hG4bKp1;received=10.1.1.1"),
        extra_headers: "Server: siprouter\r\n",
        ..Default::default()
    };
    let out = reply(&req, 486, "Busy Here", &opts).unwrap();
    let r = Message::parse(&out).unwrap();
    assert_eq!(r.status(), Some(486));
    assert_eq!(r.reason(), Some("Busy Here"));
    let vias: Vec<_> = r.vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].received(), Some("10.1.1.1"));
    assert_eq!(vias[1].branch(), Some("z9hG4bK776"));
    assert_eq!(r.to().unwrap().tag(), Some("xyz"));
    assert_eq!(r.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(r.call_id().unwrap(), "a84b4c76e66710");
    assert_eq!(r.cseq().unwrap().method, Method::Invite);
    assert_eq!(r.server(), Some("siprouter"));
    assert_eq!(r.record_routes().count(), 0);
    assert!(r.header(HeaderName::Timestamp).is_none());
    assert_eq!(r.content_length(), Some(0));
}

#[test]
fn hundred_trying_keeps_to_untagged_and_copies_timestamp() {
    let req = Message::parse(REQ.as_bytes()).unwrap();
    let opts = ReplyOptions {
        to_tag: Some("t"),
        ..Default::default()
    };
    let r = reply(&req, 100, "Trying", &opts).unwrap();
    let r = Message::parse(&r).unwrap();
    assert_eq!(r.to().unwrap().tag(), None);
    assert_eq!(r.value(HeaderName::Timestamp), Some("54"));
}

#[test]
fn existing_to_tag_is_kept_and_body_and_record_route_can_be_added() {
    let raw = REQ.replace(
        "To: Bob <sip:bob@biloxi.com>",
        "To: Bob <sip:bob@biloxi.com>;tag=old",
    );
    let req = Message::parse(raw.as_bytes()).unwrap();
    let opts = ReplyOptions {
        to_tag: Some("new"),
        body: Some(("text/plain", b"hi")),
        copy_record_route: true,
        ..Default::default()
    };
    let r = reply(&req, 200, "OK", &opts).unwrap();
    let r = Message::parse(&r).unwrap();
    assert_eq!(r.to().unwrap().tag(), Some("old"));
    assert_eq!(r.body(), b"hi");
    assert_eq!(r.record_routes().count(), 1);
}

#[test]
fn cancel_matches_the_request() {
    let req = Message::parse(REQ.as_bytes()).unwrap();
    let c = cancel(
        &req,
        Some("SIP;cause=200;text=\"Call completed elsewhere\""),
    )
    .unwrap();
    let c = Message::parse(&c).unwrap();
    assert_eq!(c.method(), Some(Method::Cancel));
    assert_eq!(c.request_uri().unwrap().raw, "sip:bob@biloxi.com");
    let vias: Vec<_> = c.vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 1, "only the top Via");
    assert_eq!(vias[0].branch(), Some("z9hG4bKp1"));
    assert_eq!(c.routes().count(), 1);
    let cseq = c.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (314159, Method::Cancel));
    assert_eq!(c.to().unwrap().tag(), None);
    assert!(c.value(HeaderName::Reason).unwrap().contains("cause=200"));
}

#[test]
fn ack_for_non2xx_takes_to_from_the_response() {
    let req = Message::parse(REQ.as_bytes()).unwrap();
    let resp_raw = reply(
        &req,
        486,
        "Busy Here",
        &ReplyOptions {
            to_tag: Some("b1"),
            ..Default::default()
        },
    )
    .unwrap();
    let resp = Message::parse(&resp_raw).unwrap();
    let a = ack_for_non2xx(&req, &resp).unwrap();
    let a = Message::parse(&a).unwrap();
    assert_eq!(a.method(), Some(Method::Ack));
    assert_eq!(a.to().unwrap().tag(), Some("b1"));
    assert_eq!(a.cseq().unwrap().method, Method::Ack);
    assert_eq!(a.cseq().unwrap().seq, 314159);
    assert_eq!(a.vias().count(), 1);
    assert_eq!(a.top_via().unwrap().branch(), Some("z9hG4bKp1"));
}

#[test]
fn builders_refuse_requests_missing_headers() {
    let req =
        Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n")
            .unwrap();
    assert!(reply(&req, 200, "OK", &ReplyOptions::default()).is_err());
    assert!(cancel(&req, None).is_err());
}

#[test]
fn a_reply_to_a_request_whose_to_does_not_parse_copies_it_as_it_came() {
    // RFC 4475 3.1.2.6: an unterminated quote in To. The 400 must still be
    // sent; its To is the request's, untouched and without a tag.
    let raw = REQ.replace(
        "To: Bob <sip:bob@biloxi.com>",
        "To: \"Bob <sip:bob@biloxi.com>",
    );
    let req = Message::parse(raw.as_bytes()).unwrap();
    assert!(req.to_tag().is_err());
    let opts = ReplyOptions {
        to_tag: Some("xyz"),
        ..Default::default()
    };
    let out = String::from_utf8(reply(&req, 400, "Invalid To Header", &opts).unwrap()).unwrap();
    assert!(
        out.starts_with("SIP/2.0 400 Invalid To Header\r\n"),
        "{out}"
    );
    assert!(
        out.contains("\r\nTo: \"Bob <sip:bob@biloxi.com>\r\n"),
        "{out}"
    );
    assert!(!out.contains("tag=xyz"), "{out}");
}
