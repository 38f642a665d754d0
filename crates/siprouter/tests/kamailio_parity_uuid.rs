//! Differential test against Kamailio itself, for uuid: `$uuid(g)`,
//! `$uuid(r)`, `$uuid(t)` and `$uuid(s)` read by Kamailio 5.6 (libuuid)
//! and by siprouter, compared by what can be compared of random values:
//! length, lower case, version, variant, whether each read is new, and
//! whether time-based ones keep their node and clock sequence.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "uuid"];

const BODY: &str = r#"
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    append_to_reply("X-U: $uuid(g) $uuid(r) $uuid(t) $uuid(s) $uuid(g) $uuid(t)\r\n");
    sl_send_reply("200", "OK");
}
"#;

fn shape(u: &str) -> String {
    let ok_chars = u
        .chars()
        .all(|c| c == '-' || matches!(c, '0'..='9' | 'a'..='f'));
    let dashes: Vec<usize> = u.match_indices('-').map(|(i, _)| i).collect();
    format!(
        "len={} lower-hex={ok_chars} dashes={dashes:?} version={} variant={}",
        u.len(),
        u.chars().nth(14).unwrap_or('?'),
        u.chars().nth(19).map_or("?", |c| if "89ab".contains(c) {
            "rfc4122"
        } else {
            "other"
        }),
    )
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let mut all: Vec<Vec<String>> = Vec::new();
    for n in 0..2 {
        let call = format!("uu{n}");
        peer.send(
            srv,
            &kamailio::options(&call, "X-T: 1\r\n").replace("__VIA__", &peer.addr().to_string()),
        );
        let r = peer.recv_matching(Duration::from_secs(3), |r| {
            r.status() == Some(200) && r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        let v: Vec<String> = r
            .and_then(|r| r.header("X-U"))
            .unwrap_or_default()
            .split(' ')
            .map(str::to_string)
            .collect();
        for (name, u) in ["g", "r", "t", "s", "g again", "t again"].iter().zip(&v) {
            out.push(format!("{name}: {}", shape(u)));
        }
        all.push(v);
    }
    let a = &all[0];
    let b = &all[1];
    out.push(format!("g reads differ: {}", a.first() != a.get(4)));
    out.push(format!("t reads differ: {}", a.get(2) != a.get(5)));
    out.push(format!(
        "t node and clock sequence kept: {}",
        a.get(2).map(|x| &x[19..]) == b.get(2).map(|x| &x[19..])
    ));
    out
}

#[test]
fn uuid_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("uuid");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("version=4")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "uuid");
}
