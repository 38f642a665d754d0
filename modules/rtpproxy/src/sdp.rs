//! The SDP as the rtpproxy module reads and rewrites it: sessions (`v=`),
//! their `o=` and `c=` lines, and each media stream's port, transport,
//! formats, `c=`, `a=rtcp:` and `a=candidate:` lines, all as byte ranges
//! of the body, so that a rewrite changes only what it names.
//!
//! No I/O: [`parse`] reads a body, [`Rewrite`] collects changes and
//! [`Rewrite::apply`] builds the new body.

use std::ops::Range;

/// An address line's address type and address (`IN IP4 192.0.2.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// The `4` or `6` of `IP4`/`IP6`.
    pub family_digit: usize,
    /// Whether the address type is `IP6`.
    pub ipv6: bool,
    /// The address, without a `/ttl` suffix.
    pub addr: Range<usize>,
}

/// One `m=` line and the lines that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The port token of the `m=` line (with a `/count` if any).
    pub port: Range<usize>,
    /// Whether the transport is an RTP profile (`RTP/AVP`, `RTP/SAVPF`,
    /// `UDP/TLS/RTP/SAVP`, ...).
    pub rtp: bool,
    /// The format list (payload types for RTP).
    pub formats: Range<usize>,
    /// The stream's own `c=` line.
    pub conn: Option<Conn>,
    /// The value of the last `a=rtcp:` line (trimmed).
    pub rtcp: Option<Range<usize>>,
    /// Where the last `a=candidate:` line starts.
    pub last_candidate: Option<usize>,
}

/// One session description (from `v=` to the next `v=`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    /// The `o=` line's address.
    pub origin: Option<Conn>,
    /// The session-level `c=` line.
    pub conn: Option<Conn>,
    /// The media streams.
    pub streams: Vec<Stream>,
}

/// A parsed SDP body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdp {
    /// The sessions, in order.
    pub sessions: Vec<Session>,
}

/// The lines of `body`: (start, end without CR/LF).
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= body.len() {
            return None;
        }
        let start = pos;
        let nl = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| pos + i);
        pos = nl + 1;
        let mut end = nl;
        while end > start && body[end - 1] == b'\r' {
            end -= 1;
        }
        Some((start, end))
    })
}

/// The space-separated tokens of `body[range]`, as ranges of `body`.
fn tokens(body: &[u8], range: Range<usize>) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = range.start;
    while i < range.end {
        while i < range.end && body[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while i < range.end && !body[i].is_ascii_whitespace() {
            i += 1;
        }
        if s < i {
            out.push(s..i);
        }
    }
    out
}

/// `IN IP4 addr` (the nettype, addrtype and address tokens) starting at
/// token `first` of the line.
fn conn(body: &[u8], toks: &[Range<usize>], first: usize) -> Option<Conn> {
    let net = toks.get(first)?;
    let ty = toks.get(first + 1)?;
    let addr = toks.get(first + 2)?;
    if !body[net.clone()].eq_ignore_ascii_case(b"IN") {
        return None;
    }
    let t = &body[ty.clone()];
    let ipv6 = if t.eq_ignore_ascii_case(b"IP4") {
        false
    } else if t.eq_ignore_ascii_case(b"IP6") {
        true
    } else {
        return None;
    };
    let a = &body[addr.clone()];
    let len = a.iter().position(|&b| b == b'/').unwrap_or(a.len());
    Some(Conn {
        family_digit: ty.start + 2,
        ipv6,
        addr: addr.start..addr.start + len,
    })
}

/// Whether a transport names an RTP profile.
fn is_rtp(t: &[u8]) -> bool {
    let t = t.to_ascii_uppercase();
    [
        b"RTP/AVP".as_slice(),
        b"RTP/SAVP",
        b"RTP/AVPF",
        b"RTP/SAVPF",
    ]
    .iter()
    .any(|p| t.ends_with(p))
}

