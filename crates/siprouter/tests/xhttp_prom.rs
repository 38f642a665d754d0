//! xhttp_prom end to end, siprouter alone (the comparison with Kamailio is
//! kamailio_parity_xhttp_prom.rs): the RPC commands change and list the
//! metrics a scrape then shows, `all` lists every statistic, a too small
//! `xhttp_prom_buf_size` gives a 500, and bad declarations stop the start
//! with the reason.

use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, WsPeer};
use std::time::Duration;

fn config(extra: &str) -> String {
    format!(
        r#"
listen=tcp:127.0.0.1:{{PORT}}
listen=udp:127.0.0.1:{{PORT}}
tcp_accept_no_cl=yes
loadmodule "sl"
loadmodule "xhttp"
loadmodule "xhttp_prom"
modparam("xhttp_prom", "prom_counter", "name=hits; label=page")
modparam("xhttp_prom", "prom_gauge", "name=level")
modparam("xhttp_prom", "prom_histogram", "name=lat; buckets=1:2")
{extra}
request_route {{ sl_send_reply("200", "OK"); }}
event_route[xhttp:request] {{
    if (prom_check_uri()) {{ prom_dispatch(); }}
    xhttp_reply("404", "Not Found", "text/plain", "");
}}
"#
    )
}

fn scrape(srv: &TestServer) -> (u16, String) {
    let mut p = WsPeer::connect(srv.addr());
    p.http(
        "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
        Duration::from_secs(3),
    )
    .expect("an answer")
}

#[test]
fn rpc_changes_show_in_the_scrape() {
    let srv = TestServer::start(
        &config(r#"modparam("xhttp_prom", "xhttp_prom_stats", "all")"#),
        siprouter::in_tree(),
    );
    srv.rpc(
        "xhttp_prom.counter_inc",
        &[json!("hits"), json!(3), json!("home")],
    )
    .unwrap();
    srv.rpc(
        "xhttp_prom.counter_inc",
        &[json!("hits"), json!("2"), json!("home")],
    )
    .unwrap();
    srv.rpc("xhttp_prom.gauge_set", &[json!("level"), json!("-2.5")])
        .unwrap();
    srv.rpc("xhttp_prom.histogram_observe", &[json!("lat"), json!(1.5)])
        .unwrap();
    let e = srv
        .rpc("xhttp_prom.counter_inc", &[json!("nosuch"), json!(1)])
        .unwrap_err();
    assert!(
        e.to_string().contains("Failed to add 1 to counter: nosuch"),
        "{e}"
    );
    assert!(srv
        .rpc(
            "xhttp_prom.counter_inc",
            &[json!("hits"), json!(-1), json!("x")]
        )
        .is_err());
    assert!(
        srv.rpc("xhttp_prom.gauge_reset", &[json!("hits"), json!("home")])
            .is_err(),
        "a counter is not a gauge"
    );
    let listed = srv.rpc("xhttp_prom.metric_list_print", &[]).unwrap();
    let listed = listed.as_str().unwrap().to_string();
    assert!(
        listed.starts_with("# User defined metrics\nkamailio_hits{page=\"home\"} 5 "),
        "{listed}"
    );
    let (code, text) = scrape(&srv);
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("Content-Type: text/plain; version=0.0.4"),
        "{text}"
    );
    for want in [
        "kamailio_hits{page=\"home\"} 5 ",
        "kamailio_level -2.500000 ",
        "kamailio_lat_bucket{le=\"1.000000\"} 0 ",
        "kamailio_lat_bucket{le=\"2.000000\"} 1 ",
        "kamailio_lat_bucket{le=\"+Inf\"} 1 ",
        "kamailio_lat_sum 1.500000 ",
        "\n# Kamailio whole internal statistics\n",
        "kamailio_sl_200_replies ",
        "kamailio_core_",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    srv.rpc("xhttp_prom.counter_reset", &[json!("hits"), json!("home")])
        .unwrap();
    assert!(scrape(&srv).1.contains("kamailio_hits{page=\"home\"} 0 "));
}

#[test]
fn an_answer_larger_than_the_buffer_is_a_500() {
    let srv = TestServer::start(
        &config(r#"modparam("xhttp_prom", "xhttp_prom_buf_size", 40)"#),
        siprouter::in_tree(),
    );
    srv.rpc("xhttp_prom.gauge_set", &[json!("level"), json!(1)])
        .unwrap();
    let (code, text) = scrape(&srv);
    assert_eq!(code, 500, "{text}");
    assert!(text.ends_with("Internal Server Error"), "{text}");
}

#[test]
fn bad_declarations_stop_the_start() {
    for (extra, want) in [
        (
            r#"modparam("xhttp_prom", "prom_counter", "label=a")"#,
            "no name",
        ),
        (
            r#"modparam("xhttp_prom", "prom_gauge", "name=g; colour=red")"#,
            "unknown field 'colour'",
        ),
        (
            r#"modparam("xhttp_prom", "prom_histogram", "name=h; buckets=5:1")"#,
            "buckets must increase",
        ),
        (
            r#"modparam("xhttp_prom", "prom_counter", "name=c; label=a:b:c:d")"#,
            "at most three labels",
        ),
        (
            r#"modparam("xhttp_prom", "prom_counter", "name=hits")"#,
            "declared twice",
        ),
        (
            r#"modparam("xhttp_prom", "xhttp_prom_timeout", -1)"#,
            "invalid xhttp_prom_timeout",
        ),
    ] {
        let e = TestServer::try_start(&config(extra), siprouter::in_tree())
            .err()
            .expect("refused");
        assert!(e.join("\n").contains(want), "{extra}: {e:?}");
    }
}
