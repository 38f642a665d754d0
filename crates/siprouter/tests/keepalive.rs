//! End-to-end: the keepalive module over real UDP — what the Kamailio
//! differential test (`kamailio_parity_keepalive.rs`) leaves out: a
//! destination added from the script is removed after `delete_counter`
//! failed pings, one from a `destination` parameter stays, and
//! `ping_from`.

use sr_testkit::{TestServer, UdpPeer};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn ask(srv: &TestServer, udp: &UdpPeer, n: u32, extra: &str) -> String {
    let call = format!("k-{n}");
    udp.send(
        srv.addr(),
        &format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n",
            udp.addr()
        ),
    );
    udp.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str())
    })
    .and_then(|r| r.header("X-A"))
    .unwrap_or_default()
}

#[test]
fn script_destinations_go_after_delete_counter_failures() {
    // Two silent destinations: one configured, one added by the script.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let added = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a, b) = (
        silent.local_addr().unwrap().port(),
        added.local_addr().unwrap().port(),
    );
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "tm"
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "keepalive"
modparam("tm", "fr_timer", 500)
modparam("keepalive", "ping_interval", 1)
modparam("keepalive", "delete_counter", 2)
modparam("keepalive", "ping_from", "sip:monitor@example.org")
modparam("keepalive", "destination", "sip:127.0.0.1:{a}")
request_route {{
    if ($hdr(X-Add) != $null) {{ ka_add_destination("$hdr(X-Add)", "me"); }}
    ka_is_alive("127.0.0.1:{a}"); $var(a) = $rc;
    ka_is_alive("127.0.0.1:{b}"); $var(b) = $rc;
    append_to_reply("X-A: $var(a)|$var(b)\r\n");
    sl_send_reply("200", "ok");
}}
"#
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let udp = UdpPeer::new();
    assert_eq!(
        ask(&srv, &udp, 1, &format!("X-Add: sip:127.0.0.1:{b}\r\n")),
        "1|1",
        "not answered yet: up, as Kamailio"
    );
    // The OPTIONS comes from ping_from.
    let mut buf = [0u8; 4096];
    added
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let (n, _) = added.recv_from(&mut buf).expect("an OPTIONS");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        text.starts_with(&format!("OPTIONS sip:127.0.0.1:{b} SIP/2.0\r\n")),
        "{text}"
    );
    assert!(
        text.contains("From: <sip:monitor@example.org>;tag="),
        "{text}"
    );
    // Two failed pings later the added one is gone, the configured one
    // stays (down).
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut last = String::new();
    let mut i = 2;
    while Instant::now() < deadline {
        last = ask(&srv, &udp, i, "");
        if last == "2|-1" {
            break;
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(last, "2|-1");
}
