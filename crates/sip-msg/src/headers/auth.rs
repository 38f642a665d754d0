//! Authorization, Proxy-Authorization, WWW-Authenticate,
//! Proxy-Authenticate and Authentication-Info values.

use crate::error::{bad, ParseError};
use crate::params::Params;
use crate::scan::{is_token, trim_lws, unquote};
use std::borrow::Cow;

/// `Digest username="bob", realm="biloxi.com", ...` (credentials or a
/// challenge: the same shape).
#[derive(Debug, Clone, Copy)]
pub struct AuthValue<'a> {
    /// The scheme, usually `Digest`.
    pub scheme: &'a str,
    /// The comma-separated auth-params as written.
    pub params: &'a str,
}

impl<'a> AuthValue<'a> {
    /// Parses a credentials or challenge value.
    pub fn parse(s: &'a str, header: &'static str) -> Result<AuthValue<'a>, ParseError> {
        let s = trim_lws(s);
        let (scheme, params) = match s.find([' ', '\t', '\r', '\n']) {
            Some(i) => (&s[..i], trim_lws(&s[i..])),
            None => (s, ""),
        };
        if !is_token(scheme) {
            return Err(bad(header, "invalid scheme"));
        }
        for p in Params::with_separator(params, b',') {
            if !is_token(p.name) {
                return Err(bad(header, "invalid parameter"));
            }
        }
        Ok(AuthValue { scheme, params })
    }

    /// Whether the scheme is Digest.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    /// A parameter's value with quotes removed, by name (case-insensitive).
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        Params::with_separator(self.params, b',')
            .get(name)
            .flatten()
            .map(unquote)
    }

    /// A parameter's value exactly as written (quotes kept).
    pub fn get_raw(&self, name: &str) -> Option<&'a str> {
        Params::with_separator(self.params, b',')
            .get(name)
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_digest_credentials() {
        let a = AuthValue::parse(
            "Digest username=\"bob\", realm=\"biloxi.com\",\r\n nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
            "Authorization",
        )
        .unwrap();
        assert!(a.is_digest());
        assert_eq!(a.get("username").unwrap(), "bob");
        assert_eq!(a.get("QOP").unwrap(), "auth");
        assert_eq!(a.get("nc").unwrap(), "00000001");
        assert_eq!(a.get_raw("realm"), Some("\"biloxi.com\""));
        assert!(a.get("algorithm").is_none());
        assert!(AuthValue::parse("Di(gest x=1", "Authorization").is_err());
    }
}
