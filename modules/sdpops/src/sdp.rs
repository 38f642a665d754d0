//! The SDP as sdpops reads it: its lines with their byte ranges, the
//! sessions (`v=`) and the media streams (`m=` to the next `m=` or `v=`),
//! each stream's type, port, transport and payload ids, and the encoding
//! names of `a=rtpmap`. No I/O.

use std::ops::Range;

/// One line: its range in the body without and with its line end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text (no CR/LF).
    pub text: Range<usize>,
    /// The whole line, with its CRLF or LF.
    pub full: Range<usize>,
}

/// A media stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// From its `m=` line to the next `m=`/`v=` (or the end).
    pub range: Range<usize>,
    /// Its lines (the `m=` line first).
    pub lines: Vec<Line>,
    /// Media type (`audio`).
    pub media: String,
    /// Port.
    pub port: u32,
    /// Transport (`RTP/AVP`).
    pub proto: String,
    /// Payload ids with the range of each (in the `m=` line).
    pub payloads: Vec<(String, Range<usize>)>,
}

/// A session (from a `v=` line).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    /// Its `o=` line's text.
    pub origin: Option<Range<usize>>,
    /// Its session-level `c=` line's text.
    pub conn: Option<Range<usize>>,
    /// Its streams.
    pub streams: Vec<Stream>,
}

/// A parsed SDP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdp {
    /// Every line.
    pub lines: Vec<Line>,
    /// The sessions.
    pub sessions: Vec<Session>,
}

impl Sdp {
    /// Every stream of every session.
    pub fn streams(&self) -> impl Iterator<Item = &Stream> {
        self.sessions.iter().flat_map(|s| s.streams.iter())
    }
}

/// Splits `body` into lines.
pub fn lines(body: &[u8]) -> Vec<Line> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let nl = body[start..].iter().position(|&c| c == b'\n');
        let (end, next) = match nl {
            Some(i) => (start + i, start + i + 1),
            None => (body.len(), body.len()),
        };
        let text_end = if end > start && body[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        out.push(Line {
            text: start..text_end,
            full: start..next,
        });
        start = next;
    }
    out
}

fn text(body: &[u8], r: &Range<usize>) -> String {
    String::from_utf8_lossy(body.get(r.clone()).unwrap_or_default()).into_owned()
}

/// Parses an SDP body; an error for one without `v=`.
pub fn parse(body: &[u8]) -> Result<Sdp, String> {
    let all = lines(body);
    let mut sessions: Vec<Session> = Vec::new();
    for l in &all {
        let t = body.get(l.text.clone()).unwrap_or_default();
        if t.starts_with(b"v=") {
            sessions.push(Session::default());
            continue;
        }
        let Some(s) = sessions.last_mut() else {
            continue;
        };
        if t.starts_with(b"m=") {
            let line = text(body, &l.text);
            let mut words = line[2..].split(' ').filter(|w| !w.is_empty());
            let media = words.next().unwrap_or("").to_string();
            let port = words
                .next()
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let proto = words.next().unwrap_or("").to_string();
            // The payload ids and where each lies in the line (counted
            // on the bytes, not on a lossy copy).
            let mut payloads = Vec::new();
            let mut seen = 0;
            let mut pos = l.text.start;
            for w in t.split(|&c| c == b' ') {
                if !w.is_empty() {
                    if seen >= 3 {
                        let id = String::from_utf8_lossy(w).into_owned();
                        payloads.push((id, pos..pos + w.len()));
                    }
                    seen += 1;
                }
                pos += w.len() + 1;
            }
            s.streams.push(Stream {
                range: l.full.start..l.full.end,
                lines: vec![l.clone()],
                media,
                port,
                proto,
                payloads,
            });
            continue;
        }
        match s.streams.last_mut() {
            Some(st) => {
                st.range.end = l.full.end;
                st.lines.push(l.clone());
            }
            None => {
                if t.starts_with(b"o=") {
                    s.origin = Some(l.text.clone());
                } else if t.starts_with(b"c=") {
                    s.conn = Some(l.text.clone());
                }
            }
        }
    }
    if sessions.is_empty() {
        return Err("no v= line".into());
    }
    Ok(Sdp {
        lines: all,
        sessions,
    })
}

/// The encoding name of `a=rtpmap:<id> <name>/...` in a stream, by id.
pub fn rtpmap(body: &[u8], st: &Stream) -> Vec<(String, String)> {
    st.lines
        .iter()
        .filter_map(|l| {
            let t = text(body, &l.text);
            let rest = t
                .get(..9)
                .filter(|p| p.eq_ignore_ascii_case("a=rtpmap:"))
                .map(|_| &t[9..])?;
            let (id, enc) = rest.split_once(' ')?;
            let name = enc.trim().split('/').next()?.to_string();
            Some((id.trim().to_string(), name))
        })
        .collect()
}

/// The static payload types by name (RFC 3551), as Kamailio's table.
pub fn static_ids(name: &str) -> Option<&'static [&'static str]> {
    const T: &[(&str, &[&str])] = &[
        ("PCMU", &["0"]),
        ("GSM", &["3"]),
        ("G723", &["4"]),
        ("DVI4", &["5", "6", "16", "17"]),
        ("LPC", &["7"]),
        ("PCMA", &["8"]),
        ("G722", &["9"]),
        ("L16", &["10", "11"]),
        ("QCELP", &["12"]),
        ("CN", &["13"]),
        ("MPA", &["14"]),
        ("G728", &["15"]),
        ("G729", &["18"]),
    ];
    T.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, ids)| *ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\nm=video 0 RTP/AVP 31\r\n";

    #[test]
    fn streams_and_payloads() {
        let b = BODY.as_bytes();
        let s = parse(b).unwrap();
        let st: Vec<&Stream> = s.streams().collect();
        assert_eq!(st.len(), 2);
        assert_eq!(
            (st[0].media.as_str(), st[0].port, st[0].proto.as_str()),
            ("audio", 49170, "RTP/AVP")
        );
        let ids: Vec<&str> = st[0].payloads.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(ids, ["0", "8", "101"]);
        assert_eq!(&BODY[st[0].payloads[2].1.clone()], "101");
        assert_eq!(st[1].port, 0);
        assert_eq!(
            rtpmap(b, st[0])[1],
            ("101".to_string(), "telephone-event".to_string())
        );
        assert!(s.sessions[0].origin.is_some() && s.sessions[0].conn.is_some());
        assert!(parse(b"s=-\r\n").is_err());
        assert_eq!(static_ids("pcma"), Some(&["8"][..]));
    }
}
