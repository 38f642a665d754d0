//! pipelimit on siprouter alone, across intervals (`timer_interval=1`):
//! a TAILDROP pipe opening again after the interval, RED letting one in
//! `load` through, an unused pipe cleaned, and the `pl.*` RPC commands.
//! Behaviour within one interval is compared with Kamailio in
//! kamailio_parity_pipelimit.rs.

use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, UdpPeer};
use std::time::Duration;

const CFG: &str = r#"
listen=udp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "pipelimit"
modparam("pipelimit", "timer_interval", 1)
modparam("pipelimit", "clean_unused", 2)
request_route {
    $var(rc) = pl_check("$hdr(X-P)", "$hdr(X-A)", "$(hdr(X-L){s.int})");
    append_to_reply("X-RC: $var(rc)\r\n");
    sl_send_reply("200", "OK");
}
"#;

fn check(
    srv: &TestServer,
    peer: &UdpPeer,
    n: &mut u32,
    pipe: &str,
    algo: &str,
    limit: i64,
) -> String {
    *n += 1;
    peer.send(
        srv.addr(),
        &format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKpl{n}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: pl{n}\r\nCSeq: 1 OPTIONS\r\nX-P: {pipe}\r\nX-A: {algo}\r\nX-L: {limit}\r\nContent-Length: 0\r\n\r\n",
            peer.addr()
        ),
    );
    peer.recv_status(200, Duration::from_secs(3))
        .and_then(|r| r.header("X-RC"))
        .unwrap_or_default()
}

/// Waits until the interval's refresh has run once more (the pipe's
/// counter back at 0 in `pl.list`).
fn next_interval(srv: &TestServer, pipe: &str) {
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(v) = srv.rpc("pl.list", &[json!(pipe)]) {
            if v[0]["counter"] == json!(0) {
                return;
            }
        }
    }
    panic!("no refresh of {pipe}");
}

#[test]
fn pipes_across_intervals() {
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let peer = UdpPeer::new();
    let mut n = 0;
    let mut run = |pipe: &str, algo: &str, limit: i64, times: usize| -> Vec<String> {
        (0..times)
            .map(|_| check(&srv, &peer, &mut n, pipe, algo, limit))
            .collect()
    };
    assert_eq!(run("t", "TAILDROP", 2, 3), ["1", "1", "-1"]);
    let r: Vec<String> = run("r", "RED", 2, 6);
    assert_eq!(r, ["1"; 6]);
    next_interval(&srv, "t");
    // TAILDROP opens again; RED's load is 6/2 = 3: one in three passes.
    assert_eq!(run("t", "TAILDROP", 2, 2), ["1", "1"]);
    assert_eq!(run("r", "RED", 2, 6), ["-1", "-1", "1", "-1", "-1", "1"]);
    let stats = srv.rpc("pl.stats", &[]).unwrap();
    assert!(
        stats
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "PIPE: id=r load=3 counter=6"),
        "{stats}"
    );
    let pipes = srv.rpc("pl.get_pipes", &[]).unwrap();
    assert!(
        pipes
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "PIPE: id=t algorithm=TAILDROP limit=2 counter=2"),
        "{pipes}"
    );
    // RPC changes.
    srv.rpc("pl.set_pipe", &[json!("t"), json!("TAILDROP"), json!(5)])
        .unwrap();
    assert_eq!(
        srv.rpc("pl.list", &[json!("t")]).unwrap()[0]["limit"],
        json!(5)
    );
    assert_eq!(
        srv.rpc("pl.set_pipe", &[json!("t"), json!("X"), json!(5)])
            .unwrap_err()
            .code,
        400
    );
    assert_eq!(srv.rpc("pl.list", &[json!("none")]).unwrap_err().code, 400);
    srv.rpc("pl.reset_pipe", &[json!("t")]).unwrap();
    assert_eq!(
        srv.rpc("pl.list", &[json!("t")]).unwrap()[0]["counter"],
        json!(0)
    );
    assert_eq!(
        srv.rpc("pl.get_pid", &[]).unwrap(),
        json!("ki[-25.000000] kp[0.000000] kd[0.000000] ")
    );
    srv.rpc("pl.set_pid", &[json!(1.5), json!(0), json!(0)])
        .unwrap();
    assert_eq!(srv.rpc("pl.push_load", &[json!(2)]).unwrap_err().code, 400);
    srv.rpc("pl.rm_pipe", &[json!("r")]).unwrap();
    assert_eq!(srv.rpc("pl.rm_pipe", &[json!("r")]).unwrap_err().code, 404);
    // Unused for two intervals: gone.
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if srv.rpc("pl.list", &[json!("t")]).is_err() {
            return;
        }
    }
    panic!("the unused pipe stayed");
}
