//! Differential test against Kamailio itself, for tm's per-transaction
//! switches and `t_relay_to`: a 603 from one of two forked branches
//! cancels the other one, unless `t_set_disable_6xx(1)` was called (then
//! the other answers, and the 603 still wins); `t_relay_to("proto:host:port"
//! [, flags])` with flag 1 (no 100 Trying) and without; the return codes
//! of `t_set_disable_6xx` and `t_set_disable_failover`; textopsx's
//! `change_reply_status_code` in onreply_route (183 to 180, 604 to 404, a
//! change of class refused); tmx's `t_cancel_branches("others"|"all")` on
//! a provisional reply. What the caller and the user agents get is
//! compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::{first_line, Scene};
use sr_testkit::{answer, Reply, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "tmx", "pv", "textops", "textopsx", "corex"];

const BODY: &str = r#"request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("CANCEL|ACK")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    if ($hdr(X-T) == "6xx") {
        if ($hdr(X-Off) != $null) {
            t_set_disable_6xx("1");
            $var(a) = $rc;
            t_set_disable_failover("1");
            $var(b) = $rc;
            append_hf("X-Flags: $var(a) $var(b)\r\n");
        }
        $ru = $hdr(X-D2);
        append_branch();
        $ru = $hdr(X-D);
        t_relay();
        exit;
    }
    if ($hdr(X-T) == "to") {
        t_relay_to("udp:127.0.0.1:__UAS__");
        exit;
    }
    if ($hdr(X-T) == "to1") {
        t_relay_to("udp:127.0.0.1:__UAS__", "1");
        exit;
    }
    if ($hdr(X-T) == "cb") {
        t_on_reply("CB");
        $ru = $hdr(X-D2);
        append_branch();
        $ru = $hdr(X-D);
        t_relay();
        exit;
    }
    if ($hdr(X-T) == "chg") {
        t_on_reply("CHG");
        t_relay_to("udp:127.0.0.1:__UAS__");
        exit;
    }
}
onreply_route[CB] {
    if (status == "183") { t_cancel_branches("others"); }
    if (status == "182") { t_cancel_branches("all"); }
}
onreply_route[CHG] {
    if (status == "604") {
        change_reply_status_code("404");
        $var(rc) = $rc;
        append_hf("X-Rc: $var(rc) $rs\r\n");
    } else if (status == "183") {
        change_reply_status_code("180");
        $var(rc) = $rc;
        change_reply_status_code("200");
        $var(rc2) = $rc;
        change_reply_status_code("700");
        $var(rc3) = $rc;
        append_hf("X-Rc: $var(rc) $var(rc2) $var(rc3) $rs\r\n");
    }
}
"#;

/// The caller's replies to `call`, first lines, until a final one.
fn caller_gets(p: &Scene, call: &str, wait: Duration) -> String {
    let mut got = Vec::new();
    while let Some(r) = p.caller.recv_matching(wait, |r| {
        r.msg.msg().call_id().ok() == Some(call) && r.status().is_some()
    }) {
        let fin = r.status().is_some_and(|c| c >= 200);
        got.push(first_line(&r));
        if fin {
            break;
        }
    }
    got.join(", ")
}

/// Whether `r` is the INVITE of call `call`.
fn is_invite_of(r: &Reply, call: &str) -> bool {
    let m = r.msg.msg();
    m.call_id().ok() == Some(call) && m.method().is_some_and(|x| x.as_str() == "INVITE")
}

/// Answers the request `r` at user agent `i`.
fn reply(p: &Scene, i: usize, r: &Reply, code: u16, reason: &str) {
    p.uas[i].send(r.from, &answer(r, code, reason, &format!("u{i}"), &[]));
}

fn six_xx(p: &Scene, off: bool) -> Vec<String> {
    let extra = format!(
        "X-T: 6xx\r\nX-D: {}\r\nX-D2: {}\r\n{}",
        p.uri(0),
        p.uri(1),
        if off { "X-Off: 1\r\n" } else { "" }
    );
    let call = p.send("INVITE", "6xx", &extra);
    let t = Duration::from_secs(2);
    let r0 = p.uas[0].recv_matching(t, |r| is_invite_of(r, &call));
    let r1 = p.uas[1].recv_matching(t, |r| is_invite_of(r, &call));
    let (Some(r0), Some(r1)) = (r0, r1) else {
        return vec![format!("6xx off={off}: a branch got nothing")];
    };
    reply(p, 0, &r0, 180, "Ringing");
    reply(p, 1, &r1, 603, "Decline");
    // Does user agent 0 get a CANCEL?
    let cancel = p.uas[0].recv_matching(Duration::from_millis(700), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str())
            && r.msg.msg().method().is_some_and(|m| m.as_str() == "CANCEL")
    });
    let mut u0 = format!(
        "u0: INVITE [X-Flags: {}]",
        r0.header("X-Flags").unwrap_or_default()
    );
    match &cancel {
        Some(c) => {
            u0.push_str(", CANCEL");
            reply(p, 0, c, 200, "OK");
            reply(p, 0, &r0, 487, "Request Terminated");
        }
        None => reply(p, 0, &r0, 486, "Busy Here"),
    }
    let caller = caller_gets(p, &call, Duration::from_secs(3));
    vec![format!("6xx off={off}: caller: {caller} | {u0}")]
}

