//! RESP2, the protocol Redis speaks: commands written as arrays of bulk
//! strings, replies read incrementally (a reply split over reads waits
//! for the rest). Anything a server sends is checked: malformed input is
//! an error, never a panic; nesting and sizes are bounded.

/// One reply, as hiredis types them (`$redis(r=>type)` gives
/// [`Reply::type_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `$`: a bulk string (bytes).
    Str(Vec<u8>),
    /// `*`: an array of replies.
    Array(Vec<Reply>),
    /// `:`: an integer.
    Int(i64),
    /// `$-1` or `*-1`: no value.
    Nil,
    /// `+`: a status line (`OK`, `QUEUED`, `PONG`).
    Status(String),
    /// `-`: an error line (`ERR ...`, `WRONGTYPE ...`, `MOVED ...`).
    Error(String),
}

/// hiredis' `REDIS_REPLY_STRING` (`$redisd(rpl_str)`).
pub const TYPE_STRING: i64 = 1;
/// hiredis' `REDIS_REPLY_ARRAY` (`$redisd(rpl_arr)`).
pub const TYPE_ARRAY: i64 = 2;
/// hiredis' `REDIS_REPLY_INTEGER` (`$redisd(rpl_int)`).
pub const TYPE_INTEGER: i64 = 3;
/// hiredis' `REDIS_REPLY_NIL` (`$redisd(rpl_nil)`).
pub const TYPE_NIL: i64 = 4;
/// hiredis' `REDIS_REPLY_STATUS` (`$redisd(rpl_sts)`).
pub const TYPE_STATUS: i64 = 5;
/// hiredis' `REDIS_REPLY_ERROR` (`$redisd(rpl_err)`).
pub const TYPE_ERROR: i64 = 6;

/// Deepest nesting of arrays accepted in a reply.
const MAX_DEPTH: usize = 32;
/// Largest bulk string or array accepted (Redis' own limit for strings).
const MAX_LEN: i64 = 512 * 1024 * 1024;

impl Reply {
    /// hiredis' type number.
    pub fn type_code(&self) -> i64 {
        match self {
            Reply::Str(_) => TYPE_STRING,
            Reply::Array(_) => TYPE_ARRAY,
            Reply::Int(_) => TYPE_INTEGER,
            Reply::Nil => TYPE_NIL,
            Reply::Status(_) => TYPE_STATUS,
            Reply::Error(_) => TYPE_ERROR,
        }
    }

    /// The text hiredis keeps in `str` (strings, status and error lines).
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Str(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Status(s) | Reply::Error(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Writes a command: an array of bulk strings.
pub fn encode(args: &[Vec<u8>], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads one reply from the start of `buf`: `Ok(None)` when more bytes
/// are needed, else the reply and how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(r) => Ok(Some((r, pos))),
        None => Ok(None),
    }
}

/// A line up to CRLF from `*pos` (moved past the CRLF), or `None` when
/// the CRLF has not come yet.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    Some(&rest[..end])
}

fn number(l: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(l)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("bad number in reply: {:?}", String::from_utf8_lossy(l)))
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Reply>, String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deep".into());
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(l) = line(buf, pos) else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some(Reply::Status(String::from_utf8_lossy(l).into_owned()))),
        b'-' => Ok(Some(Reply::Error(String::from_utf8_lossy(l).into_owned()))),
        b':' => Ok(Some(Reply::Int(number(l)?))),
        b'$' => {
            let n = number(l)?;
            if n < 0 {
                return Ok(Some(Reply::Nil));
            }
            if n > MAX_LEN {
                return Err(format!("bulk string of {n} bytes"));
            }
            let n = n as usize;
            let end = *pos + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err("bulk string without its CRLF".into());
            }
            let s = buf[*pos..end].to_vec();
            *pos = end + 2;
            Ok(Some(Reply::Str(s)))
        }
        b'*' => {
            let n = number(l)?;
            if n < 0 {
                return Ok(Some(Reply::Nil));
            }
            if n > MAX_LEN {
                return Err(format!("array of {n} elements"));
            }
            // Not more room than the bytes present can fill (3 each at least).
            let mut items = Vec::with_capacity((n as usize).min(buf.len() / 3 + 1));
            for _ in 0..n {
                match parse_at(buf, pos, depth + 1)? {
                    Some(r) => items.push(r),
                    None => return Ok(None),
                }
            }
            Ok(Some(Reply::Array(items)))
        }
        other => Err(format!("unknown reply type byte 0x{other:02x}")),
    }
}

/// Finds where one reply ends without building it, resuming where the
/// last call stopped: a reply that comes in many reads is scanned once,
/// not again from its start on every read.
#[derive(Debug, Default)]
pub struct Scan {
    pos: usize,
    /// Elements still to come in each open array, outermost first.
    open: Vec<i64>,
}

