//! The CSeq header.

use crate::error::{bad, ParseError};
use crate::method::Method;
use crate::scan::{find_lws, is_token, parse_u32, trim_lws};

/// `CSeq: 4711 INVITE`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (less than 2^31 per RFC 3261, accepted up to 2^32-1).
    pub seq: u32,
    /// Method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parses a CSeq value.
    pub fn parse(s: &'a str) -> Result<CSeq<'a>, ParseError> {
        let s = trim_lws(s);
        // The usual `digits SP token`, read in one pass; anything else
        // (and any fault) goes through the general path below.
        let b = s.as_bytes();
        let (mut i, mut seq) = (0, 0u64);
        while i < b.len() && i <= 10 && b[i].is_ascii_digit() {
            seq = seq * 10 + u64::from(b[i] - b'0');
            i += 1;
        }
        if (1..=10).contains(&i) && b.get(i) == Some(&b' ') && seq <= u64::from(u32::MAX) {
            let m = &s[i + 1..];
            if is_token(m) {
                return Ok(CSeq {
                    seq: seq as u32,
                    method: Method::parse(m),
                });
            }
        }
        let sp = find_lws(s).ok_or(bad("CSeq", "no method"))?;
        let seq = parse_u32(&s[..sp]).ok_or(bad("CSeq", "invalid sequence number"))?;
        let m = trim_lws(&s[sp..]);
        if !is_token(m) {
            return Err(bad("CSeq", "invalid method"));
        }
        Ok(CSeq {
            seq,
            method: Method::parse(m),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let c = CSeq::parse(" 4711   INVITE ").unwrap();
        assert_eq!(c.seq, 4711);
        assert_eq!(c.method, Method::Invite);
        for bad in [
            "",
            "INVITE",
            "1",
            "x INVITE",
            "1 IN VITE",
            "99999999999 BYE",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
    }
}
