//! One accounting record: Kamailio's core fields (method, From and To
//! tags, Call-ID, status code and reason, time) taken from a request and
//! the reply it got, and its two renderings: a log line and a table row.

use sr_sdk::db::DbValue;
use sr_sdk::prelude::*;

/// The core fields of a record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The CSeq method.
    pub method: String,
    /// From tag (To tag for an upstream request with `detect_direction`).
    pub from_tag: String,
    /// To tag, from the reply when there is one.
    pub to_tag: String,
    /// Call-ID.
    pub callid: String,
    /// Status code as text (empty for `acc_log_request` without a code).
    pub code: String,
    /// Reason phrase (or the comment of `acc_log_request`).
    pub reason: String,
    /// Unix seconds when the record was made.
    pub time: i64,
}

/// The To tag of reply bytes.
pub fn reply_to_tag(reply: &[u8]) -> Option<String> {
    let m = Message::parse(reply).ok()?;
    let t = m.to_tag().ok()??.to_string();
    Some(t)
}

/// Whether a sequential request goes upstream (callee to caller): the
/// `ftag` of its first Route entry is not its From tag (rr's
/// `is_direction("upstream")`).
pub fn is_upstream(m: &Message<'_>) -> bool {
    let Some(Ok(first)) = m.routes().next() else {
        return false;
    };
    let Some(Some(ftag)) = first.uri.param("ftag") else {
        return false;
    };
    let from = m.from_tag().ok().flatten().unwrap_or("");
    ftag != from
}

impl Record {
    /// The record of `req` with the given outcome; `to_tag` replaces
    /// the request's To tag when given. `swap` exchanges the tags
    /// (`detect_direction` on an upstream request).
    pub fn new(
        req: &SipMsg,
        to_tag: Option<String>,
        code: String,
        reason: String,
        swap: bool,
    ) -> Record {
        let m = req.msg();
        let method = m
            .cseq()
            .map(|c| c.method.as_str().to_string())
            .unwrap_or_default();
        let from_tag = m
            .from_tag()
            .ok()
            .flatten()
            .map(str::to_string)
            .unwrap_or_default();
        let to_tag = to_tag
            .or_else(|| m.to_tag().ok().flatten().map(str::to_string))
            .unwrap_or_default();
        let (from_tag, to_tag) = if swap {
            (to_tag, from_tag)
        } else {
            (from_tag, to_tag)
        };
        Record {
            method,
            from_tag,
            to_tag,
            callid: m.call_id().unwrap_or("").to_string(),
            code,
            reason,
            time: sr_sdk::db::now(),
        }
    }

    /// The log line: `<text>timestamp=T;method=M;from_tag=F;to_tag=T;
    /// call_id=C;code=N;reason=R` then `;name=value` per extra (empty
    /// value when the PV has none), as Kamailio's acc writes it.
    pub fn log_line(&self, text: &str, extras: &[(String, Option<String>)]) -> String {
        let mut s = format!(
            "{text}timestamp={};method={};from_tag={};to_tag={};call_id={};code={};reason={}",
            self.time, self.method, self.from_tag, self.to_tag, self.callid, self.code, self.reason
        );
        for (name, v) in extras {
            s.push(';');
            s.push_str(name);
            s.push('=');
            s.push_str(v.as_deref().unwrap_or(""));
        }
        s
    }

    /// The row for the `acc`/`missed_calls` tables: the seven core
    /// columns (named by `columns`, in [`crate::params::COLUMN_PARAMS`]
    /// order) and the extras (empty text when the PV has none).
    pub fn row<'a>(
        &self,
        columns: &'a [String],
        extras: &'a [(String, Option<String>)],
    ) -> Vec<(&'a str, DbValue)> {
        let core = [
            DbValue::str(&self.method),
            DbValue::str(&self.from_tag),
            DbValue::str(&self.to_tag),
            DbValue::str(&self.callid),
            DbValue::str(&self.code),
            DbValue::str(&self.reason),
            DbValue::DateTime(self.time),
        ];
        let mut row: Vec<(&str, DbValue)> = columns.iter().map(String::as_str).zip(core).collect();
        for (name, v) in extras {
            row.push((name.as_str(), DbValue::str(v.clone().unwrap_or_default())));
        }
        row
    }
}

/// Splits an `acc_*_request` comment: a leading three-digit code becomes
/// the code, the rest (blanks skipped) the reason; otherwise the whole
/// comment is the reason and the code is empty.
pub fn split_comment(c: &str) -> (String, String) {
    let b = c.as_bytes();
    if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
        let rest = c.get(3..).unwrap_or("").trim_start();
        return (c[..3].to_string(), rest.to_string());
    }
    (String::new(), c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(extra: &str) -> SipMsg {
        let raw = format!(
            "BYE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n{extra}From: <sip:a@h>;tag=ft\r\nTo: <sip:b@h>;tag=tt\r\nCall-ID: cid\r\nCSeq: 2 BYE\r\n\r\n"
        );
        let mut m = SipMsg::faked();
        m.reparse(raw.into_bytes().into()).unwrap();
        m
    }

    #[test]
    fn fields_line_and_row() {
        let m = msg("");
        let mut r = Record::new(&m, None, "200".into(), "OK".into(), false);
        r.time = 7;
        assert_eq!(
            r.log_line("ACC: x: ", &[("u".into(), Some("alice".into())), ("n".into(), None)]),
            "ACC: x: timestamp=7;method=BYE;from_tag=ft;to_tag=tt;call_id=cid;code=200;reason=OK;u=alice;n="
        );
        let cols: Vec<String> = crate::params::COLUMN_PARAMS
            .iter()
            .map(|c| c.1.to_string())
            .collect();
        let ex = vec![("src".to_string(), None)];
        let row = r.row(&cols, &ex);
        assert_eq!(row.len(), 8);
        assert_eq!(row[6], ("time", DbValue::DateTime(7)));
        assert_eq!(row[7], ("src", DbValue::str("")));
        let s = Record::new(&m, Some("x".into()), "486".into(), "Busy".into(), true);
        assert_eq!((s.from_tag.as_str(), s.to_tag.as_str()), ("x", "ft"));
    }

    #[test]
    fn direction_and_comments() {
        let up = msg("Route: <sip:p;lr;ftag=other>\r\n");
        assert!(is_upstream(up.msg()));
        let down = msg("Route: <sip:p;lr;ftag=ft>\r\n");
        assert!(!is_upstream(down.msg()));
        assert!(!is_upstream(msg("").msg()));
        assert_eq!(
            split_comment("404 Not here"),
            ("404".into(), "Not here".into())
        );
        assert_eq!(split_comment("hello"), (String::new(), "hello".into()));
        assert_eq!(split_comment("12"), (String::new(), "12".into()));
        assert_eq!(reply_to_tag(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=rt\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"), Some("rt".into()));
        assert_eq!(reply_to_tag(b"junk"), None);
    }
}
