//! STUN Binding requests and their answers, without I/O, as Kamailio's
//! stun module reads and writes them: a Binding request gets a success
//! answer with the sender's address (XOR-MAPPED-ADDRESS, or
//! MAPPED-ADDRESS for an RFC 3489 request without the magic cookie) and
//! a SOFTWARE attribute (RFC 5389 requests only); another message type
//! gets error 600, a body of the wrong length or a cut attribute 400, and
//! unknown comprehension-required attributes 420 with their list.

use std::net::SocketAddr;

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_RESPONSE: u16 = 0x0101;
const BINDING_ERROR_RESPONSE: u16 = 0x0111;
const MAGIC_COOKIE: u32 = 0x2112_a442;

const MAPPED_ADDRESS: u16 = 0x0001;
const ERROR_CODE: u16 = 0x0009;
const UNKNOWN_ATTRIBUTES: u16 = 0x000a;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const SOFTWARE: u16 = 0x8022;
const FINGERPRINT: u16 = 0x8028;

/// The reason phrase Kamailio writes for an error code.
fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        420 => "Unknown Attribute",
        600 => "Global Failure",
        _ => "Server Error",
    }
}

/// What reading the request found.
enum Outcome {
    Ok,
    Error(u16, Vec<[u8; 2]>),
}

/// Reads the attributes after the header (Kamailio's walk: the body must
/// be exactly the length the header gives; padding counted for the text
/// attributes and MESSAGE-INTEGRITY; FINGERPRINT must be last).
fn read_body(buf: &[u8], len: usize) -> Outcome {
    let body = &buf[20..];
    if body.len() != len {
        return Outcome::Error(400, Vec::new());
    }
    let mut unknown = Vec::new();
    let mut at = 0;
    while at < body.len() {
        if body.len() - at < 4 {
            return Outcome::Error(400, Vec::new());
        }
        let ty = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        at += 4;
        let left = body.len() - at;
        if left < alen {
            return Outcome::Error(400, Vec::new());
        }
        let padded = match ty {
            0x0014 | 0x0015 | 0x0001 | 0x0020 | 0x8023 | 0x0002 | 0x0004 | 0x000b | 0x0003
            | 0x0005 => alen,
            0x0006 | 0x0009 | 0x000a | 0x8022 => (alen + 3) & !3,
            0x0008 => (alen + 63) & !63,
            FINGERPRINT => {
                if left > 20 {
                    return Outcome::Error(400, Vec::new());
                }
                20
            }
            _ => {
                if ty <= 0x7fff {
                    unknown.push([body[at - 4], body[at - 3]]);
                }
                alen
            }
        };
        if left < padded {
            break;
        }
        at += padded;
    }
    if unknown.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Error(420, unknown)
    }
}

fn attr(out: &mut Vec<u8>, ty: u16, value: &[u8], len: usize) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// Text padded with zeros to four bytes.
fn padded(text: &[u8]) -> Vec<u8> {
    let mut v = text.to_vec();
    v.resize((text.len() + 3) & !3, 0);
    v
}

fn address(out: &mut Vec<u8>, from: SocketAddr, xor: bool, id: &[u8]) {
    let mut v = Vec::with_capacity(20);
    let port = if xor {
        from.port() ^ 0x2112
    } else {
        from.port()
    };
    match from {
        SocketAddr::V4(a) => {
            v.extend_from_slice(&1u16.to_be_bytes());
            v.extend_from_slice(&port.to_be_bytes());
            let mut ip = a.ip().octets();
            if xor {
                for (b, k) in ip.iter_mut().zip(MAGIC_COOKIE.to_be_bytes()) {
                    *b ^= k;
                }
            }
            v.extend_from_slice(&ip);
        }
        SocketAddr::V6(a) => {
            v.extend_from_slice(&2u16.to_be_bytes());
            v.extend_from_slice(&port.to_be_bytes());
            let mut ip = a.ip().octets();
            if xor {
                for (b, k) in ip.iter_mut().zip(id) {
                    *b ^= k;
                }
            }
            v.extend_from_slice(&ip);
        }
    }
    let ty = if xor {
        XOR_MAPPED_ADDRESS
    } else {
        MAPPED_ADDRESS
    };
    let n = v.len();
    attr(out, ty, &v, n);
}

