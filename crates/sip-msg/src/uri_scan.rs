//! The single-pass fast path of [`crate::uri::Uri::parse`] for `sip:` and
//! `sips:` URIs.
//!
//! [`scan_rest`] looks at every byte after the scheme once, through a
//! 256-entry table and eight bytes at a time: it rejects forbidden bytes and notes the first `@` and
//! the first `?` after it. [`fast_hostport`] then reads `host[:port]` in
//! one more pass over those few bytes, validating the host as it goes. Any
//! input it is not sure about (an IPv6 reference, a bad byte, an empty
//! host, a bad port...) is handed back to the general code in `uri.rs`,
//! which gives the precise error; so both paths accept, and describe, the
//! same URIs.

use std::net::Ipv4Addr;

/// Byte flags after the scheme: forbidden anywhere in a URI (controls,
/// space, DEL, `<`, `>`, `"`), `@` and `?`; 0 for every other byte.
const FORBIDDEN: u8 = 1;
const AT: u8 = 2;
const QUESTION: u8 = 4;

static REST_FLAGS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"') {
            FORBIDDEN
        } else if b == b'@' {
            AT
        } else if b == b'?' {
            QUESTION
        } else {
            0
        };
        i += 1;
    }
    t
};

/// The OR of `table[b]` over eight bytes: one test for a whole chunk in
/// the common case where none of them is interesting. (A fixed-size array,
/// so that the loop is unrolled.)
#[inline]
fn chunk_flags(table: &[u8; 256], c: &[u8]) -> u8 {
    let c: [u8; 8] = c.try_into().unwrap_or_default();
    c.iter().fold(0, |acc, &b| acc | table[b as usize])
}

/// What one pass over the text after `scheme:` found.
pub(crate) struct RestScan {
    /// The first `@`.
    pub at: Option<usize>,
    /// The first `?` after the first `@` (after the start when no `@`).
    pub question: Option<usize>,
}

/// Scans the text after the scheme; `None` when it holds a forbidden byte.
/// Eight bytes at a time, byte by byte only in chunks that hold a flagged
/// byte.
#[inline]
pub(crate) fn scan_rest(rest: &[u8]) -> Option<RestScan> {
    let mut scan = RestScan {
        at: None,
        question: None,
    };
    let mut bytes = |chunk: &[u8], base: usize| {
        for (k, &c) in chunk.iter().enumerate() {
            match REST_FLAGS[c as usize] {
                0 => {}
                FORBIDDEN => return false,
                AT if scan.at.is_none() => {
                    scan.at = Some(base + k);
                    scan.question = None;
                }
                QUESTION if scan.question.is_none() => scan.question = Some(base + k),
                _ => {}
            }
        }
        true
    };
    let mut chunks = rest.chunks_exact(8);
    for (n, chunk) in chunks.by_ref().enumerate() {
        if chunk_flags(&REST_FLAGS, chunk) != 0 && !bytes(chunk, n * 8) {
            return None;
        }
    }
    if !bytes(chunks.remainder(), rest.len() & !7) {
        return None;
    }
    Some(scan)
}

/// Host bytes: `NOT_HOST` for a byte that ends the host (anything but a
/// letter, digit, `.`, `-`, `_`), `NAME` for one that cannot be in an IPv4
/// address (letter, `-`, `_`), 0 for digits and dots.
const NOT_HOST: u8 = 1;
const NAME: u8 = 2;

static HOST_FLAGS: [u8; 256] = {
    let mut t = [NOT_HOST; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_digit() || b == b'.' {
            t[i] = 0;
        } else if b.is_ascii_alphabetic() || b == b'-' || b == b'_' {
            t[i] = NAME;
        }
        i += 1;
    }
    t
};

/// The host (name or IPv4) and port at the start of `s`, ending at the end
/// of `s` or at its first `;` or `?`: `(host end, host, port, hostport
/// end)`. `None` sends the caller to the general path.
#[inline]
pub(crate) fn fast_hostport(s: &[u8]) -> Option<(usize, Option<Ipv4Addr>, Option<u16>, usize)> {
    let mut i = 0;
    let mut flags = 0;
    // Whole chunks of host bytes first, then byte by byte to the end.
    while let Some(chunk) = s.get(i..i + 8) {
        let f = chunk_flags(&HOST_FLAGS, chunk);
        if f & NOT_HOST != 0 {
            break;
        }
        flags |= f;
        i += 8;
    }
    while i < s.len() {
        let f = HOST_FLAGS[s[i] as usize];
        if f & NOT_HOST != 0 {
            break;
        }
        flags |= f;
        i += 1;
    }
    let host_end = i;
    if host_end == 0 {
        return None;
    }
    let v4 = if flags & NAME == 0 {
        Some(parse_ipv4(&s[..host_end])?)
    } else {
        None
    };
    let mut port = None;
    if s.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        let mut p: u32 = 0;
        while i < s.len() && s[i].is_ascii_digit() && i - start < 5 {
            p = p * 10 + u32::from(s[i] - b'0');
            i += 1;
        }
        if i == start || p > u32::from(u16::MAX) {
            return None;
        }
        port = Some(p as u16);
    }
    match s.get(i) {
        None | Some(b';') | Some(b'?') => Some((host_end, v4, port, i)),
        _ => None,
    }
}

/// An IPv4 address in dotted-decimal, as strictly as `Ipv4Addr::from_str`:
/// four parts of one to three digits, each at most 255, no leading zero.
/// `s` holds only digits and dots.
pub(crate) fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut part, mut value, mut digits) = (0, 0u16, 0);
    for &c in s {
        if c == b'.' {
            if digits == 0 || part == 3 {
                return None;
            }
            octets[part] = u8::try_from(value).ok()?;
            (part, value, digits) = (part + 1, 0, 0);
        } else {
            // A leading zero is only allowed alone ("0", not "01").
            if digits == 3 || (digits == 1 && value == 0) {
                return None;
            }
            value = value * 10 + u16::from(c - b'0');
            digits += 1;
        }
    }
    if digits == 0 || part != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written IPv4 parser agrees with the standard library on
    /// dotted strings of three to five parts built from interesting pieces.
    #[test]
    fn ipv4_agrees_with_std() {
        let pieces = [
            "", "0", "1", "00", "01", "9", "10", "255", "256", "999", "1000",
        ];
        let mut inputs = vec!["1..2.3".to_string(), ".1.2.3.4".into(), "1.2.3.4.".into()];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    inputs.push(format!("{a}.{b}.{c}"));
                    for d in pieces {
                        inputs.push(format!("{a}.{b}.{c}.{d}"));
                        inputs.push(format!("{a}.{b}.{c}.{d}.1"));
                    }
                }
            }
        }
        for s in &inputs {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse().ok(), "{s:?}");
        }
    }

    #[test]
    fn hostport() {
        assert_eq!(
            fast_hostport(b"a.b:5060;lr"),
            Some((3, None, Some(5060), 8))
        );
        assert_eq!(
            fast_hostport(b"10.0.0.1?x"),
            Some((8, Some(Ipv4Addr::new(10, 0, 0, 1)), None, 8))
        );
        for s in [
            "", ":5060", "h:", "h:65536", "h:123456", "h:1:2", "[::1]", "h$", "1.2.3",
        ] {
            assert_eq!(fast_hostport(s.as_bytes()), None, "{s}");
        }
    }
}
