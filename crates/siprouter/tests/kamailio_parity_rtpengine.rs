//! Differential test against Kamailio itself, for the rtpengine module
//! with one real daemon (Debian's `rtpengine-daemon`, `.ci/run` installs
//! it): calls whose SDP goes through `rtpengine_offer`/`rtpengine_answer`
//! and `rtpengine_manage` with several flag sets (origin and connection
//! replaced, a forced transport, ICE removed, an address trusted, a
//! direction pair), and the BYE with `rtpengine_delete()` — the SDP
//! both sides get compared line by line (the media ports the daemon
//! picks, its session ids and the ICE credentials written alike).
//!
//! Without Kamailio or rtpengine installed the test prints a notice and
//! passes, unless `SR_KAMAILIO_REQUIRED=1` / `SR_RTPENGINE_REQUIRED=1`
//! (`.ci/run` sets both).

use sr_testkit::rtpengine;
use sr_testkit::scene::Scene;
use sr_testkit::{answer, kamailio, Reply};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl",
    "tm",
    "tmx",
    "rr",
    "pv",
    "textops",
    "siputils",
    "rtpengine",
];

const BODY: &str = r#"modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:__NG__")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (has_totag()) {
        if (loose_route()) {
            if (is_method("BYE")) { rtpengine_delete(); }
            else if (is_method("ACK") && has_body("application/sdp")) { rtpengine_answer(); }
            t_relay();
        }
        exit;
    }
    record_route();
    $var(f) = $hdr(X-F);
    if ($var(f) == "manage") {
        rtpengine_manage("replace-origin replace-session-connection");
    } else if (has_body("application/sdp")) {
        rtpengine_offer("$var(f)");
    }
    t_on_reply("MEDIA");
    $du = $hdr(X-D);
    t_relay();
}
onreply_route[MEDIA] {
    if (has_body("application/sdp")) {
        $var(f) = $T_req($hdr(X-F));
        if ($var(f) == "manage") { rtpengine_manage("replace-origin replace-session-connection"); }
        else { rtpengine_answer("$var(f)"); }
    }
}
"#;

/// An SDP offering PCMU and telephone-event at 127.0.0.1:`port`, with
/// ICE candidates for the flags that remove them.
fn offer(port: u16) -> String {
    format!("v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\na=candidate:1 1 UDP 2130706431 127.0.0.1 {port} typ host\r\na=sendrecv\r\n")
}

/// An SDP body with what differs from run to run written alike: the
/// daemon's media ports, its session id and version, SRTP keys, DTLS
/// fingerprints, ICE credentials and candidates' foundations and ports.
fn tidy(body: &str, keep: &[u16]) -> String {
    body.lines()
        .map(|l| {
            let mut w: Vec<String> = l.split(' ').map(str::to_string).collect();
            for x in w.iter_mut() {
                if let Ok(n) = x.parse::<u32>() {
                    if (20000..30000).contains(&n) && !keep.contains(&(n as u16)) {
                        *x = "<port>".into();
                    }
                }
            }
            let l = w.join(" ");
            if let Some(v) = l.strip_prefix("o=- ") {
                let rest: Vec<&str> = v.splitn(3, ' ').collect();
                return format!("o=- <id> <v> {}", rest.get(2).unwrap_or(&""));
            }
            if l.starts_with("a=crypto:") {
                if let Some(i) = l.find("inline:") {
                    return format!("{}inline:<key>", &l[..i]);
                }
            }
            if let Some(r) = l.strip_prefix("a=fingerprint:") {
                return format!("a=fingerprint:{} <fp>", r.split(' ').next().unwrap_or(""));
            }
            if let Some(r) = l.strip_prefix("a=candidate:") {
                return format!("a=candidate:<f> {}", r.split_once(' ').map_or("", |x| x.1));
            }
            if l.starts_with("a=ice-ufrag:") || l.starts_with("a=ice-pwd:") {
                return format!("{}:<x>", &l[..l.find(':').unwrap_or(0)]);
            }
            if let Some(r) = l.strip_prefix("a=rtcp:") {
                return format!(
                    "a=rtcp:{}",
                    r.split_once(' ')
                        .map_or("<port>".to_string(), |x| format!("<port> {}", x.1))
                );
            }
            l
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn body_of(r: Option<&Reply>, keep: &[u16]) -> String {
    match r {
        Some(r) => tidy(&String::from_utf8_lossy(r.msg.msg().body()), keep),
        None => "nothing".into(),
    }
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 1);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let t = Duration::from_secs(3);
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut out = Vec::new();
    // (The caller's and callee's own media ports are below 20000.)
    let (um, am) = (10_002u16, 10_004u16);
    let cases = [
        (
            "origin and connection",
            "replace-origin replace-session-connection",
        ),
        ("transport", "RTP/SAVP replace-origin"),
        ("ICE removed", "ICE=remove replace-origin"),
        ("trust address", "trust-address replace-origin"),
        ("manage", "manage"),
    ];
    for (n, (what, flags)) in cases.iter().enumerate() {
        // (Each run's own Call-IDs: the daemon keeps a deleted call a
        // while, and the second run must not find the first one's.)
        let call = format!("rtpe-{run}-{n}");
        let body = offer(um);
        p.caller.send(srv, &format!("INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKscene-{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a{n}\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{}>\r\nContent-Type: application/sdp\r\nX-T: c\r\nX-F: {flags}\r\nX-D: {}\r\nContent-Length: {}\r\n\r\n{body}", p.caller.addr(), p.caller.addr(), p.uri(0), body.len()));
        let inv = p.uas_answer(0, t, None);
        out.push(format!(
            "{what}: the callee gets {}",
            body_of(inv.as_ref(), &[um, am])
        ));
        let Some(inv) = inv else { continue };
        let ans = offer(am);
        let ok = answer(&inv, 200, "OK", "u0", &["Content-Type: application/sdp"]).replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Length: {}\r\n\r\n{ans}", ans.len()),
        );
        p.uas[0].send(inv.from, &ok);
        let r = p.caller.recv_matching(t, |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
                && r.status().is_some_and(|c| c >= 200)
        });
        out.push(format!(
            "{what}: the caller gets {}",
            body_of(r.as_ref(), &[um, am])
        ));
        // The BYE, with rtpengine_delete() on the way.
        let rr = r
            .as_ref()
            .and_then(|r| r.header("Record-Route"))
            .unwrap_or_default();
        p.caller.send(srv, &format!("BYE sip:bob@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKscene-{call}-bye;rport\r\nMax-Forwards: 70\r\nRoute: {rr}\r\nFrom: <sip:alice@127.0.0.1>;tag=a{n}\r\nTo: <sip:bob@127.0.0.1>;tag=u0\r\nCall-ID: {call}\r\nCSeq: 2 BYE\r\nX-T: c\r\nContent-Length: 0\r\n\r\n", p.uas[0].addr(), p.caller.addr()));
        p.uas_answer(0, t, Some((200, "OK", &[])));
        out.push(format!("{what}: BYE answered {}", p.final_of(&call)));
    }
    out
}

#[test]
fn rtpengine_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let Some(daemon) = rtpengine::start() else {
        return;
    };
    let dir = kamailio::fresh_dir("rtpengine");
    let cfg = (kamailio::head(MODULES) + BODY).replace("__NG__", &daemon.ng.to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(
        want.iter().any(|l| l.contains("c=IN IP4 127.0.0.1")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "rtpengine");
}
