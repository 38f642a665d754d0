//! Differential test against Kamailio itself, for dispatcher's
//! `ds_select_routes(rules, mode [, limit])`: selections from several
//! sets in one call (`setid=alg;...`), the first successful one writing
//! `$du` or the Request-URI, every one adding its failover records to one
//! list (a limit shared, each rule's chosen destination listed anyway),
//! sets that are missing or have nothing active skipped, bad rules and
//! modes refused, and `ds_next_dst()` walking the joined list. Every
//! request is answered by the script with what it saw.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "dispatcher"];

const BODY: &str = r#"modparam("dispatcher", "list_file", "__LIST__")
modparam("dispatcher", "flags", 2)
route[SHOW] {
    $var(i) = 0;
    $var(s) = "";
    while ($xavp(_dsdst_[$var(i)]=>uri) != $null) {
        $var(s) = $var(s) + " " + $xavp(_dsdst_[$var(i)]=>grp) + ":" + $xavp(_dsdst_[$var(i)]=>uri);
        $var(i) = $var(i) + 1;
    }
    append_to_reply("X-R: $var(r) du=$du ru=$ru cnt=$xavp(_dsctx_=>cnt) list=$var(s)\r\n");
    sl_send_reply("200", "shown");
    exit;
}
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    $var(rules) = $hdr(X-Rules);
    $var(mode) = $hdr(X-Mode);
    if ($hdr(X-Limit) != $null) {
        $var(l) = $(hdr(X-Limit){s.int});
        ds_select_routes("$var(rules)", "$var(mode)", "$var(l)");
    } else {
        ds_select_routes("$var(rules)", "$var(mode)");
    }
    $var(r) = $rc;
    if ($hdr(X-C) =~ "^next") {
        ds_next_dst();
        $var(n1) = $rc;
        $var(d1) = $du;
        ds_next_dst();
        $var(r) = "" + $var(r) + " next " + $var(n1) + " " + $var(d1) + " then " + $rc;
    }
    route(SHOW);
}
"#;

const LIST: &str = "\
1 sip:127.0.0.1:5081 0
1 sip:127.0.0.1:5082 1
1 sip:127.0.0.1:5083 0
2 sip:127.0.0.1:5091 0
2 sip:127.0.0.1:5092 0
2 sip:127.0.0.1:5093 0
3 sip:127.0.0.1:5095 0
4 sip:127.0.0.1:5097 1
";

fn req(n: usize, what: &str, rules: &str, mode: &str, limit: Option<&str>) -> (String, String) {
    let call = format!("dr{n}");
    let limit = limit.map_or(String::new(), |l| format!("X-Limit: {l}\r\n"));
    let r = format!(
        "MESSAGE sip:x@example.org SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-C: {what}\r\nX-Rules: {rules}\r\nX-Mode: {mode}\r\n{limit}Content-Length: 0\r\n\r\n"
    );
    (call, r)
}

#[test]
fn select_routes_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("ds-routes");
    let list = dir.join("dispatcher.list");
    std::fs::write(&list, LIST).expect("list");
    let body = BODY.replace("__LIST__", &list.display().to_string());
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("rr", "1=4;2=4", "d", None),
        ("rr again", "1=4;2=4", "d", None),
        ("rr third", "1=4;2=4", "0", None),
        ("serial ruri", "1=8;2=8;3=8", "r", None),
        ("serial ruri 1", "2=8;1=8", "1", None),
        ("xavp only", "1=8;2=8", "x", None),
        ("limit 3", "1=8;2=8", "x", Some("3")),
        ("limit 1", "1=8;2=8;3=8", "d", Some("1")),
        ("limit 4", "2=8;1=8;3=8", "D", Some("4")),
        ("missing set first", "9=8;2=8", "d", None),
        ("all inactive first", "4=8;3=8", "d", None),
        ("nothing", "9=8;4=8", "d", None),
        ("bad char", "1=8; 2=8", "d", None),
        ("bad char first", "x=8", "d", None),
        ("bad mode", "1=8", "q", None),
        ("hash callid", "2=0;1=0", "d", None),
        ("hash callid x", "2=0;1=0", "X", None),
        ("trailing", "3=8;", "d", None),
        ("no alg", "2", "d", None),
        ("next", "1=8;2=8", "d", None),
        ("next limit", "3=8;1=8", "d", Some("2")),
    ];
    let steps: Vec<(String, String)> = cases
        .iter()
        .enumerate()
        .map(|(i, (what, rules, mode, limit))| req(i, what, rules, mode, *limit))
        .collect();
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        &body,
        &[],
        &steps,
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(
        want.iter().any(|l| l.contains("2:sip:127.0.0.1:5093")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "dispatcher ds_select_routes");
}
