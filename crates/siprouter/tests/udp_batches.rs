//! End-to-end: UDP workers that take datagrams in batches (`recvmmsg`,
//! `udp_batch_wait`) and hold tm's sends until the end of a batch
//! (`sendmmsg`) still handle every datagram of a burst exactly once, with
//! the right source and destination, whether they wait for batches or not.

use sr_testkit::{answer, req, TestServer, UdpPeer};
use std::collections::HashMap;
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

/// Three clients each send a burst of OPTIONS, then a burst of MESSAGEs that
/// the proxy forwards to one UAS: every OPTIONS is answered once, to the
/// client that sent it, and every MESSAGE reaches the UAS once.
fn burst_is_handled_exactly_once(wait: &str) {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(wait, uas.addr().port()), siprouter::in_tree());
    let clients: Vec<UdpPeer> = (0..3).map(|_| UdpPeer::new()).collect();
    for (c, peer) in clients.iter().enumerate() {
        for i in 0..BURST {
            let ci = format!("opt-{c}-{i}");
            let m = req(
                "OPTIONS",
                "sip:127.0.0.1",
                peer.addr(),
                &ci,
                &ci,
                1,
                &[],
                "",
            );
            peer.send(srv.addr(), &m);
        }
    }
    for (c, peer) in clients.iter().enumerate() {
        let mut seen = HashMap::new();
        while seen.len() < BURST {
            let r = peer
                .recv(T)
                .unwrap_or_else(|| panic!("client {c}: {} of {BURST} answers", seen.len()));
            assert_eq!(r.status(), Some(200));
            let ci = r.msg.msg().call_id().unwrap().to_string();
            assert!(
                ci.starts_with(&format!("opt-{c}-")),
                "{ci} went to client {c}"
            );
            *seen.entry(ci).or_insert(0) += 1;
        }
        assert!(seen.values().all(|n| *n == 1), "answered twice: {seen:?}");
        assert!(peer.recv(Duration::from_millis(200)).is_none());
    }
    for (c, peer) in clients.iter().enumerate() {
        for i in 0..FORWARDED {
            let ci = format!("msg-{c}-{i}");
            let m = req(
                "MESSAGE",
                "sip:bob@example.com",
                peer.addr(),
                &ci,
                &ci,
                1,
                &[],
                "x",
            );
            peer.send(srv.addr(), &m);
        }
    }
    let mut got = HashMap::new();
    while got.len() < 3 * FORWARDED {
        let r = uas
            .recv(T)
            .unwrap_or_else(|| panic!("UAS: {} of {} requests", got.len(), 3 * FORWARDED));
        *got.entry(r.msg.msg().call_id().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert!(got.values().all(|n| *n == 1), "forwarded twice: {got:?}");
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
    for (c, peer) in clients.iter().enumerate() {
        for i in 0..FORWARDED {
            let ci = format!("tm-{c}-{i}");
            let m = req(
                "MESSAGE",
                "sip:bob@example.com",
                peer.addr(),
                &ci,
                &ci,
                1,
                &[],
                "x",
            );
            peer.send(srv.addr(), &m);
        }
    }
    let mut got = HashMap::new();
    let mut requests = Vec::new();
    while got.len() < 3 * FORWARDED {
        let r = uas
            .recv(T)
            .unwrap_or_else(|| panic!("UAS: {} of {} requests", got.len(), 3 * FORWARDED));
        let n = got
            .entry(r.msg.msg().call_id().unwrap().to_string())
            .or_insert(0);
        *n += 1;
        if *n == 1 {
            requests.push(r);
        }
    }
    assert!(got.values().all(|n| *n == 1), "relayed twice: {got:?}");
    for r in &requests {
        uas.send(r.from, &answer(r, 200, "OK", "uas", &[]));
    }
    for (c, peer) in clients.iter().enumerate() {
        let mut seen = HashMap::new();
        while seen.len() < FORWARDED {
            let r = peer
                .recv(T)
                .unwrap_or_else(|| panic!("client {c}: {} of {FORWARDED} answers", seen.len()));
            assert_eq!(r.status(), Some(200));
            let ci = r.msg.msg().call_id().unwrap().to_string();
            assert!(
                ci.starts_with(&format!("tm-{c}-")),
                "{ci} went to client {c}"
            );
            *seen.entry(ci).or_insert(0) += 1;
        }
        assert!(seen.values().all(|n| *n == 1), "answered twice: {seen:?}");
    }
    assert_eq!(
        srv.wait_stat("tmx:rpl_relayed", 3 * FORWARDED as i64),
        Some(3 * FORWARDED as i64)
    );
}
