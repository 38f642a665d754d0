//! Differential test against Kamailio itself, for tcpops'
//! `tcp_set_otcpid(conid)` and `tcp_set_otcpid_flag(mode)`: a client's
//! TCP connection id is kept, then requests from another client are sent
//! to an address where nothing listens — with the flag set, `t_relay()`
//! sends them over the kept connection instead (and the reply comes
//! back); without it, or with stateless `forward()` (which Kamailio sends
//! by address whatever the flag), they do not reach the client. What the client receives and what the sender gets back are
//! compared (ports masked).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, TcpPeer, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "tm", "tcpops"];

const BODY: &str = r#"modparam("pv", "shvset", "cid=i:0")
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-C) == "save") {
        $shv(cid) = $conid;
        sl_send_reply("200", "saved");
        exit;
    }
    if (!is_method("MESSAGE")) { exit; }
    tcp_set_otcpid("$shv(cid)");
    if ($hdr(X-F) == "1") { tcp_set_otcpid_flag("1"); }
    if ($hdr(X-F) == "0") { tcp_set_otcpid_flag("1"); tcp_set_otcpid_flag("0"); }
    $du = "sip:127.0.0.1:9;transport=tcp";
    if ($hdr(X-C) == "fwd") {
        forward();
        exit;
    }
    if (!t_relay()) { sl_send_reply("500", "not relayed"); }
}
"#;

fn message(call: &str, via: &str, what: &str, flag: &str) -> String {
    format!(
        "MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-C: {what}\r\nX-F: {flag}\r\nContent-Length: 0\r\n\r\n"
    )
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let b = UdpPeer::new();
    kamailio::wait_until_up(&b, srv, kamailio::PROBE, None);
    let mut a = TcpPeer::connect(srv);
    a.send(
        &kamailio::options("save", "X-C: save\r\n")
            .replace("SIP/2.0/UDP __VIA__", &format!("SIP/2.0/TCP {}", a.addr())),
    );
    let mut out = vec![format!(
        "save: {}",
        a.recv(Duration::from_secs(3))
            .and_then(|r| r.status())
            .unwrap_or(0)
    )];
    let mask = |s: String| {
        s.replace(&srv.port().to_string(), "SRV")
            .replace(&b.addr().port().to_string(), "B")
    };
    for (n, (what, flag)) in [("fwd", "1"), ("relay", "0"), ("relay", "1")]
        .iter()
        .enumerate()
    {
        let call = format!("ot{n}");
        b.send(srv, &message(&call, &b.addr().to_string(), what, flag));
        let got = a.recv(Duration::from_millis(1500));
        let seen = match &got {
            Some(r) => {
                let text = r.text();
                let first = text.lines().next().unwrap_or_default().to_string();
                let vias = text.lines().filter(|l| l.starts_with("Via:")).count();
                if *what == "relay" {
                    a.send(&sr_testkit::answer(r, 200, "Delivered", "bob", &[]));
                }
                format!("A got {first} with {vias} Vias")
            }
            None => "A got nothing".to_string(),
        };
        let back = if *what == "relay" {
            b.recv_matching(Duration::from_secs(3), |r| {
                r.msg.msg().call_id().ok() == Some(call.as_str())
            })
            .map_or("B got nothing".to_string(), |r| {
                format!("B got {}", r.status().unwrap_or(0))
            })
        } else {
            String::new()
        };
        out.push(mask(format!("{what}/{flag}: {seen} {back}")));
    }
    out
}

#[test]
fn requests_go_over_the_chosen_connection_as_kamailio_sends_them() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("tcp-otcpid");
    let cfg = kamailio::head(MODULES).replace(
        "listen=udp:127.0.0.1:__PORT__",
        "listen=udp:127.0.0.1:__PORT__\nlisten=tcp:127.0.0.1:__PORT__",
    ) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(
        want.iter().any(|l| l.contains("A got MESSAGE")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "tcp otcpid");
}
