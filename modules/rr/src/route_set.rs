//! The Route header values of a request with their byte ranges, so one
//! value can be removed from a header holding several.

use sr_sdk::sip_msg::headers::NameAddr;
use sr_sdk::sip_msg::scan::find_top_level;
use sr_sdk::sip_msg::{HeaderName, Message};

/// One Route value.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    /// The URI (without angle brackets).
    pub uri: String,
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

/// Removes a set of Route values: whole lines when every value of a line
/// goes, else the values one by one.
pub fn remove(edits: &mut sr_sdk::sip_msg::edit::Edits, all: &[RouteEntry], gone: &[usize]) {
    let mut lines: Vec<usize> = gone
        .iter()
        .filter_map(|i| all.get(*i))
        .map(|e| e.hdr)
        .collect();
    lines.dedup();
    for hdr in lines {
        let in_line: Vec<&RouteEntry> = gone
            .iter()
            .filter_map(|i| all.get(*i))
            .filter(|e| e.hdr == hdr)
            .collect();
        let Some(first) = in_line.first() else {
            continue;
        };
        if in_line.len() >= first.of {
            edits.delete(first.line.0, first.line.1);
        } else {
            for e in in_line {
                edits.delete(e.del.0, e.del.1);
            }
        }
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
        let mut parts: Vec<(u32, u32, &str)> = Vec::new();
        let mut rest = h.value;
        loop {
            let start = offset(raw, rest);
            match find_top_level(rest, b',') {
                Some(i) => {
                    parts.push((start, start + i as u32 + 1, &rest[..i]));
                    rest = &rest[i + 1..];
                }
                None => {
                    parts.push((start, start + rest.len() as u32, rest));
                    break;
                }
            }
        }
        let single = parts.len() == 1;
        let n = parts.len();
        for (i, (s, e, text)) in parts.into_iter().enumerate() {
            let Ok(na) = NameAddr::parse(text, "Route") else {
                continue;
            };
            let del = if single {
                (h.start, h.end)
            } else if i + 1 == n {
                // The last value: remove it with the comma before it.
                let before = &raw[h.value_start as usize..s as usize];
                let comma = before.iter().rposition(|b| *b == b',').unwrap_or(0) as u32;
                (h.value_start + comma, e)
            } else {
                (s, e)
            };
            out.push(RouteEntry {
                uri: na.uri_str.to_string(),
                del,
                hdr,
                line: (h.start, h.end),
                of: n,
            });
        }
    }
    out
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
        assert_eq!(e[0].uri, "sip:p1;lr");
        let s =
            |r: (u32, u32)| String::from_utf8_lossy(&text[r.0 as usize..r.1 as usize]).to_string();
        assert_eq!(s(e[0].del), "<sip:p1;lr>,");
        assert_eq!(s(e[1].del), ", <sip:p2;lr>");
        assert_eq!(s(e[2].del), "Route: <sip:p3>\r\n");
    }
}
