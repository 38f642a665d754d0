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
                lookup(b, |i| {
                    // The aliases are lower case: fold only the input.
                    let alias = ALIAS_TABLE[i].0;
                    alias.len() == b.len()
                        && alias.iter().zip(b).all(|(a, c)| c.to_ascii_lowercase() == *a)
                })
            }
        }

        /// Every alias (lower case) with its kind.
        const ALIASES: [(&[u8], HeaderName); [$($($alias as &[u8],)*)*].len()] =
            [$($(($alias as &[u8], HeaderName::$variant),)*)*];
    };
}

/// A compact form is one table load; a long name is found in a small hash
/// table keyed on its length and first and last bytes, then compared in
/// place by `eq` (no copy, no lower-casing of the whole name).
#[inline]
fn lookup(b: &[u8], eq: impl Fn(usize) -> bool) -> HeaderName {
    match b {
        [] => HeaderName::Other,
        [c] => COMPACT[*c as usize],
        _ => {
            let mut slot = slot_of(b);
            loop {
                let i = match LONG_SLOTS[slot] {
                    0 => return HeaderName::Other,
                    k => k as usize - 1,
                };
                if eq(i) {
                    return ALIAS_TABLE[i].1;
                }
                slot = (slot + 1) % LONG_SLOTS.len();
            }
        }
    }
}

/// A known header name at `b[pos..]` directly followed by `:` (the usual
/// `Name: value` line), found without a byte-by-byte scan: the colon is
/// located in the first 16 bytes with SWAR, the name looked up as two
/// words. Returns the kind and the offset of the colon; `None` (for names
/// longer than 15 bytes, unknown names, white space before the colon, or
/// near the end of the buffer) leaves the line to the general scan.
#[inline]
pub(crate) fn known_name_at(b: &[u8], pos: usize) -> Option<(HeaderName, usize)> {
    const LO: u64 = 0x0101_0101_0101_0101;
    // Bit 7 of each byte where `w` holds `c`; the lowest one is exact.
    let has = |w: u64, c: u8| {
        let x = w ^ (LO * c as u64);
        x.wrapping_sub(LO) & !x & (LO << 7)
    };
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    let (mut w0, mut w1) = (word(pos)?, word(pos + 8)?);
    let (c0, c1) = (has(w0, b':'), has(w1, b':'));
    let len = if c0 != 0 {
        (c0.trailing_zeros() / 8) as usize
    } else if c1 != 0 {
        8 + (c1.trailing_zeros() / 8) as usize
    } else {
        return None;
    };
    // Keep the name's bytes only.
    let keep = |n: usize| {
        if n >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        }
    };
    w0 &= keep(len);
    w1 &= keep(len.saturating_sub(8));
    // `| 0x20` lowers letters and maps only CR (not a token byte) onto a
    // byte of an alias (`-`): with CR ruled out, a match means the name is
    // the alias in some case, hence a valid token. (The bytes past the
    // name are zero now, so a CR found is in the name.)
    if len == 0 || has(w0, b'\r') | has(w1, b'\r') != 0 {
        return None;
    }
    let (f0, f1) = (
        (w0 | 0x2020_2020_2020_2020) & keep(len),
        (w1 | 0x2020_2020_2020_2020) & keep(len.saturating_sub(8)),
    );
    match lookup(&b[pos..pos + len], |i| ALIAS_WORDS[i] == [f0, f1, 0]) {
        HeaderName::Other => None,
        kind => Some((kind, pos + len)),
    }
}

/// `ALIASES` in memory once: indexing a `const` array at run time would
/// build a copy of it on the stack at each use.
static ALIAS_TABLE: [(&[u8], HeaderName); ALIASES.len()] = ALIASES;

/// The aliases as little-endian 8-byte words, zero-padded.
static ALIAS_WORDS: [[u64; 3]; ALIASES.len()] = {
    let mut t = [[0u64; 3]; ALIASES.len()];
    let mut i = 0;
    while i < ALIASES.len() {
        let alias = ALIASES[i].0;
        let mut j = 0;
        while j < alias.len() {
            t[i][j / 8] |= (alias[j] as u64) << (8 * (j % 8));
            j += 1;
        }
        i += 1;
    }
    t
};

