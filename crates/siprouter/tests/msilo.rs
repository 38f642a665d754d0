//! msilo end to end on a real SQLite file (made with the `silo` table
//! when siprouter opens it): what the Kamailio differential test
//! (`kamailio_parity_msilo.rs`) leaves out — the statistics, a message
//! that expires before its owner registers, `m_dump` with an owner, a
//! delivery nobody answers (kept, counted failed), `m_store` on another
//! method.

use sr_testkit::{answer, TestServer, UdpPeer};
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn db(name: &str) -> PathBuf {
    sr_testkit::fresh_db(&format!("msilo-{name}"))
}

fn cfg(db: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "tm"
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "db_sqlite"
loadmodule "msilo"
modparam("tm", "fr_timer", 1000)
modparam("msilo", "db_url", "sqlite:///{}")
modparam("msilo", "outbound_proxy", "sip:127.0.0.1:{{PORT}}")
modparam("msilo", "check_time", 1)
{extra}
request_route {{
    if (is_method("REGISTER")) {{
        save("location");
        if ($hdr(X-Owner) != $null) {{ m_dump("$hdr(X-Owner)"); }} else {{ m_dump(); }}
        exit;
    }}
    if (is_method("MESSAGE")) {{
        if (lookup("location")) {{ t_relay(); exit; }}
        if (m_store()) {{ sl_send_reply("202", "Accepted"); }} else {{ sl_send_reply("503", "Not Stored"); }}
        exit;
    }}
    if (m_store()) {{ sl_send_reply("500", "stored a non-MESSAGE"); exit; }}
    sl_send_reply("403", "Not a MESSAGE");
}}
"#,
        db.display()
    )
}

fn message(n: u32, alice: &UdpPeer, to: &str, extra: &str) -> String {
    format!(
        "MESSAGE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKm{n}\r\nFrom: <sip:alice@127.0.0.1>;tag=a{n}\r\nTo: <sip:{to}@127.0.0.1>\r\nCall-ID: m-{n}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n{extra}Content-Length: 2\r\n\r\nhi",
        alice.addr()
    )
}

fn register(n: u32, peer: &UdpPeer, user: &str, extra: &str) -> String {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKr{n}\r\nFrom: <sip:{user}@127.0.0.1>;tag=r{n}\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: reg-{user}\r\nCSeq: {n} REGISTER\r\nContact: <sip:{user}@{a}>\r\nExpires: 600\r\n{extra}Content-Length: 0\r\n\r\n",
        a = peer.addr()
    )
}

fn stored(srv: &TestServer, alice: &UdpPeer, n: u32, to: &str, extra: &str) {
    alice.send(srv.addr(), &message(n, alice, to, extra));
    alice.recv_status(202, T).expect("202 Accepted");
}

#[test]
fn delivery_expiry_and_statistics() {
    let path = db("stats");
    let srv = TestServer::start(&cfg(&path, ""), siprouter::in_tree());
    let (alice, bob, carol) = (UdpPeer::new(), UdpPeer::new(), UdpPeer::new());
    stored(&srv, &alice, 1, "bob", "");
    stored(&srv, &alice, 2, "bob", "Expires: 1\r\n");
    stored(&srv, &alice, 3, "carol", "");
    assert_eq!(srv.stat("msilo:stored_messages"), Some(3));
    // The one that expires in a second is gone before bob registers.
    std::thread::sleep(Duration::from_millis(2500));
    bob.send(srv.addr(), &register(1, &bob, "bob", ""));
    bob.recv_status(200, T).expect("REGISTER answered");
    let m = bob.recv_method("MESSAGE", T).expect("the stored message");
    assert!(m.text().contains("] hi"), "{}", m.text());
    bob.send(m.from, &answer(&m, 200, "OK", "b", &[]));
    assert!(
        bob.recv_method("MESSAGE", Duration::from_millis(1500))
            .is_none(),
        "the expired one is not sent"
    );
    assert_eq!(srv.wait_stat("msilo:dumped_messages", 1), Some(1));
    // Carol's is dumped to a registration that names her as the owner,
    // and she does not answer: kept and counted failed.
    carol.send(
        srv.addr(),
        &register(1, &carol, "carol", "X-Owner: sip:carol@127.0.0.1\r\n"),
    );
    carol.recv_status(200, T).expect("REGISTER answered");
    carol.recv_method("MESSAGE", T).expect("carol's message");
    assert_eq!(srv.wait_stat("msilo:failed_messages", 1), Some(1));
    // Her next registration gets it again.
    carol.send(srv.addr(), &register(2, &carol, "carol", ""));
    carol.recv_status(200, T).expect("REGISTER answered");
    let mut again = None;
    while let Some(m) = carol.recv_method("MESSAGE", T) {
        if m.msg.msg().cseq().is_ok_and(|c| c.seq == 10) && m.text().contains("] hi") {
            again = Some(m);
            break;
        }
    }
    let m = again.expect("sent again");
    carol.send(m.from, &answer(&m, 200, "OK", "c", &[]));
    assert_eq!(srv.wait_stat("msilo:dumped_messages", 2), Some(2));
    // OPTIONS is not stored.
    let o = format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKo\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: o-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        alice.addr()
    );
    alice.send(srv.addr(), &o);
    alice.recv_status(403, T).expect("m_store refuses OPTIONS");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn max_messages_and_the_longest_expiry() {
    let path = db("limits");
    let extra =
        "modparam(\"msilo\", \"max_messages\", 2)\nmodparam(\"msilo\", \"expire_time\", 100)";
    let srv = TestServer::start(&cfg(&path, extra), siprouter::in_tree());
    let alice = UdpPeer::new();
    stored(&srv, &alice, 1, "dave", "Expires: 999999999\r\n");
    stored(&srv, &alice, 2, "dave", "Expires: 0\r\n");
    alice.send(srv.addr(), &message(3, &alice, "dave", ""));
    alice
        .recv_status(503, T)
        .expect("a third message for dave is refused");
    stored(&srv, &alice, 4, "erin", "Expires: 30\r\n");
    let rows = sr_testkit::sqlite3(
        &path,
        "SELECT username, exp_time - inc_time FROM silo ORDER BY id",
    );
    assert_eq!(rows, "dave|100\ndave|100\nerin|30\n");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn the_offline_notice_needs_its_content_type() {
    let path = db("notice");
    let extra = "modparam(\"msilo\", \"from_address\", \"sip:registrar@127.0.0.1\")\nmodparam(\"msilo\", \"offline_message\", \"*** $rU is offline ***\")";
    let e = TestServer::try_start(&cfg(&path, extra), siprouter::in_tree())
        .err()
        .expect("no content_type_hdr is refused");
    assert!(
        e.iter()
            .any(|l| l.contains("content_type_hdr must be set for the offline notice")),
        "{e:?}"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
