//! What msilo keeps of a MESSAGE and how it sends it again, without I/O:
//! the headers kept (those Kamailio's parser does not know), the content
//! type without parameters, and the MESSAGE built from a stored row.

use sr_sdk::sip_msg::Message;

/// The header names Kamailio's parser knows (its `hdr_types_t`, long
/// and compact forms): msilo keeps every other header of a MESSAGE.
const KNOWN: &[&str] = &[
    "via",
    "v",
    "to",
    "t",
    "from",
    "f",
    "cseq",
    "call-id",
    "i",
    "contact",
    "m",
    "max-forwards",
    "route",
    "record-route",
    "content-type",
    "c",
    "content-length",
    "l",
    "authorization",
    "expires",
    "min-expires",
    "proxy-authorization",
    "supported",
    "k",
    "require",
    "proxy-require",
    "unsupported",
    "allow",
    "event",
    "o",
    "accept",
    "accept-language",
    "organization",
    "priority",
    "subject",
    "s",
    "user-agent",
    "server",
    "content-disposition",
    "diversion",
    "remote-party-id",
    "refer-to",
    "r",
    "sip-if-match",
    "session-expires",
    "x",
    "min-se",
    "subscription-state",
    "accept-contact",
    "a",
    "allow-events",
    "u",
    "content-encoding",
    "e",
    "referred-by",
    "b",
    "reject-contact",
    "j",
    "request-disposition",
    "d",
    "www-authenticate",
    "proxy-authenticate",
    "date",
    "identity",
    "y",
    "identity-info",
    "n",
    "p-preferred-identity",
    "p-asserted-identity",
    "path",
    "privacy",
    "reason",
    "call-info",
];

/// The headers of `m` Kamailio's parser does not know, one
/// `Name: value\r\n` each, in order.
pub fn extra_headers(m: &Message<'_>) -> String {
    let mut out = String::new();
    for h in m.headers() {
        let n = h.name_str.to_ascii_lowercase();
        if !KNOWN.contains(&n.as_str()) {
            out.push_str(h.name_str);
            out.push_str(": ");
            out.push_str(h.value);
            out.push_str("\r\n");
        }
    }
    out
}

/// A Content-Type without its parameters.
pub fn content_type(v: &str) -> String {
    v.split(';').next().unwrap_or("").trim().to_string()
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Row id.
    pub id: i64,
    /// Sender (the From URI).
    pub src: String,
    /// Recipient (the To URI): the Request-URI and To of the MESSAGE sent.
    pub dst: String,
    /// When it came (unix seconds).
    pub inc_time: i64,
    /// Its content type.
    pub ctype: String,
    /// Its body.
    pub body: Vec<u8>,
    /// The headers kept.
    pub extra: String,
}

/// The body of the MESSAGE that delivers `s`: a `text/plain` one prefixed
/// with `[Offline message - <ctime>] ` when `add_date` (Kamailio's
/// layout).
pub fn body(s: &Stored, add_date: bool) -> Vec<u8> {
    let mut body = Vec::new();
    if add_date && s.ctype.eq_ignore_ascii_case("text/plain") {
        let when = sr_sdk::localtime::strftime("%a %b %e %H:%M:%S %Y", s.inc_time, false)
            .unwrap_or_default();
        body.extend_from_slice(format!("[Offline message - {when}] ").as_bytes());
    }
    body.extend_from_slice(&s.body);
    body
}

/// The headers after the head (see `LocalRequests::head`): a `Date` of
/// the time it came, its `Content-Type`, `more` (each line ending in
/// CRLF) and the headers kept, then the blank line.
pub fn tail(s: &Stored, more: &str) -> String {
    let date = sr_sdk::localtime::strftime("%a, %d %b %Y %H:%M:%S GMT", s.inc_time, true)
        .unwrap_or_default();
    format!(
        "Date: {date}\r\nContent-Type: {}\r\n{more}{}\r\n",
        s.ctype, s.extra
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_headers_and_content_type() {
        let raw = "MESSAGE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nSubject: s\r\nX-A: 1\r\nUser-Agent: u\r\nx-b: 2\r\nContent-Type: text/plain;charset=utf-8\r\nContent-Length: 2\r\n\r\nhi";
        let m = Message::parse(raw.as_bytes()).expect("parses");
        assert_eq!(extra_headers(&m), "X-A: 1\r\nx-b: 2\r\n");
        assert_eq!(content_type("text/plain;charset=utf-8"), "text/plain");
        assert_eq!(content_type(" text/html "), "text/html");
    }

    #[test]
    fn body_and_tail() {
        let s = Stored {
            id: 1,
            src: "sip:alice@a".into(),
            dst: "sip:bob@b".into(),
            inc_time: 0,
            ctype: "text/plain".into(),
            body: b"hello".to_vec(),
            extra: "X-A: 1\r\n".into(),
        };
        assert_eq!(body(&s, false), b"hello");
        let dated = body(&s, true);
        assert!(dated.starts_with(b"[Offline message - "));
        assert!(dated.ends_with(b"] hello"));
        let html = Stored {
            ctype: "text/html".into(),
            ..s.clone()
        };
        assert_eq!(body(&html, true), b"hello");
        assert_eq!(
            tail(&s, "Contact: <sip:x>\r\n"),
            "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: text/plain\r\nContact: <sip:x>\r\nX-A: 1\r\n\r\n"
        );
    }
}
