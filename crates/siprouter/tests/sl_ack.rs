//! sl absorbs the ACK of a negative reply the server sent statelessly
//! (Kamailio's `sl_filter_ACK`) before the script runs: a real UA
//! (PJSIP) sends that ACK with its preloaded Route to the proxy, so a
//! script relaying in-dialog ACKs would otherwise try to forward it to the
//! Request-URI's domain. Other ACKs still reach the script.

use sr_testkit::{TestServer, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(2);

fn cfg(sink: SocketAddr) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
request_route {{
    if (method == "ACK") {{
        forward("{sink}");
        exit;
    }}
    sl_send_reply("407", "Proxy Authentication Required");
    exit;
}}
"#
    )
}

fn ack(from: SocketAddr, branch: &str, call_id: &str, to_tag: &str) -> String {
    format!(
        "ACK sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};rport;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=from-{call_id}\r\n\
         To: <sip:bob@example.com>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Route: <sip:127.0.0.1;lr>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn ack_of_a_stateless_negative_reply_is_absorbed() {
    let sink = UdpPeer::new();
    let srv = TestServer::start(&cfg(sink.addr()), siprouter::in_tree());
    let ua = UdpPeer::new();
    ua.send(
        srv.addr(),
        &sr_testkit::req(
            "INVITE",
            "sip:bob@example.com",
            ua.addr(),
            "inv1",
            "call-1",
            1,
            &[],
            "",
        ),
    );
    let r = ua.recv_final(T).expect("the 407");
    assert_eq!(r.status(), Some(407));
    let to = r.header("To").expect("To");
    let tag = to.split("tag=").nth(1).expect("a To-tag").to_string();

    // The ACK of that 407 (same Call-ID, From tag, Via branch and the
    // reply's To-tag) ends in sl.
    ua.send(srv.addr(), &ack(ua.addr(), "inv1", "call-1", &tag));
    assert_eq!(srv.wait_stat("sl:received_ACKs", 1), Some(1));
    assert!(sink.recv(Duration::from_millis(300)).is_none());

    // An ACK with another To-tag (a 2xx ACK of a dialog) or of another
    // transaction still runs the script.
    ua.send(srv.addr(), &ack(ua.addr(), "inv1", "call-1", "uas-tag"));
    assert!(sink.recv(T).is_some(), "ACK with a foreign To-tag relayed");
    ua.send(srv.addr(), &ack(ua.addr(), "other", "call-1", &tag));
    assert!(sink.recv(T).is_some(), "ACK of another transaction relayed");
    assert_eq!(srv.stat("sl:received_ACKs"), Some(1));
}
