//! End-to-end: the dialplan module on SQLite: translations over RPC
//! (`dialplan.translate`, `dialplan.dump` in Kamailio's shapes), a reload
//! after the table changes, a reload refused by a bad row (the rules
//! loaded before stay), `reload_delta`, and start-up faults.

use sr_sdk::db::{DbConn, DbValue};
use sr_sdk::serde_json::json;
use sr_testkit::{req, TestServer, UdpPeer};
use std::time::Duration;

/// `(dpid, pr, match_op, match_exp, subst_exp, repl_exp, attrs)`.
type Rule<'a> = (i32, i32, i32, &'a str, &'a str, &'a str, &'a str);

fn rule(url: &str, (dpid, pr, op, m, s, r, a): Rule<'_>) {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    c.insert(
        "dialplan",
        &[
            ("dpid", DbValue::Int(dpid)),
            ("pr", DbValue::Int(pr)),
            ("match_op", DbValue::Int(op)),
            ("match_exp", DbValue::str(m)),
            ("match_len", DbValue::Int(0)),
            ("subst_exp", DbValue::str(s)),
            ("repl_exp", DbValue::str(r)),
            ("attrs", DbValue::str(a)),
        ],
    )
    .unwrap();
}

fn config(url: &str, extra: &str) -> String {
    format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "dialplan"
modparam("dialplan", "db_url", "{url}")
modparam("dialplan", "attrs_pvar", "$avp(dpattrs)")
{extra}
request_route {{
    if (dp_translate("1")) {{
        append_to_reply("X-Attrs: $avp(dpattrs)\r\n");
        sl_send_reply("200", "$rU");
        exit;
    }}
    sl_send_reply("404", "No rule");
}}
"#
    )
}

/// The reason phrase the server answers a call to `user` with, and the
/// attributes it put in `X-Attrs`.
fn ask(srv: &TestServer, peer: &UdpPeer, user: &str, id: &str) -> (String, Option<String>) {
    let ruri = format!("sip:{user}@example.com");
    peer.send(
        srv.addr(),
        &req("OPTIONS", &ruri, peer.addr(), id, id, 1, &[], ""),
    );
    let r = peer.recv_final(Duration::from_secs(3)).expect("a reply");
    (
        r.msg.msg().reason().unwrap_or("").to_string(),
        r.header("X-Attrs"),
    )
}

/// The reason phrase the server answers a call to `user` with.
fn call(srv: &TestServer, peer: &UdpPeer, user: &str, id: &str) -> String {
    ask(srv, peer, user, id).0
}

#[test]
fn rules_translate_over_sip_and_rpc_and_reload() {
    let db = sr_testkit::fresh_db("dialplan");
    let url = format!("sqlite://{}", db.display());
    rule(&url, (1, 1, 1, "^0[1-9]", "^0(.*)$", "+49\\1", "nat"));
    rule(&url, (1, 2, 0, "112", "", "sos", "emergency"));
    let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
    let peer = UdpPeer::new();
    assert_eq!(
        ask(&srv, &peer, "0301234", "c1"),
        ("+49301234".to_string(), Some("nat".to_string()))
    );
    assert_eq!(
        ask(&srv, &peer, "112", "c2"),
        ("sos".to_string(), Some("emergency".to_string()))
    );
    assert_eq!(call(&srv, &peer, "999", "c3"), "No rule");

    assert_eq!(
        srv.rpc("dialplan.translate", &[json!(1), json!("0891")])
            .unwrap(),
        json!({ "Output": "+49891", "Attributes": "nat" })
    );
    let e = srv
        .rpc("dialplan.translate", &[json!(1), json!("999")])
        .unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "No translation"));
    let e = srv
        .rpc("dialplan.translate", &[json!(7), json!("0891")])
        .unwrap_err();
    assert_eq!(e.message, "Dialplan ID not matched");
    let e = srv.rpc("dialplan.translate", &[json!(1)]).unwrap_err();
    assert_eq!(e.message, "Invalid parameters");
    assert_eq!(
        srv.rpc("dialplan.dump", &[json!(1)]).unwrap(),
        json!({ "DPID": 1, "ENTRIES": [
            { "ENTRY": { "PRIO": 1, "MATCHOP": 1, "MATCHEXP": "^0[1-9]", "MATCHLEN": 0,
              "SUBSTEXP": "^0(.*)$", "REPLEXP": "+49\\1", "ATTRS": "nat" } },
            { "ENTRY": { "PRIO": 2, "MATCHOP": 0, "MATCHEXP": "112", "MATCHLEN": 0,
              "SUBSTEXP": null, "REPLEXP": "sos", "ATTRS": "emergency" } },
        ]})
    );

    // A new rule is used once reloaded.
    rule(&url, (1, 3, 2, "9*", "", "nine", "glob"));
    assert_eq!(call(&srv, &peer, "999", "c4"), "No rule", "until reloaded");
    srv.rpc("dialplan.reload", &[]).unwrap();
    assert_eq!(call(&srv, &peer, "999", "c5"), "nine");
    // reload_delta (5 s by default) refuses a second reload at once.
    let e = srv.rpc("dialplan.reload", &[]).unwrap_err();
    assert_eq!(e.message, "ongoing reload");
    drop(srv);

    // A bad row fails a reload and keeps the rules already loaded.
    let srv = TestServer::start(
        &config(&url, r#"modparam("dialplan", "reload_delta", 0)"#),
        siprouter::in_tree(),
    );
    rule(&url, (1, 4, 1, "([", "", "", ""));
    let e = srv.rpc("dialplan.reload", &[]).unwrap_err();
    assert_eq!(e.message, "Dialplan Reload Failed");
    assert_eq!(call(&srv, &peer, "999", "c6"), "nine");
    assert_eq!(call(&srv, &peer, "0301", "c7"), "+49301");
}

#[test]
fn start_up_faults_are_refused_with_the_reason() {
    let db = sr_testkit::fresh_db("dialplan-bad");
    let url = format!("sqlite://{}", db.display());
    rule(&url, (1, 1, 1, "^0", "^0(.*)$", "\\2", ""));
    let e = TestServer::try_start(&config(&url, ""), siprouter::in_tree())
        .err()
        .expect("refused");
    let e = e.join("\n");
    assert!(e.contains("refers to 2 sub-expressions"), "{e}");

    let db = sr_testkit::fresh_db("dialplan-pvar");
    let url = format!("sqlite://{}", db.display());
    let cfg = config(&url, r#"modparam("dialplan", "attrs_pvar", "$ru")"#);
    let e = TestServer::try_start(&cfg, siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(e.join("\n").contains("attrs_pvar"), "{e:?}");
}
