//! The Via header (RFC 3261 20.42, RFC 3581 rport).

use crate::error::{bad, ParseError};
use crate::params::{next_item, Param, Params};
use crate::scan::{find_byte, trim_lws};
use crate::uri::{parse_host, split_host_port, Host};
use crate::uri_scan::fast_hostport;

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
    /// `branch`, `received`, `rport` and `maddr` as found in `params` when
    /// parsed.
    pub known: KnownParams<'a>,
}

/// The Via parameters a proxy reads for every message, found in one pass
/// over the parameters when the Via is parsed: `None` absent, `Some(None)`
/// present without a value. The first of a repeated name counts, as in
/// [`Params::get`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnownParams<'a> {
    /// `branch`.
    pub branch: Option<Option<&'a str>>,
    /// `received`.
    pub received: Option<Option<&'a str>>,
    /// `rport`.
    pub rport: Option<Option<&'a str>>,
    /// `maddr`.
    pub maddr: Option<Option<&'a str>>,
}

impl<'a> KnownParams<'a> {
    /// Looks for them in a parameter list (after the first `;`), in the
    /// same pass checking that no parameter is empty: `;;` or `; ;` (RFC
    /// 3261's grammar has none; RFC 4475 3.1.2.1 expects a 400). `None`
    /// when one is; one `;` at the very end is let through, as many
    /// parsers do. Items are split as in every other parameter list
    /// (quoted strings and angle brackets, neither legal in a Via, keep
    /// their `;`).
    pub fn find(params: &'a str) -> Option<KnownParams<'a>> {
        let mut k = KnownParams::default();
        let mut s = params;
        while let Some((item, more)) = next_item(&mut s, b';') {
            let Some(Param { name, value }) = Param::of_item(item) else {
                if more {
                    return None;
                }
                continue;
            };
            let slot = if name.eq_ignore_ascii_case("branch") {
                &mut k.branch
            } else if name.eq_ignore_ascii_case("received") {
                &mut k.received
            } else if name.eq_ignore_ascii_case("rport") {
                &mut k.rport
            } else if name.eq_ignore_ascii_case("maddr") {
                &mut k.maddr
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        Some(k)
    }
}

fn e(what: &'static str) -> ParseError {
    bad("Via", what)
}

impl<'a> Via<'a> {
    /// Parses one via-parm (one element of a comma-separated Via value).
    pub fn parse(s: &'a str) -> Result<Via<'a>, ParseError> {
        let raw = trim_lws(s);
        let rb = raw.as_bytes();
        // The usual `SIP/2.0/TRANSPORT ` read directly: the same result as
        // the general path below, which also allows white space around
        // the slashes.
        if rb.len() > 8 && rb[..8].eq_ignore_ascii_case(b"SIP/2.0/") {
            let mut i = 8;
            while i < rb.len() && !matches!(rb[i], b'/' | b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
            }
            if i > 8 && i < rb.len() && rb[i] != b'/' {
                return Self::parse_sent_by(raw, &raw[..7], &raw[8..i], &raw[i..]);
            }
        }
        let (proto_part, rest) = split_sent_protocol(raw)?;
        // `proto_part` holds exactly two slashes (see `split_sent_protocol`).
        let pb = proto_part.as_bytes();
        let s1 = pb
            .iter()
            .position(|&c| c == b'/')
            .ok_or(e("no protocol version"))?;
        let s2 = pb[s1 + 1..]
            .iter()
            .position(|&c| c == b'/')
            .map(|k| s1 + 1 + k)
            .ok_or(e("no transport"))?;
        let name = trim_lws(&proto_part[..s1]);
        let version = trim_lws(&proto_part[s1 + 1..s2]);
        let transport = trim_lws(&proto_part[s2 + 1..]);
        if name.is_empty() || version.is_empty() || transport.is_empty() {
            return Err(e("incomplete sent-protocol"));
        }
        let protocol = trim_lws(&proto_part[..s2]);
        Self::parse_sent_by(raw, protocol, transport, rest)
    }

    /// The sent-by and parameters (`rest`, after the sent-protocol).
    fn parse_sent_by(
        raw: &'a str,
        protocol: &'a str,
        transport: &'a str,
        rest: &'a str,
    ) -> Result<Via<'a>, ParseError> {
        let rest = trim_lws(rest);
        let (sent_by, params, fast) = match fast_hostport(rest.as_bytes()) {
            // The usual `host[:port]`, up to the first `;`, checked in one
            // pass.
            Some((host_end, v4, port, end))
                if rest.as_bytes().get(end).is_none_or(|&c| c == b';') =>
            {
                let h = &rest[..host_end];
                let fast = (h, v4.map_or(Host::Name(h), Host::V4), port);
                (&rest[..end], rest.get(end + 1..).unwrap_or(""), Some(fast))
            }
            _ => match find_byte(rest, b';') {
                Some(i) => (trim_lws(&rest[..i]), &rest[i + 1..], None),
                None => (rest, "", None),
            },
        };
        if sent_by.is_empty() {
            return Err(e("no sent-by"));
        }
        let known = KnownParams::find(params).ok_or(e("empty parameter"))?;
        let (host_str, host, port) = match fast {
            Some(hp) => hp,
            None => {
                let (host_str, port) = split_sent_by(sent_by)?;
                let host = parse_host(host_str).map_err(|_| e("invalid sent-by host"))?;
                (host_str, host, port)
            }
        };
        Ok(Via {
            raw,
            protocol,
            transport,
            host_str,
            host,
            port,
            params,
            known,
        })
    }

    /// A parameter by name; `Some(None)` when present without a value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        Params::new(self.params).get(name)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.known.branch.flatten()
    }

    /// Whether the branch starts with the RFC 3261 magic cookie and has
    /// something after it (a bare cookie identifies no transaction, RFC
    /// 4475 3.2.1).
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.known.received.flatten()
    }

    /// The `received` parameter as an address: an IPv4 or IPv6 address,
    /// the latter with or without brackets (RFC 3261's grammar has none,
    /// RFC 5118 4.5 asks for both to be accepted). `None` when absent or
    /// not an address.
    pub fn received_ip(&self) -> Option<std::net::IpAddr> {
        let r = self.received()?.trim();
        if r.starts_with('[') {
            return parse_host(r).ok()?.ip();
        }
        match r.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => crate::uri::parse_ipv6(r).map(std::net::IpAddr::V6),
        }
    }

