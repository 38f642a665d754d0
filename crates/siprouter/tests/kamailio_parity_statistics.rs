//! Differential test against Kamailio itself, for statistics and
//! diversion: script statistics declared with and without `no_reset`,
//! updated by constants and pseudo-variables (names too), reset, and
//! names that are not declared; Diversion headers for the Request-URI as
//! received (also after a rewrite), for a URI given, and before one
//! already there. The same requests to both servers, every answer (and
//! every forwarded request's Diversion headers) compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "statistics", "diversion"];

const BODY: &str = r#"modparam("statistics", "variable", "reg_ok")
modparam("statistics", "variable", "calls/no_reset")
modparam("statistics", "variable", "dyn")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-T);
    $var(r) = "none";
    if ($var(t) == "inc") { $var(r) = update_stat("reg_ok", "+1"); }
    else if ($var(t) == "add") { $var(r) = update_stat("reg_ok", "5"); }
    else if ($var(t) == "dec") { $var(r) = update_stat("reg_ok", "-2"); }
    else if ($var(t) == "calls") { $var(r) = update_stat("calls", "+7"); }
    else if ($var(t) == "pv") {
        $var(n) = $hdr(X-N);
        $var(v) = $hdr(X-V);
        $var(r) = update_stat("$var(n)", "$var(v)");
    }
    else if ($var(t) == "pvint") { $var(v) = 4; $var(r) = update_stat("dyn", "$var(v)"); }
    else if ($var(t) == "reset") { $var(r) = reset_stat("reg_ok"); }
    else if ($var(t) == "reset-nr") { $var(r) = reset_stat("calls"); }
    else if ($var(t) == "reset-pv") { $var(n) = $hdr(X-N); $var(r) = reset_stat("$var(n)"); }
    else if ($var(t) == "div") {
        $var(r) = add_diversion("user-busy");
        $du = $hdr(X-To);
        forward();
        exit;
    }
    else if ($var(t) == "div-rw") {
        $ru = "sip:carol@example.net";
        $var(r) = add_diversion("no-answer");
        $du = $hdr(X-To);
        forward();
        exit;
    }
    else if ($var(t) == "div-hf") {
        append_hf("Diversion: <sip:script@example.com>;reason=scripted\r\n");
        $var(r) = add_diversion("time-of-day");
        $du = $hdr(X-To);
        forward();
        exit;
    }
    else if ($var(t) == "div-uri") {
        $var(r) = add_diversion("unconditional", "sip:$fU@divert.example.com");
        add_diversion("deflection", "sip:second@example.com");
        $du = $hdr(X-To);
        forward();
        exit;
    }
    append_to_reply("X-R: r=$var(r) reg_ok=$stat(reg_ok) calls=$stat(calls) dyn=$stat(dyn)\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn scenario(srv: SocketAddr) -> Vec<String> {
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let steps: &[(&str, &str, &str, &str)] = &[
        ("inc", "", "", ""),
        ("inc", "", "", ""),
        ("add", "", "", ""),
        ("dec", "", "", ""),
        ("calls", "", "", ""),
        ("pv", "dyn", "+10", ""),
        ("pv", "reg_ok", "-1", ""),
        ("pv", "dyn", "abc", ""),
        ("pv", "undeclared", "+1", ""),
        ("pvint", "", "", ""),
        ("reset", "", "", ""),
        ("reset-nr", "", "", ""),
        ("reset-pv", "dyn", "", ""),
        ("reset-pv", "nope", "", ""),
        ("inc", "", "", ""),
        ("div", "", "", ""),
        ("div-rw", "", "", ""),
        ("div-uri", "", "", ""),
        (
            "div",
            "",
            "",
            "Diversion: <sip:first@example.com>;reason=user-busy\r\n",
        ),
        (
            "div-hf",
            "",
            "",
            "Diversion: <sip:first@example.com>;reason=user-busy\r\n",
        ),
        ("pv", "dyn", "", ""),
    ];
    for (n, (t, name, value, extra)) in steps.iter().enumerate() {
        let call = format!("st{n}-{t}");
        let text = format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKst{n}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nX-T: {t}\r\nX-N: {name}\r\nX-V: {value}\r\nX-To: sip:{to}\r\n{extra}Content-Length: 0\r\n\r\n",
            a = uac.addr(),
            to = uas.addr(),
        );
        uac.send(srv, &text);
        let line = if t.starts_with("div") {
            match uas.recv_matching(Duration::from_secs(2), |r| {
                r.msg.msg().call_id().ok() == Some(call.as_str())
            }) {
                Some(r) => format!(
                    "{call}: ruri={} Diversion=[{}]",
                    r.msg.msg().request_uri().map_or("?", |u| u.raw),
                    r.msg
                        .msg()
                        .headers_by_name("Diversion")
                        .map(|h| h.value)
                        .collect::<Vec<_>>()
                        .join(" | ")
                ),
                None => format!("{call}: nothing"),
            }
        } else {
            match uac.recv_matching(Duration::from_secs(2), |r| {
                r.msg.msg().call_id().ok() == Some(call.as_str()) && r.status().is_some()
            }) {
                Some(r) => format!("{call}: {}", r.header("X-R").unwrap_or_default()),
                None => format!("{call}: nothing"),
            }
        };
        out.push(line);
    }
    out
}

#[test]
fn statistics_and_diversion_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("statistics");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("reg_ok=2")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "statistics");
}
