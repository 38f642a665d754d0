//! Differential test against Kamailio itself, for ratelimit, within one
//! interval: queues by method (exact, and the `*` fallback), pipes with
//! limits that always pass or never do (limits are per second times the
//! interval, so the outcome does not depend on when the interval ends),
//! a NOP pipe, `rl_check()` by queue, `rl_check(pipe)` (also negative and
//! out of range), `rl_check_pipe` on defined and undefined pipes —
//! compared: every return code.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "ratelimit"];

const BODY: &str = r#"
modparam("ratelimit", "timer_interval", 300)
modparam("ratelimit", "pipe", "0:TAILDROP:0")
modparam("ratelimit", "pipe", "1:TAILDROP:100")
modparam("ratelimit", "pipe", "2:NOP:0")
modparam("ratelimit", "pipe", "3:RED:100")
modparam("ratelimit", "queue", "0:MESSAGE")
modparam("ratelimit", "queue", "1:*")
modparam("ratelimit", "queue", "2:NOTIFY")
modparam("ratelimit", "queue", "3:info")
request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    $var(op) = $hdr(X-Op);
    $var(rc) = "none";
    if ($var(op) == "q") { $var(rc) = rl_check(); }
    else if ($var(op) == "p") { $var(rc) = rl_check("$(hdr(X-N){s.int})"); }
    else if ($var(op) == "cp") { $var(rc) = rl_check_pipe("$(hdr(X-N){s.int})"); }
    append_to_reply("X-RC: $var(rc)\r\n");
    sl_send_reply("200", "done");
}
"#;

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let steps: Vec<(&str, &str, &str)> = vec![
        ("q", "OPTIONS", ""),
        ("q", "MESSAGE", ""),
        ("q", "MESSAGE", ""),
        ("q", "NOTIFY", ""),
        ("q", "INFO", ""),
        ("q", "INFO", ""),
        ("q", "SUBSCRIBE", ""),
        ("p", "OPTIONS", "0"),
        ("p", "OPTIONS", "1"),
        ("p", "OPTIONS", "-1"),
        ("p", "MESSAGE", "-1"),
        ("p", "OPTIONS", "2"),
        ("p", "OPTIONS", "40"),
        ("cp", "OPTIONS", "1"),
        ("cp", "OPTIONS", "0"),
        ("cp", "OPTIONS", "3"),
        ("cp", "OPTIONS", "5"),
        ("cp", "OPTIONS", "2"),
    ];
    let mut out = Vec::new();
    for (n, (op, method, num)) in steps.into_iter().enumerate() {
        let call = format!("rl{n}");
        let text = format!(
            "{method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {v};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nX-Op: {op}\r\nX-N: {num}\r\nContent-Length: 0\r\n\r\n",
            v = peer.addr()
        );
        peer.send(srv, &text);
        let r = peer.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
                && r.status().is_some_and(|c| c >= 200)
        });
        out.push(format!(
            "{op} {method} {num} -> {}",
            r.and_then(|r| r.header("X-RC"))
                .unwrap_or_else(|| "nothing".into())
        ));
    }
    out
}

#[test]
fn ratelimit_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("ratelimit");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.ends_with("-> -1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "ratelimit");
}
