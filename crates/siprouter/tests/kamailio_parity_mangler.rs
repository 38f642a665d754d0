//! Differential test against Kamailio itself, for module mangler:
//! `sdp_mangle_ip` (lengths, dotted masks, a mask of 32 bits, errors),
//! `sdp_mangle_port` (relative, absolute, out of range, errors, no
//! body), `encode_contact` (parameters kept, the first Contact header's
//! URIs only, `*`, errors), `decode_contact` (the Request-URI and the
//! destination made of the encoded source) and `decode_contact_header`.
//! Each request is changed by one case and forwarded statelessly to a
//! user agent; the request line, Contact, Content-Length, the SDP's `c=`
//! and `m=` lines and the script's headers are compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "mangler"];

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\nc=IN IP4 192.168.1.100\r\nm=video 0 RTP/AVP 31\r\nm=text 123456 RTP/AVP 98\r\n";

const ENC: &str = "sip:enc*alice*pw*10.0.0.1*5070*tcp*192.0.2.7*5071*tcp@1.2.3.4";

/// Each case: name, Request-URI, Contact header lines, with a body, script.
const CASES: &[(&str, &str, &str, bool, &str)] = &[
    (
        "ip1",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_ip("10.0.0.0/8", "1.2.3.4");"#,
    ),
    (
        "ip2",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_ip("192.168.1.0/255.255.255.0", "public.example.com");"#,
    ),
    (
        "ip3",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_ip("10.0.0.1/32", "5.5.5.5");"#,
    ),
    (
        "ip4",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_ip("10.0.0.1", "5.5.5.5");"#,
    ),
    (
        "ip5",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_ip("10.0.0/8", "5.5.5.5");"#,
    ),
    (
        "ip6",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_ip("172.16.0.0/12", "5.5.5.5");"#,
    ),
    (
        "pt1",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_port("+10");"#,
    ),
    (
        "pt2",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_port("4000");"#,
    ),
    (
        "pt3",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_port("-49169");"#,
    ),
    (
        "pt4",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_port("x");"#,
    ),
    (
        "pt5",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_port("70000");"#,
    ),
    (
        "pt6",
        "sip:x@127.0.0.1",
        "",
        false,
        r#"sdp_mangle_port("+1");"#,
    ),
    (
        "both",
        "sip:x@127.0.0.1",
        "",
        true,
        r#"sdp_mangle_ip("10.0.0.0/8", "1.2.3.4"); sdp_mangle_port("-100");"#,
    ),
    (
        "ec1",
        "sip:x@127.0.0.1",
        "Contact: <sip:alice:pw@10.0.0.1:5070;transport=tcp;foo=bar>;expires=60\r\n",
        false,
        r#"encode_contact("enc", "1.2.3.4");"#,
    ),
    (
        "ec2",
        "sip:x@127.0.0.1",
        "Contact: <sip:a@10.0.0.1>, \"B\" <sip:b@10.0.0.2:5080>\r\nContact: <sip:c@10.0.0.3>\r\n",
        false,
        r#"encode_contact("enc", "1.2.3.4");"#,
    ),
    (
        "ec3",
        "sip:x@127.0.0.1",
        "Contact: *\r\n",
        false,
        r#"encode_contact("enc", "1.2.3.4");"#,
    ),
    (
        "ec4",
        "sip:x@127.0.0.1",
        "Contact: <x:foo>\r\n",
        false,
        r#"encode_contact("enc", "1.2.3.4");"#,
    ),
    (
        "ec5",
        "sip:x@127.0.0.1",
        "",
        false,
        r#"encode_contact("enc", "1.2.3.4");"#,
    ),
    (
        "ec6",
        "sip:x@127.0.0.1",
        "Contact: sip:d@10.0.0.4:5090;expires=5\r\n",
        false,
        r#"encode_contact("p", "h.example.net");"#,
    ),
    (
        "dc1",
        "ENC;lr",
        "",
        false,
        r#"decode_contact(); $var(r) = $rc; append_hf("X-U: $var(r) $ru $du\r\n");"#,
    ),
    (
        "dc2",
        "sip:e***10.0.0.1*****@h",
        "",
        false,
        r#"$du = "sip:9.9.9.9"; decode_contact(); $var(r) = $rc; append_hf("X-U: $var(r) $ru [$du]\r\n");"#,
    ),
    (
        "dc3",
        "sip:alice@10.0.0.1",
        "",
        false,
        r#"decode_contact(); $var(r) = $rc; append_hf("X-U: $var(r) $ru\r\n");"#,
    ),
    (
        "dc4",
        "sip:e*a*b*c*d*e*f*g*h*i@h",
        "",
        false,
        r#"decode_contact(); $var(r) = $rc; append_hf("X-U: $var(r) $ru\r\n");"#,
    ),
    (
        "dh1",
        "sip:x@127.0.0.1",
        "Contact: <ENC;transport=tcp>;expires=30\r\n",
        false,
        r#"decode_contact_header();"#,
    ),
    (
        "dh2",
        "sip:x@127.0.0.1",
        "Contact: <sip:plain@10.0.0.1>, <ENC>\r\n",
        false,
        r#"decode_contact_header();"#,
    ),
];

