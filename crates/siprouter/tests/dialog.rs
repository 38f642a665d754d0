//! End-to-end: the dialog module over real UDP — states through a call
//! (early, confirmed, ACK, BYE), profiles and their sizes, `$dlg`,
//! `$dlg_var`, the event routes, failed calls, the timeout with a BYE to
//! both sides, `dlg.end_dlg`, and config errors.

use sr_testkit::{answer, req, Reply, TestServer, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn cfg(extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=2
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "pv"
loadmodule "siputils"
loadmodule "textops"
loadmodule "dialog"
modparam("dialog", "profiles_with_value", "caller")
modparam("dialog", "profiles_no_value", "total")
{extra}
request_route {{
    if (is_method("OPTIONS")) {{
        get_profile_size("total", "$var(t)");
        get_profile_size("caller", "alice", "$var(a)");
        append_to_reply("X-Total: $var(t)\r\nX-Alice: $var(a)\r\nX-Start: $shv(start)\r\nX-End: $shv(end)\r\nX-Failed: $shv(failed)\r\nX-Timeout: $shv(to)\r\n");
        sl_send_reply("200", "OK");
        exit;
    }}
    if (has_totag()) {{
        if ($hdr(X-Manage) != $null) {{
            dlg_manage();
            append_hf("X-Managed: $dlg(state)\r\n");
        }}
        if (loose_route()) {{
            append_hf("X-State: $dlg(state)\r\nX-Var: $dlg_var(x)\r\nX-Known: $var(k)\r\n");
            if (is_in_profile("caller", "alice")) {{ append_hf("X-In: alice\r\n"); }}
            t_relay();
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if ($rU == "short") {{
        $dlg_ctx(timeout_bye) = 1;
        $dlg_ctx(timeout_route) = "TIMEOUT";
    }}
    dlg_manage();
    set_dlg_profile("total");
    set_dlg_profile("caller", "$fU");
    $dlg_var(x) = "v1";
    if ($rU == "short") {{ dlg_set_timeout(2); }}
    record_route();
    t_relay();
}}
route[TIMEOUT] {{ $shv(to) = $dlg(callid); }}
event_route[dialog:start] {{ $shv(start) = $shv(start) + 1; }}
event_route[dialog:end] {{ $shv(end) = $shv(end) + 1; }}
event_route[dialog:failed] {{ $shv(failed) = $shv(failed) + 1; }}
"#
    )
}

fn probe(srv: &TestServer, uac: &UdpPeer, n: u32) -> Reply {
    let o = req(
        "OPTIONS",
        "sip:probe@127.0.0.1",
        uac.addr(),
        &format!("p{n}"),
        &format!("probe-{n}"),
        1,
        &[],
        "",
    );
    uac.send(srv.addr(), &o);
    uac.recv_status(200, T).expect("probe answered")
}

fn invite(uac: &UdpPeer, uas: &UdpPeer, user: &str, call: &str) -> String {
    req(
        "INVITE",
        &format!("sip:{user}@{}", uas.addr()),
        uac.addr(),
        &format!("i-{call}"),
        call,
        10,
        &[&format!("Contact: <sip:alice@{}>", uac.addr())],
        "",
    )
}

/// An in-dialog request from the caller to the callee's Contact.
fn from_caller(
    method: &str,
    ok: &Reply,
    uac: &UdpPeer,
    uas: SocketAddr,
    cseq: u32,
    branch: &str,
) -> String {
    let ruri = format!("sip:bob@{uas}");
    sr_testkit::from_caller(method, ok, uac.addr(), &ruri, cseq, branch, &[])
}

/// An in-dialog request from the callee: the INVITE's Record-Route as
/// its Route, From/To swapped.
fn from_callee(method: &str, inv: &Reply, uas: &UdpPeer, uac: SocketAddr, tag: &str) -> String {
    let m = inv.msg.msg();
    let routes: String = m
        .headers_by_name("Record-Route")
        .map(|h| format!("Route: {}\r\n", h.value))
        .collect();
    let from = m.headers_by_name("From").next().unwrap().value.to_string();
    let to = m.headers_by_name("To").next().unwrap().value.to_string();
    format!(
        "{method} sip:alice@{uac} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKcallee{method}\r\nMax-Forwards: 70\r\n{routes}From: {to};tag={tag}\r\nTo: {from}\r\nCall-ID: {}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n",
        uas.addr(),
        m.call_id().unwrap()
    )
}

/// INVITE through 180 and 200; the 200 as the caller got it and the
/// INVITE as the callee got it.
fn answered(
    srv: &TestServer,
    uac: &UdpPeer,
    uas: &UdpPeer,
    user: &str,
    call: &str,
) -> (Reply, Reply) {
    uac.send(srv.addr(), &invite(uac, uas, user, call));
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    uas.send(inv.from, &answer(&inv, 180, "Ringing", "bobtag", &[]));
    uac.recv_status(180, T).expect("180 relayed");
    let contact = format!("Contact: <sip:bob@{}>", uas.addr());
    uas.send(inv.from, &answer(&inv, 200, "OK", "bobtag", &[&contact]));
    let ok = uac.recv_status(200, T).expect("200 relayed");
    (ok, inv)
}

#[test]
fn a_call_goes_through_the_states_and_profiles() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    uac.send(srv.addr(), &invite(&uac, &uas, "bob", "call-1"));
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    let rr = inv.header("Record-Route").expect("record-routed");
    assert!(rr.contains(";did="), "{rr}");
    assert_eq!(srv.wait_stat("dialog:processed_dialogs", 1), Some(1));
    let list = srv.rpc("dlg.list", &[]).unwrap();
    assert_eq!(list[0]["state"], 1, "{list}");
    let (he, hi) = (
        list[0]["h_entry"].as_u64().unwrap(),
        list[0]["h_id"].as_u64().unwrap(),
    );
    // did = h_entry.h_id, each in hex written least significant digit first
    let rev = |n: u64| format!("{n:x}").chars().rev().collect::<String>();
    assert!(
        rr.contains(&format!(";did={}.{}", rev(he), rev(hi))),
        "{rr}"
    );

    uas.send(inv.from, &answer(&inv, 180, "Ringing", "bobtag", &[]));
    uac.recv_status(180, T).expect("180 relayed");
    assert_eq!(srv.wait_stat("dialog:early_dialogs", 1), Some(1));
    let contact = format!("Contact: <sip:bob@{}>", uas.addr());
    uas.send(inv.from, &answer(&inv, 200, "OK", "bobtag", &[&contact]));
    let ok = uac.recv_status(200, T).expect("200 relayed");
    assert_eq!(srv.wait_stat("dialog:active_dialogs", 1), Some(1));
    assert_eq!(srv.stat("dialog:early_dialogs"), Some(0));
    let list = srv.rpc("dlg.list", &[]).unwrap();
    assert_eq!(list[0]["state"], 3, "answered, no ACK yet: {list}");
    assert_eq!(list[0]["callee"]["tag"], "bobtag");
    assert_eq!(list[0]["caller"]["cseq"], "10");
    let p = probe(&srv, &uac, 1);
    assert_eq!(p.header("X-Total").as_deref(), Some("1"));
    assert_eq!(p.header("X-Alice").as_deref(), Some("1"));
    assert_eq!(p.header("X-Start").as_deref(), Some("1"));
    let size = srv
        .rpc("dlg.profile_get_size", &["caller".into(), "alice".into()])
        .unwrap();
    assert_eq!(size, 1, "{size}");
    let stats = srv.rpc("dlg.stats_active", &[]).unwrap();
    assert_eq!(stats["answering"], 1, "{stats}");
    assert_eq!(stats["all"], 1, "{stats}");

    uac.send(
        srv.addr(),
        &from_caller("ACK", &ok, &uac, uas.addr(), 10, "ack1"),
    );
    let ack = uas.recv_method("ACK", T).expect("ACK relayed");
    assert_eq!(
        ack.header("X-State").as_deref(),
        Some("4"),
        "{}",
        ack.text()
    );
    assert_eq!(ack.header("X-Var").as_deref(), Some("v1"));
    assert_eq!(ack.header("X-In").as_deref(), Some("alice"));

    // The callee hangs up: the BYE goes up the caller's way.
    uas.send(
        srv.addr(),
        &from_callee("BYE", &inv, &uas, uac.addr(), "bobtag"),
    );
    let bye = uac
        .recv_method("BYE", T)
        .expect("BYE relayed to the caller");
    assert_eq!(bye.header("X-State").as_deref(), Some("5"));
    assert_eq!(srv.wait_stat("dialog:active_dialogs", 0), Some(0));
    let p = probe(&srv, &uac, 2);
    assert_eq!(p.header("X-Total").as_deref(), Some("0"));
    assert_eq!(p.header("X-End").as_deref(), Some("1"));
    assert_eq!(srv.stat("dialog:processed_dialogs"), Some(1));
    assert_eq!(srv.stat("dialog:failed_dialogs"), Some(0));
}

#[test]
fn a_rejected_call_fails_and_leaves_its_profiles() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    uac.send(srv.addr(), &invite(&uac, &uas, "bob", "call-2"));
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    assert_eq!(probe(&srv, &uac, 1).header("X-Total").as_deref(), Some("1"));
    uas.send(inv.from, &answer(&inv, 486, "Busy Here", "bobtag", &[]));
    uac.recv_status(486, T).expect("486 relayed");
    assert_eq!(srv.wait_stat("dialog:failed_dialogs", 1), Some(1));
    let p = probe(&srv, &uac, 2);
    assert_eq!(p.header("X-Total").as_deref(), Some("0"));
    assert_eq!(p.header("X-Failed").as_deref(), Some("1"));
    assert_eq!(p.header("X-Start").as_deref(), Some("0"), "no dialog:start");
    assert_eq!(srv.stat("dialog:active_dialogs"), Some(0));
}

fn bye_answered(peer: &UdpPeer, who: &str) -> Reply {
    let bye = peer
        .recv_method("BYE", Duration::from_secs(6))
        .unwrap_or_else(|| panic!("BYE to the {who}"));
    peer.send(bye.from, &answer(&bye, 200, "OK", "x", &[]));
    bye
}

#[test]
fn the_timeout_ends_the_dialog_with_a_bye_to_both_sides() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let (ok, _) = answered(&srv, &uac, &uas, "short", "call-3");
    uac.send(
        srv.addr(),
        &from_caller("ACK", &ok, &uac, uas.addr(), 10, "ack3"),
    );
    uas.recv_method("ACK", T).expect("ACK relayed");
    let list = srv.rpc("dlg.list", &[]).unwrap();
    assert_eq!(list[0]["lifetime"], 2, "{list}");

    let to_callee = bye_answered(&uas, "callee");
    let to_caller = bye_answered(&uac, "caller");
    let m = to_callee.msg.msg();
    assert_eq!(
        m.request_uri().unwrap().raw,
        format!("sip:bob@{}", uas.addr())
    );
    assert_eq!(m.from_tag().unwrap(), Some("from-call-3"));
    assert_eq!(m.to_tag().unwrap(), Some("bobtag"));
    assert_eq!(m.cseq().unwrap().seq, 11);
    assert_eq!(m.call_id().unwrap(), "call-3");
    let m = to_caller.msg.msg();
    assert_eq!(
        m.request_uri().unwrap().raw,
        format!("sip:alice@{}", uac.addr())
    );
    assert_eq!(m.from_tag().unwrap(), Some("bobtag"));
    assert_eq!(m.to_tag().unwrap(), Some("from-call-3"));
    assert_eq!(srv.wait_stat("dialog:expired_dialogs", 1), Some(1));
    assert_eq!(srv.stat("dialog:active_dialogs"), Some(0));
    // dialog:end runs on the timer thread just after the BYEs left.
    let p = sr_testkit::probe_until(&uac, srv.addr(), "X-End", 40, |r| {
        r.header("X-End").as_deref() == Some("1")
    })
    .expect("probes answered");
    assert_eq!(p.header("X-End").as_deref(), Some("1"));
    assert_eq!(p.header("X-Total").as_deref(), Some("0"));
    assert_eq!(
        p.header("X-Timeout").as_deref(),
        Some("call-3"),
        "the timeout route ran"
    );
    // Answered BYEs are not sent again.
    assert!(uas.recv_method("BYE", Duration::from_millis(700)).is_none());
}

#[test]
fn end_dlg_over_rpc_sends_bye_and_unknown_dialogs_are_errors() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let (ok, _) = answered(&srv, &uac, &uas, "bob", "call-4");
    uac.send(
        srv.addr(),
        &from_caller("ACK", &ok, &uac, uas.addr(), 10, "ack4"),
    );
    uas.recv_method("ACK", T).expect("ACK relayed");
    let list = srv.rpc("dlg.list", &[]).unwrap();
    assert_eq!(list[0]["state"], 4);
    let (he, hi) = (list[0]["h_entry"].clone(), list[0]["h_id"].clone());
    let e = srv
        .rpc("dlg.end_dlg", &[he.clone(), 999_999.into()])
        .unwrap_err();
    assert_eq!(e.code, 404);
    srv.rpc("dlg.end_dlg", &[he, hi]).expect("ended");
    bye_answered(&uas, "callee");
    bye_answered(&uac, "caller");
    assert_eq!(srv.wait_stat("dialog:active_dialogs", 0), Some(0));
    assert_eq!(srv.stat("dialog:expired_dialogs"), Some(0));
    let e = srv
        .rpc("dlg.profile_get_size", &["nope".into()])
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "Profile not found: nope")
    );
}

