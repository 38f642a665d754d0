//! topos end to end, siprouter alone (the message-by-message comparison
//! with Kamailio is kamailio_parity_topos.rs): a call over TCP on one
//! side and UDP on the other with the callee never seeing the caller's
//! addresses, the records cleaned when they expire, start-up faults
//! refused with the reason, and mangled in-dialog requests and replies
//! passing without a panic.

use sr_sdk::db::DbConn;
use sr_testkit::{answer, TcpPeer, TestServer, UdpPeer};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);

fn config(url: &str, extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
listen=tcp:127.0.0.1:{{PORT}}
children=2
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "pv"
loadmodule "siputils"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "topos"
modparam("topos", "db_url", "{url}")
{extra}
request_route {{
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK") && t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    record_route();
    $du = $hdr(X-To);
    t_relay();
}}
"#
    )
}

fn count(url: &str, table: &str) -> usize {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    c.query(table, &[], &[], None).unwrap().rows.len()
}

#[test]
fn a_call_from_tcp_to_udp_hides_the_caller_and_routes_in_dialog() {
    let db = sr_testkit::fresh_db("topos-call");
    let url = format!("sqlite://{}", db.display());
    let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
    let b = UdpPeer::new();
    let mut a = TcpPeer::connect(srv.addr());
    let (aa, ba) = (a.addr(), b.addr());
    a.send(&format!(
        "INVITE sip:bob@{ba} SIP/2.0\r\nVia: SIP/2.0/TCP {aa};branch=z9hG4bKc1\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bKinner\r\nRecord-Route: <sip:{aa};transport=tcp;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\nCall-ID: topos-tcp\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{aa};transport=tcp>\r\nX-To: sip:{ba}\r\nContent-Length: 0\r\n\r\n"
    ));
    let inv = b.recv_method("INVITE", T).expect("B gets the INVITE");
    let text = inv.text();
    // B sees one Via (the proxy's), no Record-Route, the proxy's Contact.
    assert_eq!(text.matches("\r\nVia:").count(), 1, "{text}");
    assert!(
        !text.contains("10.1.2.3") && !text.contains(&aa.to_string()),
        "{text}"
    );
    assert!(!text.contains("Record-Route"), "{text}");
    let contact = inv.header("Contact").unwrap();
    assert!(contact.starts_with("<sip:btpsh-"), "{contact}");
    assert!(
        contact.contains(&format!("@127.0.0.1:{}", srv.addr().port())),
        "{contact}"
    );
    assert_eq!(count(&url, "topos_d"), 1);
    // The answer reaches A with its own Vias and upstream Record-Route
    // back, and a Contact of the proxy's for A.
    b.send(
        srv.addr(),
        &answer(
            &inv,
            200,
            "OK",
            "b1",
            &[&format!("Contact: <sip:bob@{ba}>")],
        ),
    );
    let ok = std::iter::from_fn(|| a.recv(T))
        .find(|r| r.status() == Some(200))
        .expect("A gets the 200");
    let t = ok.text();
    assert!(
        t.contains("branch=z9hG4bKc1") && t.contains("branch=z9hG4bKinner"),
        "{t}"
    );
    assert!(
        t.contains(&format!("Record-Route: <sip:{aa};transport=tcp;lr>")),
        "{t}"
    );
    let a_side = ok.header("Contact").unwrap();
    assert!(a_side.starts_with("<sip:atpsh-"), "{a_side}");
    assert!(a_side.contains(";transport=tcp"), "{a_side}");
    assert!(!t.contains(&ba.to_string()), "{t}");
    // B hangs up toward the Contact it got: A gets the BYE at its real
    // Contact, through its upstream proxy's Route.
    let target = contact.trim_matches(['<', '>']);
    b.send(srv.addr(), &format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {ba};branch=z9hG4bKbye\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>;tag=a1\r\nCall-ID: topos-tcp\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    ));
    let bye = a.recv(T).expect("A gets the BYE");
    let t = bye.text();
    assert!(
        t.starts_with(&format!("BYE sip:alice@{aa};transport=tcp SIP/2.0")),
        "{t}"
    );
    assert!(
        t.contains(&format!("Route: <sip:{aa};transport=tcp;lr>")),
        "{t}"
    );
    assert!(!t.contains(&ba.to_string()), "{t}");
    a.send(&answer(&bye, 200, "OK", "", &[]));
    let done = b.recv_status(200, T).expect("B gets the 200");
    assert!(!done.text().contains(&aa.to_string()), "{}", done.text());
    // The BYE ended the dialog's record.
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    let r = c
        .query("topos_d", &[], &["iflags", "b_contact"], None)
        .unwrap();
    assert_eq!(r.rows[0][0], sr_sdk::db::DbValue::Int(0), "{r:?}");
    assert_eq!(
        r.rows[0][1],
        sr_sdk::db::DbValue::str(format!("sip:bob@{ba}"))
    );
}

