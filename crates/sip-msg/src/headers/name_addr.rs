//! name-addr / addr-spec values: From, To, Contact, Route, Record-Route,
//! Path, Refer-To, P-Asserted-Identity...

use crate::error::{bad, ParseError};
use crate::params::Params;
use crate::scan::{find_byte, trim_lws, unquote};
use crate::uri::Uri;
use std::borrow::Cow;

/// `[display-name] <URI> *(;param)` or `URI *(;param)`.
///
/// Without angle brackets, parameters after the URI belong to the header,
/// not to the URI (RFC 3261 20.10).
#[derive(Debug, Clone, Copy)]
pub struct NameAddr<'a> {
    /// The whole value as written.
    pub raw: &'a str,
    /// Display name as written (quotes kept), if any.
    pub display: Option<&'a str>,
    /// The URI text (without angle brackets).
    pub uri_str: &'a str,
    /// The URI, parsed.
    pub uri: Uri<'a>,
    /// Header parameters after the URI (without the first `;`).
    pub params: &'a str,
    /// Whether the URI was inside angle brackets.
    pub bracketed: bool,
}

impl<'a> NameAddr<'a> {
    /// Parses one value. `header` names the header for error messages.
    pub fn parse(s: &'a str, header: &'static str) -> Result<NameAddr<'a>, ParseError> {
        let raw = trim_lws(s);
        if raw.is_empty() {
            return Err(bad(header, "empty value"));
        }
        let (display, rest) = if raw.starts_with('"') {
            let end = closing_quote(raw).ok_or(bad(header, "unterminated display name"))?;
            (Some(&raw[..=end]), trim_lws(&raw[end + 1..]))
        } else {
            match find_laquot(raw) {
                Some(lt) => {
                    // An unquoted display name may hold characters the
                    // grammar does not allow (RFC 4475 3.1.2.15's comma):
                    // taken as written, as Kamailio does (list headers are
                    // split before they get here).
                    let d = trim_lws(&raw[..lt]);
                    (if d.is_empty() { None } else { Some(d) }, &raw[lt..])
                }
                None => (None, raw),
            }
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let gt = find_byte(inner, b'>').ok_or(bad(header, "missing '>'"))?;
            let uri_str = trim_lws(&inner[..gt]);
            let after = trim_lws(&inner[gt + 1..]);
            let params = match after.strip_prefix(';') {
                Some(p) => p,
                None if after.is_empty() => "",
                None => return Err(bad(header, "junk after '>'")),
            };
            let uri = Uri::parse(uri_str).map_err(|_| bad(header, "invalid URI"))?;
            return Ok(NameAddr {
                raw,
                display,
                uri_str,
                uri,
                params,
                bracketed: true,
            });
        }
        if display.is_some() {
            return Err(bad(header, "display name without '<URI>'"));
        }
        let (uri_str, params) = match find_byte(rest, b';') {
            Some(i) => (trim_lws(&rest[..i]), &rest[i + 1..]),
            None => (rest, ""),
        };
        if uri_str.bytes().any(|b| b == b' ' || b == b'\t') {
            return Err(bad(header, "white space in URI"));
        }
        let uri = Uri::parse(uri_str).map_err(|_| bad(header, "invalid URI"))?;
        Ok(NameAddr {
            raw,
            display: None,
            uri_str,
            uri,
            params,
            bracketed: false,
        })
    }

    /// A header parameter by name; `Some(None)` when it has no value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        Params::new(self.params).get(name)
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").flatten()
    }

    /// The display name with quotes and escapes removed.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display.map(unquote)
    }

    /// The `expires` parameter (Contact).
    pub fn expires(&self) -> Option<u32> {
        self.param("expires").flatten().and_then(|v| v.parse().ok())
    }

    /// The `q` parameter (Contact) in thousandths: `q=0.5` is 500. `None`
    /// when absent or not a valid qvalue.
    pub fn q(&self) -> Option<u16> {
        self.param("q").flatten().and_then(parse_qvalue)
    }
}

/// Parses an RFC 3261 qvalue into thousandths (0..=1000).
pub fn parse_qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut f = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        f += (b - b'0') as u16 * [100, 10, 1][i];
    }
    let v = whole + f;
    (v <= 1000).then_some(v)
}

