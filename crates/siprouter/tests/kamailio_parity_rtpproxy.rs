//! Differential test against Kamailio itself, for the rtpproxy module: one
//! configuration (offer, answer, manage, destroy, recording, streams,
//! sets, `$rtpstat`) run by Kamailio 5.6 and by siprouter in turn, the
//! same calls through each, and compared: every rewritten SDP and return
//! code as the next hop receives them, and every command the RTPProxy
//! receives, in order.
//!
//! The RTPProxy here is a scripted one, on real UDP sockets: it answers
//! each command with a port and address derived from the command, so that
//! both servers get the same answers and their SDPs can be compared byte
//! for byte (a real RTPProxy picks ports at random; `rtpproxy.rs` runs the
//! real one end to end). It also answers the ways a real one fails (`E8`,
//! a port alone, an IPv6 address) for the calls named so.
//!
//! Without Kamailio and its rtpproxy module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio::{self, differences, Kamailio, MPATH};
use sr_testkit::{TestServer, UdpPeer};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CFG: &str = r#"#!KAMAILIO
children=1
listen=udp:127.0.0.1:__PORT__
mpath="__MPATH__"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "rtpproxy.so"
modparam("rtpproxy", "rtpproxy_sock", "udp:127.0.0.1:__RTPP1__")
modparam("rtpproxy", "rtpproxy_sock", "2 == udp:127.0.0.1:__RTPP1__=1 udp:127.0.0.1:__RTPP2__=2")
modparam("rtpproxy", "ice_candidate_priority_avp", "$avp(ice)")
modparam("rtpproxy", "extra_id_pv", "x$hdr(X-Extra)-$(ci{s.len})")
modparam("rtpproxy", "timeout_socket", "udp:127.0.0.1:9999")
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "up"); exit; }
    route(MEDIA);
    $du = $hdr(X-Du);
    if ($hdr(X-T) != $null) { t_on_failure("F"); t_on_reply("R"); t_relay(); exit; }
    forward();
}
failure_route[F] {
    route(MEDIA);
}
# The global reply route runs before tm has matched the transaction, a
# named one after (where manage sees a late offer).
onreply_route {
    if ($hdr(X-Named) == $null) { route(MEDIA); }
}
onreply_route[R] {
    if ($hdr(X-Named) != $null) { route(MEDIA); }
}
route[MEDIA] {
    if ($hdr(X-Ice) != $null) { $avp(ice) = $(hdr(X-Ice){s.int}); }
    if ($hdr(X-Set) != $null) {
        $var(s) = $(hdr(X-Set){s.int});
        if ($hdr(X-Set) == "str") { $var(s) = "two"; }
        if (!set_rtp_proxy_set("$var(s)")) { append_hf("X-Set-Failed: 1\r\n"); }
    }
    $var(f) = "";
    if ($hdr(X-F) != $null) { $var(f) = $hdr(X-F); }
    # (A $null $var compares equal to any string: set it first.)
    $var(fn) = "manage";
    if ($hdr(X-Fn) != $null) { $var(fn) = $hdr(X-Fn); }
    $var(r) = "none";
    if ($var(fn) == "offer") { $var(r) = rtpproxy_offer("$var(f)"); }
    else if ($var(fn) == "offer_ip") { $var(r) = rtpproxy_offer("$var(f)", "$hdr(X-IP)"); }
    else if ($var(fn) == "answer") { $var(r) = rtpproxy_answer("$var(f)"); }
    else if ($var(fn) == "answer0") { $var(r) = rtpproxy_answer(); }
    else if ($var(fn) == "offer0") { $var(r) = rtpproxy_offer(); }
    else if ($var(fn) == "destroy") { $var(r) = rtpproxy_destroy("$var(f)"); }
    else if ($var(fn) == "destroy0") { $var(r) = rtpproxy_destroy(); }
    else if ($var(fn) == "unforce") { $var(r) = unforce_rtp_proxy(); }
    else if ($var(fn) == "record") { $var(r) = start_recording(); }
    else if ($var(fn) == "stat") { $var(r) = $rtpstat; }
    else if ($var(fn) == "uac") { $var(r) = rtpproxy_stream2uac("$hdr(X-Prompt)", 3); }
    else if ($var(fn) == "uas") { $var(r) = rtpproxy_stream2uas("music", -1); }
    else if ($var(fn) == "stopuac") { $var(r) = rtpproxy_stop_stream2uac(); }
    else if ($var(fn) == "stopuas") { $var(r) = rtpproxy_stop_stream2uas(); }
    else if ($var(fn) == "manage_ip") { $var(r) = rtpproxy_manage("$var(f)", "$hdr(X-IP)"); }
    else if ($var(fn) == "manage0") { $var(r) = rtpproxy_manage(); }
    else { $var(r) = rtpproxy_manage("$var(f)"); }
    append_hf("X-R: $var(r)\r\n");
}
"#;

