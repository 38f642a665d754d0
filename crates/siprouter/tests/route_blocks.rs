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
