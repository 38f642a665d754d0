//! End-to-end: UDP workers that take datagrams in batches (`recvmmsg`,
//! `udp_batch_wait`) and hold their sends until the end of a batch
//! (`sendmmsg`, `udp_hold_sends`) still handle every datagram of a burst exactly once, with
//! the right source and destination, whether they wait for batches or not;
//! under steady traffic a worker waits between batches (counted in
//! `core:udp_batch_waits`) unless `udp_batch_wait=0`.

use sr_testkit::{answer, req, Reply, TestServer, UdpPeer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);
/// OPTIONS each client sends without waiting: several batches' worth.
const BURST: usize = 100;
/// MESSAGEs each client sends without waiting; fewer, so that what the
/// proxy forwards fits the one test UAS's default socket buffer.
const FORWARDED: usize = 40;

fn cfg(wait: &str, uas_port: u16) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
disable_tcp=yes
children=1
{wait}
loadmodule "sl"
request_route {{
    if (method=="OPTIONS") {{ sl_send_reply("200", "OK"); exit; }}
    $du = "sip:127.0.0.1:{uas_port}";
    forward();
    exit;
}}
"#
    )
}

/// Each client sends `n` requests without waiting, Call-IDs
/// `{prefix}-{client}-{i}`.
fn send_bursts(
    clients: &[UdpPeer],
    to: SocketAddr,
    method: &str,
    ruri: &str,
    prefix: &str,
    n: usize,
) {
    let body = if method == "OPTIONS" { "" } else { "x" };
    for (c, peer) in clients.iter().enumerate() {
        for i in 0..n {
            let ci = format!("{prefix}-{c}-{i}");
            peer.send(to, &req(method, ruri, peer.addr(), &ci, &ci, 1, &[], body));
        }
    }
}

/// Every client gets one 200 for each of its `n` requests, none for
/// another client's.
fn each_client_answered_once(clients: &[UdpPeer], prefix: &str, n: usize) {
    for (c, peer) in clients.iter().enumerate() {
        let mut seen = HashMap::new();
        while seen.len() < n {
            let r = peer
                .recv(T)
                .unwrap_or_else(|| panic!("client {c}: {} of {n} answers", seen.len()));
            assert_eq!(r.status(), Some(200));
            let ci = r.msg.msg().call_id().unwrap().to_string();
            assert!(
                ci.starts_with(&format!("{prefix}-{c}-")),
                "{ci} went to client {c}"
            );
            *seen.entry(ci).or_insert(0) += 1;
        }
        assert!(seen.values().all(|n| *n == 1), "answered twice: {seen:?}");
    }
}

/// The UAS gets `n` distinct requests, each once; returns them.
fn uas_gets_each_once(uas: &UdpPeer, n: usize) -> Vec<Reply> {
    let mut got = HashMap::new();
    let mut requests = Vec::new();
    while got.len() < n {
        let r = uas
            .recv(T)
            .unwrap_or_else(|| panic!("UAS: {} of {n} requests", got.len()));
        let k = got
            .entry(r.msg.msg().call_id().unwrap().to_string())
            .or_insert(0);
        *k += 1;
        if *k == 1 {
            requests.push(r);
        }
    }
    assert!(got.values().all(|k| *k == 1), "forwarded twice: {got:?}");
    requests
}

/// Three clients each send a burst of OPTIONS, then a burst of MESSAGEs that
/// the proxy forwards to one UAS: every OPTIONS is answered once, to the
/// client that sent it, and every MESSAGE reaches the UAS once.
fn burst_is_handled_exactly_once(wait: &str) {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(wait, uas.addr().port()), siprouter::in_tree());
    let clients: Vec<UdpPeer> = (0..3).map(|_| UdpPeer::new()).collect();
    send_bursts(
        &clients,
        srv.addr(),
        "OPTIONS",
        "sip:127.0.0.1",
        "opt",
        BURST,
    );
    each_client_answered_once(&clients, "opt", BURST);
    for peer in &clients {
        assert!(peer.recv(Duration::from_millis(200)).is_none());
    }
    send_bursts(
        &clients,
        srv.addr(),
        "MESSAGE",
        "sip:bob@example.com",
        "msg",
        FORWARDED,
    );
    uas_gets_each_once(&uas, 3 * FORWARDED);
    assert!(uas.recv(Duration::from_millis(200)).is_none());
    assert_eq!(
        srv.wait_stat("core:fwd_requests", 3 * FORWARDED as i64),
        Some(3 * FORWARDED as i64)
    );
}

