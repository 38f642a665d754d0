//! End-to-end: the sst module over real UDP — the agreed session
//! interval becomes the dialog's lifetime, a session nobody refreshes
//! ends with a BYE to both sides (counted by `sst:expired_sst`), a
//! re-INVITE refreshes it with its new interval, `sstCheckMin` answers
//! 422 with `Min-SE` as documented, and configuration errors.

use sr_testkit::{answer, req, Reply, TestServer, UdpPeer};
use std::time::{Duration, Instant};

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
loadmodule "textops"
loadmodule "dialog"
loadmodule "sst"
modparam("dialog", "dlg_flag", 5)
modparam("dialog", "send_bye", 1)
modparam("sst", "sst_flag", 6)
{extra}
request_route {{
    if ($tt != $null) {{ loose_route(); t_relay(); exit; }}
    if (is_method("INVITE")) {{
        if ($hdr(X-Check) != $null) {{
            if (sstCheckMin("$hdr(X-Check)")) {{
                if ($hdr(X-Check) == "0") {{ sl_send_reply("499", "Too small, not sent"); }}
                exit;
            }}
        }}
        setflag(5);
        setflag(6);
        record_route();
    }}
    t_relay();
}}
"#
    )
}

fn invite(uac: &UdpPeer, uas: &UdpPeer, call: &str, extra: &[&str]) -> String {
    let contact = format!("Contact: <sip:alice@{}>", uac.addr());
    let mut h = vec![contact.as_str()];
    h.extend_from_slice(extra);
    req(
        "INVITE",
        &format!("sip:bob@{}", uas.addr()),
        uac.addr(),
        &format!("i-{call}"),
        call,
        10,
        &h,
        "",
    )
}

/// A request from the caller within the dialog of `ok` (a re-INVITE
/// asks for a 4 s session).
fn from_caller(method: &str, ok: &Reply, uac: &UdpPeer, uas: &UdpPeer, cseq: u32) -> String {
    let contact = format!("Contact: <sip:alice@{}>", uac.addr());
    let extra: &[&str] = if method == "INVITE" {
        &["Session-Expires: 4;refresher=uac", &contact]
    } else {
        &[]
    };
    let ruri = format!("sip:bob@{}", uas.addr());
    let branch = format!("{method}-{cseq}");
    sr_testkit::from_caller(method, ok, uac.addr(), &ruri, cseq, &branch, extra)
}

/// INVITE (`extra` headers) answered with 200 (`rpl` headers) and
/// ACKed.
fn call(
    srv: &TestServer,
    uac: &UdpPeer,
    uas: &UdpPeer,
    id: &str,
    extra: &[&str],
    rpl: &[&str],
) -> Reply {
    uac.send(srv.addr(), &invite(uac, uas, id, extra));
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    let contact = format!("Contact: <sip:bob@{}>", uas.addr());
    let mut h = vec![contact.as_str()];
    h.extend_from_slice(rpl);
    uas.send(inv.from, &answer(&inv, 200, "OK", "bobtag", &h));
    let ok = uac.recv_status(200, T).expect("200 relayed");
    uac.send(srv.addr(), &from_caller("ACK", &ok, uac, uas, 10));
    uas.recv_method("ACK", T).expect("ACK relayed");
    ok
}

fn bye_to(peer: &UdpPeer, within: Duration) -> Option<Reply> {
    let bye = peer.recv_method("BYE", within)?;
    peer.send(bye.from, &answer(&bye, 200, "OK", "x", &[]));
    Some(bye)
}