/// Start slot of a long name (two bytes or more) in [`LONG_SLOTS`].
const fn slot_of(b: &[u8]) -> usize {
    let first = b[0].to_ascii_lowercase() as usize;
    let last = b[b.len() - 1].to_ascii_lowercase() as usize;
    (b.len() * 31 + first * 7 + last) % LONG_SLOTS.len()
}

/// Open-addressing hash table of the long aliases: 1 + index into
/// `ALIASES`, 0 for an empty slot (linear probing).
static LONG_SLOTS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < ALIASES.len() {
        let alias = ALIASES[i].0;
        if alias.len() > 1 {
            let mut slot = slot_of(alias);
            while t[slot] != 0 {
                slot = (slot + 1) % 128;
            }
            t[slot] = i as u8 + 1;
        }
        i += 1;
    }
    t
};

/// The compact forms, both cases, indexed by byte.
static COMPACT: [HeaderName; 256] = {
    let mut t = [HeaderName::Other; 256];
    let mut i = 0;
    while i < ALIASES.len() {
        let (alias, kind) = ALIASES[i];
        if alias.len() == 1 {
            t[alias[0] as usize] = kind;
            t[alias[0].to_ascii_uppercase() as usize] = kind;
        }
        i += 1;
    }
    t
};

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

    /// Every alias of the hash table is found, in any case, and near misses
    /// (one byte changed, one byte appended) are not.
    #[test]
    fn every_alias_and_near_misses() {
        for (alias, kind) in super::ALIASES {
            let a = std::str::from_utf8(alias).unwrap();
            assert_eq!(HeaderName::parse(a), kind, "{a}");
            assert_eq!(HeaderName::parse(&a.to_ascii_uppercase()), kind, "{a}");
            assert_eq!(HeaderName::parse(kind.as_str()), kind, "{a}");
            for i in 0..a.len() {
                let mut m = a.as_bytes().to_vec();
                m[i] = b'#';
                assert_eq!(
                    HeaderName::parse(std::str::from_utf8(&m).unwrap()),
                    HeaderName::Other
                );
            }
            assert_eq!(
                HeaderName::parse(&format!("{a}x")),
                HeaderName::Other,
                "{a}"
            );
        }
        // `-` and CR differ only in bit 0x20: only letters are case-folded.
        assert_eq!(HeaderName::parse("call\rid"), HeaderName::Other);
    }

    /// The SWAR fast path finds exactly the known names directly followed
    /// by a colon, and never a wrong or invalid one.
    #[test]
    fn known_name_at_agrees_with_parse() {
        let mut names: Vec<String> = Vec::new();
        for (alias, _) in super::ALIASES {
            let a = std::str::from_utf8(alias).unwrap();
            names.extend([
                a.to_string(),
                a.to_ascii_uppercase(),
                format!("{a} "),
                format!("{a}\r"),
            ]);
            names.extend([
                format!("x{a}"),
                format!("{a}\t"),
                a.replace('-', "\r"),
                a.replace('-', "_"),
            ]);
        }
        names.extend(
            [
                "Call\rID",
                "To\r\nFrom",
                "To\nFrom",
                "",
                " Via",
                "Via\u{e9}",
            ]
            .map(String::from),
        );
        for name in &names {
            for tail in [": value long enough to read two words", ":"] {
                let buf = format!("{name}{tail}");
                let got = super::known_name_at(buf.as_bytes(), 0);
                let want = HeaderName::parse(name);
                if let Some((kind, colon)) = got {
                    assert_eq!((kind, colon), (want, name.len()), "{buf:?}");
                    assert!(crate::scan::is_token(name), "{buf:?}");
                } else if buf.len() >= 16 && name.len() < 16 && want != HeaderName::Other {
                    assert!(!crate::scan::is_token(name), "{buf:?} missed");
                }
            }
        }
    }
}
