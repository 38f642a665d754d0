//! Kamailio's core string hash (`core_hash`, `core_case_hash` of
//! `hashes.h`), bit for bit, for modules that must place or pick things
//! the way Kamailio does (htable's slots, cfgutils' locks and
//! `core_hash()`).

/// The hash of `s1` then `s2` (each starting its own 4-byte words),
/// before any masking: bytes read as C's signed `char`s, ASCII letters
/// folded to lower case when `case_insensitive`.
pub fn core_hash(s1: &[u8], s2: Option<&[u8]>, case_insensitive: bool) -> u32 {
    let byte = |c: u8| -> u32 {
        let c = if case_insensitive && c.is_ascii_uppercase() {
            c | 0x20
        } else {
            c
        };
        (c as i8) as i32 as u32
    };
    let feed = |mut h: u32, b: &[u8]| -> u32 {
        let mut words = b.chunks_exact(4);
        for w in &mut words {
            let v = (byte(w[0]) << 24)
                .wrapping_add(byte(w[1]) << 16)
                .wrapping_add(byte(w[2]) << 8)
                .wrapping_add(byte(w[3]));
            h = h.wrapping_add(v ^ (v >> 3));
        }
        let mut v: u32 = 0;
        for &c in words.remainder() {
            v = (v << 8).wrapping_add(byte(c));
        }
        h.wrapping_add(v ^ (v >> 3))
    };
    let mut h = feed(0, s1);
    if let Some(s2) = s2 {
        h = feed(h, s2);
    }
    h.wrapping_add(h >> 11)
        .wrapping_add((h >> 13).wrapping_add(h >> 23))
}

/// A random number, cheap and good enough for spreading values (not for
/// secrets): the standard library's per-process random hash keys over a
/// counter and the time.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values Kamailio 5.6.3 gave (`core_hash()` of cfgutils: masked, +1).
    #[test]
    fn kamailio_s_values() {
        let ch = |a: &str, b: &str, bits: u32| {
            let h = core_hash(a.as_bytes(), (!b.is_empty()).then_some(b.as_bytes()), false);
            (h & ((1u32 << bits) - 1)) + 1
        };
        assert_eq!(ch("abc", "", 4), 3);
        assert_eq!(ch("alice", "example.com", 8), 71);
        assert_eq!(ch("x", "y", 1), 2);
        assert_eq!(ch("abcd", "", 31), 1834959897);
        assert_eq!(ch("été", "", 16), 38650);
        assert_eq!(ch("Alice", "", 8), 150);
        assert_eq!(ch("alice@example.com", "", 16), 3030);
        assert_eq!(ch("alice@example.com", "", 24), 1182678);
        // The second string starts its own words.
        assert_eq!(
            core_hash(b"alice", Some(b"example.com"), false) & ((1 << 30) - 1),
            368552775 - 1
        );
        // Case-insensitive (cfgutils' lock slots with lock_set_size 4).
        let slot = |k: &str| core_hash(k.as_bytes(), None, true) & 15;
        assert_eq!(slot("alice"), 13);
        assert_eq!(slot("ALICE"), 13);
        assert_eq!(slot("Bob.Example"), 1);
        assert_eq!(slot("été"), 9);
        assert_eq!(slot("abc"), 2);
        assert_eq!(slot("alice@example.com"), 5);
    }
}
