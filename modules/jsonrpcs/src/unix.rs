//! The UNIX stream socket transport: one JSON-RPC document per line in,
//! one response per line out, many requests per connection.

use crate::dispatch;
use crate::Limits;
use sr_sdk::prelude::*;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Weak};

pub use crate::accept::{stopping, POLL};

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
    if s.set_nonblocking(false).is_err() || s.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let Ok(mut w) = s.try_clone() else { return };
    let mut r = BufReader::new(s);
    let mut line: Vec<u8> = Vec::new();
    loop {
        if stopping(core) {
            return;
        }
        match r.read_until(b'\n', &mut line) {
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
