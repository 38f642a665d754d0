//! SIP over WebSocket end to end (RFC 6455, RFC 7118), configured as in
//! Kamailio's WebSocket example: xhttp's `event_route[xhttp:request]`
//! upgrades the connection with `ws_handle_handshake()`, nathelper's
//! `nat_uac_test("64")` spots WebSocket clients, the registrar keeps where
//! they registered from (`fix_nated_register`), and calls cross between a
//! WebSocket client and a UDP one. The clients are real sockets on
//! 127.0.0.1 speaking the frames written in `sr_testkit::WsPeer`.

use sr_testkit::{answer, TestServer, UdpPeer, WsPeer};
use std::net::TcpStream;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn server() -> TestServer {
    let cfg = r#"listen=127.0.0.1:{PORT}
tcp_accept_no_cl=yes
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "pv"
loadmodule "textops"
loadmodule "siputils"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "kex"
loadmodule "nathelper"
loadmodule "xhttp"
loadmodule "websocket"
loadmodule "tcpops"
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
modparam("websocket", "keepalive_timeout", 1)
modparam("websocket", "ping_application_data", "are you there")
request_route {
    force_rport();
    if (nat_uac_test("64")) {
        if (is_method("REGISTER")) {
            fix_nated_register();
        } else if (is_first_hop()) {
            add_contact_alias();
        }
    }
    if (is_method("OPTIONS") && uri == myself) {
        append_to_reply("X-Proto: $proto\r\n");
        sl_send_reply("200", "OK");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            if (!isdsturiset()) {
                handle_ruri_alias();
            }
            t_relay();
        }
        exit;
    }
    if (is_method("REGISTER")) {
        save("location");
        exit;
    }
    record_route();
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    t_relay();
}
onreply_route {
    if (nat_uac_test("64")) {
        add_contact_alias();
    }
}
event_route[websocket:closed] {
    $shv(closed) = $proto + ":" + $si + ":" + $sp + " " + $conid + " " + $ws_conid;
}
event_route[tcp:closed] {
    $shv(tcpclosed) = $shv(tcpclosed) + 1;
}
event_route[xhttp:request] {
    set_reply_close();
    set_reply_no_connect();
    if ($hdr(Upgrade) =~ "websocket" && $hdr(Connection) =~ "Upgrade" && $rm =~ "GET") {
        if (ws_handle_handshake()) {
            exit;
        }
    }
    xhttp_reply("404", "Not Found", "text/plain", "no page at $hu");
}
"#;
    TestServer::start(cfg, siprouter::in_tree())
}

/// A WebSocket client with its handshake done.
fn ws_client(srv: &TestServer) -> WsPeer<TcpStream> {
    let mut ws = WsPeer::connect(srv.addr());
    let (code, head) = ws.handshake("").expect("handshake answered");
    assert_eq!(code, 101, "{head}");
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    assert!(head.contains("Sec-WebSocket-Protocol: sip\r\n"), "{head}");
    ws
}

/// Registers `user` over the WebSocket with a made-up `host` in Via and
/// Contact (as browser clients do) and expects a 200.
fn ws_register(ws: &mut WsPeer<TcpStream>, s: &str, user: &str, host: &str) {
    ws.send(&format!("REGISTER sip:{s} SIP/2.0\r\nVia: SIP/2.0/WS {host};branch=z9hG4bKreg{user}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{s}>;tag={user}\r\nTo: <sip:{user}@{s}>\r\nCall-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{host};transport=ws>\r\nExpires: 600\r\n\r\n"));
    let r = ws.recv(T).expect("REGISTER answered");
    assert_eq!(r.status(), Some(200), "{}", r.text());
}

fn options(s: &str, branch: &str) -> String {
    format!("OPTIONS sip:{s} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: <sip:ws@example.com>;tag=o1\r\nTo: <sip:{s}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n\r\n")
}

