//! Headers decoded once per message, on first read.
//!
//! The top Via is read by the script (`sanity_check`, `$hdr`), the
//! transaction layer (keys, matching), the reply builder and the stateless
//! To-tag: decoding it again for each of them cost more than everything
//! else they did with it. [`Decoded`] keeps the first decode as byte
//! offsets into the header value (no lifetime, so [`crate::Message`] stays
//! covariant, as [`crate::OwnedMessage`] needs) and rebuilds the borrowed
//! [`Via`] from them, which is a few slice operations.

use crate::error::ParseError;
use crate::headers::{KnownParams, NameAddr, Via};
use crate::uri::{Host, Scheme, Uri};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// Start and end offset of a substring in the value it came from.
type Span = (u32, u32);

/// Where `sub` lies in `base` (`sub` is a slice of `base`; an empty `sub`
/// may be a literal from elsewhere and is recorded as empty).
fn span(base: &str, sub: &str) -> Span {
    match crate::scan::offset_in(base.as_bytes(), sub) {
        Some((a, b)) if !sub.is_empty() => match (u32::try_from(a), u32::try_from(b)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => (0, 0),
        },
        _ => (0, 0),
    }
}

fn at(base: &str, s: Span) -> &str {
    base.get(s.0 as usize..s.1 as usize).unwrap_or("")
}

fn opt_span(base: &str, sub: Option<&str>) -> Option<Span> {
    sub.map(|s| span(base, s))
}

fn opt_at(base: &str, s: Option<Span>) -> Option<&str> {
    s.map(|s| at(base, s))
}

#[derive(Debug, Clone, Copy)]
enum HostKind {
    Name,
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostKind {
    fn of(h: &Host<'_>) -> HostKind {
        match *h {
            Host::Name(_) => HostKind::Name,
            Host::V4(a) => HostKind::V4(a),
            Host::V6(a) => HostKind::V6(a),
        }
    }

    fn host(self, name: &str) -> Host<'_> {
        match self {
            HostKind::Name => Host::Name(name),
            HostKind::V4(a) => Host::V4(a),
            HostKind::V6(a) => Host::V6(a),
        }
    }
}

/// A decoded [`Uri`] as offsets.
#[derive(Debug, Clone, Copy)]
struct UriSpans {
    raw: Span,
    scheme: Scheme,
    user: Option<Span>,
    password: Option<Span>,
    host_str: Span,
    host: HostKind,
    port: Option<u16>,
    params: Span,
    headers: Option<Span>,
    opaque: Span,
}

impl UriSpans {
    fn of(base: &str, u: &Uri<'_>) -> UriSpans {
        UriSpans {
            raw: span(base, u.raw),
            scheme: u.scheme,
            user: opt_span(base, u.user),
            password: opt_span(base, u.password),
            host_str: span(base, u.host_str),
            host: HostKind::of(&u.host),
            port: u.port,
            params: span(base, u.params),
            headers: opt_span(base, u.headers),
            opaque: span(base, u.opaque),
        }
    }

    fn uri<'a>(&self, base: &'a str) -> Uri<'a> {
        let host_str = at(base, self.host_str);
        Uri {
            raw: at(base, self.raw),
            scheme: self.scheme,
            user: opt_at(base, self.user),
            password: opt_at(base, self.password),
            host_str,
            host: self.host.host(host_str),
            port: self.port,
            params: at(base, self.params),
            headers: opt_at(base, self.headers),
            opaque: at(base, self.opaque),
        }
    }
}

/// A decoded [`NameAddr`] as offsets.
#[derive(Debug, Clone, Copy)]
struct NameAddrSpans {
    raw: Span,
    display: Option<Span>,
    uri_str: Span,
    uri: UriSpans,
    params: Span,
    bracketed: bool,
    /// The `tag` parameter's value, read at decode time: the tags are read
    /// more often than the rest (dialog checks, keys, loose routing).
    tag: Option<Span>,
}

