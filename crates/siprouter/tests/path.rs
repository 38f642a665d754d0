//! End-to-end: path's address after `msg_apply_changes()`: the changes
//! that wait for the outgoing socket are made for the socket the request
//! came in on (Kamailio 5.6.3 writes an empty host there:
//! `Path: <sip:u9@;lr>`, which siprouter does not copy).

use sr_testkit::{req, TestServer, UdpPeer};
use std::time::Duration;

#[test]
fn path_after_msg_apply_changes_has_the_inbound_address() {
    let uas = UdpPeer::new();
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "textopsx"
loadmodule "path"
request_route {{
    add_path("u9");
    msg_apply_changes();
    forward("{}");
}}
"#,
        uas.addr()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &req(
            "REGISTER",
            "sip:example.com",
            uac.addr(),
            "p1",
            "p1",
            1,
            &[],
            "",
        ),
    );
    let got = uas.recv(Duration::from_secs(3)).expect("forwarded");
    assert_eq!(
        got.header("Path").as_deref(),
        Some(format!("<sip:u9@127.0.0.1:{};lr>", srv.port).as_str())
    );
    assert!(!got.text().contains('\u{1}'), "{}", got.text());
}
