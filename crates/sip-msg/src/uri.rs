//! URIs: `sip:`, `sips:`, `tel:` and any other absolute URI kept opaque.
//!
//! Parsing borrows from the input. [`Uri::rfc_eq`] compares two URIs as
//! RFC 3261 section 19.1.4 says (escapes decoded, host case-insensitive,
//! the special parameters compared when present in either, ...).

use crate::error::ParseError;
use crate::params::Params;
use crate::uri_scan::{fast_hostport, scan_rest, RestScan};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The scheme of a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other absolute URI (`mailto:`, `urn:`, ...), kept opaque.
    Other,
}

/// The host part of a SIP URI or Via.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A host name, as written.
    Name(&'a str),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference (written in brackets).
    V6(Ipv6Addr),
}

impl Host<'_> {
    /// The IP address, if the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(a)),
            Host::V6(a) => Some(IpAddr::V6(a)),
        }
    }

    /// Compares hosts as RFC 3261 does: names case-insensitively, addresses
    /// by value (so `[::1]` equals `[0:0::1]`).
    pub fn eq_host(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a.ip().is_some() && a.ip() == b.ip(),
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed URI borrowing from its text.
///
/// For `tel:` URIs the number is in [`Uri::user`] and the host is empty, as
/// Kamailio presents them. For other schemes only [`Uri::opaque`] is set.
#[derive(Debug, Clone, Copy)]
pub struct Uri<'a> {
    /// The whole URI as written.
    pub raw: &'a str,
    /// The scheme.
    pub scheme: Scheme,
    /// User part (still %-escaped), if any.
    pub user: Option<&'a str>,
    /// Password, if any (deprecated but legal).
    pub password: Option<&'a str>,
    /// Host as written (brackets included for IPv6; empty for tel/other).
    pub host_str: &'a str,
    /// Parsed host.
    pub host: Host<'a>,
    /// Explicit port.
    pub port: Option<u16>,
    /// Parameters after the first `;` (without that `;`), or empty.
    pub params: &'a str,
    /// Headers after `?`, if any.
    pub headers: Option<&'a str>,
    /// Everything after `scheme:`.
    pub opaque: &'a str,
}

fn bad(what: &'static str) -> ParseError {
    ParseError::BadUri(what)
}

/// Whether `b` may appear in a scheme (`ALPHA *( ALPHA / DIGIT / "+" /
/// "-" / "." )`).
#[inline]
fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// Host bytes: 1 for digits and dots (could be IPv4), 2 for the other
/// host-name bytes, 0 for anything else.
static HOST_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_digit() || b == b'.' {
            1
        } else if b.is_ascii_alphabetic() || b == b'-' || b == b'_' {
            2
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Parses a host (name, IPv4 or bracketed IPv6).
pub fn parse_host(s: &str) -> Result<Host<'_>, ParseError> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or(bad("unclosed IPv6 reference"))?;
        return parse_ipv6(inner)
            .map(Host::V6)
            .ok_or(bad("invalid IPv6 address"));
    }
    if s.is_empty() {
        return Err(bad("empty host"));
    }
    // One pass: is every byte a host-name byte, and are they all digits
    // or dots (an IPv4 address)?
    let mut numeric = true;
    for &c in s.as_bytes() {
        match HOST_CLASS[c as usize] {
            1 => {}
            2 => numeric = false,
            _ => return Err(bad("invalid character in host")),
        }
    }
    if numeric {
        return s
            .parse::<Ipv4Addr>()
            .map(Host::V4)
            .map_err(|_| bad("invalid IPv4 address"));
    }
    Ok(Host::Name(s))
}

/// Parses an IPv6 address (without brackets). Besides RFC 4291's forms it
/// takes the one RFC 3261's grammar (inherited from RFC 2373) adds, three
/// colons before an embedded IPv4 address (`2001:db8:::192.0.2.1`), which
/// RFC 5118 4.10 asks implementations to tolerate; it is the same address
/// as with two colons.
pub fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Some(a);
    }
    // `hexpart` ending in `::` (or being `::`), then `:` IPv4address: the
    // `:::` is the last colons of the text, and only dots follow.
    let at = s.find(":::")?;
    let tail = &s[at + 3..];
    if tail.contains(':') || !tail.contains('.') || s[..at].contains("::") {
        return None;
    }
    let mut two = String::with_capacity(s.len() - 1);
    two.push_str(&s[..at]);
    two.push_str("::");
    two.push_str(tail);
    two.parse::<Ipv6Addr>().ok()
}

