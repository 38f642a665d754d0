//! drouting end to end: calls relayed by tm to the gateways a rule
//! names, failing over with `next_routing()` in failure_route, a reload
//! over RPC picking up new rows (and a bad row keeping the old data), the
//! random sort orders keeping every gateway, and start-up faults refused
//! with the reason.

use sr_sdk::db::{DbConn, DbValue};
use sr_sdk::serde_json::json;
use sr_testkit::{answer, invite, req, TestServer, UdpPeer};
use std::time::Duration;

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
loadmodule "drouting"
modparam("tm", "fr_timer", 1000)
modparam("tm", "wt_timer", 200)
modparam("drouting", "db_url", "{url}")
{extra}
request_route {{
    if (is_method("ACK")) {{ t_relay(); exit; }}
    if (!do_routing("1")) {{ sl_send_reply("404", "No Route"); exit; }}
    t_on_failure("NEXT");
    t_relay();
}}
failure_route[NEXT] {{
    if (t_is_canceled()) {{ exit; }}
    if (next_routing()) {{ t_on_failure("NEXT"); t_relay(); exit; }}
}}
"#
    )
}

fn gateway(c: &mut dyn DbConn, id: i32, address: &str, attrs: &str) {
    c.insert(
        "dr_gateways",
        &[
            ("gwid", DbValue::Int(id)),
            ("type", DbValue::Int(1)),
            ("address", DbValue::str(address)),
            ("strip", DbValue::Int(0)),
            ("pri_prefix", DbValue::str("")),
            ("attrs", DbValue::str(attrs)),
        ],
    )
    .unwrap();
}

fn rule(c: &mut dyn DbConn, id: i32, prefix: &str, gwlist: &str) {
    c.insert(
        "dr_rules",
        &[
            ("ruleid", DbValue::Int(id)),
            ("groupid", DbValue::str("1")),
            ("prefix", DbValue::str(prefix)),
            ("timerec", DbValue::str("")),
            ("priority", DbValue::Int(0)),
            ("routeid", DbValue::str("")),
            ("gwlist", DbValue::str(gwlist)),
        ],
    )
    .unwrap();
}

#[test]
fn calls_fail_over_to_the_next_gateway_and_reloads_take_effect() {
    let db = sr_testkit::fresh_db("drouting");
    let url = format!("sqlite://{}", db.display());
    let gws = [UdpPeer::new(), UdpPeer::new(), UdpPeer::new()];
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    for (i, g) in gws.iter().enumerate() {
        gateway(
            &mut c,
            i as i32 + 1,
            &g.addr().to_string(),
            &format!("gw{i}"),
        );
    }
    rule(&mut c, 1, "49", "1,2");
    let srv = TestServer::start(&config(&url, ""), siprouter::in_tree());
    let uac = UdpPeer::new();

    // The first gateway is busy: the call goes on to the second.
    uac.send(srv.addr(), &invite(&uac, "4930123", "d1"));
    let r = gws[0].recv_method("INVITE", T).expect("first gateway");
    assert!(r
        .text()
        .starts_with(&format!("INVITE sip:4930123@{} ", gws[0].addr())));
    gws[0].send(r.from, &answer(&r, 503, "Busy Here", "g0", &[]));
    let r = gws[1].recv_method("INVITE", T).expect("second gateway");
    assert!(r
        .text()
        .starts_with(&format!("INVITE sip:4930123@{} ", gws[1].addr())));
    gws[1].send(r.from, &answer(&r, 200, "OK", "g1", &[]));
    let ok = uac
        .recv_status(200, T)
        .expect("200 from the second gateway");
    assert!(ok.header("To").unwrap().contains("tag=g1"));

    // Both fail: the last failure is the caller's answer.
    uac.send(srv.addr(), &invite(&uac, "4930124", "d2"));
    let r = gws[0].recv_method("INVITE", T).expect("first gateway");
    gws[0].send(r.from, &answer(&r, 503, "Busy Here", "g0", &[]));
    let r = gws[1].recv_method("INVITE", T).expect("second gateway");
    gws[1].send(r.from, &answer(&r, 486, "Busy", "g1", &[]));
    let last = uac.recv_final(T).expect("a final answer");
    assert_eq!(last.status(), Some(486));

    // No rule for the prefix: 404 from the script.
    uac.send(srv.addr(), &invite(&uac, "3312", "d3"));
    assert_eq!(uac.recv_final(T).and_then(|r| r.status()), Some(404));

    // A new rule is used once reloaded.
    rule(&mut c, 2, "33", "3");
    uac.send(srv.addr(), &invite(&uac, "3313", "d4"));
    assert_eq!(
        uac.recv_final(T).and_then(|r| r.status()),
        Some(404),
        "not yet"
    );
    assert_eq!(srv.rpc("drouting.reload", &[]).unwrap(), json!("reload ok"));
    uac.send(srv.addr(), &invite(&uac, "3314", "d5"));
    let r = gws[2]
        .recv_method("INVITE", T)
        .expect("third gateway after the reload");
    gws[2].send(r.from, &answer(&r, 200, "OK", "g2", &[]));
    assert!(uac.recv_status(200, T).is_some());

    // A row of the wrong type fails the reload; the data in use stays.
    c.execute_batch(
        "INSERT INTO dr_gateways (gwid, type, address, strip) VALUES (9, 1, '10.0.0.9', 'two')",
    )
    .unwrap();
    assert_eq!(
        srv.rpc("drouting.reload", &[]).unwrap(),
        json!("failed to load routing data")
    );
    uac.send(srv.addr(), &invite(&uac, "3315", "d6"));
    let r = gws[2].recv_method("INVITE", T).expect("still routed");
    gws[2].send(r.from, &answer(&r, 200, "OK", "g2", &[]));
    assert!(uac.recv_status(200, T).is_some());
}

