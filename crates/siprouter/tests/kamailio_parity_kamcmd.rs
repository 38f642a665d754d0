//! Differential test against Kamailio itself, for the control socket:
//! Kamailio's own command-line client, `kamcmd`, speaking BINRPC to
//! Kamailio 5.6 (its `ctl` module) and to siprouter (the same `ctl`
//! configuration), the same commands to both — htable, dispatcher,
//! statistics, sl, cfg, core's informational commands, an unknown
//! method — and everything `kamcmd`
//! prints compared line for line (structs, nested lists, null strings,
//! replies of several values, errors), but the process ids.
//!
//! Without Kamailio (and kamcmd) installed the test prints a notice and
//! passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;

const MODULES: &[&str] = &[
    "sl",
    "pv",
    "kex",
    "textops",
    "usrloc",
    "registrar",
    "htable",
    "dispatcher",
    "cfg_rpc",
    "ctl",
];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("htable", "htable", "t=>size=4;")
modparam("htable", "htable", "u=>size=2;autoexpire=60;")
modparam("dispatcher", "list_file", "__LIST__")
request_route {
    if (is_method("REGISTER")) { save("location"); exit; }
    if ($rU == "nobody") { sl_send_reply("404", "Not Here"); exit; }
    sl_send_reply("200", "OK");
}
"#;

/// The commands, as `kamcmd` arguments.
const COMMANDS: &[&[&str]] = &[
    &["htable.seti", "t", "a", "5"],
    &["htable.sets", "t", "b", "hello world"],
    &["htable.sets", "t", "c", "s:42"],
    &["htable.get", "t", "a"],
    &["htable.get", "t", "b"],
    &["htable.dump", "t"],
    &["htable.delete", "t", "a"],
    &["htable.dump", "t"],
    &["htable.listTables"],
    &["htable.stats"],
    &["htable.flush", "t"],
    &["htable.dump", "t"],
    &["htable.setxs", "u", "x", "abc", "20"],
    &["htable.setxi", "u", "y", "5", "20"],
    &["htable.setex", "u", "x", "30"],
    &["htable.setex", "t", "missing", "5"],
    &["htable.dump", "u"],
    &["dispatcher.list"],
    &["dispatcher.set_state", "ip", "1", "sip:127.0.0.1:5072"],
    &["dispatcher.list"],
    &["stats.get_statistics", "sl:"],
    &["stats.get_statistics", "200_replies", "404_replies"],
    &["sl.stats"],
    &["stats.fetchn", "sl:"],
    // (Kamailio 5.6 never resets sl's statistics; siprouter does: the
    // reset's own answer is compared, not what follows.)
    &["stats.reset_statistics", "sl:"],
    &["cfg.get", "core", "debug"],
    &["ul.dump"],
    &["ul.lookup", "location", "alice@example.com"],
    &["ul.lookup", "location", "nobody"],
    &["no.such_method"],
    &["core.sockets_list"],
    &["core.echo", "a", "b c"],
    &["core.printi", "1", "22"],
    &["core.prints", "x", "y"],
    &["core.udp4_raw_info"],
    &["system.methodSignature", "core.echo"],
];

/// What differs by nature between the two servers' lines: the record's
/// own id, times, the remaining seconds (a second may pass), the proxy's
/// port.
fn tidy(l: &str) -> String {
    let t = l.trim_start();
    for key in [
        "Ruid: ",
        "Last-Keepalive: ",
        "Last-Modified: ",
        "Expires: ",
        // (core.sockets_list)
        "port: ",
    ] {
        if t.starts_with(key) {
            return format!("{}{key}X", &l[..l.len() - t.len()]);
        }
    }
    if let Some(i) = l.find("Socket: udp:127.0.0.1:") {
        return format!("{}Socket: udp:127.0.0.1:PORT", &l[..i]);
    }
    l.to_string()
}

fn scenario(srv: SocketAddr, sock: &Path) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    // A registration for ul.dump and ul.lookup.
    let reg = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKkcreg\r\nFrom: <sip:alice@example.com>;tag=r1\r\nTo: <sip:alice@example.com>\r\nCall-ID: kc-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.1:5060>;expires=3600\r\nUser-Agent: kc-test\r\nContent-Length: 0\r\n\r\n",
        peer.addr()
    );
    peer.send(srv, &reg);
    let _ = peer.recv(std::time::Duration::from_secs(3));
    // Some replies for the statistics: two 200s, a 404.
    for (i, user) in ["a", "b", "nobody"].iter().enumerate() {
        let req = kamailio::options(&format!("kc-{i}"), "")
            .replace("__VIA__", &peer.addr().to_string())
            .replace("OPTIONS sip:x@", &format!("OPTIONS sip:{user}@"));
        peer.send(srv, &req);
        let _ = peer.recv(std::time::Duration::from_secs(3));
    }
    // Kamailio shows another process's counts up to a second late.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    COMMANDS
        .iter()
        .flat_map(|c| kamailio::kamcmd(sock, c, &tidy))
        .collect()
}

#[test]
fn kamcmd_answers_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    if !kamailio::kamcmd_available(&[]) {
        return;
    }
    let dir = kamailio::fresh_dir("kamcmd");
    let sock = dir.join("ctl.sock");
    let list = dir.join("dispatcher.list");
    std::fs::write(
        &list,
        "1 sip:127.0.0.1:5071 0 0 weight=50\n1 sip:127.0.0.1:5072\n2 sip:127.0.0.1:5073 0 5\n",
    )
    .unwrap();
    let cfg = (kamailio::head(MODULES) + BODY)
        .replace("__SOCK__", &sock.display().to_string())
        .replace("__LIST__", &list.display().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, &sock)
    });
    assert!(
        want.iter().any(|l| l.contains("Ok. Key set to new value.")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "kamcmd");
}
