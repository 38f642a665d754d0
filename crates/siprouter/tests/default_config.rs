//! The shipped default configuration (etc/siprouter.cfg, what the README's
//! first command runs) works as a local proxy and registrar on SQLite:
//! registration, a call to the registered user relayed statefully with
//! record-routing, keepalive OPTIONS, 404 for unknown users, no open relay,
//! and contacts kept across a restart.

use sr_testkit::{default_config, free_port, fresh_db, req, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn register(srv: &TestServer, ua: &UdpPeer, user: &str) -> u16 {
    let contact = format!("Contact: <sip:{user}@{}>;expires=600", ua.addr());
    let m = req(
        "REGISTER",
        &format!("sip:127.0.0.1:{}", srv.port),
        ua.addr(),
        &format!("r-{user}"),
        &format!("reg-{user}"),
        1,
        &[&contact],
        "",
    )
    .replace(
        "<sip:alice@example.com>",
        &format!("<sip:{user}@127.0.0.1>"),
    )
    .replace(
        &format!("To: <sip:127.0.0.1:{}>", srv.port),
        &format!("To: <sip:{user}@127.0.0.1>"),
    );
    ua.send(srv.addr(), &m);
    ua.recv(T).expect("REGISTER answered").status().unwrap()
}

#[test]
fn default_config_is_a_working_proxy_and_registrar() {
    let db = fresh_db("default-main");
    let cfg = default_config(&db, free_port());
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    assert!(db.exists(), "the SQLite file is created with its tables");

    // Keepalive.
    let caller = UdpPeer::new();
    let me = format!("sip:127.0.0.1:{}", srv.port);
    caller.send(
        srv.addr(),
        &req("OPTIONS", &me, caller.addr(), "ka", "ka", 1, &[], ""),
    );
    assert_eq!(caller.recv(T).unwrap().status(), Some(200));

    // Bob registers; a call to him is relayed statefully with Record-Route.
    let bob = UdpPeer::new();
    assert_eq!(register(&srv, &bob, "bob"), 200);
    let ruri = format!("sip:bob@127.0.0.1:{}", srv.port);
    let invite = req(
        "INVITE",
        &ruri,
        caller.addr(),
        "inv1",
        "call-1",
        1,
        &[&format!("Contact: <sip:alice@{}>", caller.addr())],
        "",
    );
    caller.send(srv.addr(), &invite);
    let got = bob.recv(T).expect("bob receives the INVITE");
    assert_eq!(got.msg.msg().method(), Some(sip_msg::Method::Invite));
    assert_eq!(
        got.msg.msg().request_uri().unwrap().raw,
        format!("sip:bob@{}", bob.addr())
    );
    assert_eq!(got.msg.msg().record_routes().count(), 1, "{}", got.text());
    // The caller sees 100 Trying from tm.
    assert_eq!(caller.recv(T).expect("100 Trying").status(), Some(100));
    // Bob answers 200; it reaches the caller.
    let vias: Vec<String> = got
        .msg
        .msg()
        .headers_named(sip_msg::HeaderName::Via)
        .map(|h| format!("Via: {}", h.value))
        .collect();
    let rr: Vec<String> = got
        .msg
        .msg()
        .headers_named(sip_msg::HeaderName::RecordRoute)
        .map(|h| format!("Record-Route: {}", h.value))
        .collect();
    let ok = format!(
        "SIP/2.0 200 OK\r\n{}\r\n{}\r\nFrom: <sip:alice@example.com>;tag=from-call-1\r\nTo: <{ruri}>;tag=bob1\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{}>\r\nContent-Length: 0\r\n\r\n",
        vias.join("\r\n"),
        rr.join("\r\n"),
        bob.addr()
    );
    bob.send(got.from, &ok);
    let r = caller.recv_final(T).expect("200 OK reaches the caller");
    assert_eq!(r.status(), Some(200));

    // Unknown user: 404 from the LOCATION route.
    let m = req(
        "INVITE",
        &format!("sip:nobody@127.0.0.1:{}", srv.port),
        caller.addr(),
        "inv2",
        "call-2",
        1,
        &[],
        "",
    );
    caller.send(srv.addr(), &m);
    assert_eq!(caller.recv_final(T).unwrap().status(), Some(404));

    // Another domain: not relayed.
    let m = req(
        "MESSAGE",
        "sip:someone@example.net",
        caller.addr(),
        "m3",
        "call-3",
        1,
        &[],
        "",
    );
    caller.send(srv.addr(), &m);
    assert_eq!(caller.recv(T).unwrap().status(), Some(403));

    // Statistics and RPC work.
    assert!(srv.stat("usrloc:location_contacts").unwrap() >= 1);
    assert!(srv.rpc("ul.dump", &[]).is_ok());
    drop(srv);

    // Contacts survive a restart (usrloc db_mode 1 on the SQLite file).
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let ruri = format!("sip:bob@127.0.0.1:{}", srv.port);
    let m = req(
        "MESSAGE",
        &ruri,
        caller.addr(),
        "m4",
        "call-4",
        1,
        &[],
        "hi",
    );
    caller.send(srv.addr(), &m);
    let got = bob.recv(T).unwrap_or_else(|| {
        let r = caller.recv(T).map(|r| r.text());
        panic!("bob is still registered after the restart; caller got {r:?}")
    });
    assert_eq!(got.msg.msg().method(), Some(sip_msg::Method::Message));
}

#[test]
fn default_config_passes_the_check() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .arg("-c")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
