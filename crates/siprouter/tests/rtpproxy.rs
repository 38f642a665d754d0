//! The rtpproxy module end to end, with a real RTPProxy (RTPProxy's code as
//! the rtp.io Python package from PyPI, run by
//! sr-testkit's `rtpproxy`; `.ci/run` installs it): a call's SDP is
//! rewritten both ways so the media goes through the proxy, an RTP packet
//! sent by the caller reaches the callee through it, the BYE deletes the
//! session, a refused call's session is deleted from failure_route, and a
//! proxy that does not answer shows in `rtpproxy.list` and makes
//! `rtpproxy_manage` fail with -3 (no proxy). Without rtp.io the test says
//! so and passes, unless `SR_RTPPROXY_REQUIRED` is set (as in CI).

use sr_sdk::serde_json::json;
use sr_testkit::media::{media, relay_rtp, sdp, RTP_LEN};
use sr_testkit::{answer, TestServer, UdpPeer};
use std::net::UdpSocket;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn invite(uac: &UdpPeer, call: &str, tag: &str, offer: &str) -> String {
    format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag={tag}\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        uac.addr(),
        uac.addr(),
        offer.len()
    )
}

fn config(socks: &str, uas: &UdpPeer) -> String {
    format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "pv"
loadmodule "siputils"
loadmodule "textops"
loadmodule "jsonrpcs"
loadmodule "rtpproxy"
modparam("rtpproxy", "rtpproxy_sock", "{socks}")
modparam("rtpproxy", "rtpproxy_retr", 2)
request_route {{
    if (has_totag()) {{
        if (loose_route()) {{
            rtpproxy_manage("co");
            t_relay();
        }}
        exit;
    }}
    record_route();
    $var(r) = rtpproxy_manage("co");
    if ($var(r) < 0) {{
        sl_send_reply("503", "media relay $var(r)");
        exit;
    }}
    t_on_reply("MEDIA");
    t_on_failure("FAILED");
    $du = "sip:{}";
    t_relay();
}}
onreply_route[MEDIA] {{
    if (status =~ "^[12][0-9][0-9]$") {{
        rtpproxy_manage("co");
    }}
}}
failure_route[FAILED] {{
    rtpproxy_manage();
}}
"#,
        uas.addr()
    )
}

