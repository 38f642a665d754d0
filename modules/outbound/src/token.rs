//! Flow tokens (RFC 5626 §5.2), in Kamailio's layout so that a token is
//! the same whichever of the two made it with the same secret:
//!
//! ```text
//! HMAC-SHA1-80 | proto | dst ip | dst port | src ip | src port
//!      10      |   1   |  4/16  |    2     |  4/16  |    2
//! ```
//!
//! `proto` is Kamailio's transport number (UDP 1, TCP 2, TLS 3, SCTP 4,
//! WS 5, WSS 6) with bit 7 set for IPv6; ports are big-endian; the HMAC
//! (SHA-1, keyed with the module's 20-byte key) covers everything after
//! it and is truncated to its last 10 bytes. The whole is base64
//! (standard alphabet, padded): 32 characters for IPv4, 64 for IPv6.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;
use sr_sdk::Proto;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Length of the truncated HMAC at the start of a token.
const MAC_LEN: usize = 10;
/// Decoded length of an IPv4 token.
const V4_LEN: usize = MAC_LEN + 1 + 2 * (4 + 2);
/// Decoded length of an IPv6 token.
const V6_LEN: usize = MAC_LEN + 1 + 2 * (16 + 2);

/// A flow: the connection or address pair a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Transport.
    pub proto: Proto,
    /// Our local address it arrived on.
    pub dst: SocketAddr,
    /// The peer's address.
    pub src: SocketAddr,
}

/// Why a string is not a usable flow token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token at all (empty, not base64, or of another length):
    /// Kamailio's -2, "outbound not in use".
    NotToken,
    /// The right shape but the HMAC does not match (tampered, or made
    /// with another key): Kamailio's -1.
    Invalid,
}

/// The key a secret gives (Kamailio: SHA-1 of `flow_token_secret`).
pub fn key_from_secret(secret: &str) -> [u8; 20] {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let mut k = [0u8; 20];
    k.copy_from_slice(d.as_ref());
    k
}

/// A random key (no `flow_token_secret`: tokens last as long as the
/// process).
pub fn random_key() -> [u8; 20] {
    use ring::rand::SecureRandom;
    let mut k = [0u8; 20];
    // SystemRandom reads the kernel's generator; it does not fail on Linux.
    if ring::rand::SystemRandom::new().fill(&mut k).is_err() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        k = key_from_secret(&format!("{seed}:{}", std::process::id()));
    }
    k
}

fn mac(key: &[u8; 20], data: &[u8]) -> [u8; MAC_LEN] {
    let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&k, data);
    let full = tag.as_ref();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[full.len() - MAC_LEN..]);
    out
}

