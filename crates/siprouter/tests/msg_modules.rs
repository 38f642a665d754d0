//! End-to-end: the message-handling modules (maxfwd, sanity, textops,
//! textopsx, siputils) driven from a real config through real SIP on
//! 127.0.0.1. Edits are checked on the wire at a test UAS; checks show up
//! as reply codes and headers at a test UAC.

use sr_testkit::{req, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);
const SHORT: Duration = Duration::from_millis(400);

fn cfg(uas_port: u16) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=2
loadmodule "sl"
loadmodule "maxfwd"
loadmodule "sanity"
loadmodule "textops"
loadmodule "textopsx"
loadmodule "siputils"
modparam("maxfwd", "max_limit", 20)
modparam("sanity", "proxy_require", "foo")
modparam("sanity", "autodrop", 0)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    # every check that can fail on a message the parser accepts
    if (!sanity_check("24551", "7")) {{
        exit;
    }}
    if (is_method("OPTIONS") && uri==myself) {{
        options_reply();
        exit;
    }}
    if ($rU == "reply") {{
        append_to_reply("X-Hint: local $rU\r\n");
        append_to_reply("X-Second: 2");
        sl_send_reply("403", "Not Here");
        exit;
    }}
    if ($rU == "utils") {{
        route(UTILS);
        sl_send_reply("200", "Utils");
        exit;
    }}
    if (is_maxfwd_lt("5")) {{
        append_hf("X-Low-Maxfwd: yes\r\n");
    }}
    if (!maxfwd_at_least("15")) {{
        append_hf("X-High-Maxfwd: yes\r\n");
    }}
    $var(n) = remove_hf("User-Agent");
    if ($var(n) > 0) {{
        append_hf("X-Removed: $var(n)\r\n");
    }}
    append_hf("P-Hint: outbound\r\n");
    insert_hf("P-First: $rU\r\n");
    append_hf("P-After-Callid: 1\r\n", "Call-ID");
    subst('/^Subject: (.*)$/Subject: [fwd] \1/');
    subst_user('/^bob$/robert/');
    if (has_body("text/plain")) {{
        replace_body("hello", "HELLO THERE");
    }}
    if (is_present_hf("Supported")) {{
        remove_hf_value("Supported[1]");
    }}
    remove_hf_re("^X-Secret-");
    append_hf("X-Applied: 1\r\n");
    msg_apply_changes();
    if (is_present_hf("X-Applied")) {{
        append_hf("X-Seen-After-Apply: yes\r\n");
    }}
    $du = "sip:127.0.0.1:{uas_port}";
    forward();
    exit;
}}

route[UTILS] {{
    if (has_totag()) {{ append_to_reply("X-Totag: 1\r\n"); }}
    if (is_first_hop()) {{ append_to_reply("X-First-Hop: 1\r\n"); }}
    if (is_request() && !is_reply()) {{ append_to_reply("X-Request: 1\r\n"); }}
    if (uri_param("transport", "udp")) {{ append_to_reply("X-Uri-Param: 1\r\n"); }}
    if (!uri_param("lr")) {{ append_to_reply("X-No-Lr: 1\r\n"); }}
    if (is_e164("+493012345") && !is_e164("030")) {{ append_to_reply("X-E164: 1\r\n"); }}
    if (is_uri_user_e164("sip:+493012345@example.com")) {{ append_to_reply("X-Uri-E164: 1\r\n"); }}
    if (is_numeric("123") && is_tel_number("+123")) {{ append_to_reply("X-Numeric: 1\r\n"); }}
    if (cmp_uri("sip:alice@EXAMPLE.com;transport=UDP", "sip:alice@example.com;transport=udp")) {{
        append_to_reply("X-Cmp-Uri: 1\r\n");
    }}
    if (cmp_aor("$fu", "sip:alice@example.com:5060")) {{ append_to_reply("X-Cmp-Aor: 1\r\n"); }}
    if (is_user("carol")) {{ append_to_reply("X-User: carol\r\n"); }}
    if (is_method("INVITE|MESSAGE")) {{ append_to_reply("X-Method: 1\r\n"); }}
    if (!is_method("invite,BYE")) {{ append_to_reply("X-Not-Method: 1\r\n"); }}
    if (starts_with("$rU", "ut")) {{ append_to_reply("X-Starts: 1\r\n"); }}
    if (fnmatch("$rU", "u*s")) {{ append_to_reply("X-Fnmatch: 1\r\n"); }}
    if (search("^Subject:.*secret")) {{ append_to_reply("X-Search: 1\r\n"); }}
    if (search_body("^body line")) {{ append_to_reply("X-Search-Body: 1\r\n"); }}
    if (is_present_hf_re("^x-custom")) {{ append_to_reply("X-Present-Re: 1\r\n"); }}
    if (!has_body("application/sdp")) {{ append_to_reply("X-Not-Sdp: 1\r\n"); }}
}}

