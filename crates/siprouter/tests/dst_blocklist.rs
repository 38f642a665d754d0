//! The destination blocklist beyond what the Kamailio comparison covers
//! (`kamailio_parity_blst`): a refused TCP connect blocklists its
//! destination, which then gets no new attempt; `blst_set_ignore(4)`
//! keeps that error out; the transport's ignore mask
//! (`dst_blocklist_tcp_imask`); and without `use_dst_blocklist` the
//! blst functions and the RPC commands answer as Kamailio's do.

use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, UdpPeer};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

const CFG: &str = r#"
listen=udp:127.0.0.1:{PORT}
listen=tcp:127.0.0.1:{PORT}
__GLOBALS__
loadmodule "sl"
loadmodule "tm"
loadmodule "blst"
loadmodule "pv"
loadmodule "textops"
request_route {
    if ($hdr(X-T) == "is") {
        if (blst_is_blocklisted()) { sl_send_reply("200", "yes"); }
        else { sl_send_reply("200", "no"); }
        exit;
    }
    if ($hdr(X-T) == "add") { blst_add(); sl_send_reply("200", "added $rc"); exit; }
    if ($hdr(X-T) == "del") {
        if (blst_del()) { sl_send_reply("200", "deleted"); }
        else { sl_send_reply("200", "not there"); }
        exit;
    }
    if ($hdr(X-T) == "ign") { blst_set_ignore("4"); }
    $du = $hdr(X-D);
    if ($hdr(X-T) == "failover") {
        if (!t_relay()) {
            $du = $hdr(X-B);
            t_relay();
        }
        exit;
    }
    t_relay();
    exit;
}
"#;

fn server(globals: &str) -> TestServer {
    TestServer::start(&CFG.replace("__GLOBALS__", globals), siprouter::in_tree())
}

/// MESSAGE number `n` with `X-T: t` to `dst`.
fn request(peer: &UdpPeer, n: u32, t: &str, dst: &str) -> String {
    let call = format!("dstb-{n}");
    format!(
        "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-T: {t}\r\nX-D: {dst}\r\nContent-Length: 0\r\n\r\n",
        peer.addr()
    )
}

/// Sends [`request`]; the status line of the final reply.
fn send(peer: &UdpPeer, srv: SocketAddr, n: u32, t: &str, dst: &str) -> String {
    let call = format!("dstb-{n}");
    peer.send(srv, &request(peer, n, t, dst));
    peer.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str()) && r.status().is_some_and(|c| c >= 200)
    })
    .map(|r| r.text().lines().next().unwrap_or_default().to_string())
    .unwrap_or_else(|| "no final reply".into())
}

/// A TCP port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

#[test]
fn a_refused_connect_blocklists_the_destination() {
    let srv = server("use_dst_blocklist=yes");
    let peer = UdpPeer::new();
    let port = closed_port();
    let dst = format!("sip:127.0.0.1:{port};transport=tcp");
    let first = send(&peer, srv.addr(), 1, "r", &dst);
    assert!(first.starts_with("SIP/2.0 477"), "{first}");
    let view = srv.rpc("dst_blocklist.view", &[]).expect("view");
    let entries = view.as_array().expect("a list");
    assert_eq!(entries.len(), 1, "{view}");
    assert_eq!(entries[0]["protocol"], json!("tcp"));
    assert_eq!(entries[0]["port"], json!(port));
    assert_eq!(entries[0]["flags"], json!(4), "ERR_CONNECT");
    // Now refused without a new connect (the same answer, from the list).
    let second = send(&peer, srv.addr(), 2, "r", &dst);
    assert!(second.starts_with("SIP/2.0 477"), "{second}");
    // Something listens there now: still blocklisted until removed.
    let l = TcpListener::bind(("127.0.0.1", port)).expect("rebind");
    let third = send(&peer, srv.addr(), 3, "r", &dst);
    assert!(third.starts_with("SIP/2.0 477"), "{third}");
    srv.rpc("dst_blocklist.delete_all", &[])
        .expect("delete_all");
    peer.send(srv.addr(), &request(&peer, 4, "r", &dst));
    let (mut conn, _) = l.accept().expect("the server connects again");
    conn.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let mut buf = [0u8; 2048];
    let got = std::io::Read::read(&mut conn, &mut buf).expect("the request");
    assert!(
        String::from_utf8_lossy(&buf[..got]).starts_with("MESSAGE "),
        "the request is relayed once the entry is gone"
    );
}

#[test]
fn ignored_connect_errors_do_not_blocklist() {
    // By the message (blst_set_ignore) and by the transport's mask.
    for (globals, t) in [
        ("use_dst_blocklist=yes", "ign"),
        ("use_dst_blocklist=yes\ndst_blocklist_tcp_imask=4", "r"),
    ] {
        let srv = server(globals);
        let peer = UdpPeer::new();
        let dst = format!("sip:127.0.0.1:{};transport=tcp", closed_port());
        let r = send(&peer, srv.addr(), 1, t, &dst);
        assert!(r.starts_with("SIP/2.0 477"), "{globals}: {r}");
        let view = srv.rpc("dst_blocklist.view", &[]).expect("view");
        assert_eq!(view, json!([]), "{globals}");
    }
}

#[test]
fn without_use_dst_blocklist_nothing_is_kept() {
    let srv = server("");
    let peer = UdpPeer::new();
    assert_eq!(send(&peer, srv.addr(), 1, "add", ""), "SIP/2.0 200 added 1");
    assert_eq!(send(&peer, srv.addr(), 2, "is", ""), "SIP/2.0 200 no");
    assert_eq!(
        send(&peer, srv.addr(), 3, "del", ""),
        "SIP/2.0 200 not there"
    );
    for m in [
        "dst_blocklist.view",
        "dst_blocklist.mem_info",
        "dst_blocklist.delete_all",
    ] {
        let e = srv.rpc(m, &[]).expect_err("disabled");
        assert_eq!(
            (e.code, e.message.as_str()),
            (500, "dst blocklist support disabled")
        );
    }
    // A refused connect is not remembered either: the second request is
    // tried again (and refused again by the network).
    let dst = format!("sip:127.0.0.1:{};transport=tcp", closed_port());
    for n in 4..6 {
        let r = send(&peer, srv.addr(), n, "r", &dst);
        assert!(r.starts_with("SIP/2.0 477"), "{r}");
    }
}

#[test]
fn a_relay_that_fails_over_owes_no_error_reply() {
    // The first destination refuses the connect; the script relays to a
    // second one, which answers: the caller gets its answer only, not
    // also the 477 tm kept for the first failure.
    let srv = server("use_dst_blocklist=yes");
    let peer = UdpPeer::new();
    let backup = UdpPeer::new();
    let dst = format!("sip:127.0.0.1:{};transport=tcp", closed_port());
    let req = request(&peer, 7, "failover", &dst)
        .replace("X-D:", &format!("X-B: sip:{}\r\nX-D:", backup.addr()));
    peer.send(srv.addr(), &req);
    let got = backup
        .recv_matching(Duration::from_secs(3), |r| r.status().is_none())
        .expect("relayed to the backup");
    backup.send(got.from, &sr_testkit::answer(&got, 200, "OK", "b", &[]));
    let mut codes = Vec::new();
    while let Some(r) = peer.recv(Duration::from_millis(800)) {
        codes.extend(r.status());
    }
    assert_eq!(codes, vec![200], "only the backup's answer");
}
