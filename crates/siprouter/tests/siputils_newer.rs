//! siputils functions of Kamailio releases after 5.6 (so not compared
//! with the Debian 5.6.3 the parity tests run): `uri_param_value(name,
//! pv)` and `is_first_hop_mode(mode)`.

use sr_testkit::{TestServer, UdpPeer};

const CFG: &str = r#"#!KAMAILIO
children=1
listen=udp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "siputils"
request_route {
    if ($hdr(X-P) == $null) { sl_send_reply("200", "up"); exit; }
    $var(v) = "unset";
    uri_param_value("$hdr(X-P)", "$var(v)");
    $var(r) = $rc;
    is_first_hop_mode("1");
    $var(h) = $rc;
    append_to_reply("X-R: $var(r) [$var(v)] $var(h)\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn param_values_and_first_hop_mode() {
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let peer = UdpPeer::new();
    let ask = |p: &str, extra_via: bool| {
        let via2 = if extra_via {
            "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKprev\r\n"
        } else {
            ""
        };
        let req = format!(
            "OPTIONS sip:alice@example.com;transport=TCP;lr;gr=urn:x SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{p}{extra_via}\r\n{via2}From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: pv-{p}-{extra_via}\r\nCSeq: 1 OPTIONS\r\nX-P: {p}\r\nContent-Length: 0\r\n\r\n",
            peer.addr()
        );
        peer.final_header(srv.addr(), &req, "X-R")
    };
    assert_eq!(ask("transport", false), "1 [TCP] 1");
    assert_eq!(ask("TRANSPORT", false), "1 [TCP] 1", "names ignoring case");
    assert_eq!(ask("lr", false), "1 [] 1", "no value: empty");
    assert_eq!(ask("gr", false), "1 [urn:x] 1");
    assert_eq!(ask("user", false), "-1 [unset] 1");
    assert_eq!(ask("lr", true), "1 [] -1", "two Vias: not the first hop");
}