reply_route {{
    if (!sanity_check("17604", "6")) {{
        drop;
    }}
    if ($rs == 486) {{
        change_reply_status("603", "Declined By Proxy");
    }}
}}
"#
    )
}

struct Env {
    uas: UdpPeer,
    uac: UdpPeer,
    srv: TestServer,
}

fn env() -> Env {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr().port()), siprouter::in_tree());
    Env {
        uas,
        uac: UdpPeer::new(),
        srv,
    }
}

impl Env {
    fn request(&self, method: &str, user: &str, call: &str, extra: &[&str], body: &str) -> String {
        req(
            method,
            &format!("sip:{user}@example.com"),
            self.uac.addr(),
            call,
            call,
            1,
            extra,
            body,
        )
    }

    /// Sends and returns what the UAC got back.
    fn reply_to(&self, text: &str) -> sr_testkit::Reply {
        self.uac.send(self.srv.addr(), text);
        self.uac.recv_final(T).expect("a reply from the proxy")
    }

    /// Sends and returns what the UAS got.
    fn forwarded(&self, text: &str) -> sr_testkit::Reply {
        self.uac.send(self.srv.addr(), text);
        self.uas.recv(T).expect("the UAS got the request")
    }
}

fn header_names(r: &sr_testkit::Reply) -> Vec<String> {
    r.msg
        .msg()
        .headers()
        .iter()
        .map(|h| h.name_str.to_string())
        .collect()
}

#[test]
fn max_forwards_zero_is_a_loop_483() {
    let e = env();
    let m = e
        .request("MESSAGE", "bob", "mf0", &[], "")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    let r = e.reply_to(&m);
    assert_eq!(r.status(), Some(483), "{}", r.text());
    assert!(e.uas.recv(SHORT).is_none(), "not forwarded");
}

#[test]
fn missing_max_forwards_is_added() {
    let e = env();
    let m = e
        .request("MESSAGE", "bob", "mf1", &[], "")
        .replace("Max-Forwards: 70\r\n", "");
    let got = e.forwarded(&m);
    assert_eq!(
        got.header("Max-Forwards").as_deref(),
        Some("10"),
        "{}",
        got.text()
    );
    assert_eq!(got.msg.msg().headers_by_name("Max-Forwards").count(), 1);
}

#[test]
fn max_forwards_is_capped_and_decremented() {
    let e = env();
    // 70 is decremented, then lowered to max_limit 20.
    let got = e.forwarded(&e.request("MESSAGE", "bob", "mf2", &[], ""));
    assert_eq!(got.header("Max-Forwards").as_deref(), Some("20"));
    assert_eq!(got.header("X-High-Maxfwd").as_deref(), Some("yes"));
    assert!(got.header("X-Low-Maxfwd").is_none());
    let m = e
        .request("MESSAGE", "bob", "mf3", &[], "")
        .replace("Max-Forwards: 70", "Max-Forwards: 3");
    let got = e.forwarded(&m);
    assert_eq!(got.header("Max-Forwards").as_deref(), Some("2"));
    assert_eq!(got.header("X-Low-Maxfwd").as_deref(), Some("yes"));
}

