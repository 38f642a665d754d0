//! Differential test against Kamailio itself, for the msilo module, on
//! one SQLite file with Kamailio's `silo` table: MESSAGEs for a user who
//! is offline are stored (with and without `Expires`, parameters on the
//! content type, headers kept and left out, an empty body refused), the
//! user registers and gets them through the proxy (one answered 200, one
//! 486), a registration whose `Allow` leaves MESSAGE out gets none, and
//! the next one gets what was not delivered — the replies, the rows of
//! the table after each step (times as differences) and every MESSAGE
//! the user gets (Vias, tags, Call-IDs, dates and User-Agent masked)
//! compared.
//!
//! Without Kamailio (its msilo and db_sqlite modules) and `sqlite3`
//! installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{answer, kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MODULES: &[&str] = &[
    "tm",
    "sl",
    "pv",
    "textops",
    "usrloc",
    "registrar",
    "db_sqlite",
    "msilo",
];

const BODY: &str = r#"modparam("msilo", "db_url", "__DB__")
modparam("msilo", "outbound_proxy", "sip:127.0.0.1:__PORT__")
modparam("msilo", "check_time", 1)
modparam("msilo", "clean_period", 1)
modparam("msilo", "from_address", "sip:registrar@127.0.0.1")
modparam("msilo", "offline_message", "*** User $rU is offline ***")
modparam("msilo", "content_type_hdr", "Content-Type: text/plain\r\n")
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "up"); exit; }
    if (is_method("REGISTER")) {
        save("location");
        m_dump();
        exit;
    }
    if (is_method("MESSAGE")) {
        if (lookup("location")) { t_relay(); exit; }
        if (!t_newtran()) { sl_reply_error(); exit; }
        if (m_store("$ru")) { t_reply("202", "Accepted"); } else { t_reply("503", "Not Stored"); }
        exit;
    }
    sl_send_reply("404", "Not here");
}
"#;

const SCHEMA: &str = "CREATE TABLE version (table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL);
INSERT INTO version VALUES ('silo', 8);
CREATE TABLE silo (id INTEGER PRIMARY KEY NOT NULL, src_addr VARCHAR(255) DEFAULT '' NOT NULL, dst_addr VARCHAR(255) DEFAULT '' NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL, inc_time INTEGER DEFAULT 0 NOT NULL, exp_time INTEGER DEFAULT 0 NOT NULL, snd_time INTEGER DEFAULT 0 NOT NULL, ctype VARCHAR(32) DEFAULT 'text/plain' NOT NULL, body BLOB, extra_hdrs TEXT, callid VARCHAR(128) DEFAULT '' NOT NULL, status INTEGER DEFAULT 0 NOT NULL);
CREATE INDEX silo_account_idx ON silo (username, domain);";

fn sqlite(db: &Path, sql: &str) -> String {
    sr_testkit::sqlite3(db, sql)
}

fn rows(db: &Path) -> String {
    sqlite(
        db,
        "SELECT src_addr, dst_addr, username, domain, exp_time - inc_time, snd_time, ctype, body, replace(extra_hdrs, char(13, 10), ' / '), callid, status FROM silo ORDER BY id",
    )
}

