//! Differential test against Kamailio itself, for what a format string
//! (`append_to_reply`, `xlog`, ...) writes for a pseudo-variable whose
//! transformation fails: on `$null` (a missing header or AVP), or on a
//! value it cannot take. Kamailio writes nothing there (and `<null>` for
//! a `$null` without transformation).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const BODY: &str = r#"request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    append_to_reply("X-A: $(hdr(X-None){s.len})|$(hdr(X-None){s.md5})|$(hdr(X-None){s.tolower})|$(hdr(X-None){uri.user})|$(avp(none){s.len})|$(hdr(X-C){s.len})|$hdr(X-None)|$(hdr(X-None){s.len}{s.int})\r\n");
    append_to_reply("X-B: $(ru{uri.port})|$(hdr(X-C){s.substr,5,1})|$(hdr(X-C){s.int})|$(hdr(X-C){s.select,3,,})|$(hdr(X-C){uri.user})|$(hdr(X-C){param.value,zz})|$(hdr(X-C){nameaddr.uri})\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn failed_transformations_write_what_kamailio_writes() {
    if !kamailio::available(&["sl", "pv", "textops"]) {
        return;
    }
    let dir = kamailio::fresh_dir("format-null");
    let reqs = vec![
        (
            "fn-1".to_string(),
            kamailio::options("fn-1", "X-C: abc\r\n"),
        ),
        ("fn-2".to_string(), kamailio::options("fn-2", "X-C: 12\r\n")),
    ];
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops"],
        BODY,
        &[],
        &reqs,
        &["X-A", "X-B"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|l| l.contains("<null>")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "format-null");
}
