//! End-to-end: transaction-stateful proxying through `t_relay()` with test
//! UACs and UASs on 127.0.0.1 over UDP and TCP.

use sip_msg::HeaderName;
use sr_testkit::{answer, req, Reply, TcpPeer, TestServer, UdpPeer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);

const BASE: &str = r#"
listen=udp:127.0.0.1:{PORT}
listen=tcp:127.0.0.1:{PORT}
children=2
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "rr"
"#;

fn cfg(params: &str, body: &str) -> String {
    format!("{BASE}{params}\n{body}")
}

fn invite(uac: &UdpPeer, ruri: &str, branch: &str, call: &str) -> String {
    req(
        "INVITE",
        ruri,
        uac.addr(),
        branch,
        call,
        1,
        &["Contact: <sip:alice@127.0.0.1>"],
        "",
    )
}

fn relay_cfg(uas: SocketAddr, extra_route: &str, failure: &str) -> String {
    cfg(
        "modparam(\"tm\", \"fr_timer\", 1000)\nmodparam(\"tm\", \"wt_timer\", 200)",
        &format!(
            r#"
request_route {{
    if (method=="CANCEL") {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (method!="ACK") {{
        if (t_precheck_trans()) {{ t_check_trans(); exit; }}
        t_check_trans();
    }}
    if ($tt != $null) {{
        if (loose_route()) {{ route(RELAY); }}
        if (method=="ACK") {{
            if (t_check_trans()) {{ route(RELAY); }}
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    remove_hf_placeholder();
    if (method=="INVITE") {{ record_route(); }}
    $du = "sip:{uas}";
    {extra_route}
    route(RELAY);
}}
route[RELAY] {{
    if (method=="INVITE") {{ t_on_failure("FAIL"); }}
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}
failure_route[FAIL] {{
    if (t_is_canceled()) {{ exit; }}
    {failure}
}}
"#
        )
        .replace("remove_hf_placeholder();", ""),
    )
}

#[test]
fn call_with_record_route_and_bye_by_loose_route() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&relay_cfg(uas.addr(), "", ""), siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &invite(&uac, "sip:bob@example.com", "c1", "call-1"),
    );
    let trying = uac.recv(T).expect("100 Trying");
    assert_eq!(trying.status(), Some(100));
    let got = uas.recv_method("INVITE", T).expect("UAS got the INVITE");
    let rr = got.header("Record-Route").expect("Record-Route added");
    assert!(rr.contains(&format!("127.0.0.1:{}", srv.port)), "{rr}");
    assert!(rr.contains(";lr"), "{rr}");
    assert!(rr.contains("ftag=from-call-1"), "{rr}");
    let via = got.msg.msg().top_via().unwrap();
    assert!(via.branch().unwrap().starts_with("z9hG4bK"));
    uas.send(got.from, &answer(&got, 180, "Ringing", "uas1", &[]));
    assert_eq!(uac.recv(T).expect("180").status(), Some(180));
    uas.send(
        got.from,
        &answer(&got, 200, "OK", "uas1", &["Contact: <sip:bob@127.0.0.1>"]),
    );
    let ok = uac.recv(T).expect("200");
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.msg.msg().vias().count(), 1, "our Via removed");
    assert!(ok.header("Record-Route").is_some());
    // The 2xx made the transaction go; in-dialog requests follow the route set.
    let route = format!("Route: <sip:127.0.0.1:{};lr;ftag=from-call-1>", srv.port);
    let uas_uri = format!("sip:bob@{}", uas.addr());
    let ack = req(
        "ACK",
        &uas_uri,
        uac.addr(),
        "c1ack",
        "call-1",
        1,
        &[&route],
        "",
    )
    .replace("To: <", "To: <sip:bob@example.com>;tag=uas1\r\nX-Old-To: <");
    uac.send(srv.addr(), &ack);
    let a = uas.recv_method("ACK", T).expect("ACK relayed statelessly");
    assert!(
        a.header("Route").is_none(),
        "our Route removed: {}",
        a.text()
    );
    let bye = req(
        "BYE",
        &uas_uri,
        uac.addr(),
        "c1bye",
        "call-1",
        2,
        &[&route],
        "",
    )
    .replace("To: <", "To: <sip:bob@example.com>;tag=uas1\r\nX-Old-To: <");
    uac.send(srv.addr(), &bye);
    let b = uas.recv_method("BYE", T).expect("BYE by loose_route");
    assert!(b.header("Route").is_none());
    assert_eq!(b.msg.msg().request_uri().unwrap().raw, uas_uri);
    uas.send(b.from, &answer(&b, 200, "OK", "uas1", &[]));
    let r = uac.recv(T).expect("200 for BYE");
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.header("CSeq").as_deref(), Some("2 BYE"));
    assert_eq!(srv.wait_stat("tmx:2xx_transactions", 2), Some(2));
    assert_eq!(srv.wait_stat("tmx:inuse_transactions", 0), Some(0));
}

#[test]
fn serial_forking_to_a_second_uas_after_486() {
    let uas1 = UdpPeer::new();
    let uas2 = UdpPeer::new();
    let failure = format!(
        r#"if (t_check_status("486")) {{ $du = "sip:{}"; t_on_failure("FAIL2"); t_relay(); exit; }}
}}
failure_route[FAIL2] {{
    t_reply("404", "Nobody Home");"#,
        uas2.addr()
    );
    let srv = TestServer::start(&relay_cfg(uas1.addr(), "", &failure), siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &invite(&uac, "sip:bob@example.com", "s1", "call-s"),
    );
    let a = uas1.recv_method("INVITE", T).expect("first UAS");
    uas1.send(a.from, &answer(&a, 486, "Busy Here", "u1", &[]));
    // tm ACKs the 486 itself.
    let ack = uas1.recv_method("ACK", T).expect("ACK for the 486");
    assert_eq!(ack.header("CSeq").as_deref(), Some("1 ACK"));
    assert_eq!(
        ack.msg.msg().top_via().unwrap().branch(),
        a.msg.msg().top_via().unwrap().branch()
    );
    let b = uas2
        .recv_method("INVITE", T)
        .expect("second UAS after failure_route");
    assert!(
        b.header("Record-Route").is_some(),
        "edits kept for new branches"
    );
    uas2.send(b.from, &answer(&b, 200, "OK", "u2", &[]));
    let ok = uac.recv_status(200, T).expect("200 from the second UAS");
    assert!(ok.header("To").unwrap().contains("tag=u2"));
    // No 486 ever reached the caller.
    assert_eq!(srv.stat("tmx:4xx_transactions"), Some(0));
}

#[test]
fn failure_route_replies_when_second_leg_fails_too() {
    let uas1 = UdpPeer::new();
    let uas2 = UdpPeer::new();
    let failure = format!(
        r#"if (t_check_status("486")) {{ $du = "sip:{}"; t_on_failure("FAIL2"); t_relay(); exit; }}
}}
failure_route[FAIL2] {{
    if ($T_reply_code == 503) {{ t_reply("404", "Nobody Home"); }}"#,
        uas2.addr()
    );
    let srv = TestServer::start(&relay_cfg(uas1.addr(), "", &failure), siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &invite(&uac, "sip:bob@example.com", "s2", "call-s2"),
    );
    let a = uas1.recv_method("INVITE", T).unwrap();
    uas1.send(a.from, &answer(&a, 486, "Busy Here", "u1", &[]));
    let b = uas2.recv_method("INVITE", T).unwrap();
    uas2.send(b.from, &answer(&b, 503, "Unavailable", "u2", &[]));
    let r = uac.recv_final(T).expect("final");
    assert_eq!(r.status(), Some(404));
    assert_eq!(r.msg.msg().reason(), Some("Nobody Home"));
}

/// A caller's INVITE forked in parallel by relay_cfg (`$du` to the first
/// UAS, append_branch to the second), as both UASs received it.
struct Fork {
    uas1: UdpPeer,
    uas2: UdpPeer,
    uac: UdpPeer,
    srv: TestServer,
    a: Reply,
    b: Reply,
}

fn parallel_fork(branch: &str, call: &str) -> Fork {
    let uas1 = UdpPeer::new();
    let uas2 = UdpPeer::new();
    let srv = TestServer::start(
        &relay_cfg(
            uas1.addr(),
            &format!("append_branch(\"sip:bob@{}\");", uas2.addr()),
            "",
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &invite(&uac, "sip:bob@example.com", branch, call),
    );
    let a = uas1.recv_method("INVITE", T).expect("branch 1");
    let b = uas2.recv_method("INVITE", T).expect("branch 2");
    Fork {
        uas1,
        uas2,
        uac,
        srv,
        a,
        b,
    }
}

#[test]
fn parallel_fork_one_answers_other_gets_cancel() {
    let Fork {
        uas2,
        srv,
        uac,
        a,
        b,
        uas1,
    } = parallel_fork("p1", "call-p");
    assert_ne!(
        a.msg.msg().top_via().unwrap().branch(),
        b.msg.msg().top_via().unwrap().branch()
    );
    uas2.send(b.from, &answer(&b, 180, "Ringing", "u2", &[]));
    assert_eq!(uac.recv_status(180, T).map(|r| r.status()), Some(Some(180)));
    uas1.send(a.from, &answer(&a, 200, "OK", "u1", &[]));
    assert!(uac.recv_status(200, T).is_some());
    let c = uas2
        .recv_method("CANCEL", T)
        .expect("CANCEL to the other branch");
    assert_eq!(
        c.msg.msg().top_via().unwrap().branch(),
        b.msg.msg().top_via().unwrap().branch()
    );
    assert!(c.header("Reason").unwrap().contains("cause=200"));
    uas2.send(c.from, &answer(&c, 200, "OK", "u2", &[]));
    uas2.send(b.from, &answer(&b, 487, "Request Terminated", "u2", &[]));
    assert!(uas2.recv_method("ACK", T).is_some(), "487 ACKed by tm");
    // The caller never sees the 487.
    assert!(uac.recv_status(487, Duration::from_millis(300)).is_none());
    assert_eq!(srv.wait_stat("tmx:inuse_transactions", 0), Some(0));
}

#[test]
fn silent_uas_gives_408_through_failure_route() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(
        &relay_cfg(
            uas.addr(),
            "",
            "if (t_branch_timeout() && !t_branch_replied()) { append_to_reply_placeholder(); t_reply(\"480\", \"Timed Out Here\"); }",
        )
        .replace("append_to_reply_placeholder();", ""),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    let start = Instant::now();
    uac.send(
        srv.addr(),
        &invite(&uac, "sip:bob@example.com", "t1", "call-t"),
    );
    let first = uas.recv_method("INVITE", T).expect("INVITE");
    // Retransmitted over UDP (Timer A) while nobody answers.
    let again = uas.recv_method("INVITE", T).expect("retransmission");
    assert_eq!(
        first.msg.msg().top_via().unwrap().branch(),
        again.msg.msg().top_via().unwrap().branch()
    );
    let r = uac.recv_final(Duration::from_secs(5)).expect("final reply");
    assert_eq!(r.status(), Some(480), "{}", r.text());
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // The ACK for our 480 is absorbed.
    let to = r.header("To").unwrap();
    let ack = req(
        "ACK",
        "sip:bob@example.com",
        uac.addr(),
        "t1",
        "call-t",
        1,
        &[],
        "",
    )
    .replace("To: <sip:bob@example.com>", &format!("To: {to}"));
    uac.send(srv.addr(), &ack);
    assert!(uas.recv_method("ACK", Duration::from_millis(300)).is_none());
    assert_eq!(srv.wait_stat("tmx:inuse_transactions", 0), Some(0));
}

#[test]
fn timeout_without_failure_route_is_408() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(
        &cfg(
            "modparam(\"tm\", \"fr_timer\", 500)\nmodparam(\"tm\", \"wt_timer\", 100)",
            &format!(
                "request_route {{ $du = \"sip:{}\"; if (!t_relay()) {{ sl_reply_error(); }} exit; }}",
                uas.addr()
            ),
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &req(
            "MESSAGE",
            "sip:bob@example.com",
            uac.addr(),
            "m1",
            "call-m",
            1,
            &[],
            "hi",
        ),
    );
    let r = uac.recv_final(T).expect("408");
    assert_eq!(r.status(), Some(408));
    assert!(r.header("To").unwrap().contains("tag="));
}

#[test]
fn challenges_from_two_branches_are_aggregated() {
    let Fork {
        uas1,
        uas2,
        uac,
        a,
        b,
        srv: _srv,
    } = parallel_fork("a1", "call-a");
    uas1.send(
        a.from,
        &answer(
            &a,
            401,
            "Unauthorized",
            "u1",
            &["WWW-Authenticate: Digest realm=\"one\", nonce=\"1\""],
        ),
    );
    uas2.send(
        b.from,
        &answer(
            &b,
            407,
            "Proxy Auth",
            "u2",
            &["Proxy-Authenticate: Digest realm=\"two\", nonce=\"2\""],
        ),
    );
    let r = uac.recv_final(T).expect("challenge");
    assert_eq!(r.status(), Some(401));
    let m = r.msg.msg();
    assert_eq!(m.headers_named(HeaderName::WwwAuthenticate).count(), 1);
    assert_eq!(m.headers_named(HeaderName::ProxyAuthenticate).count(), 1);
}

#[test]
fn onreply_and_branch_route_effects_on_the_wire() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(
        &cfg(
            "loadmodule \"textops\"\nloadmodule \"kex\"\nmodparam(\"tm\", \"wt_timer\", 100)",
            &format!(
                r#"
request_route {{
    $du = "sip:{}";
    setflag(5);
    setbflag(6);
    t_on_branch("BR");
    t_on_reply("RPL");
    t_relay();
    exit;
}}
branch_route[BR] {{
    append_hf("X-Branch: $T_branch_idx\r\n");
}}
onreply_route[RPL] {{
    if (t_check_status("183")) {{ drop; }}
    append_hf("X-Reply: seen $T_reply_code\r\n");
    # The transaction's flags and the branch's, kept across replies.
    if (isflagset(5) && isbflagset(6)) {{ append_hf("X-Flags: request and branch\r\n"); }}
    if (isflagset(7) && isbflagset(8)) {{ append_hf("X-Kept: 7 8\r\n"); }}
    setflag(7);
    setbflag(8);
}}
"#,
                uas.addr()
            ),
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &invite(&uac, "sip:bob@example.com", "o1", "call-o"),
    );
    let a = uas.recv_method("INVITE", T).unwrap();
    assert_eq!(a.header("X-Branch").as_deref(), Some("0"), "{}", a.text());
    uas.send(a.from, &answer(&a, 183, "Progress", "u", &[]));
    uas.send(a.from, &answer(&a, 180, "Ringing", "u", &[]));
    let r = uac.recv_status(180, T).expect("180 relayed");
    assert_eq!(r.header("X-Reply").as_deref(), Some("seen 180"));
    assert_eq!(r.header("X-Flags").as_deref(), Some("request and branch"));
    assert_eq!(r.header("X-Kept"), None);
    uas.send(a.from, &answer(&a, 200, "OK", "u", &[]));
    let ok = uac.recv_status(200, T).unwrap();
    assert_eq!(ok.header("X-Reply").as_deref(), Some("seen 200"));
    assert_eq!(ok.header("X-Kept").as_deref(), Some("7 8"), "{}", ok.text());
    assert!(srv.stat("tmx:rpl_absorbed").unwrap() >= 1, "dropped 183");
}

#[test]
fn retransmitted_invite_is_absorbed() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&relay_cfg(uas.addr(), "", ""), siprouter::in_tree());
    let uac = UdpPeer::new();
    let inv = invite(&uac, "sip:bob@example.com", "r1", "call-r");
    uac.send(srv.addr(), &inv);
    let a = uas.recv_method("INVITE", T).unwrap();
    assert_eq!(uac.recv(T).unwrap().status(), Some(100));
    uas.send(a.from, &answer(&a, 180, "Ringing", "u", &[]));
    assert_eq!(uac.recv_status(180, T).map(|_| ()), Some(()));
    uac.send(srv.addr(), &inv);
    // The retransmission is not forwarded; the caller gets the 180 again.
    assert_eq!(uac.recv_status(180, T).map(|_| ()), Some(()));
    assert!(uas
        .recv_method("INVITE", Duration::from_millis(300))
        .is_none());
    assert_eq!(srv.stat("tmx:UAS_transactions"), Some(1));
}

#[test]
fn cancel_from_the_caller_reaches_the_uas() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&relay_cfg(uas.addr(), "", ""), siprouter::in_tree());
    let uac = UdpPeer::new();
    let inv = invite(&uac, "sip:bob@example.com", "x1", "call-x");
    uac.send(srv.addr(), &inv);
    let a = uas.recv_method("INVITE", T).unwrap();
    uas.send(a.from, &answer(&a, 180, "Ringing", "u", &[]));
    uac.recv_status(180, T).unwrap();
    let cancel = req(
        "CANCEL",
        "sip:bob@example.com",
        uac.addr(),
        "x1",
        "call-x",
        1,
        &[],
        "",
    );
    uac.send(srv.addr(), &cancel);
    let ok = uac.recv_status(200, T).expect("200 for the CANCEL");
    assert_eq!(ok.header("CSeq").as_deref(), Some("1 CANCEL"));
    let c = uas.recv_method("CANCEL", T).expect("CANCEL downstream");
    uas.send(c.from, &answer(&c, 200, "OK", "u", &[]));
    uas.send(a.from, &answer(&a, 487, "Request Terminated", "u", &[]));
    let r = uac.recv_status(487, T).expect("487 relayed");
    assert_eq!(r.header("CSeq").as_deref(), Some("1 INVITE"));
}

