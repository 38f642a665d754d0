//! The Via header (RFC 3261 20.42, RFC 3581 rport).

use crate::error::{bad, ParseError};
use crate::params::Params;
use crate::scan::{find_byte, trim_lws};
use crate::uri::{parse_host, split_host_port, Host};

/// The RFC 3261 branch magic cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One via-parm: `SIP/2.0/UDP host:port;params`.
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    /// The whole value as written.
    pub raw: &'a str,
    /// Protocol name and version, e.g. `SIP/2.0` (white space removed only
    /// at the ends).
    pub protocol: &'a str,
    /// Transport, e.g. `UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP`.
    pub transport: &'a str,
    /// The sent-by host as written.
    pub host_str: &'a str,
    /// The sent-by host, parsed.
    pub host: Host<'a>,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// The parameters after the first `;` (without it).
    pub params: &'a str,
}

fn e(what: &'static str) -> ParseError {
    bad("Via", what)
}

impl<'a> Via<'a> {
    /// Parses one via-parm (one element of a comma-separated Via value).
    pub fn parse(s: &'a str) -> Result<Via<'a>, ParseError> {
        let raw = trim_lws(s);
        let (proto_part, rest) = split_sent_protocol(raw)?;
        let mut it = proto_part.splitn(3, '/');
        let name = trim_lws(it.next().unwrap_or(""));
        let version = trim_lws(it.next().ok_or(e("no protocol version"))?);
        let transport = trim_lws(it.next().ok_or(e("no transport"))?);
        if name.is_empty() || version.is_empty() || transport.is_empty() {
            return Err(e("incomplete sent-protocol"));
        }
        let protocol = &proto_part[..memchr::memrchr(b'/', proto_part.as_bytes()).unwrap_or(0)];
        let rest = trim_lws(rest);
        let (sent_by, params) = match find_byte(rest, b';') {
            Some(i) => (trim_lws(&rest[..i]), &rest[i + 1..]),
            None => (rest, ""),
        };
        if sent_by.is_empty() {
            return Err(e("no sent-by"));
        }
        let (host_str, port) = split_host_port(sent_by).map_err(|_| e("invalid sent-by"))?;
        let host = parse_host(host_str).map_err(|_| e("invalid sent-by host"))?;
        Ok(Via {
            raw,
            protocol: trim_lws(protocol),
            transport,
            host_str,
            host,
            port,
            params,
        })
    }

    /// A parameter by name; `Some(None)` when present without a value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        Params::new(self.params).get(name)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch").flatten()
    }

    /// Whether the branch starts with the RFC 3261 magic cookie.
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.param("received").flatten()
    }

    /// The `rport` parameter: `None` absent, `Some(None)` present without a
    /// value (a request asking for it), `Some(Some(p))` filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.param("maddr").flatten()
    }

    /// The `ttl` parameter.
    pub fn ttl(&self) -> Option<u8> {
        self.param("ttl").flatten().and_then(|t| t.parse().ok())
    }

    /// The `alias` parameter (RFC 5923).
    pub fn alias(&self) -> bool {
        self.param("alias").is_some()
    }

    /// Whether the transport is a reliable (stream) one.
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case("UDP")
    }

    /// The port replies go to when `rport`/`received` do not say otherwise.
    pub fn default_port(&self) -> u16 {
        if self.transport.eq_ignore_ascii_case("TLS") || self.transport.eq_ignore_ascii_case("WSS")
        {
            5061
        } else {
            5060
        }
    }
}

/// Splits `SIP / 2.0 / UDP host...` after the transport token, allowing
/// white space around the slashes.
fn split_sent_protocol(s: &str) -> Result<(&str, &str), ParseError> {
    let b = s.as_bytes();
    let mut slashes = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' => slashes += 1,
            b' ' | b'\t' | b'\r' | b'\n' if slashes == 2 => {
                // White space after the second slash but before the
                // transport token is allowed; after the token it ends it.
                let before = trim_lws(&s[s[..i].rfind('/').unwrap_or(0) + 1..i]);
                if !before.is_empty() {
                    return Ok((&s[..i], &s[i..]));
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(e("no sent-by after the transport"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_params() {
        let v = Via::parse(
            "SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK776;received=10.0.0.1;rport=5070;maddr=224.2.0.1;ttl=16;alias",
        )
        .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.protocol, "SIP/2.0");
        assert_eq!(v.port, Some(5062));
        assert_eq!(v.branch(), Some("z9hG4bK776"));
        assert!(v.is_rfc3261_branch());
        assert_eq!(v.received(), Some("10.0.0.1"));
        assert_eq!(v.rport(), Some(Some(5070)));
        assert_eq!(v.maddr(), Some("224.2.0.1"));
        assert_eq!(v.ttl(), Some(16));
        assert!(v.alias());
    }

    #[test]
    fn odd_whitespace_and_ipv6() {
        let v =
            Via::parse("SIP / 2.0 / TCP   [2001:db8::9]:5060 ; branch = z9hG4bKx ; rport").unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, Host::V6("2001:db8::9".parse().unwrap()));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.branch(), Some("z9hG4bKx"));
        assert!(v.is_reliable());
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "SIP/2.0",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ;branch=x",
            "junk host",
            "SIP/2.0/UDP h:99999",
        ] {
            assert!(Via::parse(s).is_err(), "{s}");
        }
    }
}