#[test]
fn a_call_between_a_websocket_client_and_a_udp_one() {
    let srv = server();
    let s = format!("127.0.0.1:{}", srv.port);
    let mut alice = ws_client(&srv);
    let bob = UdpPeer::new();
    let b = bob.addr();

    // alice registers over the WebSocket, with the made-up host a browser
    // client uses (RFC 7118 7), and no Content-Length (5.1).
    alice.send(&format!("REGISTER sip:{s} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKwsreg\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{s}>;tag=wa\r\nTo: <sip:alice@{s}>\r\nCall-ID: ws-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;expires=600\r\n\r\n"));
    let r = alice.recv(T).expect("REGISTER answered over the WebSocket");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let via = r.header("via").unwrap();
    assert!(
        via.starts_with("SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKwsreg;rport=")
            && via.ends_with(";received=127.0.0.1"),
        "{via}"
    );
    let dump = srv.rpc("ul.dump", &[]).expect("ul.dump").to_string();
    assert!(dump.contains(";transport=ws"), "{dump}");

    // bob calls alice over UDP: the INVITE reaches her on her WebSocket,
    // with a WS Via and both Record-Routes (UDP in, WS out).
    bob.send(srv.addr(), &format!("INVITE sip:alice@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKwsinv;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{s}>;tag=wb\r\nTo: <sip:alice@{s}>\r\nCall-ID: ws-call\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{b}>\r\nContent-Length: 0\r\n\r\n"));
    let inv = alice.recv(T).expect("INVITE over the WebSocket");
    assert_eq!(inv.msg.msg().method().unwrap().as_str(), "INVITE");
    assert!(
        inv.header("via")
            .unwrap()
            .starts_with(&format!("SIP/2.0/WS {s};branch=")),
        "{}",
        inv.text()
    );
    let rr: Vec<String> = inv
        .msg
        .msg()
        .headers_by_name("record-route")
        .map(|h| h.value.to_string())
        .collect();
    assert_eq!(rr.len(), 2, "{}", inv.text());
    assert!(
        rr[0].contains("transport=ws") && rr[0].contains("r2=on"),
        "{rr:?}"
    );
    assert!(!rr[1].contains("transport="), "{rr:?}");
    let ok = answer(
        &inv,
        200,
        "OK",
        "wa2",
        &["Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>"],
    );
    alice.send(&ok);
    let r = bob.recv_status(200, T).expect("200 back to bob over UDP");
    assert_eq!(r.header("call-id").as_deref(), Some("ws-call"));
    // The callee's made-up Contact got an alias for where she really is
    // (onreply_route's add_contact_alias), so bob's in-dialog requests find
    // her WebSocket: his ACK goes through the route set to it.
    let contact = r.header("contact").unwrap();
    assert!(
        contact.starts_with("<sip:alice@df7jal23ls0d.invalid;alias=127.0.0.1~")
            && contact.ends_with(";transport=ws>"),
        "{contact}"
    );
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let routes_back = rr
        .iter()
        .rev()
        .map(|r| format!("Route: {r}\r\n"))
        .collect::<String>();
    bob.send(srv.addr(), &format!("ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKwsack;rport\r\nMax-Forwards: 70\r\n{routes_back}From: <sip:bob@{s}>;tag=wb\r\nTo: <sip:alice@{s}>;tag=wa2\r\nCall-ID: ws-call\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"));
    let ack = alice.recv(T).expect("ACK over the WebSocket");
    assert_eq!(
        ack.msg.msg().method().unwrap().as_str(),
        "ACK",
        "{}",
        ack.text()
    );
    assert_eq!(
        ack.msg.msg().request_uri().unwrap().raw,
        "sip:alice@df7jal23ls0d.invalid;transport=ws",
        "{}",
        ack.text()
    );

    // alice hangs up: her BYE follows the route set to bob over UDP.
    let routes = rr
        .iter()
        .map(|r| format!("Route: {r}\r\n"))
        .collect::<String>();
    alice.send(&format!("BYE sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKwsbye\r\nMax-Forwards: 70\r\n{routes}From: <sip:alice@{s}>;tag=wa2\r\nTo: <sip:bob@{s}>;tag=wb\r\nCall-ID: ws-call\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"));
    let bye = bob.recv_method("BYE", T).expect("BYE at bob");
    bob.send(srv.addr(), &answer(&bye, 200, "OK", "", &[]));
    let r = alice.recv(T).expect("200 to the BYE over the WebSocket");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert_eq!(r.header("cseq").as_deref(), Some("1 BYE"));

    assert_eq!(srv.stat("websocket:ws_current_connections"), Some(1));
    assert!(srv.stat("websocket:ws_received_frames").unwrap() >= 3);
    let sent = srv.stat("websocket:ws_transmitted_frames");
    assert!(sent.unwrap() >= 3, "{sent:?}");
}

