//! Content-Type and Event values (a token or type/subtype with params).

use crate::error::{bad, ParseError};
use crate::params::Params;
use crate::scan::{is_token, trim_lws};

/// `type/subtype;params`, as in Content-Type and Accept.
#[derive(Debug, Clone, Copy)]
pub struct MediaType<'a> {
    /// Top-level type, e.g. `application`.
    pub mtype: &'a str,
    /// Subtype, e.g. `sdp`.
    pub subtype: &'a str,
    /// Parameters (without the first `;`).
    pub params: &'a str,
}

impl<'a> MediaType<'a> {
    /// Parses a media type.
    pub fn parse(s: &'a str) -> Result<MediaType<'a>, ParseError> {
        let s = trim_lws(s);
        let (ty, params) = match s.find(';') {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (s, ""),
        };
        let (m, sub) = ty
            .split_once('/')
            .ok_or(bad("Content-Type", "no subtype"))?;
        let (m, sub) = (trim_lws(m), trim_lws(sub));
        if !is_token(m) || !is_token(sub) {
            return Err(bad("Content-Type", "invalid media type"));
        }
        Ok(MediaType {
            mtype: m,
            subtype: sub,
            params,
        })
    }

    /// Whether this is `type/subtype` (case-insensitive).
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// A parameter by name.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        Params::new(self.params).get(name)
    }
}

/// `Event: presence;id=1` (RFC 6665).
#[derive(Debug, Clone, Copy)]
pub struct EventValue<'a> {
    /// The event package (with template, e.g. `presence.winfo`).
    pub package: &'a str,
    /// Parameters (without the first `;`).
    pub params: &'a str,
}

impl<'a> EventValue<'a> {
    /// Parses an Event value.
    pub fn parse(s: &'a str) -> Result<EventValue<'a>, ParseError> {
        let s = trim_lws(s);
        let (pkg, params) = match s.find(';') {
            Some(i) => (trim_lws(&s[..i]), &s[i + 1..]),
            None => (s, ""),
        };
        if !is_token(pkg) {
            return Err(bad("Event", "invalid event package"));
        }
        Ok(EventValue {
            package: pkg,
            params,
        })
    }

    /// The `id` parameter.
    pub fn id(&self) -> Option<&'a str> {
        Params::new(self.params).get("id").flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_and_event() {
        let m = MediaType::parse("application/SDP ; charset=utf-8").unwrap();
        assert!(m.is("application", "sdp"));
        assert_eq!(m.param("charset"), Some(Some("utf-8")));
        assert!(MediaType::parse("text").is_err());
        let e = EventValue::parse("presence;id=7").unwrap();
        assert_eq!(e.package, "presence");
        assert_eq!(e.id(), Some("7"));
        assert!(EventValue::parse("").is_err());
    }
}