/// The scripted RTPProxy: two UDP sockets (set 2 has both), every
/// command recorded with the socket it came to.
struct FakeRtpp {
    ports: [u16; 2],
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeRtpp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A small stable hash (FNV-1a) for the answers.
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x01000193)
    })
}

/// The answer to a command (without its cookie).
fn answer_to(cmd: &str) -> String {
    let mut w = cmd.split_whitespace();
    let op = w.next().unwrap_or("");
    let call = w.next().unwrap_or("");
    match op.chars().next() {
        Some('V') if op == "V" => "20040107".into(),
        Some('V') => "1".into(),
        Some('U') | Some('L') => {
            let port = 20000 + (fnv(cmd) % 10000) * 2;
            if call.starts_with("e8") {
                "E8".into()
            } else if call.starts_with("zero") {
                "0".into()
            } else if call.starts_with("portonly") {
                port.to_string()
            } else if call.starts_with("v6ans") {
                format!("{port} ::1 6")
            } else if call.starts_with("twotok") {
                format!("{port} 192.0.2.77")
            } else {
                format!("{port} 127.0.0.1")
            }
        }
        Some('Q') => "ttl=5 packets".into(),
        _ => "0".into(),
    }
}

fn fake_rtpp() -> FakeRtpp {
    let log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut ports = [0u16; 2];
    for (i, p) in ports.iter_mut().enumerate() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        *p = s.local_addr().unwrap().port();
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let (cookie, cmd) = text.split_once(' ').unwrap_or(("", &text));
                let ans = answer_to(cmd);
                log.lock().unwrap().push(format!("rtpp{}: {cmd}", i + 1));
                let _ = s.send_to(format!("{cookie} {ans}\n").as_bytes(), from);
            }
        });
    }
    FakeRtpp { ports, log, stop }
}

const OFFER: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 10.0.0.20\r\ns=-\r\nc=IN IP4 10.0.0.20\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
const STREAMS: &str = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001\r\nm=video 4002 RTP/AVP 96 97\r\nc=IN IP4 192.168.1.11\r\na=rtcp:4005 IN IP4 192.168.1.11\r\nm=audio 0 RTP/AVP 0\r\nm=image 6000 udptl t38\r\n";
const ICE: &str = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=candidate:1 1 UDP 2130706431 192.168.1.10 4000 typ host\r\na=candidate:1 2 UDP 2130706430 192.168.1.10 4001 typ host\r\na=sendrecv\r\n";
const HOLD: &str = "v=0\r\no=- 1 2 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
const MARKED: &str = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=nortpproxy:yes\r\n";
const MEDIA_C: &str = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.168.1.12\r\nm=audio 4010 RTP/AVP 8\r\nc=IN IP4 192.168.1.13\r\n";
const V6: &str = "v=0\r\no=- 1 1 IN IP6 2001:db8::10\r\ns=-\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const LF: &str =
    "v=0\no=- 1 1 IN IP4 192.168.1.10\ns=-\nc=IN IP4 192.168.1.10\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
const NO_O: &str = "v=0\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const ODD: &str = "x=junk before v\r\nv=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:\r\nm=audio 4002 RTP/AVP\r\na=candidate:1 1 UDP 1 192.168.1.10 4002 typ host\r\nv=0\r\no=- 2 2 IN IP4 192.168.1.20\r\nc=IN IP4 192.168.1.20\r\nm=audio 4004 RTP/AVP 8\r\n";
const TRAILING: &str = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\r\n\r\n";

/// One step of a call: a request from the caller (forwarded to the
/// callee) or a reply from the callee (forwarded to the caller).
enum Step {
    Req {
        method: &'static str,
        to_tag: bool,
        body: Option<(&'static str, &'static str)>,
        hdrs: Vec<String>,
    },
    Rep {
        code: u16,
        body: Option<(&'static str, &'static str)>,
        hdrs: Vec<String>,
    },
}

