//! Differential test against Kamailio itself, for textops'
//! `set_reply_body` (the body and Content-Type of a reply sent with
//! `sl_send_reply` or `t_reply`, between `append_to_reply` calls),
//! `search_str`, and textopsx's `remove_body`: every reply compared whole
//! (but Server and the To tag).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::UdpPeer;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "pv", "textops", "textopsx"];

const BODY: &str = r#"request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-C) == "sl") {
        set_reply_body("hello $rU", "text/plain");
        sl_send_reply("200", "ok");
        exit;
    }
    if ($hdr(X-C) == "twice") {
        append_to_reply("X-A: 1\r\n");
        set_reply_body("<b/>", "application/xml");
        append_to_reply("X-B: 2\r\n");
        sl_send_reply("486", "Busy Here");
        exit;
    }
    if ($hdr(X-C) == "tm") {
        t_newtran();
        set_reply_body("via tm", "text/plain");
        t_reply("404", "Not Here");
        exit;
    }
    if ($hdr(X-C) == "search") {
        search_str("$ru", ";transport=tcp");
        $var(a) = $rc;
        search_str("$ru", "^sip:[a-z]+@");
        $var(b) = $rc;
        search_str("abc", "x|b");
        $var(c) = $rc;
        search_str("abc", "^b");
        $var(d) = $rc;
        append_to_reply("X-R: $var(a) $var(b) $var(c) $var(d)\r\n");
        sl_send_reply("200", "searched");
        exit;
    }
    if ($hdr(X-C) == "rb") {
        remove_body();
        $var(a) = $rc;
        msg_apply_changes();
        append_to_reply("X-R: $var(a) cl=$cl bl=$(rb{s.len}) ct=$hdr(Content-Type)\r\n");
        sl_send_reply("200", "removed");
        exit;
    }
    if ($hdr(X-C) == "rb0") {
        remove_body();
        $var(a) = $rc;
        append_to_reply("X-R: $var(a)\r\n");
        sl_send_reply("200", "nothing to remove");
        exit;
    }
}
"#;

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let cases: [(&str, &str, &str); 7] = [
        ("sl", "sip:alice@127.0.0.1", ""),
        ("twice", "sip:alice@127.0.0.1", ""),
        ("tm", "sip:bob@127.0.0.1", ""),
        ("search", "sip:carol@127.0.0.1;transport=tcp", ""),
        ("search", "sip:+49@127.0.0.1", ""),
        (
            "rb",
            "sip:dave@127.0.0.1",
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n",
        ),
        ("rb0", "sip:erin@127.0.0.1", ""),
    ];
    let mut out = Vec::new();
    for (i, (what, ruri, body)) in cases.iter().enumerate() {
        let call = format!("rbody-{i}");
        let ct = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_string()
        };
        let req = format!(
            "MESSAGE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-C: {what}\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            peer.addr(),
            body.len()
        );
        peer.send(srv, &req);
        let r = peer.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
                && r.status().is_some_and(|c| c >= 200)
        });
        out.push(kamailio::message_line(
            what,
            r.as_ref(),
            srv,
            true,
            &mut |l| l.replace(&peer.addr().port().to_string(), "UPORT"),
        ));
    }
    out
}

#[test]
fn reply_bodies_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("reply-body");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("hello alice")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "reply bodies");
}
