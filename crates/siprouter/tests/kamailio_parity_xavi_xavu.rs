//! Differential test against Kamailio itself, for `$xavi` (XAVPs whose
//! names ignore case) and `$xavu` (one value per name): assignments that
//! add, replace and remove, reads in other cases, by index, and that the
//! three lists (`$xavp`, `$xavi`, `$xavu`) stay apart — every value
//! compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const BODY: &str = r#"request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    $xavi(Ab=>Cd) = "v1";
    $xavi(ab=>ef) = 2;
    $xavi(AB[0]=>gh) = "g";
    $xavu(x=>y) = "a";
    $xavu(x=>y) = "b";
    $xavu(x=>z) = 3;
    $xavu(s) = "one";
    $xavu(s) = "two";
    $xavp(ab=>cd) = "p";
    append_to_reply("X-A: i=$xavi(AB=>CD)|$xavi(ab=>EF)|$xavi(aB[1]=>cd)|$xavi(ab[0]=>GH)|$xavi(zz=>a) u=$xavu(x=>y)|$xavu(x=>z)|$xavu(s)|$xavu(X=>y) p=$xavp(ab=>cd)|$xavp(Ab=>Cd)\r\n");
    $xavu(x=>y) = $null;
    $xavi(ab=>ef) = $null;
    $xavu(s) = $null;
    append_to_reply("X-B: u=$xavu(x=>y)|$xavu(x=>z)|$xavu(s) i=$xavi(ab=>ef)|$xavi(ab=>gh)|$xavi(ab[1]=>cd)\r\n");
    $xavi(AB) = $null;
    $xavi(new) = "single";
    append_to_reply("X-C: i=$xavi(ab=>cd)|$xavi(ab[1]=>cd)|$xavi(NEW)\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn xavi_and_xavu_match_kamailio() {
    if !kamailio::available(&["sl", "pv", "textops"]) {
        return;
    }
    let dir = kamailio::fresh_dir("xavi-xavu");
    let reqs = vec![("xx-1".to_string(), kamailio::options("xx-1", "X-C: 1\r\n"))];
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops"],
        BODY,
        &[],
        &reqs,
        &["X-A", "X-B", "X-C"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|l| l.contains("i=v1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "xavi-xavu");
}
