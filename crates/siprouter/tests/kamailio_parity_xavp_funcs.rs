//! Differential test against Kamailio itself, for pv's XAVP functions:
//! `xavp_params_explode`/`_implode` (and `xavu_`), `xavp_slist_explode`,
//! `xavp_child_seti`/`_sets`, `xavp_rm`, `xavp_child_rm` (and `xavi_`),
//! `xavp_copy` — return codes and the values read back. (Kamailio 5.6's
//! `xavu_params_implode` does not find its XAVU: not compared.)
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops"];

const BODY: &str = r#"request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    xavp_params_explode("a=b;c=d;e=f", "x");
    $var(r1) = $rc;
    xavp_params_implode("x", "$var(out)");
    $var(r2) = $rc;
    append_to_reply("X-A: $var(r1) $var(r2) [$var(out)] $xavp(x=>a) $xavp(x=>e) $xavp(x[0]=>c)\r\n");
    $xavp(y=>e) = "f";
    $xavp(y[0]=>c) = "d";
    $xavp(y[0]=>n) = 12;
    xavp_params_implode("y", "$var(out)");
    xavp_params_implode("none", "$var(o2)");
    $var(r3) = $rc;
    append_to_reply("X-B: [$var(out)] $var(r3)\r\n");
    xavp_slist_explode("a=b; c=d;", "=;", "t", "s");
    $var(r4) = $rc;
    append_to_reply("X-C: $var(r4) $xavp(s[0]=>v[0]) $xavp(s[0]=>v[1]) $xavp(s[0]=>v[2]) $xavp(s[0]=>v[3]) $xavp(s[0]=>v[4])\r\n");
    xavp_child_seti("k", "n", "10");
    $var(a) = $rc;
    xavp_child_sets("k", "s", "Count: $var(a)");
    $var(b) = $rc;
    xavp_child_seti("k", "n", "11");
    $var(c) = $rc;
    $xavp(single) = "one";
    xavp_child_sets("single", "s", "x");
    $var(d) = $rc;
    append_to_reply("X-D: $var(a) $var(b) $var(c) $var(d) $xavp(k=>n) $xavp(k=>s) $xavp(k[0]=>n[1]) $xavp(single=>s)\r\n");
    xavp_child_rm("k", "n");
    $var(a) = $rc;
    xavp_rm("x");
    $var(b) = $rc;
    xavp_rm("nothing");
    $var(c) = $rc;
    append_to_reply("X-E: $var(a) $var(b) $var(c) $xavp(k=>n) $xavp(k=>s) $xavp(x=>a)\r\n");
    $xavp(a=>x) = "a-0-x";
    $xavp(a=>x) = "a-1-x";
    $xavp(a=>x) = "a-2-x";
    xavp_copy("a", "2", "b");
    $var(a) = $rc;
    xavp_copy("a", "0", "b");
    xavp_copy("a", "1", "b", "0");
    $var(b) = $rc;
    xavp_copy("a", "1", "b", "5");
    $var(c) = $rc;
    xavp_copy("a", "7", "b");
    $var(d) = $rc;
    append_to_reply("X-F: $var(a) $var(b) $var(c) $var(d) $xavp(b[0]=>x) $xavp(b[1]=>x) $xavp(b[2]=>x)\r\n");
    xavu_params_explode("p=1;q=2", "u");
    xavu_params_explode("p=3", "u");
    append_to_reply("X-G: $xavu(u=>p) $xavu(u=>q)\r\n");
    xavi_child_sets("Mixed", "Case", "v");
    $var(a) = $rc;
    append_to_reply("X-H: $var(a) $xavi(mixed=>CASE) $xavi(MIXED=>case)\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn xavp_functions_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("xavp-funcs");
    let reqs = vec![("xf-1".to_string(), kamailio::options("xf-1", "X-C: 1\r\n"))];
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        BODY,
        &[],
        &reqs,
        &["X-A", "X-B", "X-C", "X-D", "X-E", "X-F", "X-G", "X-H"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|l| l.contains("a=")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "xavp functions");
}
