//! The UNIX stream socket transport: one JSON-RPC document per line in,
//! one response per line out, many requests per connection — or, when a
//! connection starts with a BINRPC packet (`kamcmd`), BINRPC packets in
//! and out on it.

use crate::binrpc;
use crate::dispatch;
use crate::Limits;
use sr_sdk::prelude::*;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Weak};

pub use crate::accept::{stopping, POLL};

/// How long an answer may wait for a client that does not read it.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts connections until shutdown; each is served on its own thread.
pub fn serve(lst: UnixListener, core: Weak<dyn Core>, limits: Arc<Limits>) {
    if let Err(e) = lst.set_nonblocking(true) {
        lm_err!("jsonrpcs: unix socket: {e}");
        return;
    }
    let accept = || lst.accept().map(|(s, _)| s);
    crate::accept::accept_loop("RPC", "rpc-unix-conn", accept, core, limits, connection);
}

fn connection(s: UnixStream, core: &Weak<dyn Core>, limits: &Limits) {
    if s.set_nonblocking(false).is_err()
        || s.set_read_timeout(Some(POLL)).is_err()
        || s.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let Ok(mut w) = s.try_clone() else { return };
    let mut r = BufReader::new(s);
    // The first byte says which protocol the connection speaks.
    loop {
        if stopping(core) {
            return;
        }
        match r.fill_buf() {
            Ok([]) => return,
            Ok(b) if b[0] == binrpc::MAGIC_VERS => return binrpc_connection(r, w, core, limits),
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
    let mut line: Vec<u8> = Vec::new();
    loop {
        if stopping(core) {
            return;
        }
        // At most one byte past the limit is read into a line.
        let room = (limits.max_request + 1).saturating_sub(line.len()) as u64;
        match (&mut r).take(room).read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) if line.last() != Some(&b'\n') => {
                // EOF without a final newline: answer what came, then close.
                let _ = answer(&mut w, core, &line, limits);
                return;
            }
            Ok(_) => {
                if answer(&mut w, core, &line, limits).is_err() {
                    return;
                }
                line.clear();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
        if line.len() > limits.max_request {
            let e = json!({"jsonrpc": "2.0", "error": {"code": dispatch::INVALID_REQUEST, "message": "request too large"}, "id": null});
            let _ = w.write_all(format!("{e}\n").as_bytes());
            return;
        }
    }
}

fn answer(
    w: &mut UnixStream,
    core: &Weak<dyn Core>,
    line: &[u8],
    limits: &Limits,
) -> std::io::Result<()> {
    let text = String::from_utf8_lossy(line);
    if text.trim().is_empty() {
        return Ok(());
    }
    let Some(c) = core.upgrade() else {
        return Err(ErrorKind::BrokenPipe.into());
    };
    if limits.max_request < line.len() {
        return Err(ErrorKind::InvalidData.into());
    }
    match dispatch::handle(&*c, text.trim()) {
        Some(resp) => {
            let mut out = resp.to_string();
            out.push('\n');
            w.write_all(out.as_bytes())
        }
        None => Ok(()),
    }
}

/// A connection speaking BINRPC: packets read whole, each request run
/// and answered (a reply with the result's values, or a fault with the
/// error's code and message), the request's cookie echoed.
pub(crate) fn binrpc_connection<R: Read, W: Write>(
    mut r: R,
    mut w: W,
    core: &Weak<dyn Core>,
    limits: &Limits,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if stopping(core) {
            return;
        }
        // Whole packets first.
        loop {
            let h = match binrpc::header(&buf) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => {
                    let f = binrpc::packet(binrpc::FAULT, 0, &binrpc::fault_body(400, e.0));
                    let _ = w.write_all(&f);
                    return;
                }
            };
            if h.body_len > limits.max_request {
                let f = binrpc::packet(
                    binrpc::FAULT,
                    h.cookie,
                    &binrpc::fault_body(400, "request too large"),
                );
                let _ = w.write_all(&f);
                return;
            }
            let total = h.header_len + h.body_len;
            if buf.len() < total {
                break;
            }
            let out = binrpc_answer(core, h, &buf[h.header_len..total]);
            buf.drain(..total);
            if w.write_all(&out).is_err() {
                return;
            }
        }
        match r.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// The answer to one BINRPC packet.
pub(crate) fn binrpc_answer(core: &Weak<dyn Core>, h: binrpc::Header, body: &[u8]) -> Vec<u8> {
    let fault = |code: i64, msg: &str| {
        binrpc::packet(binrpc::FAULT, h.cookie, &binrpc::fault_body(code, msg))
    };
    if h.kind != binrpc::REQ {
        return fault(400, "not a request");
    }
    let (method, params) = match binrpc::request(body) {
        Ok(x) => x,
        Err(e) => return fault(400, e.0),
    };
    let Some(c) = core.upgrade() else {
        return fault(500, "shutting down");
    };
    match dispatch::Caller::call(&*c, &method, &params) {
        Ok(v) => binrpc::packet(binrpc::REPL, h.cookie, &binrpc::reply_body(&v)),
        // Kamailio's binrpc words an unknown method so, with 500.
        Err(e) if e.code == dispatch::METHOD_NOT_FOUND => {
            fault(500, &format!("command {method} not found"))
        }
        // JSON-RPC's own (negative) codes mean nothing to binrpc clients.
        Err(e) if e.code < 0 => fault(500, &e.message),
        Err(e) => fault(e.code, &e.message),
    }
}
