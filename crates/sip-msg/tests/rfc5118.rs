//! RFC 5118, the SIP torture test messages for IPv6: one test per case of
//! its section 4, each message written here with the construct the RFC's
//! case is about, and what the RFC asks a parser to make of it.

use sip_msg::headers::ContactValue;
use sip_msg::{Host, Message};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `lines` joined with CRLF, a blank line, then `body`, with its length.
fn msg(lines: &[&str], body: &str) -> Vec<u8> {
    let mut s = lines.join("\r\n");
    s.push_str(&format!("\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    s.into_bytes()
}

fn v6(s: &str) -> Host<'static> {
    Host::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn register(ruri: &str) -> Vec<u8> {
    msg(
        &[
            &format!("REGISTER {ruri} SIP/2.0"),
            "To: sip:user@example.com",
            "From: sip:user@example.com;tag=81x2",
            "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
            "Call-ID: SSG9559905523997077@hlau_4100",
            "Max-Forwards: 70",
            "Contact: \"Caller\" <sip:caller@[2001:db8::1]>",
            "CSeq: 98176 REGISTER",
        ],
        "",
    )
}

fn first_contact_host(m: &Message<'_>) -> Host<'static> {
    match m.contacts().next().unwrap().unwrap() {
        ContactValue::Addr(a) => match a.uri.host {
            Host::V6(a) => Host::V6(a),
            Host::V4(a) => Host::V4(a),
            Host::Name(_) => panic!("contact host is a name"),
        },
        ContactValue::Star => panic!("contact is *"),
    }
}

/// 4.1: IPv6 references in the Request-URI, the Via and the Contact.
#[test]
fn valid_ipv6_references_everywhere() {
    let raw = register("sip:[2001:db8::10]");
    let m = Message::parse(&raw).unwrap();
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.host, v6("2001:db8::10"));
    assert_eq!(ruri.host_str, "[2001:db8::10]");
    assert_eq!(ruri.port, None);
    let via = m.top_via().unwrap();
    assert_eq!(via.host, v6("2001:db8::9:1"));
    assert_eq!(via.port, None);
    assert_eq!(first_contact_host(&m), v6("2001:db8::1"));
}

/// 4.2: an IPv6 address in the Request-URI without its brackets is not a
/// SIP URI: the request is refused (a server answers 400).
#[test]
fn an_ipv6_address_without_brackets_is_refused() {
    let raw = register("sip:2001:db8::10");
    let refused = match Message::parse(&raw) {
        Err(_) => true,
        Ok(m) => m.request_uri().is_none(),
    };
    assert!(refused, "sip:2001:db8::10 was taken as a URI");
}

/// 4.3: everything between the brackets is the address (RFC 5118 erratum
/// 1311): `[2001:db8::10:5070]` is the address 2001:db8::10:5070, with no
/// port.
#[test]
fn a_port_inside_the_brackets_is_part_of_the_address() {
    let raw = register("sip:[2001:db8::10:5070]");
    let m = Message::parse(&raw).unwrap();
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.host, v6("2001:db8::10:5070"));
    assert_ne!(ruri.host, v6("2001:db8::10"));
    assert_eq!(ruri.port, None);
}

/// 4.4: the port after the closing bracket is the port.
#[test]
fn a_port_after_the_brackets_is_the_port() {
    let raw = register("sip:[2001:db8::10]:5070");
    let m = Message::parse(&raw).unwrap();
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.host, v6("2001:db8::10"));
    assert_eq!(ruri.port, Some(5070));
}

