//! Transaction keys: RFC 3261 §17.1.3 (client) and §17.2.3 (server)
//! matching, including the RFC 2543 fallback and CANCEL targeting (§9.2).
//!
//! The caller extracts the parts from the message (this crate does not
//! parse SIP) and builds a [`TxKey`]; equal keys mean "same transaction".
//! A key owns its strings in a single allocation (plus one for an
//! extension method), made once when the transaction is created or looked
//! up.

use std::fmt;
use std::sync::Arc;

/// The RFC 3261 magic cookie every RFC 3261 branch starts with.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Whether a Via branch follows RFC 3261 (starts with [`MAGIC_COOKIE`]
/// and has something after it), i.e. whether RFC 3261 matching applies
/// instead of the RFC 2543 fallback. A bare cookie identifies nothing
/// (RFC 4475 3.2.1): every request of a client sending it would share
/// one key, so it falls back, as in Kamailio.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > MAGIC_COOKIE.len() && branch.starts_with(MAGIC_COOKIE)
}

/// A SIP method, as far as transaction matching cares. Methods are
/// case-sensitive (RFC 3261 §7.1): `invite` is an extension method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// CANCEL.
    Cancel,
    /// BYE.
    Bye,
    /// REGISTER.
    Register,
    /// OPTIONS.
    Options,
    /// INFO.
    Info,
    /// UPDATE.
    Update,
    /// PRACK.
    Prack,
    /// SUBSCRIBE.
    Subscribe,
    /// NOTIFY.
    Notify,
    /// MESSAGE.
    Message,
    /// REFER.
    Refer,
    /// PUBLISH.
    Publish,
    /// Any other (extension) method, verbatim.
    Other(Box<str>),
}

impl Method {
    /// Parses a method token (case-sensitive). Allocates only for
    /// extension methods.
    pub fn parse(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "CANCEL" => Method::Cancel,
            "BYE" => Method::Bye,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "MESSAGE" => Method::Message,
            "REFER" => Method::Refer,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.into()),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Cancel => "CANCEL",
            Method::Bye => "BYE",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }

    /// Whether this method creates INVITE transactions (INVITE itself).
    pub fn is_invite(&self) -> bool {
        matches!(self, Method::Invite)
    }

    /// The method under which a server transaction is keyed: ACK maps to
    /// INVITE (an ACK for a non-2xx belongs to the INVITE transaction);
    /// everything else, CANCEL included, keys as itself.
    fn server_key_method(self) -> Method {
        match self {
            Method::Ack => Method::Invite,
            m => m,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of a request needed for RFC 2543 (pre-magic-cookie) matching,
/// borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc2543Parts<'a> {
    /// Request-URI, as received.
    pub request_uri: &'a str,
    /// To tag, if any.
    pub to_tag: Option<&'a str>,
    /// From tag, if any.
    pub from_tag: Option<&'a str>,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq number (the method is passed separately).
    pub cseq: u32,
    /// The whole top Via header field value (sent-by, branch and all).
    pub top_via: &'a str,
}

/// Which matching rules produced a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Client transaction: our branch + CSeq method (§17.1.3).
    Client,
    /// Server transaction, RFC 3261 branch: branch + sent-by + method
    /// (§17.2.3).
    Server,
    /// Server transaction, RFC 2543 fallback (§17.2.3, last paragraphs).
    Rfc2543,
}

/// A transaction key. Build with [`TxKey::client`], [`TxKey::server`] or
/// [`TxKey::server_rfc2543`]; for an incoming CANCEL derive the key of the
/// INVITE it cancels with [`TxKey::for_cancel_target`].
///
/// Matching rules:
///
/// * **Client** (§17.1.3): a response matches if its top-Via branch equals
///   the one we put in the request and its CSeq method equals the request's
///   method. The CANCEL we send for an INVITE carries the same branch but is
///   a separate key because the method differs.
/// * **Server, RFC 3261** (§17.2.3): branch + sent-by + method, with ACK
///   keyed as INVITE (it matches the INVITE server transaction) and CANCEL
///   keyed as itself (its own non-INVITE transaction). sent-by is compared
///   ASCII case-insensitively (it is lower-cased), the branch exactly.
/// * **Server, RFC 2543** (no magic cookie): Request-URI, To tag, From tag,
///   Call-ID, CSeq number, method (ACK as INVITE) and the whole top Via.
///   For INVITE (and therefore ACK and CANCEL targets) the To tag is left
///   out of the key: the INVITE usually has none while its ACK carries the
///   tag of our response, which §17.2.3 says must match; dropping it keeps
///   ACK and INVITE on the same key at a negligible loss of precision.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    kind: KeyKind,
    method: Method,
    cseq: u32,
    /// All string parts concatenated; `ends[i]` is where part `i` ends.
    /// Shared: a transaction keeps its key in the table, in its cell and
    /// in the cell's box, and copies cost a reference count.
    buf: Arc<str>,
    ends: [u32; 5],
}