/// Splits `host[:port]`, IPv6 references included.
pub fn split_host_port(s: &str) -> Result<(&str, Option<u16>), ParseError> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let rest = &s[end + 1..];
                match rest.strip_prefix(':') {
                    Some(p) => (&s[..=end], Some(p)),
                    None if rest.is_empty() => (s, None),
                    None => return Err(bad("junk after IPv6 reference")),
                }
            }
            None => return Err(bad("unclosed IPv6 reference")),
        }
    } else {
        match s.bytes().rposition(|b| b == b':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("invalid port"));
            }
            Some(p.parse::<u16>().map_err(|_| bad("port out of range"))?)
        }
    };
    Ok((host, port))
}

impl<'a> Uri<'a> {
    /// Parses an absolute URI.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let b = s.as_bytes();
        // `sip:` is by far the most common start: skip the scheme scan.
        // (`| 0x20` also maps 0x1a to `:`; the check of `b[3]` below
        // sends that case down the general path.)
        let first4 = b.get(..4).and_then(|f| <[u8; 4]>::try_from(f).ok());
        let sip = first4
            .is_some_and(|f| u32::from_le_bytes(f) | 0x2020_2020 == u32::from_le_bytes(*b"sip:"));
        let colon = if sip {
            Some(3)
        } else {
            b.iter().position(|&c| !is_scheme_byte(c))
        };
        let colon =
            colon
                .filter(|&i| b[i] == b':')
                .ok_or_else(|| match memchr::memchr(b':', b) {
                    None => bad("no scheme"),
                    Some(_) => bad("invalid scheme"),
                })?;
        if colon == 0 || !b[0].is_ascii_alphabetic() {
            return Err(bad("invalid scheme"));
        }
        let rest = &s[colon + 1..];
        if rest.is_empty() {
            return Err(bad("nothing after the scheme"));
        }
        // One pass over the rest: forbidden bytes, first `@`, first `?`.
        let scan = scan_rest(rest.as_bytes()).ok_or(bad("invalid character"))?;
        // Scheme bytes are alphanumeric or `+-.`, which `| 0x20` leaves
        // alone: it only lowers letters.
        let low = |i: usize| b.get(i).map_or(0, |c| c | 0x20);
        let scheme = match (colon, low(0), low(1), low(2), low(3)) {
            (3, b's', b'i', b'p', _) => Scheme::Sip,
            (4, b's', b'i', b'p', b's') => Scheme::Sips,
            (3, b't', b'e', b'l', _) => Scheme::Tel,
            _ => Scheme::Other,
        };
        // Each arm builds the `Uri` where it is returned (no copy of the
        // whole struct at the end).
        let uri = |user, params| Uri {
            raw: s,
            scheme,
            user,
            password: None,
            host_str: "",
            host: Host::Name(""),
            port: None,
            params,
            headers: None,
            opaque: rest,
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => Self::parse_sip(s, scheme, rest, &scan),
            Scheme::Tel => {
                let (num, params) = match memchr::memchr(b';', rest.as_bytes()) {
                    Some(i) => (&rest[..i], &rest[i + 1..]),
                    None => (rest, ""),
                };
                if num.is_empty() {
                    return Err(bad("empty telephone number"));
                }
                Ok(uri(Some(num), params))
            }
            Scheme::Other => Ok(uri(None, "")),
        }
    }

    /// `[userinfo@]hostport[;params][?headers]` (`rest`, after `scheme:`),
    /// with the positions of the first `@` and of the first `?` after it
    /// already known.
    fn parse_sip(
        raw: &'a str,
        scheme: Scheme,
        rest: &'a str,
        scan: &RestScan,
    ) -> Result<Uri<'a>, ParseError> {
        let (mut user, mut password) = (None, None);
        let hostpart = match scan.at {
            Some(at) => {
                let userinfo = &rest[..at];
                // A plain loop: the user part is a few bytes long.
                let (u, pass) = match userinfo.bytes().position(|b| b == b':') {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if u.is_empty() {
                    return Err(bad("empty user part"));
                }
                (user, password) = (Some(u), pass);
                at + 1
            }
            None => 0,
        };
        let hp = &rest[hostpart..];
        let (host_str, host, port, end) = match fast_hostport(hp.as_bytes()) {
            // The usual case: a host name or IPv4 address, then maybe a
            // port, checked in one pass.
            Some((host_end, v4, port, end)) => {
                let host_str = &hp[..host_end];
                (
                    host_str,
                    v4.map_or(Host::Name(host_str), Host::V4),
                    port,
                    end,
                )
            }
            // IPv6 references and anything invalid: the general path,
            // which also names the fault.
            None => {
                let end = hp.bytes().position(|b| b == b';' || b == b'?');
                let (host_str, port) = split_host_port(&hp[..end.unwrap_or(hp.len())])?;
                (
                    host_str,
                    parse_host(host_str)?,
                    port,
                    end.unwrap_or(hp.len()),
                )
            }
        };
        // `?` cannot come before `end` (the host part stops at the first
        // `;` or `?`), so the first `?` after `@` is the one that starts
        // the headers.
        let params = &rest[hostpart + end..scan.question.unwrap_or(rest.len())];
        Ok(Uri {
            raw,
            scheme,
            user,
            password,
            host_str,
            host,
            port,
            params: params.strip_prefix(';').unwrap_or(params),
            headers: scan.question.map(|q| &rest[q + 1..]),
            opaque: rest,
        })
    }

    /// Whether this is a `sip:` or `sips:` URI.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The URI parameters.
    pub fn param_iter(&self) -> Params<'a> {
        Params::new(self.params)
    }

    /// A URI parameter by name (case-insensitive); `Some(None)` when it has
    /// no value (as `lr`).
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.param_iter().get(name)
    }

    /// The `transport` parameter, if any.
    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport").flatten()
    }

    /// Whether the URI has the `lr` parameter (loose router).
    pub fn is_lr(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The `maddr` parameter, if any.
    pub fn maddr(&self) -> Option<&'a str> {
        self.param("maddr").flatten()
    }

    /// The port to use when none is given: 5061 for sips or TLS, else 5060.
    pub fn default_port(&self) -> u16 {
        let tls = self.scheme == Scheme::Sips
            || self
                .transport()
                .is_some_and(|t| t.eq_ignore_ascii_case("tls"));
        if tls {
            5061
        } else {
            5060
        }
    }

    /// Compares two URIs as RFC 3261 section 19.1.4 says.
    pub fn rfc_eq(&self, other: &Uri<'_>) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        match self.scheme {
            Scheme::Other => return self.raw.eq_ignore_ascii_case(other.raw),
            Scheme::Tel => {
                return opt_escaped_eq(self.user, other.user, false)
                    && params_eq(self.params, other.params, &[])
            }
            Scheme::Sip | Scheme::Sips => {}
        }
        if !opt_escaped_eq(self.user, other.user, false)
            || !opt_escaped_eq(self.password, other.password, false)
            || !self.host.eq_host(&other.host)
            || self.port != other.port
        {
            return false;
        }
        const SPECIAL: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
        if !params_eq(self.params, other.params, &SPECIAL) {
            return false;
        }
        headers_eq(self.headers, other.headers)
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// Decodes one `%XX` escape at `b[i..]`, returning the byte and its length.
fn decode_at(b: &[u8], i: usize) -> (u8, usize) {
    if b[i] == b'%' && i + 2 < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
            return (h * 16 + l, 3);
        }
    }
    (b[i], 1)
}