fn push_addr(out: &mut Vec<u8>, a: SocketAddr, v6: bool) {
    match a.ip() {
        IpAddr::V4(ip) if !v6 => out.extend_from_slice(&ip.octets()),
        IpAddr::V4(ip) => out.extend_from_slice(&ip.to_ipv6_mapped().octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

/// The token of `flow`.
pub fn encode(key: &[u8; 20], flow: &Flow) -> String {
    // Both addresses share the family bit: a flow is IPv4 or IPv6 as a
    // whole (a dual-stack socket's IPv4-mapped peer counts as IPv6).
    let v6 = flow.dst.is_ipv6() || flow.src.is_ipv6();
    let mut raw = Vec::with_capacity(V6_LEN);
    raw.extend_from_slice(&[0u8; MAC_LEN]);
    raw.push(if v6 { 0x80 } else { 0 } | flow.proto.number());
    push_addr(&mut raw, flow.dst, v6);
    push_addr(&mut raw, flow.src, v6);
    let m = mac(key, &raw[MAC_LEN..]);
    raw[..MAC_LEN].copy_from_slice(&m);
    STANDARD.encode(&raw)
}

fn read_addr(b: &[u8], v6: bool) -> SocketAddr {
    let n = if v6 { 16 } else { 4 };
    let ip = if v6 {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[..16]);
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    };
    SocketAddr::new(ip, u16::from_be_bytes([b[n], b[n + 1]]))
}

/// The flow a token names, after checking its HMAC.
pub fn decode(key: &[u8; 20], token: &str) -> Result<Flow, TokenError> {
    if token.is_empty() || token.len() > 128 {
        return Err(TokenError::NotToken);
    }
    let raw = STANDARD
        .decode(token.as_bytes())
        .map_err(|_| TokenError::NotToken)?;
    if raw.len() != V4_LEN && raw.len() != V6_LEN {
        return Err(TokenError::NotToken);
    }
    let m = mac(key, &raw[MAC_LEN..]);
    // Compared without an early exit, so that the time taken says
    // nothing about how much of a forged MAC was right.
    if m.iter()
        .zip(&raw[..MAC_LEN])
        .fold(0u8, |d, (a, b)| d | (a ^ b))
        != 0
    {
        return Err(TokenError::Invalid);
    }
    let head = raw[MAC_LEN];
    let v6 = head & 0x80 != 0;
    if v6 != (raw.len() == V6_LEN) {
        return Err(TokenError::Invalid);
    }
    let proto = Proto::from_number(head & 0x7f).ok_or(TokenError::Invalid)?;
    let n = if v6 { 18 } else { 6 };
    let dst = read_addr(&raw[MAC_LEN + 1..], v6);
    let src = read_addr(&raw[MAC_LEN + 1 + n..], v6);
    Ok(Flow { proto, dst, src })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(proto: Proto, dst: &str, src: &str) -> Flow {
        Flow {
            proto,
            dst: dst.parse().unwrap(),
            src: src.parse().unwrap(),
        }
    }

    #[test]
    fn a_token_decodes_to_its_flow() {
        let k = key_from_secret("s3cret");
        for f in [
            flow(Proto::Udp, "127.0.0.1:5060", "10.1.2.3:40000"),
            flow(Proto::Tcp, "192.0.2.1:5060", "198.51.100.7:1"),
            flow(Proto::Wss, "[2001:db8::1]:443", "[2001:db8::2]:65535"),
        ] {
            let t = encode(&k, &f);
            assert_eq!(t.len(), if f.dst.is_ipv6() { 64 } else { 32 }, "{t}");
            assert_eq!(decode(&k, &t), Ok(f));
        }
    }

    #[test]
    fn the_layout_is_kamailios() {
        let k = key_from_secret("x");
        let f = flow(Proto::Tcp, "1.2.3.4:5060", "5.6.7.8:258");
        let raw = STANDARD.decode(encode(&k, &f)).unwrap();
        assert_eq!(&raw[10..], &[2, 1, 2, 3, 4, 0x13, 0xc4, 5, 6, 7, 8, 1, 2]);
        assert_eq!(&raw[..10], &mac(&k, &raw[10..]));
        // SHA-1 of the secret is the key.
        assert_eq!(
            key_from_secret("abc")[..4],
            [0xa9, 0x99, 0x3e, 0x36],
            "SHA-1(\"abc\") starts a9993e36"
        );
    }

    #[test]
    fn tampered_foreign_and_odd_tokens_are_told_apart() {
        let k = key_from_secret("one");
        let t = encode(&k, &flow(Proto::Udp, "127.0.0.1:5060", "127.0.0.1:5999"));
        assert_eq!(
            decode(&key_from_secret("two"), &t),
            Err(TokenError::Invalid)
        );
        let mut raw = STANDARD.decode(&t).unwrap();
        raw[20] ^= 1;
        assert_eq!(decode(&k, &STANDARD.encode(&raw)), Err(TokenError::Invalid));
        for odd in ["", "alice", "not base64!", "QUJD", &"A".repeat(200)] {
            assert_eq!(decode(&k, odd), Err(TokenError::NotToken), "{odd}");
        }
        // Right length, unknown transport number: invalid, not a panic.
        let mut raw = vec![0u8; V4_LEN];
        raw[MAC_LEN] = 9;
        let m = mac(&k, &raw[MAC_LEN..]);
        raw[..MAC_LEN].copy_from_slice(&m);
        assert_eq!(decode(&k, &STANDARD.encode(&raw)), Err(TokenError::Invalid));
    }
}
