//! One traced message, with what Kamailio's siptrace stores about it
//! (the `sip_trace` table's columns).

use sr_sdk::sip_msg::Message;
use sr_sdk::Proto;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A traced message.
#[derive(Debug, Clone)]
pub struct Record {
    /// The message as received or sent.
    pub body: Vec<u8>,
    /// Request method, or the CSeq method of a reply.
    pub method: String,
    /// Status code of a reply, empty for a request.
    pub status: String,
    /// Transport.
    pub proto: Proto,
    /// Where it came from.
    pub from: SocketAddr,
    /// Where it went.
    pub to: SocketAddr,
    /// `fromip` as stored (`udp:192.0.2.1:5060`).
    pub fromip: String,
    /// `toip` as stored.
    pub toip: String,
    /// From tag.
    pub fromtag: String,
    /// To tag.
    pub totag: String,
    /// Call-ID.
    pub callid: String,
    /// `in` or `out`.
    pub direction: &'static str,
    /// When: unix seconds and microseconds.
    pub time: (u32, u32),
}

/// `proto:ip:port` as Kamailio's siptrace writes it; IPv6 in brackets
/// when `brackets` (core-event tracing), bare otherwise (the script's).
pub fn addr_text(proto: Proto, a: SocketAddr, brackets: bool) -> String {
    match (a.ip(), brackets) {
        (std::net::IpAddr::V6(ip), true) => format!("{}:[{ip}]:{}", proto.as_str(), a.port()),
        (ip, _) => format!("{}:{ip}:{}", proto.as_str(), a.port()),
    }
}

/// Now, as unix seconds and microseconds.
pub fn now() -> (u32, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as u32, d.subsec_micros())
}

impl Record {
    /// The record of `body` (a SIP message), or `None` when its From, To,
    /// Call-ID or CSeq do not parse (Kamailio does not trace it then).
    pub fn of(
        body: &[u8],
        proto: Proto,
        from: SocketAddr,
        to: SocketAddr,
        direction: &'static str,
        brackets: bool,
    ) -> Option<Record> {
        let m = Message::parse(body).ok()?;
        let cseq = m.cseq().ok()?;
        let ftag = m.from().ok()?.tag().unwrap_or("").to_string();
        let ttag = m.to().ok()?.tag().unwrap_or("").to_string();
        let callid = m.call_id().ok()?.to_string();
        let (method, status) = match m.status() {
            Some(c) => (cseq.method.as_str().to_string(), c.to_string()),
            None => (
                m.method()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default(),
                String::new(),
            ),
        };
        Some(Record {
            body: body.to_vec(),
            method,
            status,
            proto,
            from,
            to,
            fromip: addr_text(proto, from, brackets),
            toip: addr_text(proto, to, brackets),
            fromtag: ftag,
            totag: ttag,
            callid,
            direction,
            time: now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_recorded_with_its_cseq_method_and_status() {
        let b = b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=f\r\nTo: <sip:b@y>;tag=t\r\nCall-ID: c1\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n";
        let r = Record::of(
            b,
            Proto::Udp,
            "192.0.2.1:5060".parse().unwrap(),
            "[::1]:5070".parse().unwrap(),
            "in",
            false,
        )
        .unwrap();
        assert_eq!((r.method.as_str(), r.status.as_str()), ("INVITE", "180"));
        assert_eq!((r.fromtag.as_str(), r.totag.as_str()), ("f", "t"));
        assert_eq!(r.fromip, "udp:192.0.2.1:5060");
        assert_eq!(r.toip, "udp:::1:5070");
        assert_eq!(addr_text(Proto::Tcp, r.to, true), "tcp:[::1]:5070");
        assert!(Record::of(b"junk", Proto::Udp, r.from, r.to, "in", false).is_none());
    }
}
