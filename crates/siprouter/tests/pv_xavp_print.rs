//! pv's `pv_xavp_print`, `pv_xavu_print` and `pv_xavi_print` write each
//! list apart (XAVUs and XAVIs are kept in the message's XAVPs under
//! names a script cannot write, which `pv_xavp_print` must not show): the
//! log lines are captured in the test's process and checked.

use sr_testkit::{TestServer, UdpPeer};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

fn captured() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(Default::default)
}

const CFG: &str = r#"#!KAMAILIO
children=1
debug=2
listen=udp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $xavp(p=>a) = "one";
    $xavp(p[0]=>b) = 2;
    $xavu(u=>k) = "uval";
    $xavi(Ci=>Key) = "ival";
    pv_xavp_print();
    pv_xavu_print();
    pv_xavi_print();
    append_to_reply("X-R: $rc\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn each_list_is_printed_apart() {
    sr_sdk::log::set_sink(Box::new(|_lvl, _target, args| {
        if let Ok(mut l) = captured().lock() {
            l.push(args.to_string());
        }
    }));
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let peer = UdpPeer::new();
    let req = format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKpr\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: print-1\r\nCSeq: 1 OPTIONS\r\nX-T: 1\r\nContent-Length: 0\r\n\r\n",
        peer.addr()
    );
    assert_eq!(peer.final_header(srv.addr(), &req, "X-R"), "1");
    std::thread::sleep(Duration::from_millis(100));
    let lines: Vec<String> = captured()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("XAV"))
        .cloned()
        .collect();
    assert_eq!(
        lines,
        vec![
            "XAVP p[0]: b=2, a=one".to_string(),
            "XAVU u[0]: k=uval".to_string(),
            "XAVI ci[0]: key=ival".to_string(),
        ],
        "{lines:#?}"
    );
}
