//! The single-pass fast path of [`crate::uri::Uri::parse`] for `sip:` and
//! `sips:` URIs.
//!
//! [`scan_rest`] looks at every byte after the scheme once, eight bytes
//! at a time as a 64-bit word: it rejects forbidden bytes and notes the
//! first `@` and the first `?` after it. [`fast_hostport`] then reads `host[:port]` in
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

/// 0x01 in every byte of a word.
pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
/// 0x80 in every byte of a word.
pub(crate) const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` that equals `c`. Exact (no borrow
/// from one byte to the next) as every byte of `w` and `c` is ASCII.
#[inline(always)]
pub(crate) fn eq_mask(w: u64, c: u8) -> u64 {
    let t = w ^ (LO * u64::from(c));
    !((t + LO * 0x7f) | t) & HI
}

/// One eight-byte word of the text after the scheme, its bytes at
/// `base..base + 8`; only the bytes whose high bit is set in `keep` count.
/// `false` when one of them is forbidden.
#[inline(always)]
fn scan_word(w: u64, base: usize, keep: u64, scan: &mut RestScan) -> bool {
    if w & HI != 0 {
        // A non-ASCII byte (rare): byte by byte, through the table.
        let bytes = w.to_le_bytes();
        for (k, &c) in bytes.iter().enumerate() {
            if keep & (0x80 << (8 * k)) == 0 {
                continue;
            }
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
        return true;
    }
    // All ASCII. First a cheap test for a superset of the interesting
    // bytes (below 0x21, `"`, `<` to `@`, DEL), false for most words.
    let y = w | (LO * 0x02);
    let maybe = (!(w + LO * 0x5f) | (w + LO) | ((w + LO * 0x44) & !(w + LO * 0x3f))) & HI
        | eq_mask(y, b'"');
    if maybe & keep == 0 {
        return true;
    }
    // The flags of the eight bytes at once. Forbidden: below 0x21, DEL,
    // and `"`, `<`, `>` (with bit 1 set, `"` and space become 0x22, `<`
    // and `>` 0x3e, and nothing else does).
    let forbidden = (!(w + LO * 0x5f) | (w + LO)) & HI | eq_mask(y, b'"') | eq_mask(y, b'>');
    let at = eq_mask(w, b'@') & keep;
    let mut question = eq_mask(w, b'?') & keep;
    if (forbidden & keep) | at | question == 0 {
        return true;
    }
    if forbidden & keep != 0 {
        return false;
    }
    if at != 0 && scan.at.is_none() {
        let bit = at.trailing_zeros();
        scan.at = Some(base + bit as usize / 8);
        scan.question = None;
        // Only a `?` after the `@` counts.
        question &= !(2u64 << bit).wrapping_sub(1);
    }
    if question != 0 && scan.question.is_none() {
        scan.question = Some(base + question.trailing_zeros() as usize / 8);
    }
    true
}

/// Scans the text after the scheme; `None` when it holds a forbidden byte.
/// Eight bytes at a time, as 64-bit words.
#[inline]
pub(crate) fn scan_rest(rest: &[u8]) -> Option<RestScan> {
    let mut scan = RestScan {
        at: None,
        question: None,
    };
    let n = rest.len();
    let word = |i: usize| word_at(rest, i);
    if n == 0 {
        return Some(scan);
    }
    if n < 8 {
        // Padded with a plain byte.
        let mut c = [b'a'; 8];
        c[..n].copy_from_slice(rest);
        let keep = HI >> (8 * (8 - n));
        return scan_word(u64::from_le_bytes(c), 0, keep, &mut scan).then_some(scan);
    }
    let mut i = 0;
    while i + 8 <= n {
        if !scan_word(word(i), i, HI, &mut scan) {
            return None;
        }
        i += 8;
    }
    if i < n {
        // The last eight bytes, counting only those not seen yet.
        let keep = HI << (8 * (8 - (n - i)));
        if !scan_word(word(n - 8), n - 8, keep, &mut scan) {
            return None;
        }
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

/// The eight bytes of `s` at `i` as a little-endian word.
#[inline(always)]
pub(crate) fn word_at(s: &[u8], i: usize) -> u64 {
    let c: [u8; 8] = s[i..i + 8].try_into().unwrap_or_default();
    u64::from_le_bytes(c)
}

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
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        // The first digit; more only if it is not a zero ("0", not "01").
        let first = *s.get(i).filter(|&&c| c != b'.')?;
        let mut value = u16::from(first - b'0');
        i += 1;
        if value != 0 {
            for _ in 0..2 {
                match s.get(i) {
                    Some(&c) if c != b'.' => {
                        value = value * 10 + u16::from(c - b'0');
                        i += 1;
                    }
                    _ => break,
                }
            }
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == s.len()).then_some(Ipv4Addr::from(octets))
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

    /// The word-at-a-time scan finds what a byte-by-byte one finds.
    #[test]
    fn scan_rest_agrees_with_bytes() {
        fn slow(b: &[u8]) -> Option<(Option<usize>, Option<usize>)> {
            let (mut at, mut q) = (None, None);
            for (k, &c) in b.iter().enumerate() {
                match REST_FLAGS[c as usize] {
                    FORBIDDEN => return None,
                    AT if at.is_none() => (at, q) = (Some(k), None),
                    QUESTION if q.is_none() => q = Some(k),
                    _ => {}
                }
            }
            Some((at, q))
        }
        let alphabet: &[u8] = b"a@?=;<>\" \x7f\x80\xc3\xa9\x1f!~";
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 21) as usize;
            let mut r = seed;
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    r = r.rotate_left(5).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    // Mostly plain bytes, a few interesting ones.
                    if r.is_multiple_of(3) {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    } else {
                        b'a' + (r >> 16) as u8 % 26
                    }
                })
                .collect();
            let fast = scan_rest(&s).map(|x| (x.at, x.question));
            assert_eq!(fast, slow(&s), "{s:?}");
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