impl TxKey {
    /// Key of a client transaction: the branch we generated and the
    /// request's method (equivalently, a response's CSeq method).
    pub fn client(branch: &str, method: Method) -> TxKey {
        Self::build(KeyKind::Client, method, 0, &[branch], false)
    }

    /// Key of a server transaction under RFC 3261 rules, or `None` when the
    /// branch lacks the magic cookie (then use [`TxKey::server_rfc2543`]).
    /// `sent_by` is the top Via's `host[:port]`; `method` the request's
    /// method (an ACK yields the key of its INVITE transaction).
    pub fn server(branch: &str, sent_by: &str, method: Method) -> Option<TxKey> {
        if !is_rfc3261_branch(branch) {
            return None;
        }
        Some(Self::build(
            KeyKind::Server,
            method.server_key_method(),
            0,
            &[branch, sent_by],
            true,
        ))
    }

    /// [`TxKey::server`] with the sent-by given as the Via's host and port
    /// (the port the Via implies when it has none): the same key, without
    /// formatting `host:port` first.
    pub fn server_via(branch: &str, host: &str, port: u16, method: Method) -> Option<TxKey> {
        if !is_rfc3261_branch(branch) {
            return None;
        }
        let mut digits = [0u8; 6];
        let mut at = digits.len();
        let mut n = port;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        digits[at - 1] = b':';
        let suffix = std::str::from_utf8(&digits[at - 1..]).unwrap_or(":");
        let mut key = Self::build(
            KeyKind::Server,
            method.server_key_method(),
            0,
            &[branch, host, suffix],
            true,
        );
        // Parts 1 and 2 are one part, the sent-by: the suffix is digits and
        // `:` only, so lower-casing the host alone lower-cased all of it.
        key.ends[1] = key.ends[2];
        Some(key)
    }

    /// Key of a server transaction under the RFC 2543 fallback rules.
    pub fn server_rfc2543(parts: &Rfc2543Parts<'_>, method: Method) -> TxKey {
        let method = method.server_key_method();
        let to_tag = if method.is_invite() {
            ""
        } else {
            parts.to_tag.unwrap_or("")
        };
        Self::build(
            KeyKind::Rfc2543,
            method,
            parts.cseq,
            &[
                parts.request_uri,
                to_tag,
                parts.from_tag.unwrap_or(""),
                parts.call_id,
                parts.top_via,
            ],
            false,
        )
    }

    /// For the key of a CANCEL (client or server side), the key of the
    /// INVITE transaction it targets (RFC 3261 §9.2: same matching as the
    /// request, except the method). Keys of other methods are returned with
    /// the method replaced by INVITE likewise; the caller decides whether
    /// to look anything up.
    pub fn for_cancel_target(&self) -> TxKey {
        let mut k = self.clone();
        if k.kind == KeyKind::Rfc2543 && !k.method.is_invite() {
            // INVITE keys carry no To tag (see the type docs): rebuild.
            let p = |i| k.part(i).to_owned();
            let (ruri, from, call_id, via) = (p(0), p(2), p(3), p(4));
            return Self::server_rfc2543(
                &Rfc2543Parts {
                    request_uri: &ruri,
                    to_tag: None,
                    from_tag: Some(&from),
                    call_id: &call_id,
                    cseq: k.cseq,
                    top_via: &via,
                },
                Method::Invite,
            );
        }
        k.method = Method::Invite;
        k
    }

