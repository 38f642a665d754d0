//! The `trusted` table: peers trusted by source address (as text),
//! transport, and patterns on the From URI and the Request-URI, each with
//! a tag and a priority, matched as Kamailio's `allow_trusted`.

use crate::bre::bre_to_regex;
use regex::Regex;

/// A transport, as a row names it or a call asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `any`: every transport.
    Any,
    /// `udp`.
    Udp,
    /// `tcp`.
    Tcp,
    /// `tls`.
    Tls,
    /// `sctp`.
    Sctp,
    /// `ws`.
    Ws,
    /// `wss`.
    Wss,
    /// `none` (a row read per call; it matches only a call asking `any`).
    None,
}

/// Parses what a call may ask for (`any`, `udp`, `tcp`, `tls`, `sctp`,
/// `ws`, `wss`, any case); `None` for anything else.
pub fn parse_proto(s: &str) -> Option<Proto> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "any" => Proto::Any,
        "udp" => Proto::Udp,
        "tcp" => Proto::Tcp,
        "tls" => Proto::Tls,
        "sctp" => Proto::Sctp,
        "ws" => Proto::Ws,
        "wss" => Proto::Wss,
        _ => return None,
    })
}

/// The transport a message came over; `None` for one the table cannot
/// name (nothing is trusted then).
pub fn of_transport(p: sr_sdk::Proto) -> Option<Proto> {
    match p {
        sr_sdk::Proto::Udp => Some(Proto::Udp),
        sr_sdk::Proto::Tcp => Some(Proto::Tcp),
        sr_sdk::Proto::Tls => Some(Proto::Tls),
        sr_sdk::Proto::Ws => Some(Proto::Ws),
        sr_sdk::Proto::Wss => Some(Proto::Wss),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Kamailio's number for a protocol (`permissions.trustedDump`; `any` and
/// `none` are both 0 there).
pub fn proto_number(p: Proto) -> i64 {
    match p {
        Proto::Any | Proto::None => 0,
        Proto::Udp => 1,
        Proto::Tcp => 2,
        Proto::Tls => 3,
        Proto::Sctp => 4,
        Proto::Ws => 5,
        Proto::Wss => 6,
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

/// A pattern as stored, and compiled: one that cannot be (a
/// back-reference, a bad expression) is logged and matches nothing, as
/// Kamailio skips a row whose pattern does not compile.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The text as stored.
    pub text: String,
    re: Option<Regex>,
}

impl Pattern {
    /// Compiles a stored pattern (a POSIX basic expression).
    pub fn new(text: &str) -> Pattern {
        let re = bre_to_regex(text).and_then(|r| Regex::new(&r).map_err(|e| e.to_string()));
        if let Err(e) = &re {
            sr_sdk::lm_err!(
                "permissions: pattern '{text}' cannot be used ({e}): its row never matches"
            );
        }
        Pattern {
            text: text.to_string(),
            re: re.ok(),
        }
    }

    /// Whether it matches (somewhere in) `s`.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.as_ref().is_some_and(|r| r.is_match(s))
    }
}

/// One row, ready to match.
#[derive(Debug, Clone)]
pub struct Row {
    /// `src_ip`, compared as text.
    pub src_ip: String,
    /// Transport.
    pub proto: Proto,
    /// `from_pattern` (none: any).
    pub from: Option<Pattern>,
    /// `ruri_pattern` (none: any).
    pub ruri: Option<Pattern>,
    /// `tag`.
    pub tag: Option<String>,
    /// `priority`.
    pub priority: i64,
}

impl Row {
    /// Prepares a row; an error for an unknown protocol. A `none` row is
    /// left out of the cache (`Ok(None)`, as Kamailio's cache does); read
    /// per call it stays, matching only a call that asks for `any`.
    pub fn new(r: &RawRow, cached: bool) -> Result<Option<Row>, String> {
        let proto = if r.proto.trim().eq_ignore_ascii_case("none") {
            if cached {
                return Ok(None);
            }
            Proto::None
        } else {
            parse_proto(&r.proto)
                .ok_or_else(|| format!("unknown protocol '{}' for {}", r.proto, r.src_ip))?
        };
        Ok(Some(Row {
            src_ip: r.src_ip.clone(),
            proto,
            from: r.from_pattern.as_deref().map(Pattern::new),
            ruri: r.ruri_pattern.as_deref().map(Pattern::new),
            tag: r.tag.clone(),
            priority: r.priority,
        }))
    }

    /// Whether the row matches a message from `ip` over `proto` with this
    /// From URI and Request-URI (`None` for a message that is not SIP:
    /// the patterns are not checked).
    pub fn matches(&self, ip: &str, proto: Proto, from: Option<&str>, ruri: Option<&str>) -> bool {
        let proto_ok = self.proto == Proto::Any || proto == Proto::Any || self.proto == proto;
        let re_ok = |p: &Option<Pattern>, text: Option<&str>| match (p, text) {
            (Some(p), Some(t)) => p.is_match(t),
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
        let udp = Proto::Udp;
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
        assert!(!m(&rows[1], "10.0.0.1", Proto::Tcp, None, None));
        assert!(m(&rows[1], "10.0.0.1", Proto::Any, None, None), "any asked");
        assert!(
            !m(&rows[1], "10.0.0.10", udp, None, None),
            "text, not prefix"
        );
        assert!(m(
            &rows[2],
            "10.0.0.2",
            Proto::Tcp,
            None,
            Some("sip:+4930@x")
        ));
        assert!(!m(
            &rows[2],
            "10.0.0.2",
            Proto::Tcp,
            None,
            Some("sip:+3330@x")
        ));
        assert!(prepare(&[raw("1.2.3.4", "carrier-pigeon", None, None, "", 0)]).is_err());
        // A pattern that cannot be used: its row never matches, the rest load.
        let bad = prepare(&[raw("1.2.3.4", "udp", Some("\\(a\\)\\1"), None, "", 0)]).unwrap();
        assert!(!bad[0].matches("1.2.3.4", udp, Some("aa"), None));
        assert_eq!(
            bad[0].from.as_ref().unwrap().text,
            "\\(a\\)\\1",
            "kept as stored"
        );
        assert_eq!(parse_proto("WSS"), Some(Proto::Wss));
        assert_eq!(parse_proto("none"), None);
        assert_eq!(proto_number(Proto::Tls), 3);
    }
}
