//! nathelper end to end, as the stock configuration's WITH_NAT uses it: two
//! user agents that put private addresses in their Contact and Via (as a
//! UA behind NAT does) and send from their real sockets. The registration
//! remembers where it came from (`fix_nated_register`), the INVITE reaches
//! the callee there, the caller's Contact gets an alias
//! (`set_contact_alias`), and the callee's BYE comes back to the caller's
//! real socket through it (`handle_ruri_alias`).

use sr_testkit::{answer, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn server() -> TestServer {
    let cfg = r#"listen=udp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "pv"
loadmodule "textops"
loadmodule "siputils"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "kex"
loadmodule "nathelper"
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
modparam("nathelper", "natping_interval", 30)
modparam("usrloc", "nat_bflag", 6)
request_route {
    force_rport();
    if (nat_uac_test("19")) {
        if (is_method("REGISTER")) {
            fix_nated_register();
        } else if (is_first_hop()) {
            set_contact_alias();
        }
        setflag(5);
    }
    if (has_totag()) {
        if (loose_route()) {
            if (!isdsturiset()) {
                handle_ruri_alias();
            }
            t_relay();
        }
        exit;
    }
    if (is_method("REGISTER")) {
        if (isflagset(5)) { setbflag(6); }
        save("location");
        exit;
    }
    record_route();
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    t_relay();
}
"#;
    TestServer::start(cfg, siprouter::in_tree())
}

#[test]
fn a_call_between_user_agents_behind_nat_reaches_both_ends() {
    let srv = server();
    let s = format!("127.0.0.1:{}", srv.port);
    let bob = UdpPeer::new();
    let alice = UdpPeer::new();
    let (b, a) = (bob.addr(), alice.addr());

    // bob registers a private address; the registrar keeps where the
    // REGISTER came from.
    bob.send(srv.addr(), &format!("REGISTER sip:{s} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKnreg;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{s}>;tag=nb\r\nTo: <sip:bob@{s}>\r\nCall-ID: nat-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@10.0.0.7:5060>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"));
    let r = bob
        .recv(T)
        .expect("REGISTER answered at bob's real address");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let dump = srv.rpc("ul.dump", &[]).expect("ul.dump").to_string();
    assert!(
        dump.contains(&format!("sip:{b}")),
        "where the REGISTER came from is kept: {dump}"
    );

    // alice calls bob from behind her NAT.
    alice.send(srv.addr(), &format!("INVITE sip:bob@{s} SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.9:5062;branch=z9hG4bKninv\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{s}>;tag=na\r\nTo: <sip:bob@{s}>\r\nCall-ID: nat-call\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.168.1.9:5062>\r\nContent-Length: 0\r\n\r\n"));
    let inv = bob
        .recv_method("INVITE", T)
        .expect("the INVITE reached bob's real address");
    assert_eq!(
        inv.msg.msg().request_uri().unwrap().raw,
        "sip:bob@10.0.0.7:5060"
    );
    let alias = format!(
        "<sip:alice@192.168.1.9:5062;alias={}~{}~1>",
        a.ip(),
        a.port()
    );
    assert_eq!(inv.header("Contact").as_deref(), Some(alias.as_str()));
    bob.send(
        inv.from,
        &answer(
            &inv,
            200,
            "OK",
            "bobtag",
            &["Contact: <sip:bob@10.0.0.7:5060>"],
        ),
    );
    let ok = alice
        .recv_status(200, T)
        .expect("200 at alice's real address");
    let rr = ok.header("Record-Route").expect("record-routed");

    // bob hangs up: the BYE goes to alice's Contact, which the alias
    // turns back into her real address.
    let contact_uri = alias.trim_start_matches('<').trim_end_matches('>');
    bob.send(srv.addr(), &format!("BYE {contact_uri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKnbye;rport\r\nMax-Forwards: 70\r\nRoute: {rr}\r\nFrom: <sip:bob@{s}>;tag=bobtag\r\nTo: <sip:alice@{s}>;tag=na\r\nCall-ID: nat-call\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"));
    let bye = alice
        .recv_method("BYE", T)
        .expect("the BYE reached alice's real address");
    assert_eq!(
        bye.msg.msg().request_uri().unwrap().raw,
        "sip:alice@192.168.1.9:5062",
        "the alias is taken out"
    );
    alice.send(bye.from, &answer(&bye, 200, "OK", "na", &[]));
    assert_eq!(bob.recv_final(T).unwrap().status(), Some(200));
}

#[test]
fn fix_nated_contact_and_sdp_rewrite_what_the_far_end_sees() {
    let uas = UdpPeer::new();
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "nathelper"
request_route {{
    if (nat_uac_test("1") && !nat_uac_test("32")) {{
        fix_nated_contact();
        fix_nated_sdp("10");
        add_rcv_param();
    }}
    if (is_rfc1918("$si")) {{ sl_send_reply("500", "loopback is not private"); exit; }}
    forward("{}");
}}
"#,
        uas.addr()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    let u = uac.addr();
    let sdp = "v=0\r\no=- 1 1 IN IP4 192.168.5.5\r\ns=-\r\nc=IN IP4 192.168.5.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    uac.send(srv.addr(), &format!("INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.5.5:5060;branch=z9hG4bKfix;rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: fix\r\nCSeq: 1 INVITE\r\nContact: <sip:a@192.168.5.5:5060;transport=udp>;expires=60\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()));
    let got = uas.recv(T).expect("forwarded");
    let text = got.text();
    assert!(
        text.contains(&format!(
            "Contact: <sip:a@{u};transport=udp>;expires=60;received=\"sip:{u}\"\r\n"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("c=IN IP4 {}\r\n", u.ip())), "{text}");
    assert!(
        text.contains(&format!("o=- 1 1 IN IP4 {}\r\n", u.ip())),
        "{text}"
    );
    // The Content-Length follows the new body.
    let body = got.msg.msg().body();
    assert_eq!(
        got.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        body.len()
    );
}

