//! Parser tests: RFC 3261 examples, unusual but legal syntax, and malformed
//! messages with the reply each must get.

use sip_msg::headers::ContactValue;
use sip_msg::{HeaderName, Host, Message, Method, ParseError, ParseOptions, Scheme};

fn join(lines: &[&str]) -> Vec<u8> {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s.into_bytes()
}

/// The INVITE of RFC 3261 section 24.2 (F1), written out here.
fn rfc_invite() -> Vec<u8> {
    let body = "v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.com\r\ns=-\r\nc=IN IP4 pc33.atlanta.com\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let mut m = join(&[
        "INVITE sip:bob@biloxi.com SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
        "Max-Forwards: 70",
        "To: Bob <sip:bob@biloxi.com>",
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710@pc33.atlanta.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:alice@pc33.atlanta.com>",
        "Content-Type: application/sdp",
        &format!("Content-Length: {}", body.len()),
        "",
    ]);
    m.extend_from_slice(body.as_bytes());
    m
}

#[test]
fn rfc3261_invite_all_routing_headers() {
    let raw = rfc_invite();
    let m = Message::parse(&raw).unwrap();
    assert!(m.is_request());
    assert_eq!(m.method(), Some(Method::Invite));
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.user, Some("bob"));
    assert_eq!(ruri.host, Host::Name("biloxi.com"));
    let via = m.top_via().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(via.host, Host::Name("pc33.atlanta.com"));
    assert_eq!(m.max_forwards().unwrap(), Some(70));
    assert_eq!(m.to().unwrap().display, Some("Bob"));
    assert_eq!(m.to().unwrap().tag(), None);
    assert_eq!(m.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(m.call_id().unwrap(), "a84b4c76e66710@pc33.atlanta.com");
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (314159, Method::Invite));
    let contacts: Vec<_> = m.contacts().collect::<Result<_, _>>().unwrap();
    assert_eq!(contacts.len(), 1);
    assert!(m.content_type().unwrap().unwrap().is("application", "sdp"));
    assert!(m.body().starts_with(b"v=0\r\n"));
    assert_eq!(m.body().len() as u32, m.content_length().unwrap());
    assert!(m.check_mandatory().is_ok());
}

#[test]
fn rfc3261_response_with_several_vias_and_record_route() {
    let raw = join(&[
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP server10.biloxi.com;branch=z9hG4bKnashds8;received=192.0.2.3",
        "Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2",
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds ;received=192.0.2.1",
        "Record-Route: <sip:server10.biloxi.com;lr>, <sip:bigbox3.site3.atlanta.com;lr>",
        "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf",
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710@pc33.atlanta.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:bob@192.0.2.4>",
        "Content-Length: 0",
        "",
    ]);
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.reason(), Some("OK"));
    assert_eq!(m.txn_method().unwrap(), Method::Invite);
    let vias: Vec<_> = m.vias().collect::<Result<_, _>>().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[2].received(), Some("192.0.2.1"));
    let rr: Vec<_> = m.record_routes().collect::<Result<_, _>>().unwrap();
    assert_eq!(rr.len(), 2);
    assert!(rr[0].uri.is_lr());
    assert_eq!(rr[1].uri.host, Host::Name("bigbox3.site3.atlanta.com"));
    assert_eq!(m.to().unwrap().tag(), Some("a6c85cf"));
}

#[test]
fn compact_forms_folding_and_split_headers() {
    let raw = join(&[
        "REGISTER sip:registrar.biloxi.com SIP/2.0",
        "v: SIP/2.0/TCP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7",
        "v: SIP/2.0/UDP relay.example;branch=z9hG4bK2, SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK3",
        "t: Bob <sip:bob@biloxi.com>",
        "f: Bob",
        "  <sip:bob@biloxi.com>",
        "\t;tag=456248",
        "i: 843817637684230@998sdasdh09",
        "CSeq   :   1826 REGISTER",
        "m: <sip:bob@192.0.2.4>;expires=3600;q=0.8,",
        " \"Bob's desk\" <sip:bob@192.0.2.5>;q=1",
        "m: *",
        "Expires: 7200",
        "k: path, outbound",
        "Supported: gruu",
        "l: 0",
        "",
    ]);
    let m = Message::parse(&raw).unwrap();
    let vias: Vec<_> = m.vias().collect::<Result<_, _>>().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport, "TCP");
    assert_eq!(vias[2].port, Some(5070));
    let from = m.from().unwrap();
    assert_eq!(from.display, Some("Bob"));
    assert_eq!(from.tag(), Some("456248"));
    assert_eq!(m.cseq().unwrap().seq, 1826);
    let contacts: Vec<_> = m.contacts().collect::<Result<_, _>>().unwrap();
    assert_eq!(contacts.len(), 3);
    match contacts[1] {
        ContactValue::Addr(a) => {
            assert_eq!(a.display_name().unwrap(), "Bob's desk");
            assert_eq!(a.q(), Some(1000));
        }
        ContactValue::Star => panic!("expected an address"),
    }
    assert!(matches!(contacts[2], ContactValue::Star));
    assert_eq!(m.expires().unwrap(), Some(7200));
    let sup: Vec<_> = m.tokens(HeaderName::Supported).collect();
    assert_eq!(sup, ["path", "outbound", "gruu"]);
    assert!(m.has_token(HeaderName::Supported, "GRUU"));
    assert_eq!(m.content_length(), Some(0));
    assert_eq!(m.headers_by_name("Call-ID").count(), 1);
    assert_eq!(m.headers_by_name("contact").count(), 2, "two Contact lines");
}

