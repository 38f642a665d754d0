//! The pdt module end to end, what the Kamailio differential test
//! (`kamailio_parity_pdt.rs`) leaves out: a reload that fails keeps the
//! records in use, a load that fails stops the start with the reason,
//! and `check_domain` 0 taking a repeated domain.

use sr_testkit::{TestServer, UdpPeer};

fn cfg(url: &str, extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "pdt"
modparam("pdt", "db_url", "{url}")
{extra}
request_route {{
    prefix2domain();
    append_to_reply("X-R: $rc $ru\r\n");
    sl_send_reply("200", "ok");
}}
"#
    )
}

fn translate(srv: &TestServer, user: &str) -> String {
    let peer = UdpPeer::new();
    let req = sr_testkit::kamailio::options(&format!("pdt-{user}"), "")
        .replace("__VIA__", &peer.addr().to_string())
        .replace("sip:x@127.0.0.1", &format!("sip:{user}@x.example"));
    peer.final_header(srv.addr(), &req, "X-R")
}

#[test]
fn reloads_and_bad_rows() {
    let db = sr_testkit::fresh_db("pdt");
    let url = format!("sqlite://{}", db.display());
    sr_testkit::sqlite3(
        &db,
        "CREATE TABLE pdt (id INTEGER PRIMARY KEY, sdomain VARCHAR(255), prefix VARCHAR(32), domain VARCHAR(255));
         INSERT INTO pdt (sdomain, prefix, domain) VALUES ('*', '1', 'one.example'), ('*', '2', 'one.example');",
    );
    let srv = TestServer::start(
        &cfg(&url, r#"modparam("pdt", "check_domain", 0)"#),
        siprouter::in_tree(),
    );
    assert_eq!(translate(&srv, "1555"), "1 sip:555@one.example");
    assert_eq!(
        translate(&srv, "2555"),
        "1 sip:555@one.example",
        "a repeated domain, taken"
    );
    // A prefix outside char_list fails the reload; the records stay.
    sr_testkit::sqlite3(
        &db,
        "INSERT INTO pdt (sdomain, prefix, domain) VALUES ('*', '3a', 'x.example');",
    );
    let e = srv.rpc("pdt.reload", &[]).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "Reload Failed"));
    assert_eq!(translate(&srv, "1555"), "1 sip:555@one.example");
    drop(srv);
    // ... and the start.
    let e = TestServer::try_start(&cfg(&url, ""), siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(e.join("\n").contains("invalid char 1 in prefix"), "{e:?}");
}
