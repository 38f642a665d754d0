//! Kamailio's dispatcher hash (`ds_get_hash`) and what each algorithm
//! hashes, so that a message goes to the destination Kamailio would
//! pick from the same list.

use sr_sdk::sip_msg::{Scheme, Uri};

/// Adds one string to the hash: every four bytes as a big-endian word,
/// then the remaining bytes (even none), each `h += v ^ (v >> 3)`. Bytes
/// are signed, as C's `char`.
fn add(mut h: u32, s: &[u8]) -> u32 {
    let b = |x: u8| x as i8 as i32 as u32;
    let mut chunks = s.chunks_exact(4);
    for c in &mut chunks {
        let v = (b(c[0]) << 24)
            .wrapping_add(b(c[1]) << 16)
            .wrapping_add(b(c[2]) << 8)
            .wrapping_add(b(c[3]));
        h = h.wrapping_add(v ^ (v >> 3));
    }
    let mut v: u32 = 0;
    for &x in chunks.remainder() {
        v = (v << 8).wrapping_add(b(x));
    }
    h.wrapping_add(v ^ (v >> 3))
}

/// The hash of one or two strings (never 0).
pub fn ds_hash(k1: &[u8], k2: Option<&[u8]>) -> u32 {
    let mut h = add(0, k1);
    if let Some(k2) = k2 {
        h = add(h, k2);
    }
    h = h
        .wrapping_add(h >> 11)
        .wrapping_add((h >> 13).wrapping_add(h >> 23));
    if h == 0 {
        1
    } else {
        h
    }
}

/// The hash of a URI (algorithms 1, 2, 3): its user and, unless
/// `user_only`, its `host[:port]` (the port only when written and not the
/// scheme's default).
pub fn uri_hash(uri: &Uri<'_>, user_only: bool) -> u32 {
    let user = uri.user.unwrap_or("").as_bytes();
    if user_only {
        return ds_hash(user, None);
    }
    let default = if uri.scheme == Scheme::Sips {
        5061
    } else {
        5060
    };
    let host = uri.host_str;
    match uri.port {
        Some(p) if p != default => {
            let hp = format!("{host}:{p}");
            ds_hash(user, Some(hp.as_bytes()))
        }
        _ => ds_hash(user, Some(host.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C function, word for word, as a reference.
    fn reference(x: &[u8], y: Option<&[u8]>) -> u32 {
        let mut h: u32 = 0;
        for s in std::iter::once(x).chain(y) {
            let c = |i: usize| s[i] as i8 as i32;
            let mut p = 0usize;
            while p + 4 <= s.len() {
                let v = ((c(p) << 24) + (c(p + 1) << 16) + (c(p + 2) << 8) + c(p + 3)) as u32;
                h = h.wrapping_add(v ^ (v >> 3));
                p += 4;
            }
            let mut v: u32 = 0;
            while p < s.len() {
                v = (v << 8).wrapping_add(c(p) as u32);
                p += 1;
            }
            h = h.wrapping_add(v ^ (v >> 3));
        }
        h = (h.wrapping_add(h >> 11)).wrapping_add((h >> 13).wrapping_add(h >> 23));
        if h == 0 {
            1
        } else {
            h
        }
    }

    #[test]
    fn hash_follows_the_c_function() {
        for (a, b) in [
            (&b"a84b4c76e66710@pc33.atlanta.com"[..], None),
            (b"", None),
            (b"abc", Some(&b"example.com:5070"[..])),
            (b"alice", Some(&b"atlanta.com"[..])),
            ("caf\u{e9}-\u{fc}ber".as_bytes(), None),
        ] {
            assert_eq!(ds_hash(a, b), reference(a, b), "{a:?} {b:?}");
        }
        assert_eq!(ds_hash(b"", None), 1, "0 becomes 1");
        assert_ne!(ds_hash(b"call-1", None), ds_hash(b"call-2", None));
    }

    #[test]
    fn same_values_as_kamailio() {
        // `kamcmd dispatcher.hash 0 V1 [V2]` against Kamailio 5.6.3.
        let k = |a: &str, b: Option<&str>| ds_hash(a.as_bytes(), b.map(str::as_bytes)) as i32;
        assert_eq!(k("a84b4c76e66710@pc33.atlanta.com", None), -2_119_949_202);
        assert_eq!(k("alice", Some("atlanta.com")), 1_053_853_112);
        assert_eq!(k("abc", Some("example.com:5070")), -1_957_356_953);
        assert_eq!(
            k("caf\u{e9}-\u{fc}ber", None),
            730_569_560,
            "bytes above 127 are signed"
        );
    }

    #[test]
    fn uri_keys() {
        let u = Uri::parse("sip:bob@example.com:5060;transport=udp").unwrap();
        assert_eq!(uri_hash(&u, false), ds_hash(b"bob", Some(b"example.com")));
        let u = Uri::parse("sip:bob@example.com:5070").unwrap();
        assert_eq!(
            uri_hash(&u, false),
            ds_hash(b"bob", Some(b"example.com:5070"))
        );
        assert_eq!(uri_hash(&u, true), ds_hash(b"bob", None));
        let u = Uri::parse("sips:bob@example.com:5061").unwrap();
        assert_eq!(uri_hash(&u, false), ds_hash(b"bob", Some(b"example.com")));
    }
}
