//! The reversible encoding topoh hides addresses with: base64 over an
//! alphabet of letters, digits, `.` and `-` shuffled by the mask key,
//! `*` as padding. The shuffle is Kamailio's (an MD5 of the key twice and
//! the key's CRC-CCITT pick the swaps), so servers with the same key —
//! siprouter or Kamailio — decode each other's values.

use md5::{Digest, Md5};

/// The alphabet before the shuffle.
const BASE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-";
/// The padding character.
pub const PAD: u8 = b'*';

/// CRC-16/X-25 table (reflected polynomial 0x8408), Kamailio's `ccitt_tab`.
const CCITT: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x8408
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Kamailio's `crcitt_string`: CRC-16/X-25 of `s`.
pub fn crcitt(s: &[u8]) -> u16 {
    let mut c: u16 = 0xFFFF;
    for &b in s {
        c = CCITT[((c ^ b as u16) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// An alphabet shuffled by a key, with its reverse table.
#[derive(Debug, Clone)]
pub struct Mask {
    enc: [u8; 64],
    dec: [i8; 256],
}

impl Mask {
    /// The alphabet for `key` (not empty).
    pub fn new(key: &[u8]) -> Result<Mask, String> {
        if key.is_empty() {
            return Err("topoh: mask_key must not be empty".into());
        }
        let mut h = Md5::new();
        h.update(key);
        h.update(key);
        let md5: [u8; 16] = h.finalize().into();
        let words: [u32; 4] = std::array::from_fn(|i| {
            u32::from_le_bytes([md5[4 * i], md5[4 * i + 1], md5[4 * i + 2], md5[4 * i + 3]])
        });
        let crc = crcitt(key) as u32;
        let klen = key.len() as u32;
        let mut enc = *BASE;
        for last in (2..=64u32).rev() {
            let at = crc.wrapping_add(last).wrapping_add(klen);
            // The key's byte is a C `char`: signed, widened with its sign.
            let kb = key[(at % klen) as usize] as i8 as i32 as u32;
            let r = words[(at % 4) as usize].wrapping_add(kb) % last;
            enc.swap(r as usize, (last - 1) as usize);
        }
        let mut dec = [-1i8; 256];
        for (i, &c) in enc.iter().enumerate() {
            dec[c as usize] = i as i8;
        }
        Ok(Mask { enc, dec })
    }

    /// `prefix` followed by `input` encoded.
    pub fn encode(&self, input: &[u8], prefix: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(prefix.len() + input.len().div_ceil(3) * 4);
        out.extend_from_slice(prefix.as_bytes());
        for chunk in input.chunks(3) {
            let b = |i: usize| chunk.get(i).copied().unwrap_or(0) as u32;
            let block = (b(0) << 16) | (b(1) << 8) | b(2);
            out.push(self.enc[(block >> 18) as usize & 0x3f]);
            out.push(self.enc[(block >> 12) as usize & 0x3f]);
            out.push(if chunk.len() > 1 {
                self.enc[(block >> 6) as usize & 0x3f]
            } else {
                PAD
            });
            out.push(if chunk.len() > 2 {
                self.enc[block as usize & 0x3f]
            } else {
                PAD
            });
        }
        out
    }

    /// Decodes `input` after its first `prefix_len` bytes (not compared,
    /// as Kamailio does not compare them); `None` when a character is not
    /// of the alphabet or nothing would be left.
    pub fn decode(&self, input: &[u8], prefix_len: usize) -> Option<Vec<u8>> {
        let pads = input.iter().rev().take_while(|&&c| c == PAD).count();
        let body_len = input.len().checked_sub(prefix_len)?;
        let olen = ((body_len * 6) >> 3).checked_sub(pads)?;
        if olen == 0 {
            return None;
        }
        let end = input.len() - pads;
        let data = input.get(prefix_len..end)?;
        let mut out = Vec::with_capacity(olen + 3);
        for group in data.chunks(4) {
            let mut block = 0u32;
            for (j, &c) in group.iter().enumerate() {
                let v = self.dec[c as usize];
                if v < 0 {
                    return None;
                }
                block |= (v as u32) << (18 - 6 * j);
            }
            for n in [16, 8, 0] {
                if out.len() < olen {
                    out.push((block >> n) as u8);
                }
            }
        }
        out.truncate(olen);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crcitt_is_crc16_x25() {
        // The catalogue's check value of CRC-16/X-25.
        assert_eq!(crcitt(b"123456789"), 0x906E);
    }

    #[test]
    fn the_shuffled_alphabet_is_a_permutation_that_depends_on_the_key() {
        let a = Mask::new(b"some secret").unwrap();
        let b = Mask::new(b"other secret").unwrap();
        let mut sorted = a.enc;
        sorted.sort_unstable();
        let mut base = *BASE;
        base.sort_unstable();
        assert_eq!(sorted, base);
        assert_ne!(a.enc, b.enc);
        assert_ne!(a.enc, *BASE);
    }

    #[test]
    fn decode_reverses_encode_for_every_length() {
        let m = Mask::new(b"k\xe9y").unwrap();
        for n in 1..40 {
            let input: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let enc = m.encode(&input, "sip:127.0.0.8;line=sr-");
            assert!(enc[22..].iter().all(|c| BASE.contains(c) || *c == PAD));
            assert_eq!(m.decode(&enc, 22), Some(input), "length {n}");
        }
    }

    #[test]
    fn garbage_is_refused_not_decoded() {
        let m = Mask::new(b"k").unwrap();
        assert_eq!(m.decode(b"ab!d", 0), None);
        assert_eq!(m.decode(b"****", 0), None);
        assert_eq!(m.decode(b"x", 3), None);
        assert_eq!(m.decode(b"", 0), None);
        assert!(Mask::new(b"").is_err());
    }
}
