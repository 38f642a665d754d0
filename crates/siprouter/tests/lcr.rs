//! lcr end to end over real UDP, what the Kamailio differential test
//! (`kamailio_parity_lcr.rs`) leaves out: calls relayed by tm to the
//! gateways `load_gws` chose, failing over with `next_gw()` in
//! failure_route, a busy gateway taken out with `defunct_gw` (and back
//! with `lcr.defunct_gw`), a new rule used after `lcr.reload` while a
//! bad row keeps the tables in use, `inactivate_gw` and the OPTIONS pings
//! that bring the gateway back, and start-up faults refused with the
//! reason.

use sr_sdk::db::{DbConn, DbValue};
use sr_sdk::serde_json::json;
use sr_testkit::{answer, invite, TestServer, UdpPeer};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);

fn config(url: &str, extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=2
loadmodule "sl"
loadmodule "tm"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "lcr"
modparam("tm", "fr_timer", 1000)
modparam("tm", "wt_timer", 200)
modparam("lcr", "db_url", "{url}")
modparam("lcr", "gw_uri_avp", "$avp(gw_uri)")
modparam("lcr", "ruri_user_avp", "$avp(ruri_user)")
modparam("lcr", "lcr_id_avp", "$avp(lcr_id)")
modparam("lcr", "defunct_gw_avp", "$avp(defunct_gw)")
modparam("lcr", "defunct_capability", 1)
{extra}
request_route {{
    if (is_method("ACK")) {{ t_relay(); exit; }}
    load_gws(1);
    if ($rc != 1) {{ sl_send_reply("404", "No Route"); exit; }}
    if (!next_gw()) {{ sl_send_reply("503", "No gateway"); exit; }}
    t_on_failure("NEXT");
    t_relay();
}}
failure_route[NEXT] {{
    if (t_is_canceled()) {{ exit; }}
    if (t_check_status("503")) {{ route(FAILED); }}
    if (next_gw()) {{ t_on_failure("NEXT"); t_relay(); exit; }}
}}
route[FAILED] {{ {failed} }}
"#,
        failed = if extra.contains("ping_interval") {
            "inactivate_gw();"
        } else {
            "defunct_gw(60);"
        }
    )
}

fn gateway(c: &mut dyn DbConn, id: i32, port: u16, strip: i32, prefix: &str) {
    c.insert(
        "lcr_gw",
        &[
            ("id", DbValue::Int(id)),
            ("lcr_id", DbValue::Int(1)),
            ("gw_name", DbValue::str(format!("gw{id}"))),
            ("ip_addr", DbValue::str("127.0.0.1")),
            ("port", DbValue::Int(i32::from(port))),
            ("transport", DbValue::Int(1)),
            ("strip", DbValue::Int(strip)),
            ("prefix", DbValue::str(prefix)),
            ("flags", DbValue::Int(0)),
        ],
    )
    .unwrap();
}

fn rule(c: &mut dyn DbConn, id: i32, prefix: &str, targets: &[(i32, i32)]) {
    c.insert(
        "lcr_rule",
        &[
            ("id", DbValue::Int(id)),
            ("lcr_id", DbValue::Int(1)),
            ("prefix", DbValue::str(prefix)),
            ("stopper", DbValue::Int(0)),
            ("enabled", DbValue::Int(1)),
        ],
    )
    .unwrap();
    for (gw, priority) in targets {
        c.insert(
            "lcr_rule_target",
            &[
                ("lcr_id", DbValue::Int(1)),
                ("rule_id", DbValue::Int(id)),
                ("gw_id", DbValue::Int(*gw)),
                ("priority", DbValue::Int(*priority)),
                ("weight", DbValue::Int(1)),
            ],
        )
        .unwrap();
    }
}

/// The INVITE `gw` gets, checked to be for `user`.
fn invite_at(gw: &UdpPeer, user: &str) -> sr_testkit::Reply {
    let r = gw
        .recv_method("INVITE", T)
        .expect("an INVITE at the gateway");
    let line = r.text().lines().next().unwrap_or_default().to_string();
    let want = format!(
        "INVITE sip:{user}@127.0.0.1:{};transport=udp ",
        gw.addr().port()
    );
    assert!(line.starts_with(&want), "{line} (want {want})");
    r
}

