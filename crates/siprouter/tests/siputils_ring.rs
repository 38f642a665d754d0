//! siputils' `ring_insert_callid()` with `ring_timeout` (siprouter alone:
//! Kamailio 5.6.3 as Debian builds it exports neither; the behaviour is
//! that of Kamailio's `ring.c`): a 183 of a call inserted
//! becomes `180 Ringing` (the reason padded to the old one's length)
//! without Content-Type, Content-Length and body, relayed statelessly
//! and by tm; a 183 of another call, one with compact headers and one
//! whose Content-Type comes before the Call-ID are left as they are. The
//! caller's view of each reply is checked.

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "siputils", "tm"];

const BODY: &str = r#"modparam("siputils", "ring_timeout", 30)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("ACK|CANCEL")) { exit; }
    if ($hdr(X-R) == "1") { ring_insert_callid(); }
    if ($hdr(X-T) == "tm") {
        $du = "sip:127.0.0.1:__UAS__";
        t_relay();
        exit;
    }
    forward("127.0.0.1", __UAS__);
}
"#;

fn invite(call: &str, via: SocketAddr, t: &str, r: &str) -> String {
    format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{via}>\r\nX-T: {t}\r\nX-R: {r}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The 183 the callee sends: `shape` picks the header forms.
fn progress(req: &str, shape: &str) -> String {
    let mut head = String::from("SIP/2.0 183 Session Progress\r\n");
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    if shape == "early-ct" {
        head.push_str("Content-Type: application/sdp\r\n");
    }
    for l in req.split("\r\n") {
        if l.starts_with("To:") {
            head.push_str(&format!("{l};tag=callee\r\n"));
        } else if ["Via:", "From:", "Call-ID:", "CSeq:"]
            .iter()
            .any(|h| l.starts_with(h))
        {
            head.push_str(&format!("{l}\r\n"));
        }
    }
    match shape {
        "compact" => head.push_str(&format!("c: application/sdp\r\nl: {}\r\n\r\n", sdp.len())),
        "early-ct" => head.push_str(&format!("Content-Length: {}\r\n\r\n", sdp.len())),
        _ => head.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
            sdp.len()
        )),
    }
    head + sdp
}

fn scenario(srv: SocketAddr, uas: &UdpPeer) -> Vec<String> {
    let uac = UdpPeer::new();
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let cases = [
        ("r1", "fwd", "1", "plain"),
        ("r2", "fwd", "0", "plain"),
        ("r3", "fwd", "1", "compact"),
        ("r4", "fwd", "1", "early-ct"),
        ("r5", "tm", "1", "plain"),
        ("r6", "tm", "0", "plain"),
    ];
    for (call, t, r, shape) in cases {
        uac.send(srv, &invite(call, uac.addr(), t, r));
        let Some(req) = uas.recv_matching(Duration::from_secs(3), |m| {
            m.msg.msg().call_id().ok() == Some(call) && m.msg.msg().is_request()
        }) else {
            out.push(format!("{call}: not relayed"));
            continue;
        };
        uas.send(req.from, &progress(&req.text(), shape));
        let got = uac.recv_matching(Duration::from_secs(3), |m| {
            m.msg.msg().call_id().ok() == Some(call) && m.status().is_some_and(|s| s > 100)
        });
        out.push(match got {
            Some(r) => {
                let text = r.text();
                let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                let lines: Vec<&str> = head
                    .lines()
                    .filter(|l| !l.starts_with("Via:") && !l.starts_with("v:"))
                    .collect();
                format!("{call}: {} | body {} bytes", lines.join(" / "), body.len())
            }
            None => format!("{call}: no reply"),
        });
    }
    out
}

#[test]
fn ring_converts_183_to_180() {
    let uas = UdpPeer::new();
    let cfg = (kamailio::head(MODULES) + BODY)
        .replace("__UAS__", &uas.addr().port().to_string())
        .replace("__PORT__", "{PORT}");
    let srv = sr_testkit::TestServer::start(&cfg, siprouter::in_tree());
    let got = scenario(srv.addr(), &uas);
    let ringing = "SIP/2.0 180 Ringing          / From: <sip:a@b>;tag=1 / To: <sip:bob@127.0.0.1>;tag=callee / Call-ID: {c} / CSeq: 1 INVITE / Content-Length: 0 | body 0 bytes";
    let progress = "SIP/2.0 183 Session Progress / From: <sip:a@b>;tag=1 / To: <sip:bob@127.0.0.1>;tag=callee / Call-ID: {c} / CSeq: 1 INVITE / Content-Type: application/sdp / Content-Length: 87 | body 87 bytes";
    for (i, want) in [ringing, progress, "", "", ringing, progress]
        .iter()
        .enumerate()
    {
        let call = format!("r{}", i + 1);
        if want.is_empty() {
            continue;
        }
        let line = got[i].replace(&format!("{call}: "), "");
        // (tm's own Server header, if any, aside.)
        assert_eq!(line, want.replace("{c}", &call), "{got:#?}");
    }
    // Compact headers, and a Content-Type before the Call-ID: left as
    // they are.
    assert!(
        got[2].contains("SIP/2.0 183 Session Progress") && got[2].contains("body 87"),
        "{got:#?}"
    );
    assert!(
        got[3].contains("SIP/2.0 183 Session Progress") && got[3].contains("body 87"),
        "{got:#?}"
    );
    assert!(
        !got.iter()
            .any(|l| l.contains("no reply") || l.contains("not relayed")),
        "{got:#?}"
    );
}
