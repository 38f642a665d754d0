//! End-to-end: a stateless proxy between a test UAC and a test UAS over
//! UDP and TCP on 127.0.0.1; Via handling, reply routing, malformed input.

use sr_testkit::{req, TcpPeer, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn cfg(uas_port: u16) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
listen=tcp:127.0.0.1:{{PORT}}
children=2
loadmodule "sl"
request_route {{
    if (method=="OPTIONS" && uri==myself) {{ sl_send_reply("200", "Keepalive"); exit; }}
    $du = "sip:127.0.0.1:{uas_port}";
    forward();
    exit;
}}
"#
    )
}

#[test]
fn udp_request_is_forwarded_and_reply_routed_back() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr().port()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let m = req(
        "MESSAGE",
        "sip:bob@example.com",
        uac.addr(),
        "abc1",
        "call-1",
        1,
        &[],
        "hi",
    );
    uac.send(srv.addr(), &m);
    let got = uas.recv(T).expect("UAS got the request");
    let vias: Vec<_> = got.msg.msg().vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 2, "{}", got.text());
    assert_eq!(vias[0].port, Some(srv.port));
    assert!(vias[0].is_rfc3261_branch());
    assert_eq!(vias[1].received(), Some("127.0.0.1"));
    assert_eq!(vias[1].rport(), Some(Some(uac.addr().port())));
    assert_eq!(
        got.msg.msg().request_uri().unwrap().raw,
        "sip:bob@example.com"
    );
    assert_eq!(got.msg.msg().body(), b"hi");

    // The UAS answers; the reply goes back through the proxy to the UAC.
    let reply = format!(
        "SIP/2.0 200 OK\r\n{}\r\nFrom: <sip:alice@example.com>;tag=from-call-1\r\nTo: <sip:bob@example.com>;tag=b\r\nCall-ID: call-1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        got.msg.msg().headers_named(sip_msg::HeaderName::Via).map(|h| format!("Via: {}", h.value)).collect::<Vec<_>>().join("\r\n")
    );
    uas.send(got.from, &reply);
    let back = uac.recv(T).expect("UAC got the reply");
    assert_eq!(back.status(), Some(200));
    assert_eq!(back.msg.msg().vias().count(), 1, "proxy Via removed");
    assert_eq!(srv.wait_stat("core:fwd_requests", 1), Some(1));
    assert_eq!(srv.wait_stat("core:fwd_replies", 1), Some(1));
    assert_eq!(srv.stat("core:rcv_requests_message"), Some(1));
}

#[test]
fn replies_not_for_us_are_dropped() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr().port()), siprouter::in_tree());
    let peer = UdpPeer::new();
    let stray = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKx\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: s\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    peer.send(srv.addr(), stray);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(srv.wait_stat("core:drop_replies", 1), Some(1));
    assert_eq!(srv.stat("core:fwd_replies"), Some(0));
}

#[test]
fn malformed_request_gets_400_and_server_keeps_serving() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr().port()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let bad = format!(
        "OPTIONS sip:127.0.0.1:{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKm\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: m1\r\nCSeq: x OPTIONS\r\nContent-Length: 0\r\n\r\n",
        srv.port,
        uac.addr()
    );
    uac.send(srv.addr(), &bad);
    let r = uac.recv(T).expect("a reply to the malformed request");
    assert_eq!(r.status(), Some(400));
    assert!(
        r.msg.msg().reason().unwrap().contains("CSeq"),
        "{}",
        r.text()
    );
    // Garbage with no reply possible, then a good request: still served.
    // A datagram under 32 bytes is dropped before the parser (Kamailio's
    // MIN_UDP_PACKET: keepalives, probes) and counts as nothing; a longer
    // one counts as a bad message.
    let before = srv.stat("core:bad_msg_hdr").unwrap();
    uac.send(srv.addr(), "\u{0}\u{1}garbage");
    uac.send(
        srv.addr(),
        "\u{0}\u{1}garbage long enough to reach the parser",
    );
    let ok = req(
        "OPTIONS",
        &format!("sip:127.0.0.1:{}", srv.port),
        uac.addr(),
        "ok1",
        "m2",
        1,
        &[],
        "",
    );
    uac.send(srv.addr(), &ok);
    let r = uac.recv(T).expect("keepalive reply");
    assert_eq!(r.status(), Some(200));
    assert!(before >= 1);
    // (The two datagrams may go to two workers: the count is awaited.)
    assert_eq!(
        srv.wait_stat("core:bad_msg_hdr", before + 1),
        Some(before + 1)
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(srv.stat("core:bad_msg_hdr"), Some(before + 1));
}

