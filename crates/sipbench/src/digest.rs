//! HTTP digest authentication as SIP uses it (RFC 2617, RFC 3261 22.4,
//! RFC 8760 for SHA-256): reading a challenge and writing credentials.

use md5::{Digest as _, Md5};
use sha2::Sha256;
use sip_msg::headers::AuthValue;
use std::fmt::Write as _;

/// The digest algorithm of a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` (the default).
    Md5,
    /// `SHA-256`.
    Sha256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex of the hash of `parts` joined by `:`.
    pub fn hash_hex(self, parts: &[&str]) -> String {
        fn run<D: sha2::Digest>(mut d: D, parts: &[&str]) -> String {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p.as_bytes());
            }
            let mut s = String::with_capacity(64);
            for b in d.finalize() {
                let _ = write!(s, "{b:02x}");
            }
            s
        }
        match self {
            Algorithm::Md5 => run(Md5::new(), parts),
            Algorithm::Sha256 => run(Sha256::new(), parts),
        }
    }
}

/// A Digest challenge from WWW-Authenticate or Proxy-Authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`
    pub realm: String,
    /// `nonce`
    pub nonce: String,
    /// `opaque`, echoed back.
    pub opaque: Option<String>,
    /// Whether `qop` offers `auth`.
    pub qop_auth: bool,
    /// `algorithm`
    pub algorithm: Algorithm,
}

impl Challenge {
    /// Reads a challenge value; `None` when it is not a usable Digest one.
    pub fn parse(value: &str) -> Option<Challenge> {
        let v = AuthValue::parse(value, "WWW-Authenticate").ok()?;
        if !v.is_digest() {
            return None;
        }
        let algorithm = match v.get("algorithm").as_deref() {
            None => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            Some(_) => return None,
        };
        Some(Challenge {
            realm: v.get("realm")?.into_owned(),
            nonce: v.get("nonce")?.into_owned(),
            opaque: v.get("opaque").map(|o| o.into_owned()),
            qop_auth: v
                .get("qop")
                .is_some_and(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth"))),
            algorithm,
        })
    }
}

/// The request-digest (`response=`) for the given inputs; `qop` is
/// `Some((nc, cnonce))` when qop=auth is used.
#[allow(clippy::too_many_arguments)] // the inputs of RFC 2617 3.2.2, one by one
pub fn response(
    alg: Algorithm,
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = alg.hash_hex(&[user, realm, password]);
    let ha2 = alg.hash_hex(&[method, uri]);
    match qop {
        Some((nc, cnonce)) => alg.hash_hex(&[&ha1, nonce, nc, cnonce, "auth", &ha2]),
        None => alg.hash_hex(&[&ha1, nonce, &ha2]),
    }
}

/// The credentials value answering `ch` (without the header name).
pub fn credentials(
    ch: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let nc = "00000001";
    let qop = ch.qop_auth.then_some((nc, cnonce));
    let resp = response(
        ch.algorithm,
        user,
        &ch.realm,
        password,
        method,
        uri,
        &ch.nonce,
        qop,
    );
    let mut s = format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{resp}\", algorithm={}",
        ch.realm,
        ch.nonce,
        ch.algorithm.name()
    );
    if ch.qop_auth {
        let _ = write!(s, ", qop=auth, nc={nc}, cnonce=\"{cnonce}\"");
    }
    if let Some(o) = &ch.opaque {
        let _ = write!(s, ", opaque=\"{o}\"");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // The worked example of RFC 2617 section 3.5.
        let r = response(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn without_qop_and_sha256() {
        let a = Algorithm::Md5;
        let ha1 = a.hash_hex(&["u1", "r", "p"]);
        let ha2 = a.hash_hex(&["REGISTER", "sip:127.0.0.1"]);
        assert_eq!(
            response(a, "u1", "r", "p", "REGISTER", "sip:127.0.0.1", "n", None),
            a.hash_hex(&[&ha1, "n", &ha2])
        );
        assert_eq!(
            Algorithm::Sha256.hash_hex(&["abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn challenge_to_credentials() {
        let ch = Challenge::parse(
            "Digest realm=\"127.0.0.1\", nonce=\"abc\", qop=\"auth,auth-int\", opaque=\"o1\"",
        )
        .unwrap();
        assert!(ch.qop_auth);
        assert_eq!(ch.algorithm, Algorithm::Md5);
        let c = credentials(&ch, "user7", "pass7", "REGISTER", "sip:127.0.0.1", "cn");
        assert!(c.starts_with("Digest username=\"user7\", realm=\"127.0.0.1\", nonce=\"abc\", uri=\"sip:127.0.0.1\", response=\""), "{c}");
        assert!(
            c.ends_with(", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"cn\", opaque=\"o1\""),
            "{c}"
        );
        assert!(Challenge::parse("Basic realm=\"x\"").is_none());
        assert!(Challenge::parse("Digest realm=\"x\"").is_none());
        assert!(Challenge::parse("Digest realm=\"x\", nonce=\"y\", algorithm=MD5-sess").is_none());
    }
}
