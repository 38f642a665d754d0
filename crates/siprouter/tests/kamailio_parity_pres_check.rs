//! Differential test against Kamailio itself, for presence_xml's
//! `pres_check_basic` and `pres_check_activities`: presentities published
//! (one document with an open tuple and an activity, one closed without
//! a person, one made of two publications merged, one whose person has
//! an empty `activities`), then every check's result for each, for an
//! unknown presentity and for text that is no URI. (An element after
//! `activities` counts too — `happy` in a `mood` — as Kamailio's search
//! goes on into the following siblings.)
//!
//! Without Kamailio and its presence and db_sqlite modules installed the
//! test prints a notice and passes, unless `SR_KAMAILIO_REQUIRED=1`
//! (`.ci/run` sets it).

use crate::reg_support::db;
use sr_testkit::kamailio;

const MODULES: &[&str] = &[
    "tm",
    "sl",
    "pv",
    "textops",
    "db_sqlite",
    "presence",
    "presence_xml",
];

const BODY: &str = r#"
modparam("presence", "db_url", "__DB__")
modparam("presence_xml", "db_url", "__DB__")
modparam("presence_xml", "force_active", 1)
request_route {
    if (is_method("PUBLISH")) {
        if (!t_newtran()) { sl_reply_error(); exit; }
        handle_publish();
        t_release();
        exit;
    }
    if ($hdr(X-U) == $null) { sl_send_reply("200", "up"); exit; }
    pres_check_basic("$hdr(X-U)", "open"); $var(o) = $rc;
    pres_check_basic("$hdr(X-U)", "closed"); $var(c) = $rc;
    pres_check_basic("$hdr(X-U)", "OP"); $var(p) = $rc;
    pres_check_activities("$hdr(X-U)", "on-the-phone"); $var(t) = $rc;
    pres_check_activities("$hdr(X-U)", "away"); $var(a) = $rc;
    pres_check_activities("$hdr(X-U)", "happy"); $var(h) = $rc;
    append_to_reply("X-R: open=$var(o) closed=$var(c) prefix=$var(p) phone=$var(t) away=$var(a) happy=$var(h)\r\n");
    sl_send_reply("200", "ok");
}
"#;

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:USER@example.com">
"#;

fn pidf(user: &str, inner: &str) -> String {
    format!("{}{inner}\n</presence>\n", HEAD.replace("USER", user))
}

fn publish(n: usize, user: &str, body: &str) -> (String, String) {
    let call = format!("pc{n}");
    let r = format!(
        "PUBLISH sip:{user}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=p{n}\r\nTo: <sip:{user}@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 3600\r\nContent-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    (call, r)
}

fn check(n: usize, uri: &str) -> (String, String) {
    let call = format!("pc{n}");
    (
        call.clone(),
        kamailio::options(&call, &format!("X-U: {uri}\r\n")),
    )
}

#[test]
fn presence_checks_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("pres-check");
    let url = format!("sqlite:///{}", dir.join("p.db").display());
    let cfg = (kamailio::head(MODULES) + BODY).replace("__DB__", &url);
    let steps = vec![
        publish(
            0,
            "alice",
            &pidf(
                "alice",
                r#"<tuple id="a1"><status><basic>open</basic></status></tuple>
<dm:person id="pa"><rpid:activities><rpid:on-the-phone/></rpid:activities><rpid:mood><rpid:happy/></rpid:mood></dm:person>"#,
            ),
        ),
        publish(
            1,
            "bob",
            &pidf(
                "bob",
                r#"<tuple id="b1"><status><basic>closed</basic></status><note>gone</note></tuple>"#,
            ),
        ),
        publish(
            2,
            "carol",
            &pidf(
                "carol",
                r#"<tuple id="c1"><status><basic>closed</basic></status></tuple>"#,
            ),
        ),
        publish(
            3,
            "carol",
            &pidf(
                "carol",
                r#"<tuple id="c2"><status><basic>open</basic></status></tuple>
<dm:person id="pc"><rpid:activities><rpid:away/></rpid:activities></dm:person>"#,
            ),
        ),
        publish(
            4,
            "dave",
            &pidf(
                "dave",
                r#"<tuple id="d1"><status><basic>Open</basic></status></tuple>
<dm:person id="pd"><rpid:activities/></dm:person>"#,
            ),
        ),
        check(5, "sip:alice@example.com"),
        check(6, "sip:bob@example.com"),
        check(7, "sip:carol@example.com"),
        check(8, "sip:dave@example.com"),
        check(9, "sip:nobody@example.com"),
        check(10, "not a uri"),
    ];
    let (want, got) = kamailio::run_scenario(
        &dir,
        &cfg,
        siprouter::in_tree(),
        &|| {
            let _ = std::fs::remove_file(dir.join("p.db"));
            db(&url, "init", &[]);
        },
        &|srv| {
            let peer = sr_testkit::UdpPeer::new();
            kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
            kamailio::answers(&peer, srv, &steps, &["X-R"])
        },
    );
    assert!(
        want.iter()
            .any(|l| l.contains("open=1") && l.contains("phone=1")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "pres_check");
}
