//! Differential test against Kamailio itself, for textops' `append_time()`
//! (a Date header on the reply the server sends) and
//! `append_time_to_request()`, and corex's `file_write`/`file_read`: the
//! replies compared whole, the Date's digits masked (the two runs are
//! seconds apart).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::UdpPeer;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "textopsx", "corex"];

fn body(file: &str) -> String {
    format!(
        r#"request_route {{
    if ($hdr(X-C) == $null) {{ sl_send_reply("200", "up"); exit; }}
    if ($hdr(X-C) == "time") {{
        append_to_reply("X-A: 1\r\n");
        append_time();
        $var(a) = $rc;
        append_to_reply("X-R: $var(a)\r\n");
        sl_send_reply("200", "time");
        exit;
    }}
    if ($hdr(X-C) == "treq") {{
        append_time_to_request();
        $var(a) = $rc;
        msg_apply_changes();
        append_to_reply("X-R: $var(a) date=$hdr(Date)\r\n");
        sl_send_reply("200", "treq");
        exit;
    }}
    if ($hdr(X-C) == "file") {{
        file_write("{file}", "Data is: $rU");
        $var(a) = $rc;
        file_read("{file}", "$var(d)");
        $var(b) = $rc;
        file_read("{file}.missing", "$var(e)");
        $var(c) = $rc;
        append_to_reply("X-R: $var(a) $var(b) $var(c) [$var(d)]\r\n");
        sl_send_reply("200", "file");
        exit;
    }}
}}
"#
    )
}

/// Digits of the Date header masked.
fn mask(l: &str) -> String {
    if l.starts_with("Date:") || l.starts_with("X-R: 1 date=") {
        l.chars()
            .map(|c| if c.is_ascii_digit() { 'N' } else { c })
            .collect()
    } else {
        l.to_string()
    }
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (i, what) in ["time", "treq", "file"].iter().enumerate() {
        let call = format!("tf-{i}");
        let req = format!(
            "MESSAGE sip:carol@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-C: {what}\r\nContent-Length: 0\r\n\r\n",
            peer.addr()
        );
        peer.send(srv, &req);
        let r = peer.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        out.push(kamailio::message_line(
            what,
            r.as_ref(),
            srv,
            true,
            &mut |l| mask(&l.replace(&peer.addr().port().to_string(), "UPORT")),
        ));
    }
    out
}

#[test]
fn dates_and_files_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("time-file");
    let file = dir.join("data.txt");
    let cfg = kamailio::head(MODULES) + &body(&file.display().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("Date: ")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "append_time / file_read");
}
