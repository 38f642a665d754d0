//! Differential test against Kamailio itself, for siputils' Contact and
//! Request-URI encodings (`encode_contact`, `decode_contact`,
//! `decode_contact_header`, `contact_param_encode`, `contact_param_decode`,
//! `contact_param_decode_uri`, `contact_param_rm`), `get_uri_param`, the
//! Remote-Party-ID functions (`append_rpid_hf`, `is_rpid_user_e164`) and
//! `sip_p_charging_vector`. Each request is changed by one case and
//! forwarded statelessly to a user agent; what it gets is compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "siputils", "xlog"];

/// Each case: name, Request-URI, Contact value (none: no Contact), script.
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "ec1",
        "sip:x@127.0.0.1",
        "<sip:alice:pw@10.0.0.1:5070;transport=tcp;foo=bar>",
        r#"encode_contact("natted", "1.2.3.4");"#,
    ),
    (
        "ec2",
        "sip:x@127.0.0.1",
        "<sip:10.0.0.1>;expires=60",
        r#"encode_contact("natted", "1.2.3.4");"#,
    ),
    (
        "ec3",
        "sip:x@127.0.0.1",
        "\"Al\" <sip:alice@10.0.0.1:5070>, <sip:bob@10.0.0.2;transport=udp>",
        r#"encode_contact("natted", "$var(h)");"#,
    ),
    (
        "dc1",
        "sip:natted*alice*pw*10.0.0.1*5070*tcp@1.2.3.4",
        "",
        r#"decode_contact(); $var(r) = $rc; append_hf("X-U: $var(r) $ru\r\n");"#,
    ),
    (
        "dc2",
        "sip:natted*alice**10.0.0.1*5070*udp@1.2.3.4;lr",
        "",
        r#"decode_contact(); $var(r) = $rc; append_hf("X-U: $var(r) $ru\r\n");"#,
    ),
    (
        "dc3",
        "sip:alice@10.0.0.1",
        "",
        r#"decode_contact(); $var(r) = $rc; append_hf("X-U: $var(r) $ru\r\n");"#,
    ),
    (
        "dh1",
        "sip:x@127.0.0.1",
        "<sip:natted*alice*pw*10.0.0.1*5070*tcp@1.2.3.4>;expires=30",
        r#"decode_contact_header();"#,
    ),
    (
        "cp1",
        "sip:x@127.0.0.1",
        "<sip:alice@10.0.0.1:5070;transport=tcp>;expires=30",
        r#"contact_param_encode("ksu", "sip:1.2.3.4:5060;transport=tcp");"#,
    ),
    (
        "cp2",
        "sip:x@127.0.0.1",
        "<sip:1.2.3.4:5060;transport=tcp;ksu=c2lwOmFsaWNlQDEwLjAuMC4xOjUwNzA>;expires=30",
        r#"contact_param_decode("ksu");"#,
    ),
    (
        "cp3",
        "sip:1.2.3.4:5060;ksu=c2lwOmFsaWNlQDEwLjAuMC4xOjUwNzA;transport=tcp",
        "",
        r#"contact_param_decode_ruri("ksu"); $var(r) = $rc; append_hf("X-U: $var(r) $ru\r\n");"#,
    ),
    (
        "cp4",
        "sip:x@127.0.0.1",
        "<sip:alice@10.0.0.1;foo=1;bar=2;foo>, <sip:bob@10.0.0.2;foo=3>",
        r#"contact_param_rm("foo");"#,
    ),
    (
        "cp5",
        "sip:x@127.0.0.1",
        "<sip:alice@10.0.0.1>",
        r#"contact_param_decode("ksu");"#,
    ),
    (
        "gu1",
        "sip:x@127.0.0.1;foo=bar;nat=yes",
        "",
        r#"$var(p) = "none"; get_uri_param("nat", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r) $var(p)\r\n");"#,
    ),
    (
        "gu2",
        "sip:x@127.0.0.1;foo=bar",
        "",
        r#"$var(p) = "none"; get_uri_param("nat", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r) $var(p)\r\n");"#,
    ),
    (
        "gu3",
        "sip:x@127.0.0.1;lr;foo=bar",
        "",
        r#"$var(p) = "none"; get_uri_param("lr", "$var(p)"); $var(r) = $rc; append_hf("X-P: $var(r) [$var(p)]\r\n");"#,
    ),
    (
        "rp1",
        "sip:x@127.0.0.1",
        "",
        r#"$avp(s:rpid) = "<sip:+4912345@example.com>"; append_rpid_hf();"#,
    ),
    (
        "rp2",
        "sip:x@127.0.0.1",
        "",
        r#"$avp(s:rpid) = "sip:alice@example.com"; append_rpid_hf("Alice ", ";x=y");"#,
    ),
    ("rp3", "sip:x@127.0.0.1", "", r#"append_rpid_hf();"#),
    (
        "re1",
        "sip:x@127.0.0.1",
        "",
        r#"$avp(s:rpid) = "<sip:+4912345@example.com>"; if (is_rpid_user_e164()) { append_hf("X-E: yes\r\n"); }"#,
    ),
    (
        "re2",
        "sip:x@127.0.0.1",
        "",
        r#"$avp(s:rpid) = "sip:alice@example.com"; if (is_rpid_user_e164()) { append_hf("X-E: yes\r\n"); }"#,
    ),
    (
        "re3",
        "sip:x@127.0.0.1",
        "",
        r#"$avp(s:rpid) = "\"Bob\" <sip:+4912345;x=1@example.com;user=phone>"; if (is_rpid_user_e164()) { append_hf("X-E: yes\r\n"); }"#,
    ),
    (
        "pc1",
        "sip:x@127.0.0.1",
        "",
        r#"sip_p_charging_vector("g"); append_hf("X-V: $(pcv(value){s.len}) $pcv(genaddr)\r\n");"#,
    ),
    (
        "pc4",
        "sip:x@127.0.0.1",
        "",
        r#"sip_p_charging_vector("g"); append_hf("X-V: $pcv(value) $pcv(genaddr) $pcv(orig)\r\n");"#,
    ),
];

