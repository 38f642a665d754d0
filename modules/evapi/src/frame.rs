//! The messages on the event socket: netstrings (`5:hello,`) or, with
//! `netstring_format` 0, whatever one read brings.

/// `data` as a netstring.
pub fn netstring(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.push(b',');
    out
}

/// What the receive buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Complete messages, the rest kept in the buffer.
    Messages(Vec<Vec<u8>>),
    /// Not a netstring: the buffer is dropped.
    Invalid,
}

/// Takes the complete netstrings off the front of `buf`.
pub fn take_netstrings(buf: &mut Vec<u8>) -> Parsed {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        if rest.is_empty() {
            break;
        }
        let Some(colon) = rest.iter().position(|&c| c == b':') else {
            if rest.len() > 10 || !rest.iter().all(u8::is_ascii_digit) {
                buf.clear();
                return Parsed::Invalid;
            }
            break;
        };
        let digits = &rest[..colon];
        if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
            buf.clear();
            return Parsed::Invalid;
        }
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(usize::MAX);
        let Some(end) = (colon + 1).checked_add(len) else {
            buf.clear();
            return Parsed::Invalid;
        };
        if rest.len() <= end {
            break;
        }
        if rest[end] != b',' {
            buf.clear();
            return Parsed::Invalid;
        }
        out.push(rest[colon + 1..end].to_vec());
        at += end + 1;
    }
    buf.drain(..at);
    Parsed::Messages(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstrings_whole_split_and_bad() {
        assert_eq!(netstring(b"hello"), b"5:hello,");
        let mut b = b"3:abc,4:defg,2:x".to_vec();
        assert_eq!(
            take_netstrings(&mut b),
            Parsed::Messages(vec![b"abc".to_vec(), b"defg".to_vec()])
        );
        assert_eq!(b, b"2:x");
        b.extend_from_slice(b"y,");
        assert_eq!(
            take_netstrings(&mut b),
            Parsed::Messages(vec![b"xy".to_vec()])
        );
        assert!(b.is_empty());
        let mut bad = b"5:nonet5:close,".to_vec();
        assert_eq!(take_netstrings(&mut bad), Parsed::Invalid);
        let mut bad = b"x:1,".to_vec();
        assert_eq!(take_netstrings(&mut bad), Parsed::Invalid);
        let mut huge = b"99999999999999999999:".to_vec();
        assert_eq!(take_netstrings(&mut huge), Parsed::Invalid);
    }
}
