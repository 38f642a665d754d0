//! RFC 4475's torture cases, against the shipped default configuration (a
//! stateful proxy and registrar, etc/siprouter.cfg) and a small stateless
//! one. The messages are written here, one per case of the RFC, each with
//! the oddity the RFC's case is about; the assertions are what the RFC
//! expects of a proxy or registrar, or, where it allows several answers,
//! the one siprouter gives (and Kamailio's stock configuration would).

use sr_testkit::{answer, default_config, free_port, fresh_db, Reply, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);
/// How long "nothing comes" is watched for.
const QUIET: Duration = Duration::from_millis(400);

/// A server on the default configuration with `alice` registered at `uas`.
struct Proxy {
    srv: TestServer,
    uas: UdpPeer,
}

impl Proxy {
    fn start(name: &str) -> Proxy {
        let cfg = default_config(&fresh_db(name), free_port());
        let srv = TestServer::start(&cfg, siprouter::in_tree());
        let p = Proxy {
            srv,
            uas: UdpPeer::new(),
        };
        let r = p.exchange(
            &p.uas,
            "REGISTER sip:{S} SIP/2.0\nVia: SIP/2.0/UDP {U};branch=z9hG4bKreg-alice\nMax-Forwards: 70\nFrom: <sip:alice@{S}>;tag=ra\nTo: <sip:alice@{S}>\nCall-ID: reg-alice\nCSeq: 1 REGISTER\nContact: <sip:alice@{U}>\nExpires: 600\nContent-Length: 0\n\n",
        );
        assert_eq!(r.status(), Some(200), "{}", r.text());
        p
    }

    /// `text` with `{S}` the server's address, `{U}` the sender's and
    /// line ends made CRLF.
    fn fill(&self, from: &UdpPeer, text: &str) -> String {
        text.replace("{S}", &format!("127.0.0.1:{}", self.srv.port))
            .replace("{U}", &from.addr().to_string())
            .replace('\n', "\r\n")
    }

    fn send(&self, from: &UdpPeer, text: &str) {
        self.send_bytes(from, self.fill(from, text).as_bytes());
    }

    fn send_bytes(&self, from: &UdpPeer, bytes: &[u8]) {
        from.sock.send_to(bytes, self.srv.addr()).expect("send");
    }

    /// Sends `text` from `from` and returns the first final reply.
    fn exchange(&self, from: &UdpPeer, text: &str) -> Reply {
        self.send(from, text);
        from.recv_final(T).expect("a final reply")
    }

    /// The next request relayed to alice with this Call-ID.
    fn relayed(&self, call_id: &str) -> Reply {
        self.uas
            .recv_matching(T, |r| r.msg.msg().call_id().ok() == Some(call_id))
            .unwrap_or_else(|| panic!("{call_id} not relayed to the UAS"))
    }

    /// Asserts that no request with this Call-ID reaches alice for a
    /// while, but for the ACK the proxy sends her for her own failure
    /// reply.
    fn not_relayed(&self, call_id: &str) {
        let got = self.uas.recv_matching(QUIET, |r| {
            let m = r.msg.msg();
            m.call_id().ok() == Some(call_id) && m.method().is_some_and(|m| m.as_str() != "ACK")
        });
        assert!(
            got.is_none(),
            "{call_id} was relayed: {}",
            got.unwrap().text()
        );
    }

    /// Sends a request that must be answered `code` without reaching
    /// alice.
    fn rejected(&self, text: &str, call_id: &str, code: u16) -> Reply {
        let uac = UdpPeer::new();
        let r = self.exchange(&uac, text);
        assert_eq!(r.status(), Some(code), "{call_id}: {}", r.text());
        self.not_relayed(call_id);
        r
    }

    /// Sends a request that alice answers `code`; returns what she got.
    fn relayed_and_answered(&self, uac: &UdpPeer, text: &str, call_id: &str, code: u16) -> Reply {
        self.send(uac, text);
        let got = self.relayed(call_id);
        self.uas
            .send(got.from, &answer(&got, code, "Answered", "alice", &[]));
        let r = uac.recv_final(T).expect("the UAS's final reply relayed");
        assert_eq!(r.status(), Some(code), "{call_id}: {}", r.text());
        got
    }
}

const SDP: &str =
    "v=0\no=x 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 49170 RTP/AVP 0\n";

/// An INVITE's text with `headers` and the SDP body (its Content-Length
/// counted with CRLF line ends).
fn with_sdp(head: &str) -> String {
    format!(
        "{head}Content-Length: {}\n\n{SDP}",
        SDP.len() + SDP.matches('\n').count()
    )
}