/// Parses `body`. As Kamailio: every session needs `o=` and a stream,
/// and every stream a connection address (its own or the session's).
pub fn parse(body: &[u8]) -> Result<Sdp, String> {
    let mut sdp = Sdp::default();
    let mut seen_v = false;
    for (s, e) in lines(body) {
        let line = &body[s..e];
        if line.len() < 2 || line[1] != b'=' {
            continue;
        }
        let val = s + 2..e;
        match line[0] {
            // As Kamailio: one body is one session (a second v= is a line
            // of the last stream), and what comes before v= is skipped.
            b'v' if !seen_v => {
                seen_v = true;
                sdp.sessions.push(Session::default());
            }
            _ if !seen_v => continue,
            b'v' => {}
            b'o' => {
                let toks = tokens(body, val);
                let sess = sdp.sessions.last_mut().expect("a session after v=");
                if sess.streams.is_empty() {
                    sess.origin = conn(body, &toks, 3);
                }
            }
            b'c' => {
                let toks = tokens(body, val);
                let c = conn(body, &toks, 0).ok_or("a c= line that does not parse")?;
                let sess = sdp.sessions.last_mut().expect("a session after v=");
                match sess.streams.last_mut() {
                    Some(st) => st.conn = Some(c),
                    None => sess.conn = Some(c),
                }
            }
            b'm' => {
                let toks = tokens(body, val.clone());
                if toks.len() < 3 {
                    return Err("an m= line without port and transport".into());
                }
                let formats = toks
                    .get(3)
                    .map_or(toks[2].end..toks[2].end, |f| f.start..val.end);
                let sess = sdp.sessions.last_mut().expect("a session after v=");
                sess.streams.push(Stream {
                    port: toks[1].clone(),
                    rtp: is_rtp(&body[toks[2].clone()]),
                    formats,
                    conn: None,
                    rtcp: None,
                    last_candidate: None,
                });
            }
            b'a' => {
                let sess = sdp.sessions.last_mut().expect("a session after v=");
                let Some(st) = sess.streams.last_mut() else {
                    continue;
                };
                if let Some(v) = line[2..].strip_prefix(b"rtcp:") {
                    let from = e - v.len();
                    let t = tokens(body, from..e);
                    if let (Some(f), Some(l)) = (t.first(), t.last()) {
                        st.rtcp = Some(f.start..l.end);
                    } else {
                        st.rtcp = Some(from..from);
                    }
                } else if line[2..].starts_with(b"candidate:") {
                    st.last_candidate = Some(s);
                }
            }
            _ => {}
        }
    }
    if sdp.sessions.is_empty() {
        return Err("no session (v=)".into());
    }
    for sess in &sdp.sessions {
        if sess.origin.is_none() {
            return Err("a session without o=".into());
        }
        if sess.streams.is_empty() {
            return Err("a session without media (m=)".into());
        }
        if sess.conn.is_none() && sess.streams.iter().any(|s| s.conn.is_none()) {
            return Err("a stream without a connection address (c=)".into());
        }
    }
    Ok(sdp)
}

/// Whether `marker` starts a line of `body` (a prefix match, as Kamailio:
/// the byte before it is CR or LF, or it opens the body).
pub fn has_marker(body: &[u8], marker: &[u8]) -> bool {
    if marker.is_empty() || body.len() < marker.len() {
        return false;
    }
    (0..=body.len() - marker.len())
        .any(|i| body[i..].starts_with(marker) && (i == 0 || matches!(body[i - 1], b'\r' | b'\n')))
}

/// The payload list of a format list, as the `c` modifier carries it:
/// digits kept, each run of other bytes one comma, none at either end.
pub fn payload_list(formats: &[u8]) -> String {
    let mut out = String::new();
    let mut sep = false;
    for &b in formats {
        if b.is_ascii_digit() {
            if sep && !out.is_empty() {
                out.push(',');
            }
            sep = false;
            out.push(b as char);
        } else {
            sep = true;
        }
    }
    out
}

/// Whether an address is the null address of hold (`0.0.0.0`, or an IPv6
/// address of zeros and colons only).
pub fn is_null_addr(a: &[u8], ipv6: bool) -> bool {
    if ipv6 {
        !a.is_empty() && a.iter().all(|&b| b == b'0' || b == b':')
    } else {
        a == b"0.0.0.0"
    }
}

