//! # textopsx: more text operations
//!
//! Kamailio's `textopsx` module:
//!
//! - `msg_apply_changes()`: applies the recorded edits now and parses the
//!   result, so later functions see the changed message;
//! - the header-value functions (`append_hf_value`, `insert_hf_value`,
//!   `remove_hf_value`, `remove_hf_value2`, `assign_hf_value`,
//!   `assign_hf_value2`, `include_hf_value`, `exclude_hf_value`,
//!   `hf_value_exists`; see [`hf_value`]) and the header and body-line
//!   iterators (`hf_iterator_*`, `bl_iterator_*`, `$hfitname`,
//!   `$hfitbody`, `$blitval`; see [`iter`]);
//! - `msg_set_buffer(data)`: the message replaced by `data` (parsed
//!   again, earlier edits dropped);
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
pub mod hf_value;
pub mod iter;

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
    let sel = hf_value::parse_sel(&a.text())?;
    Ok(Fixed::Custom(Arc::new(sel)))
}

/// `assign_hf_value`'s selector: `[*]` needs a parameter (as Kamailio).
fn assign_fixup(env: &dyn FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    if i == 1 {
        return fixup::spve(env, i, a);
    }
    let sel = hf_value::parse_sel(&a.text())?;
    if sel.idx == hf_value::Idx::All && sel.param.is_none() {
        return Err(format!(
            "'{}': an asterisk needs a parameter (NAME[*].PARAM)",
            a.text()
        ));
    }
    Ok(Fixed::Custom(Arc::new(sel)))
}

/// A selector, then a value with pseudo-variables.
fn sel_value_fixup(env: &dyn FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    if i == 0 {
        selector_fixup(env, i, a)
    } else {
        fixup::spve(env, i, a)
    }
}

