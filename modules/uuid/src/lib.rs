//! Module `uuid` (Kamailio's): `$uuid(g)` and `$uuid(r)` give a random
//! UUID (RFC 4122 version 4), `$uuid(t)` a time-based one (version 1:
//! 100 ns ticks since 1582, a clock sequence, and a random node id with
//! the multicast bit set, as libuuid makes one without a MAC address),
//! each read a new one, written in lower case; `$uuid(s)` is `$null`, as
//! Kamailio's is without the uuidd daemon.
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// 100 ns intervals from 1582-10-15 to 1970-01-01.
const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;

/// `n` random bytes from the kernel.
fn random(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // No /dev/urandom: the clock and a counter, hashed.
        use std::hash::{BuildHasher, Hasher};
        for (i, x) in b.iter_mut().enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            *x = h.finish() as u8;
        }
    }
    b
}

fn text(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// A version 4 (random) UUID.
pub fn v4() -> String {
    let r = random(16);
    let mut b = [0u8; 16];
    b.copy_from_slice(&r);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    text(&b)
}

/// The last timestamp given, so that two UUIDs never share one.
static LAST_TICKS: AtomicU64 = AtomicU64::new(0);

/// A version 1 (time-based) UUID with this process's node id and clock
/// sequence.
pub fn v1() -> String {
    static NODE: OnceLock<([u8; 6], u16)> = OnceLock::new();
    let (node, seq) = *NODE.get_or_init(|| {
        let r = random(8);
        let mut n = [0u8; 6];
        n.copy_from_slice(&r[..6]);
        n[0] |= 0x01;
        (n, u16::from_be_bytes([r[6], r[7]]) & 0x3fff)
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut t = GREGORIAN_OFFSET + (now.as_nanos() / 100) as u64;
    // Never twice the same: one tick on from the last when the clock has
    // not moved.
    let mut last = LAST_TICKS.load(Ordering::Relaxed);
    loop {
        let next = t.max(last + 1);
        match LAST_TICKS.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                t = next;
                break;
            }
            Err(x) => last = x,
        }
    }
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&((t & 0xffff_ffff) as u32).to_be_bytes());
    b[4..6].copy_from_slice(&(((t >> 32) & 0xffff) as u16).to_be_bytes());
    b[6..8].copy_from_slice(&((((t >> 48) & 0x0fff) as u16) | 0x1000).to_be_bytes());
    b[8] = ((seq >> 8) as u8 & 0x3f) | 0x80;
    b[9] = seq as u8;
    b[10..].copy_from_slice(&node);
    text(&b)
}

/// The module definition.
pub fn module() -> ModuleDef {
    ModuleDef::new("uuid").pv("uuid", |_ctx, n| match n.inner.as_deref().map(str::trim) {
        Some("g") | Some("r") | None => Value::Str(v4().into()),
        Some("t") => Value::Str(v1().into()),
        // libuuid's "safe" time UUID needs the uuidd daemon; without it
        // Kamailio gives $null, and so does siprouter.
        Some("s") => Value::Null,
        Some(_) => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(u: &str) -> (usize, char, bool) {
        let variant = u.as_bytes()[19];
        (
            u.len(),
            u.chars().nth(14).unwrap(),
            matches!(variant, b'8' | b'9' | b'a' | b'b'),
        )
    }

    #[test]
    fn uuids_have_their_version_and_variant_and_differ() {
        let (a, b) = (v4(), v4());
        assert_ne!(a, b);
        assert_eq!(shape(&a), (36, '4', true));
        let (c, d) = (v1(), v1());
        assert_ne!(c, d);
        assert_eq!(shape(&c), (36, '1', true));
        assert!(a
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        // Same node and clock sequence within the process.
        assert_eq!(c[19..], d[19..]);
    }
}