#[test]
fn an_unrefreshed_session_ends_with_its_dialog() {
    let srv = TestServer::start(
        &cfg("modparam(\"sst\", \"min_se\", 2)"),
        siprouter::in_tree(),
    );
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    uac.send(
        srv.addr(),
        &invite(&uac, &uas, "sst-1", &["Supported: timer"]),
    );
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    let contact = format!("Contact: <sip:bob@{}>", uas.addr());
    let two_hundred = answer(&inv, 200, "OK", "bobtag", &[&contact]);
    uas.send(inv.from, &two_hundred);
    let ok = uac.recv_status(200, T).expect("200 relayed");
    assert_eq!(
        ok.header("Session-Expires").as_deref(),
        Some("2;refresher=uac"),
        "the proxy's interval, the caller refreshes"
    );
    // The callee's retransmission of its 200 says the same.
    uas.send(inv.from, &two_hundred);
    let again = uac.recv_status(200, T).expect("the retransmission relayed");
    assert_eq!(
        again.header("Session-Expires").as_deref(),
        Some("2;refresher=uac")
    );
    uac.send(srv.addr(), &from_caller("ACK", &ok, &uac, &uas, 10));
    uas.recv_method("ACK", T).expect("ACK relayed");
    let list = srv.rpc("dlg.list", &[]).unwrap();
    assert_eq!(list[0]["lifetime"], 2, "{list}");
    let start = Instant::now();
    assert!(
        bye_to(&uas, Duration::from_secs(6)).is_some(),
        "BYE to the callee"
    );
    assert!(
        bye_to(&uac, Duration::from_secs(2)).is_some(),
        "BYE to the caller"
    );
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert_eq!(srv.wait_stat("sst:expired_sst", 1), Some(1));
    // Counted when the dialog is done with, which may come after the
    // BYEs went out.
    assert_eq!(srv.wait_stat("dialog:expired_dialogs", 1), Some(1));
}

#[test]
fn other_requests_do_not_renew_the_session() {
    let srv = TestServer::start(
        &cfg("modparam(\"sst\", \"min_se\", 3)"),
        siprouter::in_tree(),
    );
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let ok = call(&srv, &uac, &uas, "sst-6", &["Supported: timer"], &[]);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    // An OPTIONS within the dialog (answered) is no refresh.
    uac.send(srv.addr(), &from_caller("OPTIONS", &ok, &uac, &uas, 11));
    let o = uas.recv_method("OPTIONS", T).expect("OPTIONS relayed");
    uas.send(o.from, &answer(&o, 200, "OK", "bobtag", &[]));
    uac.recv_status(200, T).expect("200 to the OPTIONS");
    assert!(
        bye_to(&uas, Duration::from_secs(6)).is_some(),
        "BYE to the callee"
    );
    // Renewed by the OPTIONS it would come 5 s after the answer or later.
    assert!(
        start.elapsed() < Duration::from_millis(4700),
        "the session ended on its own interval: {:?}",
        start.elapsed()
    );
    assert!(
        bye_to(&uac, Duration::from_secs(2)).is_some(),
        "BYE to the caller"
    );
}

#[test]
fn a_refresh_keeps_the_session_with_its_new_interval() {
    let srv = TestServer::start(
        &cfg("modparam(\"sst\", \"min_se\", 2)"),
        siprouter::in_tree(),
    );
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let ok = call(
        &srv,
        &uac,
        &uas,
        "sst-2",
        &["Session-Expires: 3", "Supported: timer"],
        &[],
    );
    assert_eq!(
        ok.header("Session-Expires").as_deref(),
        Some("3;refresher=uac")
    );
    std::thread::sleep(Duration::from_millis(1500));
    // The caller refreshes with a re-INVITE asking for 4 s; the callee
    // agrees in its 2xx.
    uac.send(srv.addr(), &from_caller("INVITE", &ok, &uac, &uas, 11));
    let re = uas.recv_method("INVITE", T).expect("re-INVITE relayed");
    assert_eq!(
        re.header("Session-Expires").as_deref(),
        Some("4;refresher=uac")
    );
    uas.send(
        re.from,
        &answer(
            &re,
            200,
            "OK",
            "bobtag",
            &["Session-Expires: 4;refresher=uac"],
        ),
    );
    uac.recv_status(200, T).expect("200 to the re-INVITE");
    let list = srv.rpc("dlg.list", &[]).unwrap();
    assert_eq!(list[0]["lifetime"], 4, "{list}");
    // Past the first interval the call is still up...
    assert!(bye_to(&uas, Duration::from_millis(2500)).is_none());
    // ... and ends when the refreshed one runs out.
    assert!(
        bye_to(&uas, Duration::from_secs(5)).is_some(),
        "BYE to the callee"
    );
    assert!(
        bye_to(&uac, Duration::from_secs(2)).is_some(),
        "BYE to the caller"
    );
    assert_eq!(srv.wait_stat("sst:expired_sst", 1), Some(1));
}

