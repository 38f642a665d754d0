//! The order Kamailio's `sort_contacts` gives a reply's contacts: by q,
//! lowest first, equal q in the order received; at most 16 kept (a
//! 17th with a lower q pushes out the highest); and, with a limit, the
//! last (highest) ones.

/// The most contacts taken from one reply.
pub const MAX_CONTACTS_PER_REPLY: usize = 16;

/// Sorts `(q, uri, flags)` entries and keeps at most `max` (-1: all).
pub fn by_q(entries: Vec<(u16, String, u32)>, max: i64) -> Vec<(u16, String, u32)> {
    let mut out: Vec<(u16, String, u32)> = Vec::new();
    for e in entries {
        let at = out.iter().position(|x| x.0 > e.0).unwrap_or(out.len());
        if at == MAX_CONTACTS_PER_REPLY {
            continue;
        }
        out.insert(at, e);
        out.truncate(MAX_CONTACTS_PER_REPLY);
    }
    if max >= 0 && out.len() as i64 > max {
        out.drain(..out.len() - max as usize);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(q: u16, u: &str) -> (u16, String, u32) {
        (q, u.to_string(), 0)
    }

    fn uris(v: &[(u16, String, u32)]) -> Vec<&str> {
        v.iter().map(|x| x.1.as_str()).collect()
    }

    #[test]
    fn lowest_q_first_and_stable() {
        let v = by_q(vec![e(500, "a"), e(1000, "b"), e(10, "c"), e(500, "d")], -1);
        assert_eq!(uris(&v), ["c", "a", "d", "b"]);
        let v = by_q(vec![e(500, "a"), e(1000, "b"), e(10, "c")], 2);
        assert_eq!(uris(&v), ["a", "b"]);
    }

    #[test]
    fn sixteen_at_most() {
        let mut v: Vec<_> = (0..16).map(|i| e(100 + i, "x")).collect();
        v.push(e(1000, "high"));
        v.push(e(1, "low"));
        let out = by_q(v, -1);
        assert_eq!(out.len(), 16);
        assert_eq!(out[0].1, "low");
        assert!(out.iter().all(|x| x.1 != "high"));
        assert_eq!(out[15].0, 114);
    }
}
