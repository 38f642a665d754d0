//! Differential test against Kamailio itself, for the tcpops module:
//! requests over TCP and UDP asking whether connections are alive, their
//! state, the connection to an address, keepalives on and off, closed
//! events outside `closed_event` 2, and the event routes run when a
//! client closes its connection (`tcp:closed`) or resets it
//! (`tcp:reset`) — every answer compared (ports and connection ids
//! masked), `tcp_set_connection_lifetime`'s answers included (a string
//! pseudo-variable is refused, as Kamailio's `get_int_fparam` does). Not
//! compared: a lifetime for an unknown connection (Kamailio 5.6 stops
//! answering after it), when a lifetime ends a connection (Kamailio 5.6 applies it
//! from the connection's next read or write) and `$conid` in the event
//! routes (Kamailio 5.6 gives `$null` there); `tests/tcpops.rs` covers
//! both.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, TcpPeer, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "tcpops"];

const BODY: &str = r#"modparam("pv", "shvset", "ev=s:")
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-Get) != $null) {
        append_to_reply("X-Ev: $shv(ev)\r\n");
        sl_send_reply("200", "ok");
        exit;
    }
    tcp_conid_alive("$conid"); $var(a) = $rc;
    tcp_conid_state("$conid"); $var(s) = $rc;
    tcp_conid_alive("99999"); $var(a2) = $rc;
    tcp_conid_state("99999"); $var(s2) = $rc;
    $var(gc) = 0;
    tcp_get_conid("$si:$sp", "$var(gc)"); $var(g) = $rc;
    if ($var(gc) == $conid) { $var(same) = "same"; } else { $var(same) = "other"; }
    $var(gc2) = 0;
    tcp_get_conid("127.0.0.1:1", "$var(gc2)"); $var(g2) = $rc;
    tcp_keepalive_enable("30", "3", "5"); $var(k1) = $rc;
    tcp_keepalive_enable("$conid", "30", "3", "5"); $var(k2) = $rc;
    tcp_keepalive_disable(); $var(k3) = $rc;
    tcp_keepalive_disable("$conid"); $var(k4) = $rc;
    tcp_keepalive_enable("99999", "30", "3", "5"); $var(k5) = $rc;
    tcp_enable_closed_event(); $var(e) = $rc;
    $var(lt) = 3600;
    tcp_set_connection_lifetime("$var(lt)"); $var(l1) = $rc;
    tcp_set_connection_lifetime("$conid", "$var(lt)"); $var(l2) = $rc;
    tcp_set_connection_lifetime("$hdr(X-C)"); $var(l4) = $rc;
    append_to_reply("X-A: proto=$proto alive=$var(a) state=$var(s) alive2=$var(a2) state2=$var(s2) get=$var(g)|$var(same) get2=$var(g2)|$var(gc2) ka=$var(k1)|$var(k2)|$var(k3)|$var(k4)|$var(k5) en=$var(e) life=$var(l1)|$var(l2)|$var(l4)\r\n");
    sl_send_reply("200", "ok");
}
event_route[tcp:closed] { $shv(ev) = $shv(ev) + "closed:" + $si + ":" + $sp + ":" + $proto + ";"; }
event_route[tcp:timeout] { $shv(ev) = $shv(ev) + "timeout:" + $si + ";"; }
event_route[tcp:reset] { $shv(ev) = $shv(ev) + "reset:" + $si + ":" + $sp + ";"; }
"#;

fn options(call: &str, via: &str, extra: &str) -> String {
    format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-C: 1\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

fn masked(v: &str, ports: &[u16]) -> String {
    let mut v = v.to_string();
    for p in ports {
        v = v.replace(&format!(":{p}"), ":PORT");
    }
    v
}

/// The events so far, asked over UDP.
fn events(udp: &UdpPeer, srv: SocketAddr, n: u32, ports: &[u16]) -> String {
    let call = format!("ev-{n}");
    udp.send(
        srv,
        &options(&call, &format!("UDP {}", udp.addr()), "X-Get: 1\r\n"),
    );
    let r = udp
        .recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        })
        .expect("events answered");
    masked(&r.header("X-Ev").unwrap_or_default(), ports)
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let udp = UdpPeer::new();
    kamailio::wait_until_up(&udp, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    // Over TCP, then the client closes.
    let mut a = TcpPeer::connect(srv);
    let pa = a.addr().port();
    a.send(&options("t-1", &format!("TCP {}", a.addr()), ""));
    let r = a.recv(Duration::from_secs(3)).expect("answer over TCP");
    out.push(format!("tcp: {}", r.header("X-A").unwrap_or_default()));
    drop(a);
    std::thread::sleep(Duration::from_millis(500));
    out.push(format!("after close: {}", events(&udp, srv, 1, &[pa])));
    // Over UDP: no connection.
    udp.send(srv, &options("u-1", &format!("UDP {}", udp.addr()), ""));
    let r = udp
        .recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some("u-1")
        })
        .expect("answer over UDP");
    out.push(format!("udp: {}", r.header("X-A").unwrap_or_default()));
    // A client that resets its connection: it closes with the answer
    // unread.
    let mut b = TcpPeer::connect(srv);
    let pb = b.addr().port();
    b.send(&options("t-2", &format!("TCP {}", b.addr()), ""));
    std::thread::sleep(Duration::from_millis(300));
    drop(b);
    std::thread::sleep(Duration::from_millis(500));
    out.push(format!("after reset: {}", events(&udp, srv, 2, &[pa, pb])));
    out
}

#[test]
fn tcp_operations_and_events_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("tcpops");
    let cfg = kamailio::head(MODULES).replace(
        "listen=udp:127.0.0.1:__PORT__",
        "listen=udp:127.0.0.1:__PORT__\nlisten=tcp:127.0.0.1:__PORT__",
    ) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(
        want.iter().any(|l| l.contains("closed:127.0.0.1:PORT:tcp")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "tcpops");
}
