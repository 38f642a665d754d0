//! rtpengine end to end, with the real daemon (Debian's
//! `rtpengine-daemon`, in user space; `.ci/run` installs it): a call's
//! SDP is rewritten both ways so the media goes through the daemon, an RTP
//! packet sent by the caller reaches the callee through it, and the BYE
//! deletes the call in the daemon. Without the daemon installed the test
//! says so and passes, unless `SR_RTPENGINE_REQUIRED` is set (as in CI).

use sr_testkit::media::{media, relay_rtp, sdp, RTP_LEN};
use sr_testkit::rtpengine::{self, ng};
use sr_testkit::{answer, TestServer, UdpPeer};
use std::net::UdpSocket;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

#[test]
fn a_call_s_media_goes_through_rtpengine() {
    let Some(daemon) = rtpengine::start() else {
        return;
    };
    let uas = UdpPeer::new();
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "pv"
loadmodule "siputils"
loadmodule "rtpengine"
modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:{}")
request_route {{
    if (has_totag()) {{
        if (loose_route()) {{
            rtpengine_manage();
            t_relay();
        }}
        exit;
    }}
    record_route();
    rtpengine_manage("replace-origin replace-session-connection");
    t_on_reply("MEDIA");
    t_on_failure("FAILED");
    $du = "sip:{}";
    t_relay();
}}
onreply_route[MEDIA] {{
    if (status =~ "^[12][0-9][0-9]$") {{
        rtpengine_manage("replace-origin replace-session-connection");
    }}
}}
failure_route[FAILED] {{
    rtpengine_manage();
}}
"#,
        daemon.ng,
        uas.addr()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let uac = UdpPeer::new();
    let (uac_media, uas_media) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let (um, am) = (
        uac_media.local_addr().unwrap().port(),
        uas_media.local_addr().unwrap().port(),
    );
    let offer = sdp(um);
    uac.send(
        srv.addr(),
        &format!(
            "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKrtpe;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=ra\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: rtpe-call\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
            uac.addr(),
            uac.addr(),
            offer.len()
        ),
    );
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    let (c, p_offer) = media(inv.msg.msg().body());
    assert_eq!(c, "127.0.0.1");
    assert_ne!(
        p_offer, um,
        "the offer's port is rtpengine's, not the caller's"
    );
    assert!(p_offer != 0);

    let ans = sdp(am);
    let contact = format!("Contact: <sip:bob@{}>", uas.addr());
    let ok = answer(
        &inv,
        200,
        "OK",
        "rb",
        &[&contact, "Content-Type: application/sdp"],
    )
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: {}\r\n\r\n{ans}", ans.len()),
    );
    uas.send(inv.from, &ok);
    let r = uac.recv_status(200, T).expect("200 relayed");
    let (_, p_answer) = media(r.msg.msg().body());
    assert!(
        p_answer != 0 && p_answer != am,
        "the answer's port is rtpengine's"
    );
    assert_eq!(
        r.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        r.msg.msg().body().len()
    );

    // RTP from the caller to the port in its answer reaches the callee.
    let (n, from) = relay_rtp(&uac_media, &uas_media, p_answer).expect("RTP relayed by rtpengine");
    assert_eq!(n, RTP_LEN);
    assert_eq!(
        from.port(),
        p_offer,
        "it comes from rtpengine's side of the callee"
    );

    // ACK and BYE; the BYE deletes the call in the daemon.
    let rr = r.header("Record-Route").unwrap();
    let dialog = |method: &str, cseq: u32| {
        format!("{method} sip:bob@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKrtpe{method};rport\r\nMax-Forwards: 70\r\nRoute: {rr}\r\nFrom: <sip:alice@127.0.0.1>;tag=ra\r\nTo: <sip:bob@127.0.0.1>;tag=rb\r\nCall-ID: rtpe-call\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n", uas.addr(), uac.addr())
    };
    assert!(ng(daemon.ng, "d7:call-id9:rtpe-call7:command5:querye").contains("result2:ok"));
    uac.send(srv.addr(), &dialog("ACK", 1));
    uac.send(srv.addr(), &dialog("BYE", 2));
    let bye = uas.recv_method("BYE", T).expect("BYE relayed");
    uas.send(bye.from, &answer(&bye, 200, "OK", "rb", &[]));
    assert_eq!(uac.recv_final(T).unwrap().status(), Some(200));
    let q = ng(daemon.ng, "d7:call-id9:rtpe-call7:command5:querye");
    assert!(q.contains("error"), "the call is gone after the BYE: {q}");

    // A call the callee refuses: failure_route's rtpengine_manage()
    // deletes it (the onreply route only handles 1xx and 2xx, as the
    // stock configuration's does).
    let offer = sdp(um);
    uac.send(
        srv.addr(),
        &format!(
            "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKrtpe2;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=rf\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: rtpe-fail\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
            uac.addr(),
            uac.addr(),
            offer.len()
        ),
    );
    let inv = uas.recv_method("INVITE", T).expect("second INVITE relayed");
    assert!(ng(daemon.ng, "d7:call-id9:rtpe-fail7:command5:querye").contains("result2:ok"));
    uas.send(inv.from, &answer(&inv, 486, "Busy Here", "rb2", &[]));
    assert_eq!(uac.recv_final(T).unwrap().status(), Some(486));
    let q = ng(daemon.ng, "d7:call-id9:rtpe-fail7:command5:querye");
    assert!(q.contains("error"), "the refused call is gone: {q}");

    // A late offer: the INVITE has no SDP, the 200 carries the offer and
    // the ACK the answer; both are rewritten.
    uac.send(
        srv.addr(),
        &format!(
            "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKrtpe3;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=rl\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: rtpe-late\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{}>\r\nContent-Length: 0\r\n\r\n",
            uac.addr(),
            uac.addr()
        ),
    );
    let inv = uas
        .recv_method("INVITE", T)
        .expect("late-offer INVITE relayed");
    assert!(inv.msg.msg().body().is_empty());
    let offer = sdp(am);
    let ok = answer(
        &inv,
        200,
        "OK",
        "rb3",
        &[&contact, "Content-Type: application/sdp"],
    )
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: {}\r\n\r\n{offer}", offer.len()),
    );
    uas.send(inv.from, &ok);
    let r = uac.recv_status(200, T).expect("200 with the offer relayed");
    let (_, p_offer) = media(r.msg.msg().body());
    assert!(
        p_offer != 0 && p_offer != am,
        "the offer in the 200 is rtpengine's"
    );
    let rr = r.header("Record-Route").unwrap();
    let ans = sdp(um);
    uac.send(
        srv.addr(),
        &format!(
            "ACK sip:bob@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKrtpe3ack;rport\r\nMax-Forwards: 70\r\nRoute: {rr}\r\nFrom: <sip:alice@127.0.0.1>;tag=rl\r\nTo: <sip:bob@127.0.0.1>;tag=rb3\r\nCall-ID: rtpe-late\r\nCSeq: 1 ACK\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{ans}",
            uas.addr(),
            uac.addr(),
            ans.len()
        ),
    );
    let ack = uas
        .recv_method("ACK", T)
        .expect("ACK with the answer relayed");
    let (_, p_answer) = media(ack.msg.msg().body());
    assert!(
        p_answer != 0 && p_answer != um,
        "the answer in the ACK is rtpengine's"
    );
}