#[test]
fn calls_fail_over_defunct_gateways_are_skipped_and_reloads_take_effect() {
    let db = sr_testkit::fresh_db("lcr");
    let url = format!("sqlite://{}", db.display());
    let gws = [UdpPeer::new(), UdpPeer::new(), UdpPeer::new()];
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    gateway(&mut c, 1, gws[0].addr().port(), 0, "");
    gateway(&mut c, 2, gws[1].addr().port(), 2, "0");
    gateway(&mut c, 3, gws[2].addr().port(), 0, "");
    rule(&mut c, 1, "49", &[(1, 0), (2, 1)]);
    let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
    let uac = UdpPeer::new();

    // The first gateway is busy: the call goes on to the second, which
    // gets the number stripped of 2 digits and prefixed with 0.
    uac.send(srv.addr(), &invite(&uac, "4930123", "l1"));
    let r = invite_at(&gws[0], "4930123");
    gws[0].send(r.from, &answer(&r, 503, "Busy Here", "g0", &[]));
    let r = invite_at(&gws[1], "030123");
    gws[1].send(r.from, &answer(&r, 200, "OK", "g1", &[]));
    let ok = uac
        .recv_status(200, T)
        .expect("200 from the second gateway");
    assert!(ok.header("To").unwrap().contains("tag=g1"));

    // The busy one was taken out for 60 s: the next call skips it.
    uac.send(srv.addr(), &invite(&uac, "4930124", "l2"));
    let r = invite_at(&gws[1], "030124");
    gws[1].send(r.from, &answer(&r, 200, "OK", "g1", &[]));
    assert!(uac.recv_status(200, T).is_some());
    assert!(gws[0]
        .recv_method("INVITE", Duration::from_millis(300))
        .is_none());
    let dump = srv.rpc("lcr.dump_gws", &[]).unwrap();
    let until = dump["gw"][0]["defunct_until"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    assert!(until > sr_sdk::db::now() + 50, "{dump}");

    // Back in use once its defunct time is over (set to now over RPC).
    assert_eq!(
        srv.rpc("lcr.defunct_gw", &[json!(1), json!(1), json!(0)]),
        Ok(json!(null))
    );
    uac.send(srv.addr(), &invite(&uac, "4930125", "l3"));
    let r = invite_at(&gws[0], "4930125");
    gws[0].send(r.from, &answer(&r, 200, "OK", "g0", &[]));
    assert!(uac.recv_status(200, T).is_some());

    // No rule for the prefix: 404 from the script; a new rule is used
    // once reloaded.
    rule(&mut c, 2, "33", &[(3, 0)]);
    uac.send(srv.addr(), &invite(&uac, "3312", "l4"));
    assert_eq!(
        uac.recv_final(T).and_then(|r| r.status()),
        Some(404),
        "not yet"
    );
    assert_eq!(srv.rpc("lcr.reload", &[]), Ok(json!(null)));
    uac.send(srv.addr(), &invite(&uac, "3313", "l5"));
    let r = invite_at(&gws[2], "3313");
    gws[2].send(r.from, &answer(&r, 200, "OK", "g2", &[]));
    assert!(uac.recv_status(200, T).is_some());

    // A row Kamailio would refuse fails the reload; the tables in use
    // stay.
    c.execute_batch("INSERT INTO lcr_gw (id, lcr_id, ip_addr, transport, flags) VALUES (9, 1, '10.0.0.9', 7, 0)")
        .unwrap();
    let e = srv.rpc("lcr.reload", &[]).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (500, "LCR Module Reload Failed")
    );
    uac.send(srv.addr(), &invite(&uac, "3314", "l6"));
    let r = invite_at(&gws[2], "3314");
    gws[2].send(r.from, &answer(&r, 200, "OK", "g2", &[]));
    assert!(uac.recv_status(200, T).is_some());
}

