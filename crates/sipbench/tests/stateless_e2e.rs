//! End-to-end: sipbench drives a siprouter started in-process (stateless
//! relay with `forward()`, the reference config's routing) for about two
//! seconds, playing both UAC and UAS, and every call completes.

use sipbench::{Config, Scenario};
use sr_testkit::{free_port, TestServer};
use std::net::SocketAddr;
use std::time::Duration;

fn stateless_cfg(uas_port: u16) -> String {
    format!(
        r#"
children=2
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "maxfwd"
request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    $du = "sip:127.0.0.1:{uas_port}";
    forward();
    exit;
}}
"#
    )
}

#[test]
fn stateless_calls_all_complete() {
    let uas_port = free_port();
    let srv = TestServer::start(&stateless_cfg(uas_port), siprouter::in_tree());
    let cfg = Config {
        scenario: Scenario::Call,
        server: srv.addr(),
        uas: SocketAddr::from(([127, 0, 0, 1], uas_port)),
        rate: 200.0,
        max_calls: 400,
        duration: Duration::from_secs(20),
        drain: Duration::from_secs(5),
        ..Config::default()
    };
    let r = sipbench::run(&cfg).expect("sipbench ran");
    let text = r.text();
    assert_eq!(r.uac.started, 400, "{text}");
    assert_eq!(r.uac.failed(), 0, "{text}");
    assert_eq!(r.uac.completed, 400, "{text}");
    assert_eq!(r.uac.latency.count(), 400, "{text}");
    let uas = r.uas.as_ref().expect("UAS stats");
    assert_eq!(uas.no_ack, 0, "{text}");
    // 400 INVITEs, ACKs and BYEs reached the UAS through the proxy.
    assert!(uas.requests >= 1200, "{text}");
    assert!(r.send_period < Duration::from_secs(4), "{text}");
}