impl NameAddrSpans {
    fn of(base: &str, n: &NameAddr<'_>) -> NameAddrSpans {
        NameAddrSpans {
            raw: span(base, n.raw),
            display: opt_span(base, n.display),
            uri_str: span(base, n.uri_str),
            uri: UriSpans::of(base, &n.uri),
            params: span(base, n.params),
            bracketed: n.bracketed,
            tag: opt_span(base, n.tag()),
        }
    }

    fn name_addr<'a>(&self, base: &'a str) -> NameAddr<'a> {
        NameAddr {
            raw: at(base, self.raw),
            display: opt_at(base, self.display),
            uri_str: at(base, self.uri_str),
            uri: self.uri.uri(base),
            params: at(base, self.params),
            bracketed: self.bracketed,
        }
    }
}

/// A decoded [`Via`] as offsets into its header value.
#[derive(Debug, Clone, Copy)]
struct ViaSpans {
    raw: Span,
    protocol: Span,
    transport: Span,
    host_str: Span,
    host: HostKind,
    port: Option<u16>,
    params: Span,
    /// `branch`, `received`, `rport`, `maddr` (see [`KnownParams`]).
    known: [Option<Option<Span>>; 4],
}

impl ViaSpans {
    fn of(base: &str, v: &Via<'_>) -> ViaSpans {
        ViaSpans {
            raw: span(base, v.raw),
            protocol: span(base, v.protocol),
            transport: span(base, v.transport),
            host_str: span(base, v.host_str),
            host: HostKind::of(&v.host),
            port: v.port,
            params: span(base, v.params),
            known: [
                v.known.branch,
                v.known.received,
                v.known.rport,
                v.known.maddr,
            ]
            .map(|p| p.map(|v| opt_span(base, v))),
        }
    }

    fn via<'a>(&self, base: &'a str) -> Via<'a> {
        let host_str = at(base, self.host_str);
        Via {
            raw: at(base, self.raw),
            protocol: at(base, self.protocol),
            transport: at(base, self.transport),
            host_str,
            host: self.host.host(host_str),
            port: self.port,
            params: at(base, self.params),
            known: {
                let [branch, received, rport, maddr] =
                    self.known.map(|p| p.map(|v| opt_at(base, v)));
                KnownParams {
                    branch,
                    received,
                    rport,
                    maddr,
                }
            },
        }
    }
}

/// The per-message cache (part of every [`crate::Message`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Decoded {
    /// The index of the header line holding the top Via, and the Via as
    /// offsets into that line's value.
    top_via: OnceLock<Result<(usize, ViaSpans), ParseError>>,
    from: OnceLock<Result<NameAddrSpans, ParseError>>,
    to: OnceLock<Result<NameAddrSpans, ParseError>>,
}

/// Which header: From or To.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FromTo {
    From,
    To,
}