#[test]
fn the_callees_interval_or_none_decides_the_lifetime() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let ok = call(&srv, &uac, &uas, "sst-3", &["Session-Expires: 1800"], &[]);
    assert_eq!(ok.header("Session-Expires"), None, "nobody does timers");
    let list = srv.rpc("dlg.list", &[]).unwrap();
    assert_eq!(list[0]["lifetime"], 43200, "{list}");
    // The callee answering with a timer makes it the lifetime.
    let ok = call(
        &srv,
        &uac,
        &uas,
        "sst-4",
        &["Session-Expires: 1800"],
        &["Session-Expires: 1700;refresher=uas", "Require: timer"],
    );
    assert_eq!(
        ok.header("Session-Expires").as_deref(),
        Some("1700;refresher=uas")
    );
    // Asked by the proxy of a caller that does not support timers: the
    // 2xx says so (as Kamailio's), but nobody would refresh, so the
    // dialog keeps its lifetime.
    let ok = call(&srv, &uac, &uas, "sst-5", &[], &[]);
    assert_eq!(
        ok.header("Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    let list = srv.rpc("dlg.list", &[]).unwrap();
    let lifetimes: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["call-id"].clone(), d["lifetime"].clone()))
        .collect();
    assert!(
        lifetimes.contains(&("sst-3".into(), 43200.into()))
            && lifetimes.contains(&("sst-4".into(), 1700.into()))
            && lifetimes.contains(&("sst-5".into(), 43200.into())),
        "{list}"
    );
}

#[test]
fn sst_check_min_answers_as_documented() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    for (n, headers, code) in [
        (1, vec!["Session-Expires: 60", "X-Check: 1"], 422),
        (
            2,
            vec!["Session-Expires: 100", "Min-SE: 30", "X-Check: 1"],
            422,
        ),
        (3, vec!["Session-Expires: 60", "X-Check: 0"], 499),
    ] {
        uac.send(
            srv.addr(),
            &invite(&uac, &uas, &format!("chk-{n}"), &headers),
        );
        let r = uac
            .recv_matching(T, |r| r.status().is_some_and(|c| c >= 200))
            .expect("a final reply");
        assert_eq!(r.status(), Some(code), "case {n}: {}", r.text());
        if code == 422 {
            assert_eq!(r.header("Min-SE").as_deref(), Some("90"));
            assert!(r
                .text()
                .starts_with("SIP/2.0 422 Session Timer Too Small\r\n"));
        }
    }
    // Long enough, or no Session-Expires: relayed.
    for (n, headers) in [
        (4, vec!["Session-Expires: 90", "X-Check: 1"]),
        (
            5,
            vec!["Session-Expires: 1800", "Min-SE: 120", "X-Check: 1"],
        ),
        (6, vec!["X-Check: 1"]),
    ] {
        uac.send(
            srv.addr(),
            &invite(&uac, &uas, &format!("chk-{n}"), &headers),
        );
        let inv = uas
            .recv_method("INVITE", T)
            .unwrap_or_else(|| panic!("case {n} relayed"));
        uas.send(inv.from, &answer(&inv, 486, "Busy", "b", &[]));
        uac.recv_status(486, T).expect("486 relayed");
    }
}

#[test]
fn configuration_errors_are_reported() {
    let no_flag = cfg("").replace("modparam(\"sst\", \"sst_flag\", 6)\n", "");
    let e = TestServer::try_start(&no_flag, siprouter::in_tree())
        .err()
        .expect("no sst_flag is refused");
    assert!(e.iter().any(|l| l.contains("no sst_flag set")), "{e:?}");
    let no_dialog = cfg("")
        .replace("loadmodule \"dialog\"\n", "")
        .replace("modparam(\"dialog\", \"dlg_flag\", 5)\n", "")
        .replace("modparam(\"dialog\", \"send_bye\", 1)\n", "");
    let e = TestServer::try_start(&no_dialog, siprouter::in_tree())
        .err()
        .expect("sst without dialog is refused");
    assert!(
        e.iter().any(|l| l.contains("sst needs the dialog module")),
        "{e:?}"
    );
}
