//! Differential test against Kamailio itself, for requests sent from RPC:
//! `kamcmd tm.t_uac_wait_block` with a MESSAGE (extra header lines, a
//! body), an OPTIONS to a user agent that answers 486, and one to an
//! address nobody answers within `fr_timer`; what `kamcmd` prints and what
//! the user agent gets (method, Request-URI, From, To, the extra header,
//! the body; not the Call-ID, tags and branches each server makes)
//! compared. Not compared: the request's own headers' layout (Kamailio
//! 5.6.3 adds a second From tag when one is given, and passes the RPC's
//! line ends through as they come).
//!
//! Without Kamailio (tm, kamcmd) installed the test prints a notice and
//! passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "pv", "ctl"];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("tm", "fr_timer", 1500)
request_route { sl_send_reply("200", "up"); }
"#;

/// Answers one request with `code`, and says what came.
fn uas(code: u16, reason: &'static str) -> (SocketAddr, std::thread::JoinHandle<String>) {
    let peer = UdpPeer::new();
    let addr = peer.addr();
    let h = std::thread::spawn(move || {
        let Some(r) = peer.recv(Duration::from_secs(5)) else {
            return "uas: nothing".to_string();
        };
        peer.send(r.from, &sr_testkit::answer(&r, code, reason, "uas1", &[]));
        let m = r.msg.msg();
        let line = r.text().lines().next().unwrap_or_default().to_string();
        let from = m.from().map(|f| f.uri.raw.to_string()).unwrap_or_default();
        let to = m.to().map(|t| t.uri.raw.to_string()).unwrap_or_default();
        let port = addr.port().to_string();
        format!(
            "uas got: {} | from {from} | to {to} | X-Extra {} | type {} | body [{}]",
            line.replace(&port, "UAS"),
            r.header("X-Extra").unwrap_or_default(),
            r.header("Content-Type").unwrap_or_default(),
            r.text().split("\r\n\r\n").nth(1).unwrap_or("")
        )
    });
    (addr, h)
}

fn scenario(srv: SocketAddr, sock: &Path) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let tidy = |l: &str| l.to_string();
    for (method, code, reason, body) in [
        ("MESSAGE", 202, "Accepted Here", Some("hello there")),
        // (An empty body given: Kamailio 5.6.3 without the parameter
        // answers `400 Content-Type missing`.)
        ("OPTIONS", 486, "Busy Here", Some("s:")),
    ] {
        let (at, h) = uas(code, reason);
        let ruri = format!("sip:bob@{at}");
        let mut headers =
            "From: <sip:alice@example.com>;tag=rpc1\r\nTo: <sip:bob@example.com>\r\nX-Extra: yes\r\n"
                .to_string();
        let mut args = vec!["tm.t_uac_wait_block", method, &ruri, ".", "."];
        if body.is_some_and(|b| b != "s:") {
            headers.push_str("Content-Type: text/plain\r\n");
        }
        args.push(&headers);
        if let Some(b) = body {
            args.push(b);
        }
        out.extend(
            kamailio::kamcmd(sock, &args, &tidy)
                .into_iter()
                .map(|l| l.replace(&at.port().to_string(), "UAS")),
        );
        out.push(h.join().unwrap_or_default());
    }
    // Nobody there: fr_timer's 408.
    let silent = UdpPeer::new();
    let ruri = format!("sip:nobody@{}", silent.addr());
    out.extend(
        kamailio::kamcmd(
            sock,
            &[
                "tm.t_uac_wait_block",
                "OPTIONS",
                &ruri,
                ".",
                ".",
                "From: <sip:alice@example.com>\r\nTo: <sip:nobody@example.com>\r\n",
                "s:",
            ],
            &tidy,
        )
        .into_iter()
        .map(|l| l.replace(&silent.addr().port().to_string(), "SILENT")),
    );
    out
}

#[test]
fn rpc_requests_match_kamailio() {
    if !kamailio::available(MODULES) || !kamailio::kamcmd_available(&[]) {
        return;
    }
    let dir = kamailio::fresh_dir("tm_uac");
    let sock = dir.join("ctl.sock");
    let cfg = (kamailio::head(MODULES) + BODY).replace("__SOCK__", &sock.display().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, &sock)
    });
    assert!(want.iter().any(|l| l.contains("code: 202")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "tm_uac");
}
