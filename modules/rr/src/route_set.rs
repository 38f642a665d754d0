//! The Route header values of a request with their byte ranges, so one
//! value can be removed from a header holding several.

use sr_sdk::sip_msg::headers::NameAddr;
use sr_sdk::sip_msg::scan::find_top_level;
use sr_sdk::sip_msg::{HeaderName, Message};

/// One Route value.
#[derive(Debug, Clone, Copy)]
pub struct RouteEntry {
    /// Byte range of the URI (without angle brackets) in the message.
    pub uri: (u32, u32),
    /// Byte range to delete to remove this value (with its comma, or the
    /// whole header line when it is the header's only value).
    pub del: (u32, u32),
    /// Which Route header line (0 = first) holds it.
    pub hdr: usize,
    /// That header line's byte range.
    pub line: (u32, u32),
    /// How many values that header holds.
    pub of: usize,
}

impl RouteEntry {
    /// The URI, read from the message the entry was taken from.
    pub fn uri<'m>(&self, m: &Message<'m>) -> &'m str {
        m.raw()
            .get(self.uri.0 as usize..self.uri.1 as usize)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

/// Removes a set of Route values (`gone`: indexes into `all`, ascending):
/// whole lines when every value of a line goes, else the values one by
/// one.
pub fn remove(edits: &mut sr_sdk::sip_msg::edit::Edits, all: &[RouteEntry], gone: &[usize]) {
    let mut i = 0;
    while i < gone.len() {
        let Some(first) = all.get(gone[i]) else {
            i += 1;
            continue;
        };
        let same_line = gone[i..]
            .iter()
            .take_while(|g| all.get(**g).is_some_and(|e| e.hdr == first.hdr))
            .count();
        if same_line >= first.of {
            edits.delete(first.line.0, first.line.1);
        } else {
            for e in gone[i..i + same_line].iter().filter_map(|g| all.get(*g)) {
                edits.delete(e.del.0, e.del.1);
            }
        }
        i += same_line.max(1);
    }
}

fn offset(base: &[u8], part: &str) -> u32 {
    (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize) as u32
}

/// Every Route value, topmost first. Unparsable values are skipped.
pub fn entries(m: &Message<'_>) -> Vec<RouteEntry> {
    let raw = m.raw();
    let mut out = Vec::new();
    for (hdr, h) in m.headers_named(HeaderName::Route).enumerate() {
        let n = 1 + count_top_level(h.value, b',');
        let mut rest = h.value;
        for i in 0..n {
            let start = offset(raw, rest);
            let (text, e) = match find_top_level(rest, b',') {
                Some(c) if i + 1 < n => {
                    let t = &rest[..c];
                    // The white space after the comma goes with the value,
                    // as Kamailio removes it (`Route: <a>, <b>` leaves
                    // `Route: <b>`).
                    rest = rest[c + 1..].trim_start_matches([' ', '\t']);
                    (t, offset(raw, rest))
                }
                _ => (rest, start + rest.len() as u32),
            };
            let Ok(na) = NameAddr::parse(text, "Route") else {
                continue;
            };
            let del = if n == 1 {
                (h.start, h.end)
            } else if i + 1 == n {
                // The last value: remove it with the comma before it.
                let before = &raw[h.value_start as usize..start as usize];
                let comma = before.iter().rposition(|b| *b == b',').unwrap_or(0) as u32;
                (h.value_start + comma, e)
            } else {
                (start, e)
            };
            let u = offset(raw, na.uri_str);
            out.push(RouteEntry {
                uri: (u, u + na.uri_str.len() as u32),
                del,
                hdr,
                line: (h.start, h.end),
                of: n,
            });
        }
    }
    out
}

/// How many times `sep` occurs outside quotes and angle brackets.
fn count_top_level(mut s: &str, sep: u8) -> usize {
    let mut n = 0;
    while let Some(i) = find_top_level(s, sep) {
        n += 1;
        s = &s[i + 1..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_values() {
        let text = b"BYE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nRoute: <sip:p1;lr>, <sip:p2;lr>\r\nRoute: <sip:p3>\r\nCall-ID: c\r\n\r\n";
        let m = Message::parse(text).unwrap();
        let e = entries(&m);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].uri(&m), "sip:p1;lr");
        assert_eq!(e[2].uri(&m), "sip:p3");
        let s =
            |r: (u32, u32)| String::from_utf8_lossy(&text[r.0 as usize..r.1 as usize]).to_string();
        assert_eq!(s(e[0].del), "<sip:p1;lr>, ");
        assert_eq!(s(e[1].del), ", <sip:p2;lr>");
        assert_eq!(s(e[2].del), "Route: <sip:p3>\r\n");
    }

    #[test]
    fn removal_takes_whole_lines_or_single_values() {
        let text = b"BYE sip:b@h SIP/2.0\r\nRoute: <sip:p1;lr>, <sip:p2;lr>\r\nRoute: <sip:p3>\r\nCall-ID: c\r\n\r\n";
        let m = Message::parse(text).unwrap();
        let all = entries(&m);
        let after = |gone: &[usize]| {
            let mut e = sr_sdk::sip_msg::edit::Edits::new();
            remove(&mut e, &all, gone);
            String::from_utf8(e.apply(&m, Default::default())).unwrap()
        };
        let head = "BYE sip:b@h SIP/2.0\r\n";
        let tail = "Call-ID: c\r\n\r\n";
        assert_eq!(
            after(&[0]),
            format!("{head}Route: <sip:p2;lr>\r\nRoute: <sip:p3>\r\n{tail}")
        );
        assert_eq!(after(&[0, 1]), format!("{head}Route: <sip:p3>\r\n{tail}"));
        assert_eq!(
            after(&[1, 2]),
            format!("{head}Route: <sip:p1;lr>\r\n{tail}")
        );
        assert_eq!(after(&[0, 1, 2]), format!("{head}{tail}"));
    }
}
