//! Differential test against Kamailio itself, for the keepalive module:
//! three destinations (one from a `destination` without a scheme, one
//! added from the script) answering 200, 404 and later 503, one removed
//! — `ka_is_alive` at each step, the event routes run so far (`$ru`,
//! sorted: two destinations answering at once may be told in either
//! order), and the
//! OPTIONS a destination gets (tags, Call-ID, Via and User-Agent masked)
//! compared. Then the RPC commands through Kamailio's own `kamcmd`
//! (`keepalive.list/get/add/del/flush`), times shown only as set or not
//! (and `last up`/`last down` not at all: Kamailio 5.6.3 swaps them).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MODULES: &[&str] = &["tm", "sl", "pv", "textops", "ctl", "keepalive"];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("tm", "fr_timer", 1000)
modparam("pv", "shvset", "ev=s:")
modparam("keepalive", "ping_interval", 1)
modparam("keepalive", "destination", "sip:127.0.0.1:__A__")
modparam("keepalive", "destination", "127.0.0.1:__B__")
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    $var(r) = 0;
    if ($hdr(X-Add) != $null) { ka_add_destination("$hdr(X-Add)", "me"); $var(r) = $rc; }
    if ($hdr(X-Del) != $null) { ka_del_destination("$hdr(X-Del)", "me"); $var(r) = $rc; }
    ka_is_alive("127.0.0.1:__A__"); $var(a) = $rc;
    ka_is_alive("127.0.0.1:__B__"); $var(b) = $rc;
    ka_is_alive("127.0.0.1:__C__"); $var(c) = $rc;
    append_to_reply("X-A: r=$var(r) alive=$var(a)|$var(b)|$var(c) ev=$shv(ev)\r\n");
    sl_send_reply("200", "ok");
}
event_route[keepalive:dst-up] { $shv(ev) = $shv(ev) + "up:" + $ru + ";"; }
event_route[keepalive:dst-down] { $shv(ev) = $shv(ev) + "down:" + $ru + ";"; }
"#;

/// A destination: answers every OPTIONS with its code; keeps the first.
struct Peer {
    sock: UdpSocket,
    code: AtomicU16,
    first: Mutex<Option<String>>,
}

fn serve(peers: Arc<Vec<Peer>>, stop: Arc<AtomicBool>) {
    for p in peers.iter() {
        let _ = p.sock.set_read_timeout(Some(Duration::from_millis(20)));
    }
    while !stop.load(Ordering::Relaxed) {
        for p in peers.iter() {
            let mut buf = [0u8; 4096];
            let Ok((n, from)) = p.sock.recv_from(&mut buf) else {
                continue;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let lines: Vec<&str> = text.split("\r\n").collect();
            let keep: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| {
                    ["Via:", "From:", "Call-ID:", "CSeq:"]
                        .iter()
                        .any(|h| l.starts_with(h))
                })
                .collect();
            let to = lines
                .iter()
                .find(|l| l.starts_with("To:"))
                .copied()
                .unwrap_or("To: <sip:x>");
            let answer = format!(
                "SIP/2.0 {} X\r\n{}\r\n{to};tag=x\r\nContent-Length: 0\r\n\r\n",
                p.code.load(Ordering::Relaxed),
                keep.join("\r\n")
            );
            let _ = p.sock.send_to(answer.as_bytes(), from);
            let mut first = p.first.lock().unwrap();
            if first.is_none() {
                *first = Some(text);
            }
        }
    }
}

fn masked(text: &str, ports: &[u16]) -> String {
    let mut out: Vec<String> = text
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with("Via:") && !l.starts_with("User-Agent:"))
        .map(|l| {
            if let Some(v) = l.strip_prefix("From: ") {
                format!("From: {}", v.split(";tag=").next().unwrap_or(""))
            } else if l.starts_with("Call-ID:") {
                "Call-ID: ...".into()
            } else {
                l.to_string()
            }
        })
        .collect();
    for l in out.iter_mut() {
        for (i, p) in ports.iter().enumerate() {
            *l = l.replace(&format!(":{p}"), &format!(":P{i}"));
        }
    }
    out.join(" | ")
}

/// A `kamcmd` line with the ports named and the times shown as set or
/// not (`last up`/`last down` dropped: Kamailio 5.6.3 swaps them).
fn tidy(line: &str, ports: &[u16]) -> String {
    let mut l = line.to_string();
    for (i, p) in ports.iter().enumerate() {
        l = l.replace(&format!(":{p}"), &format!(":P{i}"));
    }
    match l.trim().split_once(": ") {
        Some(("last up" | "last down", _)) => "\t(time)".into(),
        Some(("last checked", t)) if t.ends_with(" 1970") => "\tlast checked: never".into(),
        Some(("last checked", _)) => "\tlast checked: set".into(),
        _ => l,
    }
}

