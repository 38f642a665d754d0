//! End-to-end: the presence and presence_xml modules on SQLite, for what
//! the Kamailio parity test (kamailio_parity_presence.rs) does not reach:
//! state read back after a restart, subscriptions ended by their timer,
//! a watcher that never answers dropped, the sender left out, the
//! `presence.*` RPC methods, `pres_has_subscribers`, a subscription over
//! TCP, and the refusals of what is not built.

use sr_sdk::db::DbConn;
use sr_sdk::serde_json::json;
use sr_testkit::{Reply, TcpPeer, TestServer, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn config(url: &str, extra: &str) -> String {
    format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
listen=tcp:127.0.0.1:{{PORT}}
loadmodule "tm"
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "presence"
loadmodule "presence_xml"
modparam("presence", "db_url", "{url}")
modparam("presence_xml", "force_active", 1)
{extra}
request_route {{
    if (is_method("OPTIONS")) {{
        if (pres_has_subscribers("$hdr(X-Uri)", "presence")) {{
            sl_send_reply("200", "watched");
        }} else {{
            sl_send_reply("200", "unwatched");
        }}
        exit;
    }}
    if (!t_newtran()) {{ sl_reply_error(); exit; }}
    if (is_method("PUBLISH")) {{
        if ($hdr(X-Sender) != $null) {{ handle_publish("$hdr(X-Sender)"); }}
        else {{ handle_publish(); }}
    }} else if (is_method("SUBSCRIBE")) {{
        handle_subscribe();
    }}
    t_release();
}}
"#
    )
}

fn pidf(who: &str, note: &str) -> String {
    format!("<?xml version=\"1.0\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:{who}@ex.test\">\n<tuple id=\"t1\"><status><basic>open</basic></status><note>{note}</note></tuple>\n</presence>\n")
}

