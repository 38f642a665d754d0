//! Differential test against Kamailio itself, for tm's reply commands:
//! requests suspended by `t_suspend()` (an INVITE, a MESSAGE) answered from
//! outside with `kamcmd tm.reply` (by `index:label`, a To tag, extra
//! headers, a body) and `tm.reply_callid` (by Call-ID and CSeq), then the
//! same commands for transactions that are gone or unknown; then tmx's
//! `t_reply_callid` and `t_cancel_callid` run from another request's
//! script (a suspended INVITE answered, a relayed one ringing cancelled
//! with a Reason) — every reply the caller gets, the CANCEL the user agent
//! gets, and everything `kamcmd` prints compared.
//!
//! Without Kamailio (tm, tmx, kamcmd) installed the test prints a notice
//! and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "tmx", "pv", "textops", "ctl"];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("tm", "fr_timer", 10000)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-T) == "ids") {
        append_to_reply("X-Id: $shv(id)\r\n");
        sl_send_reply("200", "ids");
        exit;
    }
    if (is_method("ACK")) { exit; }
    if ($hdr(X-T) == "replyit") {
        t_reply_callid("$hdr(X-C)", "7", "486", "Busy By Script");
        append_to_reply("X-Rc: $rc\r\n");
        sl_send_reply("200", "done");
        exit;
    }
    if ($hdr(X-T) == "cancelit") {
        t_cancel_callid("$hdr(X-C)", "7", "3", "200");
        append_to_reply("X-Rc: $rc\r\n");
        sl_send_reply("200", "done");
        exit;
    }
    if ($hdr(X-T) == "rel") {
        $du = "sip:__UAS__";
        t_relay();
        exit;
    }
    t_newtran();
    t_suspend();
    $shv(id) = "" + $T(id_index) + ":" + $T(id_label);
    exit;
}
"#;

fn request(peer: &UdpPeer, srv: SocketAddr, method: &str, t: &str) -> String {
    request_x(peer, srv, method, t, t, "")
}

/// A request with header `X-T: t` and Call-ID `tmrpc-name`.
fn request_x(
    peer: &UdpPeer,
    srv: SocketAddr,
    method: &str,
    t: &str,
    name: &str,
    extra: &str,
) -> String {
    let call = format!("tmrpc-{name}");
    let req = format!(
        "{method} sip:{t}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f{t}\r\nTo: <sip:{t}@example.com>\r\nCall-ID: {call}\r\nCSeq: 7 {method}\r\nContact: <sip:a@{}>\r\nX-T: {t}\r\n{extra}Content-Length: 0\r\n\r\n",
        peer.addr(),
        peer.addr()
    );
    peer.send(srv, &req);
    call
}

/// What a MESSAGE running a tmx function answers.
fn script_call(peer: &UdpPeer, srv: SocketAddr, t: &str, n: u8, target: &str) -> String {
    let name = format!("{t}{n}");
    let call = request_x(
        peer,
        srv,
        "MESSAGE",
        t,
        &name,
        &format!("X-C: {target}\r\n"),
    );
    let r = peer.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str())
    });
    format!(
        "{t} {target}: {}",
        r.and_then(|r| r.header("X-Rc")).unwrap_or_default()
    )
}

/// The id `index:label` of the last suspended transaction.
fn last_id(peer: &UdpPeer, srv: SocketAddr) -> String {
    let req =
        kamailio::options("tmrpc-ids", "X-T: ids\r\n").replace("__VIA__", &peer.addr().to_string());
    peer.send(srv, &req);
    peer.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some("tmrpc-ids")
    })
    .and_then(|r| r.header("X-Id"))
    .unwrap_or_default()
}

/// The final reply to `call`, as the caller sees it.
fn final_of(peer: &UdpPeer, call: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        let Some(r) = peer.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call)
        }) else {
            break;
        };
        if r.status().unwrap_or(0) >= 200 {
            let to_tag = r
                .msg
                .msg()
                .to_tag()
                .ok()
                .flatten()
                .unwrap_or("")
                .to_string();
            // A tag the server made up differs between the servers.
            let to_tag = if to_tag.is_empty() || to_tag.starts_with("tt") || to_tag == "u1" {
                to_tag
            } else {
                "<the server's>".to_string()
            };
            return format!(
                "{call}: {} | to-tag {to_tag} | X-Why {} | body [{}]",
                r.text().lines().next().unwrap_or_default(),
                r.header("X-Why").unwrap_or_default(),
                r.text().split("\r\n\r\n").nth(1).unwrap_or("")
            );
        }
    }
    format!("{call}: no final reply")
}

