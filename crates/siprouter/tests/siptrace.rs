//! siptrace on siprouter alone: tracing switched by `trace_on` and the
//! `siptrace.status` RPC, copies as plain SIP and as HEPv2, `trace_mode=4`
//! mirroring every message as it is, and what is not built refused at
//! start. The HEPv3 packets and the table rows are compared with
//! Kamailio's in kamailio_parity_siptrace.rs.

use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, UdpPeer};
use std::net::UdpSocket;
use std::time::Duration;

fn cfg(capture: &UdpSocket, params: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "siptrace"
modparam("siptrace", "duplicate_uri", "sip:{}")
modparam("siptrace", "trace_to_database", 0)
{params}
request_route {{
    $var(rc) = sip_trace();
    append_to_reply("X-RC: $var(rc)\r\n");
    sl_send_reply("200", "OK");
}}
"#,
        capture.local_addr().unwrap()
    )
}

fn options(peer: &UdpPeer, call: &str) -> String {
    format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        peer.addr()
    )
}

/// Sends an OPTIONS; the X-RC of the answer.
fn ask(srv: &TestServer, peer: &UdpPeer, call: &str) -> String {
    peer.send(srv.addr(), &options(peer, call));
    peer.recv_status(200, Duration::from_secs(3))
        .and_then(|r| r.header("X-RC"))
        .unwrap_or_default()
}

/// What the capture socket got, each datagram as bytes.
fn captured(s: &UdpSocket) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while let Ok((n, _)) = s.recv_from(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn tracing_follows_trace_on_and_the_status_rpc() {
    let cap = UdpSocket::bind("127.0.0.1:0").unwrap();
    let srv = TestServer::start(&cfg(&cap, ""), siprouter::in_tree());
    let peer = UdpPeer::new();
    // trace_on is 0 by default: nothing traced, -1.
    assert_eq!(ask(&srv, &peer, "off-1"), "-1");
    assert!(captured(&cap).is_empty());
    assert_eq!(
        srv.rpc("siptrace.status", &[json!("check")]).unwrap(),
        json!("Disabled")
    );
    assert_eq!(
        srv.rpc("siptrace.status", &[json!("on")]).unwrap(),
        json!("Enabled")
    );
    assert_eq!(ask(&srv, &peer, "on-1"), "1");
    // Without HEP, the copy is the message itself.
    let got = captured(&cap);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0], options(&peer, "on-1").into_bytes());
    assert_eq!(
        srv.rpc("siptrace.status", &[json!("off")]).unwrap(),
        json!("Disabled")
    );
    assert_eq!(ask(&srv, &peer, "off-2"), "-1");
    assert!(captured(&cap).is_empty());
    let bad = srv.rpc("siptrace.status", &[json!("maybe")]).unwrap_err();
    assert_eq!(bad.code, 500);
    assert!(srv.rpc("siptrace.status", &[]).is_err());
}

#[test]
fn hep_version_2_has_its_fixed_head() {
    let cap = UdpSocket::bind("127.0.0.1:0").unwrap();
    let params = r#"modparam("siptrace", "trace_on", 1)
modparam("siptrace", "hep_mode_on", 1)
modparam("siptrace", "hep_version", 2)
modparam("siptrace", "hep_capture_id", 9)"#;
    let srv = TestServer::start(&cfg(&cap, params), siprouter::in_tree());
    let peer = UdpPeer::new();
    assert_eq!(ask(&srv, &peer, "v2"), "1");
    let got = captured(&cap);
    assert_eq!(got.len(), 1);
    let b = &got[0];
    // version 2, head 16 bytes, IPv4, UDP; source = the peer, destination
    // = the server.
    assert_eq!(&b[..4], [2, 16, 2, 17]);
    assert_eq!(u16::from_be_bytes([b[4], b[5]]), peer.addr().port());
    assert_eq!(u16::from_be_bytes([b[6], b[7]]), srv.addr().port());
    assert_eq!(&b[8..16], [127, 0, 0, 1, 127, 0, 0, 1]);
    assert_eq!(u16::from_le_bytes([b[24], b[25]]), 9);
    assert_eq!(&b[28..], options(&peer, "v2").as_bytes());
}

#[test]
fn trace_mode_4_mirrors_every_message_as_it_is() {
    let cap = UdpSocket::bind("127.0.0.1:0").unwrap();
    let params = r#"modparam("siptrace", "trace_on", 1)
modparam("siptrace", "trace_mode", 4)"#;
    let srv = TestServer::start(
        &cfg(&cap, params).replace("$var(rc) = sip_trace();", "$var(rc) = 7;"),
        siprouter::in_tree(),
    );
    let peer = UdpPeer::new();
    assert_eq!(ask(&srv, &peer, "all-1"), "7");
    let got = captured(&cap);
    // The request in, the reply out.
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], options(&peer, "all-1").into_bytes());
    assert!(got[1].starts_with(b"SIP/2.0 200 OK\r\n"));
}

#[test]
fn what_is_not_built_is_refused_at_start() {
    let cap = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (p, what) in [
        (
            r#"modparam("siptrace", "xheaders_write", 1)"#,
            "xheaders_write",
        ),
        (
            r#"modparam("siptrace", "traced_user_avp", "$avp(u)")"#,
            "traced_user_avp",
        ),
        (r#"modparam("siptrace", "hep_version", 4)"#, "hep_version 4"),
    ] {
        let err = TestServer::try_start(&cfg(&cap, p), siprouter::in_tree())
            .err()
            .unwrap_or_else(|| panic!("{p} is refused"));
        assert!(err.join("\n").contains(what), "{p}: {err:?}");
    }
}
