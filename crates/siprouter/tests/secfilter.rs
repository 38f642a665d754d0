//! secfilter end to end on a real SQLite file: what the Kamailio
//! differential test (`kamailio_parity_secfilter.rs`) leaves out: a
//! destination added over RPC (Kamailio 5.6.3 prints stray bytes in that
//! answer) and then blocked, `secfilter.print` without a section
//! (Kamailio 5.6.3 crashes), the table version check, a bad row, and
//! JSON-RPC answers.

use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, UdpPeer};
use std::path::{Path, PathBuf};

fn db(name: &str, rows: &str, version: bool) -> PathBuf {
    let path = sr_testkit::fresh_db(&format!("secf-{name}"));
    let mut sql = "CREATE TABLE version (table_name VARCHAR(32), table_version INTEGER);
CREATE TABLE secfilter (id INTEGER PRIMARY KEY, action SMALLINT, type SMALLINT, data VARCHAR(64));"
        .to_string();
    if version {
        sql.push_str("INSERT INTO version VALUES ('secfilter', 1);");
    }
    sql.push_str(rows);
    sr_testkit::sqlite3(&path, &sql);
    path
}

fn cfg(db: &Path) -> String {
    format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "secfilter"
modparam("secfilter", "db_url", "sqlite:///{}")
request_route {{
    $var(d) = secf_check_dst("555123123");
    $var(u) = secf_check_ua();
    append_to_reply("X-R: d=$var(d) u=$var(u)\r\n");
    sl_send_reply("200", "ok");
}}
"#,
        db.display()
    )
}

fn ask(uac: &UdpPeer, srv: &TestServer, n: u32) -> String {
    uac.final_header(srv.addr(), &format!("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKsf{n}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: sf-{n}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n", uac.addr()), "X-R")
}

#[test]
fn rpc_additions_apply_and_print_shows_every_section() {
    let path = db(
        "rpc",
        "INSERT INTO secfilter (action, type, data) VALUES (1, 4, 'alice');",
        true,
    );
    let srv = TestServer::start(&cfg(&path), siprouter::in_tree());
    let uac = UdpPeer::new();
    assert_eq!(ask(&uac, &srv, 1), "d=1 u=1");
    assert_eq!(
        srv.rpc("secfilter.add_dst", &[json!(555123123)]).unwrap(),
        json!("Values (555123123) inserted into blacklist destinations")
    );
    assert_eq!(
        srv.rpc("secfilter.add_bl", &[json!("ua"), json!("friendly")])
            .unwrap(),
        json!("Values (ua, friendly) inserted into blacklist")
    );
    assert_eq!(ask(&uac, &srv, 2), "d=-2 u=-2");
    let all = srv.rpc("secfilter.print", &[]).unwrap();
    let text: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for want in [
        "Destinations",
        "    0001 -> 555123123",
        "User-agent",
        "    0001 -> friendly",
        "User",
        "    0001 -> alice",
    ] {
        assert!(text.contains(&want), "{want}: {text:?}");
    }
    // A reload drops what RPC added.
    assert_eq!(
        srv.rpc("secfilter.reload", &[]).unwrap(),
        json!("Data reloaded")
    );
    assert_eq!(ask(&uac, &srv, 3), "d=1 u=1");
    let e = srv.rpc("secfilter.add_dst", &[json!("x")]).unwrap_err();
    assert_eq!(e.code, 500);
    assert!(e
        .message
        .starts_with("Invalid Parameters. Usage: secfilter.add_dst number"));
}

#[test]
fn the_table_version_and_bad_rows_stop_the_start() {
    let unversioned = db("nover", "", false);
    let e = TestServer::try_start(&cfg(&unversioned), siprouter::in_tree())
        .err()
        .expect("a table without its version row is refused");
    assert!(
        e.iter()
            .any(|l| l.contains("has no row in table 'version'")),
        "{e:?}"
    );
    let bad = db(
        "bad",
        "INSERT INTO secfilter (action, type, data) VALUES (7, 0, 'x');",
        true,
    );
    let e = TestServer::try_start(&cfg(&bad), siprouter::in_tree())
        .err()
        .expect("a bad action is refused");
    assert!(
        e.iter().any(|l| l.contains("Unknown action value 7")),
        "{e:?}"
    );
}

#[test]
fn a_row_with_an_empty_value_is_left_out() {
    // Kept, the empty allowed user agent would match every user agent.
    let path = db(
        "empty",
        "INSERT INTO secfilter (action, type, data) VALUES (1, 0, ''), (0, 0, 'friendly');",
        true,
    );
    let srv = TestServer::start(&cfg(&path), siprouter::in_tree());
    let uac = UdpPeer::new();
    assert_eq!(ask(&uac, &srv, 1), "d=1 u=-2");
}