    /// The `rport` parameter: `None` absent, `Some(None)` present without a
    /// value (a request asking for it), `Some(Some(p))` filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.known.rport.map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.known.maddr.flatten()
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

/// Splits a sent-by into host and port: `host [ COLON port ]`, where RFC
/// 3261's COLON allows white space on both sides (`host : 5060`).
fn split_sent_by(s: &str) -> Result<(&str, Option<u16>), ParseError> {
    // The colon before the port: the last one, or the first after the `]`
    // of an IPv6 reference.
    let colon = match s.bytes().rposition(|b| b == b']') {
        Some(close) => s[close..].find(':').map(|c| close + c),
        None => s.bytes().rposition(|b| b == b':'),
    };
    if let Some(c) = colon {
        if s[..c].ends_with(is_lws_char) || s[c + 1..].starts_with(is_lws_char) {
            let (host, port) = (trim_lws(&s[..c]), trim_lws(&s[c + 1..]));
            let port_ok =
                !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
            let host_ok = !host.bytes().any(|b| is_lws_char(b as char))
                && matches!(split_host_port(host), Ok((_, None)))
                && parse_host(host).is_ok();
            if let (true, true, Ok(p)) = (port_ok, host_ok, port.parse::<u16>()) {
                return Ok((host, Some(p)));
            }
        }
    }
    // Anything else is judged (and its fault named) as before.
    split_host_port(s).map_err(|_| e("invalid sent-by"))
}

fn is_lws_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
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
    fn known_params_are_found_once_and_agree_with_a_lookup() {
        for params in [
            "branch=z9hG4bK1;rport",
            "RPORT=5070;Branch=z9hG4bKa;received=10.0.0.9",
            "branch=first;branch=second;rport=;received",
            "x=\"a;rport=1\";rport=2",
            "ttl=3;maddr=h",
            "",
        ] {
            let k = KnownParams::find(params).expect("no empty parameter");
            let get = |name| Params::new(params).get(name);
            assert_eq!(k.branch, get("branch"), "{params}");
            assert_eq!(k.received, get("received"), "{params}");
            assert_eq!(k.rport, get("rport"), "{params}");
            assert_eq!(k.maddr, get("maddr"), "{params}");
        }
        let v = Via::parse("SIP/2.0/UDP h;branch=z9hG4bKx;rport=7;received=1.2.3.4").unwrap();
        assert_eq!(v.branch(), Some("z9hG4bKx"));
        assert_eq!(v.rport(), Some(Some(7)));
        assert_eq!(v.received(), Some("1.2.3.4"));
        let v = Via::parse("SIP/2.0/UDP h;rport").unwrap();
        assert_eq!(
            (v.branch(), v.rport(), v.received()),
            (None, Some(None), None)
        );
    }

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