#[test]
fn config_errors_are_reported() {
    let bad = cfg("").replace("set_dlg_profile(\"total\");", "set_dlg_profile(\"nope\");");
    let errs = TestServer::try_start(&bad, siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(
        errs.iter()
            .any(|e| e.contains("profile <nope> not defined")),
        "{errs:?}"
    );
    let bad = cfg("modparam(\"dialog\", \"profiles_no_value\", \"a/s\")");
    let errs = TestServer::try_start(&bad, siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(
        errs.iter().any(|e| e.contains("bad profile name <a/s>")),
        "{errs:?}"
    );
    let bad = cfg("modparam(\"dialog\", \"db_mode\", 1)");
    let errs = TestServer::try_start(&bad, siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(errs.iter().any(|e| e.contains("db_mode")), "{errs:?}");
}

#[test]
fn dlg_manage_within_and_tight_matching() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let (ok, _) = answered(&srv, &uac, &uas, "bob", "call-5");
    // dlg_manage() on a request within the dialog finds it (before
    // loose_route, which then leaves it be).
    let ack = from_caller("ACK", &ok, &uac, uas.addr(), 10, "ack5").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nX-Manage: 1\r\n",
    );
    uac.send(srv.addr(), &ack);
    let got = uas.recv_method("ACK", T).expect("ACK relayed");
    assert_eq!(
        got.header("X-Managed").as_deref(),
        Some("4"),
        "{}",
        got.text()
    );
    assert_eq!(got.header("X-State").as_deref(), Some("4"));
    // A BYE with our did but another callee's tag (a second fork) does
    // not end this dialog.
    let bye = from_caller("BYE", &ok, &uac, uas.addr(), 11, "bye5")
        .replace(";tag=bobtag", ";tag=otherfork");
    uac.send(srv.addr(), &bye);
    let got = uas.recv_method("BYE", T).expect("BYE relayed");
    assert_eq!(
        got.header("X-State").as_deref(),
        Some("<null>"),
        "{}",
        got.text()
    );
    assert_eq!(srv.stat("dialog:active_dialogs"), Some(1));
    // The real BYE does.
    let bye = from_caller("BYE", &ok, &uac, uas.addr(), 12, "bye6");
    uac.send(srv.addr(), &bye);
    let got = uas.recv_method("BYE", T).expect("BYE relayed");
    assert_eq!(got.header("X-State").as_deref(), Some("5"));
    assert_eq!(srv.wait_stat("dialog:active_dialogs", 0), Some(0));
}

#[test]
fn dlg_count_status_ruri_timeout_by_profile_and_list_match() {
    let extra = r#"
modparam("dialog", "default_timeout", 3600)
"#;
    let cfg = cfg(extra).replace(
        "            append_hf(\"X-State: $dlg(state)",
        "            if (is_method(\"INFO\")) { dlg_set_ruri(); dlg_set_timeout_by_profile(\"caller\", \"alice\", 7); }\n            append_hf(\"X-Count: $DLG_count $DLG_status $DLG_lifetime\\r\\n\");\n            append_hf(\"X-State: $dlg(state)",
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let (ok, _) = answered(&srv, &uac, &uas, "bob", "call-6");
    uac.send(
        srv.addr(),
        &from_caller("ACK", &ok, &uac, uas.addr(), 10, "ack6"),
    );
    let ack = uas.recv_method("ACK", T).expect("ACK relayed");
    assert_eq!(
        ack.header("X-Count").as_deref(),
        Some("1 4 3600"),
        "{}",
        ack.text()
    );
    // The INFO's Request-URI becomes the callee's Contact, and the
    // profile's dialogs get 7 s.
    let info = from_caller("INFO", &ok, &uac, uas.addr(), 11, "info6").replacen(
        &format!("INFO sip:bob@{}", uas.addr()),
        "INFO sip:someone@192.0.2.1",
        1,
    );
    uac.send(srv.addr(), &info);
    let got = uas
        .recv_method("INFO", T)
        .expect("INFO relayed to the Contact");
    assert_eq!(
        got.msg.msg().request_uri().unwrap().raw,
        format!("sip:bob@{}", uas.addr())
    );
    let list = srv.rpc("dlg.list", &[]).unwrap();
    assert_eq!(list[0]["lifetime"], 7, "{list}");
    let m = srv
        .rpc(
            "dlg.list_match",
            &["callid".into(), "sw".into(), "call-".into()],
        )
        .unwrap();
    assert_eq!(m.as_array().unwrap().len(), 1);
    let e = srv
        .rpc(
            "dlg.list_match",
            &["furi".into(), "eq".into(), "sip:nobody@x".into()],
        )
        .unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (404, "Not found"));
    let m = srv
        .rpc(
            "dlg.list_match",
            &["furi".into(), "re".into(), "^sip:al.*".into()],
        )
        .unwrap();
    assert_eq!(m.as_array().unwrap().len(), 1);
}