#[test]
fn unusual_but_legal_syntax() {
    let long = "x".repeat(8000);
    let raw = join(&[
        "OPTIONS sip:%61lice@[2001:db8::10]:5060;transport=tcp SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw;rport",
        "To: \"\\\"quoted\\\" \\\\ name\" <sip:user@example.com>",
        "From: sip:caller@example.net;tag=abc",
        "Call-ID: cid@host",
        "CSeq: 8 OPTIONS",
        "Max-Forwards: 0",
        &format!("X-Long: {long}"),
        "X-Empty:",
        "Unknown-Header: with: colons, and, commas",
        "Date: Sat, 13 Nov 2010 23:29:00 GMT",
        "",
    ]);
    let m = Message::parse(&raw).unwrap();
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.host, Host::V6("2001:db8::10".parse().unwrap()));
    assert_eq!(ruri.transport(), Some("tcp"));
    assert_eq!(
        m.to().unwrap().display_name().unwrap(),
        "\"quoted\" \\ name"
    );
    assert_eq!(m.from().unwrap().tag(), Some("abc"));
    assert_eq!(m.top_via().unwrap().rport(), Some(None));
    assert_eq!(m.max_forwards().unwrap(), Some(0));
    assert_eq!(
        m.headers_by_name("x-long").next().unwrap().value.len(),
        8000
    );
    assert_eq!(m.headers_by_name("X-Empty").next().unwrap().value, "");
    assert_eq!(m.values(HeaderName::Date).count(), 1);
    assert_eq!(m.values(HeaderName::Other).count(), 0);
    // Missing Content-Length over UDP: the body is the rest of the datagram.
    assert!(m.body().is_empty());
    assert!(!m.has_content_length());
}

#[test]
fn tel_and_opaque_request_uris_parse() {
    let raw = join(&[
        "INVITE tel:+1-212-555-0100;phone-context=example.com SIP/2.0",
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
        "",
    ]);
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.request_uri().unwrap().scheme, Scheme::Tel);
    let raw = join(&[
        "MESSAGE urn:service:sos SIP/2.0",
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
        "",
    ]);
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.request_uri().unwrap().scheme, Scheme::Other);
}

#[test]
fn body_rules() {
    // Extra bytes after Content-Length are discarded.
    let mut raw = join(&[
        "MESSAGE sip:a@b SIP/2.0",
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
        "Content-Length: 5",
        "",
    ]);
    raw.extend_from_slice(b"helloEXTRA");
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.body(), b"hello");
    assert_eq!(m.raw().len(), raw.len() - 5);
    // A shorter body is a 400.
    let mut raw = join(&["MESSAGE sip:a@b SIP/2.0", "Content-Length: 50", ""]);
    raw.extend_from_slice(b"short");
    let e = Message::parse(&raw).unwrap_err();
    assert_eq!(
        e,
        ParseError::BodyTooShort {
            expected: 50,
            got: 5
        }
    );
    assert_eq!(e.status(), 400);
    // Conflicting Content-Length headers.
    let raw = join(&[
        "MESSAGE sip:a@b SIP/2.0",
        "l: 0",
        "Content-Length: 3",
        "",
        "abc",
    ]);
    assert_eq!(
        Message::parse(&raw).unwrap_err(),
        ParseError::ConflictingContentLength
    );
}

