//! The accept loop both transports share: connections are served on their
//! own threads, up to the connection limit, until shutdown.

use crate::Limits;
use sr_sdk::prelude::*;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often blocked threads look at the shutdown flag.
pub const POLL: Duration = Duration::from_millis(100);

/// Whether the server is going away (or gone).
pub fn stopping(core: &Weak<dyn Core>) -> bool {
    core.upgrade().is_none_or(|c| c.shutting_down())
}

/// A connection's place among `max_conns`, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts with `accept` (a non-blocking listener) until shutdown and
/// serves each connection with `serve` on a thread named `thread`.
pub fn accept_loop<S, A, F>(
    what: &str,
    thread: &str,
    mut accept: A,
    core: Weak<dyn Core>,
    limits: Arc<Limits>,
    serve: F,
) where
    S: Send + 'static,
    A: FnMut() -> std::io::Result<S>,
    F: Fn(S, &Weak<dyn Core>, &Limits) + Send + Sync + Copy + 'static,
{
    let active = Arc::new(AtomicUsize::new(0));
    while !stopping(&core) {
        match accept() {
            Ok(s) => {
                if active.load(Ordering::Relaxed) >= limits.max_conns {
                    lm_warn!("jsonrpcs: too many {what} connections, refusing one");
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (core2, active2, limits2) = (core.clone(), active.clone(), limits.clone());
                let spawned =
                    std::thread::Builder::new()
                        .name(thread.to_string())
                        .spawn(move || {
                            // Counted out even if serving panics.
                            let _slot = Slot(active2);
                            serve(s, &core2, &limits2);
                        });
                if let Err(e) = spawned {
                    active.fetch_sub(1, Ordering::Relaxed);
                    lm_err!("jsonrpcs: cannot start a connection thread: {e}");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL / 2),
            Err(e) => {
                lm_err!("jsonrpcs: {what} accept: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}