fn relay_to(p: &Scene, uas: &UdpPeer, flags: bool) -> Vec<String> {
    let what = if flags { "to1" } else { "to" };
    let call = p.send("INVITE", what, &format!("X-T: {what}\r\n"));
    let Some(r) = uas.recv_matching(Duration::from_secs(2), |r| is_invite_of(r, &call)) else {
        return vec![format!("{what}: the proxy's user agent got nothing")];
    };
    let ruri = first_line(&r);
    uas.send(r.from, &answer(&r, 486, "Busy Here", "ut", &[]));
    let caller = caller_gets(p, &call, Duration::from_secs(3));
    vec![format!("{what}: u0 got {ruri} | caller: {caller}")]
}

/// A reply whose code onreply_route changes: 183 to 180, 604 to 404.
fn changed(p: &Scene, uas: &UdpPeer) -> Vec<String> {
    let call = p.send("INVITE", "chg", "X-T: chg\r\n");
    let Some(r) = uas.recv_matching(Duration::from_secs(2), |r| is_invite_of(r, &call)) else {
        return vec!["chg: the proxy's user agent got nothing".into()];
    };
    uas.send(r.from, &answer(&r, 183, "Session Progress", "ut", &[]));
    std::thread::sleep(Duration::from_millis(100));
    uas.send(
        r.from,
        &answer(&r, 604, "Does Not Exist Anywhere", "ut", &[]),
    );
    let mut got = Vec::new();
    while let Some(x) = p.caller.recv_matching(Duration::from_secs(3), |x| {
        x.msg.msg().call_id().ok() == Some(call.as_str()) && x.status().is_some()
    }) {
        let fin = x.status().is_some_and(|c| c >= 200);
        got.push(format!(
            "{} [X-Rc: {}]",
            first_line(&x),
            x.header("X-Rc").unwrap_or_default()
        ));
        if fin {
            break;
        }
    }
    vec![format!("chg: {}", got.join(", "))]
}

/// Two branches; user agent 0's provisional reply cancels the other
/// branch (183: `t_cancel_branches("others")`) or all (182: "all").
/// ("this" cancels every branch in Kamailio 5.6: not compared.)
fn cancel_branches(p: &Scene, code: u16) -> Vec<String> {
    let extra = format!("X-T: cb\r\nX-D: {}\r\nX-D2: {}\r\n", p.uri(0), p.uri(1));
    let call = p.send("INVITE", "cb", &extra);
    let t = Duration::from_secs(2);
    let r0 = p.uas[0].recv_matching(t, |r| is_invite_of(r, &call));
    let r1 = p.uas[1].recv_matching(t, |r| is_invite_of(r, &call));
    let (Some(r0), Some(r1)) = (r0, r1) else {
        return vec![format!("cb {code}: a branch got nothing")];
    };
    reply(p, 1, &r1, 180, "Ringing");
    std::thread::sleep(Duration::from_millis(100));
    reply(p, 0, &r0, code, "Progress");
    let mut lines = Vec::new();
    for (i, r) in [(0usize, &r0), (1, &r1)] {
        let c = p.uas[i].recv_matching(Duration::from_millis(700), |x| {
            x.msg.msg().call_id().ok() == Some(call.as_str())
                && x.msg.msg().method().is_some_and(|m| m.as_str() == "CANCEL")
        });
        match c {
            Some(c) => {
                reply(p, i, &c, 200, "OK");
                reply(p, i, r, 487, "Request Terminated");
                lines.push(format!("u{i}: CANCEL"));
            }
            None => {
                reply(p, i, r, 486, "Busy Here");
                lines.push(format!("u{i}: -"));
            }
        }
    }
    let caller = caller_gets(p, &call, Duration::from_secs(3));
    vec![format!(
        "cb {code}: caller: {caller} | {}",
        lines.join(" | ")
    )]
}

fn scenario(srv: SocketAddr, uas_port: u16) -> Vec<String> {
    let p = Scene::new(srv, 2);
    let uas = UdpPeer::on(&format!("127.0.0.1:{uas_port}"));
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    out.extend(six_xx(&p, false));
    out.extend(six_xx(&p, true));
    out.extend(relay_to(&p, &uas, false));
    out.extend(relay_to(&p, &uas, true));
    out.extend(changed(&p, &uas));
    out.extend(cancel_branches(&p, 183));
    out.extend(cancel_branches(&p, 182));
    out
}

#[test]
fn tm_switches_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("tm-flags");
    let uas_port = sr_testkit::free_port();
    let cfg = (kamailio::head(MODULES) + BODY).replace("__UAS__", &uas_port.to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, uas_port)
    });
    assert!(want.iter().any(|l| l.contains("603 Decline")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "tm switches");
}
