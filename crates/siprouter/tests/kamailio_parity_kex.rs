//! Differential test against Kamailio itself, for kex's `is_myself(uri)`
//! (a URI or address checked against the listening addresses and
//! aliases, a missing port matching any), the core's `uri == myself` on
//! the same URIs (there a missing port is 5060), and the return codes of
//! `setdebug(level)` and `resetdebug()`.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "kex", "xlog"];

const BODY: &str = r#"alias=sip.example.com:5070
alias=other.example.com
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    $var(u) = $(hdr(X-U){s.decode.hexa});
    if ($var(u) == "self") { $var(u) = "sip:127.0.0.1:" + $Rp; }
    if ($var(u) == "selfs") { $var(u) = "sips:127.0.0.1:" + $Rp; }
    is_myself("$var(u)");
    $var(a) = $rc;
    setdebug("3");
    $var(b) = $rc;
    xdbg("kex: a debug line\n");
    resetdebug();
    $var(c) = $rc;
    $var(m) = "-";
    if ($var(u) =~ "^sip:") {
        $ru = $var(u);
        if (uri == myself) { $var(m) = "me"; } else { $var(m) = "other"; }
    }
    append_to_reply("X-R: $var(a) $var(b) $var(c) $var(m)\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn kex_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("kex");
    let inputs = [
        "sip:127.0.0.1",
        "sip:alice@127.0.0.1;transport=udp",
        "sip:127.0.0.1:1",
        "127.0.0.1",
        "10.0.0.1",
        "sip:example.org",
        "sip:sip.example.com:5070",
        "sip:sip.example.com",
        "sip:SIP.EXAMPLE.COM:5070",
        "sip:sip.example.com:5071",
        "garbage",
        "",
        "self",
        "selfs",
        "sip:127.0.0.1:5060",
        "sip:other.example.com",
        "sip:other.example.com:5060",
        "sip:other.example.com:5071",
    ];
    let reqs: Vec<(String, String)> = inputs
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let hex: String = u.bytes().map(|b| format!("{b:02x}")).collect();
            let call = format!("kex-{i}");
            let req = kamailio::options(&call, &format!("X-C: 1\r\nX-U: {hex}\r\n"));
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
    assert!(want.iter().any(|l| l.contains(": 1 1 1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "kex");
}
