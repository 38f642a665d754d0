//! evapi end to end, what the Kamailio differential test
//! (`kamailio_parity_evapi.rs`) leaves out: a message that is not a
//! netstring closes the connection after the ones before it, bare
//! messages with `netstring_format` 0, an empty tag reaching everyone,
//! `$evapi(msg)` only in message-received, and a bind address in use
//! refused at start.

use sr_testkit::read_stream as read;
use sr_testkit::{free_port, TestServer, UdpPeer};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

fn cfg(ev: u16, extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "evapi"
modparam("evapi", "bind_addr", "127.0.0.1:{ev}")
{extra}
request_route {{
    evapi_multicast("all:$hdr(X-E)", "");
    sl_send_reply("200", "ok");
}}
event_route[evapi:connection-new] {{ evapi_relay("new msg=$evapi(msg)"); }}
event_route[evapi:message-received] {{ evapi_relay("echo:$evapi(msg)"); }}
"#
    )
}

fn connect(ev: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", ev)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    s
}

#[test]
fn framing_errors_close_and_empty_tags_reach_everyone() {
    let ev = free_port();
    let srv = TestServer::start(&cfg(ev, ""), siprouter::in_tree());
    let mut a = connect(ev);
    assert_eq!(read(&mut a), "14:new msg=<null>,");
    let peer = UdpPeer::new();
    let req = sr_testkit::kamailio::options("evx", "X-E: hi\r\n")
        .replace("__VIA__", &peer.addr().to_string());
    peer.send(srv.addr(), &req);
    peer.recv_status(200, Duration::from_secs(2))
        .expect("answered");
    assert_eq!(read(&mut a), "6:all:hi,");
    a.write_all(b"5:hello,\n7:not one").unwrap();
    assert_eq!(read(&mut a), "10:echo:hello,");
    a.write_all(b"xx").unwrap();
    assert_eq!(read(&mut a), "<EOF>", "a framing error closes");
}

#[test]
fn bare_messages_and_a_port_in_use() {
    let ev = free_port();
    let srv = TestServer::start(
        &cfg(ev, r#"modparam("evapi", "netstring_format", 0)"#),
        siprouter::in_tree(),
    );
    let mut a = connect(ev);
    assert_eq!(read(&mut a), "new msg=<null>");
    a.write_all(b"plain text").unwrap();
    assert_eq!(read(&mut a), "echo:plain text");
    let e = TestServer::try_start(&cfg(ev, ""), siprouter::in_tree())
        .err()
        .expect("the port is taken");
    assert!(e.join("\n").contains("evapi: cannot listen on"), "{e:?}");
    drop(srv);
}
