//! debugger's `dbg_sip_msg` (the message as it would be sent, the
//! script's changes applied) and `dbg_pv_dump` (AVPs, script variables and
//! XAVPs as JSON) write to the log: the log lines are captured in the
//! test's process and checked.

use sr_testkit::{TestServer, UdpPeer};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

fn captured() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(Default::default)
}

const CFG: &str = r#"#!KAMAILIO
children=1
listen=udp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "debugger"
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    append_hf("P-Hint: My hint\r\n");
    remove_hf("X-Drop");
    dbg_sip_msg("L_ERR");
    $var(a) = $rc;
    $var(temp) = 1;
    $avp(more_avp) = 2;
    $avp(more_avp) = 3;
    $xavp(x=>more) = "bye";
    $xavp(x[0]=>more) = "hi";
    $xavu(hidden=>k) = "not an xavp";
    dbg_pv_dump(30, "L_ERR");
    $var(b) = $rc;
    append_to_reply("X-R: $var(a) $var(b)\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn sip_message_and_variables_are_dumped_to_the_log() {
    sr_sdk::log::set_sink(Box::new(|_lvl, _target, args| {
        if let Ok(mut l) = captured().lock() {
            l.push(args.to_string());
        }
    }));
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let peer = UdpPeer::new();
    let req = format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKdump\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: dump-1\r\nCSeq: 1 OPTIONS\r\nX-T: 1\r\nX-Drop: secret\r\nContent-Length: 0\r\n\r\n",
        peer.addr()
    );
    let r = peer.final_header(srv.addr(), &req, "X-R");
    assert_eq!(r, "1 1");
    std::thread::sleep(Duration::from_millis(100));
    let lines = captured().lock().unwrap().join("\n");
    let msg = lines
        .split("START OF SIP message debug")
        .nth(1)
        .expect("the message dumped");
    let msg = msg.split("END OF SIP message debug").next().unwrap();
    assert!(msg.contains("OPTIONS sip:x@127.0.0.1 SIP/2.0"), "{msg}");
    assert!(msg.contains("\r\nP-Hint: My hint"), "{msg}");
    assert!(!msg.contains("X-Drop"), "{msg}");
    assert!(lines.contains("\"$avp(more_avp)\":[3,2]"), "{lines}");
    assert!(lines.contains("\"$var(temp)\":1"), "{lines}");
    assert!(
        lines.contains("\"$xavp(x)\":[{\"more\":[\"hi\",\"bye\"]}]"),
        "{lines}"
    );
    assert!(!lines.contains("hidden"), "an XAVU is no XAVP: {lines}");
}