    /// Which rules produced this key.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The method part of the key (ACK already mapped to INVITE on the
    /// server side).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The branch, for RFC 3261 keys.
    pub fn branch(&self) -> Option<&str> {
        match self.kind {
            KeyKind::Client | KeyKind::Server => Some(self.part(0)),
            KeyKind::Rfc2543 => None,
        }
    }

    /// The (lower-cased) sent-by, for RFC 3261 server keys.
    pub fn sent_by(&self) -> Option<&str> {
        match self.kind {
            KeyKind::Server => Some(self.part(1)),
            _ => None,
        }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0) as usize
        };
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        self.buf.get(start..end).unwrap_or("")
    }

    fn build(
        kind: KeyKind,
        method: Method,
        cseq: u32,
        parts: &[&str],
        lower_second: bool,
    ) -> TxKey {
        thread_local! {
            // Where the parts are joined before the one allocation of the
            // key's text.
            static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let mut ends = [0u32; 5];
        let mut join = |buf: &mut String| {
            buf.clear();
            for (i, p) in parts.iter().take(5).enumerate() {
                let at = buf.len();
                buf.push_str(p);
                if lower_second && i == 1 {
                    if let Some(part) = buf.get_mut(at..) {
                        part.make_ascii_lowercase();
                    }
                }
                // Keys longer than 4 GiB are not a thing; saturate rather than panic.
                ends[i] = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            }
            Arc::<str>::from(buf.as_str())
        };
        let buf = SCRATCH
            .try_with(|s| match s.try_borrow_mut() {
                Ok(mut b) => {
                    let key = join(&mut b);
                    // A key made of a whole message's worth of text (an
                    // RFC 2543 key holds the R-URI and the top Via) is not
                    // kept around for the next one.
                    if b.capacity() > 1024 {
                        *b = String::new();
                    }
                    key
                }
                Err(_) => join(&mut String::new()),
            })
            .unwrap_or_else(|_| join(&mut String::new()));
        let n = parts.len().min(5);
        let last = if n == 0 { 0 } else { ends[n - 1] };
        for e in ends.iter_mut().skip(n) {
            *e = last;
        }
        TxKey {
            kind,
            method,
            cseq,
            buf,
            ends,
        }
    }
}