fn req(method: &'static str, to_tag: bool, body: Option<&'static str>, hdrs: &[&str]) -> Step {
    Step::Req {
        method,
        to_tag,
        body: body.map(|b| ("application/sdp", b)),
        hdrs: hdrs.iter().map(|s| s.to_string()).collect(),
    }
}

fn rep(code: u16, body: Option<&'static str>, hdrs: &[&str]) -> Step {
    Step::Rep {
        code,
        body: body.map(|b| ("application/sdp", b)),
        hdrs: hdrs.iter().map(|s| s.to_string()).collect(),
    }
}

/// A call: its Call-ID and steps.
struct Call {
    id: String,
    steps: Vec<Step>,
}

fn call(id: &str, steps: Vec<Step>) -> Call {
    Call {
        id: id.to_string(),
        steps,
    }
}

/// INVITE with `offer` and `flags`, 200 with ANSWER, ACK, BYE: through
/// `rtpproxy_manage(flags)`.
fn managed(id: &str, flags: &str, offer: &'static str) -> Call {
    let f = format!("X-F: {flags}");
    let f = f.as_str();
    call(
        id,
        vec![
            req("INVITE", false, Some(offer), &[f]),
            rep(200, Some(ANSWER), &[f]),
            req("ACK", true, None, &[f]),
            req("BYE", true, None, &[f]),
            rep(200, None, &[f]),
        ],
    )
}

