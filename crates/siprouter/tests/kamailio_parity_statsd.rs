//! Differential test against Kamailio itself, for the statsd module: a
//! UDP socket of the test's own as the statsd server, the same requests
//! to Kamailio 5.6.3 and to siprouter, each calling the module's
//! functions (counters up and down, a gauge with a sign, a histogram, sets
//! with decimal, hex, octal and bad values, a timer started and
//! stopped), and every datagram the server gets compared with the
//! functions' return codes (the timer's milliseconds set aside).
//!
//! Without Kamailio and its statsd module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "statsd"];

const BODY: &str = r#"modparam("statsd", "ip", "127.0.0.1")
modparam("statsd", "port", "__STATSD__")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(r) = "";
    if ($hdr(X-T) == "count") {
        statsd_incr("calls.in"); $var(r) = $var(r) + " " + $rc;
        statsd_decr("calls.active"); $var(r) = $var(r) + " " + $rc;
    } else if ($hdr(X-T) == "gauge") {
        statsd_gauge("credit", "+12"); $var(r) = $var(r) + " " + $rc;
        statsd_gauge("load", "0.75"); $var(r) = $var(r) + " " + $rc;
        statsd_histogram("latency", "250"); $var(r) = $var(r) + " " + $rc;
    } else if ($hdr(X-T) == "set") {
        statsd_set("users", "42"); $var(r) = $var(r) + " " + $rc;
        statsd_set("users", "0x1f"); $var(r) = $var(r) + " " + $rc;
        statsd_set("users", "010"); $var(r) = $var(r) + " " + $rc;
    } else if ($hdr(X-T) == "badset") {
        append_to_reply("X-R: before\r\n");
        statsd_set("users", "12abc");
        append_to_reply("X-R2: not reached\r\n");
    } else if ($hdr(X-T) == "timer") {
        statsd_start("query"); $var(r) = $var(r) + " " + $rc;
        statsd_stop("query"); $var(r) = $var(r) + " " + $rc;
        # (a stop without a start is not compared: Kamailio 5.6.3 reads an
        # unset value there)
    }
    append_to_reply("X-R: rc$var(r)\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn ask(peer: &UdpPeer, srv: SocketAddr, statsd: &UdpSocket, t: &str) -> Vec<String> {
    let call = format!("statsd-{t}");
    let req = kamailio::options(&call, &format!("X-T: {t}\r\n"))
        .replace("__VIA__", &peer.addr().to_string());
    peer.send(srv, &req);
    let r = peer.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str())
    });
    let mut out = vec![format!(
        "{t}: {}",
        r.map(|r| r.header("X-R").unwrap_or_default())
            .unwrap_or_else(|| "no answer".into())
    )];
    let mut buf = [0u8; 2048];
    while let Ok(n) = statsd.recv(&mut buf) {
        let d = String::from_utf8_lossy(&buf[..n]).into_owned();
        // The timer's milliseconds vary.
        let d = match d.split_once(':') {
            Some((k, v)) if v.ends_with("|ms") || v.ends_with("|ms\n") => {
                format!("{k}:<ms>|ms{}", if v.ends_with('\n') { "\\n" } else { "" })
            }
            _ => d.replace('\n', "\\n"),
        };
        out.push(format!("  statsd got [{d}]"));
    }
    out
}

#[test]
fn statsd_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
    statsd
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let dir = kamailio::fresh_dir("statsd");
    let cfg = (kamailio::head(MODULES) + BODY).replace(
        "__STATSD__",
        &statsd.local_addr().unwrap().port().to_string(),
    );
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let peer = UdpPeer::new();
        kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
        let mut out = Vec::new();
        for t in ["count", "gauge", "set", "badset", "timer"] {
            out.extend(ask(&peer, srv, &statsd, t));
        }
        out
    });
    assert!(want.iter().any(|l| l.contains("calls.in")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "statsd");
}