#[test]
fn burst_with_batch_waits_is_handled_exactly_once() {
    burst_is_handled_exactly_once("udp_batch_wait=1000");
}

#[test]
fn burst_without_batch_waits_is_handled_exactly_once() {
    burst_is_handled_exactly_once("udp_batch_wait=0");
}

/// With holding turned off (`udp_hold_sends=no`) a burst is still handled
/// exactly once (that the setting really sends at once is checked by
/// `without_held_sends_forward_returns_the_kernels_refusal`).
#[test]
fn burst_without_held_sends_is_handled_exactly_once() {
    burst_is_handled_exactly_once("udp_hold_sends=no");
}

/// A burst of MESSAGEs relayed by tm (whose sends a worker holds until its
/// batch ends) reaches the UAS once each, and the UAS's answers, sent as a
/// burst too, go back once each to the client that asked.
#[test]
fn burst_through_tm_is_relayed_both_ways_exactly_once() {
    let uas = UdpPeer::new();
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
disable_tcp=yes
children=1
loadmodule "tm"
loadmodule "tmx"
request_route {{
    $du = "sip:127.0.0.1:{}";
    t_relay();
    exit;
}}
"#,
        uas.addr().port()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let clients: Vec<UdpPeer> = (0..3).map(|_| UdpPeer::new()).collect();
    send_bursts(
        &clients,
        srv.addr(),
        "MESSAGE",
        "sip:bob@example.com",
        "tm",
        FORWARDED,
    );
    for r in &uas_gets_each_once(&uas, 3 * FORWARDED) {
        uas.send(r.from, &answer(r, 200, "OK", "uas", &[]));
    }
    each_client_answered_once(&clients, "tm", FORWARDED);
    assert_eq!(
        srv.wait_stat("tmx:rpl_relayed", 3 * FORWARDED as i64),
        Some(3 * FORWARDED as i64)
    );
}

/// One client sends OPTIONS at a steady pace (about one per 250 µs), and
/// returns how many batches the worker took them in and how often it
/// waited between batches, once all are answered.
fn steady_stream(wait: &str) -> (i64, i64) {
    const N: usize = 150;
    let srv = TestServer::start(&cfg(wait, 9), siprouter::in_tree());
    let client = UdpPeer::new();
    for i in 0..N {
        let ci = format!("steady-0-{i}");
        client.send(
            srv.addr(),
            &req(
                "OPTIONS",
                "sip:127.0.0.1",
                client.addr(),
                &ci,
                &ci,
                1,
                &[],
                "",
            ),
        );
        std::thread::sleep(Duration::from_micros(250));
    }
    each_client_answered_once(std::slice::from_ref(&client), "steady", N);
    assert_eq!(srv.stat("core:rcv_requests"), Some(N as i64));
    let batches = srv.stat("core:udp_recv_batches").unwrap_or(0);
    let waits = srv.stat("core:udp_batch_waits").unwrap_or(-1);
    (batches, waits)
}

/// Under steady traffic the worker's measured gap between datagrams falls
/// below half of `udp_batch_wait` (here 20 ms, so that a busy test machine
/// stretching the 250 µs gaps changes nothing), and it then sleeps between
/// batches and takes several datagrams per receive call.
#[test]
fn steady_traffic_makes_the_worker_wait_between_batches() {
    let (batches, waits) = steady_stream("udp_batch_wait=20000");
    assert!(waits > 0, "no wait between batches");
    assert!(batches < 150, "{batches} batches for 150 datagrams");
}

/// With `udp_batch_wait=0` the worker never sleeps between batches.
#[test]
fn no_waits_with_udp_batch_wait_zero() {
    let (batches, waits) = steady_stream("udp_batch_wait=0");
    assert_eq!(waits, 0);
    assert!((1..=150).contains(&batches), "{batches} batches");
}