/// 4.5: `received` holding an IPv6 address, with the brackets (which RFC
/// 3261's grammar does not allow but implementations send) and without:
/// both are accepted and name the same address.
#[test]
fn received_with_and_without_brackets() {
    for (received, method) in [("[2001:db8::9:255]", "BYE"), ("2001:db8::9:255", "OPTIONS")] {
        let raw = msg(
            &[
                &format!("{method} sip:[2001:db8::10] SIP/2.0"),
                "To: sip:user@example.com;tag=bd76ya",
                "From: sip:user@example.com;tag=81x2",
                &format!(
                    "Via: SIP/2.0/UDP [2001:db8::9:1];received={received};branch=z9hG4bKas3-111"
                ),
                "Call-ID: SSG9559905523997077@hlau_4100",
                "Max-Forwards: 70",
                &format!("CSeq: 321 {method}"),
            ],
            "",
        );
        let m = Message::parse(&raw).unwrap();
        let via = m.top_via().unwrap();
        assert_eq!(via.received(), Some(received));
        assert_eq!(
            via.received_ip(),
            Some(IpAddr::V6("2001:db8::9:255".parse().unwrap())),
            "received={received}"
        );
        assert_eq!(via.branch(), Some("z9hG4bKas3-111"));
    }
}

const SDP_V6: &str = "v=0\r\no=assistant 971731711378798081 0 IN IP6 2001:db8::20\r\ns=Live video feed for today's meeting\r\nc=IN IP6 2001:db8::20\r\nt=3338481189 3370017201\r\nm=audio 6000 RTP/AVP 2\r\na=rtpmap:2 G726-32/8000\r\nm=video 6024 RTP/AVP 107\r\na=rtpmap:107 H263-1998/90000\r\n";

/// 4.6: IPv6 addresses in the SDP body of a request whose headers use
/// them too; the body is read whole, by its Content-Length.
#[test]
fn ipv6_addresses_in_the_sdp_body() {
    let raw = msg(
        &[
            "INVITE sip:user@[2001:db8::10] SIP/2.0",
            "To: sip:user@[2001:db8::10]",
            "From: sip:user@example.com;tag=81x2",
            "Via: SIP/2.0/UDP [2001:db8::20];branch=z9hG4bKas3-111",
            "Call-ID: SSG9559905523997077@hlau_4100",
            "Contact: \"Caller\" <sip:caller@[2001:db8::20]>",
            "CSeq: 8612 INVITE",
            "Max-Forwards: 70",
            "Content-Type: application/sdp",
        ],
        SDP_V6,
    );
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.request_uri().unwrap().user, Some("user"));
    assert_eq!(m.to().unwrap().uri.host, v6("2001:db8::10"));
    assert_eq!(m.body(), SDP_V6.as_bytes());
    assert_eq!(m.content_length(), Some(SDP_V6.len() as u32));
}

/// 4.7: IPv6 and IPv4 sent-by hosts in one Via list, one of them with a
/// port after the brackets and one with an IPv4 `received`.
#[test]
fn ipv6_and_ipv4_in_one_via_list() {
    let raw = msg(
        &[
            "BYE sip:user@host.example.net SIP/2.0",
            "Via: SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111",
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKjhja8781hjuaij65144",
            "Via: SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200",
            "Call-ID: 997077@lau_4100",
            "Max-Forwards: 70",
            "CSeq: 89187 BYE",
            "To: sip:user@example.net;tag=9817--94",
            "From: sip:user@example.com;tag=81x2",
        ],
        "",
    );
    let m = Message::parse(&raw).unwrap();
    let vias: Vec<_> = m.vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].host, vias[0].port),
        (v6("2001:db8::9:1"), Some(6050))
    );
    assert_eq!(vias[1].host, Host::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(vias[2].transport, "TCP");
    assert_eq!(vias[2].host, v6("2001:db8::9:255"));
    assert_eq!(
        vias[2].received_ip(),
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)))
    );
}

