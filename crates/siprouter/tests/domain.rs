//! End-to-end: the domain module on SQLite: the domains served and their
//! attributes over RPC, a reload after the table changes, `myself`
//! following the table with `register_myself`, and start-up faults.

use sr_sdk::db::{DbConn, DbValue};
use sr_sdk::serde_json::json;
use sr_testkit::{req, TestServer, UdpPeer};
use std::time::Duration;

fn ask(srv: &TestServer, peer: &UdpPeer, host: &str, call: &str) -> String {
    let ruri = format!("sip:bob@{host}");
    peer.send(
        srv.addr(),
        &req("OPTIONS", &ruri, peer.addr(), call, call, 1, &[], ""),
    );
    let r = peer.recv_final(Duration::from_secs(3)).expect("a reply");
    r.msg.msg().reason().unwrap_or("").to_string()
}

#[test]
fn domains_reload_and_count_as_myself() {
    let db = sr_testkit::fresh_db("domain");
    let url = format!("sqlite://{}", db.display());
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    c.insert(
        "domain",
        &[
            ("domain", DbValue::str("example.com")),
            ("did", DbValue::str("d1")),
        ],
    )
    .unwrap();
    c.insert(
        "domain_attrs",
        &[
            ("did", DbValue::str("d1")),
            ("name", DbValue::str("tier")),
            ("type", DbValue::Int(0)),
            ("value", DbValue::str("3")),
        ],
    )
    .unwrap();
    drop(c);
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "db_sqlite"
loadmodule "domain"
modparam("domain", "db_url", "{url}")
modparam("domain", "register_myself", 1)
request_route {{
    if (uri == myself) {{ sl_send_reply("200", "Mine"); exit; }}
    sl_send_reply("404", "Not mine");
}}
"#
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let peer = UdpPeer::new();
    assert_eq!(ask(&srv, &peer, "example.com", "d1"), "Mine");
    assert_eq!(ask(&srv, &peer, "example.org", "d2"), "Not mine");
    let dump = srv.rpc("domain.dump", &[]).unwrap();
    assert_eq!(
        dump,
        json!({ "domains": [{ "domain": "example.com", "did": "d1" }],
                "attributes": [{ "did": "d1", "attrs": ["tier"] }] })
    );
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    c.insert("domain", &[("domain", DbValue::str("example.org"))])
        .unwrap();
    drop(c);
    assert_eq!(
        ask(&srv, &peer, "example.org", "d3"),
        "Not mine",
        "until reloaded"
    );
    srv.rpc("domain.reload", &[]).unwrap();
    assert_eq!(ask(&srv, &peer, "example.org", "d4"), "Mine");
    let domains = srv.rpc("domain.dump", &[]).unwrap()["domains"].clone();
    assert!(
        domains
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["did"] == "example.org"),
        "{domains}"
    );
}

#[test]
fn a_missing_db_url_is_refused() {
    let cfg = "listen=udp:127.0.0.1:{PORT}\nloadmodule \"domain\"\nrequest_route { drop; }\n";
    let e = TestServer::try_start(cfg, siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(e.join("\n").contains("db_url"), "{e:?}");
}
