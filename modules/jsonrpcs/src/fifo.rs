//! The FIFO transport (Kamailio's jsonrpcs `transport` bit 2, what
//! `kamctl` uses): JSON-RPC documents written into a named pipe, each with
//! a `reply_name`; the response is written into the named pipe of that
//! name in `fifo_reply_dir` (`/tmp/` by default), which the client made
//! and reads until it is closed. A document may span several lines.

use crate::dispatch;
use crate::Limits;
use sr_sdk::prelude::*;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::{Duration, Instant};

pub use crate::accept::{stopping, POLL};

/// Makes the named pipe `path` with permissions `mode` (a file already
/// there is replaced).
pub fn create(path: &Path, mode: u32) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let m = nix::sys::stat::Mode::from_bits_truncate(mode);
    nix::unistd::mkfifo(path, m)
        .map_err(|e| format!("cannot make the FIFO {}: {e}", path.display()))?;
    // mkfifo's mode is filtered by the umask: set it as asked.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    Ok(())
}

/// A reply pipe name the client may give: a plain file name.
fn reply_path(dir: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
        return None;
    }
    Some(dir.join(name))
}

/// Reads documents from the pipe at `path` until shutdown.
pub fn serve(
    path: PathBuf,
    reply_dir: PathBuf,
    core: Weak<dyn Core>,
    limits: std::sync::Arc<Limits>,
) {
    // Opened for reading and writing, so that it never reads end-of-file
    // between clients; not blocking, so that shutdown is seen.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path);
    let mut f = match f {
        Ok(f) => f,
        Err(e) => {
            lm_err!("jsonrpcs: FIFO {}: {e}", path.display());
            return;
        }
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    while !stopping(&core) {
        match f.read(&mut chunk) {
            Ok(0) => std::thread::sleep(POLL / 2),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                documents(&mut buf, &reply_dir, &core, &limits);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                std::thread::sleep(POLL / 2)
            }
            Err(e) => {
                lm_err!("jsonrpcs: FIFO {}: {e}", path.display());
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Answers every whole document in `buf` and keeps what follows the last.
fn documents(buf: &mut Vec<u8>, reply_dir: &Path, core: &Weak<dyn Core>, limits: &Limits) {
    let mut used = 0;
    {
        let mut it = sr_sdk::serde_json::Deserializer::from_slice(buf).into_iter::<Json>();
        loop {
            match it.next() {
                Some(Ok(doc)) => {
                    used = it.byte_offset();
                    answer(doc, reply_dir, core, limits.pretty);
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    lm_warn!("jsonrpcs: FIFO: not a JSON document ({e}): dropped");
                    used = buf.len();
                    break;
                }
                None => {
                    used = buf.len();
                    break;
                }
            }
        }
    }
    buf.drain(..used.min(buf.len()));
    if buf.len() > limits.max_request {
        lm_warn!("jsonrpcs: FIFO: request too large: dropped");
        buf.clear();
    }
}

/// Runs one request and writes its response into its reply pipe.
fn answer(doc: Json, reply_dir: &Path, core: &Weak<dyn Core>, pretty: bool) {
    let name = doc
        .get("reply_name")
        .and_then(Json::as_str)
        .map(str::to_string);
    let Some(c) = core.upgrade() else { return };
    let Some(resp) = dispatch::handle(&*c, &doc.to_string()) else {
        return;
    };
    let Some(name) = name else {
        lm_warn!("jsonrpcs: FIFO request without reply_name: the response is dropped");
        return;
    };
    let Some(path) = reply_path(reply_dir, &name) else {
        lm_warn!(
            "jsonrpcs: FIFO reply_name '{name}' is not a plain file name: the response is dropped"
        );
        return;
    };
    // The client opened its pipe for reading before writing the request;
    // it may take a moment to be there.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut out = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => break f,
            Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::ENXIO) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                lm_warn!("jsonrpcs: FIFO reply {}: {e}", path.display());
                return;
            }
        }
    };
    // `pretty_format` as on HTTP (kamctl prints what it gets).
    let text = if pretty {
        sr_sdk::serde_json::to_string_pretty(&resp).unwrap_or_default() + "\n"
    } else {
        format!("{resp}\n")
    };
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        match out.write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(e)
                if e.kind() == ErrorKind::WouldBlock
                    && Instant::now() < deadline + Duration::from_secs(3) =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                lm_warn!("jsonrpcs: FIFO reply {}: {e}", path.display());
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_names_are_plain_file_names() {
        let d = Path::new("/tmp/");
        assert_eq!(
            reply_path(d, "kamailio_receiver_1"),
            Some(PathBuf::from("/tmp/kamailio_receiver_1"))
        );
        for bad in ["", ".", "..", "../etc/passwd", "a/b"] {
            assert_eq!(reply_path(d, bad), None, "{bad}");
        }
    }
}
