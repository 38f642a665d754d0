//! Differential test against Kamailio itself, for the rtpengine module's
//! media-control functions on a call the real daemon relays
//! (`start_recording`, `stop_recording`, `block_dtmf`, `unblock_dtmf`,
//! `block_media`, `unblock_media`, `silence_media`, `unsilence_media`,
//! `start_forwarding`, `stop_forwarding`, `play_media`, `stop_media`,
//! `play_dtmf`) and `$rtpstat`: an in-dialog request runs one and the script answers with
//! its return code (what the daemon said), for a known call and an
//! unknown one.
//!
//! Without Kamailio or rtpengine installed the test prints a notice and
//! passes, unless `SR_KAMAILIO_REQUIRED=1` / `SR_RTPENGINE_REQUIRED=1`
//! (`.ci/run` sets both).

use sr_testkit::rtpengine;
use sr_testkit::scene::Scene;
use sr_testkit::{answer, kamailio};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "rr", "pv", "textops", "siputils", "rtpengine"];

const FUNCS: &[&str] = &[
    "start_recording()",
    "stop_recording()",
    "block_dtmf()",
    "unblock_dtmf()",
    "block_media()",
    "unblock_media()",
    "silence_media()",
    "unsilence_media()",
    "start_forwarding()",
    "stop_forwarding()",
    "play_media(\"file=/nonexistent.wav\")",
    "stop_media()",
    "play_dtmf(\"code=1\")",
    "block_media(\"directional\")",
];

fn body() -> String {
    let mut b = String::from(
        r#"modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:__NG__")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-S) != $null) {
        append_to_reply("X-R: $rtpstat | $rtpestat\r\n");
        sl_send_reply("200", "s");
        exit;
    }
    $var(m) = $hdr(X-M);
"#,
    );
    for (i, f) in FUNCS.iter().enumerate() {
        b.push_str(&format!(
            "    if ($hdr(X-M) != $null && $var(m) == \"{i}\") {{ {f}; append_to_reply(\"X-R: $rc\\r\\n\"); sl_send_reply(\"200\", \"m\"); exit; }}\n"
        ));
    }
    b.push_str(
        r#"    if (has_totag()) { exit; }
    rtpengine_offer();
    t_on_reply("MEDIA");
    $du = $hdr(X-D);
    t_relay();
}
onreply_route[MEDIA] {
    if (has_body("application/sdp")) { rtpengine_answer(); }
}
"#,
    );
    b
}

fn sdp(port: u16) -> String {
    format!("v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
}

/// Runs media function `i` in a request of call `call` (From tag `a`, To
/// tag `u0`): the X-R the script answers.
fn media(p: &Scene, call: &str, i: usize) -> String {
    let req = format!(
        "INFO sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKscene-{call}-m{i}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>;tag=u0\r\nCall-ID: {call}\r\nCSeq: {} INFO\r\nX-T: m\r\nX-M: {i}\r\nContent-Length: 0\r\n\r\n",
        p.caller.addr(),
        i + 2
    );
    p.caller.send(p.srv, &req);
    let r = p.caller.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call) && r.header("X-R").is_some()
    });
    r.and_then(|r| r.header("X-R"))
        .unwrap_or_else(|| "-".into())
}

/// `$rtpstat` read in a request of call `call`.
fn stats(p: &Scene, call: &str) -> String {
    let req = format!(
        "INFO sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKscene-{call}-s\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>;tag=u0\r\nCall-ID: {call}\r\nCSeq: 99 INFO\r\nX-T: m\r\nX-S: 1\r\nContent-Length: 0\r\n\r\n",
        p.caller.addr()
    );
    p.caller.send(p.srv, &req);
    let r = p.caller.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call) && r.header("X-R").is_some()
    });
    r.and_then(|r| r.header("X-R"))
        .unwrap_or_else(|| "-".into())
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 1);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let call = format!("rtpm-{run}");
    let offer = sdp(10_006);
    p.caller.send(srv, &format!("INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKscene-{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{}>\r\nContent-Type: application/sdp\r\nX-T: c\r\nX-D: {}\r\nContent-Length: {}\r\n\r\n{offer}", p.caller.addr(), p.caller.addr(), p.uri(0), offer.len()));
    let mut out = Vec::new();
    let Some(inv) = p.uas_answer(0, Duration::from_secs(3), None) else {
        return vec!["the callee got no INVITE".into()];
    };
    let ans = sdp(10_008);
    let ok = answer(&inv, 200, "OK", "u0", &["Content-Type: application/sdp"]).replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: {}\r\n\r\n{ans}", ans.len()),
    );
    p.uas[0].send(inv.from, &ok);
    out.push(format!("call: {}", p.final_of(&call)));
    out.push(format!("$rtpstat: {}", stats(&p, &call)));
    for (i, f) in FUNCS.iter().enumerate() {
        out.push(format!("{f}: {}", media(&p, &call, i)));
    }
    out.push(format!(
        "$rtpstat unknown call: {}",
        stats(&p, &format!("rtpm-none-{run}"))
    ));
    for (i, f) in FUNCS.iter().enumerate().take(3) {
        out.push(format!(
            "{f} unknown call: {}",
            media(&p, &format!("rtpm-none-{run}"), i)
        ));
    }
    out
}

#[test]
fn rtpengine_media_functions_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let Some(daemon) = rtpengine::start() else {
        return;
    };
    let dir = kamailio::fresh_dir("rtpengine-media");
    let cfg = (kamailio::head(MODULES) + &body()).replace("__NG__", &daemon.ng.to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("200 OK")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "rtpengine media functions");
}
