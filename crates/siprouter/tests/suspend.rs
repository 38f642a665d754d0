//! End-to-end: `t_suspend()` / `t_continue()` of tmx. An INVITE is
//! suspended (its 100 Trying carries `$T(id_index)`/`$T(id_label)`), a
//! later MESSAGE carrying those ids resumes it in `route[RESUME]`, which
//! replies or relays; a request never continued ends on `fr_timer`.

use sr_testkit::{answer, req, TestServer, UdpPeer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);

fn cfg(uas: SocketAddr) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=2
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "pv"
loadmodule "textops"
modparam("tm", "fr_timer", 1000)
modparam("tm", "wt_timer", 200)

request_route {{
    if (method=="ACK") {{ t_check_trans(); exit; }}
    if (method=="MESSAGE") {{
        if (t_continue("$hdr(X-Idx)", "$hdr(X-Lbl)", "RESUME")) {{
            sl_send_reply("200", "continued");
        }} else {{
            sl_send_reply("500", "not continued");
        }}
        exit;
    }}
    if (method=="INVITE") {{
        t_newtran();
        append_to_reply("X-Idx: $T(id_index)\r\nX-Lbl: $T(id_label)\r\n");
        if (!t_suspend()) {{ sl_send_reply("500", "not suspended"); }}
        exit;
    }}
    sl_send_reply("405", "no");
}}

route[RESUME] {{
    if (!t_is_failure_route()) {{ t_reply("500", "wrong route type"); exit; }}
    if (is_present_hf("X-Relay")) {{
        $du = "sip:{uas}";
        t_relay();
        exit;
    }}
    t_reply("200", "Resumed");
}}
"#
    )
}

fn invite(uac: &UdpPeer, call: &str, extra: &[&str]) -> String {
    req(
        "INVITE",
        "sip:bob@example.com",
        uac.addr(),
        &format!("b-{call}"),
        call,
        1,
        extra,
        "",
    )
}

/// Sends an INVITE and returns the ids the 100 Trying carries.
fn suspend(srv: &TestServer, uac: &UdpPeer, call: &str, extra: &[&str]) -> (String, String) {
    uac.send(srv.addr(), &invite(uac, call, extra));
    let trying = uac.recv_status(100, T).expect("100 Trying of t_suspend");
    let idx = trying.header("X-Idx").expect("X-Idx");
    let lbl = trying.header("X-Lbl").expect("X-Lbl");
    assert!(
        idx.parse::<u64>().is_ok() && lbl.parse::<u64>().is_ok(),
        "{idx} {lbl}"
    );
    (idx, lbl)
}

/// Sends a MESSAGE asking to continue `ids`; returns its reply code.
fn resume(srv: &TestServer, ids: &(String, String)) -> u16 {
    let ua = UdpPeer::new();
    let idx = format!("X-Idx: {}", ids.0);
    let lbl = format!("X-Lbl: {}", ids.1);
    let m = req(
        "MESSAGE",
        "sip:svc@example.com",
        ua.addr(),
        "m",
        &format!("msg-{}-{}", ids.0, ids.1),
        1,
        &[&idx, &lbl],
        "",
    );
    ua.send(srv.addr(), &m);
    ua.recv(T).and_then(|r| r.status()).unwrap_or(0)
}

#[test]
fn suspended_invite_is_answered_by_t_continue_from_another_request() {
    let srv = TestServer::start(&cfg(UdpPeer::new().addr()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let ids = suspend(&srv, &uac, "susp-reply", &[]);
    assert!(
        uac.recv(Duration::from_millis(300)).is_none(),
        "nothing while suspended"
    );
    assert_eq!(resume(&srv, &ids), 200);
    let ok = uac.recv_status(200, T).expect("200 from route[RESUME]");
    assert!(
        ok.text().starts_with("SIP/2.0 200 Resumed"),
        "{}",
        ok.text()
    );
    // Continued once only: the ids now name no suspended transaction.
    assert_ne!(resume(&srv, &ids), 0);
    assert!(uac
        .recv(Duration::from_millis(200))
        .is_none_or(|r| r.status() == Some(200)));
}

#[test]
fn continued_invite_is_relayed_by_t_relay() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let ids = suspend(&srv, &uac, "susp-relay", &["X-Relay: 1"]);
    assert!(
        uas.recv(Duration::from_millis(200)).is_none(),
        "not relayed yet"
    );
    assert_eq!(resume(&srv, &ids), 200);
    let got = uas.recv(T).expect("INVITE relayed after t_continue");
    assert_eq!(got.msg.msg().call_id().ok(), Some("susp-relay"));
    uas.send(got.from, &answer(&got, 200, "OK", "uas", &[]));
    let ok = uac.recv_status(200, T).expect("200 relayed to the caller");
    assert_eq!(ok.header("To").map(|t| t.contains("tag=uas")), Some(true));
}

#[test]
fn never_continued_invite_times_out_with_408() {
    let srv = TestServer::start(&cfg(UdpPeer::new().addr()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let start = Instant::now();
    let ids = suspend(&srv, &uac, "susp-timeout", &[]);
    let r = uac
        .recv_status(408, Duration::from_secs(4))
        .expect("408 on fr_timer");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(
        r.header("X-Idx").is_some(),
        "the local 408 of the transaction"
    );
    // Too late: while the cell waits for the ACK, t_continue is a no-op
    // (true, as Kamailio); once it is freed, the ids name nothing.
    assert_eq!(resume(&srv, &ids), 200);
    assert!(uac
        .recv(Duration::from_millis(200))
        .is_none_or(|r| r.status() == Some(408)));
    assert_eq!(srv.wait_stat("tmx:inuse_transactions", 0), Some(0));
    assert_eq!(resume(&srv, &ids), 500);
}

#[test]
fn t_continue_with_unknown_ids_fails() {
    let srv = TestServer::start(&cfg(UdpPeer::new().addr()), siprouter::in_tree());
    assert_eq!(resume(&srv, &("1".into(), "2".into())), 500);
    assert_eq!(resume(&srv, &("x".into(), "99999999".into())), 500);
}