#[test]
fn tcp_request_is_answered_on_the_same_connection() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr().port()), siprouter::in_tree());
    let mut c = TcpPeer::connect(srv.addr());
    let m = req(
        "OPTIONS",
        &format!("sip:127.0.0.1:{}", srv.port),
        c.addr(),
        "t1",
        "tcp-1",
        1,
        &[],
        "",
    )
    .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    c.send(&m);
    let r = c.recv(T).expect("reply on the connection");
    assert_eq!(r.status(), Some(200));
    // A second request on the same connection, split in two writes.
    let m2 = m.replace("tcp-1", "tcp-2");
    let (a, b) = m2.split_at(40);
    c.send(a);
    std::thread::sleep(Duration::from_millis(50));
    c.send(b);
    let r = c.recv(T).expect("second reply");
    assert_eq!(r.header("Call-ID").as_deref(), Some("tcp-2"));
}

/// IPv6: a proxy on [::1] forwards to a UAS on [::1] and routes the reply
/// back; Via carries the bracketed address.
#[test]
fn ipv6_forwarding_on_loopback() {
    use std::net::UdpSocket;
    let Ok(uas) = UdpSocket::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    };
    let uas_port = uas.local_addr().unwrap().port();
    let cfg = format!(
        "listen=udp:[::1]:{{PORT}}\nchildren=1\nloadmodule \"sl\"\nrequest_route {{\n  $du = \"sip:[::1]:{uas_port}\";\n  forward();\n}}\n"
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpSocket::bind("[::1]:0").unwrap();
    let uac_addr = uac.local_addr().unwrap();
    let srv_addr: std::net::SocketAddr = format!("[::1]:{}", srv.port).parse().unwrap();
    let m = req(
        "MESSAGE",
        "sip:bob@[2001:db8::1]",
        uac_addr,
        "v6",
        "v6-call",
        1,
        &[],
        "",
    );
    uac.send_to(m.as_bytes(), srv_addr).unwrap();
    uas.set_read_timeout(Some(T)).unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, from) = uas
        .recv_from(&mut buf)
        .expect("UAS got the request over IPv6");
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    let top = text
        .lines()
        .find(|l| l.starts_with("Via:"))
        .unwrap()
        .to_string();
    assert!(top.contains(&format!("[::1]:{}", srv.port)), "{top}");
    let msg = sip_msg::Message::parse(&buf[..n]).unwrap();
    let vias: Vec<String> = msg
        .headers_named(sip_msg::HeaderName::Via)
        .map(|h| format!("Via: {}", h.value))
        .collect();
    let reply = format!(
        "SIP/2.0 200 OK\r\n{}\r\nFrom: <sip:alice@example.com>;tag=from-v6-call\r\nTo: <sip:bob@[2001:db8::1]>;tag=x\r\nCall-ID: v6-call\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        vias.join("\r\n")
    );
    uas.send_to(reply.as_bytes(), from).unwrap();
    uac.set_read_timeout(Some(T)).unwrap();
    let (n, _) = uac
        .recv_from(&mut buf)
        .expect("UAC got the reply over IPv6");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200 OK"));
}

/// Messages on one TCP connection are handled in the order they arrived,
/// whatever the number of TCP workers (an ACK must not overtake the BYE
/// sent after it).
#[test]
fn tcp_messages_of_one_connection_keep_their_order() {
    let uas = UdpPeer::new();
    let cfg = format!(
        "listen=tcp:127.0.0.1:{{PORT}}\nlisten=udp:127.0.0.1:{{PORT}}\nchildren=1\ntcp_children=4\nmax_while_loops=1000000\nloadmodule \"sl\"\nrequest_route {{\n  # Every other message takes longer, so that a free worker could overtake it.\n  if ($cs mod 2 == 1) {{ $var(i) = 0; while ($var(i) < 20000) {{ $var(i) = $var(i) + 1; }} }}\n  $du = \"sip:127.0.0.1:{}\";\n  forward();\n}}\n",
        uas.addr().port()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let mut c = TcpPeer::connect(srv.addr());
    let mut burst = String::new();
    for n in 1..=60 {
        burst.push_str(
            &req(
                "MESSAGE",
                "sip:bob@example.com",
                c.addr(),
                &format!("o{n}"),
                "order",
                n,
                &[],
                "x",
            )
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP"),
        );
    }
    c.send(&burst);
    let mut seen = Vec::new();
    while let Some(r) = uas.recv(T) {
        seen.push(r.msg.msg().cseq().unwrap().seq);
        if seen.len() == 60 {
            break;
        }
    }
    assert_eq!(seen, (1..=60).collect::<Vec<u32>>());
}

/// A reply the kernel refuses to send (the broadcast address, on a socket
/// without SO_BROADCAST) fails after it was held for the batch: it is
/// counted as dropped, not forwarded.
#[test]
fn a_held_reply_the_kernel_refuses_counts_as_dropped() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr().port()), siprouter::in_tree());
    let peer = UdpPeer::new();
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKx\r\nVia: SIP/2.0/UDP 255.255.255.255:5060;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: b\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        srv.addr()
    );
    peer.send(srv.addr(), &reply);
    assert_eq!(srv.wait_stat("core:drop_replies", 1), Some(1));
    assert_eq!(srv.stat("core:fwd_replies"), Some(0));
}

