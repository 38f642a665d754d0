//! HTTP replies on the connection an HTTP request came on (xhttp's
//! `xhttp_reply`, the websocket handshake, `jsonrpc_dispatch`).

use crate::ctx::Ctx;
use crate::msg::Dest;
use crate::SendError;

/// Builds an HTTP/1.1 reply: the status line, `extra` headers (each
/// without its line end), `Content-Type` when `ctype` is not empty,
/// `Server` and `Content-Length` (not on 1xx and 204 replies, which have
/// no body, RFC 7230 3.3.2), then `body`.
pub fn reply(
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
    ctype: &str,
    body: &[u8],
    server: &str,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} {reason}\r\n");
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !ctype.is_empty() {
        out.push_str(&format!("Content-Type: {ctype}\r\n"));
    }
    out.push_str(&format!("Server: {server}\r\n"));
    let bodiless = code < 200 || code == 204;
    if !bodiless {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !bodiless {
        out.extend_from_slice(body);
    }
    out
}

/// Whether the connection is to be closed after the reply: the script
/// asked (`set_reply_close()`), or the client did (`Connection: close`,
/// or HTTP/1.0 without `Connection: keep-alive`).
pub fn wants_close(ctx: &Ctx<'_>) -> bool {
    let m = ctx.msg.msg();
    let connection = |token: &str| {
        m.headers_by_name("connection").any(|h| {
            h.value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    let http10 = matches!(
        m.start_line(),
        sip_msg::StartLine::Http { version, .. } if version.eq_ignore_ascii_case("HTTP/1.0")
    );
    ctx.msg.reply_flags.close || connection("close") || (http10 && !connection("keep-alive"))
}

/// Sends an HTTP reply (built by [`reply`]) on the request's connection,
/// then closes the connection when [`wants_close`] says so.
pub fn send(ctx: &mut Ctx<'_>, data: &[u8]) -> Result<(), SendError> {
    let rcv = ctx.msg.rcv;
    let mut d = Dest::new(rcv.proto, rcv.src);
    d.conn_id = Some(rcv.conn_id);
    d.no_connect = true;
    let r = ctx.core.send(&d, data);
    if wants_close(ctx) {
        if let Some(c) = ctx.core.stream_conns() {
            c.close(rcv.conn_id);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::reply;

    #[test]
    fn replies_with_and_without_bodies() {
        let r = reply(200, "OK", &[("X-A", "1")], "text/plain", b"hi", "sr");
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Type: text/plain\r\nServer: sr\r\nContent-Length: 2\r\n\r\nhi"
        );
        let r = reply(101, "Switching Protocols", &[], "", b"", "sr");
        assert_eq!(r, b"HTTP/1.1 101 Switching Protocols\r\nServer: sr\r\n\r\n");
        assert!(
            !String::from_utf8(reply(204, "No Content", &[], "", b"x", "sr"))
                .unwrap()
                .contains("Content-Length")
        );
    }
}
