//! tsilo end to end over real UDP: a call to a user with no registered
//! device waits in its transaction (`t_newtran` + `ts_store`) and rings
//! the device as soon as it registers (`ts_append`); a call ringing one
//! device gets a branch to a second one when it registers, and none again
//! to the first; `ts_append_by_contact` adds the registering contact only;
//! `ts.lookup`, `ts.dump`, the statistics, and transactions forgotten once
//! they end (the waiting calls suspended with `t_suspend`); the
//! failure_route armed before `ts_store` runs for an appended branch.

use sr_sdk::serde_json::json;
use sr_testkit::{answer, invite, req, TestServer, UdpPeer};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);

const CFG: &str = r#"
listen=udp:127.0.0.1:{PORT}
children=2
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "pv"
loadmodule "textops"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "tsilo"
modparam("tm", "fr_inv_timer", 20000)
request_route {
    if (is_method("REGISTER")) {
        save("location");
        if ($hdr(X-By) != $null) { ts_append_by_contact("location", "$tu"); }
        else { ts_append("location", "$tu"); }
        exit;
    }
    if (is_method("ACK|CANCEL")) { t_relay(); exit; }
    t_newtran();
    t_on_failure("F");
    ts_store();
    if (!lookup("location")) {
        if ($hdr(X-No-Suspend) == $null) { t_suspend(); }
        exit;
    }
    t_relay();
}
failure_route[F] {
    if (t_check_status("486")) { t_reply("480", "Via failure route"); }
}
"#;

fn register(
    srv: &TestServer,
    dev: &UdpPeer,
    user: &str,
    contacts: &[String],
    extra: &[&str],
    n: u32,
) {
    let mut h: Vec<String> = contacts
        .iter()
        .map(|c| format!("Contact: <{c}>;expires=300"))
        .collect();
    h.extend(extra.iter().map(|s| s.to_string()));
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let call = format!("reg-{user}-{n}");
    dev.send(
        srv.addr(),
        &req(
            "REGISTER",
            &format!("sip:{user}@example.com"),
            dev.addr(),
            &call,
            &call,
            n,
            &h,
            "",
        ),
    );
    dev.recv_status(200, T).expect("registered");
}

fn contact(dev: &UdpPeer, user: &str) -> String {
    format!("sip:{user}@{}", dev.addr())
}