#[test]
fn inactive_gateways_come_back_when_pings_answer() {
    let db = sr_testkit::fresh_db("lcr-ping");
    let url = format!("sqlite://{}", db.display());
    let gws = [UdpPeer::new(), UdpPeer::new()];
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    gateway(&mut c, 1, gws[0].addr().port(), 0, "");
    gateway(&mut c, 2, gws[1].addr().port(), 0, "");
    rule(&mut c, 1, "", &[(1, 0), (2, 1)]);
    let extra = r#"modparam("lcr", "ping_interval", 10)
modparam("lcr", "ping_from", "sip:monitor@example.org")"#;
    let srv = TestServer::start(&config(&url, extra), siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(srv.addr(), &invite(&uac, "100", "p1"));
    let r = invite_at(&gws[0], "100");
    gws[0].send(r.from, &answer(&r, 503, "Busy Here", "g0", &[]));
    let r = invite_at(&gws[1], "100");
    gws[1].send(r.from, &answer(&r, 200, "OK", "g1", &[]));
    assert!(uac.recv_status(200, T).is_some());
    let state = |srv: &TestServer| srv.rpc("lcr.dump_gws", &[]).unwrap()["gw"][0]["state"].clone();
    assert_eq!(state(&srv), json!(2), "inactive after one failure");
    // Inactive: skipped.
    uac.send(srv.addr(), &invite(&uac, "101", "p2"));
    let r = invite_at(&gws[1], "101");
    gws[1].send(r.from, &answer(&r, 200, "OK", "g1", &[]));
    assert!(uac.recv_status(200, T).is_some());
    // Pinged from ping_from; a 200 makes it active again.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ping = loop {
        let r = gws[0].recv(Duration::from_secs(1));
        if let Some(r) = r.filter(|r| r.text().starts_with("OPTIONS ")) {
            break r;
        }
        assert!(Instant::now() < deadline, "no OPTIONS ping");
    };
    assert!(
        ping.text().contains("From: <sip:monitor@example.org>;tag="),
        "{}",
        ping.text()
    );
    gws[0].send(ping.from, &answer(&ping, 200, "OK", "p", &[]));
    let deadline = Instant::now() + T;
    while state(&srv) != json!(0) {
        assert!(Instant::now() < deadline, "not active again");
        std::thread::sleep(Duration::from_millis(50));
    }
    uac.send(srv.addr(), &invite(&uac, "102", "p3"));
    let r = invite_at(&gws[0], "102");
    gws[0].send(r.from, &answer(&r, 200, "OK", "g0", &[]));
    assert!(uac.recv_status(200, T).is_some());
}

