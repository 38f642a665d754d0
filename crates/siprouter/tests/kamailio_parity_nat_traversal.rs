//! Differential test against Kamailio itself, for module nat_traversal:
//! `client_nat_test` (each test and their sum, behind NAT and not),
//! `$source_uri`, `fix_contact` on a relayed request, and `nat_keepalive`
//! on a REGISTER saved by the registrar: the keepalive NOTIFY the
//! registered agent gets within the 10-second interval (its headers, the
//! tag and Call-ID written alike), the agent's 200 to it dropped, then
//! `$keepalive.socket` and the endpoint statistics.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::{first_line, Scene};
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl",
    "tm",
    "pv",
    "textops",
    "usrloc",
    "registrar",
    "nat_traversal",
];

const BODY: &str = r#"modparam("nat_traversal", "keepalive_interval", 10)
modparam("nat_traversal", "keepalive_state_file", "__DIR__/ka_state")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("REGISTER")) {
        nat_keepalive();
        $var(k) = $rc;
        append_to_reply("X-K: $var(k)\r\n");
        save("location");
        exit;
    }
    if ($hdr(X-T) == "test") {
        client_nat_test("1"); $var(a) = $rc;
        client_nat_test("2"); $var(b) = $rc;
        client_nat_test("4"); $var(c) = $rc;
        client_nat_test("7"); $var(d) = $rc;
        append_to_reply("X-R: $var(a) $var(b) $var(c) $var(d) $source_uri\r\n");
        sl_send_reply("200", "ok");
        exit;
    }
    if ($hdr(X-T) == "sock") {
        append_to_reply("X-R: [$keepalive.socket($hdr(X-U))] $stat(keepalive_endpoints) $stat(registered_endpoints) $stat(subscribed_endpoints)\r\n");
        sl_send_reply("200", "ok");
        exit;
    }
    if ($hdr(X-T) == "fix") {
        fix_contact();
        append_hf("X-R: $rc\r\n");
        $du = "__UAS__";
        forward();
        exit;
    }
    sl_send_reply("404", "no");
}
"#;

fn req(p: &Scene, method: &str, call: &str, via_host: &str, contact: &str, extra: &str) -> String {
    let via = if via_host.is_empty() {
        p.caller.addr().to_string()
    } else {
        via_host.to_string()
    };
    format!(
        "{method} sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=f{call}\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nContact: {contact}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

fn answer(p: &Scene, call: &str, header: &str) -> String {
    match p.caller.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call) && r.status().is_some_and(|c| c >= 200)
    }) {
        Some(r) => p.names(&format!(
            "{} [{}]",
            first_line(&r),
            r.header(header).unwrap_or_default()
        )),
        None => "no answer".into(),
    }
}

fn scenario(p: &Scene) -> Vec<String> {
    kamailio::wait_until_up(&p.caller, p.srv, kamailio::PROBE, None);
    let srv_port = p.srv.port().to_string();
    let mut out = Vec::new();
    p.caller.send(
        p.srv,
        &req(
            p,
            "OPTIONS",
            "nt1",
            "10.0.0.1:5070;rport",
            "<sip:alice@192.168.1.10:5070>",
            "X-T: test\r\n",
        ),
    );
    out.push(format!("behind NAT: {}", answer(p, "nt1", "X-R")));
    p.caller.send(
        p.srv,
        &req(
            p,
            "OPTIONS",
            "nt2",
            "",
            "<sip:alice@8.8.8.8>",
            "X-T: test\r\n",
        ),
    );
    out.push(format!("public: {}", answer(p, "nt2", "X-R")));
    // (The Via names the caller's port but another address: the reply
    // goes to the source address, RFC 3261 18.2.2.)
    let via = format!("8.8.8.8:{}", p.caller.addr().port());
    p.caller.send(
        p.srv,
        &req(
            p,
            "OPTIONS",
            "nt3",
            &via,
            "<sip:alice@100.64.0.7>",
            "X-T: test\r\n",
        ),
    );
    out.push(format!("other address: {}", answer(p, "nt3", "X-R")));

    p.caller.send(
        p.srv,
        &req(
            p,
            "MESSAGE",
            "nt4",
            "",
            "\"A\" <sip:alice@10.0.0.1:5070;transport=udp>;expires=5",
            "X-T: fix\r\n",
        ),
    );
    match p.uas_request(0, Duration::from_secs(3), None) {
        Some(r) => out.push(format!(
            "fixed: {} / {}",
            p.names(&r.header("Contact").unwrap_or_default()),
            r.header("X-R").unwrap_or_default()
        )),
        None => out.push("fixed: nothing".into()),
    }

    p.caller.send(
        p.srv,
        &req(
            p,
            "REGISTER",
            "nt5",
            "",
            "<sip:alice@10.0.0.1:5070>",
            "X-T: reg\r\nExpires: 60\r\n",
        ),
    );
    out.push(format!("register: {}", answer(p, "nt5", "X-K")));
    // The keepalive, within the interval.
    match p.caller.recv_matching(Duration::from_secs(13), |r| {
        r.msg.msg().method().is_some_and(|m| m.as_str() == "NOTIFY")
    }) {
        Some(r) => {
            let text = r.text();
            let head = text.split("\r\n\r\n").next().unwrap_or_default();
            let lines: Vec<String> = head
                .lines()
                .map(|l| {
                    let l = l.replace(&srv_port, "<srv>");
                    if let Some(i) = l.find(";branch=z9hG4bK") {
                        format!("{};branch=z9hG4bK<n>", &l[..i])
                    } else if let Some(i) = l.find(";tag=") {
                        format!("{};tag=<tag>", &l[..i])
                    } else if l.starts_with("Call-ID:") {
                        let host = l.rsplit_once('@').map_or("", |(_, h)| h);
                        format!("Call-ID: <id>@{host}")
                    } else {
                        l
                    }
                })
                .collect();
            out.push(format!("keepalive: {}", p.names(&lines.join(" / "))));
            p.caller
                .send(r.from, &sr_testkit::answer(&r, 200, "OK", "ka", &[]));
        }
        None => out.push("keepalive: none".into()),
    }
    std::thread::sleep(Duration::from_millis(300));
    let me = format!("sip:{}", p.caller.addr());
    p.caller.send(
        p.srv,
        &req(
            p,
            "OPTIONS",
            "nt6",
            "",
            "<sip:alice@8.8.8.8>",
            &format!("X-T: sock\r\nX-U: {me}\r\n"),
        ),
    );
    out.push(format!(
        "socket: {}",
        answer(p, "nt6", "X-R").replace(&srv_port, "<srv>")
    ));
    out
}

#[test]
fn nat_traversal_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("nat_traversal");
    let uas_port = sr_testkit::free_port();
    let cfg = (kamailio::head(MODULES) + BODY)
        .replace("__DIR__", &dir.display().to_string())
        .replace("__UAS__", &format!("sip:127.0.0.1:{uas_port}"));
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let mut s = Scene::new(srv, 0);
        s.uas
            .push(sr_testkit::UdpPeer::on(&format!("127.0.0.1:{uas_port}")));
        scenario(&s)
    });
    assert!(
        want.iter()
            .any(|l| l.starts_with("keepalive: NOTIFY sip:127.0.0.1:<caller> SIP/2.0")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "nat_traversal");
}
