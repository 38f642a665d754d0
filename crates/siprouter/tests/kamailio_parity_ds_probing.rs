//! Differential test against Kamailio itself, for dispatcher's probing:
//! the OPTIONS keepalives each destination gets (compared whole: From,
//! To, Request-URI, Max-Forwards, Content-Length), a destination that
//! stops answering marked trying then inactive, one that answers with a
//! code in `ds_ping_reply_codes`, one with another code, where
//! `ds_select_dst` then sends calls, and `dispatcher.list` through
//! `kamcmd` after each step.
//!
//! Without Kamailio (dispatcher, kamcmd) installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use sr_testkit::{Reply, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "pv", "textops", "dispatcher", "ctl"];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("tm", "fr_timer", 800)
modparam("dispatcher", "list_file", "__LIST__")
modparam("dispatcher", "ds_ping_interval", 1)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", 1)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("dispatcher", "ds_ping_reply_codes", "class=2;code=404")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (!ds_select_dst("1", "4")) {
        sl_send_reply("503", "No destination");
        exit;
    }
    append_to_reply("X-Du: $du\r\n");
    sl_send_reply("200", "to $du");
    exit;
}
"#;

/// `text` with the user agents' ports named.
fn named(peers: &[UdpPeer], text: &str) -> String {
    let mut t = text.to_string();
    for (i, u) in peers.iter().enumerate() {
        t = t.replace(&u.addr().port().to_string(), &format!("<u{i}>"));
    }
    t
}

/// The OPTIONS a destination got, with the Call-ID, tags and User-Agent
/// (each server's own) written alike.
fn ping(p: &Scene, peers: &[UdpPeer], r: &Reply) -> String {
    named(peers, &p.whole(r))
        .split(" / ")
        .map(|l| {
            if l.starts_with("Call-ID:") {
                "Call-ID: <id>".to_string()
            } else if l.starts_with("User-Agent:") {
                "User-Agent: <server's>".to_string()
            } else if let Some(i) = l.find(";tag=").filter(|_| l.starts_with("From:")) {
                format!("{};tag=<tag>", &l[..i])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

fn scenario(srv: SocketAddr, sock: &Path, peers: &[UdpPeer]) -> Vec<String> {
    // (What the other server's run left in the user agents' sockets.)
    for u in peers {
        while u.recv(Duration::from_millis(50)).is_some() {}
    }
    let p = &Scene::new(srv, 0);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let kam = |args: &[&str]| {
        kamailio::kamcmd(sock, args, &|l| {
            // (Latency figures are the run's own.)
            if l.trim_start().starts_with("AVG")
                || l.trim_start().starts_with("STD")
                || l.trim_start().starts_with("EST")
                || l.trim_start().starts_with("MAX")
                || l.trim_start().starts_with("TIMEOUT")
            {
                String::new()
            } else {
                named(peers, &p.names(l))
            }
        })
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    // Each destination's first ping; u0 answers 200, u1 404, u2 500, u3
    // nothing.
    let answers: [Option<(u16, &str)>; 4] = [
        Some((200, "OK")),
        Some((404, "Not Found")),
        Some((500, "Oops")),
        None,
    ];
    for (i, a) in answers.iter().enumerate() {
        let r = peers[i].recv_matching(Duration::from_secs(3), |r| r.status().is_none());
        out.push(format!(
            "u{i} pinged: {}",
            r.as_ref().map_or("nothing".into(), |r| ping(p, peers, r))
        ));
        if let (Some(r), Some((code, reason))) = (&r, a) {
            peers[i].send(r.from, &sr_testkit::answer(r, *code, reason, "u", &[]));
        }
    }
    // Let the answers (and u3's timeout) count.
    std::thread::sleep(Duration::from_millis(1500));
    out.extend(kam(&["dispatcher.list"]));
    // Calls go to the ones still up, in round robin.
    for n in 0..4 {
        let call = p.send("INVITE", &format!("c{n}"), "X-T: c\r\n");
        out.push(named(peers, &format!("call {n}: {}", p.final_of(&call))));
    }
    out
}

#[test]
fn dispatcher_probing_matches_kamailio() {
    if !kamailio::available(MODULES) || !kamailio::kamcmd_available(&[]) {
        return;
    }
    let dir = kamailio::fresh_dir("ds_probing");
    let sock = dir.join("ctl.sock");
    let list = dir.join("dispatcher.list");
    // (The user agents live across both runs: the list names them.)
    let peers: Vec<UdpPeer> = (0..4).map(|_| UdpPeer::new()).collect();
    let mut l = String::new();
    for u in &peers {
        l.push_str(&format!("1 sip:{} 0 0\n", u.addr()));
    }
    std::fs::write(&list, l).expect("list");
    let cfg = (kamailio::head(MODULES) + BODY)
        .replace("__SOCK__", &sock.display().to_string())
        .replace("__LIST__", &list.display().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, &sock, &peers)
    });
    assert!(
        want.iter().any(|l| l.contains("pinged: OPTIONS")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "ds_probing");
}
