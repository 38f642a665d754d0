//! userblocklist end to end on a real SQLite file made by `siprouter db
//! init`'s tables: what the Kamailio differential test
//! (`kamailio_parity_userblocklist.rs`) does not cover: a user's list
//! changed in the database applies at the next check while the global
//! list waits for a reload, a reload that fails keeps the loaded list,
//! a number too long, and the configuration errors.

use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, UdpPeer};
use std::path::{Path, PathBuf};

fn sql(path: &Path, text: &str) {
    sr_testkit::sqlite3(path, text);
}

fn db(name: &str) -> PathBuf {
    let path = sr_testkit::fresh_db(&format!("ubl-{name}"));
    sql(
        &path,
        "CREATE TABLE userblocklist (id INTEGER PRIMARY KEY, username VARCHAR(64), domain VARCHAR(64), prefix VARCHAR(64), allowlist SMALLINT);
CREATE TABLE globalblocklist (id INTEGER PRIMARY KEY, prefix VARCHAR(64), allowlist SMALLINT, description VARCHAR(255));
INSERT INTO userblocklist (username, domain, prefix, allowlist) VALUES ('alice', 'x', '0900', 0);
INSERT INTO globalblocklist (prefix, allowlist) VALUES ('00', 0);",
    );
    path
}

fn cfg(db: &Path, extra: &str) -> String {
    format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "userblocklist"
modparam("userblocklist", "db_url", "sqlite:///{}")
{extra}
request_route {{
    $var(u) = check_user_blocklist("alice", "x");
    $var(g) = check_blocklist();
    append_to_reply("X-R: u=$var(u) g=$var(g)\r\n");
    sl_send_reply("200", "ok");
}}
"#,
        db.display()
    )
}

fn ask(uac: &UdpPeer, srv: &TestServer, n: u32, user: &str) -> String {
    uac.final_header(srv.addr(), &format!("INVITE sip:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKub{n}\r\nFrom: <sip:alice@x>;tag=1\r\nTo: <sip:{user}@x>\r\nCall-ID: ub-{n}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", uac.addr()), "X-R")
}

#[test]
fn user_lists_apply_at_once_and_global_lists_on_reload() {
    let path = db("reload");
    let srv = TestServer::start(&cfg(&path, ""), siprouter::in_tree());
    let uac = UdpPeer::new();
    assert_eq!(ask(&uac, &srv, 1, "0900123"), "u=-1 g=1");
    assert_eq!(ask(&uac, &srv, 2, "0049"), "u=1 g=-1");
    // The user's list is read at each check; the global one is kept.
    sql(
        &path,
        "INSERT INTO userblocklist (username, domain, prefix, allowlist) VALUES ('alice', 'x', '09001', 1);
DELETE FROM globalblocklist;",
    );
    assert_eq!(ask(&uac, &srv, 3, "0900123"), "u=1 g=1");
    assert_eq!(ask(&uac, &srv, 4, "0049"), "u=1 g=-1");
    assert_eq!(
        srv.rpc("userblocklist.reload_blocklist", &[]).unwrap(),
        json!("200 ok")
    );
    assert_eq!(ask(&uac, &srv, 5, "0049"), "u=1 g=1");
    // A reload that fails keeps what was loaded.
    sql(
        &path,
        "INSERT INTO globalblocklist (prefix, allowlist) VALUES ('01', 0);",
    );
    srv.rpc("userblocklist.reload_blocklist", &[]).unwrap();
    sql(&path, "ALTER TABLE globalblocklist RENAME TO gone;");
    let e = srv.rpc("userblocklist.reload_blocklist", &[]).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "Reload failed"));
    assert_eq!(ask(&uac, &srv, 6, "0123"), "u=1 g=-1");
    assert_eq!(
        srv.rpc("userblocklist.dump_blocklist", &[]).unwrap(),
        json!([{"prefix": "01", "allowlist": "0"}])
    );
    // A number longer than 31 characters is not checked: -1.
    assert_eq!(ask(&uac, &srv, 7, &"1".repeat(32)), "u=-1 g=-1");
}

#[test]
fn configuration_errors_are_reported() {
    let path = db("errors");
    let e = TestServer::try_start(
        &cfg(&path, r#"modparam("userblocklist", "match_mode", 16)"#),
        siprouter::in_tree(),
    )
    .err()
    .expect("a bad match_mode is refused");
    assert!(
        e.iter().any(|l| l.contains("match_mode must be 10 or 128")),
        "{e:?}"
    );
    let empty = cfg(&path, "").replace(
        "check_user_blocklist(\"alice\", \"x\")",
        "check_user_blocklist(\"\", \"x\")",
    );
    let e = TestServer::try_start(&empty, siprouter::in_tree())
        .err()
        .expect("an empty user is refused");
    assert!(e.iter().any(|l| l.contains("no parameter 1")), "{e:?}");
}
