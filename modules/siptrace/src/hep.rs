//! HEP, the Homer encapsulation protocol: a traced SIP message with its
//! addresses and time, as Kamailio's siptrace sends it (versions 1, 2
//! and 3; version 3 also for `hlog` events). Version 3 chunks: vendor id,
//! type, length (with the 6-byte chunk head), value — all in network
//! byte order.

use std::net::{IpAddr, SocketAddr};

/// HEP protocol type of a SIP message.
pub const PROTO_SIP: u8 = 0x01;
/// HEP protocol type of a log event (`hlog`).
pub const PROTO_LOG: u8 = 0x64;

/// The IP protocol number HEP carries for a SIP transport (TLS and
/// WebSocket as Kamailio marks them: `IPPROTO_IDP`, 22).
pub fn ip_proto(transport: &str) -> u8 {
    match transport {
        "udp" | "any" => 17,
        "tcp" => 6,
        "sctp" => 132,
        _ => 22,
    }
}

/// One traced packet.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    /// IP protocol number ([`ip_proto`]).
    pub ip_proto: u8,
    /// Where the message came from.
    pub src: SocketAddr,
    /// Where it went.
    pub dst: SocketAddr,
    /// Unix time: seconds and microseconds.
    pub time: (u32, u32),
    /// [`PROTO_SIP`] or [`PROTO_LOG`].
    pub proto_type: u8,
    /// `hep_capture_id`.
    pub capture_id: u32,
    /// Correlation id (version 3), if any.
    pub correlation: Option<&'a str>,
    /// `auth_key` (version 3), if any.
    pub auth_key: Option<&'a str>,
    /// The message (or log text).
    pub payload: &'a [u8],
}

fn chunk(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&((6 + data.len()) as u16).to_be_bytes());
    out.extend_from_slice(data);
}

fn family(a: &SocketAddr) -> u8 {
    if a.is_ipv6() {
        10
    } else {
        2
    }
}

