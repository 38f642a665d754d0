//! mtree end to end on a real SQLite file: what the Kamailio differential
//! test (`kamailio_parity_mtree.rs`) cannot compare: integer values and
//! the type 1 count set as integers (Kamailio 5.6 sets empty strings),
//! several value columns packed (Kamailio 5.6 on db_sqlite fails to load
//! them), every tree of one table (`db_table`), `mt_ignore_duplicates`,
//! a reload that fails (the old trees stay), the RPC answers as JSON and
//! the configuration errors.

use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, UdpPeer};
use std::path::{Path, PathBuf};

fn db(name: &str, sql: &str) -> PathBuf {
    let path = sr_testkit::fresh_db(&format!("mtree-{name}"));
    sr_testkit::sqlite3(&path, sql);
    path
}

fn sql_run(path: &Path, sql: &str) {
    sr_testkit::sqlite3(path, sql);
}

const TABLES: &str = "CREATE TABLE mtree (id INTEGER PRIMARY KEY, tprefix VARCHAR(32), tvalue VARCHAR(128));
CREATE TABLE mtrees (id INTEGER PRIMARY KEY, tname VARCHAR(128), tprefix VARCHAR(32), tvalue VARCHAR(128));";

fn cfg(db: &Path, params: &str) -> String {
    format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "mtree"
modparam("mtree", "db_url", "sqlite:///{}")
{params}
request_route {{
    $var(v) = "-";
    $var(c) = "-";
    $var(mode) = $(hdr(X-Mode){{s.int}});
    $var(rc) = mt_match("$hdr(X-T)", "$hdr(X-M)", "$var(mode)");
    append_to_reply("X-R: rc=$var(rc) v=$var(v) c=$var(c) d0=$(avp(tdstid)[0])\r\n");
    sl_send_reply("200", "ok");
}}
"#,
        db.display()
    )
}

fn ask(uac: &UdpPeer, srv: &TestServer, n: u32, tree: &str, value: &str, mode: u32) -> String {
    uac.final_header(srv.addr(), &format!("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKmt{n}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: mt-{n}\r\nCSeq: 1 OPTIONS\r\nX-T: {tree}\r\nX-M: {value}\r\nX-Mode: {mode}\r\nContent-Length: 0\r\n\r\n", uac.addr()), "X-R")
}

#[test]
fn integers_counts_packed_columns_and_rpc_answers() {
    let path = db(
        "main",
        &format!("{TABLES}
CREATE TABLE routes (id INTEGER PRIMARY KEY, pfx TEXT, gw TEXT, prio INTEGER, note TEXT);
INSERT INTO routes (pfx, gw, prio, note) VALUES ('49', 'gw1', 5, NULL), ('4930', 'gw2', 7, 'berlin');
INSERT INTO mtrees (tname, tprefix, tvalue) VALUES ('mi', '1', '10'), ('mi', '12', '-12'), ('mw', '1', '1=10;2=20'), ('mw', '12', '3=30');"),
    );
    let params = r#"modparam("mtree", "mtree", "name=mi;dbtable=mtrees;type=2;multi=1")
modparam("mtree", "mtree", "name=mw;dbtable=mtrees;type=1;multi=1")
modparam("mtree", "mtree", "name=mc;dbtable=routes;cols='pfx,gw,prio,note'")
modparam("mtree", "pv_value", "$var(v)")
modparam("mtree", "pv_count", "$var(c)")"#;
    let srv = TestServer::start(&cfg(&path, params), siprouter::in_tree());
    let uac = UdpPeer::new();
    // An integer value arrives as an integer; the count of a type 1 match.
    assert_eq!(
        ask(&uac, &srv, 1, "mi", "123", 0),
        "rc=1 v=-12 c=- d0=<null>"
    );
    assert_eq!(ask(&uac, &srv, 2, "mw", "123", 0), "rc=1 v=- c=3 d0=1");
    // Several columns packed: NULL as '*', integers as text.
    assert_eq!(
        ask(&uac, &srv, 3, "mc", "4912", 0),
        "rc=1 v=gw1,5,* c=- d0=<null>"
    );
    assert_eq!(
        ask(&uac, &srv, 4, "mc", "49301", 0),
        "rc=1 v=gw2,7,berlin c=- d0=<null>"
    );
    let list = srv.rpc("mtree.list", &[json!("mi")]).expect("mtree.list");
    assert_eq!(
        list,
        json!([
            {"tname": "mi", "tprefix": "1", "tvalue": [10]},
            {"tname": "mi", "tprefix": "12", "tvalue": [-12]},
        ])
    );
    let m = srv
        .rpc("mtree.match", &[json!("mw"), json!("123"), json!(0)])
        .expect("mtree.match");
    assert_eq!(
        m,
        json!(["mw", {"PREFIX": "12", "WEIGHT": 30, "DSTID": 3}, {"PREFIX": "12", "WEIGHT": 20, "DSTID": 2}, {"PREFIX": "12", "WEIGHT": 10, "DSTID": 1}])
    );
    // A reload that fails (the table is gone) keeps the trees loaded.
    sql_run(&path, "ALTER TABLE routes RENAME TO gone;");
    let e = srv.rpc("mtree.reload", &[json!("mc")]).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "Mtree Reload Failed"));
    assert_eq!(
        ask(&uac, &srv, 5, "mc", "4912", 0),
        "rc=1 v=gw1,5,* c=- d0=<null>"
    );
    let e = srv
        .rpc("mtree.match", &[json!("mi"), json!("1")])
        .unwrap_err();
    assert_eq!(e.message, "Invalid Parameters");
}

