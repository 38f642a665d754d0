//! Differential test against Kamailio itself, for the pseudo-variables
//! about the server and the raw message (`$sid`, `$Rn`, `$sas`, `$mbu`,
//! `$msgbuf`, `$version`), xlog's `$C`, rr's `$fti`/`$tti` and the static
//! branch (`$sbranch`, `sbranch_set_ruri`, `sbranch_append`,
//! `sbranch_reset`), kept by the worker from one message to the next —
//! the same requests to both servers and every value compared (ports
//! masked). `$version` is compared by shape: each server's name, its
//! version and the platform. Not compared: `$sbranch(ruid)` and
//! `$sbranch(location_ua)` (Kamailio 5.6 drops what is written to them)
//! and `$msgbuf(n)` as a whole (Kamailio 5.6 gives the byte and a NUL).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, TestServer, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "xlog", "rr"];

const BODY: &str = r#"request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(Route) != $null) { loose_route(); }
    append_hf("X-New: 1\r\n");
    $var(m) = $mbu;
    append_to_reply("X-A: sid=$sid Rn=$Rn sas=$sas mbu=$(var(m){s.len})-$(mb{s.len})|$(var(m){s.select,0,\n}) mb=$(msgbuf(0){s.substr,0,1})$(msgbuf(1){s.substr,0,1})|$msgbuf(100000) fti=$fti tti=$tti\r\n");
    append_to_reply("X-Ver: $version(num)|$version(full)\r\n");
    append_to_reply("X-Col: $C(xy)|$C(rb)|$C(Gp)|$C(xx)|$C(Wc)|$C(sw)\r\n");
    append_to_reply("X-P: prev=$sbranch(uri)|$sbranch(dst_uri)|$sbranch(flags)|$sbranch(count)\r\n");
    if ($hdr(X-Reset) != $null) { sbranch_reset(); }
    sbranch_append();
    $var(r1) = $rc;
    sbranch_set_ruri();
    $var(r2) = $rc;
    append_to_reply("X-Q: r=$var(r1)|$var(r2) c=$sbranch(count) ru=$ru du=$du\r\n");
    $du = "sip:old@9.9.9.9";
    $bf = 4;
    $sbranch(uri) = "sip:u@5.6.7.8";
    $sbranch(flags) = 3;
    $sbranch(path) = "<sip:p@1.1.1.1;lr>";
    $sbranch(q) = "300";
    append_to_reply("X-B: $sbranch(uri)|$sbranch(dst_uri)|$sbranch(path)|$sbranch(q)|$sbranch(flags)|$sbranch(send_socket)\r\n");
    sbranch_set_ruri();
    $var(r3) = $rc;
    append_to_reply("X-D: r=$var(r3) ru=$ru du=$du bf=$bf\r\n");
    $sbranch(q) = 500;
    $sbranch(dst_uri) = "sip:d@1.2.3.4";
    sbranch_append();
    sbranch_append();
    append_to_reply("X-E: c=$sbranch(count) $(branch(uri)[1])|$(branch(path)[1])|$(branch(q)[1])|$(branch(flags)[1])|$(branch(dst_uri)[1])|$br\r\n");
    $sbranch(uri) = $null;
    append_to_reply("X-F: $sbranch(uri)|$sbranch(flags)|$sbranch(path)|$sbranch(q)\r\n");
    $sbranch(uri) = $hdr(X-Keep);
    sl_send_reply("200", "ok");
}
"#;

/// (Call-ID, Route to this server with an `ftag`, extra headers).
const CASES: &[(&str, Option<&str>, &str)] = &[
    ("ps-1", None, "X-Keep: sip:k@2.2.2.2\r\n"),
    ("ps-2", Some("1"), "X-Keep: sip:j@3.3.3.3\r\n"),
    (
        "ps-3",
        Some("tt"),
        "X-Reset: 1\r\nX-Keep: sip:z@4.4.4.4\r\n",
    ),
    ("ps-4", None, ""),
];

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let me = peer.addr();
    let mut out = Vec::new();
    for (call, ftag, extra) in CASES {
        let route = ftag.map_or(String::new(), |t| {
            format!("Route: <sip:{srv};lr;ftag={t}>\r\n")
        });
        let req = format!(
            "OPTIONS sip:x@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call}\r\n{route}From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>;tag=tt\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-C: 1\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        peer.send(srv, &req);
        let r = peer
            .recv_matching(Duration::from_secs(3), |r| {
                r.status() == Some(200) && r.msg.msg().call_id().ok() == Some(call)
            })
            .unwrap_or_else(|| panic!("{call}: no answer"));
        for h in ["X-A", "X-Col", "X-P", "X-Q", "X-B", "X-D", "X-E", "X-F"] {
            let v = r
                .header(h)
                .unwrap_or_default()
                .replace(&srv.port().to_string(), "SRVPORT")
                .replace(&me.port().to_string(), "MYPORT");
            out.push(format!("{call} {h}: {v}"));
        }
        // Each server's own name and version, on this platform.
        let ver = r.header("X-Ver").unwrap_or_default();
        let (num, full) = ver.split_once('|').unwrap_or_default();
        let name = full.split(' ').next().unwrap_or_default();
        let shape = full.trim()
            == format!(
                "{name} {num} ({}/{})",
                std::env::consts::ARCH,
                std::env::consts::OS
            );
        out.push(format!(
            "{call} version: {}",
            if shape && !num.is_empty() {
                "name, number and platform".to_string()
            } else {
                ver
            }
        ));
    }
    out
}

fn cfg() -> String {
    kamailio::head(MODULES).replace(
        "listen=udp:127.0.0.1:__PORT__",
        "server_id=7\nlisten=udp:127.0.0.1:__PORT__ name \"sock1\"",
    ) + BODY
}

#[test]
fn server_and_static_branch_pseudo_variables_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("pv-server");
    let (want, got) = kamailio::run_scenario(&dir, &cfg(), siprouter::in_tree(), &|| {}, &scenario);
    assert!(
        want.iter().any(|l| l.contains("sid=7 Rn=sock1")),
        "{want:#?}"
    );
    assert!(
        got.iter().any(|l| l.contains("version: name, number")),
        "{got:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "pv-server");
}

#[test]
fn bad_names_are_refused_at_load() {
    for (pv, what) in [
        ("$C(zz)", "invalid $C(zz): invalid colour name"),
        ("$C(xS)", "invalid $C(xS)"),
        ("$sbranch(ua)", "unknown branch attribute 'ua'"),
        ("$msgbuf(x)", "invalid $msgbuf(x)"),
        ("$version(major)", "unknown version key 'major'"),
    ] {
        let text = cfg().replace("__PORT__", "{PORT}").replace("$C(xy)", pv);
        let e = TestServer::try_start(&text, siprouter::in_tree())
            .err()
            .expect("a bad name is refused");
        assert!(e.iter().any(|l| l.contains(what)), "{pv}: {e:?}");
    }
}
