//! Differential test against Kamailio itself, for the sst module: INVITEs
//! with and without `Session-Expires`, `Min-SE` and `Supported: timer`,
//! answered with and without a `Session-Expires` — what the callee gets
//! (the session headers of the INVITE) and what the caller gets (each
//! final reply's status and session headers) compared with Kamailio
//! 5.6.3's. Not compared: `sstCheckMin` (Kamailio 5.6's answers the
//! opposite of its documentation) and the dialog's lifetime (Kamailio 5.6
//! leaves it at the dialog module's default); `tests/sst.rs` covers both.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{answer, kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["tm", "sl", "rr", "pv", "textops", "dialog", "sst"];

const BODY: &str = r#"modparam("dialog", "dlg_flag", 5)
modparam("dialog", "timeout_avp", "$avp(dto)")
modparam("sst", "sst_flag", 6)
modparam("sst", "timeout_avp", "$avp(dto)")
modparam("sst", "min_se", 90)
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    if ($tt != $null) { loose_route(); t_relay(); exit; }
    if (is_method("INVITE")) { setflag(5); setflag(6); record_route(); }
    $du = "sip:__UAS__";
    t_relay();
}
"#;

/// (INVITE's session headers, the 2xx's).
const CASES: &[(&str, &str)] = &[
    ("Session-Expires: 1800\r\nSupported: timer\r\n", ""),
    ("Session-Expires: 1800\r\n", ""),
    ("", ""),
    ("Supported: timer\r\n", ""),
    ("Session-Expires: 60\r\n", ""),
    ("Session-Expires: 60\r\nMin-SE: 30\r\n", ""),
    ("Session-Expires: 60\r\nMin-SE: 120\r\n", ""),
    ("Session-Expires: 100\r\nMin-SE: 30\r\n", ""),
    ("x: 1800\r\nk: timer\r\n", ""),
    (
        "Session-Expires: 1800\r\nSupported: timer\r\n",
        "Session-Expires: 1200;refresher=uas\r\nRequire: timer\r\n",
    ),
    (
        "Session-Expires: 600;refresher=uac\r\n",
        "Session-Expires: 600\r\n",
    ),
    ("Session-Expires: 60\r\nSupported: timer\r\n", ""),
];

/// The session-timer header lines of a message, in order.
fn session_lines(text: &str) -> String {
    let names = [
        "session-expires",
        "x",
        "min-se",
        "supported",
        "k",
        "require",
    ];
    text.split("\r\n")
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| names.contains(&n.trim().to_ascii_lowercase().as_str()))
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

fn scenario(srv: SocketAddr, uas: &UdpPeer) -> Vec<String> {
    let uac = UdpPeer::new();
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let me = uac.addr();
    let mut out = Vec::new();
    for (n, (req_h, rpl_h)) in CASES.iter().enumerate() {
        let call = format!("sst-{n}");
        let inv = format!(
            "INVITE sip:b@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call}\r\nFrom: <sip:a@x>;tag=ft{n}\r\nTo: <sip:b@y>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{me}>\r\nMax-Forwards: 70\r\nX-C: 1\r\n{req_h}Content-Length: 0\r\n\r\n",
            uas.addr()
        );
        uac.send(srv, &inv);
        let got = uas
            .recv_method("INVITE", Duration::from_secs(3))
            .unwrap_or_else(|| panic!("{call}: no INVITE at the callee"));
        out.push(format!("{call} callee: {}", session_lines(&got.text())));
        let contact = format!("Contact: <sip:b@{}>", uas.addr());
        let mut extra: Vec<&str> = vec![&contact];
        extra.extend(rpl_h.split("\r\n").filter(|l| !l.is_empty()));
        uas.send(got.from, &answer(&got, 200, "OK", "tt", &extra));
        let mut finals = Vec::new();
        while let Some(r) = uac.recv_matching(Duration::from_millis(700), |r| {
            r.status().is_some_and(|c| c >= 200)
                && r.msg.msg().call_id().ok() == Some(call.as_str())
        }) {
            finals.push(format!(
                "{} [{}]",
                r.status().unwrap_or(0),
                session_lines(&r.text())
            ));
        }
        out.push(format!("{call} caller: {}", finals.join(", ")));
    }
    out
}

#[test]
fn session_timer_headers_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("sst");
    let uas = UdpPeer::new();
    let cfg = kamailio::head(MODULES) + &BODY.replace("__UAS__", &uas.addr().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, &uas)
    });
    assert!(
        want.iter()
            .any(|l| l.contains("Session-Expires: 90;refresher=uac")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "sst");
}