/// The answer to `buf` received from `from`, or `None` when there is no
/// header to answer (fewer than 20 bytes, such as a 4-byte keep-alive) or
/// it is a response.
/// `software` is the SOFTWARE attribute's text.
pub fn answer(buf: &[u8], from: SocketAddr, software: &str) -> Option<Vec<u8>> {
    if buf.len() < 20 {
        return None;
    }
    let ty = u16::from_be_bytes([buf[0], buf[1]]);
    if ty & 0x0100 != 0 {
        // A response (success or error class) is never answered, as
        // Kamailio's (two servers would answer each other's errors).
        return None;
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    // The cookie and transaction id, as they came.
    let id = &buf[4..20];
    let old = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC_COOKIE;
    let outcome = if ty == BINDING_REQUEST {
        read_body(buf, len)
    } else {
        Outcome::Error(600, Vec::new())
    };
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(id);
    match outcome {
        Outcome::Ok => {
            out[..2].copy_from_slice(&BINDING_RESPONSE.to_be_bytes());
            address(&mut out, from, !old, id);
        }
        Outcome::Error(code, unknown) => {
            out[..2].copy_from_slice(&BINDING_ERROR_RESPONSE.to_be_bytes());
            let text = reason(code).as_bytes();
            let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
            v.extend_from_slice(&padded(text));
            attr(&mut out, ERROR_CODE, &v, 4 + text.len());
            if !unknown.is_empty() {
                let mut v: Vec<u8> = unknown.iter().flatten().copied().collect();
                let n = v.len();
                // An odd count: one repeated to fill the four bytes
                // (RFC 3489's rule), outside the length.
                if unknown.len() % 2 == 1 {
                    v.extend_from_slice(&unknown[0]);
                }
                attr(&mut out, UNKNOWN_ATTRIBUTES, &v, n);
            }
        }
    }
    if !old {
        attr(
            &mut out,
            SOFTWARE,
            &padded(software.as_bytes()),
            software.len(),
        );
    }
    let body = (out.len() - 20) as u16;
    out[2..4].copy_from_slice(&body.to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    fn request(ty: u16, cookie: bool, attrs: &[u8]) -> Vec<u8> {
        let mut v = ty.to_be_bytes().to_vec();
        v.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        if cookie {
            v.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        } else {
            v.extend_from_slice(&[9, 9, 9, 9]);
        }
        v.extend_from_slice(&TID);
        v.extend_from_slice(attrs);
        v
    }

    fn from() -> SocketAddr {
        "192.0.2.1:32853".parse().unwrap()
    }

    #[test]
    fn binding_gets_the_xor_mapped_address() {
        let a = answer(&request(1, true, &[]), from(), "Server: x").unwrap();
        assert_eq!(&a[..2], &[0x01, 0x01]);
        assert_eq!(
            &a[4..20],
            &request(1, true, &[])[4..20],
            "same cookie and id"
        );
        // RFC 5769's sample: 192.0.2.1:32853 XORed.
        assert_eq!(
            &a[20..32],
            &[0, 0x20, 0, 8, 0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43]
        );
        assert_eq!(&a[32..36], &[0x80, 0x22, 0, 9]);
        assert_eq!(&a[36..48], b"Server: x\0\0\0");
        assert_eq!(u16::from_be_bytes([a[2], a[3]]) as usize, a.len() - 20);
    }

    #[test]
    fn an_old_request_gets_the_plain_address_and_no_software() {
        let a = answer(&request(1, false, &[]), from(), "S").unwrap();
        assert_eq!(&a[20..32], &[0, 1, 0, 8, 0, 1, 0x80, 0x55, 192, 0, 2, 1]);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn ipv6_is_xored_with_cookie_and_id() {
        let from6: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        let a = answer(&request(1, true, &[]), from6, "S").unwrap();
        assert_eq!(&a[20..24], &[0, 0x20, 0, 20]);
        let mut ip = [0u8; 16];
        for (i, b) in ip.iter_mut().enumerate() {
            *b = a[28 + i] ^ a[4 + i];
        }
        assert_eq!(
            std::net::Ipv6Addr::from(ip),
            "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap()
        );
    }

    /// Arbitrary datagrams (a fixed pseudo-random sequence, half of them
    /// with a Binding header whose length matches): never a panic, and an
    /// answer is always a whole STUN message with the request's id.
    #[test]
    fn arbitrary_datagrams_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..50_000 {
            let len = (next() % 120) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && b.len() >= 20 {
                b[0] = 0;
                b[1] = 1;
                let body = (b.len() - 20) as u16;
                b[2..4].copy_from_slice(&body.to_be_bytes());
                b[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            }
            if let Some(a) = answer(&b, from(), "S") {
                assert!(a.len() >= 20 && a.len() % 4 == 0, "{b:02x?}");
                assert_eq!(usize::from(u16::from_be_bytes([a[2], a[3]])), a.len() - 20);
                assert_eq!(&a[4..20], &b[4..20]);
            }
        }
    }

    #[test]
    fn errors() {
        let a = answer(&request(0x0011, true, &[]), from(), "S").unwrap();
        assert_eq!(&a[..2], &[0x01, 0x11]);
        assert_eq!(&a[20..28], &[0, 9, 0, 18, 0, 0, 6, 0]);
        assert_eq!(&a[28..42], b"Global Failure");
        let mut short = request(1, true, &[]);
        short[3] = 8;
        let a = answer(&short, from(), "S").unwrap();
        assert_eq!(&a[24..28], &[0, 0, 4, 0]);
        let unk = [
            0x00, 0x31, 0, 0, 0x00, 0x32, 0, 0, 0x00, 0x33, 0, 0, 0xc0, 0x57, 0, 0,
        ];
        let a = answer(&request(1, true, &unk), from(), "S").unwrap();
        assert_eq!(&a[24..28], &[0, 0, 4, 20]);
        let at = 20 + 4 + 4 + 20;
        assert_eq!(&a[at..at + 4], &[0, 0x0a, 0, 6]);
        assert_eq!(&a[at + 4..at + 12], &[0, 0x31, 0, 0x32, 0, 0x33, 0, 0x31]);
        assert!(answer(&[0, 0, 0, 0], from(), "S").is_none());
        assert!(answer(&request(0x0101, true, &[]), from(), "S").is_none());
        assert!(answer(&request(0x0111, true, &[]), from(), "S").is_none());
    }
}
