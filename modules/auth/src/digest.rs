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
        match s.trim().to_ascii_uppercase().as_str() {
            "MD5" => Some(Alg::Md5),
            "SHA-256" => Some(Alg::Sha256),
            "SHA-512-256" => Some(Alg::Sha512_256),
            _ => None,
        }
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
        fn run<D: Digest>(parts: &[&str]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p.as_bytes());
            }
            hex(&d.finalize())
        }
        match self {
            Alg::Md5 => run::<Md5>(parts),
            Alg::Sha256 => run::<Sha256>(parts),
            Alg::Sha512_256 => run::<Sha512_256>(parts),
        }
    }
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
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
    let ha2 = alg.hash(&[r.method, r.uri]);
    if r.qop.is_empty() {
        alg.hash(&[ha1, r.nonce, &ha2])
    } else {
        alg.hash(&[ha1, r.nonce, r.nc, r.cnonce, r.qop, &ha2])
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA-256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let ih = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(ih);
    outer.finalize().into()
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
    }

    #[test]
    fn misc() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
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
