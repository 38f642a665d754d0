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
            // (RFC 2617: `name=` takes a token or a quoted string.)
            if p.value.is_some_and(|v| v.trim().is_empty()) {
                return Err(bad(header, "parameter without a value"));
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

    /// The parameters split once, for reading several of them: each
    /// [`get`](AuthValue::get) scans the list from the start (quoted values
    /// included), which for the ten or so a digest check reads cost more
    /// than the rest of the check.
    pub fn split(&self) -> AuthParams<'a> {
        AuthParams {
            items: Params::with_separator(self.params, b',')
                .map(|p| (p.name, p.value))
                .collect(),
        }
    }
}

/// The auth-params of an [`AuthValue`], split (see [`AuthValue::split`]).
#[derive(Debug, Clone)]
pub struct AuthParams<'a> {
    items: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> AuthParams<'a> {
    /// As [`AuthValue::get`]: the first parameter of that name
    /// (case-insensitive), quotes removed.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get_raw(name).map(unquote)
    }

    /// As [`AuthValue::get_raw`]: the value as written.
    pub fn get_raw(&self, name: &str) -> Option<&'a str> {
        self.items
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_value_is_refused() {
        assert!(AuthValue::parse("Digest username=", "Authorization").is_err());
        assert!(
            AuthValue::parse("Digest realm=\"a\", nonce= ,uri=\"x\"", "Authorization").is_err()
        );
        assert!(AuthValue::parse("Digest realm=\"\"", "Authorization").is_ok());
    }

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
        let s = a.split();
        for name in [
            "username",
            "REALM",
            "nonce",
            "uri",
            "qop",
            "nc",
            "cnonce",
            "response",
            "opaque",
            "algorithm",
            "x",
        ] {
            assert_eq!(s.get(name), a.get(name), "{name}");
            assert_eq!(s.get_raw(name), a.get_raw(name), "{name}");
        }
        // The first of a repeated name wins, as with `get`.
        let d = AuthValue::parse("Digest a=1, b, A=2", "Authorization").unwrap();
        assert_eq!(
            (d.split().get_raw("a"), d.split().get_raw("b")),
            (Some("1"), None)
        );
        assert_eq!(d.get_raw("a"), Some("1"));
        assert!(AuthValue::parse("Di(gest x=1", "Authorization").is_err());
    }
}
