//! Differential test against Kamailio itself, for the debugger's
//! `cfgtrace` (the stock configuration's WITH_DEBUG): one script run by
//! Kamailio 5.6 and by siprouter on the same requests, and the trace lines
//! each logs compared line for line — route type and block, line numbers
//! (Kamailio's for `if`, `switch` and `while` are where the statement
//! ends), action type numbers and names, for assignments, `if` and
//! `else`, `while`, `switch` with `break` and `default`, sub-routes with
//! `return`, function calls in conditions and as statements, `exit` and
//! `drop`. The file path and the process id are left out.
//!
//! Without Kamailio and its debugger module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::UdpPeer;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "xlog", "debugger"];

const BODY: &str = r#"
modparam("debugger", "cfgtrace", 1)
modparam("debugger", "log_level_name", "exec")
request_route {
    $var(n) = 0;
    $var(n) = $var(n) + 2;
    if ($var(n) == 2) {
        route(SUB);
    } else {
        xlog("L_INFO", "never\n");
    }
    while ($var(n) < 4) {
        $var(n) = $var(n) + 1;
    }
    switch ($rU) {
        case "a":
            $var(s) = "A";
            break;
        default:
            $var(s) = "D";
    }
    if (is_method("OPTIONS") && $var(s) == "D") {
        append_to_reply("X-N: $var(n)\r\n");
        sl_send_reply("200", "traced");
        exit;
    }
    switch ($var(n)) {
        case 4:
            $var(t) = 1;
            break;
        default:
            $var(t) = 0;
    }
    if ($rU == "a") { sl_send_reply("404", "a"); }
    else if ($rU == "b") { drop; }
    drop;
}

route[SUB] {
    if ($rU == "x") return 2;
    return;
}
"#;

fn captured() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(Default::default)
}

/// The trace lines (`exec: ...`) in `text`, without the process id and
/// with the file's path as `CFG`.
fn traces<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    lines
        .filter_map(|l| l.split_once("exec: ").map(|(_, t)| t))
        .map(|t| match (t.find("c=["), t.find("] l=")) {
            (Some(a), Some(b)) if b > a => format!("{}c=[CFG{}", &t[..a], &t[b..]),
            _ => t.to_string(),
        })
        .collect()
}

/// Sends the requests: an OPTIONS to `x` (the long way) and one to `a`.
fn requests(peer: &UdpPeer, to: std::net::SocketAddr) -> Vec<String> {
    let mut out = Vec::new();
    for user in ["x", "a"] {
        let text = format!(
            "OPTIONS sip:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKt{user}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:{user}@y>\r\nCall-ID: trace-{user}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            peer.addr()
        );
        peer.send(to, &text);
        let r = peer.recv(Duration::from_secs(3));
        out.push(format!(
            "{user}: {}",
            r.map(|r| r.text().lines().next().unwrap_or_default().to_string())
                .unwrap_or_else(|| "no answer".into())
        ));
    }
    std::thread::sleep(Duration::from_millis(300));
    out
}

#[test]
fn cfgtrace_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    sr_sdk::log::set_sink(Box::new(|lvl, target, args| {
        if let Ok(mut l) = captured().lock() {
            l.push(format!("{}: {args}", sr_sdk::log::head(lvl, target)));
        }
    }));
    let dir = kamailio::fresh_dir("debugger");
    let cfg = kamailio::head(MODULES) + BODY;
    let peer = UdpPeer::new();

    let kam = kamailio::Kamailio::start(&dir, &cfg);
    kamailio::wait_until_up(&peer, kam.addr, kamailio::PROBE, Some(&kam.log));
    std::thread::sleep(Duration::from_millis(300));
    let before = std::fs::read_to_string(&kam.log).unwrap_or_default().len();
    let mut want = requests(&peer, kam.addr);
    let log = std::fs::read_to_string(&kam.log).unwrap_or_default();
    want.extend(traces(log[before.min(log.len())..].lines()));
    drop(kam);

    let srv =
        sr_testkit::TestServer::start(&cfg.replace("__PORT__", "{PORT}"), siprouter::in_tree());
    kamailio::wait_until_up(&peer, srv.addr(), kamailio::PROBE, None);
    std::thread::sleep(Duration::from_millis(300));
    captured().lock().unwrap().clear();
    let mut got = requests(&peer, srv.addr());
    let lines = captured().lock().unwrap().clone();
    got.extend(traces(lines.iter().map(String::as_str)));
    assert!(
        want.iter().any(|l| l.contains("n=while")),
        "Kamailio traced: {want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "cfgtrace");
}
