//! Differential test against Kamailio itself, for more of tm's and tmx's
//! functions: `t_get_status_code()` in request, onreply and failure
//! routes; `t_retransmit_reply()` for a retransmitted request;
//! `t_set_no_e2e_cancel_reason(1)` (the caller's CANCEL Reason not
//! copied); `t_save_lumps()` (a failure-route branch has the changes made
//! before it, not after); the extended flags in failure_route and
//! `t_flush_xflags()`; `t_drop()` in failure_route (the caller gets no
//! final reply); `t_forward_nonack*`; `t_use_uac_headers()`; `t_clean()`,
//! `t_is_retr_async_reply()`; `t_uac_send()`. What the caller and the user
//! agents get is compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::{first_line, Scene};
use sr_testkit::{answer, Reply, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl", "tm", "tmx", "pv", "textops", "textopsx", "corex", "xlog",
];

const BODY: &str = r#"request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("ACK")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    $var(t) = $hdr(X-T);
    if ($var(t) == "retr") {
        if (t_lookup_request()) {
            t_retransmit_reply();
            exit;
        }
        t_newtran();
        t_reply("486", "Busy Once");
        exit;
    }
    if ($var(t) == "gs") {
        t_newtran();
        $avp(a) = t_get_status_code();
        t_on_failure("GS");
        t_on_reply("GS");
        $ru = $hdr(X-D);
        t_relay();
        exit;
    }
    if ($var(t) == "nr") {
        if ($hdr(X-Off) != $null) {
            t_set_no_e2e_cancel_reason("1");
        }
        $ru = $hdr(X-D);
        t_relay();
        exit;
    }
    if ($var(t) == "lumps") {
        t_newtran();
        append_hf("X-H1: 1\r\n");
        t_save_lumps();
        $avp(sl) = $rc;
        append_hf("X-H2: 2\r\n");
        setxflag("5");
        t_on_failure("LUMPS");
        $ru = $hdr(X-D);
        t_relay();
        exit;
    }
    if ($var(t) == "lumps2") {
        t_newtran();
        append_hf("X-H1: 1\r\n");
        t_save_lumps();
        msg_apply_changes();
        append_hf("X-H2: 2\r\n");
        t_on_failure("LUMPS");
        $ru = $hdr(X-D);
        t_relay();
        exit;
    }
    if ($var(t) == "xf") {
        t_newtran();
        setxflag("6");
        t_flush_xflags();
        $avp(fx) = $rc;
        setxflag("7");
        t_on_failure("XF");
        $ru = $hdr(X-D);
        t_relay();
        exit;
    }
    if ($var(t) == "drop") {
        t_on_failure("DROP");
        $ru = $hdr(X-D);
        t_relay();
        exit;
    }
    if ($var(t) == "fna") {
        t_newtran();
        t_forward_nonack("127.0.0.1", "__UAS__");
        exit;
    }
    if ($var(t) == "fnau") {
        $ru = $hdr(X-D);
        t_newtran();
        t_forward_nonack_uri();
        exit;
    }
    if ($var(t) == "fnaudp") {
        t_newtran();
        t_forward_nonack_udp("127.0.0.1", "__UAS__");
        exit;
    }
    if ($var(t) == "uac") {
        t_use_uac_headers();
        $var(u) = $rc;
        t_clean();
        $var(c) = $rc;
        remove_hf("From");
        insert_hf("From: <sip:changed@example.com>;tag=f\r\n", "To");
        append_hf("X-R: $var(u) $var(c)\r\n");
        $ru = $hdr(X-D);
        t_relay();
        exit;
    }
    if ($var(t) =~ "^rs") {
        $var(x) = "vx";
        if ($var(t) == "rs1") { t_newtran(); t_reply("500", "$var(x)"); }
        if ($var(t) == "rs2") { t_newtran(); t_reply("500", "a $var(x)"); }
        if ($var(t) == "rs3") { sl_send_reply("500", "$var(x)"); }
        if ($var(t) == "rs4") { sl_send_reply("500", "a $var(x)"); }
        if ($var(t) == "rs5") { t_newtran(); t_reply("500", "$var(x) b"); }
        if ($var(t) == "rs6") { sl_send_reply("500", "$var(x) b"); }
        exit;
    }
    if ($var(t) == "send") {
        t_uac_send("OPTIONS", "$hdr(X-D)", "", "", "From: <sip:a@example.com>;tag=s1\r\nTo: <sip:b@example.com>\r\nX-A: 1\r\nX-B: two\r\n", "");
        $var(a) = $rc;
        t_uac_send("MESSAGE", "$hdr(X-D)", "", "", "From: <sip:a@example.com>;tag=s2\r\nTo: <sip:b@example.com>\r\nContent-Type: text/plain\r\n", "hello");
        $var(b) = $rc;
        sl_send_reply("200", "sent $var(a) $var(b)");
        exit;
    }
}
onreply_route[GS] {
    $var(r) = t_get_status_code();
    t_is_retr_async_reply();
    $var(s) = $rc;
    append_hf("X-G: r=$var(r) s=$var(s) a=$avp(a)\r\n");
}
failure_route[GS] {
    $var(f) = t_get_status_code();
    append_to_reply("X-G: f=$var(f) a=$avp(a)\r\n");
    t_reply("500", "F");
}
failure_route[LUMPS] {
    if (isxflagset("5")) { $var(x) = "yes"; } else { $var(x) = "no"; }
    append_hf("X-H3: 3 $avp(sl) $var(x)\r\n");
    $ru = $hdr(X-D2);
    t_relay();
}
failure_route[XF] {
    $var(x) = "";
    if (isxflagset("6")) { $var(x) = $var(x) + "6"; }
    if (isxflagset("7")) { $var(x) = $var(x) + "7"; }
    append_to_reply("X-G: xf=$var(x) $avp(fx)\r\n");
    t_reply("500", "XF");
}
failure_route[DROP] {
    t_drop();
}
"#;