#[test]
fn valid_but_tortuous_requests_are_relayed_unchanged() {
    let p = Proxy::start("torture-valid");

    // 3.1.1.1: case-mixed and compact header names, folding inside values,
    // white space around the colon and inside Via, leading zeros, escaped
    // quotes, an empty Subject and an unknown header with an odd value.
    let uac = UdpPeer::new();
    let head = "INVITE sip:alice@{S};unknownparam SIP/2.0\nTO :\n <sip:alice@{S}>\nfrom   : \"Caller \\\\ \\\"Q\\\"\"       <sip:caller@{U}>\n  ;\n  tag = 12a3\nMaX-fOrWaRdS: 0042\nCall-ID: wsinvx\ncseq: 0021\n  INVITE\nVia  : SIP  /   2.0\n /UDP\n    {U};branch=\n  z9hG4bKwsinv1\ns :\nNewFangledHeader:   newfangled value\n continued newfangled value\nUnknownHeaderWithUnusualValue: ;;,,;;,;\nContent-Type: application/sdp\nv:  SIP  / 2.0  / TCP     192.0.2.9   ;\n  branch  =   z9hG4bKwsinv2 , SIP  /    2.0\n  / UDP  192.0.2.10;branch=z9hG4bKwsinv3\nm:\"Quoted \\\"q\\\"\" <sip:caller@{U}> ;newparam =\n      newvalue ;\n  secondparam ; q = 0.33\n";
    let got = p.relayed_and_answered(&uac, &with_sdp(head), "wsinvx", 486);
    let text = got.text();
    assert!(
        text.contains("\r\nUnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"),
        "{text}"
    );
    assert!(
        text.contains("NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n"),
        "{text}"
    );
    assert_eq!(got.header("Max-Forwards").as_deref(), Some("41"));
    assert_eq!(got.msg.msg().vias().count(), 4, "ours and the three");

    // 3.1.1.2: an unknown method of every token character, an odd user
    // part, control characters quoted in a display name, UTF-8 in a
    // parameter and in an extension header; relayed as it came.
    let uac = UdpPeer::new();
    let method = "!strange-Meth0d_*+`.%odd'~";
    let text = format!("{method} sip:alice@{{S}} SIP/2.0\nVia: SIP/2.0/UDP {{U}};branch=z9hG4bK-.!%66*_+`'~\nTo: \"\\\u{7}\\\u{0}\\\u{7f}\" <sip:alice@{{S}}>\nFrom: token1 ~` !-_ <sip:caller@{{U}}>;odd`~!-param*=\"\u{41f}\u{440}\u{438}\";tag=_~-!`+\nCall-ID: intmeth%\"[]{{}}()<>:\\/?@x\nCSeq: 139122385 {method}\nMax-Forwards: 255\nExtension-~!`-Header: \u{feff}\u{4e2d}\u{6587}\nContent-Length: 0\n\n");
    let got = p.relayed_and_answered(&uac, &text, "intmeth%\"[]{}()<>:\\/?@x", 200);
    assert_eq!(got.msg.msg().method().unwrap().as_str(), method);
    assert_eq!(got.header("CSeq").unwrap(), format!("139122385 {method}"));
    // 255 is legal; maxfwd caps what it relays at its max_limit (70), as
    // Kamailio's does.
    assert_eq!(got.header("Max-Forwards").as_deref(), Some("70"));
    assert!(got
        .text()
        .contains("Extension-~!`-Header: \u{feff}\u{4e2d}\u{6587}\r\n"));

    // 3.1.1.3 and 3.1.1.5: % escapes are left alone by a proxy, and a
    // method or header name with % in it is not the one it would decode to.
    let uac = UdpPeer::new();
    let text = with_sdp("INVITE sip:al%69ce@{S} SIP/2.0\nTo: sip:%61lice@{S}\nFrom: <sip:c%20aller@{U}>;tag=e1\nMax-Forwards: 70\ni: esc01x\nCSeq: 1 INVITE\nVia: SIP/2.0/UDP {U};branch=z9hG4bKesc01\nContact: <sip:c%6Fller@{U};n%61me=v%61lue%25%34%31>\nc: application/sdp\n");
    let got = p.relayed_and_answered(&uac, &text, "esc01x", 486);
    assert!(
        got.text().contains(";n%61me=v%61lue%25%34%31>\r\n"),
        "{}",
        got.text()
    );
    let uac = UdpPeer::new();
    let text = "RE%47IST%45R sip:alice@{S} SIP/2.0\nTo: \"%Z%45\" <sip:alice@{S}>\nFrom: \"%Z%45\" <sip:caller@{U}>;tag=e2\nMax-Forwards: 70\nCall-ID: esc02x\nVia: SIP/2.0/UDP {U};branch=z9hG4bK3%ab%\nCSeq: 1 RE%47IST%45R\nContact: <sip:one@{U}>\nC%6Fntact: <sip:two@{U}>\nContact: <sip:three@{U}>\nl: 0\n\n";
    let got = p.relayed_and_answered(&uac, text, "esc02x", 200);
    assert_eq!(got.msg.msg().method().unwrap().as_str(), "RE%47IST%45R");
    assert_eq!(got.msg.msg().contacts().count(), 2);
    assert!(got.header("C%6Fntact").is_some());

    // 3.1.1.6: no space between an unquoted display name and '<'.
    let uac = UdpPeer::new();
    p.relayed_and_answered(&uac, "OPTIONS sip:alice@{S} SIP/2.0\nTo: sip:alice@{S}\nFrom: caller<sip:caller@{U}>;tag=lw1\nMax-Forwards: 70\nCall-ID: lwsdispx\nCSeq: 1 OPTIONS\nVia: SIP/2.0/UDP {U};branch=z9hG4bKlwsdisp\nl: 0\n\n", "lwsdispx", 200);

    // 3.1.1.7: long values and 35 Vias in every spelling of the name.
    let uac = UdpPeer::new();
    let mut head = format!("INVITE sip:alice@{{S}} SIP/2.0\nTo: \"{}\"<sip:alice@{{S}};unknownparam1=very{}value;longparam{}=shortvalue;very{}ParameterNameWithNoValue>\nF: sip:{}@{{U}};tag=12{}424;unknownheaderparam{}=unknowheaderparam{};unknownValueless{}\nCall-ID: longreq.one{}longcallid\nCSeq: 3882340 INVITE\nUnknown-{}-Name: unknown-{}-value; unknown-{}-parameter-name = unknown-{}-parameter-value\nVia: SIP/2.0/UDP {{U}};branch=z9hG4bKlongtop\n",
        "extreme".repeat(10), "long".repeat(20), "name".repeat(25), "long".repeat(25),
        "amazinglylongcallername".repeat(5), "982".repeat(50), "name".repeat(20), "value".repeat(15), "paramname".repeat(10),
        "really".repeat(20), "Long".repeat(20), "long".repeat(20), "long".repeat(20), "long".repeat(20));
    let names = [
        "Via", "v", "V", "ViA", "VIa", "VIA", "via", "viA", "vIa", "vIA",
    ];
    for i in (1..=33).rev() {
        head.push_str(&format!(
            "{}{}: SIP/2.0/TCP host{i}.example.net;branch=z9hG4bKlong{i}\n",
            names[i % 10],
            " ".repeat(i % 3)
        ));
    }
    head.push_str(&format!("Via: SIP/2.0/TCP 192.0.2.77;received=192.0.2.5;branch=very{}branchvalue\nMax-Forwards: 70\nContact: <sip:{}@{{U}}>\nContent-Type: application/sdp\n", "long".repeat(50), "amazinglylongcallername".repeat(5)));
    let call_id = format!("longreq.one{}longcallid", "really".repeat(20));
    let got = p.relayed_and_answered(&uac, &with_sdp(&head), &call_id, 486);
    assert_eq!(got.msg.msg().vias().count(), 36, "ours and all 35");

    // 3.1.1.9: `;` and an escaped `@` in the user part: the user is
    // `alice;par=u@example.net`, not alice, so nobody is registered.
    p.rejected("OPTIONS sip:alice;par=u%40example.net@{S} SIP/2.0\nTo: sip:alice@{S}\nFrom: sip:caller@{U};tag=s1\nMax-Forwards: 3\nCall-ID: semiurix\nCSeq: 1 OPTIONS\nVia: SIP/2.0/UDP {U};branch=z9hG4bKsemiuri\nAccept: application/sdp, application/pkcs7-mime,\n        multipart/mixed, multipart/signed,\n  message/sip, message/sipfrag\nl: 0\n\n", "semiurix", 404);

    // 3.1.1.10: unknown transports in the Vias below the top one.
    let uac = UdpPeer::new();
    p.relayed_and_answered(&uac, "OPTIONS sip:alice@{S} SIP/2.0\nTo: sip:alice@{S}\nFrom: sip:caller@{U};tag=t1\nMax-Forwards: 70\nCall-ID:  transportsx\nCSeq: 1 OPTIONS\nVia: SIP/2.0/UDP {U};branch=z9hG4bKtr1\nVia: SIP/2.0/SCTP t1.example.com;branch=z9hG4bKtr2\nVia: SIP/2.0/TLS t2.example.com;branch=z9hG4bKtr3\nVia: SIP/2.0/WEIRDPROTO t3.example.com;branch=z9hG4bKtr4\nVia: SIP/2.0/TCP t4.example.com;branch=z9hG4bKtr5\nl: 0\n\n", "transportsx", 200);

    // 3.1.1.11: a multipart body with NUL octets is framed by its length
    // and relayed byte for byte.
    let uac = UdpPeer::new();
    let mut body = b"--bnd42\r\nContent-Type: text/plain\r\n\r\nHi\r\n--bnd42\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    body.extend_from_slice(&[
        0x30, 0x82, 0x01, 0x00, 0x06, 0x09, 0x00, 0x00, 0x2a, 0x86, 0x00, 0x0d, 0x0a, 0x0d, 0x0a,
        0x00, 0xff,
    ]);
    body.extend_from_slice(b"\r\n--bnd42--\r\n");
    let mut msg = p
        .fill(&uac, &format!("MESSAGE sip:alice@{{S}} SIP/2.0\nVia: SIP/2.0/UDP {{U}};rport;branch=z9hG4bKmpart\nMax-Forwards: 70\nTo: <sip:alice@{{S}}>\nFrom: <sip:caller@{{U}}>;tag=m1\nCall-ID: mpart01x\nCSeq: 1 MESSAGE\nContent-Transfer-Encoding: binary\nContent-Type: multipart/mixed;boundary=bnd42\nContent-Length: {}\n\n", body.len()))
        .into_bytes();
    msg.extend_from_slice(&body);
    p.send_bytes(&uac, &msg);
    let got = p.relayed("mpart01x");
    assert_eq!(got.msg.msg().body(), &body[..]);
    p.uas.send(got.from, &answer(&got, 200, "OK", "alice", &[]));
    assert_eq!(uac.recv_final(T).unwrap().status(), Some(200));

    // Invalid or unusual, but harmless to a proxy, so relayed: a Date in
    // EST (3.1.2.12), spaces inside <> (3.1.2.14), an unknown
    // Content-Type (3.3.6), an Accept without SDP (3.3.15).
    for (call_id, extra) in [
        ("baddate", "Date: Fri, 01 Jan 2010 16:00:00 EST\n"),
        ("badaspec", "Contact: \"Caller, Esq.\" < sip:caller@{U} >\n"),
        ("sdp01", "Accept: text/nobodyKnowsThis\n"),
        // 3.1.2.15: a comma in an unquoted display name (the RFC allows
        // rejecting it; Kamailio takes it, so does siprouter).
        ("baddn", "Contact: Smith, Bob <sip:caller@{U}>\n"),
    ] {
        let uac = UdpPeer::new();
        let head = format!("INVITE sip:alice@{{S}} SIP/2.0\nTo: sip:alice@{{S}}\nFrom: sip:caller@{{U}};tag={call_id}\nMax-Forwards: 70\nCall-ID: {call_id}\nCSeq: 1 INVITE\nVia: SIP/2.0/UDP {{U}};branch=z9hG4bK{call_id}\n{extra}Content-Type: application/sdp\n");
        p.relayed_and_answered(&uac, &with_sdp(&head), call_id, 486);
    }
    let uac = UdpPeer::new();
    p.relayed_and_answered(&uac, "INVITE sip:alice@{S} SIP/2.0\nTo: sip:alice@{S}\nFrom: sip:caller@{U};tag=iu1\nMax-Forwards: 70\nCall-ID: invut\nCSeq: 1 INVITE\nVia: SIP/2.0/UDP {U};branch=z9hG4bKinvut\nContent-Type: application/unknownformat\nContent-Length: 20\n\n<what>is this</what>", "invut", 486);
    // 3.1.2.11: escaped headers in the Request-URI are not relayed (the
    // location lookup sets the Request-URI) and never become a Route.
    let uac = UdpPeer::new();
    let got = p.relayed_and_answered(&uac, &with_sdp("INVITE sip:alice@{S}?Route=%3Csip:example.com%3E SIP/2.0\nTo: sip:alice@{S}\nFrom: sip:caller@{U};tag=er1\nMax-Forwards: 70\nCall-ID: escruri\nCSeq: 1 INVITE\nVia: SIP/2.0/UDP {U};branch=z9hG4bKescruri\nContent-Type: application/sdp\n"), "escruri", 486);
    assert!(!got.msg.msg().request_uri().unwrap().raw.contains('?'));
    assert!(got.header("Route").is_none(), "{}", got.text());

    // 3.4.1: RFC 2543 syntax: no branch, no From tag, no Max-Forwards, no
    // Content-Length. Relayed with a Max-Forwards; its ACK and a later
    // retransmission are matched to the transaction the RFC 2543 way, so
    // the INVITE does not reach alice a second time.
    let uac = UdpPeer::new();
    let text = format!("INVITE sip:alice@{{S}} SIP/2.0\nVia: SIP/2.0/UDP {{U}}\nFrom: <sip:+15550003@{{U}};user=phone>\nTo: sip:alice@{{S}};user=phone\nCall-ID: inv2543x\nCSeq: 1 INVITE\nContent-Type: application/sdp\n\n{SDP}");
    let got = p.relayed_and_answered(&uac, &text, "inv2543x", 486);
    assert!(got.header("Max-Forwards").is_some());
    let ack = text
        .replacen("INVITE sip:", "ACK sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace(";user=phone\nCall-ID", ";user=phone;tag=alice\nCall-ID");
    p.send(&uac, &ack);
    while uac.recv(QUIET).is_some() {}
    p.send(&uac, &text);
    p.not_relayed("inv2543x");
}

