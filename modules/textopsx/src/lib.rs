//! # textopsx: more text operations
//!
//! Kamailio's `textopsx` module:
//!
//! - `msg_apply_changes()`: applies the recorded edits now and parses the
//!   result, so later functions see the changed message;
//! - `remove_hf_value(sel)`: removes values of a comma-list header;
//!   `sel` is `name` (every value), `name[n]` (the n-th, from 1; negative
//!   counts from the end) or `name[*]`. (Kamailio's `.param` selectors are
//!   not supported.) A header left with no value is removed;
//! - `change_reply_status(code, reason)`: rewrites the status line of a
//!   received reply before it is relayed. As Kamailio, a 1xx/2xx reply
//!   keeps its class and another reply cannot become 1xx/2xx;
//! - `keep_hf(re)`: removes every header whose name does not match `re`,
//!   except the ones a message needs (Via, From, To, Call-ID, CSeq,
//!   Content-Length, Content-Type, Max-Forwards, Contact, Route,
//!   Record-Route);
//! - `fnmatch(s, pattern[, flags])`: shell wildcard match (`*`, `?`,
//!   `[a-z]`, `[!x]`); flag `i` ignores case.
#![forbid(unsafe_code)]

use bytes::Bytes;
use regex::{Regex, RegexBuilder};
use sr_sdk::fixup::{Arg, FixupEnv};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::edit::ApplyOptions;
use sr_sdk::sip_msg::scan::CommaSplit;
use std::sync::Arc;

/// Applies the edits and parses the result; the rest of the state (new
/// Request-URI, flags, AVPs) is kept. Changes that wait for the socket a
/// request leaves from (path's address, rr's second Record-Route) are made
/// now for the socket it came in on (`inbound`: host and port), as
/// Kamailio's `msg_apply_changes` does.
pub fn apply_changes(msg: &mut SipMsg, inbound: Option<(String, u16)>) -> Result<(), String> {
    if !msg.send_fixups.is_empty() {
        if let Some((host, port)) = &inbound {
            let info = sr_sdk::SendInfo {
                proto: msg.rcv.proto,
                host,
                port: *port,
                same_socket: true,
            };
            let fixups: Vec<_> = msg.send_fixups.iter().collect();
            for f in fixups {
                f(&mut msg.edits, &info);
            }
        }
        msg.send_fixups = Default::default();
    }
    if msg.edits.is_empty() {
        return Ok(());
    }
    let out = msg.edits.apply(msg.msg(), ApplyOptions::default());
    msg.reparse(Bytes::from(out))
        .map_err(|e| format!("the changed message does not parse: {e}"))
}

/// Which values `remove_hf_value` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// Every value.
    All,
    /// The n-th value (1-based; negative from the end).
    Index(i64),
}

/// Parses `name`, `name[n]` or `name[*]`.
pub fn parse_selector(s: &str) -> Result<(String, Which), String> {
    let s = s.trim();
    match s.find('[') {
        None => Ok((s.to_string(), Which::All)),
        Some(i) => {
            let name = s[..i].trim().to_string();
            let rest = s[i + 1..]
                .strip_suffix(']')
                .ok_or_else(|| format!("bad header selector '{s}'"))?;
            if rest.trim() == "*" {
                return Ok((name, Which::All));
            }
            let n: i64 = rest
                .trim()
                .parse()
                .map_err(|_| format!("bad index in '{s}'"))?;
            if n == 0 {
                return Err(format!("index 0 in '{s}' (values count from 1)"));
            }
            Ok((name, Which::Index(n)))
        }
    }
}

