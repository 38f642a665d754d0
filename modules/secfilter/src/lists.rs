//! secfilter's lists: for the allowed (white) and the blocked (black)
//! side, user agents, countries, domains, IP addresses and users (names
//! and URI users), plus blocked destinations; and how an entry matches a
//! value, as Kamailio 5.6 compares them: the entry is a prefix of the
//! value, ignoring ASCII case, compared over the entry's length.

/// One side's lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Side {
    /// User agents.
    pub ua: Vec<String>,
    /// Country codes.
    pub country: Vec<String>,
    /// Domains.
    pub domain: Vec<String>,
    /// IP addresses (as text).
    pub ip: Vec<String>,
    /// Users (URI users and display names).
    pub user: Vec<String>,
    /// Destinations (blocked side only).
    pub dst: Vec<String>,
}

/// Both sides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lists {
    /// Allowed.
    pub white: Side,
    /// Blocked.
    pub black: Side,
}

/// A list by its `type` column (0 user agent, 1 country, 2 domain, 3 IP
/// address, 4 user).
pub fn by_type(side: &mut Side, ty: i64) -> Option<&mut Vec<String>> {
    Some(match ty {
        0 => &mut side.ua,
        1 => &mut side.country,
        2 => &mut side.domain,
        3 => &mut side.ip,
        4 => &mut side.user,
        _ => return None,
    })
}

impl Lists {
    /// Adds one table row: `action` 0 blocked, 1 allowed, 2 blocked
    /// destination (type 0; other types go to the blocked lists).
    pub fn add_row(&mut self, action: i64, ty: i64, data: &str) -> Result<(), String> {
        if !(0..=4).contains(&ty) {
            return Err(format!("Unknown type value {ty}"));
        }
        let list = match action {
            0 => by_type(&mut self.black, ty),
            1 => by_type(&mut self.white, ty),
            2 if ty == 0 => Some(&mut self.black.dst),
            2 => by_type(&mut self.black, ty),
            _ => return Err(format!("Unknown action value {action}")),
        };
        if let Some(l) = list {
            l.push(data.to_string());
        }
        Ok(())
    }
}

/// Whether `entry` matches `value` (a case-insensitive prefix).
pub fn matches(entry: &str, value: &str) -> bool {
    let (e, v) = (entry.as_bytes(), value.as_bytes());
    v.len() >= e.len() && v[..e.len()].eq_ignore_ascii_case(e)
}

/// Whether any entry of `list` matches `value`.
pub fn any(list: &[String], value: &str) -> bool {
    list.iter().any(|e| matches(e, value))
}

/// `secf_check_dst`'s comparison: exactly (ignoring case) when `exact`,
/// else by prefix. (Kamailio 5.6 cuts the value to each entry's length
/// in turn and never restores it, so a longer entry after a shorter one
/// never matches; that is not copied: every entry is compared as a
/// prefix. Both agree when the entries are listed longest first.)
pub fn dst_blocked(list: &[String], value: &str, exact: bool) -> bool {
    if exact {
        return list.iter().any(|e| {
            e.len() == value.len() && e.as_bytes().eq_ignore_ascii_case(value.as_bytes())
        });
    }
    any(list, value)
}

/// The substrings secfilter takes for SQL injection (Kamailio 5.6.3's
/// set), searched case-sensitively.
pub const SQLI: &[&str] = &["'", "\"", "--", "%27", "%24", "%60"];

/// Whether `value` holds one of [`SQLI`] (up to a NUL byte, as C reads
/// it).
pub fn sqli(value: &str) -> bool {
    let v = value.split('\0').next().unwrap_or("");
    SQLI.iter().any(|s| v.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_case_insensitive_prefixes() {
        assert!(matches("sipcli", "SIPcli/1.6"));
        assert!(!matches("sipcli/1.6", "sipcli"));
        assert!(matches("", "anything"));
        assert!(matches("192.168.1.", "192.168.1.7"));
    }

    #[test]
    fn destinations_match_exactly_or_by_prefix() {
        let l = vec!["12".to_string(), "555".to_string()];
        assert!(dst_blocked(&l, "12345", false));
        // Kamailio 5.6 misses this one (its value shrinks to "55").
        assert!(dst_blocked(&l, "555123", false));
        assert!(dst_blocked(&l, "555", true) && !dst_blocked(&l, "5551", true));
    }

    #[test]
    fn rows_go_to_their_lists() {
        let mut l = Lists::default();
        l.add_row(0, 0, "friendly-scanner").unwrap();
        l.add_row(1, 4, "alice").unwrap();
        l.add_row(2, 0, "0900").unwrap();
        l.add_row(2, 1, "XX").unwrap();
        assert_eq!(l.black.ua, ["friendly-scanner"]);
        assert_eq!(l.white.user, ["alice"]);
        assert_eq!(l.black.dst, ["0900"]);
        assert_eq!(l.black.country, ["XX"]);
        assert!(l.add_row(3, 0, "x").is_err());
        assert!(l.add_row(0, 5, "x").is_err());
        assert!(sqli("a' or 1=1") && sqli("x%24") && !sqli("plain") && !sqli("ok\0'"));
    }
}