#[test]
fn unusual_replies_are_relayed_and_malformed_ones_dropped() {
    let p = Proxy::start("torture-replies");
    let invite = |call_id: &str| {
        format!("INVITE sip:alice@{{S}} SIP/2.0\nVia: SIP/2.0/UDP {{U}};branch=z9hG4bK{call_id}\nMax-Forwards: 70\nFrom: <sip:caller@{{U}}>;tag=c1\nTo: <sip:alice@{{S}}>\nCall-ID: {call_id}\nCSeq: 1 INVITE\nContact: <sip:caller@{{U}}>\nContent-Length: 0\n\n")
    };
    // 3.1.1.13 and 3.1.1.12: an empty reason phrase, and one of UTF-8 and
    // reserved characters, reach the caller as they were sent.
    let uac = UdpPeer::new();
    p.send(&uac, &invite("reasons"));
    let got = p.relayed("reasons");
    let reply =
        |status: &str| answer(&got, 200, "X", "alice", &[]).replacen("SIP/2.0 200 X", status, 1);
    p.uas.send(got.from, &reply("SIP/2.0 180 "));
    let r = uac
        .recv_matching(T, |r| r.status() == Some(180))
        .expect("180");
    assert!(r.text().starts_with("SIP/2.0 180 \r\n"));
    let odd = "SIP/2.0 200 = 2**3 * 5**2 \u{43d}\u{43e} \u{441}\u{442}\u{43e} - \u{434}\u{435}\u{432}\u{44f}\u{43d}\u{43e}\u{441}\u{442}\u{43e}";
    p.uas.send(got.from, &reply(odd));
    let r = uac
        .recv_matching(T, |r| r.status() == Some(200))
        .expect("200");
    assert!(r.text().starts_with(&format!("{odd}\r\n")));

    // 3.1.2.19 and 3.1.2.5: a status code past 699 and overlarge CSeq
    // numbers never reach the caller; the transaction goes on and a good
    // final reply after them does.
    for (call_id, bad) in [
        (
            "bigcode",
            "SIP/2.0 4294967301 better not break the receiver",
        ),
        ("scalarlg", "SIP/2.0 503 Service Unavailable"),
    ] {
        let uac = UdpPeer::new();
        p.send(&uac, &invite(call_id));
        let got = p.relayed(call_id);
        let mut text = answer(&got, 200, "X", "alice", &[]).replacen("SIP/2.0 200 X", bad, 1);
        if call_id == "scalarlg" {
            text = text.replace("CSeq: 1 INVITE", "CSeq: 9292394834772304023312 INVITE").replace(
                "Content-Length: 0",
                "Retry-After: 949302838503028349304023988\r\nWarning: 1812 overture \"In Progress\"\r\nContent-Length: 0",
            );
        }
        p.uas.send(got.from, &text);
        assert!(
            uac.recv_matching(QUIET, |r| r.status().is_some_and(|c| c >= 200))
                .is_none(),
            "{call_id} relayed"
        );
        p.uas
            .send(got.from, &answer(&got, 486, "Busy Here", "alice", &[]));
        assert_eq!(uac.recv_final(T).unwrap().status(), Some(486), "{call_id}");
    }
}