fn calls() -> Vec<Call> {
    let mut v = vec![
        managed("plain", "", OFFER),
        managed("co", "co", OFFER),
        managed("cor", "cor", OFFER),
        managed("upper", "COR", OFFER),
        managed("asym", "a", OFFER),
        managed("sym", "w", OFFER),
        managed("bridge", "x", OFFER),
        managed("internal", "ie", OFFER),
        managed("repack", "z20", OFFER),
        managed("combo", "wiez30r", OFFER),
        call(
            "via1",
            vec![
                req("INVITE", false, Some(OFFER), &["X-F: 1"]),
                rep(200, Some(ANSWER), &[]),
                req("BYE", true, None, &["X-F: 1"]),
            ],
        ),
        managed("via3", "3", OFFER),
        managed("bad", "s", OFFER),
        managed("badb", "B", OFFER),
        managed("lookup", "l", OFFER),
        managed("streams", "", STREAMS),
        managed("streamsc", "c", STREAMS),
        managed("mediac", "c", MEDIA_C),
        managed("mediac0", "", MEDIA_C),
        managed("hold", "", HOLD),
        managed("holdr", "r", HOLD),
        managed("marked", "", MARKED),
        managed("forced", "f", MARKED),
        managed("v6", "r", V6),
        managed("v6src", "", V6),
        managed("lf", "", LF),
        managed("trailing", "", TRAILING),
        managed("noo", "", NO_O),
        managed("ice", "", ICE),
        managed("odd", "", ODD),
        managed("e8call", "", OFFER),
        managed("zerocall", "", OFFER),
        managed("portonly", "", OFFER),
        managed("portonlyr", "r", OFFER),
        managed("v6ans", "", OFFER),
        managed("twotok", "", OFFER),
        managed("twotokhold", "", HOLD),
    ];
    // Through tm: a late offer (the offer in the 200, the answer in the
    // ACK) and a refused call (failure_route).
    v.push(call(
        "late",
        vec![
            req("INVITE", false, None, &["X-T: 1"]),
            rep(200, Some(ANSWER), &[]),
            req("ACK", true, Some(OFFER), &[]),
            req("BYE", true, None, &[]),
        ],
    ));
    v.push(call(
        "late2",
        vec![
            req("INVITE", false, None, &["X-T: 1"]),
            rep(183, Some(ANSWER), &["X-Named: 1"]),
            rep(200, Some(ANSWER), &["X-Named: 1"]),
            req("ACK", true, Some(OFFER), &[]),
        ],
    ));
    v.push(call(
        "early",
        vec![
            req("INVITE", false, Some(OFFER), &["X-T: 1"]),
            rep(200, Some(ANSWER), &["X-Named: 1"]),
            req("ACK", true, None, &[]),
        ],
    ));
    v.push(call(
        "refused",
        vec![
            req("INVITE", false, Some(OFFER), &["X-T: 1"]),
            rep(183, Some(ANSWER), &[]),
            rep(486, None, &[]),
        ],
    ));
    v.push(call(
        "icehigh",
        vec![
            req("INVITE", false, Some(ICE), &["X-Ice: 1"]),
            rep(200, Some(ICE), &["X-Ice: 0"]),
        ],
    ));
    v.push(call(
        "icebad",
        vec![req("INVITE", false, Some(ICE), &["X-Ice: 7"])],
    ));
    v.push(call(
        "extra",
        vec![
            req("INVITE", false, Some(OFFER), &["X-F: b", "X-Extra: leg7"]),
            req("BYE", true, None, &["X-F: b", "X-Extra: leg7"]),
            req("BYE", true, None, &["X-F: 1b", "X-Extra: leg7"]),
        ],
    ));
    v.push(call(
        "sets",
        vec![
            req("INVITE", false, Some(OFFER), &["X-Set: 2"]),
            req("INVITE", false, Some(OFFER), &["X-Set: 7"]),
            req("BYE", true, None, &["X-Set: 2", "X-F: t"]),
        ],
    ));
    v.push(call(
        "setstr",
        vec![req("INVITE", false, Some(OFFER), &["X-Set: str"])],
    ));
    for id in ["set2a", "set2b", "set2c", "set2d", "set2e", "set2f"] {
        v.push(call(
            id,
            vec![req("INVITE", false, Some(OFFER), &["X-Set: 2"])],
        ));
    }
    v.push(call(
        "explicit",
        vec![
            req("INVITE", false, Some(OFFER), &["X-Fn: offer", "X-F: r"]),
            req("INVITE", false, Some(OFFER), &["X-Fn: offer0"]),
            req(
                "INVITE",
                false,
                Some(OFFER),
                &["X-Fn: offer_ip", "X-IP: 203.0.113.5"],
            ),
            req("INVITE", false, Some(OFFER), &["X-Fn: answer"]),
            rep(183, Some(ANSWER), &["X-Fn: answer0"]),
            rep(200, Some(ANSWER), &["X-Fn: offer", "X-F: co"]),
            req("ACK", true, Some(ANSWER), &["X-Fn: answer", "X-F: c"]),
            req("ACK", false, Some(ANSWER), &["X-Fn: answer"]),
            req("INVITE", true, Some(OFFER), &["X-Fn: offer", "X-F: l"]),
            req("INVITE", false, Some(OFFER), &["X-Fn: answer", "X-F: l"]),
            req(
                "INVITE",
                true,
                Some(OFFER),
                &["X-Fn: manage_ip", "X-IP: 198.51.100.9"],
            ),
        ],
    ));
    v.push(call(
        "bodies",
        vec![
            Step::Req {
                method: "INVITE",
                to_tag: false,
                body: Some(("text/plain", OFFER)),
                hdrs: vec![],
            },
            Step::Req {
                method: "INVITE",
                to_tag: false,
                body: Some(("", OFFER)),
                hdrs: vec![],
            },
            Step::Req {
                method: "INVITE",
                to_tag: false,
                body: Some(("multipart/mixed;boundary=zz", "--zz\r\nContent-Type: text/plain\r\n\r\nhello\r\n--zz\r\nContent-Type: text/plain\r\n--zz\r\nContent-Type: application/sdp\r\n\r\nv=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\r\n--zz--\r\n")),
                hdrs: vec![],
            },
            req("INVITE", false, None, &[]),
            req("UPDATE", true, Some(OFFER), &[]),
            rep(200, Some(ANSWER), &[]),
            req("PRACK", true, Some(OFFER), &[]),
            req("INFO", true, Some(OFFER), &[]),
            rep(180, None, &[]),
            rep(486, None, &["X-F: t"]),
            req("CANCEL", false, None, &[]),
        ],
    ));
    v.push(call(
        "others",
        vec![
            req("INVITE", false, Some(OFFER), &["X-Fn: record"]),
            req("INVITE", true, Some(OFFER), &["X-Fn: record"]),
            rep(200, None, &["X-Fn: record"]),
            req("INFO", false, None, &["X-Fn: stat"]),
            req("INFO", true, None, &["X-Fn: stat"]),
            rep(200, None, &["X-Fn: stat"]),
            req("INFO", false, None, &["X-Fn: uac", "X-Prompt: welcome"]),
            req("INFO", true, None, &["X-Fn: uac", "X-Prompt: welcome"]),
            req("INFO", false, None, &["X-Fn: uas"]),
            req("INFO", true, None, &["X-Fn: uas"]),
            req("INFO", false, None, &["X-Fn: stopuac"]),
            req("INFO", true, None, &["X-Fn: stopuas"]),
            req("BYE", true, None, &["X-Fn: destroy", "X-F: 2"]),
            req("BYE", true, None, &["X-Fn: destroy", "X-F: z20"]),
            req("BYE", true, None, &["X-Fn: destroy0"]),
            req("BYE", false, None, &["X-Fn: unforce"]),
            req("BYE", true, None, &["X-F: z20"]),
        ],
    ));
    v
}