#[test]
fn a_call_s_media_goes_through_rtpproxy() {
    let Some(proxy) = sr_testkit::rtpproxy::start(None) else {
        return;
    };
    let uas = UdpPeer::new();
    let socks = format!("udp:127.0.0.1:{}", proxy.ctl);
    let srv = TestServer::start(&config(&socks, &uas), siprouter::in_tree());
    let uac = UdpPeer::new();
    let (uac_media, uas_media) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let (um, am) = (
        uac_media.local_addr().unwrap().port(),
        uas_media.local_addr().unwrap().port(),
    );
    uac.send(srv.addr(), &invite(&uac, "rtpp-call", "ra", &sdp(um)));
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    let body = String::from_utf8_lossy(inv.msg.msg().body()).into_owned();
    let (c, p_offer) = media(inv.msg.msg().body());
    assert_eq!(c, "127.0.0.1");
    assert!(
        p_offer != 0 && p_offer != um,
        "the offer's port is RTPProxy's: {body}"
    );
    assert!(body.ends_with("a=nortpproxy:yes\r\n"), "{body}");

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
    assert!(p_answer != 0 && p_answer != am && p_answer != p_offer);
    assert_eq!(
        r.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        r.msg.msg().body().len()
    );

    // RTP from the caller to the port in its answer reaches the callee,
    // from the port the callee was given.
    let (n, from) = relay_rtp(&uac_media, &uas_media, p_answer).expect("RTP relayed by RTPProxy");
    assert_eq!(n, RTP_LEN);
    assert_eq!(
        from.port(),
        p_offer,
        "it comes from RTPProxy's side of the callee"
    );

    // The BYE deletes the session.
    let rr = r.header("Record-Route").unwrap();
    let dialog = |method: &str, cseq: u32| {
        format!("{method} sip:bob@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKrtpp{method};rport\r\nMax-Forwards: 70\r\nRoute: {rr}\r\nFrom: <sip:alice@127.0.0.1>;tag=ra\r\nTo: <sip:bob@127.0.0.1>;tag=rb\r\nCall-ID: rtpp-call\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n", uas.addr(), uac.addr())
    };
    let q = proxy.command("Q rtpp-call ra;1 rb");
    assert!(
        !q.starts_with('E'),
        "the session exists during the call: {q}"
    );
    uac.send(srv.addr(), &dialog("ACK", 1));
    uac.send(srv.addr(), &dialog("BYE", 2));
    let bye = uas.recv_method("BYE", T).expect("BYE relayed");
    uas.send(bye.from, &answer(&bye, 200, "OK", "rb", &[]));
    assert_eq!(uac.recv_final(T).unwrap().status(), Some(200));
    let q = proxy.command("Q rtpp-call ra;1 rb");
    assert!(q.starts_with('E'), "the session is gone after the BYE: {q}");

    // A refused call: failure_route's rtpproxy_manage() deletes it.
    uac.send(srv.addr(), &invite(&uac, "rtpp-fail", "rf", &sdp(um)));
    let inv = uas.recv_method("INVITE", T).expect("INVITE relayed");
    assert!(!proxy.command("Q rtpp-fail rf;1").starts_with('E'));
    uas.send(inv.from, &answer(&inv, 486, "Busy Here", "rb2", &[]));
    assert_eq!(uac.recv_final(T).unwrap().status(), Some(486));
    let q = proxy.command("Q rtpp-fail rf;1");
    assert!(
        q.starts_with('E'),
        "the refused call's session is gone: {q}"
    );

    let list = srv.rpc("rtpproxy.list", &[]).unwrap();
    assert_eq!(list[0]["url"], socks.as_str());
    assert_eq!(list[0]["disabled"], 0);
}

#[test]
fn a_silent_proxy_is_disabled_and_calls_get_minus_3() {
    // Nobody answers on this port.
    let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uas = UdpPeer::new();
    let socks = format!("udp:{}", quiet.local_addr().unwrap());
    let srv = TestServer::start(&config(&socks, &uas), siprouter::in_tree());
    let list = srv.rpc("rtpproxy.list", &[]).unwrap();
    assert_eq!(list[0]["disabled"], 1, "{list}");
    assert!(list[0]["recheck"].as_u64().unwrap() >= 59, "{list}");
    let uac = UdpPeer::new();
    uac.send(srv.addr(), &invite(&uac, "rtpp-none", "rn", &sdp(4000)));
    let r = uac.recv_final(T).expect("an answer");
    assert_eq!(r.status(), Some(503));
    assert!(r.text().contains("media relay -3"), "{}", r.text());
    // rtpproxy.enable: an unknown URL is a 404, a known one comes back.
    let e = srv
        .rpc("rtpproxy.enable", &[json!("udp:127.0.0.1:1"), json!(1)])
        .unwrap_err();
    assert!(format!("{e:?}").contains("RTPProxy not found"), "{e:?}");
    srv.rpc("rtpproxy.enable", &[json!(socks), json!(1)])
        .unwrap();
    let list = srv.rpc("rtpproxy.list", &[]).unwrap();
    assert_eq!(list[0]["disabled"], 0, "{list}");
    assert_eq!(list[0]["recheck"], 0, "{list}");
    srv.rpc("rtpproxy.enable", &[json!(socks), json!(0)])
        .unwrap();
    let list = srv.rpc("rtpproxy.list", &[]).unwrap();
    assert_eq!(list[0]["recheck"], 4294967295u64, "{list}");
}
