//! Authorization, Proxy-Authorization, WWW-Authenticate,
//! Proxy-Authenticate and Authentication-Info values.

use crate::error::{bad, ParseError};
use crate::params::{Param, STOP_COMMA as STOP};
use crate::scan::{find_byte, is_token, trim_lws, unquote};
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
        Self::parse_into(s, header, |_| {})
    }

    /// [`AuthValue::parse`] that also gives the parameters split (the
    /// same as [`AuthValue::split`] after it, in the one pass the checks
    /// make anyway).
    pub fn parse_split(
        s: &'a str,
        header: &'static str,
    ) -> Result<(AuthValue<'a>, AuthParams<'a>), ParseError> {
        let mut items = Vec::with_capacity(12);
        let v = Self::parse_into(s, header, |p| items.push((p.name, p.value)))?;
        Ok((v, AuthParams { items }))
    }

    /// Parses, handing each parameter that passed its check to `each`.
    fn parse_into(
        s: &'a str,
        header: &'static str,
        mut each: impl FnMut(Param<'a>),
    ) -> Result<AuthValue<'a>, ParseError> {
        let s = trim_lws(s);
        let (scheme, params) = match s.find([' ', '\t', '\r', '\n']) {
            Some(i) => (&s[..i], trim_lws(&s[i..])),
            None => (s, ""),
        };
        if !is_token(scheme) {
            return Err(bad(header, "invalid scheme"));
        }
        for p in AuthItems::new(params) {
            if !is_token(p.name) {
                return Err(bad(header, "invalid parameter"));
            }
            // (RFC 2617: `name=` takes a token or a quoted string.)
            if p.value.is_some_and(|v| v.trim().is_empty()) {
                return Err(bad(header, "parameter without a value"));
            }
            each(p);
        }
        Ok(AuthValue { scheme, params })
    }

    /// Whether the scheme is Digest.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    /// A parameter's value with quotes removed, by name (case-insensitive).
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get_raw(name).map(unquote)
    }

    /// A parameter's value exactly as written (quotes kept).
    pub fn get_raw(&self, name: &str) -> Option<&'a str> {
        AuthItems::new(self.params)
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| p.value)
    }

    /// The parameters split once, for reading several of them: each
    /// [`get`](AuthValue::get) scans the list from the start (quoted values
    /// included), which for the ten or so a digest check reads cost more
    /// than the rest of the check.
    pub fn split(&self) -> AuthParams<'a> {
        let mut items = Vec::with_capacity(12);
        items.extend(AuthItems::new(self.params).map(|p| (p.name, p.value)));
        AuthParams { items }
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

/// The items of a comma-separated auth-param list, split as
/// [`Params`](crate::params::Params) with `,` splits them (commas inside
/// quoted strings and `<...>` do not count, an unterminated quoted string
/// runs to the end, items are trimmed, empty ones skipped, a name ends at
/// the item's first `=`), in one pass over the bytes: quoted values,
/// most of a digest header's length, are skipped with one `memchr2`
/// each instead of being searched for each of the separator, the quote and
/// the angle brackets in turn.
struct AuthItems<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> AuthItems<'a> {
    fn new(s: &'a str) -> Self {
        AuthItems { s, at: 0 }
    }

    /// The end of the current item (where its separator is, or the end
    /// of the list) and its first `=` outside quotes, if one comes before
    /// any quote (else the item is searched for it again).
    #[inline(always)]
    fn item_end(&self) -> (usize, Option<usize>, bool) {
        let b = self.s.as_bytes();
        let (mut i, mut eq, mut quote_first, mut angle) = (self.at, None, false, 0u32);
        loop {
            while i < b.len() && !STOP[b[i] as usize] {
                i += 1;
            }
            let Some(&c) = b.get(i) else {
                return (b.len(), eq, quote_first);
            };
            match c {
                b',' if angle == 0 => return (i, eq, quote_first),
                b'=' if eq.is_none() && !quote_first => eq = Some(i),
                b'"' => {
                    quote_first |= eq.is_none();
                    // Skip the quoted string, backslash escapes included;
                    // one left open takes the rest of the list.
                    let mut j = i + 1;
                    loop {
                        match memchr::memchr2(b'"', b'\\', b.get(j..).unwrap_or(&[])) {
                            None => return (b.len(), eq, quote_first),
                            Some(k) if b[j + k] == b'"' => {
                                i = j + k;
                                break;
                            }
                            Some(k) => j += k + 2,
                        }
                    }
                }
                b'<' => angle += 1,
                b'>' => angle = angle.saturating_sub(1),
                _ => {} // a comma inside `<...>`, or a later `=`
            }
            i += 1;
        }
    }
}

impl<'a> Iterator for AuthItems<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        while self.at < self.s.len() {
            let start = self.at;
            let (end, eq, quote_first) = self.item_end();
            self.at = end + 1;
            let eq = if quote_first {
                find_byte(&self.s[start..end], b'=').map(|e| start + e)
            } else {
                eq
            };
            match eq {
                Some(e) => {
                    return Some(Param {
                        name: trim_lws(&self.s[start..e]),
                        value: Some(trim_lws(&self.s[e + 1..end])),
                    })
                }
                None => {
                    let name = trim_lws(&self.s[start..end]);
                    if !name.is_empty() {
                        return Some(Param { name, value: None });
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    /// The one-pass split agrees with the general parameter iterator on
    /// every list of up to six bytes from those that matter (separator,
    /// `=`, quote, backslash, angle brackets, white space, a letter), and
    /// on digest headers as clients write them.
    #[test]
    fn auth_items_split_as_params_split() {
        let alphabet = [b',', b'=', b'"', b'\\', b'<', b'>', b' ', b'a'];
        let mut lists: Vec<String> = vec![
            "username=\"bob\", realm=\"biloxi.com\",\r\n nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\"".into(),
            "a=\"x,\\\",y\" , b = <c,d> ,, e".into(),
            "\"q=1\"=2, x=\"un,terminated".into(),
        ];
        for len in 0..=6u32 {
            for n in 0..alphabet.len().pow(len) {
                let (mut k, mut s) = (n, String::new());
                for _ in 0..len {
                    s.push(alphabet[k % alphabet.len()] as char);
                    k /= alphabet.len();
                }
                lists.push(s);
            }
        }
        for list in &lists {
            let want: Vec<_> = Params::with_separator(list, b',').collect();
            let got: Vec<_> = AuthItems::new(list).collect();
            assert_eq!(got, want, "{list:?}");
        }
    }

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
        let (b, t) = AuthValue::parse_split(
            "Digest username=\"bob\", realm=\"biloxi.com\",\r\n nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
            "Authorization",
        )
        .unwrap();
        assert_eq!((b.scheme, b.params), (a.scheme, a.params));
        assert_eq!(t.items, s.items);
        assert!(AuthValue::parse_split("Digest a=1, b c", "Authorization").is_err());
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
