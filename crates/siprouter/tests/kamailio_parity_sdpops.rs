//! Differential test against Kamailio itself, for the sdpops module: one
//! configuration run by Kamailio 5.6 and by siprouter in turn, the same
//! INVITEs (a two-stream SDP, an SDP without Content-Type, none at all)
//! through each, every sdpops function and `$sdp` called on them, and
//! compared: each return code and value, and the SDP as the next hop gets
//! it, byte for byte.
//!
//! Without Kamailio and its sdpops module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::UdpPeer;
use std::net::SocketAddr;
use std::time::Duration;

const BODY: &str = r#"
request_route {
    if ($hdr(X-Fn) == $null) { sl_send_reply("200", "up"); exit; }
    $var(r) = "none";
    $var(v) = "";
    $var(f) = $hdr(X-Fn);
    if ($var(f) == "rm_id") { $var(r) = sdp_remove_codecs_by_id("$hdr(X-A)"); }
    if ($var(f) == "rm_id_m") { $var(r) = sdp_remove_codecs_by_id("$hdr(X-A)", "$hdr(X-M)"); }
    if ($var(f) == "rm_name") { $var(r) = sdp_remove_codecs_by_name("$hdr(X-A)"); }
    if ($var(f) == "rm_name_m") { $var(r) = sdp_remove_codecs_by_name("$hdr(X-A)", "$hdr(X-M)"); }
    if ($var(f) == "keep_id") { $var(r) = sdp_keep_codecs_by_id("$hdr(X-A)"); }
    if ($var(f) == "keep_name") { $var(r) = sdp_keep_codecs_by_name("$hdr(X-A)"); }
    if ($var(f) == "keep_name_m") { $var(r) = sdp_keep_codecs_by_name("$hdr(X-A)", "$hdr(X-M)"); }
    if ($var(f) == "with_id") { $var(r) = sdp_with_codecs_by_id("$hdr(X-A)"); }
    if ($var(f) == "with_name") { $var(r) = sdp_with_codecs_by_name("$hdr(X-A)"); }
    if ($var(f) == "with_media") { $var(r) = sdp_with_media("$hdr(X-A)"); }
    if ($var(f) == "with_active") { $var(r) = sdp_with_active_media("$hdr(X-A)"); }
    if ($var(f) == "rm_media") { $var(r) = sdp_remove_media("$hdr(X-A)"); }
    if ($var(f) == "with_tr") { $var(r) = sdp_with_transport("$hdr(X-A)"); }
    if ($var(f) == "like") { $var(r) = sdp_with_transport_like("$hdr(X-A)"); }
    if ($var(f) == "rm_tr") { $var(r) = sdp_remove_transport("$hdr(X-A)"); }
    if ($var(f) == "transport") { $var(r) = sdp_transport("$avp(t)"); $var(v) = $avp(t); }
    if ($var(f) == "ice") { $var(r) = sdp_with_ice(); }
    if ($var(f) == "rm_prefix") { $var(r) = sdp_remove_line_by_prefix("$hdr(X-A)"); }
    if ($var(f) == "rm_prefix_m") { $var(r) = sdp_remove_line_by_prefix("$hdr(X-A)", "$hdr(X-M)"); }
    if ($var(f) == "get") { $var(r) = sdp_get("$avp(b)"); $var(v) = $(avp(b){s.len}); }
    if ($var(f) == "content") { $var(r) = sdp_content(); }
    if ($var(f) == "content1") { $var(r) = sdp_content("1"); }
    if ($var(f) == "line") { $var(r) = sdp_get_line_startswith("$avp(l)", "$hdr(X-A)"); $var(v) = $avp(l); }
    if ($var(f) == "family") { $var(r) = sdp_get_address_family(); }
    if ($var(f) == "version") { $var(r) = $sdp(sess_version); $var(v) = $(sdp(body){s.len}); }
    if ($var(f) == "bump") { $var(x) = $sdp(sess_version); $sdp(sess_version) = -1; $var(r) = $sdp(sess_version); }
    if ($var(f) == "seq") {
        sdp_remove_codecs_by_name("PCMA");
        $var(r) = sdp_with_codecs_by_name("PCMA");
        sdp_remove_media("video");
        $var(v) = sdp_with_media("video");
        sdp_remove_line_by_prefix("a=X-");
    }
    if ($var(f) == "twice") { sdp_remove_codecs_by_id("8"); $var(r) = sdp_remove_codecs_by_id("8"); }
    if ($var(f) == "keep_rm") { sdp_keep_codecs_by_id("0,31"); $var(r) = sdp_remove_media("video"); }
    append_hf("X-R: $var(r) $var(v)\r\n");
    forward();
}
"#;

const MODULES: &[&str] = &["sl", "pv", "textops", "sdpops"];

const SDP: &str = "v=0\r\no=alice 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=X-sess:1\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=X-foo:bar\r\na=sendrecv\r\nm=video 51372 RTP/AVP 31 96\r\na=rtpmap:31 H261/90000\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=42e01f\r\na=rtcp-fb:96 nack\r\na=X-bar:baz\r\n";