#[test]
fn calls_wait_for_their_user_to_register() {
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let uac = UdpPeer::new();
    let (a, b) = (UdpPeer::new(), UdpPeer::new());

    // No device: the call waits.
    uac.send(srv.addr(), &invite(&uac, "bob", "ts-1"));
    let deadline = Instant::now() + T;
    while srv.stat("tsilo:stored_transactions") != Some(1) {
        assert!(Instant::now() < deadline, "not stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kept = srv.rpc("ts.lookup", &[json!("bob")]).unwrap();
    assert_eq!(kept.as_array().map(Vec::len), Some(1), "{kept}");
    assert_eq!(
        srv.rpc("ts.lookup", &[json!("nobody")]).map_err(|e| e.code),
        Err(404)
    );
    let dump = srv.rpc("ts.dump", &[]).unwrap();
    assert_eq!(dump["Stats"]["RURIs"], json!(1), "{dump}");
    assert_eq!(dump["R-URIs"]["R-URI"], json!("bob"), "{dump}");

    // The device registers: it rings, answers, the caller gets its 200.
    register(&srv, &a, "bob", &[contact(&a, "bob")], &[], 1);
    let r = a
        .recv_method("INVITE", T)
        .expect("the waiting call rings the device");
    assert!(
        r.text()
            .starts_with(&format!("INVITE {} ", contact(&a, "bob"))),
        "{}",
        r.text()
    );
    a.send(r.from, &answer(&r, 200, "OK", "a1", &[]));
    assert!(uac.recv_status(200, T).is_some());

    // A call ringing device A gets device B when it registers; A gets no
    // second INVITE.
    uac.send(srv.addr(), &invite(&uac, "bob", "ts-2"));
    let ra = a.recv_method("INVITE", T).expect("device A rings");
    a.send(ra.from, &answer(&ra, 180, "Ringing", "a2", &[]));
    register(&srv, &b, "bob", &[contact(&b, "bob")], &[], 2);
    let rb = b.recv_method("INVITE", T).expect("device B rings too");
    assert!(
        a.recv_method("INVITE", Duration::from_millis(400))
            .is_none(),
        "no second branch to A"
    );
    b.send(rb.from, &answer(&rb, 200, "OK", "b2", &[]));
    let ok = uac.recv_status(200, T).expect("B answered");
    assert!(ok.header("To").unwrap().contains("tag=b2"));
    let cancel = a.recv_method("CANCEL", T).expect("A's branch cancelled");
    a.send(cancel.from, &answer(&cancel, 200, "OK", "a2", &[]));
    a.send(ra.from, &answer(&ra, 487, "Request Terminated", "a2", &[]));
    assert_eq!(srv.stat("tsilo:added_branches"), Some(2));
    assert_eq!(srv.stat("tsilo:total_transactions"), Some(2));
}

#[test]
fn by_contact_adds_the_registering_contact_only() {
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let uac = UdpPeer::new();
    let (d1, d2) = (UdpPeer::new(), UdpPeer::new());
    uac.send(srv.addr(), &invite(&uac, "carol", "ts-3"));
    let deadline = Instant::now() + T;
    while srv.stat("tsilo:stored_transactions") != Some(1) {
        assert!(Instant::now() < deadline, "not stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    // One REGISTER with two contacts: only the first (the registering
    // one) is added.
    register(
        &srv,
        &d1,
        "carol",
        &[contact(&d1, "carol"), contact(&d2, "carol")],
        &["X-By: 1"],
        1,
    );
    let r1 = d1
        .recv_method("INVITE", T)
        .expect("the registering contact rings");
    assert!(
        d2.recv_method("INVITE", Duration::from_millis(400))
            .is_none(),
        "not the other contact"
    );
    // The other one refreshes its own registration: now it rings too.
    register(
        &srv,
        &d2,
        "carol",
        &[contact(&d2, "carol")],
        &["X-By: 1"],
        2,
    );
    let r = d2
        .recv_method("INVITE", T)
        .expect("the other contact rings");
    d2.send(r.from, &answer(&r, 180, "Ringing", "d2", &[]));
    d1.send(r1.from, &answer(&r1, 200, "OK", "d1", &[]));
    assert!(uac.recv_status(200, T).is_some());
    let c = d2.recv_method("CANCEL", T).expect("d2 cancelled");
    d2.send(c.from, &answer(&c, 200, "OK", "d2", &[]));
    d2.send(r.from, &answer(&r, 487, "Request Terminated", "d2", &[]));
    // Ended transactions are forgotten.
    let deadline = Instant::now() + Duration::from_secs(8);
    while srv.stat("tsilo:stored_transactions") != Some(0) {
        assert!(Instant::now() < deadline, "still kept");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(srv.stat("tsilo:added_branches"), Some(2));
}

#[test]
fn routes_armed_before_ts_store_run_for_appended_branches() {
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let uac = UdpPeer::new();
    let dev = UdpPeer::new();
    // Not suspended: the appended branch is the transaction's only one,
    // so its failure ends the call at once, through the failure_route
    // armed before ts_store. (Suspended, the blind branch of t_suspend
    // would keep the call open for more devices until its timer.)
    let mut inv = invite(&uac, "dave", "ts-4");
    inv = inv.replacen("CSeq:", "X-No-Suspend: 1\r\nCSeq:", 1);
    uac.send(srv.addr(), &inv);
    register(&srv, &dev, "dave", &[contact(&dev, "dave")], &[], 1);
    let r = dev
        .recv_method("INVITE", T)
        .expect("the waiting call rings");
    dev.send(r.from, &answer(&r, 486, "Busy Here", "dv", &[]));
    let last = uac.recv_final(T).expect("a final answer");
    assert_eq!(last.status(), Some(480), "{}", last.text());
    assert!(last.text().contains("Via failure route"), "{}", last.text());
}
