//! Differential test against Kamailio itself, for module rtjson: a JSON
//! routing document in the request's body; serial forking (the first
//! route busy, the next one tried from failure_route with
//! `rtjson_next_route`, each branch changed by `rtjson_update_branch`:
//! extra headers, From and To through uac, display names), parallel
//! forking (every route at once), and documents refused (not JSON, an
//! unknown routing, no routes). What each user agent gets (request line,
//! From, To, the extra headers) and the caller's final reply are
//! compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::{first_line, Scene};
use std::time::Duration;

const MODULES: &[&str] = &["tm", "sl", "pv", "textops", "rr", "uac", "rtjson"];

const BODY: &str = r#"modparam("uac", "restore_mode", "none")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("ACK")) { t_relay(); exit; }
    rtjson_init_routes("$rb");
    $var(i) = $rc;
    if ($var(i) < 0) {
        append_to_reply("X-R: init=$var(i)\r\n");
        sl_send_reply("500", "No routing");
        exit;
    }
    rtjson_push_routes();
    $var(p) = $rc;
    if ($var(p) < 0) {
        append_to_reply("X-R: push=$var(p)\r\n");
        sl_send_reply("500", "No routes");
        exit;
    }
    append_hf("X-Idx: $xavp(rtjson=>idx)\r\n");
    t_on_branch("BR");
    t_on_failure("FR");
    t_relay();
}
branch_route[BR] {
    rtjson_update_branch();
    append_hf("X-Upd: $rc\r\n");
}
failure_route[FR] {
    if (t_is_canceled()) { exit; }
    if (rtjson_next_route()) {
        t_on_branch("BR");
        t_on_failure("FR");
        t_relay();
        exit;
    }
}
"#;

/// What a user agent got: the lines the module touches.
fn seen(p: &Scene, r: &sr_testkit::Reply) -> String {
    let text = r.text();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let lines: Vec<&str> = head
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || ["From:", "To:", "X-"].iter().any(|p| l.starts_with(p)))
        .map(|(_, l)| l)
        .filter(|l| !l.starts_with("X-T:"))
        .collect();
    // (From tags are the caller's; uac keeps them.)
    p.names(&lines.join(" / "))
}

fn send(p: &Scene, call: &str, body: &str) {
    let req = format!(
        "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: \"Caller\" <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-T: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        p.caller.addr(),
        body.len()
    );
    p.caller.send(p.srv, &req);
}

fn final_reply(p: &Scene, call: &str) -> String {
    let r = p.caller.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call) && r.status().is_some_and(|c| c >= 200)
    });
    match r {
        Some(r) => format!(
            "{} [{}]",
            first_line(&r),
            r.header("X-R").unwrap_or_default()
        ),
        None => "no final reply".into(),
    }
}

fn scenario(p: &Scene) -> Vec<String> {
    kamailio::wait_until_up(&p.caller, p.srv, kamailio::PROBE, None);
    let (u0, u1) = (p.uri(0), p.uri(1));
    let mut out = Vec::new();
    let t = Duration::from_secs(3);
    let serial = format!(
        r#"{{"routing":"serial","routes":[{{"uri":"sip:one@127.0.0.1","dst_uri":"{u0}","headers":{{"from":{{"display":"Alice","uri":"sip:alice@example.com"}},"extra":"X-Extra: first\r\n"}}}},{{"uri":"sip:two@127.0.0.1","dst_uri":"{u1}","fr_timer":2000,"headers":{{"to":{{"uri":"sip:bob@example.net"}},"extra":"X-E: 1\r\n"}}}}]}}"#
    );
    send(p, "rj-serial", &serial);
    match p.uas_request(0, t, Some((486, "Busy Here", &[]))) {
        Some(r) => out.push(format!("serial u0: {}", seen(p, &r))),
        None => out.push("serial u0: nothing".into()),
    }
    match p.uas_answer(1, t, Some((200, "OK", &[]))) {
        Some(r) => out.push(format!("serial u1: {}", seen(p, &r))),
        None => out.push("serial u1: nothing".into()),
    }
    out.push(format!("serial final: {}", final_reply(p, "rj-serial")));

    let parallel = format!(
        r#"{{"routing":"parallel","routes":[{{"uri":"sip:one@127.0.0.1","dst_uri":"{u0}"}},{{"uri":"sip:two@127.0.0.1","dst_uri":"{u1}"}},{{"dst_uri":"{u1}"}}]}}"#
    );
    send(p, "rj-parallel", &parallel);
    for i in 0..2 {
        let answer = if i == 0 {
            (486, "Busy Here")
        } else {
            (200, "OK")
        };
        match p.uas_answer(i, t, Some((answer.0, answer.1, &[]))) {
            Some(r) => out.push(format!("parallel u{i}: {}", seen(p, &r))),
            None => out.push(format!("parallel u{i}: nothing")),
        }
    }
    out.push(format!("parallel final: {}", final_reply(p, "rj-parallel")));

    // A route's fr_timer, set in branch_route: the silent user agent
    // times out after 1 s, not tm's 30.
    let timed = format!(
        r#"{{"routing":"serial","routes":[{{"uri":"sip:one@127.0.0.1","dst_uri":"{u0}","fr_timer":1000}}]}}"#
    );
    send(p, "rj-timer", &timed);
    match p.uas_answer(0, t, None) {
        Some(r) => out.push(format!("timer u0: {}", seen(p, &r))),
        None => out.push("timer u0: nothing".into()),
    }
    out.push(format!("timer final: {}", final_reply(p, "rj-timer")));

    for (name, doc) in [
        ("notjson", "this is not json".to_string()),
        (
            "unknown",
            r#"{"routing":"random","routes":[{"uri":"sip:x@y"}]}"#.to_string(),
        ),
        (
            "noroutes",
            r#"{"routing":"serial","routes":[]}"#.to_string(),
        ),
    ] {
        let call = format!("rj-{name}");
        send(p, &call, &doc);
        out.push(format!("{name}: {}", final_reply(p, &call)));
    }
    out
}

#[test]
fn rtjson_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("rtjson");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let s = Scene::new(srv, 2);
        scenario(&s)
    });
    assert!(
        want.iter()
            .any(|l| l.starts_with("serial final: SIP/2.0 200")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "rtjson");
}