/// Cases run on siprouter alone: with a received P-Charging-Vector,
/// Kamailio 5.6's `r` and `f` leave it in place (its lookup of the header
/// it parsed returns none to remove), where its manual says they remove
/// and replace it.
const OWN_CASES: &[(&str, &str, &str, &str)] = &[
    // A received header without icid-value goes too.
    (
        "pc5",
        "sip:x@127.0.0.1",
        "",
        r#"sip_p_charging_vector("r");"#,
    ),
    (
        "pc2",
        "sip:x@127.0.0.1",
        "",
        r#"sip_p_charging_vector("r");"#,
    ),
    (
        "pc3",
        "sip:x@127.0.0.1",
        "",
        r#"sip_p_charging_vector("f"); append_hf("X-V: $(pcv(value){s.len}) $pcv(genaddr)\r\n");"#,
    ),
];

fn config(uas: u16) -> String {
    let mut body = String::from(
        "request_route {\n    if ($hdr(X-T) == $null) { sl_send_reply(\"200\", \"up\"); exit; }\n    $var(h) = \"5.6.7.8\";\n",
    );
    for (name, _, _, code) in CASES.iter().chain(OWN_CASES) {
        body.push_str(&format!(
            "    if ($hdr(X-T) == \"{name}\") {{\n        {code}\n        append_hf(\"X-Rc: $rc\\r\\n\");\n    }}\n"
        ));
    }
    body.push_str(&format!(
        "    $du = \"sip:127.0.0.1:{uas}\";\n    forward();\n}}\n"
    ));
    kamailio::head(MODULES) + &body
}

/// The request line and the lines the cases touch (the scene's ports
/// named, the charging vector's random icid written alike).
fn seen(p: &Scene, r: &sr_testkit::Reply) -> String {
    let text = r.text();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let lines: Vec<String> = head
        .lines()
        .enumerate()
        .filter(|(i, l)| {
            *i == 0
                || ["Contact:", "X-", "Remote-Party-ID:", "P-Charging-Vector:"]
                    .iter()
                    .any(|p| l.starts_with(p))
        })
        .map(|(_, l)| match l.find("icid-value=") {
            Some(i) => {
                let rest = &l[i + 11..];
                let end = rest.find(';').unwrap_or(rest.len());
                format!("{}icid-value=<{} chars>{}", &l[..i], end, &rest[end..])
            }
            None => l.to_string(),
        })
        .filter(|l| !l.starts_with("X-T:"))
        .collect();
    p.names(&lines.join(" / "))
}

fn scenario(p: &Scene, cases: &[(&str, &str, &str, &str)]) -> Vec<String> {
    kamailio::wait_until_up(&p.caller, p.srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (name, ruri, contact, _) in cases {
        let call = format!("su-{name}");
        let contact = if contact.is_empty() {
            String::new()
        } else {
            format!("Contact: {contact}\r\n")
        };
        let pcv = if *name == "pc5" {
            "P-Charging-Vector: orig-ioi=home1.net\r\n"
        } else if name.starts_with("pc") && *name != "pc1" {
            "P-Charging-Vector: icid-value=abc;icid-generated-at=192.0.2.1;orig-ioi=home1.net\r\n"
        } else {
            ""
        };
        let req = format!(
            "MESSAGE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-T: {name}\r\n{contact}{pcv}Content-Length: 0\r\n\r\n",
            p.caller.addr(),
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
fn contact_encodings_and_rpid_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("siputils-contact");
    let uas_port = sr_testkit::free_port();
    let cfg = config(uas_port);
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let mut s = Scene::new(srv, 0);
        s.uas
            .push(sr_testkit::UdpPeer::on(&format!("127.0.0.1:{uas_port}")));
        scenario(&s, CASES)
    });
    assert!(want.iter().any(|l| l.contains("X-Rc: 1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "siputils contact encodings");
}

#[test]
fn charging_vector_is_removed_and_replaced() {
    let uas_port = sr_testkit::free_port();
    let cfg = config(uas_port).replace("__PORT__", "{PORT}");
    let srv = sr_testkit::TestServer::start(&cfg, siprouter::in_tree());
    let mut s = Scene::new(srv.addr(), 0);
    s.uas
        .push(sr_testkit::UdpPeer::on(&format!("127.0.0.1:{uas_port}")));
    let got = scenario(&s, OWN_CASES);
    assert_eq!(
        got[0], "pc5: MESSAGE sip:x@127.0.0.1 SIP/2.0 / X-Rc: 1",
        "{got:#?}"
    );
    assert_eq!(
        got[1], "pc2: MESSAGE sip:x@127.0.0.1 SIP/2.0 / X-Rc: 1",
        "{got:#?}"
    );
    assert_eq!(
        got[2],
        "pc3: MESSAGE sip:x@127.0.0.1 SIP/2.0 / P-Charging-Vector: icid-value=<32 chars>; icid-generated-at=127.0.0.1 / X-V: 32 127.0.0.1 / X-Rc: 1",
        "{got:#?}"
    );
}
