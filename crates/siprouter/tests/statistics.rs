//! End-to-end: the statistics module's variables are server statistics
//! (`stats.get_statistics script:`, `stats.reset_statistics` keeping
//! `no_reset` ones), and a name the script uses without declaring it
//! stops the start with its location.

use sr_sdk::serde_json::json;
use sr_testkit::{req, TestServer, UdpPeer};
use std::time::Duration;

const CFG: &str = r#"listen=udp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "statistics"
modparam("statistics", "variable", "seen")
modparam("statistics", "variable", "kept/no_reset")
request_route {
    update_stat("seen", "+1");
    update_stat("kept", "+2");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn script_statistics_are_server_statistics() {
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let peer = UdpPeer::new();
    for i in 0..3 {
        let id = format!("s{i}");
        peer.send(
            srv.addr(),
            &req(
                "OPTIONS",
                "sip:x@example.com",
                peer.addr(),
                &id,
                &id,
                1,
                &[],
                "",
            ),
        );
        peer.recv_final(Duration::from_secs(3)).expect("a reply");
    }
    let stats = srv
        .rpc("stats.get_statistics", &[json!("script:")])
        .unwrap();
    // By group, then name, as Kamailio lists them.
    assert_eq!(stats, json!(["script:kept = 6", "script:seen = 3"]));
    srv.rpc("stats.reset_statistics", &[json!("script:")])
        .unwrap();
    let stats = srv
        .rpc("stats.get_statistics", &[json!("script:")])
        .unwrap();
    assert_eq!(stats, json!(["script:kept = 6", "script:seen = 0"]));
}

#[test]
fn an_undeclared_name_is_refused_with_its_location() {
    let cfg = CFG.replace(
        r#"update_stat("seen", "+1")"#,
        r#"update_stat("unseen", "+1")"#,
    );
    let e = TestServer::try_start(&cfg, siprouter::in_tree())
        .err()
        .expect("refused")
        .join("\n");
    assert!(e.contains("unseen") && e.contains(":7:"), "{e}");
    let cfg = CFG.replace(r#""+1""#, r#""0""#);
    let e = TestServer::try_start(&cfg, siprouter::in_tree())
        .err()
        .expect("refused")
        .join("\n");
    assert!(e.contains("update with 0"), "{e}");
}
