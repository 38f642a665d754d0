//! Differential test against Kamailio itself, for uac_redirect: a call
//! through tm whose first branch gets a 3xx, turned into new branches in
//! failure_route by `get_redirects` — contacts with and without q, an
//! invalid q, two Contact headers, limits in all and per reply, the
//! module's deny filter, filters the script adds and resets, a 3xx
//! without contacts, a non-3xx failure. What the second callee gets (the
//! Request-URIs in the order sent, the branch q values the script saw)
//! and the caller's final status are compared; with and without `$du`
//! written in failure_route (which makes the Request-URI usable again).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{answer, kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "tm", "uac_redirect"];

const BODY: &str = r#"modparam("uac_redirect", "deny_filter", "blocked")
modparam("uac_redirect", "acc_function", "")
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "up"); exit; }
    if (is_method("ACK")) { exit; }
    $du = $hdr(X-First);
    t_on_failure("redirect");
    t_relay();
    exit;
}
failure_route[redirect] {
    $var(t) = $hdr(X-T);
    if ($var(t) == "accept") { set_accept_filter("blocked-ok", ""); }
    else if ($var(t) == "deny") { set_deny_filter("^sip:u2@", ""); }
    else if ($var(t) == "reset") { set_deny_filter("^sip:u1@", "reset_default"); }
    else if ($var(t) == "acc-reset") {
        set_accept_filter("^sip:u3@", "");
        set_accept_filter("^sip:u1@", "reset_added");
    }
    $var(m) = $hdr(X-Max);
    if ($var(m) == "*") { $var(r) = get_redirects("*"); }
    else if ($var(m) == "2") { $var(r) = get_redirects("2"); }
    else if ($var(m) == "1") { $var(r) = get_redirects("1"); }
    else if ($var(m) == "3:1") { $var(r) = get_redirects("3:1"); }
    if ($var(r) != 1) { t_reply("480", "No Redirect"); exit; }
    append_hf("X-R: n=$branch(count) q0=$(branch(q)[0]) q1=$(branch(q)[1]) q2=$(branch(q)[2])\r\n");
    if ($var(t) != "nodu") { $du = $hdr(X-Second); }
    t_relay();
}
"#;

fn scenario(srv: SocketAddr) -> Vec<String> {
    let (uac, uas1, uas2) = (UdpPeer::new(), UdpPeer::new(), UdpPeer::new());
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let c = uas2.addr();
    let three = format!("Contact: <sip:u1@{c}>;q=0.5, <sip:u2@{c}>;q=1.0, <sip:u3@{c}>\r\n");
    let cases: Vec<(&str, &str, u16, String)> = vec![
        ("plain", "*", 302, three.clone()),
        ("plain", "2", 302, three.clone()),
        ("plain", "1", 301, three.clone()),
        ("plain", "3:1", 302, three.clone()),
        (
            "plain",
            "*",
            302,
            format!("Contact: <sip:u1@{c}>;q=abc\r\nContact: <sip:u2@{c}>;q=0.3, <sip:u3@{c}>;q=0.3\r\n"),
        ),
        (
            "plain",
            "*",
            302,
            format!("Contact: <sip:blocked@{c}>, <sip:u1@{c}>\r\n"),
        ),
        (
            "accept",
            "*",
            302,
            format!("Contact: <sip:blocked-ok@{c}>, <sip:blocked@{c}>\r\n"),
        ),
        ("deny", "*", 302, three.clone()),
        (
            "reset",
            "*",
            302,
            format!("Contact: <sip:blocked@{c}>, <sip:u1@{c}>, <sip:u2@{c}>\r\n"),
        ),
        ("acc-reset", "*", 302, three.clone()),
        ("nodu", "*", 302, three.clone()),
        ("nodu", "2", 302, three.clone()),
        ("plain", "*", 302, String::new()),
        ("plain", "*", 486, three.clone()),
    ];
    let mut out = Vec::new();
    for (n, (t, max, code, contacts)) in cases.into_iter().enumerate() {
        let call = format!("rd-{n}-{t}");
        let invite = format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKrd{n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nX-T: {t}\r\nX-Max: {max}\r\nX-First: sip:{a1}\r\nX-Second: sip:{a2}\r\nContent-Length: 0\r\n\r\n",
            a = uac.addr(),
            a1 = uas1.addr(),
            a2 = uas2.addr(),
        );
        uac.send(srv, &invite);
        match uas1.recv_method("INVITE", Duration::from_secs(3)) {
            Some(r) => {
                let extra: Vec<&str> = contacts.split("\r\n").filter(|l| !l.is_empty()).collect();
                let reason = if code == 486 { "Busy Here" } else { "Moved" };
                uas1.send(r.from, &answer(&r, code, reason, "u1", &extra));
            }
            None => out.push(format!("{call}: first callee got nothing")),
        }
        let mut seen = Vec::new();
        let mut xr = String::new();
        while let Some(r) = uas2.recv_method("INVITE", Duration::from_millis(800)) {
            seen.push(r.msg.msg().request_uri().map_or("?", |u| u.raw).to_string());
            if xr.is_empty() {
                xr = r.header("X-R").unwrap_or_default();
            }
            let tag = format!("u2-{}", seen.len());
            uas2.send(r.from, &answer(&r, 486, "Busy Here", &tag, &[]));
        }
        let fin = uac
            .recv_final(Duration::from_secs(3))
            .and_then(|r| {
                let to = r.header("To").unwrap_or_default();
                uac.send(
                    srv,
                    &format!(
                        "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKrd{n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                        a = uac.addr()
                    ),
                );
                r.status()
            });
        out.push(format!(
            "{call}: second callee {seen:?} R=[{xr}] caller {fin:?}"
        ));
    }
    let name = uas2.addr().to_string();
    out.into_iter().map(|l| l.replace(&name, "C")).collect()
}

#[test]
fn uac_redirect_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("uac_redirect");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("sip:u1@C")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "uac_redirect");
}
