//! Differential test against Kamailio itself, for pv's
//! `pv_var_to_xavp(name, xavp)`, `pv_xavp_to_var(xavp)`, `pv_evalx(dst,
//! fmt)` and `pv_xavp_print()`, and avpops' `avp_subst_pv(avp, subst)`.
//! The script answers with what the variables
//! hold. (avpops' manual names `avp_printf`, which Kamailio 5.6 no longer
//! has: kex's `pv_printf` is it.)
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "avpops", "xlog"];

const BODY: &str = r#"request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-C);
    $var(r) = "";
    if ($var(t) == "v2x") {
        $var(temp) = 3;
        $var(foo) = "foo indeed";
        $xavp(ok=>old) = "gone";
        pv_var_to_xavp("temp", "ok");
        $var(rc) = $rc;
        $var(r) = "" + $var(rc) + " " + $xavp(ok=>temp) + " [" + $xavp(ok=>old) + "] " + $cnt($xavp(ok));
        pv_var_to_xavp("$var(t)", "ok2");
        $var(r) = $var(r) + " " + $xavp(ok2=>t);
    } else if ($var(t) == "x2v") {
        $xavp(bar=>temp) = 4;
        $xavp(bar[0]=>foo) = "bar indeed";
        $xavp(bar=>second) = "other record";
        pv_xavp_to_var("bar");
        $var(rc) = $rc;
        $var(r) = "" + $var(rc) + " " + $var(temp) + " " + $var(foo) + " [" + $var(second) + "]";
        pv_xavp_to_var("nothing");
        $var(r) = $var(r) + " " + $rc;
    } else if ($var(t) == "evalx") {
        $var(x) = "test";
        $var(y) = "$var(x)";
        pv_evalx("$var(z)", "$var(y) one $rm");
        $var(r) = "" + $rc + " " + $var(z);
    } else if ($var(t) == "print") {
        $xavp(p=>a) = 1;
        pv_xavp_print();
        $var(r) = "" + $rc;
    } else if ($var(t) == "subst") {
        $(avp(src)[*]) = $null;
        $avp(src) = "testME";
        $var(z) = "j";
        $var(y) = "e";
        $var(x) = "/" + $var(y) + "/" + $var(z) + "/gi";
        avp_subst_pv("$avp(src)", "/$var(y)/$var(z)/gi");
        $var(a) = $avp(src);
        $avp(src) = "testME";
        avp_subst_pv("$avp(src)", "$var(x)");
        $var(b) = $avp(src);
        $avp(src) = "testME";
        avp_subst_pv("$avp(src)", "/Q/q/");
        $var(c) = $rc;
        $var(r) = $var(a) + " " + $var(b) + " " + $var(c);
    }
    append_to_reply("X-R: $var(r)\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn variable_copies_and_substitutions_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("pv-vars");
    let reqs: Vec<(String, String)> = ["v2x", "x2v", "evalx", "print", "subst"]
        .iter()
        .map(|c| {
            let call = format!("pvv-{c}");
            let req = kamailio::options(&call, &format!("X-C: {c}\r\n"));
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
    assert!(want.iter().any(|l| l.contains("tjstMj")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "pv variable copies");
}
