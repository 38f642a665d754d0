//! Differential test against Kamailio itself, for dispatcher's call-load
//! distribution: algorithm 10 (the destination with the fewest calls,
//! by `duid`; `maxload` a ceiling), `ds_load_update()` (a BYE or CANCEL
//! takes its call's load away, a 2xx confirms it), `ds_load_unset()`, and
//! `ds_next_dst()` moving a call's load to the next destination. Every
//! request is answered by the script with where it went.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "dispatcher"];

const BODY: &str = r#"modparam("dispatcher", "list_file", "__LIST__")
modparam("dispatcher", "ds_hash_size", 4)
modparam("dispatcher", "flags", 2)
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("BYE|CANCEL")) {
        ds_load_update();
        $var(r) = $rc;
        append_to_reply("X-R: $var(r)\r\n");
        sl_send_reply("200", "done");
        exit;
    }
    if ($hdr(X-C) == "next") {
        ds_select_dst("1", "10");
        $var(a) = $du;
        ds_next_dst();
        $var(r) = $rc;
        append_to_reply("X-R: $var(r) $var(a) $du\r\n");
        sl_send_reply("200", "next");
        exit;
    }
    if ($hdr(X-C) == "routes") {
        ds_select_routes("1=10;1=10", "d");
        $var(r) = $rc;
        append_to_reply("X-R: $var(r) $du $xavp(_dsctx_=>cnt)\r\n");
        sl_send_reply("200", "routes");
        exit;
    }
    if ($hdr(X-C) == "dom") {
        ds_select_domain("1", "10");
        $var(r) = $rc;
        append_to_reply("X-R: $var(r) $ru\r\n");
        sl_send_reply("200", "domain");
        exit;
    }
    if ($hdr(X-C) == "noduid") {
        ds_select_dst("2", "10");
        $var(r) = $rc;
        append_to_reply("X-R: $var(r) $du $xavp(_dsdst_=>dstid)\r\n");
        sl_send_reply("200", "noduid");
        exit;
    }
    ds_select_dst("1", "10");
    $var(r) = $rc;
    if ($hdr(X-C) == "unset") {
        ds_load_unset();
        $var(r) = $var(r) + " " + $rc;
    }
    append_to_reply("X-R: $var(r) $du\r\n");
    sl_send_reply("200", "select");
}
"#;

const LIST: &str = "1 sip:127.0.0.1:5081 0 0 duid=a\n1 sip:127.0.0.1:5082 0 0 duid=b;maxload=2\n1 sip:127.0.0.1:5083 0 0 duid=c\n2 sip:127.0.0.1:5091 0 0\n2 sip:127.0.0.1:5092 0 0 duid=y\n";

fn req(method: &str, call: &str, what: &str) -> (String, String) {
    req_to(method, "sip:x@127.0.0.1", call, what)
}

fn req_to(method: &str, ruri: &str, call: &str, what: &str) -> (String, String) {
    let r = format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bK{call}-{method}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nX-C: {what}\r\nContent-Length: 0\r\n\r\n"
    );
    (call.to_string(), r)
}

#[test]
fn call_load_distribution_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("ds-load");
    let list = dir.join("dispatcher.list");
    std::fs::write(&list, LIST).expect("list");
    let body = BODY.replace("__LIST__", &list.display().to_string());
    let steps: Vec<(String, String)> = vec![
        req("INVITE", "c1", "sel"),
        req("INVITE", "c2", "sel"),
        req("INVITE", "c3", "sel"),
        req("INVITE", "c4", "sel"),
        req("INVITE", "c5", "sel"),
        req("INVITE", "c6", "sel"),
        req("INVITE", "c7", "sel"),
        req("BYE", "c2", "bye"),
        req("INVITE", "c8", "sel"),
        req("CANCEL", "c1", "cancel"),
        req("BYE", "c1", "bye again"),
        req("BYE", "nobody", "bye"),
        req("INVITE", "c9", "sel"),
        req("INVITE", "c10", "unset"),
        req("INVITE", "c11", "sel"),
        req("OPTIONS", "o1", "sel"),
        req("INVITE", "c12", "next"),
        req("INVITE", "c13", "sel"),
        req("INVITE", "c14", "sel"),
        // The same Call-ID again (a retransmission): not counted twice.
        req("INVITE", "c14", "sel"),
        req("INVITE", "c15", "sel"),
        // Two rules for one call: counted once.
        req("INVITE", "c16", "routes"),
        // The destination cannot be written: the count is taken back.
        req_to("INVITE", "tel:+15551234", "c17", "dom"),
        // No duid: dispatched, not counted.
        req("INVITE", "c18", "noduid"),
        req("BYE", "c15", "bye"),
        req("INVITE", "c19", "sel"),
        req("INVITE", "c20", "sel"),
        req("INVITE", "c21", "sel"),
    ];
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        &body,
        &[],
        &steps,
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|l| l.contains("5082")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "dispatcher call load");
}
