//! The `trusted` table: peers trusted by source address (as text),
//! transport, and patterns on the From URI and the Request-URI, each with
//! a tag and a priority, matched as Kamailio's `allow_trusted`.

use regex::Regex;

/// A transport a row names (`any` matches all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `any`.
    Any,
    /// `udp`, `tcp`, `tls`, `sctp`, `ws`, `wss`.
    Named(&'static str),
}

/// Parses a row's (or a call's) protocol, case-insensitively; `None` for
/// `none` and anything unknown.
pub fn parse_proto(s: &str) -> Option<Proto> {
    let l = s.trim().to_ascii_lowercase();
    Some(match l.as_str() {
        "any" => Proto::Any,
        "udp" => Proto::Named("udp"),
        "tcp" => Proto::Named("tcp"),
        "tls" => Proto::Named("tls"),
        "sctp" => Proto::Named("sctp"),
        "ws" => Proto::Named("ws"),
        "wss" => Proto::Named("wss"),
        _ => return None,
    })
}

/// Kamailio's number for a protocol (`permissions.trustedDump`).
pub fn proto_number(p: Proto) -> i64 {
    match p {
        Proto::Any => 0,
        Proto::Named("udp") => 1,
        Proto::Named("tcp") => 2,
        Proto::Named("tls") => 3,
        Proto::Named("sctp") => 4,
        Proto::Named("ws") => 5,
        Proto::Named("wss") => 6,
        Proto::Named(_) => 0,
    }
}

/// One row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// `src_ip`.
    pub src_ip: String,
    /// `proto`.
    pub proto: String,
    /// `from_pattern`.
    pub from_pattern: Option<String>,
    /// `ruri_pattern`.
    pub ruri_pattern: Option<String>,
    /// `tag`.
    pub tag: Option<String>,
    /// `priority`.
    pub priority: i64,
}

/// One row, ready to match.
#[derive(Debug, Clone)]
pub struct Row {
    /// `src_ip`, compared as text.
    pub src_ip: String,
    /// Transport.
    pub proto: Proto,
    /// `from_pattern` (none: any).
    pub from: Option<Regex>,
    /// `ruri_pattern` (none: any).
    pub ruri: Option<Regex>,
    /// `tag`.
    pub tag: Option<String>,
    /// `priority`.
    pub priority: i64,
}

/// A POSIX basic regular expression (what Kamailio compiles the trusted
/// patterns as, with GNU's extensions) in the `regex` crate's syntax:
/// `\(` `\)` `\{` `\}` `\|` `\+` `\?` are the operators and the bare
/// characters literal; `*` first (or after `\(`, `^` or `\|`) is literal;
/// a backslash inside brackets is literal. Back-references are refused.
pub fn bre_to_regex(bre: &str) -> Result<String, String> {
    let mut out = String::with_capacity(bre.len() + 8);
    let mut chars = bre.chars().peekable();
    // Whether a `*` here would have nothing to repeat.
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    return Err("trailing backslash".into());
                };
                match n {
                    '(' | ')' | '{' | '}' | '|' | '+' | '?' => out.push(n),
                    '1'..='9' => return Err("back-references are not supported".into()),
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
                at_start = matches!(n, '(' | '|');
                continue;
            }
            '[' => {
                // Copied to the closing bracket; a backslash inside is a
                // character of the set.
                out.push('[');
                let mut first = true;
                while let Some(b) = chars.next() {
                    if b == ']' && !first {
                        out.push(']');
                        break;
                    }
                    if b == '[' && chars.peek() == Some(&':') {
                        out.push('[');
                        for x in chars.by_ref() {
                            out.push(x);
                            if x == ']' {
                                break;
                            }
                        }
                        first = false;
                        continue;
                    }
                    if b == '^' && first {
                        out.push('^');
                        continue;
                    }
                    // Characters the regex crate reads as class syntax are
                    // escaped (a `-` only first: elsewhere it is a range).
                    if matches!(b, '\\' | '[' | '&' | '~') || (b == '-' && first) {
                        out.push('\\');
                    }
                    out.push(b);
                    first = false;
                }
            }
            '*' if at_start => out.push_str("\\*"),
            '(' | ')' | '{' | '}' | '|' | '+' | '?' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        at_start = c == '^' && out.len() == 1;
    }
    Ok(out)
}

fn pattern(p: &Option<String>, what: &str) -> Result<Option<Regex>, String> {
    match p.as_deref() {
        None => Ok(None),
        Some(s) => bre_to_regex(s)
            .and_then(|r| Regex::new(&r).map_err(|e| e.to_string()))
            .map(Some)
            .map_err(|e| format!("bad {what} '{s}': {e}")),
    }
}

impl Row {
    /// Prepares a row; an error for an unknown protocol or a bad pattern.
    /// A `none` row is left out of the cache (`Ok(None)`, as Kamailio's
    /// cache does); read per call it stays, matching only a call that
    /// asks for `any`.
    pub fn new(r: &RawRow, cached: bool) -> Result<Option<Row>, String> {
        let proto = if r.proto.trim().eq_ignore_ascii_case("none") {
            if cached {
                return Ok(None);
            }
            Proto::Named("none")
        } else {
            parse_proto(&r.proto)
                .ok_or_else(|| format!("unknown protocol '{}' for {}", r.proto, r.src_ip))?
        };
        Ok(Some(Row {
            src_ip: r.src_ip.clone(),
            proto,
            from: pattern(&r.from_pattern, "from_pattern")?,
            ruri: pattern(&r.ruri_pattern, "ruri_pattern")?,
            tag: r.tag.clone(),
            priority: r.priority,
        }))
    }

