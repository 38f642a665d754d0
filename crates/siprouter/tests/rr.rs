//! End-to-end: the rr module (`loose_route` with our own, double and
//! strict-router route sets; `check_route_param`, `is_direction`,
//! `$route_uri`) seen on the wire.

use sr_testkit::{req, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn cfg(uas: std::net::SocketAddr) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "textops"
loadmodule "rr"
request_route {{
    $var(ru) = $route_uri;
    loose_route();
    $var(rc) = $rc;
    append_hf("X-RC: $var(rc)\r\n");
    append_hf("X-Route-Uri: $var(ru)\r\n");
    if (check_route_param("nat=yes")) {{ append_hf("X-Nat: yes\r\n"); }}
    if (is_direction("downstream")) {{ append_hf("X-Dir: down\r\n"); }}
    if (is_direction("upstream")) {{ append_hf("X-Dir: up\r\n"); }}
    if ($du == $null) {{ $du = "sip:{uas}"; }}
    forward();
    exit;
}}
"#
    )
}

fn in_dialog(method: &str, ruri: &str, uac: &UdpPeer, routes: &[&str], from_tag: &str) -> String {
    let extra: Vec<String> = routes.iter().map(|r| format!("Route: {r}")).collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    req(method, ruri, uac.addr(), "d1", "dlg-1", 2, &extra, "")
        .replace("To: <", "To: <sip:bob@example.com>;tag=totag\r\nX-To: <")
        .replace("tag=from-dlg-1", &format!("tag={from_tag}"))
}

#[test]
fn our_route_removed_next_loose_hop_in_du() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let me = format!("<sip:127.0.0.1:{};lr;ftag=abc;nat=yes>", srv.port);
    let next = format!("<sip:{};lr>", uas.addr());
    let m = in_dialog("BYE", "sip:bob@192.0.2.1", &uac, &[&me, &next], "abc");
    uac.send(srv.addr(), &m);
    let got = uas.recv(T).expect("sent to the next Route hop");
    assert_eq!(got.header("X-RC").as_deref(), Some("1"));
    assert_eq!(got.header("X-Nat").as_deref(), Some("yes"));
    assert_eq!(got.header("X-Dir").as_deref(), Some("down"));
    assert!(got.header("X-Route-Uri").unwrap().contains("ftag=abc"));
    let routes = route_values(&got);
    assert_eq!(routes, [format!("sip:{};lr", uas.addr())]);
    assert_eq!(
        got.msg.msg().request_uri().unwrap().raw,
        "sip:bob@192.0.2.1"
    );
}

#[test]
fn double_record_route_pair_removed_and_upstream_direction() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let a = format!("<sip:127.0.0.1:{};r2=on;lr;ftag=abc>", srv.port);
    let b = format!(
        "<sip:127.0.0.1:{};transport=tcp;r2=on;lr;ftag=abc>",
        srv.port
    );
    let ruri = format!("sip:bob@{}", uas.addr());
    // Both values in one header line: the whole line goes.
    let m = in_dialog("BYE", &ruri, &uac, &[&format!("{a}, {b}")], "other");
    uac.send(srv.addr(), &m);
    let got = uas.recv(T).expect("to the R-URI");
    assert_eq!(got.header("X-RC").as_deref(), Some("1"));
    assert_eq!(got.header("X-Dir").as_deref(), Some("up"));
    assert!(got.header("Route").is_none(), "{}", got.text());
}

#[test]
fn strict_router_before_us_and_after_us() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr()), siprouter::in_tree());
    let uac = UdpPeer::new();
    // The previous hop was a strict router: the R-URI is our RR URI, the
    // last Route the real target.
    let ruri = format!("sip:127.0.0.1:{};lr;ftag=abc", srv.port);
    let target = format!("<sip:bob@{}>", uas.addr());
    let m = in_dialog("BYE", &ruri, &uac, &[&target], "abc");
    uac.send(srv.addr(), &m);
    let got = uas.recv(T).expect("to the last Route");
    assert_eq!(got.header("X-RC").as_deref(), Some("1"));
    assert_eq!(
        got.msg.msg().request_uri().unwrap().raw,
        format!("sip:bob@{}", uas.addr())
    );
    assert!(got.header("Route").is_none());

    // The next hop is a strict router (no lr): it goes into the R-URI and
    // the R-URI to the end of the route set.
    let me = format!("<sip:127.0.0.1:{};lr;ftag=abc>", srv.port);
    let strict = format!("<sip:{}>", uas.addr());
    let m = in_dialog("INFO", "sip:bob@192.0.2.7", &uac, &[&me, &strict], "abc");
    uac.send(srv.addr(), &m);
    let got = uas.recv(T).expect("to the strict router");
    assert_eq!(
        got.msg.msg().request_uri().unwrap().raw,
        format!("sip:{}", uas.addr())
    );
    let routes = route_values(&got);
    assert_eq!(routes, ["sip:bob@192.0.2.7"]);
}