#[test]
fn malformed_requests_get_the_reply_the_rfc_asks_for() {
    let p = Proxy::start("torture-invalid");
    let inv = |call_id: &str, first: &str, extra: &str| {
        with_sdp(&format!("{first}\nTo: sip:alice@{{S}}\nFrom: sip:caller@{{U}};tag={call_id}\nMax-Forwards: 70\nCall-ID: {call_id}\nCSeq: 1 INVITE\nVia: SIP/2.0/UDP {{U}};branch=z9hG4bK{call_id}\n{extra}Content-Type: application/sdp\n"))
    };
    let invite_line = "INVITE sip:alice@{S} SIP/2.0";
    // 3.1.2.1: empty Via and Contact parameters.
    p.rejected(
        &inv("badinv01", invite_line, "").replace(";branch=z9hG4bKbadinv01", ";;,;,,"),
        "badinv01",
        400,
    );
    // 3.1.2.2 and 3.1.2.3: a Content-Length past the datagram, a negative one.
    let clerr = inv("clerr", invite_line, "");
    let clerr = clerr.replace(
        &format!("Content-Length: {}", SDP.len() + 6),
        "Content-Length: 9999",
    );
    p.rejected(&clerr, "clerr", 400);
    let ncl = inv("ncl", invite_line, "");
    p.rejected(
        &ncl.replace(
            &format!("Content-Length: {}", SDP.len() + 6),
            "Content-Length: -999",
        ),
        "ncl",
        400,
    );
    // 3.1.2.4: a CSeq number past 2^32 (with Max-Forwards 300 and huge
    // expiry values).
    p.rejected(&format!("REGISTER sip:{{S}} SIP/2.0\nVia: SIP/2.0/UDP {{U}};branch=z9hG4bKscalar02\nFrom: <sip:sc@{{S}}>;tag=s2\nTo: <sip:sc@{{S}}>\nCall-ID: scalar02\nCSeq: 36893488147419103232 REGISTER\nMax-Forwards: 300\nExpires: 1{}\nContact: <sip:sc@{{U}}>\n  ;expires=280297596632815\nContent-Length: 0\n\n", "0".repeat(100)), "scalar02", 400);
    // 3.1.2.6: an unterminated quote in To: the 400 still goes out.
    let r = p.rejected(
        &inv("quotbal", invite_line, "")
            .replace("To: sip:alice@{S}", "To: \"Mr. Alice <sip:alice@{S}>"),
        "quotbal",
        400,
    );
    assert!(
        r.text().contains("To: \"Mr. Alice <sip:alice@127.0.0.1:"),
        "{}",
        r.text()
    );
    // 3.1.2.7 to 3.1.2.10: a bracketed Request-URI, white space inside it,
    // doubled spaces in the request line, trailing spaces.
    p.rejected(
        &inv("ltgtruri", "INVITE <sip:alice@{S}> SIP/2.0", ""),
        "ltgtruri",
        400,
    );
    p.rejected(
        &inv("lwsruri", "INVITE sip:alice@{S}; lr SIP/2.0", ""),
        "lwsruri",
        400,
    );
    p.rejected(
        &inv("lwsstart", "INVITE  sip:alice@{S}  SIP/2.0", ""),
        "lwsstart",
        400,
    );
    p.rejected(
        &inv("trws", "INVITE sip:alice@{S} SIP/2.0  ", ""),
        "trws",
        400,
    );
    // 3.1.2.16: SIP/7.0.
    p.rejected("OPTIONS sip:alice@{S} SIP/7.0\nVia: SIP/7.0/UDP {U};branch=z9hG4bKbadvers\nMax-Forwards: 70\nFrom: A.B <sip:caller@{U}>;tag=bv1\nTo: C.D <sip:alice@{S}>\nCall-ID: badvers\nCSeq: 1 OPTIONS\nl: 0\n\n", "badvers", 505);
    // 3.1.2.17 and 3.1.2.18: CSeq's method is not the request's (400; 501
    // is also allowed for the unknown method, siprouter's sanity module
    // says 400 for both, as Kamailio's does).
    p.rejected("OPTIONS sip:alice@{S} SIP/2.0\nTo: sip:alice@{S}\nFrom: sip:caller@{U};tag=mm1\nMax-Forwards: 70\nCall-ID: mismatch01\nCSeq: 4 INVITE\nVia: SIP/2.0/UDP {U};branch=z9hG4bKmismatch01\nl: 0\n\n", "mismatch01", 400);
    p.rejected(
        &inv("mismatch02", "NEWMETHOD sip:alice@{S} SIP/2.0", ""),
        "mismatch02",
        400,
    );
    // 3.3.2 and 3.3.3: unknown and atypical Request-URI schemes.
    for (call_id, uri) in [
        ("unkscm", "nobodyKnowsThisScheme:totallyopaquecontent"),
        ("novelsc", "soap.beep://192.0.2.103:3002"),
    ] {
        p.rejected(&format!("OPTIONS {uri} SIP/2.0\nTo: sip:alice@{{S}}\nFrom: sip:caller@{{U}};tag=u1\nMax-Forwards: 3\nCall-ID: {call_id}\nCSeq: 1 OPTIONS\nVia: SIP/2.0/UDP {{U}};branch=z9hG4bK{call_id}\nl: 0\n\n"), call_id, 416);
    }
    // 3.3.4: a registrar refuses a To that is not a SIP URI.
    p.rejected("REGISTER sip:{S} SIP/2.0\nTo: isbn:2983792873\nFrom: <http://www.example.com>;tag=us2\nMax-Forwards: 70\nCall-ID: unksm2\nCSeq: 1 REGISTER\nVia: SIP/2.0/UDP {U};branch=z9hG4bKunksm2\nContact: <name:John_Smith>\nl: 0\n\n", "unksm2", 400);
    // 3.3.9: two Content-Length headers that disagree.
    p.rejected("OPTIONS sip:alice@{S} SIP/2.0\nVia: SIP/2.0/UDP {U};branch=z9hG4bKmcl01\nTo: sip:alice@{S}\nFrom: sip:caller@{U};tag=mc1\nCall-ID: mcl01\nCSeq: 1 OPTIONS\nContent-Length: 13\nMax-Forwards: 60\nContent-Length: 5\nContent-Type: text/plain\n\nThere's no way to know how many octets are supposed to be here.\n", "mcl01", 400);
    // 3.3.11: Max-Forwards 0 is not forwarded.
    p.rejected("OPTIONS sip:alice@{S} SIP/2.0\nTo: sip:alice@{S}\nFrom: sip:caller@{U};tag=z1\nMax-Forwards: 0\nCall-ID: zeromf\nCSeq: 1 OPTIONS\nVia: SIP/2.0/UDP {U};branch=z9hG4bKzeromf\nl: 0\n\n", "zeromf", 483);

    // 3.3.1 and 3.3.8: missing or doubled Call-ID, From and To. No reply
    // can be trusted to reach the sender (Kamailio's sanity sends none
    // either); nothing is relayed, and the server goes on answering.
    let uac = UdpPeer::new();
    p.send(&uac, &with_sdp("INVITE sip:alice@{S} SIP/2.0\nCSeq: 1 INVITE\nVia: SIP/2.0/UDP {U};branch=z9hG4bKinsuf\nContent-Type: application/sdp\n"));
    let multi = inv("multi01", invite_line, "To: sip:bob@{S}\nMax-Forwards: 5\nCall-ID: multi01-other\nFrom: sip:dave@{U};tag=mu2\nCSeq: 59 INVITE\n");
    p.send(&uac, &multi);
    p.not_relayed("multi01");
    let ok = p.exchange(&uac, "OPTIONS sip:{S} SIP/2.0\nVia: SIP/2.0/UDP {U};branch=z9hG4bKalive\nMax-Forwards: 70\nFrom: <sip:caller@{U}>;tag=k\nTo: <sip:{S}>\nCall-ID: alive\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    assert_eq!(ok.status(), Some(200));
}

#[test]
fn a_bare_magic_cookie_is_not_a_transaction_id() {
    // 3.2.1: a branch of just `z9hG4bK`. Two different requests from one
    // client with it are two transactions (the RFC 2543 fallback), not one
    // absorbed as a retransmission of the other.
    let p = Proxy::start("torture-branch");
    let uac = UdpPeer::new();
    for call_id in ["badbranch1", "badbranch2"] {
        p.relayed_and_answered(&uac, &format!("OPTIONS sip:alice@{{S}} SIP/2.0\nTo: sip:alice@{{S}}\nFrom: sip:caller@{{U}};tag={call_id}\nMax-Forwards: 70\nCall-ID: {call_id}\nCSeq: 1 OPTIONS\nVia: SIP/2.0/UDP {{U}};branch=z9hG4bK\nl: 0\n\n"), call_id, 200);
    }
}

#[test]
fn registrations_keep_their_parameters_where_they_were_written() {
    let p = Proxy::start("torture-register");
    let uac = UdpPeer::new();
    let register = |user: &str, contacts: &str| {
        format!("REGISTER sip:{{S}} SIP/2.0\nVia: SIP/2.0/UDP {{U}};branch=z9hG4bK{user}\nMax-Forwards: 70\nFrom: <sip:{user}@{{S}}>;tag={user}\nTo: <sip:{user}@{{S}}>\nCall-ID: reg-{user}\nCSeq: 1 REGISTER\n{contacts}L:0\n\n")
    };
    // (Each binding of the reply's Contact header, which lists them as
    // Kamailio's does, separated by commas; these URIs have none.)
    let contacts = |r: &Reply| -> Vec<String> {
        r.msg
            .msg()
            .headers_by_name("Contact")
            .flat_map(|h| h.value.split(", ").map(str::to_string))
            .collect()
    };
    // 3.1.1.4: escaped NULs: two distinct bindings.
    let r = p.exchange(
        &uac,
        &register("nul", "Contact: <sip:%00@{U}>\nContact: <sip:%00%00@{U}>\n"),
    );
    assert_eq!(r.status(), Some(200));
    let c = contacts(&r);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(
        c[0].starts_with("<sip:%00@") && c[1].starts_with("<sip:%00%00@"),
        "{c:?}"
    );
    // 3.3.12: without <>, `;unknownparam` is a contact parameter, never a
    // URI parameter of the binding.
    let r = p.exchange(
        &uac,
        &register("cp1", "Contact: sip:+19725552222@{U};unknownparam\n"),
    );
    let c = contacts(&r);
    assert_eq!(c.len(), 1);
    assert!(!c[0].contains("unknownparam>"), "{c:?}");
    // 3.3.13: inside <>, it is a URI parameter and stays one.
    let r = p.exchange(
        &uac,
        &register("cp2", "Contact: <sip:+19725552222@{U};unknownparam>\n"),
    );
    assert!(
        contacts(&r)[0].contains(";unknownparam>"),
        "{:?}",
        contacts(&r)
    );
    // 3.3.14: an escaped header in the contact URI is kept.
    let r = p.exchange(
        &uac,
        &register("rt", "M: <sip:user@{U}?Route=%3Csip:sip.example.com%3E>\n"),
    );
    assert!(
        contacts(&r)[0].contains("?Route=%3Csip:sip.example.com%3E>"),
        "{:?}",
        contacts(&r)
    );
    // 3.1.2.13: headers in a Contact URI without <>: the brackets are
    // inferred, as the RFC allows where nothing is ambiguous.
    let r = p.exchange(
        &uac,
        &register(
            "rbc",
            "Contact: sip:rbc@{U}?Route=%3Csip:sip.example.com%3E\n",
        ),
    );
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert!(
        contacts(&r)[0].contains("?Route=%3Csip:sip.example.com%3E>"),
        "{:?}",
        contacts(&r)
    );
    // 3.1.1.8 under the default configuration: its sanity_check asks for
    // the Content-Length check (bit 128), which counts the trailing octets
    // as body and answers 400, as Kamailio's does.
    let dbl = p.fill(&uac, &register("dbl", "Contact: <sip:dbl@{U}>\n"));
    let dbl = format!("{dbl}INVITE sip:alice@x SIP/2.0\r\nCall-ID: inner\r\n\r\n");
    p.send_bytes(&uac, dbl.as_bytes());
    let r = uac.recv_final(T).unwrap();
    assert_eq!(r.status(), Some(400), "{}", r.text());
    assert_eq!(r.msg.msg().reason(), Some("Content-Length mis-match"));
    // 3.3.7: an unknown Authorization scheme, to a registrar that does no
    // authentication: ignored.
    let r = p.exchange(
        &uac,
        &register(
            "ra",
            "Authorization: NoOneKnowsThisScheme opaque-data=here\nContact: <sip:ra@{U}>\n",
        ),
    );
    assert_eq!(r.status(), Some(200));
}

/// RFC 5118's IPv6 cases through the default configuration (the messages'
/// own addresses are not reachable here, so each goes to this server and
/// the IPv6 references are where the RFC's case puts them).
#[test]
fn rfc5118_ipv6_references_through_the_proxy_and_registrar() {
    let p = Proxy::start("torture-ipv6");
    // 4.2: an IPv6 address without brackets in the Request-URI: 400.
    let r = p.rejected(
        "REGISTER sip:2001:db8::10 SIP/2.0\nTo: <sip:v6@{S}>\nFrom: <sip:v6@{S}>;tag=81x2\nVia: SIP/2.0/UDP {U};branch=z9hG4bKv6bad\nCall-ID: v6-bad\nMax-Forwards: 70\nContact: <sip:caller@[2001:db8::1]>\nCSeq: 98176 REGISTER\nContent-Length: 0\n\n",
        "v6-bad",
        400,
    );
    assert_eq!(r.header("Call-ID").as_deref(), Some("v6-bad"));

    // 4.1, 4.3, 4.4, 4.9, 4.10: IPv6 contacts are stored and listed as
    // written, the 4.3 one with no port of its own.
    let uac = UdpPeer::new();
    let r = p.exchange(
        &uac,
        "REGISTER sip:{S} SIP/2.0\nTo: <sip:v6@{S}>\nFrom: <sip:v6@{S}>;tag=81x2\nVia: SIP/2.0/UDP {U};branch=z9hG4bKv6reg\nCall-ID: v6-reg\nMax-Forwards: 70\nContact: \"Caller\" <sip:caller@[2001:db8::1]>, <sip:a@[2001:db8::10:5070]>, <sip:b@[2001:db8::10]:5070>\nContact: <sip:ted@[::ffff:192.0.2.2]>, <sip:c@[2001:db8:::192.0.2.1]>\nCSeq: 98176 REGISTER\nExpires: 600\nContent-Length: 0\n\n",
    );
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let text = r.text();
    for c in [
        "<sip:caller@[2001:db8::1]>",
        "<sip:a@[2001:db8::10:5070]>",
        "<sip:b@[2001:db8::10]:5070>",
        "<sip:ted@[::ffff:192.0.2.2]>",
        "<sip:c@[2001:db8:::192.0.2.1]>",
    ] {
        assert!(text.contains(c), "{c} not listed: {text}");
    }

    // 4.5, 4.6, 4.7, 4.9, 4.10: IPv6 and IPv4 in one Via list (received
    // with and without brackets), IPv6 in From, To, Contact and SDP: the
    // request is relayed whole, and the callee's reply comes back by the
    // Vias.
    let sdp = "v=0\no=assistant 971731711378798081 0 IN IP6 2001:db8::20\ns=-\nc=IN IP6 2001:db8::20\nt=0 0\nm=audio 6000 RTP/AVP 2\nm=video 6024 RTP/AVP 107\nc=IN IP4 192.0.2.1\n";
    let head = "INVITE sip:alice@{S} SIP/2.0\nTo: <sip:alice@{S}>\nFrom: <sip:user@[2001:db8:::192.0.2.1]>;tag=81x2\nVia: SIP/2.0/UDP {U};branch=z9hG4bKv6inv\nVia: SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255];branch=z9hG4bKas3-111\nVia: SIP/2.0/UDP [::ffff:192.0.2.10]:19823;received=2001:db8::9:255;branch=z9hG4bKbh19\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK451jj;received=192.0.2.200\nCall-ID: v6-inv\nContact: \"Caller\" <sip:caller@[2001:db8::20]>\nCSeq: 8612 INVITE\nMax-Forwards: 70\nContent-Type: application/sdp\n";
    let invite = format!(
        "{head}Content-Length: {}\n\n{sdp}",
        sdp.len() + sdp.matches('\n').count()
    );
    let uac = UdpPeer::new();
    let got = p.relayed_and_answered(&uac, &invite, "v6-inv", 486);
    let text = got.text();
    assert_eq!(got.msg.msg().vias().count(), 5, "ours and the four: {text}");
    for part in [
        "From: <sip:user@[2001:db8:::192.0.2.1]>;tag=81x2\r\n",
        "Via: SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255];branch=z9hG4bKas3-111\r\n",
        "Contact: \"Caller\" <sip:caller@[2001:db8::20]>\r\n",
        "c=IN IP6 2001:db8::20\r\n",
    ] {
        assert!(text.contains(part), "{part:?} not relayed as written: {text}");
    }
}

/// A stateless relay to `uas` (with the Proxy-Require check on).
fn stateless(uas: &UdpPeer) -> TestServer {
    let cfg = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"sl\"\nloadmodule \"sanity\"\nrequest_route {{\n  if (!sanity_check(\"512\")) {{ exit; }}\n  forward(\"{}\");\n}}\n",
        uas.addr()
    );
    TestServer::start(&cfg, siprouter::in_tree())
}

