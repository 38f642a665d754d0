//! Differential test against Kamailio itself, for more of the pv
//! module's pseudo-variables: the destination URI's and the original
//! Request-URI's parts (`$dd`, `$dp`, `$dP`, `$od`, `$op`, `$oP`, `$oU`),
//! the next hop (`$nh`), the receiving socket and the source as URIs
//! (`$Ru`, `$Rut`, `$sut`), header field lists (`$hfl`, `$hflc`), the
//! Vias (`$via0`, `$via1`, `$viaZ`), `$rmid`, `$expires`, `$K`, an
//! AVP's values joined (`$(avp(x)[*])`, empty values among them), AVPs
//! assigned and removed with an index (constant and from a variable:
//! Kamailio 5.6 adds, and removes the newest, whatever the index) —
//! the same requests to both servers and every value compared (the
//! servers' and the client's ports masked). Not compared: the first of
//! several Vias on one line (Kamailio 5.6's `$hfl(Via)` keeps its comma)
//! and Contact values by index (their order in Kamailio's list).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops"];

const BODY: &str = r#"request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-Du) != $null) { $du = $hdr(X-Du); }
    if ($hdr(X-Ru) != $null) { $ru = $hdr(X-Ru); }
    append_to_reply("X-A: dd=$dd dp=$dp dP=$dP od=$od op=$op oP=$oP oU=$oU nh=$nh(u)|$nh(U)|$nh(d)|$nh(p)|$nh(P)\r\n");
    append_to_reply("X-B: Ru=$Ru Rut=$Rut sut=$sut rmid=$rmid exp=$expires(min)|$expires(max) K=$K(IPv4),$K(IPv6),$K(UDP),$K(TCP),$K(TLS),$K(SCTP),$K(WS),$K(WSS)\r\n");
    append_to_reply("X-V: hfl=$(hfl(Via)[1])|$(hfl(Via)[2])|$(hfl(Via)[-1])|$(hfl(Route)[1]) hflc=$hflc(Via),$hflc(Contact),$hflc(Route),$hflc(X-L) hflx=$hfl(X-L)|$(hfl(X-L)[1])\r\n");
    append_to_reply("X-W: v0=$via0(host)|$via0(port)|$via0(proto)|$via0(protoid)|$via0(branch)|$via0(rport)|$via0(received)|$via0(i) v1=$via1(host)|$via1(port)|$via1(branch)|$via1(received) vZ=$viaZ(host)|$viaZ(branch)\r\n");
    $avp(t) = "a"; $avp(t) = ""; $avp(t) = "b"; $avp(t) = ""; $avp(e) = ""; $avp(n) = 1; $avp(n) = 0;
    append_to_reply("X-S: [$(avp(t)[*])] [$(avp(e)[*])] [$(avp(n)[*])] [$(avp(none)[*])]\r\n");
    $avp(i) = "one"; $avp(i) = "two"; $avp(i) = "three";
    $(avp(i)[1]) = "TWO"; $(avp(i)[0]) = "THREE"; $(avp(i)[7]) = "none";
    $var(k) = 2; $(avp(i)[$var(k)]) = "ONE";
    $avp(j) = 1; $avp(j) = 2; $avp(j) = 3; $(avp(j)[1]) = $null; $(avp(j)[5]) = $null;
    append_to_reply("X-I: [$(avp(i)[0])|$(avp(i)[1])|$(avp(i)[2])|$(avp(i)[3])] [$(avp(j)[*])]\r\n");
    sl_send_reply("200", "ok");
}
"#;

/// (method, R-URI, extra headers).
const CASES: &[(&str, &str, &str)] = &[
    ("OPTIONS", "sip:alice@example.com:5070;transport=TCP", ""),
    ("INVITE", "sips:bob@example.com", "X-Du: sip:10.0.0.1:5090;transport=tls\r\n"),
    ("REGISTER", "sip:example.com", "Contact: <sip:a@1.2.3.4>;expires=60, <sip:b@1.2.3.4>\r\nContact: <sip:c@1.2.3.4>;expires=300\r\nExpires: 120\r\n"),
    ("MESSAGE", "sip:carol@example.com", "X-Du: sip:gw.example.net\r\nX-L: a, \"b,c\" <sip:x>, d\r\nX-L: e\r\n"),
    ("FOO", "sip:127.0.0.1", "X-Ru: sip:dave@other.example.org:5999\r\nExpires: 30\r\n"),
    ("SUBSCRIBE", "sip:eve@example.com;transport=ws", "Route: <sip:r1.example.com;lr>, <sip:r2.example.com;lr>\r\nContact: <sip:e@5.6.7.8>;expires=0\r\n"),
];

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let me = peer.addr();
    let mut out = Vec::new();
    for (n, (method, ruri, extra)) in CASES.iter().enumerate() {
        let call = format!("pvm-{n}");
        let req = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call};rport, SIP/2.0/TCP 10.1.1.1:5066;branch=z9hG4bKsecond;received=10.9.9.9\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKthird\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nX-C: 1\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        peer.send(srv, &req);
        let r = peer
            .recv_matching(Duration::from_secs(3), |r| {
                r.status() == Some(200) && r.msg.msg().call_id().ok() == Some(call.as_str())
            })
            .unwrap_or_else(|| panic!("{call}: no answer"));
        for h in ["X-A", "X-B", "X-V", "X-W", "X-S", "X-I"] {
            let v = r
                .header(h)
                .unwrap_or_default()
                .replace(&srv.port().to_string(), "SRVPORT")
                .replace(&me.port().to_string(), "MYPORT");
            out.push(format!("{call} {h}: {v}"));
        }
    }
    out
}

#[test]
fn more_pseudo_variables_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("pv-more");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(
        want.iter().any(|l| l.contains("od=example.com")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "pv-more");
}
