//! The opening handshake (RFC 6455 4.2): checking a client's HTTP GET and
//! building the `101 Switching Protocols` or the error reply. No I/O.

use base64::Engine;
use sha1::{Digest, Sha1};
use sr_sdk::sip_msg::Message;

/// The GUID RFC 6455 appends to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Which sub-protocols are offered (`sub_protocols`: 1 sip, 2 msrp).
pub const SUB_SIP: i64 = 1;
/// MSRP (RFC 7977): accepted in the parameter, never negotiated here.
pub const SUB_MSRP: i64 = 2;

/// How the handshake answers a cross-origin client (`cors_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers (0).
    None,
    /// `Access-Control-Allow-Origin: *` (1).
    Any,
    /// The client's Origin echoed, with credentials allowed (2).
    Echo,
}

/// The outcome: the HTTP reply's status, reason and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// 101 when the upgrade goes ahead.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// Headers to send.
    pub headers: Vec<(&'static str, String)>,
}

/// A refusal with no extra header.
pub fn refuse(code: u16, reason: &'static str) -> Answer {
    Answer {
        code,
        reason,
        headers: Vec::new(),
    }
}

/// Whether a header's comma-separated tokens include `token`.
fn has_token(m: &Message<'_>, name: &str, token: &str) -> bool {
    m.headers_by_name(name).any(|h| {
        h.value
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

fn header<'a>(m: &Message<'a>, name: &str) -> Option<&'a str> {
    m.headers_by_name(name).next().map(|h| h.value.trim())
}

/// A `400 Bad Request` saying what a handshake needs, as Kamailio's: the
/// sub-protocol and the version it speaks.
fn bad_request(why: &str) -> Answer {
    sr_sdk::lm_dbg!("websocket: handshake refused: {why}");
    let mut a = refuse(400, "Bad Request");
    a.headers
        .push(("Sec-WebSocket-Protocol", "sip".to_string()));
    a.headers.push(("Sec-WebSocket-Version", "13".to_string()));
    a
}

/// Checks the handshake request and says how to answer it.
pub fn answer(m: &Message<'_>, sub_protocols: i64, cors: Cors) -> Answer {
    let get = m.method().is_some_and(|x| x.as_str() == "GET");
    if !m.is_http() || !get {
        return refuse(405, "Method Not Allowed");
    }
    if header(m, "host").is_none_or(str::is_empty) {
        return bad_request("no Host");
    }
    if !has_token(m, "upgrade", "websocket") {
        return bad_request("Upgrade is not websocket");
    }
    if !has_token(m, "connection", "upgrade") {
        return bad_request("Connection does not say upgrade");
    }
    let key = header(m, "sec-websocket-key").unwrap_or("");
    let key_ok = base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|k| k.len() == 16);
    if !key_ok {
        return bad_request("bad Sec-WebSocket-Key");
    }
    if header(m, "sec-websocket-version") != Some("13") {
        let mut a = refuse(426, "Upgrade Required");
        a.headers.push(("Sec-WebSocket-Version", "13".to_string()));
        return a;
    }
    if sub_protocols & SUB_SIP == 0 || !has_token(m, "sec-websocket-protocol", "sip") {
        return bad_request("unsupported sub-protocol (sip expected)");
    }
    // (In Kamailio's order and case.)
    let mut headers = vec![
        ("Sec-WebSocket-Protocol", "sip".to_string()),
        ("Upgrade", "websocket".to_string()),
        ("Connection", "upgrade".to_string()),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ];
    match (cors, header(m, "origin")) {
        (Cors::Any, Some(_)) => headers.push(("Access-Control-Allow-Origin", "*".to_string())),
        (Cors::Echo, Some(o)) => {
            headers.push(("Access-Control-Allow-Origin", o.to_string()));
            headers.push(("Access-Control-Allow-Credentials", "true".to_string()));
        }
        _ => {}
    }
    Answer {
        code: 101,
        reason: "Switching Protocols",
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn get(extra: &str) -> Vec<u8> {
        format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn code(raw: &[u8]) -> u16 {
        answer(&Message::parse(raw).unwrap(), SUB_SIP, Cors::None).code
    }

    #[test]
    fn the_rfc_example_key() {
        // RFC 6455 1.3.
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn a_good_request_is_upgraded() {
        let raw = get("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: msrp, sip\r\nOrigin: https://a.example\r\n");
        let m = Message::parse(&raw).unwrap();
        let a = answer(&m, SUB_SIP, Cors::Echo);
        assert_eq!(a.code, 101);
        let h = |n: &str| {
            a.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            h("Sec-WebSocket-Accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(h("Sec-WebSocket-Protocol"), Some("sip"));
        assert_eq!(h("Access-Control-Allow-Origin"), Some("https://a.example"));
        assert_eq!(answer(&m, SUB_SIP, Cors::None).headers.len(), 4);
    }

    #[test]
    fn faults_get_their_status() {
        let ok = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n";
        assert_eq!(code(&get(ok)), 101);
        assert_eq!(
            code(&get(
                "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Protocol: sip\r\n"
            )),
            426
        );
        assert_eq!(code(&get("Sec-WebSocket-Version: 13\r\n")), 400);
        assert_eq!(
            code(&get(
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n"
            )),
            400
        );
        let post = String::from_utf8(get(ok)).unwrap().replace("GET", "POST");
        assert_eq!(code(post.as_bytes()), 405);
        let no_upgrade = String::from_utf8(get(ok))
            .unwrap()
            .replace("Upgrade: websocket", "Upgrade: h2c");
        assert_eq!(code(no_upgrade.as_bytes()), 400);
        let bad_key = String::from_utf8(get(ok)).unwrap().replace(KEY, "c2hvcnQ=");
        assert_eq!(code(bad_key.as_bytes()), 400);
        // Only the sip sub-protocol is negotiated.
        let raw = get(ok);
        let m = Message::parse(&raw).unwrap();
        assert_eq!(answer(&m, SUB_MSRP, Cors::None).code, 400);
    }
}
