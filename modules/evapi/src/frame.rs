//! The messages on the event socket: netstrings (`5:hello,`) or, with
//! `netstring_format` 0, whatever one read brings.

/// The largest message accepted.
pub const MAX_MESSAGE: usize = 1 << 20;

/// `data` as a netstring.
pub fn netstring(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.push(b',');
    out
}

/// What the receive buffer held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The complete messages, in order (the rest stays in the buffer).
    pub messages: Vec<Vec<u8>>,
    /// Something that is not a netstring (or one longer than
    /// [`MAX_MESSAGE`]) came after them: the connection should go.
    pub invalid: bool,
}

/// Takes the complete netstrings off the front of `buf`; white space
/// between them is skipped (as Kamailio does).
pub fn take_netstrings(buf: &mut Vec<u8>) -> Parsed {
    let mut p = Parsed::default();
    let mut at = 0;
    loop {
        while at < buf.len() && buf[at].is_ascii_whitespace() {
            at += 1;
        }
        let rest = &buf[at..];
        if rest.is_empty() {
            break;
        }
        let colon = rest.iter().position(|&c| c == b':');
        let digits = &rest[..colon.unwrap_or(rest.len())];
        if digits.len() > 7 || !digits.iter().all(u8::is_ascii_digit) {
            p.invalid = true;
            break;
        }
        let Some(colon) = colon else { break };
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        if len == 0 || len > MAX_MESSAGE {
            p.invalid = true;
            break;
        }
        let end = colon + 1 + len;
        if rest.len() <= end {
            break;
        }
        if rest[end] != b',' {
            p.invalid = true;
            break;
        }
        p.messages.push(rest[colon + 1..end].to_vec());
        at += end + 1;
    }
    if p.invalid {
        buf.clear();
    } else {
        buf.drain(..at);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn netstrings_whole_split_and_bad() {
        assert_eq!(netstring(b"hello"), b"5:hello,");
        let mut b = b"3:abc,\r\n4:defg,2:x".to_vec();
        let p = take_netstrings(&mut b);
        assert_eq!((p.messages, p.invalid), (msgs(&["abc", "defg"]), false));
        assert_eq!(b, b"2:x");
        b.extend_from_slice(b"y,");
        assert_eq!(take_netstrings(&mut b).messages, msgs(&["xy"]));
        assert!(b.is_empty());
        // What came before the bad part still counts.
        let mut bad = b"5:hello,5:nonet5:close,".to_vec();
        let p = take_netstrings(&mut bad);
        assert_eq!((p.messages, p.invalid), (msgs(&["hello"]), true));
        for b in [&b"x:1,"[..], b"0:,", b"99999999:"] {
            let mut v = b.to_vec();
            assert!(take_netstrings(&mut v).invalid, "{b:?}");
        }
        // A length still arriving is no error.
        let mut part = b"12".to_vec();
        assert_eq!(take_netstrings(&mut part), Parsed::default());
    }
}
