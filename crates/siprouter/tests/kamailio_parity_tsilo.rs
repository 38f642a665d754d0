//! Differential test against Kamailio itself, for the tsilo module: a
//! call to a user with no registered device waits (`t_newtran` +
//! `ts_store`), the user registers (`save` + `ts_append`) and the device
//! gets the INVITE, answers, and the caller gets the 200; then the RPC
//! commands through Kamailio's `kamcmd` (`ts.lookup` found, not found and
//! without a parameter, `ts.dump` and `ts.dump brief`) and the
//! statistics, and `ts_store`/`ts_append_to` without a transaction. The
//! transaction ids are masked (each server numbers its own). Not
//! compared: `ts_append` for a URI with nothing kept (Kamailio 5.6.3
//! returns -1 where its documentation, later versions and siprouter
//! return -2).
//!
//! Without Kamailio (its tsilo, usrloc, registrar modules and kamcmd)
//! installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{answer, kamailio, req, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl",
    "tm",
    "pv",
    "textops",
    "ctl",
    "kex",
    "usrloc",
    "registrar",
    "tsilo",
];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
request_route {
    if (is_method("REGISTER")) {
        save("location");
        ts_append("location", "$tu");
        exit;
    }
    if (is_method("ACK|CANCEL")) { t_relay(); exit; }
    if ($hdr(X-T) != $null) {
        ts_store(); $var(a) = $rc;
        ts_append_to("1", "2", "location"); $var(b) = $rc;
        append_to_reply("X-R: $var(a) $var(b)\r\n");
        sl_send_reply("200", "ok"); exit;
    }
    if (is_method("OPTIONS")) { sl_send_reply("200", "up"); exit; }
    t_newtran();
    ts_store();
    if (!lookup("location")) { exit; }
    t_relay();
}
"#;

const T: Duration = Duration::from_secs(3);

/// Transaction ids and ports, which differ by nature.
fn tidy(l: &str) -> String {
    let t = l.trim();
    for k in ["Tindex: ", "Tlabel: "] {
        if t.starts_with(k) {
            return l.replace(t, &format!("{k}(id)"));
        }
    }
    l.to_string()
}

fn scenario(srv: SocketAddr, sock: &Path) -> Vec<String> {
    let uac = UdpPeer::new();
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let dev = UdpPeer::new();
    let mut out = Vec::new();
    let probe =
        kamailio::options("ts-probe", "X-T: 1\r\n").replace("__VIA__", &uac.addr().to_string());
    uac.send(srv, &probe);
    let r = uac
        .recv_matching(T, |r| r.msg.msg().call_id().ok() == Some("ts-probe"))
        .expect("probe answered");
    out.push(format!(
        "no transaction: {}",
        r.header("X-R").unwrap_or_default()
    ));
    uac.send(
        srv,
        &req(
            "INVITE",
            "sip:bob@example.com",
            uac.addr(),
            "ts1",
            "ts-1",
            1,
            &["Contact: <sip:alice@127.0.0.1>"],
            "",
        ),
    );
    out.push(format!(
        "waiting: {}",
        uac.recv(Duration::from_millis(500))
            .map_or("nothing".into(), |r| r
                .text()
                .lines()
                .next()
                .unwrap_or("")
                .to_string())
    ));
    out.extend(kamailio::kamcmd(sock, &["ts.lookup", "bob"], &tidy));
    let contact = format!("Contact: <sip:bob@{}>;expires=300", dev.addr());
    dev.send(
        srv,
        &req(
            "REGISTER",
            "sip:bob@example.com",
            dev.addr(),
            "tsr1",
            "ts-r1",
            1,
            &[&contact],
            "",
        ),
    );
    let reg = dev.recv_status(200, T).expect("registered");
    out.push(format!("REGISTER: {}", reg.status().unwrap_or(0)));
    let inv = dev
        .recv_method("INVITE", T)
        .expect("the waiting call reaches the device");
    out.push(format!(
        "device: {}",
        inv.text()
            .lines()
            .next()
            .unwrap_or("")
            .replace(&dev.addr().port().to_string(), "PORT")
    ));
    for args in [
        &["ts.lookup", "bob"][..],
        &["ts.lookup", "nobody"],
        &["ts.lookup"],
        &["ts.dump"],
        &["ts.dump", "brief"],
    ] {
        out.extend(kamailio::kamcmd(sock, args, &tidy));
    }
    let mut stats = kamailio::kamcmd(sock, &["stats.get_statistics", "tsilo:"], &tidy);
    stats[1..].sort();
    out.extend(stats);
    dev.send(inv.from, &answer(&inv, 200, "OK", "dev", &[]));
    let ok = uac.recv_status(200, T).expect("the caller gets the 200");
    out.push(format!(
        "caller: {} {}",
        ok.status().unwrap_or(0),
        ok.header("To").unwrap_or_default()
    ));
    out
}

#[test]
fn tsilo_matches_kamailio() {
    if !kamailio::available(MODULES) || !kamailio::kamcmd_available(&[]) {
        return;
    }
    let dir = kamailio::fresh_dir("tsilo");
    let sock = dir.join("ctl.sock");
    let cfg = (kamailio::head(MODULES) + BODY).replace("__SOCK__", &sock.display().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, &sock)
    });
    assert!(
        want.iter()
            .any(|l| l.starts_with("device: INVITE sip:bob@127.0.0.1:PORT")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "tsilo");
}