#[test]
fn start_up_faults_are_refused_with_the_reason() {
    let db = sr_testkit::fresh_db("lcr-bad");
    let url = format!("sqlite://{}", db.display());
    drop(sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap());
    for (extra, want) in [
        (
            r#"modparam("lcr", "gw_uri_avp", "")"#,
            "AVP gw_uri_avp has not been defined",
        ),
        (
            r#"modparam("lcr", "ping_interval", 5)"#,
            "invalid ping_interval value '5'",
        ),
        (
            r#"modparam("lcr", "tag_avp", "$var(t)")"#,
            "malformed or non AVP definition",
        ),
        (
            r#"modparam("lcr", "mt_pv_values", "$avp(mt)")"#,
            "mt_pv_values",
        ),
        (
            r#"modparam("lcr", "priority_ordering", 2)"#,
            "invalid priority_ordering value",
        ),
    ] {
        let e = TestServer::try_start(&config(&url, extra), siprouter::in_tree())
            .err()
            .expect("refused");
        assert!(e.join("\n").contains(want), "{extra}: {e:?}");
    }
    // A gateway row with an address that is none.
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    c.execute_batch(
        "INSERT INTO lcr_gw (id, lcr_id, ip_addr, flags) VALUES (1, 1, 'gw.example.com', 0)",
    )
    .unwrap();
    let e = TestServer::try_start(&config(&url, ""), siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(
        e.join("\n")
            .contains("ip_addr <gw.example.com> at row <0> is invalid"),
        "{e:?}"
    );
}

/// `mt_pv_values`: rules that need a value the caller's user has in the
/// mtree (`mt_tvalue`), through the mtree module's mode 2 match (its
/// values also left in the AVP). Not compared with Kamailio: 5.6.3 asks
/// db_sqlite for one column too few and refuses every rule with an
/// `mt_tvalue` ("mt_tvalue is not string").
#[test]
fn mtree_values_choose_rules() {
    let db = sr_testkit::fresh_db("lcr-mt");
    let url = format!("sqlite://{}", db.display());
    drop(sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap());
    sr_testkit::sqlite3(
        &db,
        "INSERT INTO mtree (tprefix, tvalue) VALUES ('1','gold'), ('12','silver'), ('2','bronze');
INSERT INTO lcr_gw (id,lcr_id,gw_name,ip_addr,port,transport,flags) VALUES
 (1,1,'g1','10.0.0.1',5060,1,0),(2,1,'g2','10.0.0.2',5060,1,0),(3,1,'g3','10.0.0.3',5060,1,0);
INSERT INTO lcr_rule (id,lcr_id,prefix,from_uri,request_uri,mt_tvalue,stopper,enabled) VALUES
 (1,1,'',NULL,NULL,'silver',0,1),(2,1,'',NULL,NULL,'bronze',0,1),(3,1,'5',NULL,NULL,NULL,0,1);
INSERT INTO lcr_rule_target (lcr_id,rule_id,gw_id,priority,weight) VALUES
 (1,1,1,1,1),(1,2,2,2,1),(1,3,3,0,1);",
    );
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "mtree"
loadmodule "lcr"
modparam("mtree", "db_url", "{url}")
modparam("mtree", "mtree", "name=lcr;dbtable=mtree;type=0")
modparam("mtree", "pv_values", "$avp(mtv)")
modparam("lcr", "db_url", "{url}")
modparam("lcr", "gw_uri_avp", "$avp(gwu)")
modparam("lcr", "ruri_user_avp", "$avp(ruser)")
modparam("lcr", "mt_pv_values", "$avp(mtv)")
request_route {{
    if ($hdr(X-From) != $null) {{ load_gws(1, $hdr(X-U), $hdr(X-From)); }}
    else {{ load_gws(1, $hdr(X-U)); }}
    $var(r) = $rc;
    $var(g) = "";
    while (next_gw()) {{ $var(g) = $var(g) + $rd + " "; }}
    append_to_reply("X-R: r=$var(r) gws=$var(g)mtv=$cnt($avp(mtv)):$(avp(mtv)[0])/$(avp(mtv)[1])\r\n");
    sl_send_reply("200", "ok");
}}
"#
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    let ask = |n: usize, extra: &str| {
        let call = format!("mt-{n}");
        let h = format!("X-U: 555\r\n{extra}");
        let r =
            sr_testkit::kamailio::options(&call, &h).replace("__VIA__", &uac.addr().to_string());
        uac.final_header(srv.addr(), &r, "X-R")
    };
    // Caller 123: values gold and silver (shortest prefix first), so the
    // silver rule matches; the prefix-5 rule comes first (longer).
    assert_eq!(
        ask(1, "X-From: sip:123@x.example\r\n"),
        "r=1 gws=10.0.0.3 10.0.0.1 mtv=2:silver/gold"
    );
    assert_eq!(
        ask(2, "X-From: sip:2@x.example\r\n"),
        "r=1 gws=10.0.0.3 10.0.0.2 mtv=1:bronze/<null>"
    );
    // Not in the tree: rules with a value fail.
    assert_eq!(
        ask(3, "X-From: sip:9@x.example\r\n"),
        "r=1 gws=10.0.0.3 mtv=0:<null>/<null>"
    );
    // No caller: the condition is not tested (as Kamailio).
    assert_eq!(
        ask(4, ""),
        "r=1 gws=10.0.0.3 10.0.0.1 10.0.0.2 mtv=0:<null>/<null>"
    );
}
