//! Differential test against Kamailio itself, for what corex's
//! `via_add_srvid(1)` does to the Via a proxy adds (`;srvid=` the core's
//! `server_id`), with and without `add_local_rport()`, over stateless
//! `forward()` and over tm's `t_relay()`. The user agent's top Via is
//! compared, its branch written alike. (`via_add_xavp_params` and
//! `via_use_xavp_fields` are not built: Kamailio 5.6 adds the fields of
//! `xavp_via_fields` as parameters and uses no field, against its manual.)
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use sr_testkit::{answer, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "pv", "textops", "corex"];

const BODY: &str = r#"server_id=7
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-T);
    if ($var(t) =~ "srvid") {
        via_add_srvid("1");
    }
    if ($var(t) =~ "rport") {
        add_local_rport();
    }
    if ($var(t) =~ "off") {
        via_add_srvid("1");
        via_add_srvid("0");
    }
    $du = "sip:127.0.0.1:__UAS__";
    if ($var(t) =~ "^tm") {
        t_relay();
    } else {
        forward();
    }
}
"#;

fn case(p: &Scene, uas: &UdpPeer, what: &str) -> String {
    let call = p.send("MESSAGE", what, &format!("X-T: {what}\r\n"));
    let Some(r) = uas.recv_matching(Duration::from_secs(2), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str())
    }) else {
        return format!("{what}: nothing forwarded");
    };
    uas.send(r.from, &answer(&r, 200, "OK", "u0", &[]));
    let text = r.text();
    let via = text
        .lines()
        .find(|l| l.starts_with("Via:"))
        .unwrap_or_default()
        .to_string();
    let via = match via.find("branch=") {
        Some(i) => {
            let rest = &via[i + 7..];
            let end = rest.find(';').unwrap_or(rest.len());
            format!("{}branch=<b>{}", &via[..i], &rest[end..])
        }
        None => via,
    };
    format!(
        "{what}: {}",
        p.names(&via).replace(&p.srv.port().to_string(), "<srv>")
    )
}

fn scenario(srv: SocketAddr, uas_port: u16) -> Vec<String> {
    let p = Scene::new(srv, 0);
    let uas = UdpPeer::on(&format!("127.0.0.1:{uas_port}"));
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    [
        "none",
        "srvid",
        "rport-srvid",
        "off",
        "tm-none",
        "tm-srvid",
        "tm-rport-srvid",
    ]
    .iter()
    .map(|w| case(&p, &uas, w))
    .collect()
}

#[test]
fn via_options_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("via-opts");
    let uas_port = sr_testkit::free_port();
    let cfg = (kamailio::head(MODULES) + BODY).replace("__UAS__", &uas_port.to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, uas_port)
    });
    assert!(want.iter().any(|l| l.contains("srvid")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "Via options");
}
