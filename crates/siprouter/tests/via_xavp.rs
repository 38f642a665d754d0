//! corex's `via_add_xavp_params()` and `via_use_xavp_fields()` with the
//! core's `xavp_via_params` and `xavp_via_fields`: the Via a forwarded
//! request gets carries the XAVP's fields as parameters, and the address
//! and port of the other XAVP, statelessly and through tm; values that
//! would break the header are left out. (Kamailio 5.6.3 changes nothing
//! in its Via with the same configuration, so this is checked on
//! siprouter alone, against the core manual's description.)

use sr_testkit::{TestServer, UdpPeer};
use std::time::Duration;

fn cfg(uas: u16) -> String {
    format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
children=1
xavp_via_params="via"
xavp_via_fields="customvia"
loadmodule "sl"
loadmodule "tm"
loadmodule "pv"
loadmodule "corex"
request_route {{
    if ($hdr(X-T) == "p" || $hdr(X-T) == "both") {{
        $xavp(via=>a) = "1";
        $xavp(via[0]=>b) = 2;
        $xavp(via[0]=>c) = "";
        $xavp(via[0]=>bad) = "x;evil=1";
        via_add_xavp_params("1");
    }}
    if ($hdr(X-T) == "f" || $hdr(X-T) == "both") {{
        $xavp(customvia=>address) = "1.2.3.4";
        $xavp(customvia[0]=>port) = "5080";
        via_use_xavp_fields("1");
    }}
    if ($hdr(X-T) == "off") {{
        $xavp(via=>a) = "1";
        via_add_xavp_params("0");
    }}
    $du = "sip:127.0.0.1:{uas}";
    if ($hdr(X-S) == "1") {{ forward(); exit; }}
    t_relay();
}}
"#
    )
}

#[test]
fn via_gets_xavp_params_and_fields() {
    let uas = UdpPeer::new();
    let srv = TestServer::start(&cfg(uas.addr().port()), siprouter::in_tree());
    let uac = UdpPeer::new();
    let port = srv.port;
    let mut got = Vec::new();
    for (i, (t, s)) in [
        ("p", "0"),
        ("f", "0"),
        ("both", "1"),
        ("off", "0"),
        ("p", "1"),
    ]
    .iter()
    .enumerate()
    {
        let req = format!(
            "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKv{i}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: vx{i}\r\nCSeq: 1 MESSAGE\r\nX-T: {t}\r\nX-S: {s}\r\nContent-Length: 0\r\n\r\n",
            uac.addr()
        );
        uac.send(srv.addr(), &req);
        let r = uas
            .recv_matching(Duration::from_secs(3), |r| {
                r.msg.msg().call_id().ok() == Some(format!("vx{i}").as_str())
            })
            .expect("forwarded");
        let via = r.header("Via").unwrap_or_default();
        // The branch is the server's own.
        let (head, rest) = via.split_once(";branch=").unwrap();
        let params = rest.split_once(';').map_or("", |(_, p)| p);
        got.push(format!("{t}/{s}: {head} [{params}]"));
    }
    assert_eq!(
        got,
        [
            format!("p/0: SIP/2.0/UDP 127.0.0.1:{port} [c;b=2;a=1]"),
            "f/0: SIP/2.0/UDP 1.2.3.4:5080 []".to_string(),
            "both/1: SIP/2.0/UDP 1.2.3.4:5080 [c;b=2;a=1]".to_string(),
            format!("off/0: SIP/2.0/UDP 127.0.0.1:{port} []"),
            format!("p/1: SIP/2.0/UDP 127.0.0.1:{port} [c;b=2;a=1]"),
        ]
    );
}
