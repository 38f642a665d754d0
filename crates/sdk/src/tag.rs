//! Tags and branches the server makes up: To-tags of local replies,
//! stateless branches. Each is a 64-bit hash of the request's identifying
//! parts, written in hex: the same request gets the same text, different
//! requests different ones.
//!
//! The hash has a fixed seed, as Kamailio's MD5-based values are fixed:
//! after a restart, or on another instance sharing the address, a CANCEL
//! forwarded statelessly still gets its INVITE's branch and the ACK of a
//! stateless negative reply still matches its To-tag. These values are
//! identifiers, never hash-table keys, so a fixed seed opens no
//! hash-flooding door; like Kamailio's they are not secrets.
//!
//! This replaced MD5 and `format!` (about a sixth of a stateless reply's
//! instructions).

use std::hash::{BuildHasher, Hasher};

/// The seed (any constant; changing it changes every tag and branch).
const SEED: u64 = 0x7369_7072_6f75_7465;

fn state() -> foldhash::quality::FixedState {
    foldhash::quality::FixedState::with_seed(SEED)
}

/// The keyed hash of `parts` (with `domain` keeping different uses of the
/// same parts apart). Part boundaries count: ("ab", "c") and ("a", "bc")
/// differ.
pub fn hash64(domain: u8, parts: &[&[u8]]) -> u64 {
    let mut h = state().build_hasher();
    h.write_u8(domain);
    for p in parts {
        h.write_usize(p.len());
        h.write(p);
    }
    h.finish()
}

/// Appends `n` as 16 lower-case hex digits.
pub fn push_hex64(out: &mut String, n: u64) {
    sip_msg::text::push_hex(out, &n.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_within_the_process_and_sensitive_to_every_part() {
        let a = hash64(1, &[b"call", b"tag", b"branch"]);
        assert_eq!(a, hash64(1, &[b"call", b"tag", b"branch"]));
        assert_ne!(a, hash64(2, &[b"call", b"tag", b"branch"]));
        assert_ne!(a, hash64(1, &[b"call", b"tag", b"branci"]));
        assert_ne!(a, hash64(1, &[b"cal", b"ltag", b"branch"]));
        let mut s = String::new();
        push_hex64(&mut s, 0x0123_4567_89ab_cdef);
        assert_eq!(s, "0123456789abcdef");
    }
}