impl Scan {
    /// The length of the first reply in `buf` once all of it is there
    /// (`buf` only grows between calls; start a new `Scan` per reply).
    pub fn end(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        loop {
            let Some(&kind) = buf.get(self.pos) else {
                return Ok(None);
            };
            let mut at = self.pos + 1;
            let Some(l) = line(buf, &mut at) else {
                return Ok(None);
            };
            match kind {
                b'+' | b'-' => {}
                b':' => {
                    number(l)?;
                }
                b'$' => {
                    let n = number(l)?;
                    if n > MAX_LEN {
                        return Err(format!("bulk string of {n} bytes"));
                    }
                    if n >= 0 {
                        let end = at + n as usize;
                        if buf.len() < end + 2 {
                            return Ok(None);
                        }
                        if &buf[end..end + 2] != b"\r\n" {
                            return Err("bulk string without its CRLF".into());
                        }
                        at = end + 2;
                    }
                }
                b'*' => {
                    let n = number(l)?;
                    if n > MAX_LEN {
                        return Err(format!("array of {n} elements"));
                    }
                    if n > 0 {
                        if self.open.len() >= MAX_DEPTH {
                            return Err("reply nested too deep".into());
                        }
                        self.pos = at;
                        self.open.push(n);
                        continue;
                    }
                }
                other => return Err(format!("unknown reply type byte 0x{other:02x}")),
            }
            self.pos = at;
            // One element done: close every array it completes.
            loop {
                match self.open.last_mut() {
                    None => return Ok(Some(self.pos)),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Reply {
        let (r, n) = parse(s.as_bytes()).unwrap().unwrap();
        assert_eq!(n, s.len(), "{s:?} read whole");
        r
    }

    #[test]
    fn every_reply_kind_reads() {
        assert_eq!(one("+OK\r\n"), Reply::Status("OK".into()));
        assert_eq!(one("-ERR no\r\n"), Reply::Error("ERR no".into()));
        assert_eq!(one(":-42\r\n"), Reply::Int(-42));
        assert_eq!(one("$3\r\na\rb\r\n"), Reply::Str(b"a\rb".to_vec()));
        assert_eq!(one("$0\r\n\r\n"), Reply::Str(Vec::new()));
        assert_eq!(one("$-1\r\n"), Reply::Nil);
        assert_eq!(one("*-1\r\n"), Reply::Nil);
        assert_eq!(
            one("*3\r\n:1\r\n*1\r\n$1\r\nx\r\n$-1\r\n"),
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Array(vec![Reply::Str(b"x".to_vec())]),
                Reply::Nil
            ])
        );
    }

    #[test]
    fn a_split_reply_waits_for_the_rest() {
        let full = b"*2\r\n$5\r\nhello\r\n:7\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse(full).unwrap().is_some());
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            "?x\r\n",
            ":12a\r\n",
            "$abc\r\n",
            "$2\r\nabcd\r\n",
            "*x\r\n",
            "$999999999999\r\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let deep = "*1\r\n".repeat(40) + ":1\r\n";
        assert!(parse(deep.as_bytes()).is_err());
        // A huge announced array with no elements yet only waits.
        assert_eq!(parse(b"*100000000\r\n").unwrap(), None);
    }

    #[test]
    fn the_scanner_finds_the_end_across_reads() {
        let full = b"*3\r\n$5\r\nhello\r\n*2\r\n:1\r\n*0\r\n$-1\r\n+OK\r\n";
        let one = full.len() - 5;
        let mut scan = Scan::default();
        for cut in 0..one {
            assert_eq!(scan.end(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(scan.end(full).unwrap(), Some(one));
        assert_eq!(Scan::default().end(b"+OK\r\n").unwrap(), Some(5));
        assert!(Scan::default().end(b"?\r\n").is_err());
        let deep = "*1\r\n".repeat(40) + ":1\r\n";
        assert!(Scan::default().end(deep.as_bytes()).is_err());
    }

    /// Random inputs built from RESP pieces: neither reader panics, and
    /// the scanner ends a reply exactly where the parser does.
    #[test]
    fn random_inputs_never_panic_and_both_readers_agree() {
        const PIECES: &[&[u8]] = &[
            b"*",
            b"$",
            b":",
            b"+",
            b"-",
            b"\r\n",
            b"\r",
            b"\n",
            b"0",
            b"1",
            b"2",
            b"3",
            b"-1",
            b"10",
            b"99999999999999999999",
            b"x",
            b"ab",
            b"*2\r\n",
            b"$3\r\nabc\r\n",
            b":5\r\n",
            b"+OK\r\n",
            b"*0\r\n",
            b"$-1\r\n",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let n = (next() % 12) as usize;
            let mut buf = Vec::new();
            for _ in 0..n {
                buf.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let parsed = parse(&buf);
            let scanned = Scan::default().end(&buf);
            match (&parsed, &scanned) {
                (Ok(Some((_, a))), Ok(Some(b))) => assert_eq!(a, b, "{buf:?}"),
                (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
                // The parser may stop at an error deeper in a reply the
                // scanner has not finished, and the other way round.
                (Err(_), Ok(None)) | (Ok(None), Err(_)) => {}
                other => panic!("{buf:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&[b"SET".to_vec(), b"a b".to_vec(), Vec::new()], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$3\r\na b\r\n$0\r\n\r\n");
    }
}