/// `remove_hf_value`: how many values were removed.
pub fn remove_hf_value(msg: &mut SipMsg, name: &str, which: &Which) -> usize {
    let m = msg.msg();
    // Every value of every header with this name: (header index, value).
    let mut values: Vec<(usize, &str)> = Vec::new();
    let headers: Vec<_> = m.headers().iter().filter(|h| h.is(name)).collect();
    for (hi, h) in headers.iter().enumerate() {
        for v in CommaSplit::new(h.value) {
            values.push((hi, v));
        }
    }
    let total = values.len() as i64;
    let remove: Vec<bool> = (0..values.len() as i64)
        .map(|i| match which {
            Which::All => true,
            Which::Index(n) if *n > 0 => i == n - 1,
            Which::Index(n) => i == total + n,
        })
        .collect();
    let removed = remove.iter().filter(|r| **r).count();
    let mut ops: Vec<(u32, u32, String)> = Vec::new();
    for (hi, h) in headers.iter().enumerate() {
        let mine: Vec<usize> = (0..values.len()).filter(|i| values[*i].0 == hi).collect();
        if !mine.iter().any(|i| remove[*i]) {
            continue;
        }
        let kept: Vec<&str> = mine
            .iter()
            .filter(|i| !remove[**i])
            .map(|i| values[*i].1)
            .collect();
        if kept.is_empty() {
            ops.push((h.start, h.end, String::new()));
        } else {
            ops.push((h.value_start, h.value_end(), kept.join(", ")));
        }
    }
    for (s, e, t) in ops {
        msg.edits.replace(s, e, t.as_bytes());
    }
    removed
}

/// `change_reply_status`: rewrites the status line of a reply.
pub fn change_reply_status(msg: &mut SipMsg, code: i64, reason: &str) -> Result<(), String> {
    let m = msg.msg();
    let Some(old) = m.status() else {
        return Err("not a reply".into());
    };
    if !(100..700).contains(&code) {
        return Err(format!("{code} is not a status code"));
    }
    let code = code as u16;
    if (old < 300 || code < 300) && old / 100 != code / 100 {
        return Err(format!("a {old} reply cannot be changed to {code}"));
    }
    let raw = m.raw();
    let skip = raw
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let line_end = raw[skip..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |i| skip + i);
    let line_end = if line_end > skip && raw[line_end - 1] == b'\r' {
        line_end - 1
    } else {
        line_end
    };
    let sp = raw[skip..line_end]
        .iter()
        .position(|&b| b == b' ')
        .map(|i| skip + i)
        .ok_or("no status code")?;
    let text = format!("{code} {reason}");
    msg.edits
        .replace((sp + 1) as u32, line_end as u32, text.as_bytes());
    Ok(())
}

/// Headers `keep_hf` never removes.
const ALWAYS_KEPT: [HeaderName; 11] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::MaxForwards,
    HeaderName::Contact,
    HeaderName::Route,
    HeaderName::RecordRoute,
];

/// `keep_hf`: how many headers were removed.
pub fn keep_hf(msg: &mut SipMsg, re: &Regex) -> usize {
    let spans: Vec<(u32, u32)> = msg
        .msg()
        .headers()
        .iter()
        .filter(|h| !ALWAYS_KEPT.contains(&h.name) && !re.is_match(h.name_str))
        .map(|h| (h.start, h.end))
        .collect();
    for (s, e) in &spans {
        msg.edits.delete(*s, *e);
    }
    spans.len()
}

/// Shell wildcard matching (`fnmatch(3)` without flags, or with
/// case folding).
pub fn fnmatch(s: &str, pattern: &str, icase: bool) -> bool {
    let fold = |c: char| if icase { c.to_ascii_lowercase() } else { c };
    let s: Vec<char> = s.chars().map(fold).collect();
    let p: Vec<char> = pattern.chars().map(fold).collect();
    glob(&s, &p)
}

