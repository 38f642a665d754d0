//! Messages and the "routing read" shared by the parse benchmark, the
//! allocation test and the callgrind example (included with `#[path]`).
#![allow(dead_code)]

use sip_msg::headers::ContactValue;
use sip_msg::Message;

/// A typical INVITE from a phone through one proxy: about 1 kB with SDP.
pub const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP proxy.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;rport=5060;received=192.0.2.10\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n\
Max-Forwards: 69\r\n\
Record-Route: <sip:proxy.atlanta.example.com;lr>\r\n\
Route: <sip:edge.biloxi.example.com;lr>, <sip:core.biloxi.example.com;lr;transport=tcp>\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 31862 INVITE\r\n\
Contact: <sip:alice@192.0.2.101:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, UPDATE\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: ExamplePhone/4.2.1 (build 8812)\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 309\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtcp:49173\r\n\
a=ssrc:1234567890 cname:alice\r\n";

/// A REGISTER with digest credentials.
pub const REGISTER: &[u8] = b"REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:bob@192.0.2.4:5060>;expires=7200\r\n\
Authorization: Digest username=\"bob\", realm=\"biloxi.example.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:registrar.biloxi.example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\
\r\n";

/// A 200 OK to the INVITE (three Vias, Record-Route, SDP-less).
pub const OK200: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP edge.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3\r\n\
Via: SIP/2.0/UDP proxy.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;rport=5060;received=192.0.2.10\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport=5060;received=192.0.2.101\r\n\
Record-Route: <sip:proxy.atlanta.example.com;lr>\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 31862 INVITE\r\n\
Contact: <sip:bob@192.0.2.4:5060>\r\n\
Content-Length: 0\r\n\
\r\n";

/// Parses with sip-msg and reads the routing headers; returns a number
/// derived from everything read so nothing can be optimised away.
pub fn read_sip_msg(raw: &[u8]) -> usize {
    let m = Message::parse(raw).expect("sip-msg parses");
    let mut n = 0;
    n += m.top_via().unwrap().branch().map_or(0, str::len);
    n += m.from().unwrap().tag().map_or(0, str::len);
    n += m.to().unwrap().tag().map_or(0, str::len);
    n += m.call_id().unwrap().len();
    let cseq = m.cseq().unwrap();
    n += cseq.seq as usize + usize::from(cseq.method == sip_msg::Method::Invite);
    for r in m.routes() {
        let u = r.unwrap().uri;
        n += u.host_str.len() + usize::from(u.is_lr());
    }
    n += m.max_forwards().unwrap().unwrap_or(0) as usize;
    if let Some(Ok(ContactValue::Addr(a))) = m.contacts().next() {
        n += a.uri.user.map_or(0, str::len) + usize::from(a.uri.port.is_some());
    }
    n
}

/// The same work with rsip: parse, then its typed header accessors.
pub fn read_rsip(raw: &[u8]) -> usize {
    use rsip::prelude::*;
    let m = rsip::SipMessage::try_from(raw).expect("rsip parses");
    let mut n = 0;
    let via = m.via_header().unwrap().typed().unwrap();
    n += via.branch().map_or(0, |b| b.value().len());
    n += m
        .from_header()
        .unwrap()
        .tag()
        .unwrap()
        .map_or(0, |t| t.value().len());
    n += m
        .to_header()
        .unwrap()
        .tag()
        .unwrap()
        .map_or(0, |t| t.value().len());
    n += m.call_id_header().unwrap().value().len();
    let cseq = m.cseq_header().unwrap().typed().unwrap();
    n += cseq.seq as usize + usize::from(cseq.method == rsip::Method::Invite);
    for h in m.headers().iter() {
        if let rsip::Header::Route(r) = h {
            for u in r.typed().unwrap().uris() {
                n += host_len(&u.uri.host_with_port.host)
                    + usize::from(
                        u.params.iter().any(|p| matches!(p, rsip::Param::Lr))
                            || u.uri.params.iter().any(|p| matches!(p, rsip::Param::Lr)),
                    );
            }
        }
    }
    if let Ok(mf) = m.max_forwards_header() {
        n += mf.num().unwrap() as usize;
    }
    if let Ok(c) = m.contact_header() {
        let u = c.uri().unwrap();
        n += u.user().map_or(0, str::len) + usize::from(u.host_with_port.port.is_some());
    }
    n
}

fn host_len(h: &rsip::Host) -> usize {
    match h {
        rsip::Host::Domain(d) => d.value().len(),
        rsip::Host::IpAddr(_) => 4,
    }
}