    /// RFC 3261 25.1: `COLON = SWS ":" SWS`, so a sent-by may have white
    /// space around the colon before the port.
    #[test]
    fn white_space_around_the_sent_by_colon() {
        for s in [
            "SIP/2.0/UDP host : 5060;branch=z9hG4bK1",
            "SIP/2.0/UDP host:\t5060 ;branch=z9hG4bK1",
            "SIP/2.0/UDP host :5060;branch=z9hG4bK1",
        ] {
            let v = Via::parse(s).unwrap_or_else(|err| panic!("{s}: {err}"));
            assert_eq!((v.host_str, v.port), ("host", Some(5060)), "{s}");
            assert_eq!(v.branch(), Some("z9hG4bK1"));
        }
        let v = Via::parse("SIP/2.0/TCP [2001:db8::9] : 5061").unwrap();
        assert_eq!(v.host, Host::V6("2001:db8::9".parse().unwrap()));
        assert_eq!(v.port, Some(5061));
        let v = Via::parse("SIP/2.0/UDP 192.0.2.1 : 5062").unwrap();
        assert_eq!(v.host, Host::V4([192, 0, 2, 1].into()));
        for bad in [
            "SIP/2.0/UDP host : ",
            "SIP/2.0/UDP host : 99999",
            "SIP/2.0/UDP host : 50 60",
            "SIP/2.0/UDP a:b : 5060",
            "SIP/2.0/UDP : 5060",
            "SIP/2.0/UDP host : +506",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
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
            "SIP/2.0/UDP h;;",
            "SIP/2.0/UDP h;branch=z9hG4bK1;;rport",
            "SIP/2.0/UDP h;branch=z9hG4bK1; ;rport",
        ] {
            assert!(Via::parse(s).is_err(), "{s}");
        }
    }

    /// The byte-by-byte check the single pass of `KnownParams::find`
    /// replaced, kept as its reference.
    fn has_empty_param_bytewise(params: &str) -> bool {
        let b = params.as_bytes();
        if find_byte(params, b'"').is_none() {
            // The usual case, without quoted values: look only where each
            // item starts (the list's start and after each `;`).
            let mut start = 0;
            loop {
                let mut i = start;
                while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
                    i += 1;
                }
                if b.get(i) == Some(&b';') {
                    return true;
                }
                match find_byte(&params[i..], b';') {
                    Some(k) => start = i + k + 1,
                    None => return false,
                }
            }
        }
        let mut i = 0;
        let mut quoted = false;
        let mut item_start = true;
        while i < b.len() {
            let c = b[i];
            if quoted {
                match c {
                    b'\\' => i += 1,
                    b'"' => quoted = false,
                    _ => {}
                }
            } else if c == b';' {
                if item_start {
                    return true;
                }
                item_start = true;
            } else if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                item_start = false;
                quoted = c == b'"';
            }
            i += 1;
        }
        false
    }
    #[test]
    fn the_single_pass_finds_empty_parameters_where_the_bytewise_check_did() {
        let mut lists: Vec<String> = [
            "",
            ";",
            ";;",
            " ; ",
            "a",
            "a;",
            "a;;",
            "a; ;b",
            ";a",
            " ;a",
            "a;b;",
            "a=\"x;;y\";b",
            "a=\"x\";;b",
            "a=\"x\\\";;\";b",
            "a=\"open;;",
            "branch=z9hG4bK1;rport;received=1.2.3.4",
            "branch=z9hG4bK1; \t;rport",
            "a=1 ; b=2 ;",
            "a=1;\r\n ;b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every list of up to five bytes from an alphabet of the bytes
        // that matter.
        let alphabet = [b';', b' ', b'"', b'\\', b'a', b'='];
        for n in 1..=5u32 {
            for mut code in 0..(alphabet.len() as u32).pow(n) {
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(alphabet[(code % alphabet.len() as u32) as usize]);
                    code /= alphabet.len() as u32;
                }
                lists.push(String::from_utf8(v).unwrap());
            }
        }
        for params in &lists {
            assert_eq!(
                KnownParams::find(params).is_none(),
                has_empty_param_bytewise(params),
                "{params:?}"
            );
        }
    }

    #[test]
    fn empty_parameters_are_refused_but_a_last_semicolon_is_not() {
        assert!(Via::parse("SIP/2.0/UDP h;branch=z9hG4bK1;").is_ok());
        assert!(Via::parse("SIP/2.0/UDP h;").is_ok());
        // Semicolons inside a quoted value are not separators.
        let v = Via::parse("SIP/2.0/UDP h;x=\";;\";branch=z9hG4bK2").unwrap();
        assert_eq!(v.branch(), Some("z9hG4bK2"));
        // With a quoted value (the general scan) too.
        assert!(Via::parse("SIP/2.0/UDP h;x=\"a\";;branch=z9hG4bK4").is_err());
        assert!(Via::parse("SIP/2.0/UDP h;x=\"a\";branch=z9hG4bK4;").is_ok());
        let err = Via::parse("SIP/2.0/UDP h;;branch=z9hG4bK3").unwrap_err();
        assert!(err.to_string().contains("empty parameter"), "{err}");
    }
}
