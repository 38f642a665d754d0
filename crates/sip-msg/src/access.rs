//! Typed, lazy access to the headers a proxy, registrar or authenticator
//! acts on. Nothing here is computed at parse time: each call decodes the
//! header it reads, borrowing from the message.

use crate::decoded::FromTo;
use crate::error::{bad, ParseError};
use crate::header_name::HeaderName;
use crate::headers::{
    AuthParams, AuthValue, CSeq, ContactValue, EventValue, MediaType, NameAddr, Via,
};
use crate::message::Message;
use crate::method::Method;
use crate::scan::{parse_u32, CommaSplit};

impl<'a> Message<'a> {
    /// Every value of a header: comma-separated values and values on
    /// several header lines alike, in order. For headers whose grammar has
    /// commas inside one value (Date, the authentication headers, unknown
    /// headers) each line is one value.
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &'a str> + '_ {
        let split = name.is_comma_list();
        self.headers_named(name).flat_map(move |h| {
            let mut it = CommaSplit::new(h.value);
            let mut whole = Some(h.value);
            std::iter::from_fn(move || if split { it.next() } else { whole.take() })
        })
    }

    /// The first value of a header, if present.
    pub fn value(&self, name: HeaderName) -> Option<&'a str> {
        self.header(name).map(|h| h.value)
    }

    fn required(&self, name: HeaderName) -> Result<&'a str, ParseError> {
        self.value(name)
            .ok_or(ParseError::MissingHeader(name.as_str()))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&'a str, ParseError> {
        let v = self.required(HeaderName::CallId)?;
        if v.is_empty() || crate::scan::has_lws(v) {
            return Err(bad("Call-ID", "invalid value"));
        }
        Ok(v)
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq<'a>, ParseError> {
        CSeq::parse(self.required(HeaderName::CSeq)?)
    }

    /// The method of the transaction: the request method, or the CSeq
    /// method of a reply.
    pub fn txn_method(&self) -> Result<Method<'a>, ParseError> {
        match self.method() {
            Some(m) => Ok(m),
            None => Ok(self.cseq()?.method),
        }
    }

    /// The From header (decoded once per message).
    pub fn from(&self) -> Result<NameAddr<'a>, ParseError> {
        let base = self.value(HeaderName::From).unwrap_or("");
        self.decoded.name_addr(FromTo::From, base, || {
            NameAddr::parse(self.required(HeaderName::From)?, "From")
        })
    }

    /// The To header (decoded once per message).
    pub fn to(&self) -> Result<NameAddr<'a>, ParseError> {
        let base = self.value(HeaderName::To).unwrap_or("");
        self.decoded.name_addr(FromTo::To, base, || {
            NameAddr::parse(self.required(HeaderName::To)?, "To")
        })
    }

    /// The From tag (of the From decoded once per message); `Ok(None)`
    /// without one.
    pub fn from_tag(&self) -> Result<Option<&'a str>, ParseError> {
        let base = self.value(HeaderName::From).unwrap_or("");
        self.decoded.tag(FromTo::From, base, || {
            NameAddr::parse(self.required(HeaderName::From)?, "From")
        })
    }

    /// The To tag (of the To decoded once per message); `Ok(None)` without
    /// one.
    pub fn to_tag(&self) -> Result<Option<&'a str>, ParseError> {
        let base = self.value(HeaderName::To).unwrap_or("");
        self.decoded.tag(FromTo::To, base, || {
            NameAddr::parse(self.required(HeaderName::To)?, "To")
        })
    }

    /// All Via values, topmost first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'a>, ParseError>> + '_ {
        self.values(HeaderName::Via).map(Via::parse)
    }

    /// The topmost Via (decoded once per message): the first value of
    /// the first Via line that has one, as [`Message::vias`] gives it.
    pub fn top_via(&self) -> Result<Via<'a>, ParseError> {
        let headers = self.headers();
        self.decoded.top_via(
            |line| headers.get(line).map_or("", |h| h.value),
            || first_via(headers),
        )
    }

    /// The top Via's `branch` (what `top_via()?.branch()` gives), read
    /// from the decoded top Via without rebuilding it.
    pub fn top_via_branch(&self) -> Result<Option<&'a str>, ParseError> {
        let headers = self.headers();
        self.decoded.top_via_branch(
            |line| headers.get(line).map_or("", |h| h.value),
            || first_via(headers),
        )
    }

    /// All Contact values.
    pub fn contacts(&self) -> impl Iterator<Item = Result<ContactValue<'a>, ParseError>> + '_ {
        self.values(HeaderName::Contact).map(ContactValue::parse)
    }

    fn name_addrs(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        let label = name.as_str();
        self.values(name).map(move |v| NameAddr::parse(v, label))
    }

    /// All Route values, in order.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.name_addrs(HeaderName::Route)
    }

    /// All Record-Route values, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.name_addrs(HeaderName::RecordRoute)
    }

    /// All Path values (RFC 3327), in order.
    pub fn paths(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.name_addrs(HeaderName::Path)
    }

    fn number(&self, name: HeaderName) -> Result<Option<u32>, ParseError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => parse_u32(v)
                .map(Some)
                .ok_or(bad(name.as_str(), "not a number")),
        }
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        self.number(HeaderName::MaxForwards)
    }

    /// The Expires header, if present.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.number(HeaderName::Expires)
    }

    /// Min-Expires, if present.
    pub fn min_expires(&self) -> Result<Option<u32>, ParseError> {
        self.number(HeaderName::MinExpires)
    }

    /// Content-Length, if present (already checked against the body when
    /// the message was parsed).
    pub fn content_length(&self) -> Option<u32> {
        self.value(HeaderName::ContentLength).and_then(parse_u32)
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType<'a>>, ParseError> {
        self.value(HeaderName::ContentType)
            .map(MediaType::parse)
            .transpose()
    }

    /// Event, if present.
    pub fn event(&self) -> Result<Option<EventValue<'a>>, ParseError> {
        self.value(HeaderName::Event)
            .map(EventValue::parse)
            .transpose()
    }

    /// Credentials or challenges of one of the four authentication headers.
    pub fn auth_values(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<AuthValue<'a>, ParseError>> + '_ {
        let label = name.as_str();
        self.values(name).map(move |v| AuthValue::parse(v, label))
    }

    /// [`Message::auth_values`] with each value's parameters split
    /// ([`AuthValue::parse_split`]), for reading several of them.
    #[allow(clippy::type_complexity)]
    pub fn auth_values_split(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<(AuthValue<'a>, AuthParams<'a>), ParseError>> + '_ {
        let label = name.as_str();
        self.values(name)
            .map(move |v| AuthValue::parse_split(v, label))
    }

    /// Option tags or method names of Require, Proxy-Require, Supported,
    /// Unsupported, Allow (and any other token-list header).
    pub fn tokens(&self, name: HeaderName) -> impl Iterator<Item = &'a str> + '_ {
        self.values(name)
    }

    /// Whether a token-list header contains `token` (case-insensitive).
    pub fn has_token(&self, name: HeaderName, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// User-Agent, if present.
    pub fn user_agent(&self) -> Option<&'a str> {
        self.value(HeaderName::UserAgent)
    }

    /// Server, if present.
    pub fn server(&self) -> Option<&'a str> {
        self.value(HeaderName::Server)
    }
}

