//! Differential test against Kamailio itself, for NAT traversal as the
//! stock configuration does it (nathelper, registrar, usrloc): phones that
//! write private addresses in Via, Contact and SDP while they send from
//! 127.0.0.1 — `nat_uac_test` with each flag, `fix_nated_register` and
//! the registrar's `received` (its 200 and where calls then go),
//! `fix_nated_contact`, `fix_nated_sdp`, `add_rcv_param`, the callee's
//! 200 fixed in onreply_route — every message compared whole, bodies
//! included (but branches, local To tags and Server).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use sr_testkit::{answer, Reply};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl",
    "tm",
    "rr",
    "pv",
    "textops",
    "siputils",
    "usrloc",
    "registrar",
    "nathelper",
    "kex",
];

const BODY: &str = r#"modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
modparam("usrloc", "nat_bflag", 6)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    force_rport();
    $var(n) = "";
    $var(f) = 1;
    while ($var(f) <= 128) {
        if (nat_uac_test("$var(f)")) { $var(n) = $var(n) + " " + $var(f); }
        $var(f) = $var(f) * 2;
    }
    append_to_reply("X-Nat:$var(n)\r\n");
    if (is_method("REGISTER")) {
        if ($var(n) != "") {
            fix_nated_register();
            setbflag(6);
        }
        save("location");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) { t_relay(); }
        exit;
    }
    if ($var(n) != "") {
        fix_nated_contact();
        if (has_body("application/sdp")) { fix_nated_sdp("3"); }
        if ($hdr(X-T) == "rcv") { add_rcv_param(); }
    }
    record_route();
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    t_on_reply("NAT");
    t_relay();
}
onreply_route[NAT] {
    if (nat_uac_test("1")) {
        fix_nated_contact();
        if (has_body("application/sdp")) { fix_nated_sdp("2"); }
    }
}
"#;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// A message as compared: [`Scene::whole`] and its body, line by line.
fn full(p: &Scene, r: Option<&Reply>) -> String {
    let Some(r) = r else {
        return "nothing".into();
    };
    let text = r.text();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body = p.names(&body.replace("\r\n", " | "));
    format!("{} // {body}", p.whole(r))
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 1);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let t = Duration::from_secs(3);
    let s = format!("127.0.0.1:{}", srv.port());
    let mut out = Vec::new();
    let nat = "192.168.1.10:5060";

    // bob's phone (u0) registers from behind a NAT: private Via and
    // Contact, sent from 127.0.0.1.
    let bob = &p.uas[0];
    bob.send(srv, &format!("REGISTER sip:{s} SIP/2.0\r\nVia: SIP/2.0/UDP {nat};branch=z9hG4bKxreg;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{s}>;tag=rb\r\nTo: <sip:bob@{s}>\r\nCall-ID: nat-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{nat}>;expires=600\r\nX-T: r\r\nContent-Length: 0\r\n\r\n"));
    let r = bob.recv_matching(t, |r| r.status().is_some());
    out.push(format!("REGISTER: {}", full(&p, r.as_ref())));
    // A public phone registers too (no NAT seen).
    let carol = format!("127.0.0.1:{}", p.caller.addr().port());
    p.caller.send(srv, &format!("REGISTER sip:{s} SIP/2.0\r\nVia: SIP/2.0/UDP {carol};branch=z9hG4bKxregc\r\nMax-Forwards: 70\r\nFrom: <sip:carol@{s}>;tag=rc\r\nTo: <sip:carol@{s}>\r\nCall-ID: nat-regc\r\nCSeq: 1 REGISTER\r\nContact: <sip:carol@{carol}>;expires=600\r\nX-T: r\r\nContent-Length: 0\r\n\r\n"));
    let r = p.caller.recv_matching(t, |r| r.status().is_some());
    out.push(format!("REGISTER public: {}", full(&p, r.as_ref())));

    // alice, behind another NAT, calls bob: the INVITE reaches his phone
    // at its real address with Contact and SDP fixed.
    for (call, kind) in [("nat-c1", "c"), ("nat-c2", "rcv")] {
        let inv = format!("INVITE sip:bob@{s} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bK{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{s}>;tag=a{call}\r\nTo: <sip:bob@{s}>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.7:5062>\r\nContent-Type: application/sdp\r\nX-T: {kind}\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
        p.caller.send(srv, &inv);
        let got = bob.recv_matching(t, |r| {
            r.msg.msg().method().is_some_and(|m| m.as_str() == "INVITE")
        });
        out.push(format!("{kind}: bob gets {}", full(&p, got.as_ref())));
        // bob answers from behind his NAT, SDP and all.
        if let Some(g) = &got {
            let body = SDP.replace("192.168.1.10", "192.168.7.7");
            let mut a = answer(
                g,
                200,
                "OK",
                "ub",
                &[
                    &format!("Contact: <sip:bob@{nat}>"),
                    "Content-Type: application/sdp",
                ],
            );
            a = a.replace(
                "Content-Length: 0\r\n\r\n",
                &format!("Content-Length: {}\r\n\r\n{body}", body.len()),
            );
            bob.send(g.from, &a);
        }
        let ok = p.caller.recv_matching(t, |r| {
            r.msg.msg().call_id().ok() == Some(call) && r.status().is_some_and(|c| c >= 200)
        });
        out.push(format!("{kind}: alice gets {}", full(&p, ok.as_ref())));
    }
    // A call to the public phone: no NAT on either side.
    let inv = format!("INVITE sip:carol@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKnat-c3\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{s}>;tag=bc3\r\nTo: <sip:carol@{s}>\r\nCall-ID: nat-c3\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{}>\r\nX-T: c\r\nContent-Length: 0\r\n\r\n", bob.addr(), bob.addr());
    bob.send(srv, &inv);
    let got = p.caller.recv_matching(t, |r| {
        r.msg.msg().method().is_some_and(|m| m.as_str() == "INVITE")
    });
    out.push(format!("public: carol gets {}", full(&p, got.as_ref())));
    out
}

#[test]
fn nat_traversal_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("nat");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("received=")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "nat");
}