/// The RPC commands, while the destinations answer.
fn rpc_steps(sock: &Path, ports: &[u16], mut ask: impl FnMut(&str) -> String) -> Vec<String> {
    let kam = |args: &[&str]| kamailio::kamcmd(sock, args, &|l| tidy(l, ports));
    let a = format!("sip:127.0.0.1:{}", ports[0]);
    let c = format!("sip:127.0.0.1:{}", ports[2]);
    let mut out = kam(&["keepalive.list"]);
    for args in [
        vec!["keepalive.get", &a, "_params"],
        vec!["keepalive.get", &a, "me"],
        vec!["keepalive.get", &a],
        vec!["keepalive.add"],
        vec!["keepalive.add", &c, "rpc"],
    ] {
        out.extend(kam(&args));
    }
    std::thread::sleep(Duration::from_millis(2500));
    out.push(ask(""));
    for args in [
        vec!["keepalive.list"],
        vec!["keepalive.get", &c, "rpc"],
        vec!["keepalive.del", &a, "rpc"],
        vec!["keepalive.del", &c, "rpc"],
        vec!["keepalive.del", &c, "rpc"],
        vec!["keepalive.get", &c, "rpc"],
        vec!["keepalive.flush"],
        vec!["keepalive.list"],
    ] {
        out.extend(kam(&args));
    }
    out.push(ask(""));
    out
}

fn scenario(srv: SocketAddr, sock: &Path, peers: &Arc<Vec<Peer>>) -> Vec<String> {
    let udp = UdpPeer::new();
    kamailio::wait_until_up(&udp, srv, kamailio::PROBE, None);
    let ports: Vec<u16> = peers
        .iter()
        .map(|p| p.sock.local_addr().unwrap().port())
        .collect();
    for (p, code) in peers.iter().zip([404u16, 200, 200]) {
        p.code.store(code, Ordering::Relaxed);
        // What the other server sent is no part of this run.
        let _ = p.sock.set_read_timeout(Some(Duration::from_millis(5)));
        let mut buf = [0u8; 4096];
        while p.sock.recv_from(&mut buf).is_ok() {}
        *p.first.lock().unwrap() = None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (pp, st) = (peers.clone(), stop.clone());
    let server = std::thread::spawn(move || serve(pp, st));
    let mut out = Vec::new();
    let mut n = 0;
    let mut ask = |extra: &str| {
        n += 1;
        let call = format!("ka-{n}");
        udp.send(
            srv,
            &format!(
                "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-C: 1\r\n{extra}Content-Length: 0\r\n\r\n",
                udp.addr()
            ),
        );
        let r = udp
            .recv_matching(Duration::from_secs(3), |r| {
                r.msg.msg().call_id().ok() == Some(call.as_str())
            })
            .expect("answered");
        let v = masked(&r.header("X-A").unwrap_or_default(), &ports);
        // The events, in a fixed order: two destinations answering at
        // once may be told in either order.
        let (head, ev) = v.split_once(" ev=").unwrap_or((&v, ""));
        let mut events: Vec<&str> = ev.split(';').filter(|e| !e.is_empty()).collect();
        events.sort_unstable();
        format!("{call}: {head} ev={}", events.join(";"))
    };
    std::thread::sleep(Duration::from_millis(2500));
    out.push(ask(""));
    let add = format!("X-Add: sip:127.0.0.1:{}\r\n", ports[2]);
    out.push(ask(&add));
    out.push(ask(&add));
    std::thread::sleep(Duration::from_millis(2500));
    out.push(ask(""));
    peers[1].code.store(503, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(2500));
    out.push(ask(""));
    out.push(ask(&format!("X-Del: sip:127.0.0.1:{}\r\n", ports[2])));
    out.push(ask("X-Del: sip:127.0.0.1:9\r\n"));
    out.extend(rpc_steps(sock, &ports, ask));
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    let first = peers[1].first.lock().unwrap().clone().unwrap_or_default();
    out.push(format!("an OPTIONS: {}", masked(&first, &ports)));
    out
}

#[test]
fn keepalive_matches_kamailio() {
    if !kamailio::available(MODULES) || !kamailio::kamcmd_available(&[]) {
        return;
    }
    let dir = kamailio::fresh_dir("keepalive");
    let sock = dir.join("ctl.sock");
    let peers: Arc<Vec<Peer>> = Arc::new(
        (0..3)
            .map(|_| Peer {
                sock: UdpSocket::bind("127.0.0.1:0").unwrap(),
                code: AtomicU16::new(200),
                first: Mutex::new(None),
            })
            .collect(),
    );
    let port = |i: usize| peers[i].sock.local_addr().unwrap().port().to_string();
    let body = BODY
        .replace("__A__", &port(0))
        .replace("__B__", &port(1))
        .replace("__C__", &port(2))
        .replace("__SOCK__", &sock.display().to_string());
    let cfg = kamailio::head(MODULES) + &body;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, &sock, &peers)
    });
    assert!(
        want.iter().any(|l| l.contains("up:sip:127.0.0.1:P1")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "keepalive");
}