/// `forward()` to an address the kernel refuses (the broadcast address, on
/// a socket without SO_BROADCAST), with the script's failure branch.
fn forward_to_broadcast(settings: &str) -> (TestServer, UdpPeer) {
    let srv = TestServer::start(
        &format!(
            r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
{settings}
loadmodule "sl"
request_route {{
    if (!forward("255.255.255.255:5090")) {{ sl_send_reply("500", "Not Sent"); exit; }}
    sl_send_reply("202", "Forwarded");
}}
"#
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    let m = req(
        "MESSAGE",
        "sip:bob@example.com",
        uac.addr(),
        "t1",
        "bc-1",
        1,
        &[],
        "",
    );
    uac.send(srv.addr(), &m);
    (srv, uac)
}

/// By default a UDP worker holds what `forward()` sends until the end of its
/// batch: the script goes on as forwarded (and its own reply is held too),
/// and when the kernel then refuses the datagram it is counted as dropped,
/// not forwarded.
#[test]
fn a_held_forward_the_kernel_refuses_counts_as_dropped() {
    let (srv, uac) = forward_to_broadcast("");
    let r = uac.recv(T).expect("the script's reply");
    assert_eq!(r.status(), Some(202));
    assert_eq!(srv.wait_stat("core:drop_requests", 1), Some(1));
    assert_eq!(srv.stat("core:fwd_requests"), Some(0));
}

/// With `udp_hold_sends=no` `forward()` sends at once and returns the
/// kernel's refusal to the script, which takes its failure branch.
#[test]
fn without_held_sends_forward_returns_the_kernels_refusal() {
    let (srv, uac) = forward_to_broadcast("udp_hold_sends=no");
    let r = uac.recv(T).expect("the script's reply");
    assert_eq!(r.status(), Some(500));
    assert_eq!(srv.wait_stat("core:drop_requests", 1), Some(1));
    assert_eq!(srv.stat("core:fwd_requests"), Some(0));
}

/// A reply too large for a datagram (`append_to_reply` of 70 kB): the
/// kernel refuses it when it is sent.
fn oversized_reply(settings: &str) -> (TestServer, UdpPeer) {
    let srv = TestServer::start(
        &format!(
            r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
max_while_loops=10000
{settings}
loadmodule "sl"
loadmodule "textops"
request_route {{
    $var(big) = "";
    $var(i) = 0;
    while ($var(i) < 700) {{
        $var(big) = $var(big) + "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";
        $var(i) = $var(i) + 1;
    }}
    append_to_reply("X-Big: $var(big)\r\n");
    sl_send_reply("200", "OK");
}}
"#
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    let m = req(
        "OPTIONS",
        "sip:bob@example.com",
        uac.addr(),
        "t2",
        "big-1",
        1,
        &[],
        "",
    );
    uac.send(srv.addr(), &m);
    (srv, uac)
}

/// sl counts a held reply the kernel refuses when the batch is sent as a
/// failure, not as sent, as it does one refused at once.
#[test]
fn a_held_reply_the_kernel_refuses_counts_in_sl_failures() {
    for settings in ["", "udp_hold_sends=no"] {
        let (srv, uac) = oversized_reply(settings);
        assert_eq!(srv.wait_stat("sl:failures", 1), Some(1), "{settings}");
        assert_eq!(srv.stat("sl:sent_replies"), Some(0), "{settings}");
        assert_eq!(srv.stat("sl:200_replies"), Some(0), "{settings}");
        assert!(uac.recv(Duration::from_millis(200)).is_none());
    }
}