/// Index of the first `<` outside quoted strings: a header parameter of an
/// addr-spec may have a quoted value holding `<` (`sip:a@b;x="<"`).
fn find_laquot(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < b.len() {
        match (quoted, b[i]) {
            (true, b'\\') => i += 1,
            (_, b'"') => quoted = !quoted,
            (false, b'<') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the quote closing a quoted string that starts at 0.
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i] == b'"' {
            return Some(i);
        }
        i += 2;
    }
}

/// One Contact value: `*` or a name-addr.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::large_enum_variant)] // borrowed views, short-lived, never stored in bulk
pub enum ContactValue<'a> {
    /// `Contact: *` (remove all bindings, with Expires: 0).
    Star,
    /// A contact address.
    Addr(NameAddr<'a>),
}

impl<'a> ContactValue<'a> {
    /// Parses one Contact value.
    pub fn parse(s: &'a str) -> Result<ContactValue<'a>, ParseError> {
        if trim_lws(s) == "*" {
            Ok(ContactValue::Star)
        } else {
            NameAddr::parse(s, "Contact").map(ContactValue::Addr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_display_with_escapes() {
        let n = NameAddr::parse(
            r#""Bob \"the\" <Builder>" <sip:bob@biloxi.com>;tag=a6c85cf"#,
            "From",
        )
        .unwrap();
        assert_eq!(n.display_name().unwrap(), r#"Bob "the" <Builder>"#);
        assert_eq!(n.uri.user, Some("bob"));
        assert_eq!(n.tag(), Some("a6c85cf"));
    }

    #[test]
    fn unquoted_display_names_are_taken_as_written() {
        let n = NameAddr::parse("Doe, Jane <sip:jane@example.com>;tag=1", "To").unwrap();
        assert_eq!(n.display, Some("Doe, Jane"));
        assert_eq!(n.tag(), Some("1"));
        let n = NameAddr::parse(r#""Doe, Jane" <sip:jane@example.com>"#, "To").unwrap();
        assert_eq!(n.display_name().unwrap(), "Doe, Jane");
        let n = NameAddr::parse("J.Doe@home <sip:jane@example.com>", "To").unwrap();
        assert_eq!(n.display, Some("J.Doe@home"));
    }

    #[test]
    fn unquoted_display_and_addr_spec_params() {
        let n = NameAddr::parse(
            "Anonymous  Caller <sip:c8oqz84zk7z@privacy.org>;tag=hyh8",
            "From",
        )
        .unwrap();
        assert_eq!(n.display, Some("Anonymous  Caller"));
        let n = NameAddr::parse("sip:alice@atlanta.com;tag=1928301774", "From").unwrap();
        assert_eq!(n.uri.params, "");
        assert_eq!(n.tag(), Some("1928301774"));
        assert!(!n.bracketed);
        let n = NameAddr::parse(
            "<sip:alice@atlanta.com;transport=tcp>;expires=60;q=0.7",
            "Contact",
        )
        .unwrap();
        assert_eq!(n.uri.transport(), Some("tcp"));
        assert_eq!(n.expires(), Some(60));
        assert_eq!(n.q(), Some(700));
    }

    #[test]
    fn rejects_broken() {
        for s in [
            "",
            "\"open <sip:a@b>",
            "<sip:a@b",
            "Name sip:a@b",
            "<sip:a@b> junk",
            "<nouri>",
        ] {
            assert!(NameAddr::parse(s, "To").is_err(), "{s}");
        }
    }

    /// Found by the round-trip property test: a `<` inside a quoted
    /// parameter value of an addr-spec was taken for the start of
    /// `<URI>`.
    #[test]
    fn angle_bracket_inside_quoted_param_of_addr_spec() {
        let n = NameAddr::parse(r#"sip:a@b;x="<";tag=1"#, "To").unwrap();
        assert!(!n.bracketed);
        assert_eq!(n.uri.host_str, "b");
        assert_eq!(n.param("x"), Some(Some(r#""<""#)));
        assert_eq!(n.tag(), Some("1"));
        let n = NameAddr::parse(r#""a<b" <sip:c@d>;y="<>""#, "To").unwrap();
        assert_eq!(n.uri.host_str, "d");
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue("2"), None);
    }

    #[test]
    fn star_contact() {
        assert!(matches!(
            ContactValue::parse(" * ").unwrap(),
            ContactValue::Star
        ));
    }
}