impl fmt::Debug for TxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TxKey");
        d.field("kind", &self.kind).field("method", &self.method);
        match self.kind {
            KeyKind::Client => d.field("branch", &self.part(0)),
            KeyKind::Server => d
                .field("branch", &self.part(0))
                .field("sent_by", &self.part(1)),
            KeyKind::Rfc2543 => d
                .field("request_uri", &self.part(0))
                .field("to_tag", &self.part(1))
                .field("from_tag", &self.part(2))
                .field("call_id", &self.part(3))
                .field("cseq", &self.cseq)
                .field("top_via", &self.part(4)),
        };
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "z9hG4bK776asdhds";

    #[test]
    fn server_via_is_the_server_key_of_host_and_port() {
        for port in [0u16, 7, 5060, 65535] {
            let text = format!("pc33.atlanta.com:{port}");
            let a = TxKey::server(B, &text, Method::Invite).unwrap();
            let b = TxKey::server_via(B, "PC33.Atlanta.COM", port, Method::Ack).unwrap();
            assert_eq!(a, b);
            assert_eq!(b.sent_by(), Some(text.as_str()));
            assert_eq!(b.branch(), Some(B));
        }
        assert!(TxKey::server_via("1234", "h", 5060, Method::Invite).is_none());
    }

    #[test]
    fn copies_share_the_text_and_keys_built_apart_are_equal() {
        let a = TxKey::server(B, "pc33.atlanta.com:5060", Method::Invite).unwrap();
        let copy = a.clone();
        assert!(Arc::ptr_eq(&a.buf, &copy.buf));
        let again = TxKey::server(B, "PC33.atlanta.com:5060", Method::Invite).unwrap();
        assert!(!Arc::ptr_eq(&a.buf, &again.buf));
        assert_eq!(a, again);
        let client = TxKey::client(B, Method::Invite);
        assert_ne!(a, client);
        assert_eq!(client.branch(), Some(B));
    }

    #[test]
    fn ack_matches_invite_server_transaction() {
        let inv = TxKey::server(B, "pc33.atlanta.com:5060", Method::Invite).unwrap();
        let ack = TxKey::server(B, "PC33.Atlanta.com:5060", Method::Ack).unwrap();
        assert_eq!(inv, ack);
        assert_eq!(ack.sent_by(), Some("pc33.atlanta.com:5060"));
        assert_eq!(ack.branch(), Some(B));
    }

    #[test]
    fn cancel_is_its_own_transaction_and_targets_invite() {
        let inv = TxKey::server(B, "a:5060", Method::Invite).unwrap();
        let cancel = TxKey::server(B, "a:5060", Method::Cancel).unwrap();
        assert_ne!(inv, cancel);
        assert_eq!(cancel.for_cancel_target(), inv);
        let cinv = TxKey::client(B, Method::Invite);
        let ccancel = TxKey::client(B, Method::Cancel);
        assert_ne!(cinv, ccancel);
        assert_eq!(ccancel.for_cancel_target(), cinv);
        assert_ne!(cinv, inv);
    }

    #[test]
    fn sent_by_and_branch_distinguish() {
        let a = TxKey::server(B, "a:5060", Method::Bye).unwrap();
        assert_ne!(a, TxKey::server(B, "b:5060", Method::Bye).unwrap());
        assert_ne!(
            a,
            TxKey::server("z9hG4bKother", "a:5060", Method::Bye).unwrap()
        );
        assert_ne!(a, TxKey::server(B, "a:5060", Method::Options).unwrap());
        // Part boundaries matter: ("ab","c") != ("a","bc").
        let x = TxKey::server("z9hG4bKab", "c", Method::Bye).unwrap();
        let y = TxKey::server("z9hG4bKa", "bc", Method::Bye).unwrap();
        assert_ne!(x, y);
    }

    #[test]
    fn rfc2543_fallback() {
        assert!(TxKey::server("1234", "a", Method::Invite).is_none());
        // A bare magic cookie (RFC 4475 3.2.1) falls back too.
        assert!(TxKey::server(MAGIC_COOKIE, "a", Method::Invite).is_none());
        assert!(TxKey::server_via(MAGIC_COOKIE, "a", 5060, Method::Invite).is_none());
        assert!(TxKey::server("z9hG4bK1", "a", Method::Invite).is_some());
        let parts = Rfc2543Parts {
            request_uri: "sip:bob@b.com",
            to_tag: None,
            from_tag: Some("f1"),
            call_id: "cid@a",
            cseq: 1,
            top_via: "SIP/2.0/UDP a.com;branch=1234",
        };
        let inv = TxKey::server_rfc2543(&parts, Method::Invite);
        let ack = TxKey::server_rfc2543(
            &Rfc2543Parts {
                to_tag: Some("t9"),
                ..parts
            },
            Method::Ack,
        );
        assert_eq!(inv, ack);
        let cancel = TxKey::server_rfc2543(&parts, Method::Cancel);
        assert_ne!(cancel, inv);
        assert_eq!(cancel.for_cancel_target(), inv);
        let other_call = TxKey::server_rfc2543(
            &Rfc2543Parts {
                call_id: "x",
                ..parts
            },
            Method::Invite,
        );
        assert_ne!(other_call, inv);
        let bye1 = TxKey::server_rfc2543(
            &Rfc2543Parts {
                to_tag: Some("t1"),
                ..parts
            },
            Method::Bye,
        );
        let bye2 = TxKey::server_rfc2543(
            &Rfc2543Parts {
                to_tag: Some("t2"),
                ..parts
            },
            Method::Bye,
        );
        assert_ne!(bye1, bye2);
        assert_eq!(inv.kind(), KeyKind::Rfc2543);
        assert!(format!("{inv:?}").contains("cid@a"));
    }

    #[test]
    fn methods_round_trip() {
        for m in [
            "INVITE",
            "ACK",
            "CANCEL",
            "BYE",
            "REGISTER",
            "OPTIONS",
            "INFO",
            "UPDATE",
            "PRACK",
            "SUBSCRIBE",
            "NOTIFY",
            "MESSAGE",
            "REFER",
            "PUBLISH",
            "FOO",
            "invite",
        ] {
            assert_eq!(Method::parse(m).as_str(), m);
        }
        assert_eq!(Method::parse("invite"), Method::Other("invite".into()));
    }
}