/// Whether `r` is a `method` request of call `call`.
fn is_req(r: &Reply, call: &str, method: &str) -> bool {
    let m = r.msg.msg();
    m.call_id().ok() == Some(call) && m.method().is_some_and(|x| x.as_str() == method)
}

/// The header lines of `r` whose names start with `X-` or are `From`
/// (ports of the scene's peers named).
fn marks(p: &Scene, r: &Reply) -> String {
    let text = r.text();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .filter(|l| l.starts_with("X-") || l.starts_with("From:"))
        .map(|l| p.names(l))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Status line, with the marks of the reply.
fn line_and_marks(p: &Scene, r: &Reply) -> String {
    let m = marks(p, r);
    if m.is_empty() {
        first_line(r)
    } else {
        format!("{} [{m}]", first_line(r))
    }
}

fn retransmitted(p: &Scene) -> Vec<String> {
    let call = "tm-more-retr";
    let req = format!(
        "INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKretr1\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{}>\r\nX-T: retr\r\nContent-Length: 0\r\n\r\n",
        p.caller.addr(),
        p.caller.addr()
    );
    p.caller.send(p.srv, &req);
    let first = p.final_of(call);
    p.caller.send(p.srv, &req);
    let again = p.final_of(call);
    vec![format!("retr: {first} | again: {again}")]
}

fn status_codes(p: &Scene) -> Vec<String> {
    let call = p.send("INVITE", "gs", &format!("X-T: gs\r\nX-D: {}\r\n", p.uri(0)));
    let Some(r) = p.uas[0].recv_matching(Duration::from_secs(2), |r| is_req(r, &call, "INVITE"))
    else {
        return vec!["gs: the user agent got nothing".into()];
    };
    p.uas[0].send(r.from, &answer(&r, 180, "Ringing", "u0", &[]));
    std::thread::sleep(Duration::from_millis(100));
    p.uas[0].send(r.from, &answer(&r, 486, "Busy Here", "u0", &[]));
    let got = p.replies_with(&call, Duration::from_millis(1200), &|r| {
        line_and_marks(p, r)
    });
    vec![format!("gs: {got}")]
}

fn no_reason(p: &Scene, off: bool) -> Vec<String> {
    let extra = format!(
        "X-T: nr\r\nX-D: {}\r\n{}",
        p.uri(0),
        if off { "X-Off: 1\r\n" } else { "" }
    );
    let call = p.send("INVITE", "nr", &extra);
    let Some(r) = p.uas[0].recv_matching(Duration::from_secs(2), |r| is_req(r, &call, "INVITE"))
    else {
        return vec![format!("nr off={off}: the user agent got nothing")];
    };
    p.uas[0].send(r.from, &answer(&r, 180, "Ringing", "u0", &[]));
    std::thread::sleep(Duration::from_millis(100));
    p.cancel(
        &call,
        "X-T: c\r\nReason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n",
    );
    let Some(c) = p.uas[0].recv_matching(Duration::from_secs(2), |x| is_req(x, &call, "CANCEL"))
    else {
        return vec![format!("nr off={off}: no CANCEL")];
    };
    p.uas[0].send(c.from, &answer(&c, 200, "OK", "u0", &[]));
    p.uas[0].send(r.from, &answer(&r, 487, "Request Terminated", "u0", &[]));
    let reason = c.header("Reason").unwrap_or_else(|| "-".into());
    let fin = p.final_of(&call);
    vec![format!(
        "nr off={off}: CANCEL Reason: {reason} | caller: {fin}"
    )]
}

fn saved_lumps(p: &Scene, what: &str) -> Vec<String> {
    let extra = format!("X-T: {what}\r\nX-D: {}\r\nX-D2: {}\r\n", p.uri(0), p.uri(1));
    let call = p.send("INVITE", what, &extra);
    let t = Duration::from_secs(2);
    let Some(r0) = p.uas[0].recv_matching(t, |r| is_req(r, &call, "INVITE")) else {
        return vec![format!("{what}: u0 got nothing")];
    };
    p.uas[0].send(r0.from, &answer(&r0, 486, "Busy Here", "u0", &[]));
    let Some(r1) = p.uas[1].recv_matching(t, |r| is_req(r, &call, "INVITE")) else {
        return vec![format!("{what}: u0 [{}] | u1 got nothing", marks(p, &r0))];
    };
    p.uas[1].send(r1.from, &answer(&r1, 404, "Not Found", "u1", &[]));
    let fin = p.final_of(&call);
    vec![format!(
        "{what}: u0 [{}] | u1 [{}] | caller: {fin}",
        marks(p, &r0),
        marks(p, &r1)
    )]
}

/// A request of `what` relayed to user agent `u` (0, or the one on the
/// configuration's fixed port), which answers 486.
fn to_u0(p: &Scene, u: &UdpPeer, what: &str, extra: &str) -> Vec<String> {
    let call = p.send("INVITE", what, &format!("X-T: {what}\r\n{extra}"));
    let Some(r) = u.recv_matching(Duration::from_secs(2), |r| is_req(r, &call, "INVITE")) else {
        return vec![format!("{what}: the user agent got nothing")];
    };
    u.send(r.from, &answer(&r, 486, "Busy Here", "u0", &[]));
    let ack = u
        .recv_matching(Duration::from_secs(1), |x| is_req(x, &call, "ACK"))
        .map_or("no ACK".to_string(), |a| format!("ACK [{}]", marks(p, &a)));
    let got = p.replies_with(&call, Duration::from_millis(1200), &first_line);
    vec![format!(
        "{what}: u0 {} [{}], {ack} | caller: {got}",
        p.names(&first_line(&r)),
        marks(p, &r)
    )]
}

fn uac_send(p: &Scene) -> Vec<String> {
    let call = p.send(
        "OPTIONS",
        "send",
        &format!("X-T: send\r\nX-D: {}\r\n", p.uri(0)),
    );
    let fin = p.final_of(&call);
    let mut out = vec![format!("send: caller: {fin}")];
    for _ in 0..2 {
        match p.uas[0].recv_matching(Duration::from_secs(2), |r| r.status().is_none()) {
            Some(r) => {
                p.uas[0].send(r.from, &answer(&r, 200, "OK", "u0", &[]));
                let text = r.text();
                let body = text
                    .split("\r\n\r\n")
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                out.push(format!(
                    "send: u0 got {} [{}] body {body:?}",
                    p.names(&first_line(&r)),
                    marks(p, &r)
                ));
            }
            None => out.push("send: u0 got nothing".into()),
        }
    }
    out.sort();
    out
}

fn scenario(srv: SocketAddr, uas_port: u16) -> Vec<String> {
    let p = Scene::new(srv, 2);
    let fixed = UdpPeer::on(&format!("127.0.0.1:{uas_port}"));
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let u0 = &p.uas[0];
    let d0 = format!("X-D: {}\r\n", p.uri(0));
    let mut out = Vec::new();
    out.extend(retransmitted(&p));
    out.extend(status_codes(&p));
    out.extend(no_reason(&p, false));
    out.extend(no_reason(&p, true));
    out.extend(saved_lumps(&p, "lumps"));
    out.extend(saved_lumps(&p, "lumps2"));
    out.extend(to_u0(&p, u0, "xf", &d0));
    out.extend(to_u0(&p, u0, "drop", &d0));
    out.extend(to_u0(&p, &fixed, "fna", ""));
    out.extend(to_u0(&p, u0, "fnau", &d0));
    out.extend(to_u0(&p, &fixed, "fnaudp", ""));
    out.extend(to_u0(&p, u0, "uac", &d0));
    out.extend(uac_send(&p));
    for i in 1..=6 {
        let what = format!("rs{i}");
        let call = p.send("INVITE", &what, &format!("X-T: {what}\r\n"));
        out.push(format!("{what}: {}", p.final_of(&call)));
    }
    out
}

#[test]
fn tm_functions_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("tm-more");
    let uas_port = sr_testkit::free_port();
    let cfg = (kamailio::head(MODULES) + BODY).replace("__UAS__", &uas_port.to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, uas_port)
    });
    assert!(want.iter().any(|l| l.contains("Busy Once")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "tm functions");
}