#[test]
fn handshake_faults_get_http_errors() {
    let srv = server();
    // No sip sub-protocol: 400, and the script asked to close.
    let mut c = WsPeer::connect(srv.addr());
    let req = format!("GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n", srv.addr(), sr_testkit::WS_KEY);
    let (code, head) = c.http(&req, T).expect("answer");
    assert_eq!(code, 400, "{head}");
    assert!(c.closed(T), "set_reply_close: the connection is closed");
    // Without set_reply_close an upgraded connection stays open (below);
    // a refused one here stays open only until the script closes it.
    // An old version: 426 naming the one spoken.
    let mut c = WsPeer::connect(srv.addr());
    let (code, head) = c
        .http(
            &req.replace("Version: 13", "Version: 8")
                .replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: sip\r\n\r\n"),
            T,
        )
        .expect("answer");
    assert_eq!(code, 426, "{head}");
    assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
    // Not an upgrade: the route's own reply, with $hu.
    let mut c = WsPeer::connect(srv.addr());
    let (code, head) = c
        .http("GET /status?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", T)
        .expect("answer");
    assert_eq!(code, 404, "{head}");
    assert!(head.ends_with("\r\n\r\nno page at /status?x=1"), "{head}");
    assert!(head.contains("Content-Type: text/plain\r\n"), "{head}");
    // Disabled: 503; enabled again: 101.
    srv.rpc("ws.disable", &[]).expect("ws.disable");
    let mut c = WsPeer::connect(srv.addr());
    assert_eq!(c.handshake("").map(|r| r.0), Some(503));
    srv.rpc("ws.enable", &[]).expect("ws.enable");
    let mut c = WsPeer::connect(srv.addr());
    assert_eq!(c.handshake("").map(|r| r.0), Some(101));
    assert_eq!(srv.stat("websocket:ws_failed_handshakes"), Some(3));
    assert_eq!(srv.stat("websocket:ws_successful_handshakes"), Some(1));
}

