//! Differential test against Kamailio itself, for the exec module: one
//! configuration run by Kamailio 5.6 and by siprouter in turn, and
//! compared: the return codes of `exec_msg`, `exec_avp`, `exec_dset` and
//! `exec_cmd` (commands that succeed and fail), the AVPs `exec_avp` made
//! (named and numbered), the Request-URI and branch `exec_dset` made, the
//! request each command got on its standard input byte for byte, and the
//! `SIP_*` environment (`SIP_TID`, a transaction hash, left out).
//!
//! Without Kamailio and its exec module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::UdpPeer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "exec"];

const BODY: &str = r#"
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(a) = exec_msg("cat > __OUT__/msg.txt; env | grep ^SIP_ | grep -v ^SIP_TID | sort > __OUT__/env.txt");
    $var(b) = exec_msg("exit 3");
    $var(c) = exec_avp("echo one; echo 2; printf 'three'", "$avp(x);$avp(y)");
    $var(d) = exec_avp("echo solo; echo duo");
    $var(e) = exec_dset("echo sip:new@ex.test; echo sip:br1@ex.test; true");
    $var(f) = exec_cmd("echo cmd > __OUT__/cmd.txt");
    $var(g) = exec_avp("exit 1", "$avp(z)");
    $var(h) = exec_msg("false");
    append_to_reply("X-R: a=$var(a) b=$var(b) c=$var(c) d=$var(d) e=$var(e) f=$var(f) g=$var(g) h=$var(h) x=$avp(x) y=$avp(y) i1=$avp(i:1) i2=$avp(i:2) ru=$ru br=$br z=$avp(z)\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn files(out: &Path) -> Vec<String> {
    ["msg.txt", "env.txt", "cmd.txt"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(out.join(f)).unwrap_or_else(|_| "(none)".into());
            format!("{f}: {text:?}")
        })
        .collect()
}

fn scenario(srv: SocketAddr, out: &Path) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let text = format!(
        "OPTIONS sip:carol@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKex1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:carol@ex.test>\r\nCall-ID: exec-1\r\nCSeq: 1 OPTIONS\r\nX-T: run\r\nX-Two: one\r\nX-Two: two\r\nContent-Length: 0\r\n\r\n",
        a = peer.addr()
    );
    peer.send(srv, &text);
    let r = peer.recv(Duration::from_secs(5));
    let mut obs = vec![format!(
        "X-R: {}",
        r.and_then(|r| r.header("X-R"))
            .unwrap_or_else(|| "no answer".into())
    )];
    obs.extend(
        files(out)
            .into_iter()
            .map(|l| l.replace(&peer.addr().port().to_string(), "PORT")),
    );
    obs
}

#[test]
fn exec_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("exec");
    let out: PathBuf = dir.join("out");
    let cfg = (kamailio::head(MODULES) + BODY).replace("__OUT__", &out.display().to_string());
    let (want, got) = kamailio::run_scenario(
        &dir,
        &cfg,
        siprouter::in_tree(),
        &|| {
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).unwrap();
        },
        &|srv| scenario(srv, &out),
    );
    assert!(
        want[0].contains("a=1"),
        "Kamailio ran the commands: {want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "exec");
}
