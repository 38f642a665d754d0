//! Differential test against Kamailio itself, for SIP over WebSocket
//! (RFC 7118) in Kamailio's WebSocket example configuration (xhttp's
//! `event_route[xhttp:request]` with `ws_handle_handshake()`, nathelper's
//! `nat_uac_test("64")`, `fix_nated_register`, `add_contact_alias`,
//! `handle_ruri_alias`): the handshake and refused handshakes, a browser
//! client registering over its WebSocket with a made-up host, a keepalive
//! OPTIONS, and a call from a UDP phone to it (INVITE, 200, ACK, BYE) —
//! every HTTP answer and SIP message compared whole (but branches, local
//! To tags and Server).
//!
//! Without Kamailio (xhttp, websocket, nathelper) installed the test
//! prints a notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run`
//! sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use sr_testkit::{answer, Reply, WsPeer};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl",
    "tm",
    "rr",
    "pv",
    "textops",
    "siputils",
    "usrloc",
    "registrar",
    "kex",
    "nathelper",
    "xhttp",
    "websocket",
];

const BODY: &str = r#"tcp_accept_no_cl=yes
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
request_route {
    if ($hdr(X-T) == $null && $proto == "udp") { sl_send_reply("200", "up"); exit; }
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

/// An HTTP answer as compared: status line and the headers that matter.
fn http(p: &Scene, a: Option<(u16, String)>) -> String {
    let Some((_, head)) = a else {
        return "no answer".into();
    };
    let keep = [
        "HTTP/",
        "Upgrade:",
        "Connection:",
        "Sec-WebSocket-Accept:",
        "Sec-WebSocket-Protocol:",
        "Sec-WebSocket-Version:",
        "Content-Type:",
    ];
    let lines: Vec<&str> = head
        .lines()
        .filter(|l| keep.iter().any(|k| l.starts_with(k)))
        .collect();
    p.names(&lines.join(" / "))
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 0);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let t = Duration::from_secs(3);
    let s = format!("127.0.0.1:{}", srv.port());
    let mut out = Vec::new();

    // Handshakes refused: no sip sub-protocol, another version, a plain
    // page.
    let mut c = WsPeer::connect(srv);
    let req = format!("GET /ws HTTP/1.1\r\nHost: {s}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    out.push(format!("no sub-protocol: {}", http(&p, c.http(&req, t))));
    let mut c = WsPeer::connect(srv);
    out.push(format!(
        "version 8: {}",
        http(
            &p,
            c.http(
                &req.replace(
                    "Version: 13\r\n",
                    "Version: 8\r\nSec-WebSocket-Protocol: sip\r\n"
                ),
                t
            )
        )
    ));
    let mut c = WsPeer::connect(srv);
    out.push(format!(
        "a page: {}",
        http(
            &p,
            c.http(&format!("GET /x HTTP/1.1\r\nHost: {s}\r\n\r\n"), t)
        )
    ));

    // The browser client: handshake, REGISTER, keepalive.
    let mut alice: WsPeer<TcpStream> = WsPeer::connect(srv);
    let ws_port = alice.stream.local_addr().map(|a| a.port()).unwrap_or(0);
    // (Kamailio 5.6.3 writes its WebSocket Via with two spaces,
    // `SIP/2.0/WS  host`: taken as one.)
    let name = |p: &Scene, x: String| {
        p.names(&x)
            .replace(&ws_port.to_string(), "<ws>")
            .replace("SIP/2.0/WS  ", "SIP/2.0/WS ")
    };
    out.push(format!("handshake: {}", http(&p, alice.handshake(""))));
    alice.send(&format!("REGISTER sip:{s} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKxreg\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{s}>;tag=wa\r\nTo: <sip:alice@{s}>\r\nCall-ID: ws-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;expires=600\r\n\r\n"));
    let whole = |p: &Scene, r: Option<&Reply>| name(p, r.map_or("nothing".into(), |r| p.whole(r)));
    out.push(format!("REGISTER: {}", whole(&p, alice.recv(t).as_ref())));
    alice.send(&format!("OPTIONS sip:{s} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKxopt\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{s}>;tag=wo\r\nTo: <sip:{s}>\r\nCall-ID: ws-opt\r\nCSeq: 1 OPTIONS\r\n\r\n"));
    out.push(format!("OPTIONS: {}", whole(&p, alice.recv(t).as_ref())));

    // bob calls alice over UDP.
    let b = p.caller.addr();
    p.caller.send(srv, &format!("INVITE sip:alice@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKscene-inv;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{s}>;tag=wb\r\nTo: <sip:alice@{s}>\r\nCall-ID: ws-call\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{b}>\r\nX-T: c\r\nContent-Length: 0\r\n\r\n"));
    let inv = alice.recv(t);
    out.push(format!("alice gets: {}", whole(&p, inv.as_ref())));
    let Some(inv) = inv else { return out };
    alice.send(&answer(
        &inv,
        200,
        "OK",
        "ua",
        &["Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>"],
    ));
    let ok = p
        .caller
        .recv_matching(t, |r| r.status().is_some_and(|c| c >= 200));
    out.push(format!("bob gets: {}", whole(&p, ok.as_ref())));
    let Some(ok) = ok else { return out };
    let contact = ok.header("contact").unwrap_or_default();
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string();
    let rr: Vec<String> = ok
        .msg
        .msg()
        .headers_by_name("record-route")
        .flat_map(|h| h.value.split(", ").map(str::to_string))
        .collect();
    let routes_back: String = rr.iter().map(|r| format!("Route: {r}\r\n")).collect();
    for (m, n) in [("ACK", 1), ("BYE", 2)] {
        p.caller.send(srv, &format!("{m} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKscene-{m};rport\r\nMax-Forwards: 70\r\n{routes_back}From: <sip:bob@{s}>;tag=wb\r\nTo: <sip:alice@{s}>;tag=ua\r\nCall-ID: ws-call\r\nCSeq: {n} {m}\r\nX-T: c\r\nContent-Length: 0\r\n\r\n"));
        let r = alice.recv(t);
        out.push(format!("{m}: alice gets {}", whole(&p, r.as_ref())));
        if let (Some(r), "BYE") = (&r, m) {
            alice.send(&answer(r, 200, "OK", "ua", &[]));
            let back = p
                .caller
                .recv_matching(t, |r| r.status().is_some_and(|c| c >= 200));
            out.push(format!("bob gets: {}", whole(&p, back.as_ref())));
        }
    }
    out
}

#[test]
fn websocket_clients_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("websocket");
    let cfg = kamailio::head(MODULES).replace(
        "listen=udp:127.0.0.1:__PORT__\n",
        "listen=udp:127.0.0.1:__PORT__\nlisten=tcp:127.0.0.1:__PORT__\n",
    ) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("transport=ws")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "websocket");
}