fn message(n: u32, me: SocketAddr, extra: &str, body: &str) -> String {
    format!(
        "MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKms{n}\r\nFrom: \"Alice\" <sip:alice@127.0.0.1>;tag=a{n}\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: ms-{n}\r\nCSeq: 1 MESSAGE\r\nX-C: 1\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn register(n: u32, me: SocketAddr, extra: &str) -> String {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrg{n}\r\nFrom: <sip:bob@127.0.0.1>;tag=b{n}\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: reg-bob\r\nCSeq: {n} REGISTER\r\nContact: <sip:bob@{me}>\r\nExpires: 600\r\nX-C: 1\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// A MESSAGE bob got, masked: no Via or User-Agent, no tags, Call-ID
/// and dates.
fn masked(text: &str) -> String {
    text.split("\r\n")
        .filter(|l| !l.starts_with("Via:") && !l.starts_with("User-Agent:"))
        .map(|l| {
            if let Some(v) = l.strip_prefix("From: ") {
                format!("From: {}", v.split(";tag=").next().unwrap_or(""))
            } else if l.starts_with("Call-ID:") {
                "Call-ID: ...".into()
            } else if l.starts_with("Date:") {
                "Date: ...".into()
            } else if let Some(rest) = l.strip_prefix("[Offline message - ") {
                format!(
                    "[Offline message - DATE]{}",
                    rest.split_once(']').map_or("", |x| x.1)
                )
            } else {
                l.to_string()
            }
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// What alice gets after sending MESSAGE `n`: its final reply and the
/// offline notices (answered 200), masked and sorted.
fn answers(alice: &UdpPeer, n: u32) -> Vec<String> {
    let mut out = Vec::new();
    let port = format!(":{}", alice.addr().port());
    while let Some(r) = alice.recv(Duration::from_millis(1000)) {
        if r.msg.msg().method() == Some(sr_sdk::sip_msg::Method::Message) {
            alice.send(r.from, &answer(&r, 200, "OK", "al", &[]));
            out.push(format!(
                "alice got after {n}: {}",
                masked(&r.text()).replace(&port, ":ALICE")
            ));
        } else if r.msg.msg().call_id().ok() == Some(format!("ms-{n}").as_str()) {
            out.push(format!("store {n}: {}", r.status().unwrap_or(0)));
        }
    }
    out.sort();
    out
}

/// Bob's MESSAGEs until none comes for a while, answered with `codes` in
/// turn (200 when they run out).
fn deliveries(bob: &UdpPeer, codes: &[u16]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(m) = bob.recv_method("MESSAGE", Duration::from_millis(1500)) {
        let code = codes.get(i).copied().unwrap_or(200);
        i += 1;
        bob.send(m.from, &answer(&m, code, "X", "bt", &[]));
        let port = format!(":{}", bob.addr().port());
        out.push(format!(
            "bob got ({code}): {}",
            masked(&m.text()).replace(&port, ":BOB")
        ));
    }
    out.sort();
    out
}

fn scenario(srv: SocketAddr, db: &Path) -> Vec<String> {
    let alice = UdpPeer::new();
    kamailio::wait_until_up(&alice, srv, kamailio::PROBE, None);
    let bob = UdpPeer::new();
    let mut out = Vec::new();
    // Alice is registered: the notices that her messages are kept reach
    // her.
    alice.send(srv, &register(9, alice.addr(), "").replace("bob", "alice"));
    alice
        .recv_status(200, Duration::from_secs(3))
        .expect("200 to alice's REGISTER");
    let sends = [
        (
            "Content-Type: text/plain;charset=utf-8\r\nX-Extra: x\r\nSubject: hi\r\nX-Foo: 1\r\nPriority: urgent\r\n",
            "hello",
        ),
        ("Content-Type: text/html\r\nExpires: 600\r\n", "<b>second</b>"),
        ("", "no type"),
        ("Content-Type: text/plain\r\n", ""),
        (
            "Content-Type: text/plain\r\nContact: <sip:alice@127.0.0.1;transport=udp>\r\n",
            "with contact",
        ),
    ];
    for (n, (extra, body)) in sends.iter().enumerate() {
        let n = n as u32;
        alice.send(srv, &message(n, alice.addr(), extra, body));
        out.extend(answers(&alice, n));
    }
    out.push(format!("stored: {}", rows(db)));
    // Bob registers, not allowing MESSAGE: nothing.
    bob.send(srv, &register(1, bob.addr(), "Allow: INVITE, ACK, BYE\r\n"));
    bob.recv_status(200, Duration::from_secs(3))
        .expect("200 to REGISTER");
    out.extend(deliveries(&bob, &[]));
    // Bob registers: the three come; the second is refused.
    bob.send(srv, &register(2, bob.addr(), ""));
    bob.recv_status(200, Duration::from_secs(3))
        .expect("200 to REGISTER");
    out.extend(deliveries(&bob, &[200, 486, 200]));
    std::thread::sleep(Duration::from_millis(2500));
    out.push(format!("left: {}", rows(db)));
    bob.send(srv, &register(3, bob.addr(), ""));
    bob.recv_status(200, Duration::from_secs(3))
        .expect("200 to REGISTER");
    out.extend(deliveries(&bob, &[]));
    std::thread::sleep(Duration::from_millis(2500));
    out.push(format!("left at the end: {}", rows(db)));
    out
}

#[test]
fn offline_messages_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    if Command::new("sqlite3").arg("-version").output().is_err() {
        eprintln!("sqlite3 is not installed: skipped");
        return;
    }
    let dir = kamailio::fresh_dir("msilo");
    let db = dir.join("silo.db");
    let cfg =
        kamailio::head(MODULES) + &BODY.replace("__DB__", &format!("sqlite:///{}", db.display()));
    let prepare = || {
        let _ = std::fs::remove_file(&db);
        sqlite(&db, SCHEMA);
    };
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &prepare, &|srv| {
        scenario(srv, &db)
    });
    assert!(
        want.iter()
            .any(|l| l.contains("[Offline message - DATE] hello")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "msilo");
}