#[test]
fn textops_edits_are_on_the_forwarded_request() {
    let e = env();
    let m = e.request(
        "MESSAGE",
        "bob",
        "tx1",
        &[
            "User-Agent: leaky/1.0",
            "Subject: lunch",
            "Content-Type: text/plain",
            "Supported: timer, path",
            "X-Secret-Token: 42",
        ],
        "hello world",
    );
    let got = e.forwarded(&m);
    let text = got.text();
    let names = header_names(&got);
    // remove_hf counted what it removed; the header is gone.
    assert!(got.header("User-Agent").is_none(), "{text}");
    assert_eq!(got.header("X-Removed").as_deref(), Some("1"), "{text}");
    // append_hf: one correct header line, after the others.
    assert_eq!(got.header("P-Hint").as_deref(), Some("outbound"), "{text}");
    assert!(text.contains("\r\nP-Hint: outbound\r\n"), "{text}");
    // insert_hf: before the first header (the message was re-parsed by
    // msg_apply_changes, so the proxy's Via goes above the old top Via).
    assert_eq!(got.header("P-First").as_deref(), Some("bob"));
    assert_eq!(&names[..3], ["P-First", "Via", "Via"], "{names:?}");
    // append_hf after a named header.
    let cid = names.iter().position(|n| n == "Call-ID").unwrap();
    assert_eq!(names[cid + 1], "P-After-Callid", "{names:?}");
    // subst on a header line, subst_user on the Request-URI.
    assert_eq!(
        got.header("Subject").as_deref(),
        Some("[fwd] lunch"),
        "{text}"
    );
    assert_eq!(
        got.msg.msg().request_uri().unwrap().raw,
        "sip:robert@example.com"
    );
    // replace_body: new body and a Content-Length that fits it.
    assert_eq!(got.msg.msg().body(), b"HELLO THERE world");
    assert_eq!(got.msg.msg().content_length(), Some(17));
    // remove_hf_value and remove_hf_re.
    assert_eq!(got.header("Supported").as_deref(), Some("path"), "{text}");
    assert!(got.header("X-Secret-Token").is_none(), "{text}");
    // msg_apply_changes: later functions see the applied edits.
    assert_eq!(got.header("X-Applied").as_deref(), Some("1"));
    assert_eq!(
        got.header("X-Seen-After-Apply").as_deref(),
        Some("yes"),
        "{text}"
    );
}

#[test]
fn append_to_reply_is_on_the_local_reply() {
    let e = env();
    let r = e.reply_to(&e.request("MESSAGE", "reply", "ar1", &[], ""));
    assert_eq!(r.status(), Some(403));
    assert_eq!(
        r.header("X-Hint").as_deref(),
        Some("local reply"),
        "{}",
        r.text()
    );
    // A text without CRLF still makes its own header line.
    assert_eq!(r.header("X-Second").as_deref(), Some("2"), "{}", r.text());
}

#[test]
fn options_reply_answers_for_the_server() {
    let e = env();
    let m = req(
        "OPTIONS",
        &format!("sip:127.0.0.1:{}", e.srv.port),
        e.uac.addr(),
        "op1",
        "op1",
        1,
        &[],
        "",
    );
    let r = e.reply_to(&m);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert!(r.header("Allow").unwrap().contains("INVITE"));
    assert_eq!(r.header("Accept").as_deref(), Some("*/*"));
    assert_eq!(r.header("Accept-Language").as_deref(), Some("en"));
    assert!(r.header("Supported").is_some());
}

#[test]
fn siputils_and_textops_checks() {
    let e = env();
    let m = req(
        "MESSAGE",
        "sip:utils@example.com;transport=udp",
        e.uac.addr(),
        "ut1",
        "ut1",
        1,
        &[
            "Subject: top secret",
            "X-Custom-Thing: 1",
            "Content-Type: text/plain",
            "Authorization: Digest username=\"carol\", realm=\"example.com\", nonce=\"n\", uri=\"sip:utils@example.com\", response=\"0123456789abcdef0123456789abcdef\"",
        ],
        "first\r\nbody line two\r\n",
    );
    let r = e.reply_to(&m);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let text = r.text();
    for h in [
        "X-First-Hop",
        "X-Request",
        "X-Uri-Param",
        "X-No-Lr",
        "X-E164",
        "X-Uri-E164",
        "X-Numeric",
        "X-Cmp-Uri",
        "X-Cmp-Aor",
        "X-Method",
        "X-Not-Method",
        "X-Starts",
        "X-Fnmatch",
        "X-Search",
        "X-Search-Body",
        "X-Present-Re",
        "X-Not-Sdp",
    ] {
        assert!(r.header(h).is_some(), "{h} missing:\n{text}");
    }
    assert_eq!(r.header("X-User").as_deref(), Some("carol"));
    assert!(r.header("X-Totag").is_none(), "{text}");
    // A second Via: not the first hop any more; a To-tag is seen.
    let m2 = m
        .replace("Call-ID: ut1", "Call-ID: ut2")
        .replace(
            "Max-Forwards: 70",
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKother\r\nMax-Forwards: 70",
        )
        .replace(
            "To: <sip:utils@example.com;transport=udp>",
            "To: <sip:utils@example.com>;tag=t1",
        );
    let r = e.reply_to(&m2);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert!(r.header("X-First-Hop").is_none(), "{}", r.text());
    assert!(r.header("X-Totag").is_some(), "{}", r.text());
}

