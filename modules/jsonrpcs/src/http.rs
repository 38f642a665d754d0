//! The HTTP transport: `POST` (any path) with a JSON-RPC body, and
//! `GET /metrics` for every statistic in Prometheus text format. One
//! request per connection (`Connection: close`).

use crate::unix::{stopping, POLL};
use crate::{dispatch, metrics, Limits};
use sr_sdk::prelude::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const MAX_HEAD: usize = 64 * 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until shutdown; each is served on its own thread.
pub fn serve(lst: TcpListener, core: Weak<dyn Core>, limits: Arc<Limits>) {
    if let Err(e) = lst.set_nonblocking(true) {
        lm_err!("jsonrpcs: http: {e}");
        return;
    }
    let accept = || lst.accept().map(|(s, _)| s);
    crate::accept::accept_loop("HTTP", "rpc-http-conn", accept, core, limits, connection);
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    method: String,
    path: String,
    content_length: usize,
}

fn parse_head(h: &str) -> Option<Head> {
    let mut lines = h.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let mut content_length = 0;
    for l in lines {
        if let Some((n, v)) = l.split_once(':') {
            if n.trim().eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().ok()?;
            }
        }
    }
    Some(Head {
        method,
        path,
        content_length,
    })
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn respond(s: &mut TcpStream, code: u16, reason: &str, ctype: &str, body: &[u8]) {
    let data = sr_sdk::http::reply(
        code,
        reason,
        &[("Connection", "close")],
        ctype,
        body,
        "siprouter",
    );
    let _ = s.write_all(&data);
    let _ = s.flush();
}

/// Reads until `want` bytes are buffered (or the head is complete when
/// `want` is `None`); false on EOF, error, timeout or shutdown.
fn fill(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    want: Option<usize>,
    core: &Weak<dyn Core>,
    started: Instant,
) -> bool {
    let mut chunk = [0u8; 8192];
    loop {
        let done = match want {
            Some(n) => buf.len() >= n,
            None => find_end(buf).is_some(),
        };
        if done {
            return true;
        }
        if want.is_none() && buf.len() > MAX_HEAD {
            return false;
        }
        if stopping(core) || started.elapsed() > REQUEST_TIMEOUT {
            return false;
        }
        match s.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
}

fn connection(mut s: TcpStream, core: &Weak<dyn Core>, limits: &Limits) {
    if s.set_nonblocking(false).is_err() || s.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let started = Instant::now();
    let mut buf = Vec::new();
    if !fill(&mut s, &mut buf, None, core, started) {
        if buf.len() > MAX_HEAD {
            respond(
                &mut s,
                431,
                "Request Header Fields Too Large",
                "text/plain",
                b"",
            );
        }
        return;
    }
    let end = find_end(&buf).unwrap_or(0);
    let Some(head) = parse_head(&String::from_utf8_lossy(&buf[..end])) else {
        respond(&mut s, 400, "Bad Request", "text/plain", b"bad request\n");
        return;
    };
    let Some(c) = core.upgrade() else { return };
    match head.method.as_str() {
        "GET" | "HEAD" => {
            if head.path.split('?').next() != Some("/metrics") {
                respond(&mut s, 404, "Not Found", "text/plain", b"not found\n");
                return;
            }
            let text = metrics::render(&c.statistics());
            let body = if head.method == "HEAD" {
                &b""[..]
            } else {
                text.as_bytes()
            };
            respond(&mut s, 200, "OK", "text/plain; version=0.0.4", body);
        }
        "POST" => {
            if head.content_length > limits.max_request {
                respond(&mut s, 413, "Payload Too Large", "text/plain", b"");
                return;
            }
            let want = end + 4 + head.content_length;
            if !fill(&mut s, &mut buf, Some(want), core, started) {
                return;
            }
            let body = String::from_utf8_lossy(&buf[end + 4..want]);
            let (code, reason, text) = dispatch::http_answer(&*c, &body, limits.pretty);
            respond(&mut s, code, reason, "application/json", text.as_bytes());
        }
        _ => respond(&mut s, 405, "Method Not Allowed", "text/plain", b""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = parse_head("POST /RPC HTTP/1.1\r\nHost: x\r\ncontent-length: 12").unwrap_or(Head {
            method: String::new(),
            path: String::new(),
            content_length: 0,
        });
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/RPC");
        assert_eq!(h.content_length, 12);
        assert!(parse_head("POST").is_none());
        assert!(parse_head("POST / HTTP/1.1\r\nContent-Length: x").is_none());
        assert_eq!(find_end(b"a\r\n\r\nb"), Some(1));
    }
}
