//! Route blocks beyond request_route: onsend_route (sees the destination,
//! `drop` cancels the send), event_route[core:worker-one-init], and the
//! per-message advertised address and send socket in the Via.

use sr_testkit::{req, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

#[test]
fn onsend_route_sees_the_destination_and_can_drop() {
    let uas = UdpPeer::new();
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "textops"
request_route {{
    $du = "sip:127.0.0.1:{uas}";
    if (!forward()) {{ sl_send_reply("500", "not sent"); }}
    exit;
}}
onsend_route {{
    if ($rU == "blocked") {{ drop; }}
    if (to_port != {uas} || to_ip != 127.0.0.1 || snd_proto != UDP || snd_port != {{PORT}}) {{ drop; }}
}}
"#,
        uas = uas.addr().port()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &req(
            "MESSAGE",
            "sip:ok@example.com",
            uac.addr(),
            "a",
            "os1",
            1,
            &[],
            "",
        ),
    );
    assert!(uas.recv(T).is_some(), "allowed by onsend_route");
    uac.send(
        srv.addr(),
        &req(
            "MESSAGE",
            "sip:blocked@example.com",
            uac.addr(),
            "b",
            "os2",
            1,
            &[],
            "",
        ),
    );
    let r = uac.recv(T).expect("the script learns the send failed");
    assert_eq!(r.status(), Some(500));
    assert!(
        uas.recv(Duration::from_millis(300)).is_none(),
        "dropped in onsend_route"
    );
}

#[test]
fn worker_one_init_event_route_runs_once_at_start() {
    let cfg = r#"
listen=udp:127.0.0.1:{PORT}
children=3
loadmodule "sl"
loadmodule "pv"
event_route[core:worker-one-init] {
    $shv(inits) = $shv(inits) + 1;
}
request_route {
    sl_send_reply("200", "inits=$shv(inits)");
}
"#;
    let srv = TestServer::start(cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &req("OPTIONS", "sip:x@y", uac.addr(), "e", "ev1", 1, &[], ""),
    );
    assert_eq!(uac.recv(T).unwrap().msg.msg().reason(), Some("inits=1"));
}

#[test]
fn set_advertised_address_changes_the_via() {
    let uas = UdpPeer::new();
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
request_route {{
    set_advertised_address("proxy.example.com");
    set_advertised_port(5099);
    $du = "sip:127.0.0.1:{uas}";
    forward();
}}
"#,
        uas = uas.addr().port()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &req(
            "MESSAGE",
            "sip:a@example.com",
            uac.addr(),
            "v",
            "adv1",
            1,
            &[],
            "",
        ),
    );
    let got = uas.recv(T).expect("forwarded");
    let top = got.msg.msg().top_via().unwrap();
    assert_eq!(top.host_str, "proxy.example.com");
    assert_eq!(top.port, Some(5099));
}

#[test]
fn custom_config_variables_are_read_and_changed_at_run_time() {
    let cfg = r#"
listen=udp:127.0.0.1:{PORT}
children=1
pstn.gw_ip = "192.0.2.1" desc "PSTN gateway"
pstn.enabled = 1
loadmodule "sl"
request_route {
    sl_send_reply("200", "gw=$sel(cfg_get.pstn.gw_ip) on=$sel(cfg_get.pstn.enabled)");
}
"#;
    let srv = TestServer::start(cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    let ask = |cid: &str| {
        uac.send(
            srv.addr(),
            &req("OPTIONS", "sip:x@y", uac.addr(), cid, cid, 1, &[], ""),
        );
        uac.recv(T).unwrap().msg.msg().reason().unwrap().to_string()
    };
    assert_eq!(ask("cv1"), "gw=192.0.2.1 on=1");
    use sr_sdk::serde_json::json;
    assert_eq!(
        srv.rpc("cfg.get", &[json!("pstn"), json!("gw_ip")])
            .unwrap(),
        json!("192.0.2.1")
    );
    srv.rpc(
        "cfg.set",
        &[json!("pstn"), json!("gw_ip"), json!("198.51.100.7")],
    )
    .unwrap();
    srv.rpc("cfg.set", &[json!("pstn"), json!("enabled"), json!(0)])
        .unwrap();
    assert!(
        srv.rpc("cfg.set", &[json!("pstn"), json!("enabled"), json!("x")])
            .is_err(),
        "keeps its int type"
    );
    assert!(srv.rpc("cfg.get", &[json!("pstn"), json!("nope")]).is_err());
    assert_eq!(ask("cv2"), "gw=198.51.100.7 on=0");
}

#[test]
fn add_local_rport_and_set_recv_socket() {
    let uas = UdpPeer::new();
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
listen=udp:127.0.0.2:{{PORT}}
children=1
loadmodule "sl"
loadmodule "corex"
request_route {{
    if ($rU == "sock") {{
        set_recv_socket("udp:127.0.0.2:{{PORT}}");
        sl_send_reply("200", "at $Ri:$Rp");
        exit;
    }}
    add_local_rport();
    $du = "sip:127.0.0.1:{uas}";
    forward();
}}
"#,
        uas = uas.addr().port()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &req(
            "MESSAGE",
            "sip:a@example.com",
            uac.addr(),
            "lr",
            "lr1",
            1,
            &[],
            "",
        ),
    );
    let got = uas.recv(T).expect("forwarded");
    assert_eq!(
        got.msg.msg().top_via().unwrap().rport(),
        Some(None),
        "{}",
        got.text()
    );
    uac.send(
        srv.addr(),
        &req(
            "OPTIONS",
            "sip:sock@example.com",
            uac.addr(),
            "rs",
            "rs1",
            1,
            &[],
            "",
        ),
    );
    let r = uac.recv(T).expect("reply");
    assert_eq!(
        r.msg.msg().reason(),
        Some(format!("at 127.0.0.2:{}", srv.port).as_str())
    );
}

#[test]
fn core_onreply_route_drops_only_on_drop_or_a_failing_last_call() {
    let uas = UdpPeer::new();
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "textops"
request_route {{
    $du = "sip:127.0.0.1:{uas}";
    forward();
    exit;
}}
onreply_route {{
    if ($rs == 180) {{ drop; }}
    if ($rs == 183) {{
        is_present_hf("X-Not-There");
    }} else if (is_present_hf("X-Not-There")) {{
        append_hf("X-Never: 1\r\n");
    }}
}}
"#,
        uas = uas.addr().port()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &req(
            "INVITE",
            "sip:x@example.com",
            uac.addr(),
            "a",
            "orr1",
            1,
            &[],
            "",
        ),
    );
    let inv = uas.recv(T).expect("INVITE forwarded");
    for code in [180, 183, 200] {
        let reply = sr_testkit::answer(&inv, code, "Whatever", "t", &[]);
        uas.send(srv.addr(), &reply);
    }
    // 180: `drop`. 183: the route's last statement is a call that failed
    // (-1), which drops the reply in Kamailio too. 200: the route ends
    // with an `if` whose condition failed and whose branch did not run:
    // that ends the route with 1, and the reply goes on.
    let r = uac.recv(T).expect("a reply relayed");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert!(uac.recv(Duration::from_millis(300)).is_none());
    assert_eq!(srv.stat("core:drop_replies"), Some(2));
}
