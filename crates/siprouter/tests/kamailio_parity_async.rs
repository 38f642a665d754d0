//! Differential test against Kamailio itself, for the async module:
//! requests suspended by `async_route`, `async_ms_route` and
//! `async_task_route` and continued in a `route[...]` block, run by
//! Kamailio 5.6 and by siprouter in turn on one configuration, and
//! compared: every message the caller gets (the `100 Trying` of an
//! INVITE, the final reply with what the continuing route saw — the
//! request's AVPs, method, Request-URI, a header — or a relayed answer),
//! and whether it came at once or within the second asked (Kamailio's
//! seconds timer fires anywhere in that second).
//!
//! Without Kamailio and its async module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::UdpPeer;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const MODULES: &[&str] = &["tm", "tmx", "sl", "pv", "textops", "async"];

const BODY: &str = r#"
async_workers=2
modparam("tm", "fr_timer", 3000)
modparam("async", "ms_timer", 10)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("ACK")) { exit; }
    $avp(x) = "avp-" + $hdr(X-T);
    $var(rc) = 0;
    if ($hdr(X-T) == "route") {
        $var(rc) = async_route("RESUME", "1");
    } else if ($hdr(X-T) == "ms") {
        $var(rc) = async_ms_route("RESUME", "300");
    } else if ($hdr(X-T) == "task") {
        $var(rc) = async_task_route("RESUME");
    } else if ($hdr(X-T) == "relay") {
        $var(rc) = async_task_route("RELAY");
    } else if ($hdr(X-T) == "var") {
        $var(s) = 1;
        $var(rc) = async_route("RESUME", "$var(s)");
    }
    append_to_reply("X-Rc: $var(rc)\r\n");
    sl_send_reply("500", "not suspended");
}

route[RESUME] {
    append_to_reply("X-A: $avp(x) $rm $rU $hdr(X-T)\r\n");
    t_reply("202", "resumed");
}

route[RELAY] {
    $du = "sip:__UAS__";
    t_relay();
}
"#;

/// Sends one request and records what comes back and when.
fn ask(peer: &UdpPeer, srv: SocketAddr, uas: &UdpPeer, method: &str, t: &str) -> Vec<String> {
    let text = format!(
        "{method} sip:{t}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKa{t}{method}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f{t}\r\nTo: <sip:{t}@ex.test>\r\nCall-ID: async-{t}-{method}\r\nCSeq: 1 {method}\r\nContact: <sip:a@{}>\r\nX-T: {t}\r\nContent-Length: 0\r\n\r\n",
        peer.addr(),
        peer.addr()
    );
    let start = Instant::now();
    peer.send(srv, &text);
    let mut out = Vec::new();
    if t == "relay" {
        if let Some(r) = uas.recv_method(method, Duration::from_secs(3)) {
            out.push(format!("uas got {method} after {}", bucket(start)));
            uas.send(r.from, &sr_testkit::answer(&r, 486, "Busy Here", "u1", &[]));
        }
    }
    let call = format!("async-{t}-{method}");
    while let Some(r) = peer.recv(Duration::from_secs(3)) {
        // Retransmissions of an earlier request's answer are not this one's.
        if r.header("Call-ID").as_deref() != Some(call.as_str()) {
            continue;
        }
        let code = r.status().unwrap_or(0);
        let first = r.text().lines().next().unwrap_or_default().to_string();
        let a = r.header("X-A").unwrap_or_default();
        let rc = r.header("X-Rc").unwrap_or_default();
        out.push(format!(
            "{t} {method}: {first} | X-A: {a} | X-Rc: {rc} | after {}",
            bucket(start)
        ));
        if code >= 200 {
            if method == "INVITE" {
                let to = r.header("To").unwrap_or_default();
                peer.send(srv, &format!(
                    "ACK sip:{t}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKack{t}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f{t}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\nX-T: {t}\r\nContent-Length: 0\r\n\r\n",
                    peer.addr()
                ));
            }
            break;
        }
    }
    out
}

/// The time since `start`: at once, after a delay (Kamailio's
/// whole-second timer fires up to a second early or late), or much later.
fn bucket(start: Instant) -> &'static str {
    match start.elapsed().as_millis() {
        0..=150 => "at once",
        151..=2500 => "after a delay",
        _ => "much later",
    }
}

fn scenario(srv: SocketAddr, uas: &UdpPeer) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (m, t) in [
        ("MESSAGE", "route"),
        ("MESSAGE", "ms"),
        ("MESSAGE", "task"),
        ("INVITE", "task"),
        ("MESSAGE", "relay"),
        ("MESSAGE", "var"),
    ] {
        out.extend(ask(&peer, srv, uas, m, t));
    }
    out
}

#[test]
fn async_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("async");
    let uas = UdpPeer::new();
    let cfg = (kamailio::head(MODULES) + BODY).replace("__UAS__", &uas.addr().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, &uas)
    });
    assert!(
        want.iter().any(|l| l.contains("resumed")),
        "Kamailio continued: {want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "async");
}