/// Builds a request of `call` from `caller` to the proxy, for `callee`.
fn request_text(c: &Call, n: usize, s: &Step, caller: SocketAddr, callee: SocketAddr) -> String {
    let Step::Req {
        method,
        to_tag,
        body,
        hdrs,
    } = s
    else {
        unreachable!()
    };
    let id = &c.id;
    let tt = if *to_tag { ";tag=tt" } else { "" };
    let mut t = format!(
        "{method} sip:bob@{callee} SIP/2.0\r\nVia: SIP/2.0/UDP {caller};branch=z9hG4bK{id}{n}\r\nFrom: <sip:alice@a.example>;tag=ft{id}\r\nTo: <sip:bob@b.example>{tt}\r\nCall-ID: {id}\r\nCSeq: {n} {method}\r\nMax-Forwards: 70\r\nContact: <sip:alice@{caller}>\r\nX-Du: sip:{callee}\r\n"
    );
    for h in hdrs {
        t.push_str(h);
        t.push_str("\r\n");
    }
    let (ct, b) = body.unwrap_or(("", ""));
    if !ct.is_empty() {
        t.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    t.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
    t
}

/// The reply to `forwarded` (as the callee received it).
fn reply_text(s: &Step, forwarded: &sr_testkit::Reply, callee: SocketAddr) -> String {
    let Step::Rep { code, body, hdrs } = s else {
        unreachable!()
    };
    let m = forwarded.msg.msg();
    let mut t = format!("SIP/2.0 {code} X\r\n");
    for v in m.headers_by_name("Via") {
        t.push_str(&format!("Via: {}\r\n", v.value));
    }
    for h in ["From", "Call-ID"] {
        t.push_str(&format!("{h}: {}\r\n", forwarded.header(h).unwrap()));
    }
    let to = forwarded.header("To").unwrap();
    let to = if to.contains("tag=") {
        to
    } else {
        format!("{to};tag=tt")
    };
    t.push_str(&format!(
        "To: {to}\r\nCSeq: {}\r\nContact: <sip:bob@{callee}>\r\n",
        forwarded.header("CSeq").unwrap()
    ));
    for h in hdrs {
        t.push_str(h);
        t.push_str("\r\n");
    }
    let (ct, b) = body.unwrap_or(("", ""));
    if !ct.is_empty() {
        t.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    t.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
    t
}

/// What one arrival shows: the return code and the body.
fn seen(what: &str, r: &sr_testkit::Reply) -> String {
    let body = String::from_utf8_lossy(r.msg.msg().body())
        .replace("\r\n", "|")
        .replace('\n', "/");
    format!(
        "{what}: r={} set-failed={} ct={} body={body}",
        r.header("X-R").unwrap_or_default(),
        r.header("X-Set-Failed").unwrap_or_default(),
        r.header("Content-Type").unwrap_or_default(),
    )
}

/// Runs every call through the server at `to`: one line per step, then
/// one per command the RTPProxy received for it.
fn run(to: SocketAddr, rtpp: &FakeRtpp, caller: &UdpPeer, callee: &UdpPeer) -> Vec<String> {
    let t = Duration::from_secs(3);
    let mut out = Vec::new();
    for c in calls() {
        let mut last_fwd: Option<sr_testkit::Reply> = None;
        for (n, s) in c.steps.iter().enumerate() {
            let what = format!("{} step {n}", c.id);
            match s {
                Step::Req { .. } => {
                    caller.send(to, &request_text(&c, n, s, caller.addr(), callee.addr()));
                    let cseq = format!("{n} ");
                    let r = callee
                        .recv_matching(t, |r| {
                            r.header("Call-ID").as_deref() == Some(c.id.as_str())
                                && r.header("CSeq").is_some_and(|v| v.starts_with(&cseq))
                        })
                        .unwrap_or_else(|| panic!("{what}: nothing forwarded"));
                    out.push(seen(&what, &r));
                    last_fwd = Some(r);
                }
                Step::Rep { code, .. } => {
                    let fwd = last_fwd.as_ref().expect("a request before a reply");
                    callee.send(to, &reply_text(s, fwd, callee.addr()));
                    // (tm's 100 Trying is not a forwarded reply.)
                    // Only this reply: not tm's 100 Trying, nor anything
                    // late from an earlier step.
                    let cseq = fwd.header("CSeq").unwrap_or_default();
                    let r = caller
                        .recv_matching(t, |r| {
                            r.status() == Some(*code)
                                && r.header("Call-ID").as_deref() == Some(c.id.as_str())
                                && r.header("CSeq") == Some(cseq.clone())
                        })
                        .unwrap_or_else(|| panic!("{what}: reply not forwarded"));
                    out.push(seen(&what, &r));
                    // tm's ACK of a failure, or its retransmissions.
                    while callee.recv(Duration::from_millis(50)).is_some() {}
                }
            }
            // The commands of this step (the proxy waits for each answer).
            let cmds: Vec<String> = rtpp.log.lock().unwrap().drain(..).collect();
            let [p1, p2] = rtpp.ports;
            for cmd in cmds {
                out.push(format!(
                    "{what}: {}",
                    cmd.replace(&p1.to_string(), "P1")
                        .replace(&p2.to_string(), "P2")
                ));
            }
        }
    }
    out
}

fn cfg(port: &str, rtpp: &FakeRtpp) -> String {
    CFG.replace("__PORT__", port)
        .replace("__MPATH__", MPATH)
        .replace("__RTPP1__", &rtpp.ports[0].to_string())
        .replace("__RTPP2__", &rtpp.ports[1].to_string())
}

const PROBE: &str = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKup\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: up\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

#[test]
fn rtpproxy_matches_kamailio() {
    if !kamailio::available(&["rtpproxy", "tm", "sl", "pv", "textops"]) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sr-krtpp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (caller, callee) = (UdpPeer::new(), UdpPeer::new());

    let rtpp = fake_rtpp();
    let kam = Kamailio::start(&dir, &cfg("__PORT__", &rtpp));
    kamailio::wait_until_up(&caller, kam.addr, PROBE, Some(&kam.log));
    rtpp.log.lock().unwrap().clear();
    let want = run(kam.addr, &rtpp, &caller, &callee);
    drop(kam);
    drop(rtpp);

    let rtpp = fake_rtpp();
    let srv = TestServer::start(&cfg("{PORT}", &rtpp), siprouter::in_tree());
    kamailio::wait_until_up(&caller, srv.addr(), PROBE, None);
    // At start siprouter tested the proxy as Kamailio's workers do.
    let startup: Vec<String> = rtpp.log.lock().unwrap().drain(..).collect();
    assert!(startup.iter().any(|c| c == "rtpp1: V"), "{startup:?}");
    assert!(
        startup.iter().any(|c| c == "rtpp1: VF 20081102"),
        "{startup:?}"
    );
    let got = run(srv.addr(), &rtpp, &caller, &callee);

    std::fs::write(dir.join("kamailio.txt"), want.join("\n")).unwrap();
    std::fs::write(dir.join("siprouter.txt"), got.join("\n")).unwrap();
    assert_eq!(
        want.len(),
        got.len(),
        "kamailio:\n{}\nsiprouter:\n{}",
        want.join("\n"),
        got.join("\n")
    );
    let diff = differences(&want, &got);
    assert!(
        diff.is_empty(),
        "{} of {} lines differ:\n{}",
        diff.len(),
        want.len(),
        diff.join("\n")
    );
    // `SR_KEEP=1` keeps both transcripts for reading.
    if std::env::var("SR_KEEP").is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
