//! Differential test against Kamailio itself, for nathelper's
//! `$rr_count` and `$rr_top_count` (Record-Route entries of the received
//! message, and whether the top one is a double Record-Route) and
//! `set_alias_to_pv(pv)` (the `;alias=ip~port~proto` of the Contact as a
//! SIP URI).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "nathelper"];

const BODY: &str = r#"request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    $var(u) = "none";
    set_alias_to_pv("$var(u)");
    $var(rc) = $rc;
    append_to_reply("X-R: $rr_count $rr_top_count $var(rc) $var(u)\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn record_route_counts_and_aliases_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("nathelper-more");
    let cases: &[(&str, &str)] = &[
        ("none", ""),
        ("one", "Record-Route: <sip:10.0.0.1;lr>\r\n"),
        (
            "two-values",
            "Record-Route: <sip:10.0.0.1;lr>, <sip:10.0.0.2;lr>\r\nRecord-Route: <sip:10.0.0.3;lr>\r\n",
        ),
        (
            "double",
            "Record-Route: <sip:10.0.0.1;r2=on;lr>, <sip:10.0.0.1;transport=tcp;r2=on;lr>\r\n",
        ),
        ("r2-single", "Record-Route: <sip:10.0.0.1;r2=on;lr>\r\nRecord-Route: <sip:10.0.0.2;lr>\r\n"),
        ("alias-udp", "Contact: <sip:a@10.0.0.1:5060;alias=192.0.2.1~5062~1>\r\n"),
        ("alias-tcp", "Contact: <sip:a@10.0.0.1;alias=192.0.2.7~5070~2;x=y>;expires=60\r\n"),
        ("alias-tls", "Contact: <sip:a@10.0.0.1;alias=[2001:db8::1]~5061~3>\r\n"),
        ("alias-ws", "Contact: <sip:a@10.0.0.1;alias=192.0.2.9~80~5>\r\n"),
        ("no-alias", "Contact: <sip:a@10.0.0.1:5060>\r\n"),
    ];
    let reqs: Vec<(String, String)> = cases
        .iter()
        .map(|(c, h)| {
            let call = format!("nh-{c}");
            let req = kamailio::options(&call, &format!("X-C: {c}\r\n{h}"));
            (call, req)
        })
        .collect();
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        BODY,
        &[],
        &reqs,
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|l| l.contains("192.0.2.1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "nathelper counts and aliases");
}
