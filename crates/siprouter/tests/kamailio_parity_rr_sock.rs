//! Differential test against Kamailio itself, for rr's
//! `record_route_advertised_address(address)` (with `add_rr_param` and
//! the From tag) and registrar's `add_sock_hdr(name)`: the headers a user
//! agent gets from a stateless `forward()` are compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use sr_testkit::UdpPeer;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "rr", "usrloc", "registrar"];

const BODY: &str = r#"request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-T);
    if ($var(t) == "rra") {
        record_route_advertised_address("1.2.3.4:5090");
    } else if ($var(t) == "rra-param") {
        record_route_advertised_address("sip.example.com");
        add_rr_param(";x=1");
    } else if ($var(t) == "rra-pv") {
        $var(a) = "5.6.7.8";
        record_route_advertised_address("$var(a):5070;transport=tcp");
    } else if ($var(t) == "sock") {
        add_sock_hdr("Sock-Info");
    } else if ($var(t) == "sock-pv") {
        $var(h) = "X-Sock";
        add_sock_hdr("$var(h)");
    }
    append_hf("X-Rc: $rc\r\n");
    $du = "sip:127.0.0.1:__UAS__";
    forward();
}
"#;

fn case(p: &Scene, uas: &UdpPeer, what: &str) -> String {
    let call = p.send("REGISTER", what, &format!("X-T: {what}\r\n"));
    let Some(r) = uas.recv_matching(Duration::from_secs(2), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str())
    }) else {
        return format!("{what}: nothing forwarded");
    };
    let text = r.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            ["Record-Route:", "Sock-Info:", "X-Sock:", "X-Rc:"]
                .iter()
                .any(|h| l.starts_with(h))
        })
        .collect();
    format!(
        "{what}: {}",
        p.names(&lines.join(" / "))
            .replace(&p.srv.port().to_string(), "<srv>")
    )
}

fn scenario(srv: SocketAddr, uas_port: u16) -> Vec<String> {
    let p = Scene::new(srv, 0);
    let uas = UdpPeer::on(&format!("127.0.0.1:{uas_port}"));
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    ["rra", "rra-param", "rra-pv", "sock", "sock-pv"]
        .iter()
        .map(|w| case(&p, &uas, w))
        .collect()
}

#[test]
fn advertised_record_route_and_socket_header_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("rr-sock");
    let uas_port = sr_testkit::free_port();
    let cfg = (kamailio::head(MODULES) + BODY).replace("__UAS__", &uas_port.to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, uas_port)
    });
    assert!(want.iter().any(|l| l.contains("1.2.3.4:5090")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "rr advertised address, add_sock_hdr");
}