/// What siprouter forwards in the cases whose body changes length.
const KAMAILIO_DOUBLES_LENGTH: &[(&str, &str)] = &[
    ("ip1", "MESSAGE sip:x@127.0.0.1 SIP/2.0 / Content-Length: 157 / X-Rc: 2 / c=IN IP4 1.2.3.4 / m=audio 49170 RTP/AVP 0 / c=IN IP4 192.168.1.100 / m=video 0 RTP/AVP 31 / m=text 123456 RTP/AVP 98"),
    ("ip2", "MESSAGE sip:x@127.0.0.1 SIP/2.0 / Content-Length: 163 / X-Rc: 2 / c=IN IP4 10.0.0.1 / m=audio 49170 RTP/AVP 0 / c=IN IP4 public.example.com / m=video 0 RTP/AVP 31 / m=text 123456 RTP/AVP 98"),
    ("ip3", "MESSAGE sip:x@127.0.0.1 SIP/2.0 / Content-Length: 157 / X-Rc: 2 / c=IN IP4 5.5.5.5 / m=audio 49170 RTP/AVP 0 / c=IN IP4 192.168.1.100 / m=video 0 RTP/AVP 31 / m=text 123456 RTP/AVP 98"),
    ("pt2", "MESSAGE sip:x@127.0.0.1 SIP/2.0 / Content-Length: 156 / X-Rc: 3 / c=IN IP4 10.0.0.1 / m=audio 4000 RTP/AVP 0 / c=IN IP4 192.168.1.100 / m=video 0 RTP/AVP 31 / m=text 40006 RTP/AVP 98"),
    ("pt3", "MESSAGE sip:x@127.0.0.1 SIP/2.0 / Content-Length: 154 / X-Rc: 2 / c=IN IP4 10.0.0.1 / m=audio 1 RTP/AVP 0 / c=IN IP4 192.168.1.100 / m=video 0 RTP/AVP 31 / m=text 123456 RTP/AVP 98"),
    ("both", "MESSAGE sip:x@127.0.0.1 SIP/2.0 / Content-Length: 157 / X-Rc: 3 / c=IN IP4 1.2.3.4 / m=audio 49070 RTP/AVP 0 / c=IN IP4 192.168.1.100 / m=video 0 RTP/AVP 31 / m=text 122456 RTP/AVP 98"),
];

fn config(uas: u16) -> String {
    let mut body = String::from(
        "request_route {\n    if ($hdr(X-T) == $null) { sl_send_reply(\"200\", \"up\"); exit; }\n",
    );
    for (name, _, _, _, code) in CASES {
        body.push_str(&format!(
            "    if ($hdr(X-T) == \"{name}\") {{\n        {code}\n        append_hf(\"X-Rc: $rc\\r\\n\");\n    }}\n"
        ));
    }
    body.push_str(&format!(
        "    $du = \"sip:127.0.0.1:{uas}\";\n    forward();\n}}\n"
    ));
    kamailio::head(MODULES) + &body
}

/// The request line and the lines the cases touch, the scene's ports
/// named.
fn seen(p: &Scene, r: &sr_testkit::Reply) -> String {
    let text = r.text();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .filter(|(i, l)| {
            *i == 0
                || ["Contact:", "X-", "Content-Length:", "c=", "m="]
                    .iter()
                    .any(|p| l.starts_with(p))
        })
        .map(|(_, l)| l.to_string())
        .filter(|l| !l.starts_with("X-T:"))
        .collect();
    p.names(&lines.join(" / "))
}

fn scenario(p: &Scene) -> Vec<String> {
    kamailio::wait_until_up(&p.caller, p.srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (name, ruri, contact, sdp, _) in CASES {
        let call = format!("mg-{name}");
        let ruri = ruri.replace("ENC", ENC);
        let contact = contact.replace("ENC", ENC);
        let (ct, body) = if *sdp {
            ("Content-Type: application/sdp\r\n", SDP)
        } else {
            ("", "")
        };
        let req = format!(
            "MESSAGE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-T: {name}\r\n{contact}{ct}Content-Length: {}\r\n\r\n{body}",
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
fn mangler_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("mangler");
    let uas_port = sr_testkit::free_port();
    let cfg = config(uas_port);
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let mut s = Scene::new(srv, 0);
        s.uas
            .push(sr_testkit::UdpPeer::on(&format!("127.0.0.1:{uas_port}")));
        scenario(&s)
    });
    let (mut want, mut got) = (want, got);
    // Kept difference: when the body's length changes, Kamailio 5.6
    // writes the new Content-Length twice (mangler patches the header and
    // the core fixes it again: `Content-Length: 157157`, seen on the
    // wire), so the user agent cannot read what it forwards. siprouter
    // writes it once; its requests are checked on their own.
    for (name, line) in KAMAILIO_DOUBLES_LENGTH.iter().rev() {
        let i = CASES.iter().position(|c| c.0 == *name).unwrap();
        assert_eq!(want[i], format!("{name}: nothing forwarded"), "{want:#?}");
        assert_eq!(got[i], format!("{name}: {line}"), "{got:#?}");
        want.remove(i);
        got.remove(i);
    }
    kamailio::conclude(&dir, &want, &got, "mangler");
}
