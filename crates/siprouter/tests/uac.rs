//! End-to-end: the uac module over real UDP — manual restore, no restore,
//! credentials from AVPs, a request from the script that gets no answer,
//! and configuration errors. (`kamailio_parity_uac.rs` compares the rest
//! with Kamailio.)

use sr_testkit::{answer, probe_until, req, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn cfg(extra: &str, route: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "rr"
loadmodule "pv"
loadmodule "siputils"
loadmodule "textops"
loadmodule "uac"
modparam("tm", "fr_timer", 1000)
{extra}
request_route {{
{route}
}}
"#
    )
}

#[test]
fn manual_mode_restores_only_when_asked() {
    let route = r#"
    if (has_totag()) {
        loose_route();
        if ($hdr(X-Restore) != $null) { $var(r) = uac_restore_from(); append_hf("X-R: $var(r)\r\n"); }
        t_relay();
        exit;
    }
    uac_replace_from("sip:bob@new.example.net");
    record_route();
    t_relay();
"#;
    let srv = TestServer::start(
        &cfg("modparam(\"uac\", \"restore_mode\", \"manual\")", route),
        siprouter::in_tree(),
    );
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let ruri = format!("sip:bob@{}", uas.addr());
    uac.send(
        srv.addr(),
        &req("INVITE", &ruri, uac.addr(), "m1", "man-1", 1, &[], ""),
    );
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    assert!(inv
        .header("From")
        .unwrap()
        .contains("sip:bob@new.example.net"));
    let rr = inv.header("Record-Route").unwrap();
    assert!(rr.contains(";vsf="), "{rr}");
    uas.send(inv.from, &answer(&inv, 200, "OK", "t1", &[]));
    let ok = uac.recv_status(200, T).expect("200 relayed");
    assert!(
        ok.header("From").unwrap().contains("sip:alice@example.com"),
        "the initial request's reply is restored: {}",
        ok.text()
    );
    // A BYE within the dialog: restored only with uac_restore_from().
    let bye = |branch: &str, cseq: u32, extra: &[&str]| {
        let mut hdrs = vec![format!("Route: {rr}")];
        hdrs.extend(extra.iter().map(|s| s.to_string()));
        let hdrs: Vec<&str> = hdrs.iter().map(String::as_str).collect();
        req("BYE", &ruri, uac.addr(), branch, "man-1", cseq, &hdrs, "")
            .replace(&format!("To: <{ruri}>"), &format!("To: <{ruri}>;tag=t1"))
    };
    uac.send(srv.addr(), &bye("m2", 2, &[]));
    let b = uas.recv_method("BYE", T).expect("BYE relayed");
    assert!(b.header("From").unwrap().contains("sip:alice@example.com"));
    uac.send(srv.addr(), &bye("m3", 3, &["X-Restore: 1"]));
    let b = uas.recv_method("BYE", T).expect("BYE relayed");
    assert_eq!(b.header("X-R").as_deref(), Some("1"));
    assert!(
        b.header("From")
            .unwrap()
            .contains("sip:bob@new.example.net"),
        "{}",
        b.text()
    );
}

