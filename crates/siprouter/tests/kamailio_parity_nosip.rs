//! Differential test against Kamailio itself, for module nosip: UDP
//! datagrams that are not SIP run `event_route[nosip:msg]` (`$nosip` the
//! data, `$si` its sender), data matching `msg_skip` and datagrams under
//! 32 bytes (dropped by the core) do not, and in
//! `request_route` `$nosip` is the whole request. The route leaves what it
//! saw in an htable, which a request reads back; no reply goes to the
//! sender of the data.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use std::net::UdpSocket;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "htable", "nosip"];

const BODY: &str = r#"modparam("htable", "htable", "t=>size=4;")
modparam("nosip", "msg_skip", "^SKIP")

event_route[htable:mod-init] {
    $sht(t=>count) = 0;
}

event_route[nosip:msg] {
    $var(n) = $shtinc(t=>count);
    $sht(t=>len) = $(nosip{s.len});
    $sht(t=>first) = $(nosip{line.at,0});
    $sht(t=>src) = $si;
}

request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    append_to_reply("X-R: $sht(t=>count) $sht(t=>len) [$sht(t=>first)] $sht(t=>src) [$(nosip{line.at,0})]\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn nosip_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("nosip");
    let cfg = kamailio::head(MODULES) + BODY;
    let data = UdpSocket::bind("127.0.0.1:0").unwrap();
    data.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let steps = vec![("ns0".to_string(), kamailio::options("ns0", "X-Op: get\r\n"))];
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let peer = sr_testkit::UdpPeer::new();
        kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
        let mut out = Vec::new();
        for d in [
            // Under 32 bytes: dropped unseen (Kamailio's MIN_UDP_PACKET).
            "hello nosip world",
            "PING PING PING PING PING PING PING PING\r\n\r\n",
            "SKIP me, I am long enough to be read\r\n",
            "a datagram of the device protocol: temperature=21",
            "GARBAGE one two\r\nline\r\nand another line\r\n\r\n",
        ] {
            data.send_to(d.as_bytes(), srv).unwrap();
            let mut buf = [0u8; 2048];
            let answer = match data.recv_from(&mut buf) {
                Ok((n, _)) => String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
                Err(_) => "no answer".into(),
            };
            out.push(format!("{:?}: {answer}", d.lines().next().unwrap_or("")));
        }
        out.extend(kamailio::answers(&peer, srv, &steps, &["X-R"]));
        out
    });
    assert!(
        want.last()
            .unwrap()
            .starts_with("ns0: 3 43 [GARBAGE one two] 127.0.0.1 [OPTIONS "),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "nosip");
}
