//! sqlops end to end on a real SQLite file: what the Kamailio differential
//! test (`kamailio_parity_sqlops.rs`) cannot compare: `$sqlrows` (Kamailio's
//! db_sqlite has no row counts), reals, results kept per worker between
//! messages, a query built from the message with `{sql.val}`, and the
//! configuration errors.

use sr_testkit::{TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn cfg(db: &str, extra: &str) -> String {
    format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "sqlops"
modparam("sqlops", "sqlcon", "ca=>sqlite:///{db}")
{extra}
request_route {{
    if ($hdr(X-Q) != $null) {{
        $var(rc) = sql_query("ca", "$hdr(X-Q)", "ra");
        append_to_reply("X-R: rc=$var(rc) changed=$sqlrows(ca) v=$dbr(ra=>[0,0])\r\n");
    }} else {{
        # A value from the message, quoted for SQL.
        sql_query("ca", "insert into peers values ($(fU{{sql.val}}), $(hdr(X-Note){{sql.val}}))");
        sql_query("ca", "select note from peers where user = $(fU{{sql.val.str}})", "rb");
        append_to_reply("X-R: note=$dbr(rb=>[0,0]) kept=$dbr(ra=>rows)\r\n");
    }}
    sl_send_reply("200", "ok");
}}
"#
    )
}

fn ask(uac: &UdpPeer, srv: &TestServer, n: u32, hdr: &str) -> String {
    uac.send(
        srv.addr(),
        &format!("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKsq{n}\r\nFrom: <sip:ohara@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: sq-{n}\r\nCSeq: 1 OPTIONS\r\n{hdr}\r\nContent-Length: 0\r\n\r\n", uac.addr()),
    );
    uac.recv_final(T)
        .expect("an answer")
        .header("X-R")
        .unwrap_or_default()
}

#[test]
fn queries_count_changes_keep_results_and_quote_values() {
    let dir = std::env::temp_dir().join(format!("sr-sqlops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("s.db");
    let st = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(
            "CREATE TABLE peers (user TEXT, note TEXT); CREATE TABLE n (r REAL);
              INSERT INTO n VALUES (1.5); INSERT INTO n VALUES (2.0);",
        )
        .status()
        .expect("sqlite3");
    assert!(st.success());
    let srv = TestServer::start(&cfg(&db.display().to_string(), ""), siprouter::in_tree());
    let uac = UdpPeer::new();
    assert_eq!(
        ask(&uac, &srv, 1, "X-Q: update n set r = r + 1"),
        "rc=2 changed=2 v=<null>"
    );
    // A query counts the rows it returned (as MySQL does); a real is its
    // text.
    assert_eq!(
        ask(&uac, &srv, 2, "X-Q: select r from n order by r"),
        "rc=1 changed=2 v=2.5"
    );
    // The container keeps its rows for the next message of this worker;
    // values from the message go into the SQL quoted.
    assert_eq!(
        ask(&uac, &srv, 3, "X-Note: all fine"),
        "note=all fine kept=2"
    );
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("select user || '|' || note from peers")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ohara|all fine"
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn configuration_errors_are_reported() {
    let good = std::env::temp_dir().join(format!("sr-sqlops-cfg-{}.db", std::process::id()));
    let good = good.display().to_string();
    let unknown = cfg(&good, "").replace(
        "sql_query(\"ca\", \"$hdr(X-Q)\"",
        "sql_query(\"cb\", \"$hdr(X-Q)\"",
    );
    let e = TestServer::try_start(&unknown, siprouter::in_tree())
        .err()
        .expect("an unknown connection is refused");
    assert!(
        e.iter().any(|l| l.contains("invalid connection [cb]")),
        "{e:?}"
    );
    let dup = cfg(
        &good,
        r#"modparam("sqlops", "sqlcon", "ca=>sqlite:///tmp/y.db")"#,
    );
    let e = TestServer::try_start(&dup, siprouter::in_tree())
        .err()
        .expect("a duplicate connection is refused");
    assert!(
        e.iter()
            .any(|l| l.contains("duplicate connection name [ca]")),
        "{e:?}"
    );
    let _ = std::fs::remove_file(&good);
    // A database that cannot be opened (its folder cannot be made:
    // /etc/hostname is a file) stops the start, unless connect_mode is 1;
    // then the query says -2.
    let bad = "/etc/hostname/x.db";
    let e = TestServer::try_start(&cfg(bad, ""), siprouter::in_tree())
        .err()
        .expect("no database");
    assert!(
        e.iter().any(|l| l.contains("failed to connect [ca]")),
        "{e:?}"
    );
    let srv = TestServer::start(
        &cfg(bad, r#"modparam("sqlops", "connect_mode", 1)"#),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    assert_eq!(
        ask(&uac, &srv, 4, "X-Q: select 1"),
        "rc=-2 changed=<null> v=<null>"
    );
}