/// Compares two strings after decoding `%XX` escapes.
pub fn escaped_eq(a: &str, b: &str, ignore_case: bool) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, dx) = decode_at(a, i);
        let (y, dy) = decode_at(b, j);
        let same = if ignore_case {
            x.eq_ignore_ascii_case(&y)
        } else {
            x == y
        };
        if !same {
            return false;
        }
        i += dx;
        j += dy;
    }
    i == a.len() && j == b.len()
}

fn opt_escaped_eq(a: Option<&str>, b: Option<&str>, ic: bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => escaped_eq(a, b, ic),
        _ => false,
    }
}

/// RFC 3261 19.1.4 parameter rule: a `special` parameter must match when
/// present in either URI; any other one only when present in both.
fn params_eq(a: &str, b: &str, special: &[&str]) -> bool {
    // A repeated parameter counts once, with its first value (what
    // `Params::get` returns); otherwise a URI could differ from itself.
    for p in first_occurrences(a, b';') {
        let is_special = special.iter().any(|s| p.name.eq_ignore_ascii_case(s));
        match Params::new(b).get(p.name) {
            Some(v) if !opt_escaped_eq(p.value, v, true) => return false,
            Some(_) => {}
            None if is_special => return false,
            None => {}
        }
    }
    for p in first_occurrences(b, b';') {
        if special.iter().any(|s| p.name.eq_ignore_ascii_case(s))
            && Params::new(a).get(p.name).is_none()
        {
            return false;
        }
    }
    true
}

/// The parameters of `s`, each name only at its first occurrence.
fn first_occurrences(s: &str, sep: u8) -> impl Iterator<Item = crate::params::Param<'_>> {
    Params::with_separator(s, sep)
        .enumerate()
        .filter(move |(i, p)| {
            !Params::with_separator(s, sep)
                .take(*i)
                .any(|q| q.name.eq_ignore_ascii_case(p.name))
        })
        .map(|(_, p)| p)
}

