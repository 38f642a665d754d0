//! Several optional strings kept in one exact-size heap allocation.
//!
//! Each field is written as its length followed by its bytes. The length
//! is a little-endian base-64 number, one ASCII byte per 6 bits, with bit
//! `0x40` set on every byte but the last; 0 stands for `None` and `n + 1`
//! for a string of `n` bytes. Every length byte is ASCII, so the whole
//! pack is valid UTF-8 and field boundaries are char boundaries: it is a
//! plain `Box<str>`, with no slack capacity and no per-field pointers.

/// Bits of the length carried by one length byte.
const DIGIT_BITS: u32 = 6;
/// The digit part of a length byte.
const DIGIT_MASK: u8 = (1 << DIGIT_BITS) - 1;
/// Set on every length byte that is followed by another.
const MORE: u8 = 0x40;

/// Optional strings packed into one `Box<str>` (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextPack(Box<str>);

/// Writes the length code `v` (0 = `None`, `n + 1` = `n` bytes).
fn push_len(out: &mut String, mut v: usize) {
    loop {
        let digit = (v & usize::from(DIGIT_MASK)) as u8;
        v >>= DIGIT_BITS;
        if v == 0 {
            out.push(char::from(digit));
            return;
        }
        out.push(char::from(digit | MORE));
    }
}

/// How many bytes the length code `v` takes.
fn len_size(mut v: usize) -> usize {
    let mut n = 1;
    while v >> DIGIT_BITS != 0 {
        v >>= DIGIT_BITS;
        n += 1;
    }
    n
}

fn code(f: Option<&str>) -> usize {
    f.map_or(0, |s| s.len() + 1)
}

impl TextPack {
    /// Packs the fields, in order.
    pub fn new(fields: &[Option<&str>]) -> TextPack {
        let size = fields
            .iter()
            .map(|f| {
                let c = code(*f);
                len_size(c) + f.map_or(0, str::len)
            })
            .sum();
        let mut s = String::with_capacity(size);
        for f in fields {
            push_len(&mut s, code(*f));
            if let Some(t) = f {
                s.push_str(t);
            }
        }
        TextPack(s.into_boxed_str())
    }

    /// The fields, in order.
    pub fn iter(&self) -> Fields<'_> {
        Fields { s: &self.0, pos: 0 }
    }

    /// Field `i`; `None` when it is `None` or there are fewer fields.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.iter().nth(i).flatten()
    }
}

/// Iterator over the fields of a [`TextPack`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<&'a str>;

    fn next(&mut self) -> Option<Option<&'a str>> {
        let bytes = self.s.as_bytes();
        let mut v: usize = 0;
        let mut shift = 0u32;
        loop {
            let b = *bytes.get(self.pos)?;
            self.pos += 1;
            v |= usize::from(b & DIGIT_MASK).checked_shl(shift)?;
            if b & MORE == 0 {
                break;
            }
            shift += DIGIT_BITS;
        }
        if v == 0 {
            return Some(None);
        }
        let end = self.pos.checked_add(v - 1)?;
        let text = self.s.get(self.pos..end)?;
        self.pos = end;
        Some(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let long = "x".repeat(70_000);
        let fields = [
            Some("uloc-1"),
            None,
            Some(""),
            Some("sip:ä@h"),
            Some(long.as_str()),
            Some(&long[..63]),
            Some(&long[..64]),
            None,
        ];
        let p = TextPack::new(&fields);
        assert_eq!(p.iter().collect::<Vec<_>>(), fields);
        assert_eq!(p.get(3), Some("sip:ä@h"));
        assert_eq!(p.get(1), None);
        assert_eq!(p.get(2), Some(""));
        assert_eq!(p.get(8), None);
        // Exact size: nothing allocated beyond the bytes written.
        let small = TextPack::new(&[Some("abc"), None]);
        assert_eq!(small.0.len(), 1 + 3 + 1);
        assert_eq!(TextPack::new(&[]).iter().count(), 0);
    }

    #[test]
    fn length_codes() {
        for v in [0, 1, 63, 64, 4095, 4096, 1 << 20, usize::MAX >> 8] {
            let mut s = String::new();
            push_len(&mut s, v);
            assert_eq!(s.len(), len_size(v), "{v}");
            assert!(s.is_ascii());
        }
    }

    #[test]
    fn malformed_does_not_panic() {
        for s in [
            "\u{7f}",
            "\u{45}ab",
            "\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}",
        ] {
            let p = TextPack(s.into());
            let _ = p.iter().count();
        }
    }
}
