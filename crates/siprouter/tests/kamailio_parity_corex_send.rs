//! Differential test against Kamailio itself, for corex's sending and
//! socket functions: `send_udp([host[:port]])` (the received message as
//! it came, no Via added), `sendx(uri, socket, data)`, `set_send_socket`,
//! `set_send_socket_name`, `set_recv_socket_name` and `is_socket_name`
//! with a named listen socket, `set_source_address`. What a user agent
//! gets and the script's answers are compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use sr_testkit::UdpPeer;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "corex"];

const BODY: &str = r#"request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-T);
    if ($var(t) == "su1") {
        send_udp("127.0.0.1:__UAS__");
        $var(r) = $rc;
    } else if ($var(t) == "su2") {
        $du = "sip:127.0.0.1:__UAS__";
        send_udp();
        $var(r) = $rc;
    } else if ($var(t) == "sx") {
        sendx("sip:127.0.0.1:__UAS__", "udp:127.0.0.1:__PORT__", "hello $rm $ci");
        $var(r) = $rc;
    } else if ($var(t) == "ss") {
        set_send_socket("udp:127.0.0.1:__PORT__");
        $var(r) = $rc;
        $du = "sip:127.0.0.1:__UAS__";
        forward();
    } else if ($var(t) == "sn") {
        set_send_socket_name("s1");
        $var(a) = $rc;
        set_send_socket_name("nope");
        $var(b) = $rc;
        is_socket_name("s1");
        $var(c) = $rc;
        is_socket_name("nope");
        $var(d) = $rc;
        set_recv_socket_name("s1");
        $var(e) = $rc;
        set_recv_socket_name("nope");
        $var(f) = $rc;
        $var(r) = "" + $var(a) + "/" + $var(b) + "/" + $var(c) + "/" + $var(d) + "/" + $var(e) + "/" + $var(f) + " " + $Ri + ":" + $Rp;
    } else if ($var(t) == "sa") {
        set_source_address("udp:10.0.0.9:5099");
        $var(r) = $rc;
        append_hf("X-S: $var(r) $si:$sp $pr\r\n");
        $du = "sip:127.0.0.1:__UAS__";
        forward();
        exit;
    }
    append_to_reply("X-R: $var(r)\r\n");
    sl_send_reply("200", "done");
}
"#;

/// The reply's X-R, and what user agent `uas` got (its first line and
/// whether it has a Via from the proxy, or its data).
fn case(p: &Scene, uas: &UdpPeer, what: &str) -> String {
    let call = p.send("OPTIONS", what, &format!("X-T: {what}\r\n"));
    let r = p.caller.recv_matching(Duration::from_secs(2), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str()) && r.status().is_some()
    });
    let xr = r
        .and_then(|r| r.header("X-R"))
        .unwrap_or_else(|| "-".into());
    let got = match uas.recv_raw(Duration::from_millis(500)) {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes).to_string();
            if text.starts_with("hello") {
                format!("data {:?}", p.names(&text.replace(&call, "<call>")))
            } else {
                let vias = text.lines().filter(|l| l.starts_with("Via:")).count();
                let xs = text
                    .lines()
                    .find(|l| l.starts_with("X-S:"))
                    .map(|l| format!(" [{l}]"))
                    .unwrap_or_default();
                format!(
                    "{} ({vias} Via){xs}",
                    text.lines().next().unwrap_or_default()
                )
            }
        }
        None => "nothing".into(),
    };
    format!("{what}: X-R {} | u0 got {got}", p.names(&xr))
}

fn scenario(srv: SocketAddr, uas_port: u16) -> Vec<String> {
    let p = Scene::new(srv, 0);
    let uas = UdpPeer::on(&format!("127.0.0.1:{uas_port}"));
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    ["su1", "su2", "sx", "ss", "sn", "sa"]
        .iter()
        .map(|w| case(&p, &uas, w).replace(&srv.port().to_string(), "<srv>"))
        .collect()
}

#[test]
fn corex_sending_and_sockets_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("corex-send");
    let uas_port = sr_testkit::free_port();
    let cfg = (kamailio::head(MODULES) + BODY)
        .replace(
            "listen=udp:127.0.0.1:__PORT__\n",
            "listen=udp:127.0.0.1:__PORT__ name \"s1\"\n",
        )
        .replace("__UAS__", &uas_port.to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, uas_port)
    });
    assert!(want.iter().any(|l| l.starts_with("sx: X-R 1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "corex sending");
}
