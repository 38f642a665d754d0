//! Digest arithmetic (RFC 2617, RFC 7616, RFC 8760): HA1, HA2 and the
//! response, with MD5, SHA-256 and SHA-512/256; HMAC-SHA-256 for nonces;
//! constant-time comparison.

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// MD5 (RFC 2617; the default).
    Md5,
    /// SHA-256 (RFC 7616, RFC 8760).
    Sha256,
    /// SHA-512/256 (RFC 7616, RFC 8760).
    Sha512_256,
}

impl Alg {
    /// Parses an `algorithm` value (case-insensitive). `-sess` variants
    /// are not supported.
    pub fn parse(s: &str) -> Option<Alg> {
        let s = s.trim();
        [Alg::Md5, Alg::Sha256, Alg::Sha512_256]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// The name written in challenges.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Md5 => "MD5",
            Alg::Sha256 => "SHA-256",
            Alg::Sha512_256 => "SHA-512-256",
        }
    }

    /// Length of a hash in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            Alg::Md5 => 32,
            _ => 64,
        }
    }

    /// The lower-case hex hash of the parts joined by `:`.
    pub fn hash(self, parts: &[&str]) -> String {
        self.hash_hex(parts).as_str().to_string()
    }

    /// [`Alg::hash`] into a buffer on the stack.
    pub fn hash_hex(self, parts: &[&str]) -> Hex {
        fn run<D: Digest>(parts: &[&str]) -> Hex {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p.as_bytes());
            }
            Hex::of(&d.finalize())
        }
        match self {
            Alg::Md5 => run::<Md5>(parts),
            Alg::Sha256 => run::<Sha256>(parts),
            Alg::Sha512_256 => run::<Sha512_256>(parts),
        }
    }
}

/// Lower-case hex of up to 64 bytes, held on the stack.
#[derive(Clone, Copy)]
pub struct Hex {
    buf: [u8; 128],
    len: usize,
}

impl Hex {
    /// The hex of `b` (at most 64 bytes are taken).
    pub fn of(b: &[u8]) -> Hex {
        let mut h = Hex {
            buf: [0; 128],
            len: 0,
        };
        for &x in b.iter().take(64) {
            h.buf[h.len..h.len + 2].copy_from_slice(&hex_pair(x));
            h.len += 2;
        }
        h
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and letters are written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Debug for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two lower-case hex digits of a byte.
fn hex_pair(x: u8) -> [u8; 2] {
    const H: &[u8; 16] = b"0123456789abcdef";
    [H[(x >> 4) as usize], H[(x & 15) as usize]]
}

/// Lower-case hex (any length; see [`Hex`] for up to 64 bytes on the
/// stack).
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    sr_sdk::sip_msg::text::push_hex(&mut s, b);
    s
}

/// HA1 = H(username:realm:password).
pub fn ha1(alg: Alg, user: &str, realm: &str, password: &str) -> String {
    alg.hash(&[user, realm, password])
}

/// The fields of credentials the response covers.
#[derive(Debug, Clone, Default)]
pub struct ResponseInput<'a> {
    /// Nonce.
    pub nonce: &'a str,
    /// Nonce count (with qop).
    pub nc: &'a str,
    /// Client nonce (with qop).
    pub cnonce: &'a str,
    /// `auth`, or empty for RFC 2069 style.
    pub qop: &'a str,
    /// Request method.
    pub method: &'a str,
    /// The digest-uri.
    pub uri: &'a str,
}

/// The expected response for a HA1.
pub fn response(alg: Alg, ha1: &str, r: &ResponseInput<'_>) -> String {
    response_hex(alg, ha1, r).as_str().to_string()
}

/// [`response`] into a buffer on the stack.
pub fn response_hex(alg: Alg, ha1: &str, r: &ResponseInput<'_>) -> Hex {
    let ha2 = alg.hash_hex(&[r.method, r.uri]);
    if r.qop.is_empty() {
        alg.hash_hex(&[ha1, r.nonce, ha2.as_str()])
    } else {
        alg.hash_hex(&[ha1, r.nonce, r.nc, r.cnonce, r.qop, ha2.as_str()])
    }
}