fn sel(p: &Fixed) -> &hf_value::Sel {
    p.custom::<hf_value::Sel>()
        .unwrap_or_else(|| unreachable!("the fixup made a selector"))
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
        .pipe(export_hf_values)
        .pipe(export_iterators)
        .cmd(
            "msg_set_buffer",
            1,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            |ctx, p| {
                let data = p[0].str(ctx).into_owned();
                match ctx.msg.reparse(Bytes::from(data.into_bytes())) {
                    Ok(()) => {
                        ctx.msg.edits.clear();
                        1
                    }
                    Err(e) => {
                        lm_err!("msg_set_buffer: the new message does not parse: {e}");
                        -1
                    }
                }
            },
        )
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

/// The header-value functions.
fn export_hf_values(def: ModuleDef) -> ModuleDef {
    let rt = RouteType::ANY;
    let sf = Some(fixup::f(selector_fixup));
    let svf = Some(fixup::f(sel_value_fixup));
    let nvf = Some(fixup::f(fixup::spve));
    def.cmd("remove_hf_value", 1, rt, sf.clone(), |ctx, p| {
        hf_value::remove(ctx.msg, sel(&p[0]))
    })
    .cmd("remove_hf_value2", 1, rt, sf, |ctx, p| {
        hf_value::remove2(ctx.msg, sel(&p[0]))
    })
    .cmd(
        "assign_hf_value",
        2,
        rt,
        Some(fixup::f(assign_fixup)),
        |ctx, p| {
            let v = p[1].str(ctx).into_owned();
            hf_value::assign(ctx.msg, sel(&p[0]), &v)
        },
    )
    .cmd("assign_hf_value2", 2, rt, svf.clone(), |ctx, p| {
        let v = p[1].str(ctx).into_owned();
        hf_value::assign2(ctx.msg, sel(&p[0]), &v)
    })
    .cmd("append_hf_value", 2, rt, svf.clone(), |ctx, p| {
        let v = p[1].str(ctx).into_owned();
        hf_value::append(ctx.msg, sel(&p[0]), &v)
    })
    .cmd("insert_hf_value", 2, rt, svf, |ctx, p| {
        let v = p[1].str(ctx).into_owned();
        hf_value::insert(ctx.msg, sel(&p[0]), &v)
    })
    .cmd("include_hf_value", 2, rt, nvf.clone(), |ctx, p| {
        let (n, v) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        hf_value::include(ctx.msg, &n, &v)
    })
    .cmd("exclude_hf_value", 2, rt, nvf.clone(), |ctx, p| {
        let (n, v) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        hf_value::exclude(ctx.msg, &n, &v)
    })
    .cmd("hf_value_exists", 2, rt, nvf, |ctx, p| {
        // (Kamailio reads underscores in the name as dashes.)
        let n = p[0].str(ctx).replace('_', "-");
        let v = p[1].str(ctx).into_owned();
        rc(hf_value::exists(ctx.msg, &n, &v))
    })
}

/// The header and body-line iterators and their variables.
fn export_iterators(def: ModuleDef) -> ModuleDef {
    let rt = RouteType::ANY;
    let one = Some(fixup::f(fixup::spve));
    let two = Some(fixup::f(fixup::spve));
    let name = |ctx: &mut Ctx<'_>, p: &[Fixed]| p[0].str(ctx).into_owned();
    def.cmd("hf_iterator_start", 1, rt, one.clone(), move |ctx, p| {
        let n = name(ctx, p);
        iter::hf_start(ctx.msg, &n)
    })
    .cmd("hf_iterator_end", 1, rt, one.clone(), move |ctx, p| {
        let n = name(ctx, p);
        iter::hf_end(ctx.msg, &n)
    })
    .cmd("hf_iterator_next", 1, rt, one.clone(), move |ctx, p| {
        let n = name(ctx, p);
        iter::hf_step(ctx.msg, &n, 1)
    })
    .cmd("hf_iterator_prev", 1, rt, one.clone(), move |ctx, p| {
        let n = name(ctx, p);
        iter::hf_step(ctx.msg, &n, -1)
    })
    .cmd("hf_iterator_rm", 1, rt, one.clone(), move |ctx, p| {
        let n = name(ctx, p);
        iter::hf_edit(ctx.msg, &n, None, false)
    })
    .cmd("hf_iterator_append", 2, rt, two.clone(), move |ctx, p| {
        let (n, t) = (name(ctx, p), p[1].str(ctx).into_owned());
        iter::hf_edit(ctx.msg, &n, Some(&t), true)
    })
    .cmd("hf_iterator_insert", 2, rt, two.clone(), move |ctx, p| {
        let (n, t) = (name(ctx, p), p[1].str(ctx).into_owned());
        iter::hf_edit(ctx.msg, &n, Some(&t), false)
    })
    .cmd("bl_iterator_start", 1, rt, one.clone(), move |ctx, p| {
        let n = name(ctx, p);
        iter::bl_start(ctx.msg, &n)
    })
    .cmd("bl_iterator_end", 1, rt, one.clone(), move |ctx, p| {
        let n = name(ctx, p);
        iter::bl_end(ctx.msg, &n)
    })
    .cmd("bl_iterator_next", 1, rt, one.clone(), move |ctx, p| {
        let n = name(ctx, p);
        iter::bl_next(ctx.msg, &n)
    })
    .cmd("bl_iterator_rm", 1, rt, one, move |ctx, p| {
        let n = name(ctx, p);
        iter::bl_edit(ctx.msg, &n, None, false)
    })
    .cmd("bl_iterator_append", 2, rt, two.clone(), move |ctx, p| {
        let (n, t) = (name(ctx, p), p[1].str(ctx).into_owned());
        iter::bl_edit(ctx.msg, &n, Some(&t), true)
    })
    .cmd("bl_iterator_insert", 2, rt, two, move |ctx, p| {
        let (n, t) = (name(ctx, p), p[1].str(ctx).into_owned());
        iter::bl_edit(ctx.msg, &n, Some(&t), false)
    })
    .pv("hfitname", |ctx, n| {
        iter::hf_value(ctx.msg, n.inner.as_deref().unwrap_or(""), false)
    })
    .pv("hfitbody", |ctx, n| {
        iter::hf_value(ctx.msg, n.inner.as_deref().unwrap_or(""), true)
    })
    .pv("blitval", |ctx, n| {
        iter::bl_value(ctx.msg, n.inner.as_deref().unwrap_or(""))
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
        let sel = |s: &str| hf_value::parse_sel(s).unwrap();
        assert_eq!(hf_value::remove(&mut m, &sel("Supported[2]")), 1);
        apply_changes(&mut m, None).unwrap();
        let vals: Vec<_> = m.msg().values(HeaderName::Supported).collect();
        assert_eq!(vals, ["a", "c"]);
        assert_eq!(hf_value::remove(&mut m, &sel("Supported[-1]")), 1);
        apply_changes(&mut m, None).unwrap();
        assert_eq!(m.msg().headers_by_name("Supported").count(), 1);
        assert_eq!(hf_value::remove(&mut m, &sel("Supported[*]")), 1);
        apply_changes(&mut m, None).unwrap();
        assert_eq!(m.msg().headers_by_name("Supported").count(), 0);
        assert_eq!(hf_value::remove(&mut m, &sel("Supported")), -1);
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
