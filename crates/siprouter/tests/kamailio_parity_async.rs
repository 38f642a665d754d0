//! Differential test against Kamailio itself, for the async module:
//! requests suspended by `async_route`, `async_ms_route` and
//! `async_task_route` and continued in a `route[...]` block, or by
//! `async_sleep`/`async_ms_sleep` and continued with the actions after
//! them (also in a sub-route, in a failure_route, in a switch case going
//! on into the next, twice in a row, as the last action, with bad
//! pauses, calling a request_route-only function), and `async_task_data` running a route with `$async(data)`,
//! run by
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
    } else if ($hdr(X-T) == "sleep") {
        $avp(y) = "before";
        async_sleep("1");
        # (request_route only: Kamailio checks it where it is written)
        t_lookup_request();
        $var(lk) = $rc;
        append_to_reply("X-A: slept $avp(x) $avp(y) $rm $rU lookup=$var(lk)\r\n");
        t_reply("202", "slept");
        exit;
    } else if ($hdr(X-T) == "twice") {
        async_ms_sleep("200");
        $avp(y) = "one";
        async_ms_sleep("$(hdr(X-Ms){s.int})");
        append_to_reply("X-A: twice $avp(x) $avp(y)\r\n");
        t_reply("202", "slept twice");
    } else if ($hdr(X-T) == "tail") {
        # the rest of this block only: what follows the if is not resumed
        async_ms_sleep("100");
        $avp(y) = "tail";
    } else if ($hdr(X-T) == "last") {
        async_sleep("1");
    } else if ($hdr(X-T) == "assign") {
        $var(rc) = async_sleep("1");
    } else if ($hdr(X-T) == "zero") {
        async_sleep("0");
        $var(rc) = $rc;
    } else if ($hdr(X-T) == "long") {
        async_sleep("100");
        $var(rc) = $rc;
    } else if ($hdr(X-T) == "mslong") {
        async_ms_sleep("30000");
        $var(rc) = $rc;
    } else if ($hdr(X-T) == "sub") {
        route(SLEEPY);
        $var(rc) = $rc;
    } else if ($hdr(X-T) == "switch") {
        # the cases are one list: what follows runs on into the next case
        switch ($hdr(X-T)) {
            case "switch":
                $avp(y) = "a";
                async_ms_sleep("100");
                $avp(y) = $avp(y) + "b";
            case "other":
                async_ms_sleep("100");
            case "third":
                append_to_reply("X-A: switch $avp(y)\r\n");
                t_reply("202", "in switch");
                break;
            default:
                $avp(y) = "wrong";
        }
    } else if ($hdr(X-T) == "failrelay") {
        t_on_failure("LATER");
        $du = "sip:__UAS__";
        t_relay();
        exit;
    } else if ($hdr(X-T) == "data") {
        $shv(d) = $null;
        async_task_data("DATA", "d-$rU-$avp(x)");
        $var(rc) = $rc;
        append_to_reply("X-Rc: $var(rc)\r\n");
        sl_send_reply("200", "queued");
        exit;
    } else if ($hdr(X-T) == "readdata") {
        append_to_reply("X-A: $shv(d) $shv(g) $shv(m) $shv(u)\r\n");
        sl_send_reply("200", "read");
        exit;
    }
    append_to_reply("X-Rc: $var(rc)\r\n");
    sl_send_reply("500", "not suspended");
}

route[RESUME] {
    append_to_reply("X-A: $avp(x) $rm $rU $hdr(X-T)\r\n");
    t_reply("202", "resumed");
}

route[SLEEPY] {
    $avp(y) = "sub";
    async_ms_sleep("100");
    append_to_reply("X-A: in sub $avp(x) $avp(y)\r\n");
    t_reply("202", "sub slept");
    return 1;
}

failure_route[LATER] {
    $avp(y) = "in-failure";
    async_ms_sleep("100");
    append_to_reply("X-A: failure slept $avp(x) $avp(y)\r\n");
    t_reply("503", "later");
}

route[DATA] {
    $shv(d) = $async(data);
    $shv(g) = $async(gname);
    $shv(m) = $rm;
    $shv(u) = $ru;
}

route[RELAY] {
    $du = "sip:__UAS__";
    t_relay();
}
"#;

/// Sends one request and records what comes back and when.
fn ask(peer: &UdpPeer, srv: SocketAddr, uas: &UdpPeer, method: &str, t: &str) -> Vec<String> {
    let text = format!(
        "{method} sip:{t}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKa{t}{method}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f{t}\r\nTo: <sip:{t}@ex.test>\r\nCall-ID: async-{t}-{method}\r\nCSeq: 1 {method}\r\nContact: <sip:a@{}>\r\nX-T: {t}\r\nX-Ms: 2400\r\nContent-Length: 0\r\n\r\n",
        peer.addr(),
        peer.addr()
    );
    let start = Instant::now();
    peer.send(srv, &text);
    let mut out = Vec::new();
    if t == "relay" || t == "failrelay" {
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
        ("MESSAGE", "sleep"),
        ("INVITE", "sleep"),
        ("MESSAGE", "twice"),
        ("MESSAGE", "tail"),
        ("MESSAGE", "last"),
        ("MESSAGE", "assign"),
        ("MESSAGE", "zero"),
        ("MESSAGE", "long"),
        ("MESSAGE", "mslong"),
        ("MESSAGE", "sub"),
        ("MESSAGE", "switch"),
        ("MESSAGE", "failrelay"),
        ("INVITE", "failrelay"),
        ("MESSAGE", "data"),
    ] {
        out.extend(ask(&peer, srv, uas, m, t));
    }
    std::thread::sleep(Duration::from_millis(300));
    out.extend(ask(&peer, srv, uas, "MESSAGE", "readdata"));
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