#[test]
fn fragments_pings_and_closes() {
    let srv = server();
    let s = format!("127.0.0.1:{}", srv.port);
    let mut c = ws_client(&srv);
    // One SIP message in three fragments, a Ping between them.
    let msg = options(&s, "frag");
    let (a, rest) = msg.split_at(20);
    let (m, z) = rest.split_at(40);
    c.send_frame(0x01, a.as_bytes());
    c.send_frame(0x89, b"ping-data");
    c.send_frame(0x00, m.as_bytes());
    c.send_frame(0x80, z.as_bytes());
    let (first, data) = c.recv_frame(T).expect("pong");
    assert_eq!((first, data.as_slice()), (0x8A, &b"ping-data"[..]));
    let r = c.recv(T).expect("OPTIONS answered");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert_eq!(r.header("x-proto").as_deref(), Some("ws"));
    // A CRLF keep-alive in a message (as SIP.js sends it) gets a CRLF.
    c.send("\r\n\r\n");
    let (first, data) = c.recv_frame(T).expect("CRLF pong");
    assert_eq!((first, data.as_slice()), (0x81, &b"\r\n"[..]));
    assert_eq!(srv.stat("core:err_requests"), Some(0));

    // An idle connection gets the keepalive Ping (keepalive_timeout 1 s).
    let (first, data) = c.recv_frame(Duration::from_secs(5)).expect("keepalive");
    assert_eq!((first, data.as_slice()), (0x89, &b"are you there"[..]));

    // The client closes: the status is echoed, then the connection ends.
    c.send_frame(0x88, &[0x03, 0xE8]);
    let (first, data) = c.recv_frame(T).expect("close echoed");
    assert_eq!((first, data.as_slice()), (0x88, &[0x03, 0xE8][..]));
    assert!(c.recv_frame(Duration::from_millis(300)).is_none());
    // tcpops' event_route[tcp:closed] ran for it: the client closed it.
    let tcp_closed = |srv: &TestServer| {
        srv.rpc("pv.shvGet", &["tcpclosed".into()])
            .ok()
            .and_then(|v| v["value"].as_i64())
    };
    let mut n = None;
    for _ in 0..50 {
        n = tcp_closed(&srv);
        if n == Some(1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(n, Some(1), "tcp:closed after the client's Close frame");

    // An unmasked frame is a protocol error: Close 1002.
    let mut c = ws_client(&srv);
    c.send_raw(&[0x81, 0x02, b'h', b'i']);
    let (first, data) = c.recv_frame(T).expect("close");
    assert_eq!(first, 0x88);
    assert_eq!(&data[..2], &1002u16.to_be_bytes());

    // ws.close from the management side: Close 1000, listed no more.
    let mut c = ws_client(&srv);
    let me = c.stream.local_addr().unwrap();
    let dump = srv.rpc("ws.dump", &[]).expect("ws.dump");
    let conns = dump["connections"].as_array().unwrap().clone();
    assert_eq!(conns.len(), 1, "{dump}");
    let line = conns[0].as_str().unwrap();
    assert!(
        line.contains(&format!(
            ": ws:{me} -> ws:{} (state: OPEN, last used ",
            srv.addr()
        )) && line.ends_with("s ago, sub-protocol: sip)"),
        "{line}"
    );
    assert_eq!(dump["info"]["truncated"], "no");
    let id: u64 = line.split(':').next().unwrap().parse().unwrap();
    srv.rpc("ws.close", &[id.into()]).expect("ws.close");
    let (first, data) = c.recv_frame(T).expect("close");
    assert_eq!((first, &data[..2]), (0x88, &1000u16.to_be_bytes()[..]));
    assert!(c.closed(T));
    // event_route[websocket:closed] ran for it, seeing the connection.
    let want = format!("ws:{}:{} {id} {id}", me.ip(), me.port());
    let mut seen = String::new();
    for _ in 0..50 {
        seen = srv
            .rpc("pv.shvGet", &["closed".into()])
            .unwrap()
            .to_string();
        if seen.contains(&want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(seen.contains(&want), "{seen} (want {want})");
    let err = srv.rpc("ws.close", &[id.into()]).unwrap_err();
    assert!(
        format!("{err:?}").contains("Unknown connection ID"),
        "{err:?}"
    );
    assert_eq!(
        srv.rpc("ws.dump", &[]).unwrap()["connections"],
        sr_sdk::serde_json::json!([])
    );
    assert_eq!(srv.stat("websocket:ws_local_closed_connections"), Some(1));
    assert_eq!(srv.stat("websocket:ws_remote_closed_connections"), Some(1));
    assert_eq!(srv.stat("websocket:ws_failed_connections"), Some(1));
}

#[test]
fn a_request_to_a_websocket_client_that_left_fails() {
    let srv = server();
    let s = format!("127.0.0.1:{}", srv.port);
    let mut alice = ws_client(&srv);
    ws_register(&mut alice, &s, "carol", "x.invalid");
    drop(alice);
    std::thread::sleep(Duration::from_millis(200));
    // siprouter never opens a WebSocket connection: the INVITE fails.
    let bob = UdpPeer::new();
    let b = bob.addr();
    bob.send(srv.addr(), &format!("INVITE sip:carol@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKgoneinv;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{s}>;tag=gb\r\nTo: <sip:carol@{s}>\r\nCall-ID: gone-call\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{b}>\r\nContent-Length: 0\r\n\r\n"));
    // The transaction answers the failed send itself, as Kamailio's tm.
    let r = bob.recv_final(T).expect("a final reply");
    assert_eq!(r.status(), Some(477), "{}", r.text());
    assert!(r.header("to").unwrap().contains(";tag="), "{}", r.text());
}

#[test]
fn xhttp_answers_keeps_connections_and_skips_urls() {
    let srv = TestServer::start(
        r#"listen=tcp:127.0.0.1:{PORT}
loadmodule "xhttp"
loadmodule "textops"
modparam("xhttp", "url_skip", "^/hidden")
event_route[xhttp:request] {
    xhttp_reply("200", "OK", "text/plain", "$rm $hu from $si body=[$rb]");
}
"#,
        siprouter::in_tree(),
    );
    // HTTP/1.1: the connection stays for the next request.
    let mut c = WsPeer::connect(srv.addr());
    let (code, text) = c
        .http("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n", T)
        .expect("answer");
    assert_eq!(code, 200, "{text}");
    assert!(
        text.ends_with("\r\n\r\nGET /a?b=1 from 127.0.0.1 body=[]"),
        "{text}"
    );
    let (code, text) = c
        .http(
            "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
            T,
        )
        .expect("second answer on the same connection");
    assert_eq!(code, 200, "{text}");
    assert!(text.ends_with("body=[{\"a\":1}]"), "{text}");
    // url_skip: no route, no answer.
    assert!(c
        .http(
            "GET /hidden/x HTTP/1.1\r\nHost: x\r\n\r\n",
            Duration::from_millis(400)
        )
        .is_none());
    // HTTP/1.0 (no keep-alive): answered, then closed.
    let mut c = WsPeer::connect(srv.addr());
    let (code, _) = c.http("GET / HTTP/1.0\r\n\r\n", T).expect("answer");
    assert_eq!(code, 200);
    assert!(c
        .http("GET / HTTP/1.0\r\n\r\n", Duration::from_millis(400))
        .is_none());
}

#[test]
fn an_unanswered_ping_closes_the_connection() {
    // Keepalive every second; a client that reads but never answers (its
    // TCP stack is alive, the application is not) is closed after two.
    let srv = server();
    let mut c = ws_client(&srv);
    let (first, _) = c.recv_frame(Duration::from_secs(5)).expect("a Ping");
    assert_eq!(first, 0x89);
    assert!(c.closed(Duration::from_secs(6)), "closed for not answering");
    assert_eq!(srv.stat("websocket:ws_current_connections"), Some(0));
}

#[test]
fn binary_bodies_go_in_binary_frames_and_contactless_replies_pass() {
    let srv = server();
    let s = format!("127.0.0.1:{}", srv.port);
    let mut alice = ws_client(&srv);
    ws_register(&mut alice, &s, "dave", "b1n.invalid");
    // A MESSAGE whose body is not UTF-8 (a text frame must be): the
    // WebSocket client gets it in a binary frame.
    let bob = UdpPeer::new();
    let b = bob.addr();
    let mut msg = format!("MESSAGE sip:dave@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKbinmsg;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{s}>;tag=bb\r\nTo: <sip:dave@{s}>\r\nCall-ID: bin-msg\r\nCSeq: 1 MESSAGE\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\n").into_bytes();
    msg.extend_from_slice(&[0xff, 0x00, 0xfe]);
    bob.sock.send_to(&msg, srv.addr()).unwrap();
    let (first, data) = alice.recv_frame(T).expect("MESSAGE over the WebSocket");
    assert_eq!(first, 0x82, "binary frame");
    assert!(data.ends_with(&[0xff, 0x00, 0xfe]));
    let req = sip_msg::OwnedMessage::parse(data.into()).unwrap();
    // Her 200 has no Contact: onreply_route's add_contact_alias has
    // nothing to do (2), and the reply reaches bob.
    let ok = answer(
        &sr_testkit::Reply {
            msg: req,
            from: srv.addr(),
        },
        200,
        "OK",
        "dv",
        &[],
    );
    assert!(!ok.contains("Contact"));
    alice.send(&ok);
    let r = bob.recv_final(T).expect("200 to the MESSAGE");
    assert_eq!(r.status(), Some(200), "{}", r.text());
}

#[test]
fn a_call_between_two_websocket_clients_has_one_record_route() {
    // Both on the same socket and protocol: one Record-Route, as Kamailio
    // (record_route() runs before lookup() knows where the call goes).
    let srv = server();
    let s = format!("127.0.0.1:{}", srv.port);
    let mut alice = ws_client(&srv);
    ws_register(&mut alice, &s, "erin", "a11ce.invalid");
    let mut bob = ws_client(&srv);
    bob.send(&format!("INVITE sip:erin@{s} SIP/2.0\r\nVia: SIP/2.0/WS b0b.invalid;branch=z9hG4bKww2\r\nMax-Forwards: 70\r\nFrom: <sip:frank@{s}>;tag=f\r\nTo: <sip:erin@{s}>\r\nCall-ID: ww-call\r\nCSeq: 1 INVITE\r\nContact: <sip:frank@b0b.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n"));
    let inv = alice.recv(T).expect("INVITE to the other WebSocket client");
    let rr: Vec<String> = inv
        .msg
        .msg()
        .headers_by_name("record-route")
        .map(|h| h.value.to_string())
        .collect();
    assert_eq!(
        rr,
        [format!("<sip:{s};transport=ws;lr;ftag=f>")],
        "{}",
        inv.text()
    );
}
