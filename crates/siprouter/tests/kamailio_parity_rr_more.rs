//! Differential test against Kamailio itself, for rr's
//! `loose_route_preloaded()`, `loose_route_mode(1)`, `rr_next_hop_route()`,
//! `remove_record_route()` and `$rdir`: preloaded route sets (ours alone,
//! ours and another, in and out of dialog), a first Route that is not
//! ours, the strict-router case skipped by `loose_route_mode`, directions
//! by `ftag`, and a Record-Route removed again — every return code, `$du`,
//! `$ru` and the Record-Route left compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "textopsx", "rr"];

const BODY: &str = r#"alias=proxy.example.com
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-C) == "pre") {
        loose_route_preloaded();
        $var(a) = $rc;
        append_to_reply("X-R: $var(a) du=$du ru=$ru\r\n");
    } else if ($hdr(X-C) == "lr") {
        loose_route();
        $var(a) = $rc;
        rr_next_hop_route();
        $var(b) = $rc;
        append_to_reply("X-R: $var(a) $var(b) du=$du ru=$ru dir=$rdir(name) $rdir(id)\r\n");
    } else if ($hdr(X-C) == "mode") {
        loose_route_mode("1");
        $var(a) = $rc;
        append_to_reply("X-R: $var(a) du=$du ru=$ru\r\n");
    } else if ($hdr(X-C) == "rm") {
        record_route();
        remove_record_route();
        $var(a) = $rc;
        msg_apply_changes();
        append_to_reply("X-R: $var(a) rr=$hdr(Record-Route)\r\n");
    } else if ($hdr(X-C) == "rm2") {
        record_route();
        remove_record_route();
        record_route();
        $var(a) = $rc;
        msg_apply_changes();
        append_to_reply("X-R: $var(a) rr=$hdr(Record-Route)\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

fn req(i: usize, what: &str, ruri: &str, totag: &str, routes: &[&str]) -> (String, String) {
    let call = format!("rr-{i}");
    let mut route = String::new();
    for r in routes {
        route.push_str(&format!("Route: {r}\r\n"));
    }
    (
        call.clone(),
        format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKrr{i}\r\nFrom: <sip:a@b>;tag=f1\r\nTo: <sip:x@y>{totag}\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\n{route}X-C: {what}\r\nContent-Length: 0\r\n\r\n"
        ),
    )
}

#[test]
fn rr_more_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("rr-more");
    let us = "<sip:proxy.example.com;lr>";
    let us_f = "<sip:proxy.example.com;lr;ftag=f1>";
    let us_up = "<sip:proxy.example.com;lr;ftag=zz>";
    let next = "<sip:next.example.com;lr>";
    let strict = "<sip:strict.example.com>";
    let reqs = vec![
        req(0, "pre", "sip:bob@b.com", "", &[us]),
        req(1, "pre", "sip:bob@b.com", "", &[us, next]),
        req(2, "pre", "sip:bob@b.com", ";tag=t", &[us, next]),
        req(3, "pre", "sip:bob@b.com", "", &[]),
        req(4, "pre", "sip:bob@b.com", "", &[next]),
        req(5, "lr", "sip:bob@b.com", ";tag=t", &[us_f, next]),
        req(6, "lr", "sip:bob@b.com", ";tag=t", &[us_up]),
        req(7, "lr", "sip:bob@b.com", ";tag=t", &[next]),
        req(8, "lr", "sip:bob@b.com", ";tag=t", &[us, strict]),
        req(9, "lr", "sip:bob@b.com", ";tag=t", &[]),
        req(10, "lr", "sip:proxy.example.com", ";tag=t", &[next]),
        req(11, "mode", "sip:proxy.example.com", ";tag=t", &[next]),
        req(12, "mode", "sip:bob@b.com", ";tag=t", &[us, next]),
        req(13, "rm", "sip:bob@b.com", "", &[]),
        req(14, "rm2", "sip:bob@b.com", "", &[]),
    ];
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        BODY,
        &[],
        &reqs,
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(
        want.iter().any(|l| l.contains("next.example.com")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "rr");
}