#[test]
fn out_of_dialog_with_only_our_route_is_preloaded_and_route_removed() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let me = format!("Route: <sip:127.0.0.1:{};lr>", srv.port);
    let m = req(
        "OPTIONS",
        "sip:bob@example.com",
        uac.addr(),
        "o1",
        "ood-1",
        1,
        &[&me],
        "",
    );
    uac.send(srv.addr(), &m);
    let got = uas.recv(T).expect("forwarded");
    // -3 (a preloaded route set, false in `if`), as Kamailio 5.6 answers
    // (kamailio_parity_path.rs).
    assert_eq!(got.header("X-RC").as_deref(), Some("-3"));
    assert!(got.header("Route").is_none());
}

/// The Route values as received, one entry per value.
fn route_values(got: &sr_testkit::Reply) -> Vec<String> {
    got.msg
        .msg()
        .routes()
        .map(|r| r.unwrap().uri_str.to_string())
        .collect()
}

#[test]
fn several_values_on_one_route_line() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let me = format!("<sip:127.0.0.1:{};lr;ftag=abc>", srv.port);

    // Ours first, a loose next hop after it on the same line: only our
    // value goes, the line stays with the next hop.
    let line = format!("{me}, <sip:{};lr>, <sip:far.example.com;lr>", uas.addr());
    let m = in_dialog("BYE", "sip:bob@192.0.2.1", &uac, &[&line], "abc");
    uac.send(srv.addr(), &m);
    let got = uas.recv(T).expect("sent to the next Route hop");
    assert_eq!(got.header("X-RC").as_deref(), Some("1"));
    assert_eq!(
        route_values(&got),
        [
            format!("sip:{};lr", uas.addr()),
            "sip:far.example.com;lr".to_string()
        ]
    );

    // Ours and a strict next hop make the whole line: it goes, the strict
    // hop becomes the R-URI and the R-URI the last Route, with no empty
    // Route header left behind.
    let line = format!("{me}, <sip:{}>", uas.addr());
    let m = in_dialog("INFO", "sip:bob@192.0.2.7", &uac, &[&line], "abc");
    uac.send(srv.addr(), &m);
    let got = uas.recv(T).expect("to the strict router");
    assert_eq!(
        got.msg.msg().request_uri().unwrap().raw,
        format!("sip:{}", uas.addr())
    );
    assert_eq!(route_values(&got), ["sip:bob@192.0.2.7"]);
    let raw = String::from_utf8_lossy(got.msg.bytes()).to_string();
    assert_eq!(raw.matches("Route:").count(), 1, "one Route line: {raw}");
}

/// Record-Route headers of a request, as written.
fn record_routes(m: &sr_testkit::Reply) -> Vec<String> {
    m.msg
        .msg()
        .headers_by_name("record-route")
        .map(|h| h.value.to_string())
        .collect()
}

#[test]
fn one_record_route_on_one_socket_two_when_the_request_changes_transport() {
    // record_route() before the destination is known, as the stock
    // configuration does: the second Record-Route is decided when the
    // request is sent. An advertised address names the socket, and does
    // not make it another one.
    let uas = UdpPeer::new();
    let tcp_uas = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}} advertise 192.0.2.10:5070
listen=tcp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "pv"
request_route {{
    record_route();
    if ($rU == "tcp") {{
        $du = "sip:{tcp};transport=tcp";
    }} else {{
        $du = "sip:{udp}";
    }}
    t_relay();
}}
"#,
        udp = uas.addr(),
        tcp = tcp_uas.local_addr().unwrap()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &req(
            "MESSAGE",
            "sip:udp@example.com",
            uac.addr(),
            "a",
            "rr-one",
            1,
            &[],
            "",
        ),
    );
    let got = uas.recv(T).expect("relayed over UDP");
    assert_eq!(
        record_routes(&got),
        ["<sip:192.0.2.10:5070;lr;ftag=from-rr-one>"],
        "{}",
        got.text()
    );
    uac.send(
        srv.addr(),
        &req(
            "MESSAGE",
            "sip:tcp@example.com",
            uac.addr(),
            "b",
            "rr-two",
            1,
            &[],
            "",
        ),
    );
    let (mut s, _) = tcp_uas.accept().expect("relayed over TCP");
    s.set_read_timeout(Some(T)).unwrap();
    let mut framer = sip_msg::framer::StreamFramer::new(65535);
    let mut buf = [0u8; 8192];
    let msg = loop {
        if let Some(Ok(sip_msg::framer::Frame::Message(b))) = framer.next_frame() {
            break sip_msg::OwnedMessage::parse(b).unwrap();
        }
        let n = std::io::Read::read(&mut s, &mut buf).expect("read");
        assert!(n > 0, "TCP closed");
        framer.push(&buf[..n]);
    };
    let got = sr_testkit::Reply {
        msg,
        from: srv.addr(),
    };
    assert_eq!(
        record_routes(&got),
        [
            format!(
                "<sip:127.0.0.1:{};transport=tcp;r2=on;lr;ftag=from-rr-two>",
                srv.port
            ),
            "<sip:192.0.2.10:5070;r2=on;lr;ftag=from-rr-two>".to_string(),
        ],
        "{}",
        got.text()
    );
}