fn glob(s: &[char], p: &[char]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                '?' => {
                    si += 1;
                    pi += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class(&p[pi..], s[si]) {
                        if ok {
                            si += 1;
                            pi += next;
                            continue;
                        }
                    } else if s[si] == '[' {
                        si += 1;
                        pi += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == s[si] {
                        si += 1;
                        pi += 2;
                        continue;
                    }
                }
                c => {
                    if c == s[si] {
                        si += 1;
                        pi += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A bracket expression at the start of `p`: whether `c` matches and the
/// pattern length used; `None` when the bracket is not closed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let neg = matches!(p.get(i), Some('!') | Some('^'));
    if neg {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != neg, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

fn re_fixup(_env: &dyn FixupEnv, _i: usize, a: &Arg) -> Result<Fixed, String> {
    let text = match a {
        Arg::Str(s) => s.clone(),
        Arg::Int(i) => i.to_string(),
        Arg::Expr(_, t) => return Err(format!("'{t}' must be a constant regular expression")),
    };
    RegexBuilder::new(&text)
        .case_insensitive(true)
        .build()
        .map(|r| Fixed::Custom(Arc::new(r)))
        .map_err(|e| format!("bad regular expression '{text}': {e}"))
}

fn selector_fixup(_env: &dyn FixupEnv, _i: usize, a: &Arg) -> Result<Fixed, String> {
    let sel = parse_selector(&a.text())?;
    Ok(Fixed::Custom(Arc::new(sel)))
}

fn rc(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let rt = RouteType::REQUEST | RouteType::ONREPLY | RouteType::FAILURE | RouteType::BRANCH;
    ModuleDef::new("textopsx")
        .cmd(
            "change_reply_status_code",
            1,
            RouteType::ONREPLY,
            None,
            |ctx, p| {
                let code = p[0].int(ctx);
                change_status(ctx, code)
            },
        )
        .cmd("remove_body", 0, RouteType::ANY, None, |ctx, _| {
            // The body goes; Content-Type stays and Content-Length follows
            // when the message is sent (Kamailio deletes the body alone).
            if !ctx.msg.msg().body().is_empty() || ctx.msg.edits.body().is_some() {
                ctx.msg.edits.set_body(b"", None);
            }
            1
        })
        .cmd(
            "msg_apply_changes",
            0,
            rt,
            None,
            |ctx, _| match apply_changes(ctx.msg, ctx.core.received_on(&ctx.msg.rcv)) {
                Ok(()) => 1,
                Err(e) => {
                    lm_err!("msg_apply_changes: {e}");
                    -1
                }
            },
        )
        .cmd(
            "remove_hf_value",
            1,
            rt,
            Some(fixup::f(selector_fixup)),
            |ctx, p| {
                let (name, which) = p[0].custom::<(String, Which)>().expect("selector");
                match remove_hf_value(ctx.msg, name, which) {
                    0 => -1,
                    n => n as i32,
                }
            },
        )
        .cmd(
            "change_reply_status",
            2,
            RouteType::ONREPLY,
            None,
            |ctx, p| {
                let code = p[0].int(ctx);
                let reason = p[1].str(ctx).into_owned();
                match change_reply_status(ctx.msg, code, &reason) {
                    Ok(()) => 1,
                    Err(e) => {
                        lm_err!("change_reply_status: {e}");
                        -1
                    }
                }
            },
        )
        .cmd("keep_hf", 1, rt, Some(fixup::f(re_fixup)), |ctx, p| {
            let re = p[0].custom::<Regex>().expect("regex");
            keep_hf(ctx.msg, re);
            1
        })
        .cmd("fnmatch", 2, RouteType::ANY, None, |ctx, p| {
            let s = p[0].str(ctx).into_owned();
            rc(fnmatch(&s, &p[1].str(ctx), false))
        })
        .cmd("fnmatch", 3, RouteType::ANY, None, |ctx, p| {
            let s = p[0].str(ctx).into_owned();
            let pat = p[1].str(ctx).into_owned();
            let icase = p[2].str(ctx).contains('i');
            rc(fnmatch(&s, &pat, icase))
        })
}

/// `change_reply_status_code(code)`: the reply's status code replaced
/// (its reason phrase kept); a provisional or 2xx reply keeps its class.
fn change_status(ctx: &mut Ctx<'_>, code: i64) -> i32 {
    let Some(old) = ctx.msg.msg().status() else {
        lm_err!("change_reply_status_code: only a reply can be changed");
        return -1;
    };
    if !(100..=699).contains(&code) {
        lm_err!("change_reply_status_code: wrong status code: {code}");
        return -1;
    }
    let old = i64::from(old);
    if (code < 300 || old < 300) && code / 100 != old / 100 {
        lm_err!(
            "change_reply_status_code: the class of provisional or positive final replies cannot be changed"
        );
        return -1;
    }
    // The digits after "SIP/2.0 " in the status line.
    let raw = ctx.msg.msg().raw();
    let Some(sp) = raw.iter().position(|&b| b == b' ') else {
        return -1;
    };
    let start = u32::try_from(sp + 1).unwrap_or(u32::MAX);
    let digits = code.to_string();
    let code = u16::try_from(code).unwrap_or(0);
    let edit = match ctx.msg.ext.get::<sr_sdk::NewStatus>() {
        Some(prev) => {
            ctx.msg.edits.set_text(prev.edit, digits.as_bytes());
            prev.edit
        }
        None => {
            ctx.msg.edits.replace(start, start + 3, digits.as_bytes());
            ctx.msg.edits.ops().count() - 1
        }
    };
    ctx.msg.ext.insert(sr_sdk::NewStatus { code, edit });
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use sr_sdk::RecvInfo;

    fn msg(text: &str) -> SipMsg {
        SipMsg::parse(Bytes::from(text.to_string()), RecvInfo::loopback(), 1).unwrap()
    }

    const REQ: &str = "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nSupported: a, b\r\nSupported: c\r\nX-Foo: 1\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn globs() {
        assert!(fnmatch("alice", "a*", false));
        assert!(fnmatch("alice", "?lic[a-z]", false));
        assert!(!fnmatch("alice", "[!a]*", false));
        assert!(fnmatch("ALICE", "a*e", true));
        assert!(!fnmatch("ALICE", "a*e", false));
        assert!(fnmatch("", "*", false));
        assert!(fnmatch("a*b", "a\\*b", false));
    }

    #[test]
    fn removes_values_and_applies() {
        let mut m = msg(REQ);
        assert_eq!(remove_hf_value(&mut m, "Supported", &Which::Index(2)), 1);
        apply_changes(&mut m, None).unwrap();
        let vals: Vec<_> = m.msg().values(HeaderName::Supported).collect();
        assert_eq!(vals, ["a", "c"]);
        assert_eq!(remove_hf_value(&mut m, "Supported", &Which::Index(-1)), 1);
        apply_changes(&mut m, None).unwrap();
        assert_eq!(m.msg().headers_by_name("Supported").count(), 1);
        assert_eq!(remove_hf_value(&mut m, "Supported", &Which::All), 1);
        apply_changes(&mut m, None).unwrap();
        assert_eq!(m.msg().headers_by_name("Supported").count(), 0);
        assert_eq!(
            parse_selector("Supported[*]").unwrap(),
            ("Supported".into(), Which::All)
        );
    }

    #[test]
    fn keeps_only_matching_headers() {
        let mut m = msg(REQ);
        assert_eq!(keep_hf(&mut m, &Regex::new("(?i)^x-").unwrap()), 2);
        apply_changes(&mut m, None).unwrap();
        assert!(m.msg().headers_by_name("X-Foo").next().is_some());
        assert!(m.msg().headers_by_name("Supported").next().is_none());
        assert!(m.msg().header(HeaderName::CSeq).is_some());
    }

    #[test]
    fn reply_status_changes_within_rules() {
        let r = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let mut m = msg(r);
        assert!(change_reply_status(&mut m, 200, "OK").is_err());
        change_reply_status(&mut m, 603, "Declined Here").unwrap();
        apply_changes(&mut m, None).unwrap();
        assert_eq!(m.msg().status(), Some(603));
        assert_eq!(m.msg().reason(), Some("Declined Here"));
    }
}