/// URI headers: every header in either must be in both, with equal values.
fn headers_eq(a: Option<&str>, b: Option<&str>) -> bool {
    let (a, b) = (a.unwrap_or(""), b.unwrap_or(""));
    let covered = |x: &str, y: &str| {
        first_occurrences(x, b'&').all(|p| {
            Params::with_separator(y, b'&')
                .get(p.name)
                .is_some_and(|v| opt_escaped_eq(p.value, v, false))
        })
    };
    covered(a, b) && covered(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Uri<'_> {
        Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_sip_parts() {
        let u = p(
            "sip:alice:secret@atlanta.com:5070;transport=tcp;lr?subject=project&priority=urgent",
        );
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host, Host::Name("atlanta.com"));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.is_lr());
        assert_eq!(u.headers, Some("subject=project&priority=urgent"));
    }

    #[test]
    fn parses_hosts() {
        assert_eq!(
            p("sip:[2001:db8::10]:5060").host,
            Host::V6("2001:db8::10".parse().unwrap())
        );
        assert_eq!(
            p("sips:10.0.0.1").host,
            Host::V4(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(p("sips:10.0.0.1").default_port(), 5061);
        assert_eq!(p("sip:[::1]").port, None);
        assert!(Uri::parse("sip:[::1").is_err());
        assert!(Uri::parse("sip:host:99999").is_err());
        assert!(Uri::parse("sip:host:").is_err());
        assert!(Uri::parse("sip:bad host").is_err());
        assert!(Uri::parse("sip:@host").is_err());
        assert!(Uri::parse("sip:").is_err());
        assert!(Uri::parse("nocolon").is_err());
        assert!(Uri::parse("sip:300.1.1.1").is_err());
    }

    #[test]
    fn user_may_hold_semicolons_and_tel_and_other() {
        let u = p("sip:+1-212-555-1212:1234;phone-context=x@gateway.com;user=phone");
        assert_eq!(u.user, Some("+1-212-555-1212"));
        assert_eq!(u.password, Some("1234;phone-context=x"));
        assert_eq!(u.param("user"), Some(Some("phone")));
        let t = p("tel:+358-555-1234567;postd=pp22");
        assert_eq!(t.scheme, Scheme::Tel);
        assert_eq!(t.user, Some("+358-555-1234567"));
        assert_eq!(t.param("postd"), Some(Some("pp22")));
        let o = p("urn:service:sos");
        assert_eq!(o.scheme, Scheme::Other);
        assert_eq!(o.opaque, "service:sos");
    }

    #[test]
    fn rfc3261_19_1_4_equal_pairs() {
        let eq = [
            (
                "sip:%61lice@atlanta.com;transport=TCP",
                "sip:alice@AtLanTa.CoM;Transport=tcp",
            ),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
            (
                "sip:carol@chicago.com;newparam=5",
                "sip:carol@chicago.com;security=on",
            ),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ];
        for (a, b) in eq {
            assert!(p(a).rfc_eq(&p(b)), "{a} == {b}");
            assert!(p(b).rfc_eq(&p(a)), "{b} == {a}");
        }
    }

    #[test]
    fn rfc3261_19_1_4_unequal_pairs() {
        let ne = [
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            (
                "sip:bob@biloxi.com",
                "sip:bob@biloxi.com:6000;transport=tcp",
            ),
            (
                "sip:carol@chicago.com",
                "sip:carol@chicago.com?Subject=next%20meeting",
            ),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;security=off",
            ),
            ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
        ];
        for (a, b) in ne {
            assert!(!p(a).rfc_eq(&p(b)), "{a} != {b}");
            assert!(!p(b).rfc_eq(&p(a)), "{b} != {a}");
        }
    }

    /// Found by fuzzing: with a repeated parameter (or URI header) the
    /// second value was compared with the first, so a URI was not equal to
    /// itself and the comparison was not symmetric.
    #[test]
    fn repeated_params_are_reflexive_and_symmetric() {
        for s in [
            "sip:10.0.0.1:5060;lr;x=1;x=2",
            "tel:+1-212-555-0101;phone-context=a;phone-context=b",
            "sip:h?a=1&a=2",
        ] {
            assert!(p(s).rfc_eq(&p(s)), "{s}");
        }
        let (a, b) = (p("sip:h;x=1;x=2"), p("sip:h;x=1"));
        assert_eq!(a.rfc_eq(&b), b.rfc_eq(&a));
        assert!(a.rfc_eq(&b));
        assert!(!p("sip:h;transport=tcp;transport=udp").rfc_eq(&p("sip:h;transport=udp")));
    }

    #[test]
    fn escapes() {
        assert!(escaped_eq("a%20b", "a b", false));
        assert!(escaped_eq("%7e", "~", false));
        assert!(!escaped_eq("%4", "%4x", false));
        assert!(escaped_eq("%", "%", false));
    }
}