#[test]
fn expired_records_are_cleaned() {
    let db = sr_testkit::fresh_db("topos-clean");
    let url = format!("sqlite://{}", db.display());
    let extra = r#"modparam("topos", "clean_interval", 1)
modparam("topos", "branch_expire", 1)
modparam("topos", "dialog_expire", 2)"#;
    let srv = TestServer::start(&config(&url, extra), siprouter::in_tree());
    let (a, b) = (UdpPeer::new(), UdpPeer::new());
    let (aa, ba) = (a.addr(), b.addr());
    a.send(srv.addr(), &format!(
        "MESSAGE sip:bob@{ba} SIP/2.0\r\nVia: SIP/2.0/UDP {aa};branch=z9hG4bKm1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\nCall-ID: topos-clean\r\nCSeq: 1 MESSAGE\r\nContact: <sip:alice@{aa}>\r\nX-To: sip:{ba}\r\nContent-Length: 0\r\n\r\n"
    ));
    let m = b.recv_method("MESSAGE", T).expect("B gets the MESSAGE");
    b.send(srv.addr(), &answer(&m, 200, "OK", "b1", &[]));
    assert!(a.recv_status(200, T).is_some());
    assert_eq!((count(&url, "topos_d"), count(&url, "topos_t")), (1, 1));
    // Unconfirmed dialogs and branches go after branch_expire.
    let deadline = Instant::now() + Duration::from_secs(6);
    while (count(&url, "topos_d"), count(&url, "topos_t")) != (0, 0) {
        assert!(Instant::now() < deadline, "records still there");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn start_up_faults_are_refused_with_the_reason() {
    let db = sr_testkit::fresh_db("topos-bad");
    let url = format!("sqlite://{}", db.display());
    drop(sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap());
    for (extra, want) in [
        (
            r#"modparam("topos", "storage", "redis")"#,
            "storage 'redis' is not built",
        ),
        (
            r#"modparam("topos", "storage", "file")"#,
            "unknown storage type: file",
        ),
        (r#"modparam("topos", "contact_mode", 2)"#, "contact_mode 2"),
        (
            r#"modparam("topos", "rr_update", 1)"#,
            "rr_update is not built",
        ),
        (
            r#"modparam("topos", "context", "a-very-long-context")"#,
            "longer than 12",
        ),
        (r#"modparam("topos", "xavu_cfg", "_tps_")"#, "xavu_"),
    ] {
        let e = TestServer::try_start(&config(&url, extra), siprouter::in_tree())
            .err()
            .expect("refused");
        assert!(e.join("\n").contains(want), "{extra}: {e:?}");
    }
    // A database without the topos tables.
    let empty = sr_testkit::fresh_db("topos-empty");
    {
        let mut c =
            sr_mod_db_sqlite::SqliteConn::open(&format!("sqlite://{}", empty.display()), 1000)
                .unwrap();
        c.raw("DROP TABLE topos_t").unwrap();
    }
    let e = TestServer::try_start(
        &config(&format!("sqlite://{}", empty.display()), ""),
        siprouter::in_tree(),
    )
    .err()
    .expect("refused");
    assert!(e.join("\n").contains("table 'topos_t' is missing"), "{e:?}");
}

#[test]
fn mangled_messages_pass_without_a_panic() {
    let db = sr_testkit::fresh_db("topos-fuzz");
    let url = format!("sqlite://{}", db.display());
    let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
    let (a, b) = (UdpPeer::new(), UdpPeer::new());
    let (aa, ba) = (a.addr(), b.addr());
    let base = format!(
        "BYE sip:btpsh-0-0-1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {aa};branch=z9hG4bKf\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=a1\r\nTo: <sip:b@x>;tag=b1\r\nCall-ID: topos-fuzz\r\nCSeq: 2 BYE\r\nContact: <sip:a@{aa}>\r\nX-To: sip:{ba}\r\nContent-Length: 0\r\n\r\n"
    );
    let reply = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnone\r\nFrom: <sip:a@x>;tag=a1\r\nTo: <sip:b@x>;tag=b1\r\nCall-ID: topos-fuzz\r\nCSeq: 1 INVITE\r\nRecord-Route: <sip:x;lr>,,<\r\nContact: *\r\nContent-Length: 0\r\n\r\n";
    let mut seed = 7u64;
    for text in [base.as_str(), reply] {
        for _ in 0..200 {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..3 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (seed >> 33) as usize % bytes.len();
                bytes[i] = b"<>;,@:= \r\n\"atpsh-"[(seed >> 13) as usize % 17];
            }
            a.send(srv.addr(), &String::from_utf8_lossy(&bytes));
        }
    }
    // Still serving: an out-of-dialog OPTIONS gets through.
    a.send(srv.addr(), &format!(
        "OPTIONS sip:bob@{ba} SIP/2.0\r\nVia: SIP/2.0/UDP {aa};branch=z9hG4bKalive\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=a9\r\nTo: <sip:b@x>\r\nCall-ID: topos-alive\r\nCSeq: 1 OPTIONS\r\nContact: <sip:a@{aa}>\r\nX-To: sip:{ba}\r\nContent-Length: 0\r\n\r\n"
    ));
    let got = b.recv_matching(Duration::from_secs(5), |r| {
        r.msg.msg().call_id().ok() == Some("topos-alive")
    });
    assert!(
        got.is_some(),
        "the server still relays after the mangled messages"
    );
}