    /// Whether the row matches a message from `ip` over `proto` with this
    /// From URI and Request-URI (`None` when the message has none: the
    /// patterns are not checked).
    pub fn matches(&self, ip: &str, proto: Proto, from: Option<&str>, ruri: Option<&str>) -> bool {
        let proto_ok = self.proto == Proto::Any || proto == Proto::Any || self.proto == proto;
        let re_ok = |re: &Option<Regex>, text: Option<&str>| match (re, text) {
            (Some(re), Some(t)) => re.is_match(t),
            _ => true,
        };
        self.src_ip == ip && proto_ok && re_ok(&self.from, from) && re_ok(&self.ruri, ruri)
    }
}

/// The cached table: rows by priority, highest first (equal priorities in
/// table order).
pub fn prepare(rows: &[RawRow]) -> Result<Vec<Row>, String> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(row) = Row::new(r, true)? {
            out.push(row);
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.priority));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(
        ip: &str,
        proto: &str,
        from: Option<&str>,
        ruri: Option<&str>,
        tag: &str,
        prio: i64,
    ) -> RawRow {
        RawRow {
            src_ip: ip.into(),
            proto: proto.into(),
            from_pattern: from.map(Into::into),
            ruri_pattern: ruri.map(Into::into),
            tag: (!tag.is_empty()).then(|| tag.into()),
            priority: prio,
        }
    }

    #[test]
    fn rows_match_as_kamailio() {
        let rows = prepare(&[
            raw("10.0.0.1", "udp", None, None, "low", 1),
            raw(
                "10.0.0.1",
                "ANY",
                Some("^sip:.*@carrier\\.net"),
                None,
                "high",
                9,
            ),
            raw("10.0.0.1", "none", None, None, "never", 50),
            raw("10.0.0.2", "tcp", None, Some("^sip:+49"), "de", 0),
        ])
        .unwrap();
        assert_eq!(rows.len(), 3, "the none row is dropped");
        assert_eq!(
            rows[0].tag.as_deref(),
            Some("high"),
            "highest priority first"
        );
        let udp = Proto::Named("udp");
        let m = |r: &Row, ip, p, f, u| r.matches(ip, p, f, u);
        assert!(m(
            &rows[0],
            "10.0.0.1",
            udp,
            Some("sip:a@carrier.net"),
            None
        ));
        assert!(!m(&rows[0], "10.0.0.1", udp, Some("sip:a@other.net"), None));
        assert!(m(&rows[1], "10.0.0.1", udp, Some("sip:a@other.net"), None));
        assert!(!m(&rows[1], "10.0.0.1", Proto::Named("tcp"), None, None));
        assert!(m(&rows[1], "10.0.0.1", Proto::Any, None, None), "any asked");
        assert!(
            !m(&rows[1], "10.0.0.10", udp, None, None),
            "text, not prefix"
        );
        assert!(m(
            &rows[2],
            "10.0.0.2",
            Proto::Named("tcp"),
            None,
            Some("sip:+4930@x")
        ));
        assert!(!m(
            &rows[2],
            "10.0.0.2",
            Proto::Named("tcp"),
            None,
            Some("sip:+3330@x")
        ));
        assert!(prepare(&[raw("1.2.3.4", "carrier-pigeon", None, None, "", 0)]).is_err());
        assert!(prepare(&[raw("1.2.3.4", "udp", Some("\\("), None, "", 0)]).is_err());
        assert_eq!(parse_proto("WSS"), Some(Proto::Named("wss")));
    }

    #[test]
    fn basic_regular_expressions() {
        let re = |b: &str| Regex::new(&bre_to_regex(b).unwrap()).unwrap();
        // `\+` repeats in GNU BRE; a bare `+` is itself.
        assert!(!re("^sip:\\+49").is_match("sip:+49301"));
        assert!(re("^sip:\\+49").is_match("sip::49301"));
        assert!(re("^sip:+49").is_match("sip:+49301"));
        assert!(re("^sip:.*@carrier\\.net").is_match("sip:a@carrier.net"));
        assert!(!re("^sip:.*@carrier\\.net").is_match("sip:a@carrierxnet"));
        assert!(re("a\\(b\\)\\{2\\}c").is_match("abbc"));
        assert!(re("(x)").is_match("(x)"), "bare parentheses are literal");
        assert!(re("a|b").is_match("a|b"));
        assert!(!re("a|b").is_match("a"));
        assert!(re("a\\|b").is_match("b"), "GNU alternation");
        assert!(re("*a").is_match("*a"), "a leading star is literal");
        assert!(re("^*a").is_match("*a"));
        assert!(re("x*").is_match("xxx"));
        assert!(
            re("[\\.]").is_match("\\"),
            "a backslash in brackets is itself"
        );
        assert!(re("[[:digit:]]\\{3\\}").is_match("a123"));
        assert!(re("[^a-c]").is_match("d"));
        assert!(re("[]a]").is_match("]"));
        assert!(bre_to_regex("\\(a\\)\\1").is_err());
        assert_eq!(proto_number(Proto::Named("tls")), 3);
    }
}