/// Compares two byte strings, `b`'s ASCII letters taken in lower case
/// (`a` is lower-case hex), in time that depends only on their lengths.
pub fn ct_eq_lower(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | (x ^ y.to_ascii_lowercase()))
        == 0
}

/// HMAC-SHA-256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    HmacKey::new(key).mac(msg)
}

/// An HMAC-SHA-256 key with its padded blocks already hashed: a mac of a
/// short message then costs two SHA-256 blocks instead of four.
#[derive(Clone)]
pub struct HmacKey {
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey")
    }
}

impl HmacKey {
    /// Prepares `key`.
    pub fn new(key: &[u8]) -> HmacKey {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(k.map(|b| b ^ 0x36));
        let mut outer = Sha256::new();
        outer.update(k.map(|b| b ^ 0x5c));
        HmacKey { inner, outer }
    }

    /// The mac of `msg`.
    pub fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(msg);
        let ih = inner.finalize();
        let mut outer = self.outer.clone();
        outer.update(ih);
        outer.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // RFC 2617 section 3.5: Mufasa / "Circle Of Life".
        let h = ha1(Alg::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
        let r = response(
            Alg::Md5,
            &h,
            &ResponseInput {
                nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                nc: "00000001",
                cnonce: "0a4f113b",
                qop: "auth",
                method: "GET",
                uri: "/dir/index.html",
            },
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_examples() {
        // RFC 7616 section 3.9.1: the same user, MD5 and SHA-256.
        let inp = ResponseInput {
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            nc: "00000001",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            qop: "auth",
            method: "GET",
            uri: "/dir/index.html",
        };
        let md5 = ha1(
            Alg::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            response(Alg::Md5, &md5, &inp),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        let sha = ha1(
            Alg::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            response(Alg::Sha256, &sha, &inp),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn hmac_rfc4231_case2() {
        let m = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&m),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A prepared key gives the same mac each time it is used.
        let k = HmacKey::new(b"Jefe");
        assert_eq!(k.mac(b"what do ya want for nothing?"), m);
        assert_eq!(k.mac(b"what do ya want for nothing?"), m);
    }

    #[test]
    fn hmac_rfc4231_case6_key_longer_than_a_block() {
        let m = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&m),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn misc() {
        assert!(ct_eq_lower(b"abc", b"abc"));
        assert!(!ct_eq_lower(b"abc", b"abd"));
        assert!(!ct_eq_lower(b"abc", b"ab"));
        assert!(ct_eq_lower(b"0af", b"0AF"));
        assert!(ct_eq_lower(b"0af", b"0af"));
        assert!(!ct_eq_lower(b"0af", b"0ag"));
        assert!(!ct_eq_lower(b"0af", b"0a"));
        assert_eq!(Alg::parse(" md5 "), Some(Alg::Md5));
        assert_eq!(Alg::parse("SHA-512-256"), Some(Alg::Sha512_256));
        assert_eq!(Alg::parse("SHA256"), None);
        assert_eq!(
            Hex::of(&[0x00, 0xab, 0xff]).as_str(),
            "00abff",
            "and the stack hex agrees with the String one"
        );
        assert_eq!(Hex::of(&[7; 64]).as_str(), hex(&[7; 64]));
        assert_eq!(Alg::parse("sha-256"), Some(Alg::Sha256));
        assert_eq!(Alg::parse("MD5-sess"), None);
        assert_eq!(Alg::Sha512_256.hash(&["a"]).len(), 64);
        // RFC 2069 style (no qop).
        let h = ha1(Alg::Md5, "u", "r", "p");
        let r = response(
            Alg::Md5,
            &h,
            &ResponseInput {
                nonce: "n",
                method: "REGISTER",
                uri: "sip:r",
                ..Default::default()
            },
        );
        let ha2 = Alg::Md5.hash(&["REGISTER", "sip:r"]);
        assert_eq!(r, Alg::Md5.hash(&[&h, "n", &ha2]));
    }
}
