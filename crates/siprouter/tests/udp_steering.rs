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
    if ($rU == "slow") {{ usleep(2000000); }}
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

/// Waits until the address is steered, then checks that new flows all go
/// to one worker. A worker that a busy test machine preempts for 20 ms in
/// a batch counts as stuck and has the flows spread for a second, so a
/// round is tried up to three times.
fn new_flows_go_to_one_worker(srv: &TestServer, tag: &str) {
    let mut seen = Vec::new();
    for round in 0..3 {
        let deadline = Instant::now() + T;
        while srv.stat("core:udp_steered") != Some(1) {
            assert!(Instant::now() < deadline, "not steered");
            std::thread::sleep(Duration::from_millis(20));
        }
        let workers = workers_for_new_flows(srv.addr(), &format!("{tag}-{round}"));
        if workers.len() == 1 {
            return;
        }
        seen.push(workers);
    }
    panic!("new flows answered by several workers in every round: {seen:?}");
}

#[test]
fn at_low_load_every_flow_goes_to_one_worker() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    assert_eq!(srv.stat("core:udp_steered"), Some(1));
    new_flows_go_to_one_worker(&srv, "low");
    // A gauge: resetting the statistics leaves it.
    srv.rpc("stats.reset_statistics", &["all".into()]).unwrap();
    assert_eq!(srv.stat("core:udp_steered"), Some(1));
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
    // The timer checks every 50 ms and spreads once a worker has been in
    // its batch for 20 ms.
    assert_eq!(srv.wait_stat("core:udp_steered", 0), Some(0));
    // New flows meanwhile: those the hash gives to the other three workers
    // are answered while the stuck one sleeps; those it gives to the stuck
    // one wait for it, as without steering.
    let peers: Vec<UdpPeer> = (0..FLOWS).map(|_| UdpPeer::new()).collect();
    for (i, p) in peers.iter().enumerate() {
        send(p, srv.addr(), "fast", &format!("during-{i}"));
    }
    // The stuck worker sends the slow request's answer before any other
    // (sends are held to the end of its batch, which holds only that
    // request), so an answer read while the slow answer has not come was
    // sent by another worker.
    let mut slow_answer = None;
    let mut early = Vec::new();
    let mut answered = [false; FLOWS];
    let deadline = Instant::now() + T;
    while answered.iter().any(|a| !a) || slow_answer.is_none() {
        assert!(Instant::now() < deadline, "answered: {answered:?}");
        for (p, done) in peers.iter().zip(answered.iter_mut()) {
            if *done {
                continue;
            }
            if let Some((w, _)) = answered_by(p, Duration::from_millis(5)) {
                *done = true;
                if slow_answer.is_none() {
                    slow_answer = answered_by(&slow, Duration::from_millis(1));
                    if slow_answer.is_none() {
                        early.push(w);
                    }
                }
            }
        }
        if slow_answer.is_none() {
            slow_answer = answered_by(&slow, Duration::from_millis(1));
        }
    }
    let (stuck, ci) = slow_answer.unwrap();
    assert_eq!(ci, "slow-1");
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
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
    // A calm second later the flows go to one worker again.
    new_flows_go_to_one_worker(&srv, "after");
}
