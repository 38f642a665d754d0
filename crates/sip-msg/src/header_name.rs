//! Header names: the ones siprouter knows by kind, compact forms included.

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident = $canon:literal, [$($alias:literal),*] ;)*) => {
        /// A header name, recognised case-insensitively and in compact form.
        ///
        /// Headers the server never acts on are [`HeaderName::Other`] and are
        /// compared by their text.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// Any header not listed above.
            Other,
        }

        impl HeaderName {
            /// Number of known kinds (without [`HeaderName::Other`]).
            pub const COUNT: usize = [$($canon),*].len();

            /// The canonical spelling, as siprouter writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canon, )*
                    HeaderName::Other => "",
                }
            }

            /// Recognise a header name (long or compact form, any case).
            pub fn parse(name: &str) -> HeaderName {
                let b = name.as_bytes();
                if b.len() > 32 {
                    return HeaderName::Other;
                }
                let mut low = [0u8; 32];
                for (d, s) in low.iter_mut().zip(b) {
                    *d = s.to_ascii_lowercase();
                }
                match &low[..b.len()] {
                    $( $( $alias )|* => HeaderName::$variant, )*
                    _ => HeaderName::Other,
                }
            }
        }
    };
}

header_names! {
    /// `Via` / `v`
    Via = "Via", [b"via", b"v"];
    /// `From` / `f`
    From = "From", [b"from", b"f"];
    /// `To` / `t`
    To = "To", [b"to", b"t"];
    /// `Call-ID` / `i`
    CallId = "Call-ID", [b"call-id", b"i"];
    /// `CSeq`
    CSeq = "CSeq", [b"cseq"];
    /// `Max-Forwards`
    MaxForwards = "Max-Forwards", [b"max-forwards"];
    /// `Contact` / `m`
    Contact = "Contact", [b"contact", b"m"];
    /// `Route`
    Route = "Route", [b"route"];
    /// `Record-Route`
    RecordRoute = "Record-Route", [b"record-route"];
    /// `Path` (RFC 3327)
    Path = "Path", [b"path"];
    /// `Content-Length` / `l`
    ContentLength = "Content-Length", [b"content-length", b"l"];
    /// `Content-Type` / `c`
    ContentType = "Content-Type", [b"content-type", b"c"];
    /// `Content-Encoding` / `e`
    ContentEncoding = "Content-Encoding", [b"content-encoding", b"e"];
    /// `Expires`
    Expires = "Expires", [b"expires"];
    /// `Min-Expires`
    MinExpires = "Min-Expires", [b"min-expires"];
    /// `Authorization`
    Authorization = "Authorization", [b"authorization"];
    /// `Proxy-Authorization`
    ProxyAuthorization = "Proxy-Authorization", [b"proxy-authorization"];
    /// `WWW-Authenticate`
    WwwAuthenticate = "WWW-Authenticate", [b"www-authenticate"];
    /// `Proxy-Authenticate`
    ProxyAuthenticate = "Proxy-Authenticate", [b"proxy-authenticate"];
    /// `Authentication-Info`
    AuthenticationInfo = "Authentication-Info", [b"authentication-info"];
    /// `Require`
    Require = "Require", [b"require"];
    /// `Proxy-Require`
    ProxyRequire = "Proxy-Require", [b"proxy-require"];
    /// `Supported` / `k`
    Supported = "Supported", [b"supported", b"k"];
    /// `Unsupported`
    Unsupported = "Unsupported", [b"unsupported"];
    /// `Allow`
    Allow = "Allow", [b"allow"];
    /// `Event` / `o`
    Event = "Event", [b"event", b"o"];
    /// `Allow-Events` / `u`
    AllowEvents = "Allow-Events", [b"allow-events", b"u"];
    /// `User-Agent`
    UserAgent = "User-Agent", [b"user-agent"];
    /// `Server`
    Server = "Server", [b"server"];
    /// `Subject` / `s`
    Subject = "Subject", [b"subject", b"s"];
    /// `Refer-To` / `r`
    ReferTo = "Refer-To", [b"refer-to", b"r"];
    /// `Referred-By` / `b`
    ReferredBy = "Referred-By", [b"referred-by", b"b"];
    /// `Session-Expires` / `x`
    SessionExpires = "Session-Expires", [b"session-expires", b"x"];
    /// `Identity` / `y`
    Identity = "Identity", [b"identity", b"y"];
    /// `Accept-Contact` / `a`
    AcceptContact = "Accept-Contact", [b"accept-contact", b"a"];
    /// `Reject-Contact` / `j`
    RejectContact = "Reject-Contact", [b"reject-contact", b"j"];
    /// `Request-Disposition` / `d`
    RequestDisposition = "Request-Disposition", [b"request-disposition", b"d"];
    /// `Timestamp`
    Timestamp = "Timestamp", [b"timestamp"];
    /// `Date`
    Date = "Date", [b"date"];
    /// `Accept`
    Accept = "Accept", [b"accept"];
    /// `Warning`
    Warning = "Warning", [b"warning"];
    /// `Retry-After`
    RetryAfter = "Retry-After", [b"retry-after"];
    /// `Reason`
    Reason = "Reason", [b"reason"];
    /// `Privacy`
    Privacy = "Privacy", [b"privacy"];
    /// `P-Asserted-Identity`
    PAssertedIdentity = "P-Asserted-Identity", [b"p-asserted-identity"];
    /// `P-Preferred-Identity`
    PPreferredIdentity = "P-Preferred-Identity", [b"p-preferred-identity"];
    /// `RSeq`
    RSeq = "RSeq", [b"rseq"];
    /// `RAck`
    RAck = "RAck", [b"rack"];
    /// `Min-SE`
    MinSe = "Min-SE", [b"min-se"];
}