#[test]
fn registered_user_agents_behind_nat_get_keepalives() {
    let cfg = r#"listen=udp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "pv"
loadmodule "kex"
loadmodule "textops"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "nathelper"
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
modparam("nathelper", "natping_interval", 1)
modparam("nathelper", "ping_nated_only", 1)
modparam("nathelper", "sipping_bflag", 7)
modparam("nathelper", "sipping_from", "sip:pinger@example.com")
modparam("usrloc", "nat_bflag", 6)
request_route {
    if (is_method("REGISTER")) {
        if (nat_uac_test("19")) {
            fix_nated_register();
            setbflag(6);
            if ($tU == "bob") { setbflag(7); }
        }
        save("location");
    }
    exit;
}
"#;
    let srv = TestServer::start(cfg, siprouter::in_tree());
    let s = format!("127.0.0.1:{}", srv.port);
    let register = |ua: &UdpPeer, user: &str, contact: &str| {
        ua.send(srv.addr(), &format!("REGISTER sip:{s} SIP/2.0\r\nVia: SIP/2.0/UDP {contact};branch=z9hG4bKka{user};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{s}>;tag=k{user}\r\nTo: <sip:{user}@{s}>\r\nCall-ID: ka-{user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{contact}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"));
        assert_eq!(ua.recv(T).unwrap().status(), Some(200), "{user}");
    };
    // bob and carol behind NAT (private Contact), bob with SIP pings;
    // dave reachable at what his Contact says.
    let (bob, carol, dave) = (UdpPeer::new(), UdpPeer::new(), UdpPeer::new());
    register(&bob, "bob", "10.0.0.7:5060");
    register(&carol, "carol", "10.0.0.8:5060");
    register(&dave, "dave", &dave.addr().to_string());

    let ping = bob
        .recv_method("OPTIONS", Duration::from_millis(3500))
        .expect("bob gets an OPTIONS at his real address");
    assert_eq!(
        ping.msg.msg().request_uri().unwrap().raw,
        "sip:bob@10.0.0.7:5060"
    );
    assert!(ping
        .header("From")
        .unwrap()
        .starts_with("<sip:pinger@example.com>"));

    carol
        .sock
        .set_read_timeout(Some(Duration::from_millis(3500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = carol
        .sock
        .recv_from(&mut buf)
        .expect("carol gets a UDP ping");
    assert_eq!(&buf[..n], &[0u8; 4]);
    assert_eq!(from, srv.addr());

    dave.sock
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    assert!(
        dave.sock.recv_from(&mut buf).is_err(),
        "dave is not behind NAT: nothing comes"
    );
}

#[test]
fn a_contact_that_stops_answering_sip_pings_is_removed() {
    // keepalive_timeout 2: erin answers her pings for a while and stays;
    // then she stops, and within a few rounds her contact is gone.
    let cfg = r#"listen=udp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "pv"
loadmodule "kex"
loadmodule "textops"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "nathelper"
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
modparam("nathelper", "natping_interval", 1)
modparam("nathelper", "sipping_bflag", 7)
modparam("nathelper", "keepalive_timeout", 2)
modparam("usrloc", "nat_bflag", 6)
request_route {
    if (is_method("REGISTER")) {
        fix_nated_register();
        setbflag(6);
        setbflag(7);
        save("location");
    }
    exit;
}
"#;
    let srv = TestServer::start(cfg, siprouter::in_tree());
    let s = format!("127.0.0.1:{}", srv.port);
    let erin = UdpPeer::new();
    erin.send(srv.addr(), &format!("REGISTER sip:{s} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKkt1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:erin@{s}>;tag=kt\r\nTo: <sip:erin@{s}>\r\nCall-ID: kt-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:erin@10.0.0.9:5060>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"));
    assert_eq!(erin.recv(T).unwrap().status(), Some(200));
    let registered = || {
        srv.rpc("ul.dump", &[])
            .map(|d| d.to_string().contains("erin"))
            .unwrap_or(false)
    };
    // Answer every ping for 4.5 s (more than twice the timeout).
    let until = std::time::Instant::now() + Duration::from_millis(4500);
    let mut answered = 0;
    while std::time::Instant::now() < until {
        if let Some(p) = erin.recv_method("OPTIONS", Duration::from_millis(300)) {
            erin.send(srv.addr(), &answer(&p, 200, "OK", "erin", &[]));
            answered += 1;
        }
    }
    assert!(answered >= 3, "pinged every second ({answered})");
    assert!(registered(), "still registered while answering");
    // Silence: gone within the timeout and a couple of rounds.
    let mut gone = false;
    for _ in 0..60 {
        if !registered() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "removed after not answering");
}

/// The core's `force_rport=yes`: every request as if the script called
/// `force_rport()`: the reply goes to the port the request came from, not
/// to the Via's, and the Via says so (`rport=`). Without it the reply
/// follows the Via's port (RFC 3261 18.2.2).
#[test]
fn the_force_rport_parameter_replies_to_the_source_port() {
    for (setting, answered) in [("yes", true), ("no", false)] {
        let cfg = format!(
            "listen=udp:127.0.0.1:{{PORT}}\nforce_rport={setting}\nloadmodule \"sl\"\nrequest_route {{ sl_send_reply(\"200\", \"OK\"); }}\n"
        );
        let srv = sr_testkit::TestServer::start(&cfg, siprouter::in_tree());
        let peer = sr_testkit::UdpPeer::new();
        let me = peer.addr();
        // The Via names a port nobody listens on.
        peer.send(
            srv.addr(),
            &format!(
                "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKfr{setting}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: fr-{setting}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ),
        );
        let got = peer.recv_final(std::time::Duration::from_millis(1500));
        assert_eq!(got.is_some(), answered, "force_rport={setting}");
        if let Some(r) = got {
            let via = r.header("Via").unwrap_or_default();
            assert!(via.contains(&format!("rport={}", me.port())), "{via}");
        }
    }
}
