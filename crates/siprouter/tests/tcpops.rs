//! End-to-end: the tcpops module over real TCP — a connection's own
//! lifetime ends it with `event_route[tcp:timeout]` (with its `$conid`),
//! `closed_event` 2 reports only the connections asked for,
//! `tcp_close_connection` closes without an event, and configuration
//! errors.

use sr_testkit::{TcpPeer, TestServer, UdpPeer};
use std::io::Read;
use std::time::{Duration, Instant};

fn cfg(closed_event: i64) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
listen=tcp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "tcpops"
modparam("tcpops", "closed_event", {closed_event})
modparam("pv", "shvset", "ev=s:")
request_route {{
    if ($hdr(X-Get) != $null) {{
        append_to_reply("X-Ev: $shv(ev)\r\n");
        sl_send_reply("200", "ok");
        exit;
    }}
    if ($hdr(X-Life) != $null) {{ $var(lt) = $(hdr(X-Life){{s.int}}); tcp_set_connection_lifetime("$var(lt)"); $var(r) = $rc; }}
    if ($hdr(X-Enable) != $null) {{ tcp_enable_closed_event(); $var(r) = $rc; }}
    if ($hdr(X-Close) != $null) {{
        tcp_close_connection("$conid");
        $shv(ev) = $shv(ev) + "closed-by-script:" + $rc + ";";
        exit;
    }}
    tcp_set_connection_lifetime("99999", "5"); $var(u) = $rc;
    append_to_reply("X-R: $var(r) conid=$conid\r\nX-U: $var(u)\r\n");
    sl_send_reply("200", "ok");
}}
event_route[tcp:closed] {{ $shv(ev) = $shv(ev) + "closed:" + $conid + ";"; }}
event_route[tcp:timeout] {{ $shv(ev) = $shv(ev) + "timeout:" + $conid + ";"; }}
event_route[tcp:reset] {{ $shv(ev) = $shv(ev) + "reset:" + $conid + ";"; }}
"#
    )
}

fn options(call: &str, via: &str, extra: &str) -> String {
    format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// Sends over TCP and returns the connection id the script saw.
fn conid(peer: &mut TcpPeer, call: &str, extra: &str) -> (String, String) {
    peer.send(&options(call, &format!("TCP {}", peer.addr()), extra));
    let r = peer.recv(Duration::from_secs(3)).expect("answer over TCP");
    assert_eq!(
        r.header("X-U").as_deref(),
        Some("-1"),
        "no lifetime for an unknown connection"
    );
    let x = r.header("X-R").unwrap_or_default();
    let (rc, id) = x.split_once(" conid=").unwrap_or_default();
    (rc.to_string(), id.to_string())
}

fn events(srv: &TestServer, udp: &UdpPeer, n: u32) -> String {
    let call = format!("ev-{n}");
    udp.send(
        srv.addr(),
        &options(&call, &format!("UDP {}", udp.addr()), "X-Get: 1\r\n"),
    );
    udp.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str())
    })
    .and_then(|r| r.header("X-Ev"))
    .unwrap_or_default()
}

/// Whether the server closed the connection within `within`.
fn closed_by_server(peer: &mut TcpPeer, within: Duration) -> bool {
    let _ = peer.stream.set_read_timeout(Some(within));
    let mut b = [0u8; 64];
    matches!(peer.stream.read(&mut b), Ok(0))
}

#[test]
fn a_connection_lifetime_ends_it_with_the_timeout_event() {
    let srv = TestServer::start(&cfg(1), siprouter::in_tree());
    let udp = UdpPeer::new();
    let mut a = TcpPeer::connect(srv.addr());
    let (rc, id) = conid(&mut a, "l-1", "X-Life: 1\r\n");
    assert_eq!(rc, "1", "lifetime set");
    assert!(!id.is_empty() && id != "<null>");
    let start = Instant::now();
    assert!(
        closed_by_server(&mut a, Duration::from_secs(5)),
        "closed after its lifetime"
    );
    assert!(start.elapsed() >= Duration::from_millis(900));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut ev = events(&srv, &udp, 1);
    while ev.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        ev = events(&srv, &udp, 2);
    }
    assert_eq!(ev, format!("timeout:{id};"));
}

#[test]
fn closed_event_two_reports_only_connections_asked_for() {
    let srv = TestServer::start(&cfg(2), siprouter::in_tree());
    let udp = UdpPeer::new();
    let mut a = TcpPeer::connect(srv.addr());
    let (rc, id_a) = conid(&mut a, "e-1", "X-Enable: 1\r\n");
    assert_eq!(rc, "1");
    let mut b = TcpPeer::connect(srv.addr());
    let (_, id_b) = conid(&mut b, "e-2", "");
    assert_ne!(id_a, id_b);
    drop(b);
    drop(a);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(events(&srv, &udp, 1), format!("closed:{id_a};"));
}

#[test]
fn closing_from_the_script_reports_nothing_and_mode_zero_is_silent() {
    let srv = TestServer::start(&cfg(1), siprouter::in_tree());
    let udp = UdpPeer::new();
    let mut a = TcpPeer::connect(srv.addr());
    a.send(&options(
        "c-1",
        &format!("TCP {}", a.addr()),
        "X-Close: 1\r\n",
    ));
    assert!(closed_by_server(&mut a, Duration::from_secs(3)));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(events(&srv, &udp, 1), "closed-by-script:1;");
    drop(srv);

    let srv = TestServer::start(&cfg(0), siprouter::in_tree());
    let mut a = TcpPeer::connect(srv.addr());
    let (rc, _) = conid(&mut a, "z-1", "X-Enable: 1\r\n");
    assert_eq!(rc, "-1", "tcp_enable_closed_event needs closed_event 2");
    drop(a);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(events(&srv, &udp, 2), "");
}

#[test]
fn a_bad_closed_event_is_refused() {
    let e = TestServer::try_start(&cfg(3), siprouter::in_tree())
        .err()
        .expect("closed_event 3 is refused");
    assert!(
        e.iter()
            .any(|l| l.contains("invalid \"closed_event\" value: 3")),
        "{e:?}"
    );
}
