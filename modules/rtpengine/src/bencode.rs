//! Bencode, the encoding of rtpengine's ng protocol: integers, byte
//! strings, lists and dictionaries (keys sorted when encoded).

use std::collections::BTreeMap;

/// A bencoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ben {
    /// `i42e`
    Int(i64),
    /// `4:spam`
    Bytes(Vec<u8>),
    /// `l...e`
    List(Vec<Ben>),
    /// `d...e`
    Dict(BTreeMap<Vec<u8>, Ben>),
}

impl Ben {
    /// A string value.
    pub fn str(s: &str) -> Ben {
        Ben::Bytes(s.as_bytes().to_vec())
    }

    /// The value as text, when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Ben::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// A dictionary's entry.
    pub fn get(&self, key: &str) -> Option<&Ben> {
        match self {
            Ben::Dict(d) => d.get(key.as_bytes()),
            _ => None,
        }
    }

    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ben::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Ben::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Ben::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Ben::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    Ben::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the start of `b`; the value and what is
    /// left. Nesting is bounded, so hostile input cannot exhaust the stack.
    pub fn decode(b: &[u8]) -> Option<(Ben, &[u8])> {
        decode_at(b, 0)
    }
}

fn decode_at(b: &[u8], depth: usize) -> Option<(Ben, &[u8])> {
    if depth > 32 {
        return None;
    }
    match *b.first()? {
        b'i' => {
            let end = b.iter().position(|&c| c == b'e')?;
            let n = std::str::from_utf8(&b[1..end]).ok()?.parse().ok()?;
            Some((Ben::Int(n), &b[end + 1..]))
        }
        b'l' => {
            let mut rest = &b[1..];
            let mut v = Vec::new();
            while *rest.first()? != b'e' {
                let (x, r) = decode_at(rest, depth + 1)?;
                v.push(x);
                rest = r;
            }
            Some((Ben::List(v), &rest[1..]))
        }
        b'd' => {
            let mut rest = &b[1..];
            let mut d = BTreeMap::new();
            while *rest.first()? != b'e' {
                let (Ben::Bytes(k), r) = decode_at(rest, depth + 1)? else {
                    return None;
                };
                let (v, r) = decode_at(r, depth + 1)?;
                d.insert(k, v);
                rest = r;
            }
            Some((Ben::Dict(d), &rest[1..]))
        }
        b'0'..=b'9' => {
            let colon = b.iter().position(|&c| c == b':')?;
            let n: usize = std::str::from_utf8(&b[..colon]).ok()?.parse().ok()?;
            let start = colon + 1;
            let end = start.checked_add(n)?;
            Some((Ben::Bytes(b.get(start..end)?.to_vec()), &b[end..]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_sorted_keys() {
        let mut d = BTreeMap::new();
        d.insert(b"sdp".to_vec(), Ben::str("v=0\r\n"));
        d.insert(b"command".to_vec(), Ben::str("offer"));
        d.insert(b"n".to_vec(), Ben::Int(-3));
        d.insert(
            b"flags".to_vec(),
            Ben::List(vec![Ben::str("trust-address")]),
        );
        let v = Ben::Dict(d);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(
            out,
            b"d7:command5:offer5:flagsl13:trust-addresse1:ni-3e3:sdp5:v=0\r\ne".to_vec()
        );
        let (back, rest) = Ben::decode(&out).unwrap();
        assert_eq!(back, v);
        assert!(rest.is_empty());
    }

    #[test]
    fn bad_input_is_refused() {
        for b in [
            &b"d3:abc"[..],
            b"l",
            b"5:ab",
            b"i12",
            b"x",
            b"d1:ae",
            b"99999999999999999999999:a",
        ] {
            assert!(Ben::decode(b).is_none(), "{:?}", String::from_utf8_lossy(b));
        }
        let deep = "l".repeat(100) + &"e".repeat(100);
        assert!(Ben::decode(deep.as_bytes()).is_none());
    }
}