fn publish(who: &str, via: SocketAddr, call: &str, extra: &str, body: &str) -> String {
    format!(
        "PUBLISH sip:{who}@ex.test SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:{who}@ex.test>;tag=p{call}\r\nTo: <sip:{who}@ex.test>\r\nCall-ID: {call}\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\n{extra}Content-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[allow(clippy::too_many_arguments)] // one line per part of the request
fn subscribe(
    who: &str,
    watcher: &str,
    via: &str,
    contact: &str,
    call: &str,
    cseq: u32,
    to_tag: Option<&str>,
    expires: u32,
) -> String {
    let tt = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SUBSCRIBE sip:{who}@ex.test SIP/2.0\r\nVia: SIP/2.0/{via};branch=z9hG4bK{call}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{watcher}@ex.test>;tag=w{call}\r\nTo: <sip:{who}@ex.test>{tt}\r\nCall-ID: {call}\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <{contact}>\r\nEvent: presence\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Answers a NOTIFY with 200.
fn ok(peer: &UdpPeer, n: &Reply) {
    peer.send(n.from, &sr_testkit::answer(n, 200, "OK", "", &[]));
}

fn to_tag(r: &Reply) -> String {
    r.msg
        .msg()
        .to_tag()
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_string()
}

fn watched(srv: &TestServer, peer: &UdpPeer, uri: &str) -> String {
    let via = peer.addr();
    peer.send(srv.addr(), &format!("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bKo{}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: o-{uri}\r\nCSeq: 1 OPTIONS\r\nX-Uri: {uri}\r\nContent-Length: 0\r\n\r\n", uri.len()));
    let r = peer.recv_final(T).expect("OPTIONS answered");
    r.msg.msg().reason().unwrap_or_default().to_string()
}

fn rows(url: &str, table: &str) -> usize {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    c.query(table, &[], &["id"], None).unwrap().len()
}

#[test]
fn publications_and_subscriptions_survive_a_restart() {
    let db = sr_testkit::fresh_db("presence-restart");
    let url = format!("sqlite://{}", db.display());
    let (alice, bob) = (UdpPeer::new(), UdpPeer::new());
    let (etag, tag) = {
        let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
        alice.send(
            srv.addr(),
            &publish(
                "alice",
                alice.addr(),
                "r1",
                "Expires: 600\r\n",
                &pidf("alice", "one"),
            ),
        );
        let r = alice.recv_final(T).expect("PUBLISH answered");
        assert_eq!(r.status(), Some(200), "{}", r.text());
        let b = bob.addr();
        bob.send(
            srv.addr(),
            &subscribe(
                "alice",
                "bob",
                &format!("UDP {b}"),
                &format!("sip:bob@{b}"),
                "rs",
                1,
                None,
                600,
            ),
        );
        let ok200 = bob.recv_final(T).expect("SUBSCRIBE answered");
        let n = bob.recv_method("NOTIFY", T).expect("first NOTIFY");
        ok(&bob, &n);
        assert_eq!(n.header("CSeq").as_deref(), Some("2 NOTIFY"));
        (r.header("SIP-ETag").unwrap(), to_tag(&ok200))
    };
    assert_eq!(rows(&url, "presentity"), 1);
    assert_eq!(rows(&url, "active_watchers"), 1);
    assert_eq!(rows(&url, "watchers"), 1);
    // A new server on the same tables knows the entity tag and bob.
    let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
    assert_eq!(watched(&srv, &alice, "sip:alice@ex.test"), "watched");
    alice.send(
        srv.addr(),
        &publish(
            "alice",
            alice.addr(),
            "r2",
            &format!("Expires: 600\r\nSIP-If-Match: {etag}\r\n"),
            &pidf("alice", "two"),
        ),
    );
    let r = alice.recv_final(T).expect("refresh answered");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let n = bob
        .recv_method("NOTIFY", T)
        .expect("NOTIFY after the restart");
    ok(&bob, &n);
    // NOTIFYs do not write their CSeq; read back, it is moved on so that
    // it only grows.
    let cseq: u32 = n
        .header("CSeq")
        .and_then(|c| c.split(' ').next().and_then(|x| x.parse().ok()))
        .unwrap_or(0);
    assert!(cseq > 2, "{}", n.text());
    assert!(n.text().contains("<note>two</note>"), "{}", n.text());
    assert!(n.header("From").unwrap().contains(&tag), "{}", n.text());
}

#[test]
fn subscriptions_end_when_their_time_is_up() {
    let db = sr_testkit::fresh_db("presence-expiry");
    let url = format!("sqlite://{}", db.display());
    let srv = TestServer::start(
        &config(&url, "modparam(\"presence\", \"db_update_period\", 1)"),
        siprouter::in_tree(),
    );
    let bob = UdpPeer::new();
    let b = bob.addr();
    bob.send(
        srv.addr(),
        &subscribe(
            "carol",
            "bob",
            &format!("UDP {b}"),
            &format!("sip:bob@{b}"),
            "ex1",
            1,
            None,
            2,
        ),
    );
    assert_eq!(bob.recv_final(T).and_then(|r| r.status()), Some(200));
    let n = bob.recv_method("NOTIFY", T).expect("first NOTIFY");
    ok(&bob, &n);
    assert_eq!(
        n.header("Subscription-State").as_deref(),
        Some("active;expires=2")
    );
    let last = bob
        .recv_method("NOTIFY", Duration::from_secs(5))
        .expect("a NOTIFY when the subscription ends");
    ok(&bob, &last);
    assert_eq!(
        last.header("Subscription-State").as_deref(),
        Some("terminated;reason=timeout")
    );
    assert_eq!(last.header("CSeq").as_deref(), Some("3 NOTIFY"));
    assert!(last.msg.msg().body().is_empty(), "{}", last.text());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rows(&url, "active_watchers"), 0);
    assert_eq!(watched(&srv, &bob, "sip:carol@ex.test"), "unwatched");
}

#[test]
fn a_watcher_that_never_answers_is_dropped_and_the_sender_is_left_out() {
    let db = sr_testkit::fresh_db("presence-drop");
    let url = format!("sqlite://{}", db.display());
    let srv = TestServer::start(
        &config(&url, "modparam(\"tm\", \"fr_timer\", 1000)"),
        siprouter::in_tree(),
    );
    let (alice, bob, dan) = (UdpPeer::new(), UdpPeer::new(), UdpPeer::new());
    for (peer, call) in [(&bob, "d-bob"), (&dan, "d-dan")] {
        let a = peer.addr();
        peer.send(
            srv.addr(),
            &subscribe(
                "erin",
                call,
                &format!("UDP {a}"),
                &format!("sip:w@{a}"),
                call,
                1,
                None,
                600,
            ),
        );
        assert_eq!(peer.recv_final(T).and_then(|r| r.status()), Some(200));
        let n = peer.recv_method("NOTIFY", T).expect("first NOTIFY");
        ok(peer, &n);
    }
    // With dan's Contact as the sender, only bob is told; bob then stops
    // answering and is dropped after tm's timeout.
    let sender = format!("X-Sender: sip:w@{}\r\nExpires: 600\r\n", dan.addr());
    alice.send(
        srv.addr(),
        &publish("erin", alice.addr(), "d-p1", &sender, &pidf("erin", "x")),
    );
    assert_eq!(alice.recv_final(T).and_then(|r| r.status()), Some(200));
    assert!(bob.recv_method("NOTIFY", T).is_some(), "bob is told");
    assert!(
        dan.recv_method("NOTIFY", Duration::from_millis(500))
            .is_none(),
        "the sender's own watcher is not"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(rows(&url, "active_watchers"), 1, "bob dropped, dan kept");
    // What bob did not answer: retransmissions of that one NOTIFY.
    while let Some(r) = bob.recv(Duration::from_millis(100)) {
        assert_eq!(
            r.header("CSeq").as_deref(),
            Some("3 NOTIFY"),
            "{}",
            r.text()
        );
    }
    alice.send(
        srv.addr(),
        &publish(
            "erin",
            alice.addr(),
            "d-p2",
            "Expires: 600\r\n",
            &pidf("erin", "y"),
        ),
    );
    assert_eq!(alice.recv_final(T).and_then(|r| r.status()), Some(200));
    let n = dan.recv_method("NOTIFY", T).expect("dan is told");
    ok(&dan, &n);
    assert!(bob
        .recv_method("NOTIFY", Duration::from_millis(500))
        .is_none());
}

#[test]
fn rpc_methods_list_refresh_and_clean() {
    let db = sr_testkit::fresh_db("presence-rpc");
    let url = format!("sqlite://{}", db.display());
    let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
    let (alice, bob) = (UdpPeer::new(), UdpPeer::new());
    alice.send(
        srv.addr(),
        &publish(
            "gil",
            alice.addr(),
            "q1",
            "Expires: 600\r\n",
            &pidf("gil", "z"),
        ),
    );
    let r = alice.recv_final(T).expect("PUBLISH answered");
    let etag = r.header("SIP-ETag").unwrap();
    let list = srv.rpc("presence.presentity_list", &[]).unwrap();
    assert_eq!(list[0]["user"], json!("gil"));
    assert_eq!(list[0]["etag"], json!(etag));
    assert!(list[0].get("body").is_none());
    let full = srv
        .rpc("presence.presentity_list", &[json!("full")])
        .unwrap();
    assert!(full[0]["body"].as_str().unwrap().contains("<note>z</note>"));
    let b = bob.addr();
    bob.send(
        srv.addr(),
        &subscribe(
            "gil",
            "bob",
            &format!("UDP {b}"),
            &format!("sip:bob@{b}"),
            "q2",
            1,
            None,
            600,
        ),
    );
    let n = bob.recv_method("NOTIFY", T).expect("first NOTIFY");
    ok(&bob, &n);
    srv.rpc(
        "presence.refreshWatchers",
        &[json!("sip:gil@ex.test"), json!("presence"), json!(1)],
    )
    .unwrap();
    let n = bob
        .recv_method("NOTIFY", T)
        .expect("NOTIFY from refreshWatchers");
    ok(&bob, &n);
    assert_eq!(n.header("CSeq").as_deref(), Some("3 NOTIFY"));
    let e = srv
        .rpc(
            "presence.refreshWatchers",
            &[json!(""), json!("presence"), json!(1)],
        )
        .unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "Empty presentity URI"));
    let e = srv
        .rpc(
            "presence.updateWatchers",
            &[json!("sip:gil@ex.test"), json!("presence")],
        )
        .unwrap_err();
    assert_eq!(e.code, 500);
    assert_eq!(
        srv.rpc("presence.cleanup", &[]).unwrap(),
        json!("Reload OK")
    );
}

#[test]
fn a_subscription_over_tcp_is_notified_over_tcp() {
    let db = sr_testkit::fresh_db("presence-tcp");
    let url = format!("sqlite://{}", db.display());
    let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
    let mut peer = TcpPeer::connect(srv.addr());
    let a = peer.addr();
    peer.send(&subscribe(
        "hal",
        "ivy",
        &format!("TCP {a}"),
        &format!("sip:ivy@{a};transport=tcp"),
        "tc1",
        1,
        None,
        600,
    ));
    let r = peer.recv(T).expect("SUBSCRIBE answered");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert!(
        r.header("Contact").unwrap().ends_with(";transport=tcp>"),
        "{}",
        r.text()
    );
    let n = peer.recv(T).expect("NOTIFY over the connection");
    assert!(n.text().starts_with("NOTIFY sip:ivy@"), "{}", n.text());
    assert!(
        n.header("Via").unwrap().starts_with("SIP/2.0/TCP"),
        "{}",
        n.text()
    );
}

#[test]
fn what_is_not_built_is_refused_at_start() {
    let db = sr_testkit::fresh_db("presence-refused");
    let url = format!("sqlite://{}", db.display());
    let cfg = config(&url, "").replace(
        "modparam(\"presence_xml\", \"force_active\", 1)",
        "modparam(\"presence_xml\", \"force_active\", 0)",
    );
    let e = TestServer::try_start(&cfg, siprouter::in_tree())
        .err()
        .expect("force_active=0 is refused")
        .join("\n");
    assert!(e.contains("force_active"), "{e}");
    for (m, p) in [
        ("presence", "modparam(\"presence\", \"enable_dmq\", 1)"),
        (
            "presence_xml",
            "modparam(\"presence_xml\", \"disable_bla\", 0)",
        ),
    ] {
        let e = TestServer::try_start(&config(&url, p), siprouter::in_tree())
            .err()
            .unwrap_or_else(|| panic!("{p} is refused"))
            .join("\n");
        assert!(e.contains(m) && e.contains("not supported"), "{e}");
    }
}

#[test]
fn a_dialog_of_one_package_is_not_refreshed_as_another() {
    let db = sr_testkit::fresh_db("presence-event");
    let url = format!("sqlite://{}", db.display());
    let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
    let bob = UdpPeer::new();
    let b = bob.addr();
    bob.send(
        srv.addr(),
        &subscribe(
            "kim",
            "bob",
            &format!("UDP {b}"),
            &format!("sip:bob@{b}"),
            "ev1",
            1,
            None,
            600,
        ),
    );
    let r = bob.recv_final(T).expect("SUBSCRIBE answered");
    let tag = to_tag(&r);
    let n = bob.recv_method("NOTIFY", T).expect("first NOTIFY");
    ok(&bob, &n);
    // The same dialog asking for watcher information: not this dialog.
    let other = subscribe(
        "kim",
        "bob",
        &format!("UDP {b}"),
        &format!("sip:bob@{b}"),
        "ev1",
        2,
        Some(&tag),
        600,
    )
    .replace("Event: presence\r\n", "Event: presence.winfo\r\n");
    bob.send(srv.addr(), &other);
    let r = bob.recv_final(T).expect("answered");
    assert_eq!(r.status(), Some(481), "{}", r.text());
    assert!(bob
        .recv_method("NOTIFY", Duration::from_millis(500))
        .is_none());
    // As presence, it is.
    bob.send(
        srv.addr(),
        &subscribe(
            "kim",
            "bob",
            &format!("UDP {b}"),
            &format!("sip:bob@{b}"),
            "ev1",
            3,
            Some(&tag),
            600,
        ),
    );
    assert_eq!(bob.recv_final(T).and_then(|r| r.status()), Some(200));
}
