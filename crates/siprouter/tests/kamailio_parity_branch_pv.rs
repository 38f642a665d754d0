//! Differential test against Kamailio itself, for writing `$branch(...)`:
//! a destination set of three entries changed field by field — the URI,
//! the destination, the path, q and flags (integers; a string refused),
//! the send socket, by index from the front and from the end, a field
//! cleared with `$null`, an entry dropped by setting its URI to `$null`,
//! an index past the end, the read-only `ruid` — then every field of what
//! is left read back, as Kamailio 5.6.3 and siprouter give it.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "corex"];

const BODY: &str = r#"request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    append_branch("sip:a@one.example");
    append_branch("sip:b@two.example", "0.5");
    append_branch("sip:c@three.example");
    $(branch(uri)[1]) = "sip:bb@two.example";
    $(branch(dst_uri)[0]) = "sip:10.0.0.1:5070";
    $(branch(dst_uri)[2]) = "sip:10.0.0.3";
    $(branch(path)[2]) = "<sip:p1.example;lr>";
    $(branch(q)[0]) = 700;
    $(branch(q)[1]) = "300";
    $(branch(flags)[-1]) = 5;
    $(branch(send_socket)[0]) = "udp:127.0.0.1:__PORT__";
    $(branch(dst_uri)[2]) = $null;
    $(branch(uri)[5]) = "sip:x@nowhere.example";
    $branch(ruid) = "mine";
    if ($hdr(X-T) == "drop") {
        $(branch(uri)[-3]) = $null;
    }
    append_to_reply("X-B: n=$branch(count) | $(branch(uri)[0]) $(branch(dst_uri)[0]) $(branch(q)[0]) $(branch(flags)[0]) $(branch(path)[0]) $(branch(send_socket)[0]) $(branch(ruid)[0]) | $(branch(uri)[1]) $(branch(dst_uri)[1]) $(branch(q)[1]) $(branch(flags)[1]) $(branch(path)[1]) | $(branch(uri)[2]) $(branch(dst_uri)[2]) $(branch(q)[2]) $(branch(flags)[2]) $(branch(path)[2])\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn branch_writes_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("branch_pv");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let peer = UdpPeer::new();
        kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
        ["keep", "drop"]
            .iter()
            .map(|t| {
                let call = format!("bpv-{t}");
                let req = kamailio::options(&call, &format!("X-T: {t}\r\n"))
                    .replace("__VIA__", &peer.addr().to_string());
                peer.send(srv, &req);
                let r = peer
                    .recv_matching(Duration::from_secs(3), |r| {
                        r.msg.msg().call_id().ok() == Some(call.as_str())
                    })
                    .unwrap_or_else(|| panic!("{call}: no answer"));
                // (The send socket names the server's own port.)
                let b = r
                    .header("X-B")
                    .unwrap_or_default()
                    .replace(&srv.port().to_string(), "PORT");
                format!("{t}: {b}")
            })
            .collect()
    });
    assert!(
        want.iter().any(|l| l.contains("sip:bb@two.example")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "branch_pv");
}