/// Changes to a body: replacements of byte ranges and insertions.
#[derive(Debug, Default)]
pub struct Rewrite {
    edits: Vec<(usize, usize, Vec<u8>)>,
}

impl Rewrite {
    /// Replaces `range` with `text` (an insertion when it is empty).
    pub fn replace(&mut self, range: Range<usize>, text: &[u8]) {
        self.edits.push((range.start, range.end, text.to_vec()));
    }

    /// Sets an address line to `addr` of family `ipv6`, as Kamailio does:
    /// nothing when the line holds the null address of the same family
    /// (hold stays hold) or already `addr`; the address alone when the
    /// family is the same; else the address type and the address.
    pub fn set_addr(&mut self, body: &[u8], c: &Conn, addr: &str, ipv6: bool) {
        let old = &body[c.addr.clone()];
        if c.ipv6 == ipv6 && (is_null_addr(old, ipv6) || old == addr.as_bytes()) {
            return;
        }
        if c.ipv6 == ipv6 {
            self.replace(c.addr.clone(), addr.as_bytes());
        } else {
            let digit = if ipv6 { "6" } else { "4" };
            self.replace(
                c.family_digit..c.addr.end,
                format!("{digit} {addr}").as_bytes(),
            );
        }
    }

    /// Whether nothing was changed.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// The body with the changes made (in order of position; insertions
    /// at one place in the order they were made).
    pub fn apply(mut self, body: &[u8]) -> Vec<u8> {
        self.edits.sort_by_key(|e| (e.0, e.1));
        let mut out = Vec::with_capacity(body.len() + 64);
        let mut pos = 0;
        for (s, e, text) in self.edits {
            if s < pos {
                // Overlaps an earlier change: the earlier one stands.
                continue;
            }
            out.extend_from_slice(&body[pos..s]);
            out.extend_from_slice(&text);
            pos = e;
        }
        out.extend_from_slice(&body[pos..]);
        out
    }
}

