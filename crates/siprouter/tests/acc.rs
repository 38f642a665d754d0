//! End-to-end: accounting with the acc module behind a `t_relay()`
//! config: records in the log (captured) and in the SQLite `acc` and
//! `missed_calls` tables, for answered, failed and missed calls and for
//! `acc_log_request`.

use sr_sdk::db::{Cond, DbValue, Rows};
use sr_testkit::{answer, req, TestServer, UdpPeer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);

fn captured() -> &'static Mutex<Vec<(i32, String, String)>> {
    static LINES: OnceLock<Mutex<Vec<(i32, String, String)>>> = OnceLock::new();
    LINES.get_or_init(Default::default)
}

/// Captures the log of this test process (the sink is global and set once).
fn log_capture() {
    sr_sdk::log::set_sink(Box::new(|lvl, target, args| {
        if let Ok(mut l) = captured().lock() {
            l.push((lvl, target.to_string(), args.to_string()));
        }
    }));
}

/// The acc lines mentioning a Call-ID.
fn acc_lines(call: &str) -> Vec<(i32, String, String)> {
    let needle = format!(";call_id={call};");
    captured()
        .lock()
        .map(|l| {
            l.iter()
                .filter(|x| x.1 == "acc" && x.2.contains(&needle))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `n` acc lines of a call were logged.
fn wait_lines(call: &str, n: usize) -> Vec<(i32, String, String)> {
    let deadline = Instant::now() + T;
    loop {
        let l = acc_lines(call);
        if l.len() >= n || Instant::now() > deadline {
            return l;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn db_dir(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "sr-acc-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let url = format!("sqlite://{}/acc.db", dir.display());
    // A new file gets the standard tables; add a db_extra column.
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).expect("open");
    c.execute_batch(
        "ALTER TABLE acc ADD COLUMN src_user VARCHAR(64) NOT NULL DEFAULT '';
         ALTER TABLE missed_calls ADD COLUMN src_user VARCHAR(64) NOT NULL DEFAULT '';",
    )
    .expect("alter");
    (dir, url)
}

fn rows(url: &str, table: &str, call: &str) -> Rows {
    let mut c = sr_mod_db_sqlite::driver().open(url).expect("open");
    c.query(table, &[Cond::eq("callid", DbValue::str(call))], &[], None)
        .expect("query")
}

/// The rows of a call in a table, waiting (up to 3 s) for at least `n`.
fn wait_rows(url: &str, table: &str, call: &str, n: usize) -> Rows {
    let deadline = Instant::now() + T;
    loop {
        let r = rows(url, table, call);
        if r.len() >= n || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cfg(uas: SocketAddr, url: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=2
debug=2
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "acc"
modparam("tm", "fr_timer", 1000)
modparam("tm", "wt_timer", 200)
modparam("acc", "log_flag", 1)
modparam("acc", "log_missed_flag", 2)
modparam("acc", "failed_transaction_flag", 3)
modparam("acc", "db_flag", 1)
modparam("acc", "db_missed_flag", 2)
modparam("acc", "db_url", "{url}")
modparam("acc", "log_extra", "src_user=$fU;dst_user=$rU;tag=$hdr(X-Tag)")
modparam("acc", "db_extra", "src_user=$fU")

request_route {{
    if (method=="ACK") {{ t_check_trans(); exit; }}
    if (method=="MESSAGE") {{
        acc_log_request("202 noted");
        acc_db_request("203 stored", "acc");
        sl_send_reply("200", "ok");
        exit;
    }}
    setflag(1);
    setflag(2);
    if (is_present_hf("X-Failed")) {{ setflag(3); }}
    $du = "sip:{uas}";
    t_on_failure("FAIL");
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}
failure_route[FAIL] {{
    if (is_present_hf("X-Again")) {{
        resetflag(3);
        setflag(2);
        $du = "sip:{uas}";
        t_relay();
    }}
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

/// Sends an INVITE, answers it at the UAS with `code`, returns the final
/// reply the caller got.
fn call(srv: &TestServer, uas: &UdpPeer, call: &str, code: u16, extra: &[&str]) -> u16 {
    let uac = UdpPeer::new();
    uac.send(srv.addr(), &invite(&uac, call, extra));
    let got = uas.recv_method("INVITE", T).expect("UAS got the INVITE");
    let reason = if code == 200 { "OK" } else { "Busy Here" };
    uas.send(got.from, &answer(&got, code, reason, "uas-tag", &[]));
    let r = uac.recv_final(T).expect("final reply");
    r.status().unwrap_or(0)
}

fn start() -> (TestServer, UdpPeer, PathBuf, String) {
    log_capture();
    let uas = UdpPeer::new();
    let (dir, url) = db_dir("t");
    let srv = TestServer::start(&cfg(uas.addr(), &url), siprouter::in_tree());
    (srv, uas, dir, url)
}

#[test]
fn answered_call_is_written_once_to_log_and_acc_table() {
    let (srv, uas, dir, url) = start();
    assert_eq!(call(&srv, &uas, "acc-ok", 200, &["X-Tag: t1"]), 200);
    let lines = wait_lines("acc-ok", 1);
    std::thread::sleep(Duration::from_millis(200));
    let lines2 = acc_lines("acc-ok");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines2.len(), 1, "exactly one record: {lines2:?}");
    let (lvl, _, text) = &lines[0];
    assert_eq!(*lvl, 1, "log_level 1 (notice)");
    assert!(
        text.starts_with("ACC: transaction answered: timestamp="),
        "{text}"
    );
    assert!(
        text.ends_with(
            ";method=INVITE;from_tag=from-acc-ok;to_tag=uas-tag;call_id=acc-ok;code=200;reason=OK;src_user=alice;dst_user=bob;tag=t1"
        ),
        "{text}"
    );
    let r = wait_rows(&url, "acc", "acc-ok", 1);
    assert_eq!(r.len(), 1);
    assert_eq!(r.get(0, "method"), &DbValue::str("INVITE"));
    assert_eq!(r.get(0, "from_tag"), &DbValue::str("from-acc-ok"));
    assert_eq!(r.get(0, "to_tag"), &DbValue::str("uas-tag"));
    assert_eq!(r.get(0, "sip_code"), &DbValue::str("200"));
    assert_eq!(r.get(0, "sip_reason"), &DbValue::str("OK"));
    assert_eq!(r.get(0, "src_user"), &DbValue::str("alice"));
    let t = r.get(0, "time").as_time().expect("time");
    assert!((t - sr_sdk::db::now()).abs() < 60, "{t}");
    assert!(rows(&url, "missed_calls", "acc-ok").is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn busy_call_with_missed_flag_goes_to_missed_calls() {
    let (srv, uas, dir, url) = start();
    assert_eq!(call(&srv, &uas, "acc-busy", 486, &[]), 486);
    let lines = wait_lines("acc-busy", 1);
    std::thread::sleep(Duration::from_millis(200));
    let lines = if lines.is_empty() {
        lines
    } else {
        acc_lines("acc-busy")
    };
    assert_eq!(
        lines.len(),
        1,
        "one missed call, no answered record: {lines:?}"
    );
    assert!(lines[0].2.starts_with("ACC: call missed: "), "{lines:?}");
    assert!(
        lines[0].2.contains(";code=486;reason=Busy Here;"),
        "{lines:?}"
    );
    let m = wait_rows(&url, "missed_calls", "acc-busy", 1);
    assert_eq!(m.len(), 1);
    assert_eq!(m.get(0, "sip_code"), &DbValue::str("486"));
    assert_eq!(m.get(0, "to_tag"), &DbValue::str("uas-tag"));
    assert!(rows(&url, "acc", "acc-busy").is_empty(), "no failed flag");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn failed_transaction_flag_accounts_the_failure_too() {
    let (srv, uas, dir, url) = start();
    assert_eq!(call(&srv, &uas, "acc-fail", 486, &["X-Failed: 1"]), 486);
    let lines = wait_lines("acc-fail", 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().any(|l| l.2.starts_with("ACC: call missed: ")));
    assert!(lines
        .iter()
        .any(|l| l.2.starts_with("ACC: transaction answered: ") && l.2.contains(";code=486;")));
    assert_eq!(wait_rows(&url, "acc", "acc-fail", 1).len(), 1);
    assert_eq!(wait_rows(&url, "missed_calls", "acc-fail", 1).len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serial_forking_reports_each_missed_attempt() {
    let (srv, uas, dir, url) = start();
    let uac = UdpPeer::new();
    uac.send(srv.addr(), &invite(&uac, "acc-serial", &["X-Again: 1"]));
    for n in 0..2 {
        let got = uas.recv_method("INVITE", T).expect("attempt");
        uas.send(
            got.from,
            &answer(&got, 486, "Busy Here", &format!("u{n}"), &[]),
        );
    }
    assert_eq!(uac.recv_final(T).and_then(|r| r.status()), Some(486));
    wait_lines("acc-serial", 2);
    std::thread::sleep(Duration::from_millis(200));
    let lines = acc_lines("acc-serial");
    assert_eq!(lines.len(), 2, "one per attempt: {lines:?}");
    assert!(lines.iter().all(|l| l.2.starts_with("ACC: call missed: ")));
    assert_eq!(wait_rows(&url, "missed_calls", "acc-serial", 2).len(), 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn acc_log_request_writes_at_once() {
    let (srv, _uas, dir, url) = start();
    let uac = UdpPeer::new();
    let m = req(
        "MESSAGE",
        "sip:bob@example.com",
        uac.addr(),
        "m1",
        "acc-msg",
        1,
        &[],
        "",
    );
    uac.send(srv.addr(), &m);
    assert_eq!(uac.recv(T).and_then(|r| r.status()), Some(200));
    // Written before the reply was sent.
    let lines = acc_lines("acc-msg");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].2.starts_with("ACC: request accounted: timestamp="),
        "{lines:?}"
    );
    assert!(
        lines[0].2.contains(
            ";method=MESSAGE;from_tag=from-acc-msg;to_tag=;call_id=acc-msg;code=202;reason=noted;"
        ),
        "{lines:?}"
    );
    let r = rows(&url, "acc", "acc-msg");
    assert_eq!(r.len(), 1);
    assert_eq!(r.get(0, "sip_code"), &DbValue::str("203"));
    assert_eq!(r.get(0, "sip_reason"), &DbValue::str("stored"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_parameters_are_refused_at_startup() {
    // debug=2 as the other tests' servers: the log level is one for the
    // whole process, and a server loaded at the default (warnings) would
    // hide the notice-level ACC lines another test is waiting for.
    let bad = "listen=udp:127.0.0.1:{PORT}\ndebug=2\nloadmodule \"tm\"\nloadmodule \"acc\"\nmodparam(\"acc\", \"log_flag\", 40)\nrequest_route { exit; }\n";
    let e = TestServer::try_start(bad, siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(e.join("\n").contains("log_flag 40"), "{e:?}");
    let nodb = "listen=udp:127.0.0.1:{PORT}\ndebug=2\nloadmodule \"tm\"\nloadmodule \"acc\"\nmodparam(\"acc\", \"db_flag\", 1)\nrequest_route { exit; }\n";
    let e = TestServer::try_start(nodb, siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(e.join("\n").contains("db_url"), "{e:?}");
}