/// The first value of the first Via line that has one, and that line's
/// index.
fn first_via<'a>(headers: &[crate::Header<'a>]) -> Result<(usize, Via<'a>), ParseError> {
    for (line, h) in headers.iter().enumerate() {
        if h.name != HeaderName::Via {
            continue;
        }
        if let Some(item) = CommaSplit::new(h.value).next() {
            return Via::parse(item).map(|v| (line, v));
        }
    }
    Err(ParseError::MissingHeader("Via"))
}

#[cfg(test)]
mod cached_tests {
    use crate::headers::NameAddr;
    use crate::{HeaderName, Message, ParseError};

    /// The cached accessors give what decoding the header gives, on every
    /// shape of From/To/Via.
    #[test]
    fn cached_reads_equal_fresh_decodes() {
        let cases: [&[u8]; 5] = [
            b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4:5;branch=z9hG4bK1, SIP/2.0/TCP x\r\nFrom: \"a>;tag=no\" <sips:u:pw@[::1]:5061;tag=uri?h=v>;tag=f1\r\nTo: sip:b@c;tag=\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
            b"BYE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP [::1];rport\r\nf: <sip:x@y>\r\nt: <sip:b@c>;tag=T\r\ni: c\r\nCSeq: 2 BYE\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nFrom: bad <\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nVia:\r\nVia: ,SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx;rport\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
            b"SIP/2.0 200 OK\r\nVia: garbage\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:x@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        ];
        for raw in cases {
            let m = Message::parse(raw).unwrap();
            for _ in 0..2 {
                let fresh = m.vias().next();
                match (m.top_via(), fresh) {
                    (Ok(a), Some(Ok(b))) => {
                        assert_eq!(
                            (a.raw, a.transport, a.host_str, a.port, a.params),
                            (b.raw, b.transport, b.host_str, b.port, b.params)
                        );
                        assert_eq!(a.host.ip(), b.host.ip());
                    }
                    (Err(a), Some(Err(b))) => assert_eq!(a, b),
                    (Err(_), None) => {}
                    (a, b) => panic!("top_via {a:?} vs {b:?}"),
                }
                if let Ok(v) = m.top_via() {
                    assert!(!v.raw.is_empty() && !v.host_str.is_empty());
                }
                for (h, cached) in [(HeaderName::From, m.from()), (HeaderName::To, m.to())] {
                    let fresh = m
                        .value(h)
                        .ok_or(ParseError::MissingHeader(h.as_str()))
                        .and_then(|v| NameAddr::parse(v, h.as_str()));
                    assert_eq!(format!("{cached:?}"), format!("{fresh:?}"));
                }
                assert_eq!(m.from_tag(), m.from().map(|f| f.tag()));
                assert_eq!(m.to_tag(), m.to().map(|t| t.tag()));
            }
        }
    }
}