/// One malformed request per check; each gets the reply naming its fault.
#[test]
fn sanity_replies_name_the_fault() {
    let e = env();
    let base = |call: &str, extra: &[&str]| e.request("INVITE", "bob", call, extra, "");
    let cases: Vec<(String, u16, &str)> = vec![
        (
            base("s1", &[]).replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
            400,
            "CSeq method does not match request method",
        ),
        (base("s2", &["Expires: soon"]), 400, "Expires value is illegal"),
        (
            base("s3", &["Expires: 99999999999"]),
            400,
            "Expires value is illegal",
        ),
        (
            base("s4", &["Proxy-Require: foo, bar"]),
            420,
            "Bad Proxy Require Extension",
        ),
        (
            base("s5", &[]).replace("sip:bob@example.com SIP/2.0", "http://example.com/bob SIP/2.0"),
            416,
            "Unsupported URI Scheme in Request URI",
        ),
        (
            format!("{}trailing junk", base("s6", &[])),
            400,
            "Content-Length mis-match",
        ),
        (
            base("s7", &[]).replace(";tag=from-s7", ";tag=a;tag=b"),
            400,
            "Many From Tag Params",
        ),
        (
            base(
                "s8",
                &["Authorization: Digest username=\"\", realm=\"r\", nonce=\"n\", uri=\"sip:bob@example.com\", response=\"x\""],
            ),
            400,
            "Auth Empty User",
        ),
        (
            base("s9", &[]).replace("To: <sip:bob@example.com>", "To: <mailto:bob@example.com>"),
            400,
            "Ivalid To Header",
        ),
    ];
    for (text, code, reason) in cases {
        let r = e.reply_to(&text);
        assert_eq!(r.status(), Some(code), "for {reason}:\n{}", r.text());
        assert_eq!(r.msg.msg().reason(), Some(reason), "{}", r.text());
        if code == 420 {
            assert_eq!(r.header("Unsupported").as_deref(), Some("bar"));
        }
    }
    assert!(e.uas.recv(SHORT).is_none(), "nothing was forwarded");
    // A well-formed request still goes through.
    let got = e.forwarded(&base("s10", &["Proxy-Require: foo", "Expires: 60"]));
    assert_eq!(got.header("Expires").as_deref(), Some("60"));
}

#[test]
fn sanity_in_reply_route_drops_broken_replies_and_status_can_change() {
    let e = env();
    let got = e.forwarded(&e.request("INVITE", "bob", "rr1", &[], ""));
    let vias = got
        .msg
        .msg()
        .headers_named(sip_msg::HeaderName::Via)
        .map(|h| format!("Via: {}", h.value))
        .collect::<Vec<_>>()
        .join("\r\n");
    let reply = |code: &str, to: &str, tail: &str| {
        format!(
            "SIP/2.0 {code}\r\n{vias}\r\nFrom: <sip:alice@example.com>;tag=from-rr1\r\nTo: {to};tag=b\r\nCall-ID: rr1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n{tail}"
        )
    };
    // Content-Length does not match the datagram: dropped by sanity.
    e.uas.send(
        got.from,
        &reply("180 Ringing", "<sip:bob@example.com>", "junk"),
    );
    assert!(e.uac.recv(SHORT).is_none(), "broken reply relayed");
    // A To URI that does not parse as SIP: dropped.
    e.uas.send(
        got.from,
        &reply("183 Progress", "<mailto:bob@example.com>", ""),
    );
    assert!(e.uac.recv(SHORT).is_none(), "broken reply relayed");
    // A good reply goes through, with the status rewritten.
    e.uas.send(
        got.from,
        &reply("486 Busy Here", "<sip:bob@example.com>", ""),
    );
    let back = e.uac.recv(T).expect("reply relayed");
    assert_eq!(back.status(), Some(603), "{}", back.text());
    assert_eq!(back.msg.msg().reason(), Some("Declined By Proxy"));
}