impl Decoded {
    /// The top Via: `decode` finds it (called once) and says which header
    /// line's value holds it; `value` gives a header line's value by index.
    pub(crate) fn top_via<'a>(
        &self,
        value: impl Fn(usize) -> &'a str,
        decode: impl FnOnce() -> Result<(usize, Via<'a>), ParseError>,
    ) -> Result<Via<'a>, ParseError> {
        let cached = self
            .top_via
            .get_or_init(|| decode().map(|(line, v)| (line, ViaSpans::of(value(line), &v))));
        match cached {
            Ok((line, s)) => Ok(s.via(value(*line))),
            Err(e) => Err(e.clone()),
        }
    }

    /// The top Via's `branch` alone, as [`Decoded::top_via`]'s value would
    /// give it, without rebuilding the whole Via (replies are matched by
    /// it several times each).
    pub(crate) fn top_via_branch<'a>(
        &self,
        value: impl Fn(usize) -> &'a str,
        decode: impl FnOnce() -> Result<(usize, Via<'a>), ParseError>,
    ) -> Result<Option<&'a str>, ParseError> {
        let cached = self
            .top_via
            .get_or_init(|| decode().map(|(line, v)| (line, ViaSpans::of(value(line), &v))));
        match cached {
            Ok((line, s)) => Ok(s.known[0].flatten().map(|b| at(value(*line), b))),
            Err(e) => Err(e.clone()),
        }
    }

    /// From or To: `base` is the header's value and `decode` decodes it
    /// (called once).
    pub(crate) fn name_addr<'a>(
        &self,
        which: FromTo,
        base: &'a str,
        decode: impl FnOnce() -> Result<NameAddr<'a>, ParseError>,
    ) -> Result<NameAddr<'a>, ParseError> {
        let cell = match which {
            FromTo::From => &self.from,
            FromTo::To => &self.to,
        };
        match cell.get_or_init(|| decode().map(|n| NameAddrSpans::of(base, &n))) {
            Ok(s) => Ok(s.name_addr(base)),
            Err(e) => Err(e.clone()),
        }
    }

    /// The `tag` of From or To, as [`Decoded::name_addr`]'s value would
    /// give it, without rebuilding the whole value.
    pub(crate) fn tag<'a>(
        &self,
        which: FromTo,
        base: &'a str,
        decode: impl FnOnce() -> Result<NameAddr<'a>, ParseError>,
    ) -> Result<Option<&'a str>, ParseError> {
        let cell = match which {
            FromTo::From => &self.from,
            FromTo::To => &self.to,
        };
        match cell.get_or_init(|| decode().map(|n| NameAddrSpans::of(base, &n))) {
            Ok(s) => Ok(opt_at(base, s.tag)),
            Err(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_rebuild_the_same_via() {
        let value = "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport, SIP/2.0/TCP h";
        let v = Via::parse(value.split(',').next().unwrap()).unwrap();
        let back = ViaSpans::of(value, &v).via(value);
        assert_eq!(back.raw, v.raw);
        assert_eq!(back.protocol, "SIP/2.0");
        assert_eq!(back.transport, "UDP");
        assert_eq!(back.host_str, "10.0.0.1");
        assert_eq!(back.known, v.known);
        assert_eq!(
            (back.branch(), back.rport()),
            (Some("z9hG4bK1"), Some(None))
        );
        assert_eq!(back.host.ip(), v.host.ip());
        assert_eq!(back.port, Some(5070));
        assert_eq!(back.params, "branch=z9hG4bK1;rport");
        let d = Decoded::default();
        let decode = || Via::parse(value.split(',').next().unwrap()).map(|v| (0, v));
        assert_eq!(d.top_via_branch(|_| value, decode), Ok(Some("z9hG4bK1")));
        // Cached: the second read does not decode.
        assert_eq!(
            d.top_via_branch(|_| value, || unreachable!()),
            Ok(Some("z9hG4bK1"))
        );
        assert_eq!(
            d.top_via(|_| value, || unreachable!()).map(|v| v.branch()),
            Ok(Some("z9hG4bK1"))
        );
        let d = Decoded::default();
        let to = "<sip:b@h;tag=uri>;x=1;tag=abc";
        let first = d.name_addr(FromTo::To, to, || NameAddr::parse(to, "To"));
        assert_eq!(first.map(|n| n.tag()), Ok(Some("abc")));
        // Cached: the second decode is not run.
        assert_eq!(d.tag(FromTo::To, to, || unreachable!()), Ok(Some("abc")));
        let again = d.name_addr(FromTo::To, to, || unreachable!());
        assert_eq!(
            again.map(|n| (n.uri_str, n.tag())),
            Ok(("sip:b@h;tag=uri", Some("abc")))
        );
        // The tag alone decodes the value once too, and an empty or
        // missing tag reads as the full decode would give it.
        let e = Decoded::default();
        let from = "Alice <sip:a@h>;tag=";
        assert_eq!(
            e.tag(FromTo::From, from, || NameAddr::parse(from, "From")),
            Ok(Some(""))
        );
        assert_eq!(
            e.name_addr(FromTo::From, from, || unreachable!())
                .map(|n| n.tag()),
            Ok(Some(""))
        );
        let plain = "sip:b@h";
        assert_eq!(
            e.tag(FromTo::To, plain, || NameAddr::parse(plain, "To")),
            Ok(None)
        );
        // Empty parts that are literals from elsewhere come back empty.
        assert_eq!(span(value, ""), (0, 0));
        assert_eq!(span(value, "elsewhere"), (0, 0));
    }
}
