//! Differential test against Kamailio itself, for textops' multipart-body
//! functions (`filter_body`, `get_body_part`, `get_body_part_raw`,
//! `remove_body_part`, `append_body_part`, `append_body_part_hex`,
//! `set_body_multipart`) and its header functions taking variables or
//! operators (`is_present_hf_re_pv`, `remove_hf_exp_pv`,
//! `remove_hf_match`, `replace_hdrs`). Each request is changed by one case
//! and forwarded statelessly to a user agent; what it gets (headers the
//! cases touch, the body) is compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "textopsx", "xlog"];

const MULTI: &str = "--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\r\n--unique-boundary-1\r\nContent-Type: application/isup;version=itu-t92+\r\nContent-Disposition: signal;handling=required\r\n\r\n0123456789\r\n--unique-boundary-1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--unique-boundary-1--\r\n";

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

/// Each case: name, whether the request has the multipart body (else the
/// SDP one), the script.
const CASES: &[(&str, bool, &str)] = &[
    ("fb1", true, r#"filter_body("application/sdp");"#),
    ("fb2", true, r#"filter_body("application/isup");"#),
    ("fb3", true, r#"filter_body("text/html");"#),
    ("fb5", true, r#"filter_body("text/plain");"#),
    ("fb4", false, r#"filter_body("application/sdp");"#),
    (
        "gp1",
        true,
        r#"$var(p) = "none"; get_body_part("application/isup", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r) $(var(p){s.encode.base64})\r\n");"#,
    ),
    (
        "gp2",
        true,
        r#"$var(p) = "none"; get_body_part_raw("application/sdp", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r) $(var(p){s.encode.base64})\r\n");"#,
    ),
    (
        "gp3",
        true,
        r#"$var(p) = "none"; get_body_part("text/html", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r)\r\n");"#,
    ),
    (
        "gp6",
        true,
        r#"$var(p) = "none"; get_body_part("text/plain", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r) $(var(p){s.encode.base64})\r\n");"#,
    ),
    (
        "gp7",
        true,
        r#"$var(p) = "none"; get_body_part_raw("text/plain", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r) $(var(p){s.encode.base64})\r\n");"#,
    ),
    (
        "gp4",
        false,
        r#"$var(p) = "none"; get_body_part("application/sdp", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r) $(var(p){s.encode.base64})\r\n");"#,
    ),
    (
        "gp5",
        true,
        r#"$var(p) = "none"; get_body_part_raw("application/isup", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r) $(var(p){s.encode.base64})\r\n");"#,
    ),
    ("rp1", true, r#"remove_body_part("application/isup");"#),
    ("rp2", true, r#"remove_body_part("application/sdp");"#),
    ("rp3", true, r#"remove_body_part("text/html");"#),
    ("rp4", true, r#"remove_body_part("text/plain");"#),
    ("ap1", true, r#"append_body_part("hello", "text/plain");"#),
    (
        "ap2",
        true,
        r#"append_body_part("hello $rm", "text/plain", "render;handling=optional");"#,
    ),
    ("ap3", false, r#"append_body_part("hello", "text/plain");"#),
    (
        "ap4",
        true,
        r#"append_body_part_hex("6b 61 6d61", "application/x-test");"#,
    ),
    (
        "ap5",
        true,
        r#"append_body_part("hello", "text/plain\r\nX-Part: 1");"#,
    ),
    ("sb1", false, r#"set_body_multipart();"#),
    (
        "sb2",
        false,
        r#"set_body_multipart("test", "text/plain", "delimiter");"#,
    ),
    (
        "sb3",
        false,
        r#"set_body_multipart("test $rm", "text/plain");"#,
    ),
    ("sb4", true, r#"set_body_multipart();"#),
    (
        "hr1",
        false,
        r#"$var(x) = "X-Fo"; if (is_present_hf_re_pv("^$var(x)")) { append_hf("X-R: yes\r\n"); }"#,
    ),
    (
        "hr2",
        false,
        r#"$var(x) = "X-Nope"; if (is_present_hf_re_pv("^$var(x)")) { append_hf("X-R: yes\r\n"); }"#,
    ),
    (
        "he1",
        false,
        r#"$var(m) = "Info"; $var(k) = "Info-Keep"; remove_hf_exp_pv("^X-$var(m)", "^X-$var(k)");"#,
    ),
    ("hm1", false, r#"remove_hf_match("X-Info", "eq", "data1");"#),
    ("hm2", false, r#"remove_hf_match("X-Info", "ne", "data1");"#),
    ("hm3", false, r#"remove_hf_match("X-Info", "in", "ta2");"#),
    (
        "hm4",
        false,
        r#"remove_hf_match("X-Info", "re", "^data[13]");"#,
    ),
    ("hm5", false, r#"remove_hf_match("X-Info", "eq", "none");"#),
    ("rh1", false, r#"replace_hdrs("data", "DATA");"#),
    ("rh2", false, r#"replace_hdrs("nothing-here", "x");"#),
];

const HEADERS: &str =
    "X-Foo: 1\r\nX-Info: data1\r\nX-Info: data2\r\nX-Info: data3\r\nX-Info-Keep: data4\r\n";

fn config(uas: u16) -> String {
    let mut body = String::from(
        "request_route {\n    if ($hdr(X-T) == $null) { sl_send_reply(\"200\", \"up\"); exit; }\n",
    );
    for (name, _, code) in CASES {
        body.push_str(&format!(
            "    if ($hdr(X-T) == \"{name}\") {{\n        {code}\n        append_hf(\"X-Rc: $rc\\r\\n\");\n    }}\n"
        ));
    }
    body.push_str(&format!(
        "    $du = \"sip:127.0.0.1:{uas}\";\n    forward();\n}}\n"
    ));
    kamailio::head(MODULES) + &body
}

/// The lines of `r` the cases touch (the scene's ports named) and its
/// body.
fn seen(p: &Scene, r: &sr_testkit::Reply) -> String {
    let text = r.text();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let lines: Vec<&str> = head
        .lines()
        .skip(1)
        .filter(|l| {
            ![
                "Via:",
                "Max-Forwards:",
                "From:",
                "To:",
                "Call-ID:",
                "CSeq:",
                "X-T:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect();
    format!("{} || {body:?}", p.names(&lines.join(" / ")))
}

fn scenario(p: &Scene) -> Vec<String> {
    kamailio::wait_until_up(&p.caller, p.srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (name, multi, _) in CASES {
        let (ctype, body) = if *multi {
            ("multipart/mixed;boundary=unique-boundary-1", MULTI)
        } else {
            ("application/sdp", SDP)
        };
        let call = format!("mp-{name}");
        let req = format!(
            "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-T: {name}\r\n{HEADERS}Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            p.caller.addr(),
            body.len()
        );
        p.caller.send(p.srv, &req);
        let got = p.uas[0].recv_matching(Duration::from_secs(2), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        out.push(match got {
            Some(r) => format!("{name}: {}", seen(p, &r)),
            None => format!("{name}: nothing forwarded"),
        });
    }
    out
}

#[test]
fn multipart_bodies_and_header_matches_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("multipart");
    let uas_port = sr_testkit::free_port();
    let cfg = config(uas_port);
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let mut s = Scene::new(srv, 0);
        s.uas
            .push(sr_testkit::UdpPeer::on(&format!("127.0.0.1:{uas_port}")));
        scenario(&s)
    });
    assert!(want.iter().any(|l| l.contains("X-Rc: 1")), "{want:#?}");
    // Kept difference: set_body_multipart on a message that was not
    // multipart closes its last delimiter (`--b--`, RFC 2046, as Kamailio's
    // documentation says its core does); Kamailio 5.6 leaves it open there
    // (its core reads the boundary from the received Content-Type). Written
    // here, then compared as the rest.
    let got: Vec<String> = got
        .into_iter()
        .map(|l| {
            if !l.starts_with("sb1:") && !l.starts_with("sb2:") && !l.starts_with("sb3:") {
                return l;
            }
            assert!(l.ends_with("--\\r\\n\""), "closed last delimiter: {l}");
            let l = format!("{}\\r\\n\"", &l[..l.len() - "--\\r\\n\"".len()]);
            let i = l.find("Content-Length: ").expect("a Content-Length") + 16;
            let j = i + l[i..].find(' ').expect("its end");
            let n: usize = l[i..j].parse().expect("a length");
            format!("{}{}{}", &l[..i], n - 2, &l[j..])
        })
        .collect();
    kamailio::conclude(&dir, &want, &got, "multipart");
}