const ICE: &str = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 0 RTP/SAVP 0\r\na=candidate:1 1 UDP 1 ::1 4000 typ host\r\nm=audio 4002 RTP/AVP 8\r\na=inactive\r\n";

/// The cases: function, argument, media, body, Content-Type.
fn cases() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
)> {
    let sdp = Some("application/sdp");
    let mut v = vec![
        ("rm_id", "8", "", SDP, sdp),
        ("rm_id", "8, 101", "", SDP, sdp),
        ("rm_id", "99", "", SDP, sdp),
        ("rm_id_m", "0", "AUDIO", SDP, sdp),
        ("rm_id_m", "0", "video", SDP, sdp),
        ("rm_name", "PCMA", "", SDP, sdp),
        ("rm_name", "H264", "", SDP, sdp),
        ("rm_name", "pcmu,TELEPHONE-EVENT", "", SDP, sdp),
        ("rm_name", "nope", "", SDP, sdp),
        ("rm_name_m", "H264", "audio", SDP, sdp),
        ("keep_id", "0,31", "", SDP, sdp),
        ("keep_name", "PCMU,telephone-event", "", SDP, sdp),
        ("keep_name", "nope,pcmu", "", SDP, sdp),
        ("keep_name", "nope", "", SDP, sdp),
        ("keep_name_m", "PCMU", "audio", SDP, sdp),
        ("with_id", "0", "", SDP, sdp),
        ("with_id", "0,31", "", SDP, sdp),
        ("with_id", "99", "", SDP, sdp),
        ("with_name", "PCMA", "", SDP, sdp),
        ("with_name", "telephone-event", "", SDP, sdp),
        ("with_name", "nope", "", SDP, sdp),
        ("with_media", "video", "", SDP, sdp),
        ("with_media", "text", "", SDP, sdp),
        ("with_active", "video", "", SDP, sdp),
        ("with_active", "audio", "", ICE, sdp),
        ("rm_media", "video", "", SDP, sdp),
        ("rm_media", "audio", "", SDP, sdp),
        ("rm_media", "text", "", SDP, sdp),
        ("with_tr", "rtp/avp", "", SDP, sdp),
        ("with_tr", "RTP", "", SDP, sdp),
        ("like", "AVP", "", SDP, sdp),
        ("like", "SAVP", "", ICE, sdp),
        ("rm_tr", "RTP/SAVP", "", ICE, sdp),
        ("transport", "", "", SDP, sdp),
        ("transport", "", "", ICE, sdp),
        ("ice", "", "", SDP, sdp),
        ("ice", "", "", ICE, sdp),
        ("rm_prefix", "a=X-", "", SDP, sdp),
        ("rm_prefix", "A=X-", "", SDP, sdp),
        ("rm_prefix_m", "a=X-", "video", SDP, sdp),
        ("get", "", "", SDP, sdp),
        ("content", "", "", SDP, sdp),
        ("content1", "", "", SDP, sdp),
        ("line", "o=", "", SDP, sdp),
        ("line", "a=rtpmap:9", "", SDP, sdp),
        ("family", "", "", SDP, sdp),
        ("family", "", "", ICE, sdp),
        ("version", "", "", SDP, sdp),
        ("bump", "", "", SDP, sdp),
        ("seq", "", "", SDP, sdp),
        ("twice", "", "", SDP, sdp),
        ("keep_rm", "", "", SDP, sdp),
    ];
    // Without a Content-Type, and without a body.
    for f in [
        "rm_id",
        "with_id",
        "with_name",
        "with_media",
        "transport",
        "ice",
        "rm_prefix",
        "get",
        "content",
        "content1",
        "line",
        "family",
    ] {
        v.push((f, "8", "", SDP, None));
        v.push((f, "8", "", "", None));
    }
    v
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (n, (f, a, m, body, ct)) in cases().into_iter().enumerate() {
        let ct = ct.map_or(String::new(), |c| format!("Content-Type: {c}\r\n"));
        let media = if m.is_empty() {
            String::new()
        } else {
            format!("X-M: {m}\r\n")
        };
        let text = format!(
            "INVITE sip:bob@{uas} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bKsdp{n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: sdp-{n}\r\nCSeq: 1 INVITE\r\nX-Fn: {f}\r\nX-A: {a}\r\n{media}{ct}Content-Length: {}\r\n\r\n{body}",
            body.len(),
            uas = uas.addr(),
            uac = uac.addr(),
        );
        uac.send(srv, &text);
        let call = format!("sdp-{n}");
        let got = uas.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        let line = match got {
            Some(r) => format!(
                "{n} {f}({a}{}{m}): R=[{}] CL={} body={:?}",
                if m.is_empty() { "" } else { "," },
                r.header("X-R").unwrap_or_default(),
                r.header("Content-Length").unwrap_or_default(),
                String::from_utf8_lossy(r.msg.msg().body())
            ),
            None => format!("{n} {f}({a}): nothing"),
        };
        out.push(line);
    }
    out
}

#[test]
fn sdpops_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("sdpops");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(
        want.iter().filter(|l| !l.contains("nothing")).count() > 60,
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "sdpops");
}