#[test]
fn leading_crlf_and_bare_lf_are_tolerated() {
    let m =
        Message::parse(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\n")
            .unwrap();
    assert_eq!(m.method(), Some(Method::Options));
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK1"));
}

/// Each malformed message and the status code it must get.
#[test]
fn malformed_messages_get_the_right_reply() {
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (join(&["INVITE sip:a@b SIP/7.0", ""]), 505, "version"),
        (join(&["INVITE sip:a@b SIP/2.0x", ""]), 400, "bad version"),
        (
            join(&["INVITE sip:user@exa mple.com SIP/2.0", ""]),
            400,
            "space in R-URI",
        ),
        (join(&["INVITE  SIP/2.0", ""]), 400, "no R-URI"),
        (join(&["INVITE sip:a@b:99999 SIP/2.0", ""]), 400, "bad port"),
        (join(&["INV(ITE sip:a@b SIP/2.0", ""]), 400, "bad method"),
        (join(&["SIP/2.0 2000 OK", ""]), 400, "status digits"),
        (join(&["SIP/2.0 099 Low", ""]), 400, "status range"),
        (
            join(&["INVITE sip:a@b SIP/2.0", "NoColonHere", ""]),
            400,
            "header line",
        ),
        (
            join(&["INVITE sip:a@b SIP/2.0", " folded-first: x", ""]),
            400,
            "continuation first",
        ),
        (
            join(&["INVITE sip:a@b SIP/2.0", "Bad Name: x", ""]),
            400,
            "header name",
        ),
        (
            join(&["INVITE sip:a@b SIP/2.0", "Content-Length: -1", ""]),
            400,
            "CL sign",
        ),
        (
            join(&["INVITE sip:a@b SIP/2.0", "Content-Length: abc", ""]),
            400,
            "CL text",
        ),
    ];
    for (raw, status, what) in cases {
        let e = Message::parse(&raw).expect_err(what);
        assert_eq!(e.status(), status, "{what}: {e}");
        assert!(e.reason().len() > 3, "{what}");
    }
    assert_eq!(Message::parse(b"").unwrap_err(), ParseError::Empty);
    assert_eq!(Message::parse(b"\r\n\r\n").unwrap_err(), ParseError::Empty);
    assert_eq!(
        Message::parse(b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n").unwrap_err(),
        ParseError::Truncated
    );
    assert_eq!(
        Message::parse(b"INVITE sip:a@b SIP/2.0\r\nX: \xff\xfe\r\n\r\n").unwrap_err(),
        ParseError::NotUtf8
    );
}

#[test]
fn typed_header_errors_name_the_header() {
    let raw = join(&[
        "INVITE sip:a@b SIP/2.0",
        "Via: garbage",
        "From: <sip:a@b",
        "To: sip:b@c",
        "Call-ID: has space",
        "CSeq: x INVITE",
        "Max-Forwards: many",
        "Content-Type: text",
        "",
    ]);
    let m = Message::parse(&raw).unwrap();
    let errs = [
        m.top_via().unwrap_err(),
        m.from().unwrap_err(),
        m.call_id().unwrap_err(),
        m.cseq().unwrap_err(),
        m.max_forwards().unwrap_err(),
        m.content_type().unwrap_err(),
    ];
    let names = [
        "Via",
        "From",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Content-Type",
    ];
    for (e, n) in errs.iter().zip(names) {
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains(n), "{e} should name {n}");
    }
    assert!(m.to().is_ok());
    let raw = join(&["OPTIONS sip:a@b SIP/2.0", "Via: SIP/2.0/UDP h", ""]);
    let m = Message::parse(&raw).unwrap();
    assert_eq!(
        m.check_mandatory().unwrap_err(),
        ParseError::MissingHeader("From")
    );
}

#[test]
fn limits_are_enforced() {
    let raw = rfc_invite();
    let opts = ParseOptions {
        max_size: 100,
        ..ParseOptions::default()
    };
    let e = Message::parse_with(&raw, &opts).unwrap_err();
    assert_eq!(e.status(), 513);
    let mut lines = vec!["OPTIONS sip:a@b SIP/2.0".to_string()];
    for i in 0..300 {
        lines.push(format!("X-H{i}: v"));
    }
    lines.push(String::new());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let e = Message::parse(&join(&refs)).unwrap_err();
    assert_eq!(e.status(), 513);
}

#[test]
fn authorization_headers() {
    let raw = join(&[
        "REGISTER sip:example.com SIP/2.0",
        "Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n1\", uri=\"sip:example.com\", response=\"00112233445566778899aabbccddeeff\", algorithm=SHA-256, qop=auth, nc=00000002, cnonce=\"c\"",
        "Proxy-Authorization: Digest username=\"p\", realm=\"r2\"",
        "",
    ]);
    let m = Message::parse(&raw).unwrap();
    let a: Vec<_> = m
        .auth_values(HeaderName::Authorization)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(a.len(), 1, "commas inside credentials do not split");
    assert_eq!(a[0].get("algorithm").unwrap(), "SHA-256");
    assert_eq!(a[0].get("nc").unwrap(), "00000002");
    let p: Vec<_> = m
        .auth_values(HeaderName::ProxyAuthorization)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(p[0].get("realm").unwrap(), "r2");
}
