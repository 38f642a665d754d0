//! End-to-end: with several UDP workers, datagrams from many flows go to
//! one worker at low load (`udp_steer_low_load`, the default), and are
//! spread over the workers by flow when that worker is stuck in a slow
//! message, then steered again once it is free and the load stays low.
//! Which worker answered is read from `$pp` (the worker's thread id) in a
//! reply header.

use sr_testkit::{req, TestServer, UdpPeer};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);
/// Distinct client sockets (flows): with four workers, the kernel's hash
/// puts 16 flows on one worker by chance once in 4^15.
const FLOWS: usize = 16;

fn cfg(extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
disable_tcp=yes
children=4
{extra}
loadmodule "sl"
loadmodule "textops"
loadmodule "cfgutils"
request_route {{
    if ($rU == "slow") {{ usleep(1000000); }}
    append_to_reply("X-Worker: $pp\r\n");
    sl_send_reply("200", "OK");
    exit;
}}
"#
    )
}

/// Sends one OPTIONS to `user` from `peer` without waiting.
fn send(peer: &UdpPeer, to: SocketAddr, user: &str, ci: &str) {
    let ruri = format!("sip:{user}@127.0.0.1");
    peer.send(to, &req("OPTIONS", &ruri, peer.addr(), ci, ci, 1, &[], ""));
}

/// The worker that answered `peer`'s next reply, with the reply's Call-ID.
fn answered_by(peer: &UdpPeer, within: Duration) -> Option<(String, String)> {
    let r = peer.recv(within)?;
    assert_eq!(r.status(), Some(200));
    let ci = r.msg.msg().call_id().unwrap().to_string();
    Some((r.header("X-Worker").expect("X-Worker header"), ci))
}

/// One OPTIONS from each of `FLOWS` new sockets, one after the other; the
/// workers that answered.
fn workers_for_new_flows(to: SocketAddr, tag: &str) -> BTreeSet<String> {
    let mut workers = BTreeSet::new();
    for i in 0..FLOWS {
        let peer = UdpPeer::new();
        send(&peer, to, "fast", &format!("{tag}-{i}"));
        let (w, _) = answered_by(&peer, T).unwrap_or_else(|| panic!("flow {i}: no answer"));
        workers.insert(w);
    }
    workers
}

#[test]
fn at_low_load_every_flow_goes_to_one_worker() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    assert_eq!(srv.stat("core:udp_steered"), Some(1));
    let workers = workers_for_new_flows(srv.addr(), "low");
    assert_eq!(workers.len(), 1, "answered by {workers:?}");
}

#[test]
fn without_steering_the_flows_spread_over_the_workers() {
    let srv = TestServer::start(&cfg("udp_steer_low_load=no"), siprouter::in_tree());
    assert_eq!(srv.stat("core:udp_steered"), Some(0));
    let workers = workers_for_new_flows(srv.addr(), "off");
    assert!(workers.len() > 1, "answered by {workers:?} only");
}

#[test]
fn a_stuck_worker_has_new_flows_spread_then_steered_again_when_calm() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    let slow = UdpPeer::new();
    let t0 = Instant::now();
    send(&slow, srv.addr(), "slow", "slow-1");
    // The timer checks every 50 ms and spreads once the worker has been in
    // its batch for 20 ms.
    assert_eq!(srv.wait_stat("core:udp_steered", 0), Some(0));
    assert!(t0.elapsed() < Duration::from_millis(500));
    // New flows meanwhile: those the hash gives to the other three workers
    // are answered while the first still sleeps; those it gives to the
    // stuck one wait for it, as without steering.
    let peers: Vec<UdpPeer> = (0..FLOWS).map(|_| UdpPeer::new()).collect();
    for (i, p) in peers.iter().enumerate() {
        send(p, srv.addr(), "fast", &format!("during-{i}"));
    }
    // Answers in the first 600 ms of its 1 s sleep (a sweep takes at most
    // 80 ms, so none is read after 700 ms).
    let mut early = Vec::new();
    let mut answered = [false; FLOWS];
    while t0.elapsed() < Duration::from_millis(600) {
        for (p, done) in peers.iter().zip(answered.iter_mut()) {
            if !*done {
                if let Some((w, _)) = answered_by(p, Duration::from_millis(5)) {
                    early.push(w);
                    *done = true;
                }
            }
        }
    }
    let (stuck, ci) = answered_by(&slow, T).expect("the slow request is answered");
    assert_eq!(ci, "slow-1");
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "usleep did not block"
    );
    assert!(
        !early.is_empty(),
        "no flow answered while a worker was stuck"
    );
    assert!(
        early.iter().all(|w| *w != stuck),
        "{early:?} include the stuck worker {stuck}"
    );
    // The rest are answered once it is free, by it.
    for (p, _) in peers.iter().zip(answered).filter(|(_, done)| !done) {
        let (w, _) = answered_by(p, T).expect("a flow of the stuck worker is answered");
        assert_eq!(w, stuck);
    }
    // A calm second later the flows go to one worker again.
    let deadline = Instant::now() + T;
    while srv.stat("core:udp_steered") != Some(1) {
        assert!(Instant::now() < deadline, "not steered again");
        std::thread::sleep(Duration::from_millis(20));
    }
    let workers = workers_for_new_flows(srv.addr(), "after");
    assert_eq!(workers.len(), 1, "answered by {workers:?}");
}