#[test]
fn tcp_caller_udp_callee_with_double_record_route() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&relay_cfg(uas.addr(), "", ""), siprouter::in_tree());
    let mut c = TcpPeer::connect(srv.addr());
    let inv = req(
        "INVITE",
        "sip:bob@example.com",
        c.addr(),
        "tc1",
        "call-tcp",
        1,
        &[],
        "",
    )
    .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    c.send(&inv);
    let a = uas.recv_method("INVITE", T).expect("INVITE over UDP");
    let rrs: Vec<_> = a
        .msg
        .msg()
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value.to_string())
        .collect();
    assert_eq!(rrs.len(), 2, "{rrs:?}");
    assert!(rrs[1].contains("transport=tcp"), "{rrs:?}");
    assert!(rrs.iter().all(|r| r.contains("r2=on")));
    assert_eq!(c.recv(T).unwrap().status(), Some(100));
    uas.send(a.from, &answer(&a, 200, "OK", "u", &[]));
    let ok = c.recv(T).expect("200 over TCP");
    assert_eq!(ok.status(), Some(200));
}

#[test]
fn soak_many_calls_table_back_to_zero() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(
        &cfg(
            "modparam(\"tm\", \"wt_timer\", 50)",
            &format!(
                "request_route {{ $du = \"sip:{}\"; t_set_auto_inv_100(0); t_relay(); exit; }}",
                uas.addr()
            ),
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut calls = 0u32;
    let window = 32u32;
    let mut done = 0u32;
    while Instant::now() < deadline {
        for _ in 0..window {
            calls += 1;
            let m = req(
                "MESSAGE",
                "sip:bob@example.com",
                uac.addr(),
                &format!("k{calls}"),
                &format!("soak-{calls}"),
                1,
                &[],
                "x",
            );
            uac.send(srv.addr(), &m);
        }
        for _ in 0..window {
            let r = uas.recv(T).expect("UAS gets every request");
            uas.send(r.from, &answer(&r, 200, "OK", "s", &[]));
        }
        for _ in 0..window {
            let r = uac.recv(T).expect("UAC gets every reply");
            assert_eq!(r.status(), Some(200));
            done += 1;
        }
    }
    assert!(done >= 1000, "only {done} transactions");
    assert_eq!(srv.stat("tmx:UAS_transactions"), Some(i64::from(done)));
    let wait = Instant::now() + Duration::from_secs(5);
    while srv.stat("tmx:inuse_transactions") != Some(0) && Instant::now() < wait {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(srv.stat("tmx:inuse_transactions"), Some(0));
    assert_eq!(srv.stat("tmx:active_transactions"), Some(0));
    eprintln!("soak: {done} transactions");
}

/// Replaces every `branch=` value with `branch=*`.
fn mask_branches(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("branch=") {
        out.push_str(&rest[..i + 7]);
        out.push('*');
        rest = &rest[i + 7..];
        let end = rest.find([';', ',', '\r']).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// tm builds the first branch from the request itself when no branch_route
/// can change it, and from a copy of the request otherwise: both must put
/// the same request on the wire (script edits, add_local_rport,
/// Record-Route and all), but for the Via branches.
#[test]
fn first_branch_is_the_same_with_or_without_branch_route() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(
        &cfg(
            "loadmodule \"textops\"",
            &format!(
                r#"
request_route {{
    if (is_present_hf("X-Use-BR")) {{ t_on_branch("BR"); }}
    append_hf("X-Added: 1\r\n");
    add_local_rport();
    record_route();
    $du = "sip:{}";
    t_relay();
    exit;
}}
branch_route[BR] {{
    $var(seen) = 1;
}}
"#,
                uas.addr()
            ),
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    let mut seen = Vec::new();
    for (branch, extra) in [("fb1", None), ("fb2", Some("X-Use-BR: 1"))] {
        let mut hdrs = vec!["Contact: <sip:alice@127.0.0.1>"];
        hdrs.extend(extra);
        let inv = req(
            "INVITE",
            "sip:bob@example.com",
            uac.addr(),
            branch,
            "call-fb",
            1,
            &hdrs,
            "",
        );
        uac.send(srv.addr(), &inv);
        let a = uas.recv_method("INVITE", T).expect("INVITE relayed");
        let text: Vec<String> = a
            .text()
            .lines()
            .filter(|l| !l.starts_with("X-Use-BR"))
            .map(mask_branches)
            .collect();
        seen.push(text);
    }
    let via = seen[0].iter().find(|l| l.starts_with("Via: ")).cloned();
    assert!(
        via.as_deref().is_some_and(|v| v.contains(";rport")),
        "add_local_rport on our Via: {via:?}"
    );
    assert!(seen[0].iter().any(|l| l == "X-Added: 1"));
    assert!(seen[0].iter().any(|l| l.starts_with("Record-Route: ")));
    assert_eq!(seen[0], seen[1]);
}

/// An ACK for a 2xx is relayed statelessly and held for the end of the
/// batch; when its send then fails (the broadcast address, on a socket
/// without SO_BROADCAST) it counts as dropped, not forwarded. One sent to
/// a reachable address counts as forwarded.
#[test]
fn a_held_ack_that_cannot_be_sent_counts_as_dropped() {
    let uas = UdpPeer::new();
    let body = format!(
        r#"request_route {{
    if ($rU == "bcast") {{ $du = "sip:255.255.255.255:5090"; }} else {{ $du = "sip:{}"; }}
    t_relay();
    exit;
}}"#,
        uas.addr()
    );
    let srv = TestServer::start(&cfg("", &body), siprouter::in_tree());
    let uac = UdpPeer::new();
    let ack = |user: &str, call: &str| {
        format!(
            "ACK sip:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=caller\r\nTo: <sip:b@127.0.0.1>;tag=callee\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            uac.addr()
        )
    };
    uac.send(srv.addr(), &ack("bcast", "ack-1"));
    assert_eq!(srv.wait_stat("core:drop_requests", 1), Some(1));
    assert_eq!(srv.stat("core:fwd_requests"), Some(0));
    uac.send(srv.addr(), &ack("bob", "ack-2"));
    assert!(uas.recv_method("ACK", T).is_some(), "the other ACK arrives");
    assert_eq!(srv.wait_stat("core:fwd_requests", 1), Some(1));
    assert_eq!(srv.stat("core:drop_requests"), Some(1));
}

#[test]
fn failure_route_sees_the_branch_flags_of_the_winning_branch() {
    let uas1 = UdpPeer::new();
    let uas2 = UdpPeer::new();
    // Branch 1 (the appended one) gets branch flag 3 in branch_route; its
    // 486 beats branch 0's 500, so failure_route sees flag 3.
    let srv = TestServer::start(
        &relay_cfg(
            uas1.addr(),
            &format!(
                "append_branch(\"sip:bob@{}\"); t_on_branch(\"BR\");",
                uas2.addr()
            ),
            "if (isbflagset(3)) { t_reply(\"486\", \"Flag 3\"); } else { t_reply(\"486\", \"No flag\"); }\n}\nbranch_route[BR] {\n    if ($T_branch_idx == 1) { setbflag(3); }",
        )
        .replace("loadmodule \"tm\"", "loadmodule \"tm\"\nloadmodule \"kex\""),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &invite(&uac, "sip:bob@example.com", "bf1", "call-bf"),
    );
    let a = uas1.recv_method("INVITE", T).expect("branch 0");
    let b = uas2.recv_method("INVITE", T).expect("branch 1");
    uas1.send(a.from, &answer(&a, 500, "Error", "u1", &[]));
    uas2.send(b.from, &answer(&b, 486, "Busy Here", "u2", &[]));
    let r = uac.recv_final(T).expect("final reply");
    assert_eq!(
        (r.status(), r.msg.msg().reason()),
        (Some(486), Some("Flag 3")),
        "{}",
        r.text()
    );
}