fn scenario(srv: SocketAddr, sock: &Path, uas: &UdpPeer) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let kam = |args: &[&str]| kamailio::kamcmd(sock, args, &|l| l.to_string());
    let mut out = Vec::new();
    let inv = request(&peer, srv, "INVITE", "inv");
    std::thread::sleep(Duration::from_millis(200));
    let id = last_id(&peer, srv);
    // (Always with a body: Kamailio 5.6.3 without one sends a text of its
    // own as the body.)
    out.extend(kam(&[
        "tm.reply",
        "486",
        "Busy Here",
        &id,
        "tt1",
        "X-Why: test\r\n",
        "s:",
    ]));
    out.push(final_of(&peer, &inv));
    out.extend(kam(&["tm.reply", "486", "Again", &id, "tt1", ".", "s:"]));
    let msg = request(&peer, srv, "MESSAGE", "msg");
    std::thread::sleep(Duration::from_millis(200));
    out.extend(kam(&[
        "tm.reply_callid",
        "202",
        "Accepted Later",
        &msg,
        "s:7",
        "tt2",
        "Content-Type: text/plain\r\n",
        "hello",
    ]));
    out.push(final_of(&peer, &msg));
    out.extend(kam(&[
        "tm.reply_callid",
        "404",
        "None",
        "no-such-call",
        "s:1",
        "t",
        ".",
        "s:",
    ]));
    // (A number where a text is wanted: kamcmd sends `7` as an integer.)
    out.extend(kam(&[
        "tm.reply_callid",
        "404",
        "None",
        &msg,
        "7",
        "t",
        ".",
        "s:",
    ]));
    out.extend(kam(&["tm.reply", "404", "None", "1:1", "t", ".", "s:"]));
    out.extend(kam(&["tm.reply", "404", "None", "bad", "t", ".", "s:"]));
    // tmx's t_reply_callid from another request's script.
    let scr = request(&peer, srv, "INVITE", "scr");
    std::thread::sleep(Duration::from_millis(200));
    out.push(script_call(&peer, srv, "replyit", 1, &scr));
    out.push(final_of(&peer, &scr));
    out.push(script_call(&peer, srv, "replyit", 2, "tmrpc-none"));
    // tmx's t_cancel_callid on a relayed INVITE ringing at a user agent.
    let rel = request(&peer, srv, "INVITE", "rel");
    let got = uas.recv_method("INVITE", Duration::from_secs(3));
    if let Some(inv) = &got {
        uas.send(
            inv.from,
            &sr_testkit::answer(inv, 180, "Ringing", "u1", &[]),
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    out.push(script_call(&peer, srv, "cancelit", 1, &rel));
    if let (Some(inv), Some(c)) = (&got, uas.recv_method("CANCEL", Duration::from_secs(3))) {
        out.push(format!(
            "uas got CANCEL | Reason {}",
            c.header("Reason").unwrap_or_default()
        ));
        uas.send(c.from, &sr_testkit::answer(&c, 200, "OK", "u1", &[]));
        uas.send(
            inv.from,
            &sr_testkit::answer(inv, 487, "Request Terminated", "u1", &[]),
        );
    } else {
        out.push("uas got no CANCEL".into());
    }
    out.push(final_of(&peer, &rel));
    out.push(script_call(&peer, srv, "cancelit", 2, &rel));
    out.push(script_call(&peer, srv, "cancelit", 3, "tmrpc-none"));
    // tm.cancel on a relayed INVITE ringing at a user agent, and on
    // unknown ones; tm.hash_stats and tm.clean.
    let rel2 = request_x(&peer, srv, "INVITE", "rel", "rel2", "");
    let got = uas.recv_method("INVITE", Duration::from_secs(3));
    if let Some(inv) = &got {
        uas.send(
            inv.from,
            &sr_testkit::answer(inv, 180, "Ringing", "u1", &[]),
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    out.extend(kam(&["tm.cancel", &rel2, "s:7"]));
    if let (Some(inv), Some(c)) = (&got, uas.recv_method("CANCEL", Duration::from_secs(3))) {
        out.push("uas got CANCEL".into());
        uas.send(c.from, &sr_testkit::answer(&c, 200, "OK", "u1", &[]));
        uas.send(
            inv.from,
            &sr_testkit::answer(inv, 487, "Request Terminated", "u1", &[]),
        );
    } else {
        out.push("uas got no CANCEL".into());
    }
    out.push(final_of(&peer, &rel2));
    out.extend(kam(&["tm.cancel", &rel2, "s:7"]));
    out.extend(kam(&["tm.cancel", "tmrpc-none", "s:7"]));
    out.extend(kam(&["tm.hash_stats"]));
    out.extend(kam(&["tm.clean"]));
    // (The transaction's id differs between the servers.)
    out.into_iter().map(|l| l.replace(&id, "<id>")).collect()
}

#[test]
fn tm_reply_commands_match_kamailio() {
    if !kamailio::available(MODULES) || !kamailio::kamcmd_available(&[]) {
        return;
    }
    let dir = kamailio::fresh_dir("tm_rpc");
    let sock = dir.join("ctl.sock");
    let uas = UdpPeer::new();
    let cfg = (kamailio::head(MODULES) + BODY)
        .replace("__SOCK__", &sock.display().to_string())
        .replace("__UAS__", &uas.addr().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, &sock, &uas)
    });
    assert!(
        want.iter().any(|l| l.contains("486 Busy Here")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "tm_rpc");
}
