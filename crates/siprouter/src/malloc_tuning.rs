//! glibc malloc settings for a server that allocates per message.
//!
//! glibc gives each worker thread its own arena: a 64 MiB address range of
//! which only the used part is readable. When the arena grows, glibc makes
//! the next pages readable with one `mprotect` call per growth step (often
//! a single page), and under a steady call rate the transactions kept for
//! their wait timer grow the arenas for seconds. Measured on the stateful
//! benchmark at 8,000 calls/s: about 21,000 `mprotect` calls per second,
//! 7 % of the server's CPU time (see `docs/benchmarks.md`).
//!
//! With `M_TOP_PAD` at the arena size, glibc makes a new arena readable in
//! full when it creates it, so growing costs no system call. Pages are
//! still only backed by memory when first written; what changes is that up
//! to 64 MiB of free space at the top of an arena stays resident after a
//! load peak instead of being handed back to the kernel, and (as with any
//! malloc parameter set) glibc's adaptive mmap threshold is off, so every
//! allocation of 128 KiB or more is its own `mmap` (siprouter makes those
//! only at start and for very large messages).
//!
//! An operator who sets glibc's own knobs (`MALLOC_TOP_PAD_`, or
//! `glibc.malloc.top_pad` in `GLIBC_TUNABLES`) keeps them: siprouter then
//! leaves malloc alone.

/// The top pad siprouter asks for: the size of a glibc thread arena.
pub const TOP_PAD: usize = 64 << 20;

/// Whether to set the top pad, given the values of the environment
/// variables `MALLOC_TOP_PAD_` and `GLIBC_TUNABLES`: not when the operator
/// set it already.
pub fn wanted(top_pad_env: Option<&str>, tunables_env: Option<&str>) -> bool {
    top_pad_env.is_none() && !tunables_env.is_some_and(|t| t.contains("glibc.malloc.top_pad"))
}

/// Applies the top pad unless the environment sets it; returns whether it
/// was applied.
pub fn apply() -> bool {
    let top = std::env::var("MALLOC_TOP_PAD_").ok();
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    if !wanted(top.as_deref(), tunables.as_deref()) {
        return false;
    }
    set_top_pad(TOP_PAD)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_top_pad(bytes: usize) -> bool {
    let Ok(v) = libc::c_int::try_from(bytes) else {
        return false;
    };
    // SAFETY: mallopt only sets glibc's malloc parameters; it takes the
    // arena lock itself and is safe to call from any thread.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::mallopt(libc::M_TOP_PAD, v) };
    rc == 1
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_top_pad(_bytes: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_own_setting_wins() {
        assert!(wanted(None, None));
        assert!(wanted(None, Some("glibc.malloc.arena_max=2")));
        assert!(!wanted(Some("1048576"), None));
        assert!(!wanted(
            None,
            Some("glibc.malloc.arena_max=2:glibc.malloc.top_pad=0")
        ));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_setting() {
        assert!(set_top_pad(TOP_PAD));
    }
}