/// 4.8: one media stream on IPv4 and one on IPv6 in the same SDP.
#[test]
fn ipv4_and_ipv6_in_one_sdp() {
    let sdp = "v=0\r\no=bob 280744730 28977631 IN IP4 host.example.com\r\ns=\r\nt=0 0\r\nm=audio 22334 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\nm=video 6024 RTP/AVP 107\r\nc=IN IP6 2001:db8::1\r\na=rtpmap:107 H263-1998/90000\r\n";
    let raw = msg(
        &[
            "INVITE sip:user@[2001:db8::10] SIP/2.0",
            "To: sip:user@[2001:db8::10]",
            "From: sip:user@example.com;tag=81x2",
            "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
            "Call-ID: SSG9559905523997077@hlau_4100",
            "Contact: \"Caller\" <sip:caller@[2001:db8::9:1]>",
            "Max-Forwards: 70",
            "CSeq: 8912 INVITE",
            "Content-Type: application/sdp",
        ],
        sdp,
    );
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.body(), sdp.as_bytes());
    assert_eq!(first_contact_host(&m), v6("2001:db8::9:1"));
}

/// 4.9: IPv4-mapped IPv6 addresses in Vias and the Contact.
#[test]
fn ipv4_mapped_ipv6_addresses() {
    let raw = msg(
        &[
            "INVITE sip:user@example.com SIP/2.0",
            "To: sip:user@example.com",
            "From: sip:user@east.example.com;tag=81x2",
            "Via: SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19",
            "Via: SIP/2.0/UDP [::ffff:192.0.2.2];branch=z9hG4bKas3-111",
            "Call-ID: SSG9559905523997077@hlau_4100",
            "Contact: \"T. desk phone\" <sip:ted@[::ffff:192.0.2.2]>",
            "CSeq: 612 INVITE",
            "Max-Forwards: 70",
        ],
        "",
    );
    let m = Message::parse(&raw).unwrap();
    let vias: Vec<_> = m.vias().map(|v| v.unwrap()).collect();
    assert_eq!(
        (vias[0].host, vias[0].port),
        (v6("::ffff:192.0.2.10"), Some(19823))
    );
    assert_eq!(vias[1].host, v6("::ffff:192.0.2.2"));
    assert_eq!(first_contact_host(&m), v6("::ffff:192.0.2.2"));
}

/// 4.10: RFC 3261's grammar (from RFC 2373) allows three colons before an
/// embedded IPv4 address, RFC 4291's two; RFC 5118 asks implementations to
/// tolerate both. Both name the same address; the text is kept as written.
#[test]
fn three_colons_before_an_embedded_ipv4_address_are_tolerated() {
    for addr in ["2001:db8:::192.0.2.1", "2001:db8::192.0.2.1"] {
        let raw = msg(
            &[
                &format!("OPTIONS sip:user@[{addr}] SIP/2.0"),
                &format!("To: sip:user@[{addr}]"),
                "From: sip:user@example.com;tag=810x2",
                "Via: SIP/2.0/UDP lab1.east.example.com;branch=z9hG4bKas3-111",
                "Call-ID: G9559905523997077@hlau_4100",
                "CSeq: 689 OPTIONS",
                "Max-Forwards: 70",
            ],
            "",
        );
        let m = Message::parse(&raw).unwrap();
        let ruri = m.request_uri().unwrap();
        assert_eq!(ruri.host, v6("2001:db8::192.0.2.1"), "{addr}");
        assert_eq!(ruri.host_str, format!("[{addr}]"));
        assert_eq!(m.to().unwrap().uri.host, v6("2001:db8::192.0.2.1"));
    }
}

/// The tolerance of 4.10 is for that one construct: three colons
/// elsewhere, or more than three, are still not an address.
#[test]
fn three_colons_elsewhere_are_not_an_address() {
    for bad in [
        "sip:[2001:db8:::1]",
        "sip:[2001:::db8::192.0.2.1]",
        "sip:[2001:db8::::192.0.2.1]",
        "sip:[:::1]",
        "sip:[2001:db8:::192.0.2.1:5]",
        "sip:[2001:db8:::192.0.2]",
    ] {
        assert!(sip_msg::Uri::parse(bad).is_err(), "{bad} was taken");
    }
    let ok = sip_msg::Uri::parse("sip:[:::192.0.2.1]").unwrap();
    assert_eq!(ok.host, v6("::192.0.2.1"));
}