/// Where the marker line goes: after the last byte that is not CR or LF.
pub fn marker_at(body: &[u8]) -> usize {
    body.iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtcp:4001\r\nm=video 4002 RTP/AVP 96\r\nc=IN IP4 192.168.1.11/127\r\na=rtcp:4005 IN IP4 192.168.1.11\r\na=candidate:1 1 UDP 1 192.168.1.11 4002 typ host\r\na=candidate:1 2 UDP 1 192.168.1.11 4003 typ host\r\nm=image 0 udptl t38\r\n";

    fn at(body: &str, r: &Range<usize>) -> String {
        body[r.clone()].to_string()
    }

    #[test]
    fn streams_and_their_lines_are_found() {
        let sdp = parse(TWO.as_bytes()).unwrap();
        assert_eq!(sdp.sessions.len(), 1);
        let s = &sdp.sessions[0];
        assert_eq!(at(TWO, &s.origin.as_ref().unwrap().addr), "192.168.1.10");
        assert_eq!(at(TWO, &s.conn.as_ref().unwrap().addr), "192.168.1.10");
        assert_eq!(s.streams.len(), 3);
        let [a, v, i] = [&s.streams[0], &s.streams[1], &s.streams[2]];
        assert_eq!(at(TWO, &a.port), "4000");
        assert!(a.rtp && v.rtp && !i.rtp);
        assert_eq!(at(TWO, &a.formats), "0 8 101");
        assert_eq!(at(TWO, a.rtcp.as_ref().unwrap()), "4001");
        assert!(a.conn.is_none() && a.last_candidate.is_none());
        let vc = v.conn.as_ref().unwrap();
        assert_eq!(
            at(TWO, &vc.addr),
            "192.168.1.11",
            "the TTL is not the address"
        );
        assert_eq!(
            at(TWO, v.rtcp.as_ref().unwrap()),
            "4005 IN IP4 192.168.1.11"
        );
        let cand = v.last_candidate.unwrap();
        assert!(TWO[cand..].starts_with("a=candidate:1 2 UDP"));
        assert_eq!(at(TWO, &i.port), "0");
    }

    #[test]
    fn what_kamailio_refuses_is_refused() {
        assert!(parse(b"").is_err());
        assert!(parse(b"x=1\r\n").is_err());
        assert!(parse(b"v=0\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n").is_err());
        assert!(parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\n").is_err());
        assert!(parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n").is_err());
        assert!(
            parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN XX 1\r\nm=audio 1 RTP/AVP 0\r\n")
                .is_err()
        );
        assert!(parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1\r\n").is_err());
        // Bare LF line ends are read too.
        assert!(
            parse(b"v=0\no=- 1 1 IN IP4 1.2.3.4\nc=IN IP4 1.2.3.4\nm=audio 1 RTP/AVP 0\n").is_ok()
        );
    }

    #[test]
    fn one_body_is_one_session_as_kamailio_reads_it() {
        let b = b"junk\r\nv=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\nv=0\r\no=- 2 2 IN IP4 5.6.7.8\r\nc=IN IP4 5.6.7.8\r\nm=audio 2 RTP/AVP 0\r\n";
        let sdp = parse(b).unwrap();
        assert_eq!(sdp.sessions.len(), 1);
        let s = &sdp.sessions[0];
        assert_eq!(s.streams.len(), 2);
        // The second o= is not the session's; its c= is the first stream's.
        assert_eq!(&b[s.origin.as_ref().unwrap().addr.clone()], b"1.2.3.4");
        assert_eq!(
            &b[s.streams[0].conn.as_ref().unwrap().addr.clone()],
            b"5.6.7.8"
        );
    }

    #[test]
    fn the_marker_counts_at_a_line_start_only() {
        let m = b"a=nortpproxy:yes";
        assert!(has_marker(b"v=0\r\na=nortpproxy:yes\r\n", m));
        assert!(has_marker(b"v=0\na=nortpproxy:yesXYZ", m));
        assert!(has_marker(b"a=nortpproxy:yes", m));
        assert!(!has_marker(b"v=0\r\nxa=nortpproxy:yes\r\n", m));
        assert!(!has_marker(b"v=0\r\n", b""));
    }

    #[test]
    fn payload_lists_keep_digits_and_one_comma_per_gap() {
        assert_eq!(payload_list(b"0 8 101"), "0,8,101");
        assert_eq!(payload_list(b"0  8\t101 x"), "0,8,101");
        assert_eq!(payload_list(b"96"), "96");
        assert_eq!(payload_list(b""), "");
    }

    #[test]
    fn addresses_change_as_kamailio_changes_them() {
        let body = b"c=IN IP4 0.0.0.0\r\nc=IN IP4 10.0.0.1\r\nc=IN IP6 ::1\r\n";
        let cs: Vec<Conn> = lines(body)
            .map(|(s, e)| conn(body, &tokens(body, s + 2..e), 0).unwrap())
            .collect();
        let (c0, c1, c2) = (&cs[0], &cs[1], &cs[2]);
        let mut rw = Rewrite::default();
        rw.set_addr(body, c0, "1.1.1.1", false); // hold stays
        rw.set_addr(body, c1, "1.1.1.1", false);
        rw.set_addr(body, c2, "1.1.1.1", false); // family changes
        let out = String::from_utf8(rw.apply(body)).unwrap();
        assert_eq!(
            out,
            "c=IN IP4 0.0.0.0\r\nc=IN IP4 1.1.1.1\r\nc=IN IP4 1.1.1.1\r\n"
        );
        let mut rw = Rewrite::default();
        rw.set_addr(body, c0, "2001:db8::1", true); // null of another family changes
        let out = String::from_utf8(rw.apply(body)).unwrap();
        assert!(out.starts_with("c=IN IP6 2001:db8::1\r\n"), "{out}");
    }

    #[test]
    fn the_marker_goes_after_the_last_line() {
        assert_eq!(marker_at(b"v=0\r\nm=x\r\n\r\n"), 8);
        assert_eq!(marker_at(b"v=0"), 3);
        assert_eq!(marker_at(b"\r\n"), 0);
    }
}