#[test]
fn every_tree_of_one_table_and_ignored_duplicates() {
    let path = db(
        "table",
        &format!("{TABLES}
INSERT INTO mtrees (tname, tprefix, tvalue) VALUES ('b', '1', 'b-one'), ('a', '1', 'a-one'), ('a', '1', 'a-dup'), ('a', '2', 'a-two');"),
    );
    let params = r#"modparam("mtree", "db_table", "mtrees")
modparam("mtree", "mt_ignore_duplicates", 1)
modparam("mtree", "pv_value", "$var(v)")"#;
    let srv = TestServer::start(&cfg(&path, params), siprouter::in_tree());
    let uac = UdpPeer::new();
    assert_eq!(
        ask(&uac, &srv, 1, "a", "15", 0),
        "rc=1 v=a-one c=- d0=<null>"
    );
    assert_eq!(
        ask(&uac, &srv, 2, "b", "1", 0),
        "rc=1 v=b-one c=- d0=<null>"
    );
    let s = srv.rpc("mtree.summary", &[]).expect("summary");
    let names: Vec<_> = s
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a", "b"]);
    sql_run(
        &path,
        "INSERT INTO mtrees (tname, tprefix, tvalue) VALUES ('c', '3', 'c-three');",
    );
    assert_eq!(
        srv.rpc("mtree.reload", &[]).expect("reload"),
        json!("Ok. Mtrees reloaded.")
    );
    assert_eq!(
        ask(&uac, &srv, 3, "c", "3", 0),
        "rc=1 v=c-three c=- d0=<null>"
    );
}

#[test]
fn configuration_and_data_errors_stop_the_start() {
    let path = db(
        "errors",
        &format!(
            "{TABLES}
INSERT INTO mtree (tprefix, tvalue) VALUES ('1', 'a'), ('1', 'b');
INSERT INTO mtrees (tname, tprefix, tvalue) VALUES ('x', '1a', 'v'), ('i', '1', 'notint');"
        ),
    );
    for (params, what) in [
        (r#"modparam("mtree", "mtree", "name=m;type=5")"#, "unknown tree type <5>"),
        (r#"modparam("mtree", "mtree", "dbtable=mtree")"#, "invalid mtree name"),
        (
            "modparam(\"mtree\", \"mtree\", \"name=m\")\nmodparam(\"mtree\", \"mtree\", \"name=m\")",
            "duplicate tree with name [m]",
        ),
        ("", "no mtree defined"),
        (
            "modparam(\"mtree\", \"db_table\", \"mtrees\")\nmodparam(\"mtree\", \"mt_tree_type\", 3)",
            "unknown mt_tree_type <3>",
        ),
        (
            r#"modparam("mtree", "mtree", "name=m")"#,
            "prefix already allocated [1/b]",
        ),
        (
            r#"modparam("mtree", "mtree", "name=x;dbtable=mtrees;multi=1")"#,
            "invalid char at 1 in [1a]",
        ),
        (
            r#"modparam("mtree", "mtree", "name=i;dbtable=mtrees;multi=1;type=2")"#,
            "bad integer string <notint>",
        ),
        (
            "modparam(\"mtree\", \"db_table\", \"mtrees\")\nmodparam(\"mtree\", \"pv_values\", \"$var(x)\")",
            "pv_values must be an AVP",
        ),
    ] {
        let e = TestServer::try_start(&cfg(&path, params), siprouter::in_tree())
            .err()
            .unwrap_or_else(|| panic!("{params}: started"));
        assert!(e.iter().any(|l| l.contains(what)), "{params}: {e:?}");
    }
}