#[test]
fn random_orders_keep_every_gateway_once() {
    let db = sr_testkit::fresh_db("drouting-sort");
    let url = format!("sqlite://{}", db.display());
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    for i in 1..=3 {
        gateway(&mut c, i, &format!("10.0.0.{i}"), "");
    }
    rule(&mut c, 1, "1", "1,2,3");
    rule(&mut c, 2, "2", "1,2,3;1,2,3;1,2,3");
    let body = r#"
request_route {
    do_routing("1");
    $var(all) = $rd;
    while (use_next_gw()) { $var(all) = $var(all) + " " + $rd; }
    append_to_reply("X-All: $var(all)\r\n");
    sl_send_reply("200", "ok");
}
"#;
    for sort in [1, 2] {
        let cfg = format!(
            "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"sl\"\nloadmodule \"pv\"\nloadmodule \"textops\"\nloadmodule \"db_sqlite\"\nloadmodule \"drouting\"\nmodparam(\"drouting\", \"db_url\", \"{url}\")\nmodparam(\"drouting\", \"sort_order\", {sort})\n{body}"
        );
        let srv = TestServer::start(&cfg, siprouter::in_tree());
        let uac = UdpPeer::new();
        let mut firsts = std::collections::HashSet::new();
        for n in 0..40 {
            let user = if n % 2 == 0 { "100" } else { "200" };
            uac.send(
                srv.addr(),
                &req(
                    "OPTIONS",
                    &format!("sip:{user}@x"),
                    uac.addr(),
                    &format!("s{sort}{n}"),
                    &format!("s{sort}-{n}"),
                    1,
                    &[],
                    "",
                ),
            );
            let r = uac.recv_status(200, T).expect("answer");
            let all = r.header("X-All").unwrap();
            let mut got: Vec<&str> = all.split(' ').collect();
            firsts.insert(got[0].to_string());
            got.sort_unstable();
            // sort_order 1 shuffles within each group (three groups of
            // three for "200"); 2 takes one per group, none twice (so one
            // for "100", whose list is one group).
            if sort == 2 && user == "100" {
                assert_eq!(got.len(), 1, "{all}");
                assert!(["10.0.0.1", "10.0.0.2", "10.0.0.3"].contains(&got[0]));
                continue;
            }
            let copies = if sort == 1 && user == "200" { 3 } else { 1 };
            let want: Vec<&str> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
                .iter()
                .flat_map(|g| std::iter::repeat_n(*g, copies))
                .collect();
            assert_eq!(got, want, "sort {sort}: {all}");
        }
        assert!(firsts.len() > 1, "sort_order {sort} shuffles: {firsts:?}");
    }
}

#[test]
fn start_up_faults_are_refused_with_the_reason() {
    let db = sr_testkit::fresh_db("drouting-bad");
    let url = format!("sqlite://{}", db.display());
    drop(sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap());
    for (extra, want) in [
        (
            r#"modparam("drouting", "enable_keepalive", 1)"#,
            "enable_keepalive",
        ),
        (
            r#"modparam("drouting", "sort_order", 3)"#,
            "sort_order must be 0, 1 or 2",
        ),
        (
            r#"modparam("drouting", "ruri_avp", "$var(x)")"#,
            "is not an AVP",
        ),
    ] {
        let e = TestServer::try_start(&config(&url, extra), siprouter::in_tree())
            .err()
            .expect("refused");
        assert!(e.join("\n").contains(want), "{extra}: {e:?}");
    }
}