#[test]
fn a_stateless_relay_drops_trailing_octets_and_broadcast_replies() {
    let uas = UdpPeer::new();
    let srv = stateless(&uas);
    let uac = UdpPeer::new();
    let s = format!("127.0.0.1:{}", srv.port);
    let u = uac.addr().to_string();
    // 3.1.1.8: octets after the body in a datagram are not part of it.
    let first = format!("REGISTER sip:{s} SIP/2.0\r\nTo: sip:j.user@{s}\r\nFrom: sip:j.user@{s};tag=43251j3j324\r\nMax-Forwards: 8\r\nI: dblreq\r\nCSeq: 8 REGISTER\r\nVia: SIP/2.0/UDP {u};branch=z9hG4bKdblreq\r\nContact: sip:j.user@{u}\r\nl: 0\r\n\r\n");
    let extra = format!("INVITE sip:joe@{s} SIP/2.0\r\nTo: sip:joe@{s}\r\nFrom: sip:caller@{u};tag=141334\r\nMax-Forwards: 8\r\nCall-ID: dblreq-inner\r\nCSeq: 8 INVITE\r\nVia: SIP/2.0/UDP {u};branch=z9hG4bKdblinner\r\nl: 0\r\n\r\n");
    uac.sock
        .send_to(format!("{first}{extra}").as_bytes(), srv.addr())
        .unwrap();
    let got = uas.recv(T).expect("REGISTER relayed");
    assert_eq!(got.msg.msg().method().unwrap().as_str(), "REGISTER");
    assert!(!got.text().contains("dblreq-inner"), "{}", got.text());
    assert!(got.text().ends_with("\r\n\r\n"), "{}", got.text());

    // 3.3.10: a reply whose next Via is not a unicast address goes
    // nowhere. (0.0.0.0 at the UAS's port: Linux would deliver it to the
    // UAS, so this fails if the reply is sent; the broadcast address of
    // the RFC's case is refused by the kernel anyway.)
    let before = srv.stat("core:drop_replies").unwrap();
    let nexts = [
        format!("0.0.0.0:{}", uas.addr().port()),
        "255.255.255.255".to_string(),
    ];
    for (i, next) in nexts.iter().enumerate() {
        let bcast = format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {s};branch=z9hG4bKbcast.1\r\nVia: SIP/2.0/UDP {next};branch=z9hG4bKbcast\r\nFrom: <sip:caller@{u}>;tag=bc1\r\nTo: <sip:alice@{s}>;tag=bc2\r\nCall-ID: bcast\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
        uas.send(srv.addr(), &bcast);
        let want = before + 1 + i as i64;
        assert_eq!(
            srv.wait_stat("core:drop_replies", want),
            Some(want),
            "{next}"
        );
    }
    assert!(uas.recv(QUIET).is_none(), "a reply came back");

    // 3.3.5: unknown Proxy-Require tags get 420, listing them (the
    // Require tags are for the UAS, not the proxy).
    uac.send(srv.addr(), &format!("OPTIONS sip:alice@{s} SIP/2.0\r\nTo: sip:alice@{s}\r\nFrom: sip:caller@{u};tag=be1\r\nMax-Forwards: 70\r\nCall-ID: bext01\r\nCSeq: 1 OPTIONS\r\nVia: SIP/2.0/UDP {u};branch=z9hG4bKbext01\r\nRequire: nothing-at-all, nothing-either\r\nProxy-Require: proxy-nothing, proxy-nada\r\nl: 0\r\n\r\n"));
    let r = uac.recv(T).expect("420");
    assert_eq!(r.status(), Some(420), "{}", r.text());
    let unsupported = r.header("Unsupported").unwrap_or_default();
    assert!(
        unsupported.contains("proxy-nothing") && unsupported.contains("proxy-nada"),
        "{}",
        r.text()
    );
    assert!(!unsupported.contains("nothing-at-all"), "{}", r.text());
    assert!(uas.recv(QUIET).is_none(), "bext01 relayed");
}
