//! topoh on siprouter alone: a call from a TCP caller to a UDP callee
//! through a record-routing proxy (the callee sees only the mask address,
//! the caller gets its own Vias back), `event_route[topoh:msg-outgoing]`
//! exempting a destination by `$sndto`, and `$snd(buf)` (not built)
//! refused at load. Byte-for-byte agreement with Kamailio is in
//! kamailio_parity_topoh.rs.

use sr_testkit::{answer, TcpPeer, TestServer, UdpPeer};
use std::time::Duration;

const CFG: &str = r#"
listen=udp:127.0.0.1:{PORT}
listen=tcp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "pv"
loadmodule "textops"
loadmodule "siputils"
loadmodule "topoh"
modparam("topoh", "mask_key", "e2e key")
modparam("topoh", "mask_callid", 1)
request_route {
    if (has_totag()) { loose_route(); t_relay(); exit; }
    record_route();
    append_hf("X-Seen: $hdr(TH) $ci\r\n");
    $du = $hdr(X-To);
    t_relay();
}
"#;

#[test]
fn a_tcp_caller_is_hidden_from_a_udp_callee() {
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let b = UdpPeer::new();
    let mut a = TcpPeer::connect(srv.addr());
    let me = a.addr();
    a.send(&format!(
        "INVITE sip:bob@{bb} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKe2e1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=f1\r\nTo: <sip:bob@example.com>\r\nCall-ID: e2e-call@{ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me};transport=tcp>\r\nX-To: sip:{bb}\r\nContent-Length: 0\r\n\r\n",
        bb = b.addr(),
        ip = me.ip(),
    ));
    let inv = b
        .recv_method("INVITE", Duration::from_secs(3))
        .expect("the callee gets the INVITE");
    let text = inv.text();
    // The script saw the cookie and the real Call-ID ...
    assert!(
        text.contains(&format!("X-Seen: dih e2e-call@{}", me.ip())),
        "{text}"
    );
    // ... the callee sees neither the caller's address nor the Call-ID.
    assert!(!text.contains(&me.port().to_string()), "{text}");
    assert!(!text.contains("Call-ID: e2e-call"), "{text}");
    assert!(!text.contains("TH"), "{text}");
    assert!(
        text.contains("Via: SIP/2.0/UDP 127.0.0.8;branch=z9hG4bKsr-"),
        "{text}"
    );
    assert!(text.contains("Contact: <sip:127.0.0.8;line=sr-"), "{text}");
    assert!(text.contains("Call-ID: !!:"), "{text}");
    b.send(
        srv.addr(),
        &answer(
            &inv,
            200,
            "OK",
            "t2",
            &[&format!("Contact: <sip:bob@{}>", b.addr())],
        ),
    );
    // The 100 first (a reply of the proxy's own: its cookie gone too).
    let trying = a
        .recv(Duration::from_secs(3))
        .expect("the caller gets a 100");
    assert_eq!(trying.status(), Some(100), "{}", trying.text());
    assert!(!trying.text().contains("TH"), "{}", trying.text());
    let ok = a
        .recv(Duration::from_secs(3))
        .expect("the caller gets the 200");
    let text = ok.text();
    assert_eq!(ok.status(), Some(200), "{text}");
    assert!(
        text.contains(&format!("Via: SIP/2.0/TCP {me};branch=z9hG4bKe2e1")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Call-ID: e2e-call@{}\r\n", me.ip())),
        "{text}"
    );
    assert!(text.contains("Contact: <sip:127.0.0.8;line=sr-"), "{text}");
    assert!(!text.contains("TH"), "{text}");
}

#[test]
fn the_outgoing_event_route_exempts_by_destination() {
    let b = UdpPeer::new();
    let cfg = format!(
        "{CFG}\nevent_route[topoh:msg-outgoing] {{ if ($sndto(port) == {} && $sndto(sproto) == \"udp\" && $snd(ip) == \"127.0.0.1\" && $sndto(af) == 2) {{ drop; }} }}\n",
        b.addr().port()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let a = UdpPeer::new();
    let me = a.addr();
    a.send(
        srv.addr(),
        &format!(
            "INVITE sip:bob@{bb} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKe2e2\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=f2\r\nTo: <sip:bob@example.com>\r\nCall-ID: e2e-two\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me}>\r\nX-To: sip:{bb}\r\nContent-Length: 0\r\n\r\n",
            bb = b.addr()
        ),
    );
    let inv = b
        .recv_method("INVITE", Duration::from_secs(3))
        .expect("the callee gets the INVITE");
    let text = inv.text();
    // Not hidden, cookie included, as Kamailio leaves an exempted message.
    assert!(
        text.contains(&format!("Contact: <sip:alice@{me}>")),
        "{text}"
    );
    assert!(text.contains("Call-ID: e2e-two\r\n"), "{text}");
    assert!(text.contains("TH: dih\r\n"), "{text}");
}

#[test]
fn what_the_sent_message_pvs_cannot_give_is_refused_at_load() {
    let cfg = format!("{CFG}\nonsend_route {{ xlog(\"$snd(buf)\"); }}\n");
    let err = TestServer::try_start(
        &cfg.replace(
            "loadmodule \"topoh\"",
            "loadmodule \"topoh\"\nloadmodule \"xlog\"",
        ),
        siprouter::in_tree(),
    )
    .err()
    .expect("$snd(buf) is refused");
    let all = err.join("\n");
    assert!(all.contains("$snd(buf) is not built"), "{all}");
}