fn ip_bytes(a: &SocketAddr) -> Vec<u8> {
    match a.ip() {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// A HEPv3 packet, chunks in Kamailio's order; `log` puts the
/// destination port before the source port, as Kamailio's `hlog` does.
/// `None` when the two addresses are of different families or the
/// packet would not fit HEP's 16-bit length.
pub fn encode_v3(p: &Packet<'_>, log: bool) -> Option<Vec<u8>> {
    if p.src.is_ipv6() != p.dst.is_ipv6() {
        return None;
    }
    let mut out = Vec::with_capacity(128 + p.payload.len());
    out.extend_from_slice(b"HEP3\0\0");
    chunk(&mut out, 0x0001, &[family(&p.src)]);
    chunk(&mut out, 0x0002, &[p.ip_proto]);
    let (s, d) = if p.src.is_ipv6() {
        (0x0005, 0x0006)
    } else {
        (0x0003, 0x0004)
    };
    chunk(&mut out, s, &ip_bytes(&p.src));
    chunk(&mut out, d, &ip_bytes(&p.dst));
    let sport = p.src.port().to_be_bytes();
    let dport = p.dst.port().to_be_bytes();
    if log {
        chunk(&mut out, 0x0008, &dport);
        chunk(&mut out, 0x0007, &sport);
    } else {
        chunk(&mut out, 0x0007, &sport);
        chunk(&mut out, 0x0008, &dport);
    }
    chunk(&mut out, 0x0009, &p.time.0.to_be_bytes());
    chunk(&mut out, 0x000a, &p.time.1.to_be_bytes());
    chunk(&mut out, 0x000b, &[p.proto_type]);
    chunk(&mut out, 0x000c, &p.capture_id.to_be_bytes());
    if let Some(c) = p.correlation.filter(|c| !c.is_empty()) {
        chunk(&mut out, 0x0011, c.as_bytes());
    }
    if let Some(k) = p.auth_key.filter(|k| !k.is_empty()) {
        chunk(&mut out, 0x000e, k.as_bytes());
    }
    chunk(&mut out, 0x000f, p.payload);
    let len = u16::try_from(out.len()).ok()?;
    out[4..6].copy_from_slice(&len.to_be_bytes());
    Some(out)
}

/// A HEPv1 or HEPv2 packet: an 8-byte head (version, head length,
/// family, IP protocol, ports), the addresses, in version 2 the time and
/// capture id (little-endian, as Kamailio writes them, padded to 12
/// bytes), then the message.
pub fn encode_v2(p: &Packet<'_>, version: u8) -> Option<Vec<u8>> {
    if p.src.is_ipv6() != p.dst.is_ipv6() {
        return None;
    }
    let addrs = if p.src.is_ipv6() { 32 } else { 8 };
    let mut out = Vec::with_capacity(8 + addrs + 12 + p.payload.len());
    out.push(version);
    out.push((8 + addrs) as u8);
    out.push(family(&p.src));
    out.push(p.ip_proto);
    out.extend_from_slice(&p.src.port().to_be_bytes());
    out.extend_from_slice(&p.dst.port().to_be_bytes());
    out.extend_from_slice(&ip_bytes(&p.src));
    out.extend_from_slice(&ip_bytes(&p.dst));
    if version == 2 {
        out.extend_from_slice(&p.time.0.to_le_bytes());
        out.extend_from_slice(&p.time.1.to_le_bytes());
        out.extend_from_slice(&(p.capture_id as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
    }
    out.extend_from_slice(p.payload);
    Some(out)
}

/// The chunks of a HEPv3 packet, `(type, value)` in order; `None` when it
/// is not one (for tests and tools).
pub fn decode_v3(b: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
    if b.len() < 6 || &b[..4] != b"HEP3" {
        return None;
    }
    let total = u16::from_be_bytes([b[4], b[5]]) as usize;
    let b = b.get(..total)?;
    let mut at = 6;
    let mut out = Vec::new();
    while at < b.len() {
        let head = b.get(at..at + 6)?;
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let len = u16::from_be_bytes([head[4], head[5]]) as usize;
        if len < 6 {
            return None;
        }
        out.push((kind, b.get(at + 6..at + len)?.to_vec()));
        at += len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(payload: &[u8]) -> Packet<'_> {
        Packet {
            ip_proto: 17,
            src: "192.0.2.1:5060".parse().unwrap(),
            dst: "192.0.2.2:5080".parse().unwrap(),
            time: (1_700_000_000, 123_456),
            proto_type: PROTO_SIP,
            capture_id: 7,
            correlation: Some("cid"),
            auth_key: None,
            payload,
        }
    }

    #[test]
    fn v3_chunks_come_back_in_order_with_their_values() {
        let b = encode_v3(&packet(b"OPTIONS sip:x SIP/2.0\r\n\r\n"), false).unwrap();
        assert_eq!(&b[..4], b"HEP3");
        assert_eq!(u16::from_be_bytes([b[4], b[5]]) as usize, b.len());
        let c = decode_v3(&b).unwrap();
        let kinds: Vec<u16> = c.iter().map(|c| c.0).collect();
        assert_eq!(kinds, [1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 17, 15]);
        assert_eq!(c[0].1, [2]);
        assert_eq!(c[2].1, [192, 0, 2, 1]);
        assert_eq!(c[4].1, 5060u16.to_be_bytes());
        assert_eq!(c[7].1, 123_456u32.to_be_bytes());
        assert_eq!(c[9].1, 7u32.to_be_bytes());
        assert_eq!(c[10].1, b"cid");
        assert_eq!(c[11].1, b"OPTIONS sip:x SIP/2.0\r\n\r\n");
    }

    #[test]
    fn v2_has_its_fixed_head() {
        let b = encode_v2(&packet(b"x"), 2).unwrap();
        assert_eq!(&b[..4], [2, 16, 2, 17]);
        assert_eq!(&b[4..8], [0x13, 0xc4, 0x13, 0xd8]);
        assert_eq!(b.len(), 8 + 8 + 12 + 1);
        let v1 = encode_v2(&packet(b"x"), 1).unwrap();
        assert_eq!(v1.len(), 8 + 8 + 1);
    }

    #[test]
    fn mixed_families_and_garbage_are_refused() {
        let mut p = packet(b"x");
        p.dst = "[::1]:5060".parse().unwrap();
        assert!(encode_v3(&p, false).is_none());
        assert!(decode_v3(b"HEP3\x00\x0a\x00\x00\x00\x01\x00\x02").is_none());
        assert!(decode_v3(b"HEP").is_none());
    }
}