impl HeaderName {
    /// Whether several values of this header may share one line separated
    /// by commas (RFC 3261 7.3.1). Headers whose grammar has commas inside a
    /// single value (Date, the authentication headers, ...) are not.
    pub fn is_comma_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Path
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Supported
                | HeaderName::Unsupported
                | HeaderName::Allow
                | HeaderName::AllowEvents
                | HeaderName::ContentEncoding
                | HeaderName::Accept
                | HeaderName::AcceptContact
                | HeaderName::RejectContact
                | HeaderName::RequestDisposition
                | HeaderName::Privacy
                | HeaderName::PAssertedIdentity
                | HeaderName::PPreferredIdentity
                | HeaderName::Reason
                | HeaderName::Warning
        )
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName;

    #[test]
    fn compact_forms_and_case() {
        let cases = [
            ("i", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("e", HeaderName::ContentEncoding),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("f", HeaderName::From),
            ("s", HeaderName::Subject),
            ("k", HeaderName::Supported),
            ("t", HeaderName::To),
            ("v", HeaderName::Via),
            ("o", HeaderName::Event),
            ("u", HeaderName::AllowEvents),
            ("r", HeaderName::ReferTo),
            ("b", HeaderName::ReferredBy),
            ("x", HeaderName::SessionExpires),
            ("y", HeaderName::Identity),
            ("a", HeaderName::AcceptContact),
            ("j", HeaderName::RejectContact),
            ("d", HeaderName::RequestDisposition),
            ("V", HeaderName::Via),
            ("cAlL-iD", HeaderName::CallId),
            ("WWW-AUTHENTICATE", HeaderName::WwwAuthenticate),
            ("X-Custom", HeaderName::Other),
            ("", HeaderName::Other),
        ];
        for (n, k) in cases {
            assert_eq!(HeaderName::parse(n), k, "{n}");
        }
        assert_eq!(HeaderName::CallId.as_str(), "Call-ID");
        assert_eq!(HeaderName::parse(&"x".repeat(100)), HeaderName::Other);
    }
}