#[test]
fn mode_none_rewrites_only_and_avps_give_credentials() {
    let extra = r#"
modparam("uac", "restore_mode", "none")
modparam("uac", "auth_realm_avp", "$avp(ar)")
modparam("uac", "auth_username_avp", "$avp(au)")
modparam("uac", "auth_password_avp", "$avp(ap)")
failure_route[AUTH] {
    $avp(ar) = "";
    $avp(au) = "carol";
    $avp(ap) = "pw3";
    if (uac_auth()) { t_relay(); }
}
"#;
    let route = r#"
    uac_replace_to("Tom", "sip:tom@to.test");
    record_route();
    t_on_failure("AUTH");
    t_relay();
"#;
    let srv = TestServer::start(&cfg(extra, route), siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let ruri = format!("sip:bob@{}", uas.addr());
    uac.send(
        srv.addr(),
        &req("INVITE", &ruri, uac.addr(), "n1", "none-1", 1, &[], ""),
    );
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    assert_eq!(
        inv.header("To").as_deref(),
        Some("Tom <sip:tom@to.test>"),
        "{}",
        inv.text()
    );
    assert!(!inv.header("Record-Route").unwrap().contains("vst="));
    let ch = "WWW-Authenticate: Digest realm=\"any.test\", nonce=\"n1\"";
    uas.send(inv.from, &answer(&inv, 401, "Unauthorized", "t1", &[ch]));
    let again = uas
        .recv_method("INVITE", T)
        .expect("INVITE with credentials");
    let auth = again.header("Authorization").expect("Authorization");
    assert!(
        auth.starts_with("Digest username=\"carol\", realm=\"any.test\", nonce=\"n1\""),
        "an empty realm AVP takes the challenge's realm: {auth}"
    );
    uas.send(again.from, &answer(&again, 200, "OK", "t2", &[]));
    let ok = uac.recv_status(200, T).expect("200 relayed");
    assert!(
        ok.header("To").unwrap().contains("sip:tom@to.test"),
        "no restore in mode none: {}",
        ok.text()
    );
}

#[test]
fn a_request_without_answer_reports_a_timeout() {
    let extra = r#"
modparam("pv", "shvset", "ev=s:-")
event_route[uac:reply] { $shv(ev) = "" + $uac_req(evcode) + "/" + $uac_req(evtype); }
"#;
    let route = r#"
    if ($hdr(X-Send) != $null) {
        $uac_req(all) = $null;
        $uac_req(method) = "OPTIONS";
        $uac_req(ruri) = $hdr(X-Send);
        $uac_req(evroute) = 1;
        uac_req_send();
    }
    append_to_reply("X-Ev: $shv(ev)\r\n");
    sl_send_reply("200", "OK");
"#;
    let srv = TestServer::start(&cfg(extra, route), siprouter::in_tree());
    let (uac, silent) = (UdpPeer::new(), UdpPeer::new());
    let send = format!("X-Send: sip:x@{}", silent.addr());
    uac.send(
        srv.addr(),
        &req(
            "OPTIONS",
            "sip:p@x",
            uac.addr(),
            "s1",
            "send-1",
            1,
            &[&send],
            "",
        ),
    );
    uac.recv_status(200, T).expect("answered");
    let first = silent.recv_method("OPTIONS", T).expect("the request");
    assert!(first.header("Via").unwrap().contains("branch=z9hG4bKuac"));
    let again = silent.recv_method("OPTIONS", T).expect("retransmitted");
    assert_eq!(first.text(), again.text());
    let ev = probe_until(&uac, srv.addr(), "X-Ev", 40, |r| {
        r.header("X-Ev").as_deref() != Some("-")
    })
    .and_then(|r| r.header("X-Ev"))
    .unwrap_or_default();
    assert_eq!(ev, "408/2", "no answer: the event route saw a timeout");
}

#[test]
fn configuration_errors() {
    for (extra, want) in [
        (
            "modparam(\"uac\", \"credential\", \"nocolons\")",
            "bad credential",
        ),
        (
            "modparam(\"uac\", \"restore_mode\", \"sometimes\")",
            "restore_mode",
        ),
        (
            "modparam(\"uac\", \"reg_db_url\", \"sqlite:///tmp/x.db\")",
            "reg_contact_addr is needed",
        ),
        (
            "modparam(\"uac\", \"auth_realm_avp\", \"$avp(r)\")",
            "partial definition",
        ),
    ] {
        let errs = TestServer::try_start(
            &cfg(extra, "sl_send_reply(\"200\", \"OK\");"),
            siprouter::in_tree(),
        )
        .err()
        .unwrap_or_else(|| panic!("{extra} refused"));
        assert!(errs.iter().any(|e| e.contains(want)), "{extra}: {errs:?}");
    }
}

#[test]
fn branch_route_replace_and_calls_that_combine() {
    let extra = r#"
modparam("rr", "append_fromtag", 1)
branch_route[B] {
    uac_replace_to("sip:carol@branch.test");
}
"#;
    let route = r#"
    uac_replace_from("Dave", "");
    $var(r) = uac_replace_from("sip:new@x.test");
    append_hf("X-R: $var(r)\r\n");
    record_route();
    t_on_branch("B");
    t_relay();
"#;
    let srv = TestServer::start(&cfg(extra, route), siprouter::in_tree());
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    let ruri = format!("sip:bob@{}", uas.addr());
    uac.send(
        srv.addr(),
        &req("INVITE", &ruri, uac.addr(), "b1", "br-1", 1, &[], ""),
    );
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    assert_eq!(inv.header("X-R").as_deref(), Some("1"));
    assert_eq!(
        inv.header("From").as_deref(),
        Some("Dave <sip:new@x.test>;tag=from-br-1"),
        "a display-only call and a URI call combine: {}",
        inv.text()
    );
    assert_eq!(inv.header("To").as_deref(), Some("<sip:carol@branch.test>"));
    let rr = inv.header("Record-Route").unwrap();
    assert!(rr.contains(";vsf=") && rr.contains(";vst="), "{rr}");
    uas.send(inv.from, &answer(&inv, 200, "OK", "t1", &[]));
    let ok = uac.recv_status(200, T).expect("200 relayed");
    assert_eq!(
        ok.header("To").as_deref(),
        Some(format!("<{ruri}>;tag=t1").as_str()),
        "replaced in branch_route, restored in the reply: {}",
        ok.text()
    );
    assert_eq!(
        ok.header("From").as_deref(),
        Some("<sip:alice@example.com>;tag=from-br-1")
    );
}

#[test]
fn remote_registrations_from_the_uacreg_table() {
    use sr_sdk::db::{DbConn, DbValue};
    let dir = std::env::temp_dir().join(format!("sr-uacreg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("r.db").display());
    let (good, bad) = (UdpPeer::new(), UdpPeer::new());
    {
        let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
        for (uuid, user, proxy, pw) in [
            ("acc1", "lu1", good.addr(), "pw1"),
            ("acc2", "lu2", bad.addr(), "pw2"),
        ] {
            let s = DbValue::str;
            c.insert(
                "uacreg",
                &[
                    ("l_uuid", s(uuid)),
                    ("l_username", s(user)),
                    ("l_domain", s("ld.test")),
                    ("r_username", s(&format!("r{user}"))),
                    ("r_domain", s("reg.test")),
                    ("realm", s("reg.test")),
                    ("auth_username", s(&format!("a{user}"))),
                    ("auth_password", s(pw)),
                    ("auth_proxy", s(&format!("sip:{proxy}"))),
                    ("expires", DbValue::Int(60)),
                ],
            )
            .unwrap();
        }
    }
    let extra = format!(
        r#"
modparam("uac", "reg_db_url", "{url}")
modparam("uac", "reg_contact_addr", "127.0.0.1:5099")
modparam("uac", "reg_timer_interval", 5)
"#
    );
    let route = r#"
    $var(s1) = uac_reg_status("acc1");
    $var(s2) = uac_reg_status("acc2");
    $var(s3) = uac_reg_status("nobody");
    uac_reg_lookup("acc1", "$var(l)");
    append_to_reply("X-Status: $var(s1) $var(s2) $var(s3)\r\nX-Lookup: $var(l)\r\n");
    sl_send_reply("200", "OK");
"#;
    let config = cfg(&extra, route).replace(
        "loadmodule \"uac\"",
        "loadmodule \"db_sqlite\"\nloadmodule \"uac\"",
    );
    let srv = TestServer::start(&config, siprouter::in_tree());
    // The registrar challenges, then accepts.
    let r1 = good.recv_method("REGISTER", T).expect("a REGISTER");
    let m = r1.msg.msg();
    assert_eq!(m.request_uri().unwrap().raw, "sip:reg.test");
    assert_eq!(r1.header("To").as_deref(), Some("<sip:rlu1@reg.test>"));
    assert_eq!(
        r1.header("Contact").as_deref(),
        Some("<sip:acc1@127.0.0.1:5099>")
    );
    assert_eq!(r1.header("Expires").as_deref(), Some("60"));
    let cseq = m.cseq().unwrap().seq;
    let ch = "WWW-Authenticate: Digest realm=\"reg.test\", nonce=\"regnonce\", qop=\"auth\"";
    good.send(r1.from, &answer(&r1, 401, "Unauthorized", "r1", &[ch]));
    let r2 = good.recv_method("REGISTER", T).expect("with credentials");
    let m2 = r2.msg.msg();
    assert_eq!(m2.cseq().unwrap().seq, cseq + 1);
    assert_eq!(m2.call_id().unwrap(), m.call_id().unwrap());
    let auth = r2.header("Authorization").expect("Authorization");
    assert!(
        auth.starts_with("Digest username=\"alu1\", realm=\"reg.test\", nonce=\"regnonce\", uri=\"sip:reg.test\""),
        "{auth}"
    );
    good.send(
        r2.from,
        &answer(
            &r2,
            200,
            "OK",
            "r2",
            &["Contact: <sip:acc1@127.0.0.1:5099>;expires=60"],
        ),
    );
    // The other one is refused: without reg_retry_interval it is disabled.
    let b = bad.recv_method("REGISTER", T).expect("a REGISTER");
    bad.send(b.from, &answer(&b, 403, "Forbidden", "b1", &[]));
    let uac = UdpPeer::new();
    let r = probe_until(&uac, srv.addr(), "X-Status", 40, |r| {
        r.header("X-Status").as_deref() == Some("1 -3 -1")
    })
    .expect("probes answered");
    assert_eq!(r.header("X-Lookup").as_deref(), Some("sip:lu1@ld.test"));
    let status = r.header("X-Status").unwrap_or_default();
    assert_eq!(status, "1 -3 -1", "registered, disabled, unknown");
    let dump = srv.rpc("uac.reg_dump", &[]).unwrap();
    let acc1 = dump
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["l_uuid"] == "acc1")
        .unwrap();
    assert_eq!(acc1["flags"], 20, "loaded and registered: {acc1}");
    assert_eq!(srv.stat("uac:regtotal"), Some(2));
    assert_eq!(srv.stat("uac:regdisabled"), Some(1));
    assert_eq!(
        srv.rpc("uac.reg_enable", &["l_domain".into(), "x".into()])
            .unwrap_err()
            .code,
        400
    );
    srv.rpc("uac.reg_enable", &["l_uuid".into(), "acc2".into()])
        .expect("enabled");
    assert_eq!(srv.stat("uac:regdisabled"), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
