//! # textops: text operations on the message
//!
//! Kamailio's `textops` module. Changes are recorded as edits against the
//! received message and applied when it is sent (use textopsx's
//! `msg_apply_changes()` to apply them at once); searches look at the
//! message as received, as Kamailio's do.
//!
//! - methods and headers: `is_method(list)` (`INVITE|BYE` or
//!   `INVITE,BYE`; on replies the CSeq method), `append_hf(txt[, hdr])`,
//!   `insert_hf(txt[, hdr])`, `remove_hf(name)` (returns how many were
//!   removed, -1 for none), `remove_hf_re(re)`, `is_present_hf(name)`,
//!   `is_present_hf_re(re)`;
//! - search and replace: `search(re)`, `search_body(re)`,
//!   `search_append(re, txt)`, `search_append_body(re, txt)`,
//!   `replace(re, txt)`, `replace_all(re, txt)`, `replace_body(re, txt)`,
//!   `replace_body_all(re, txt)`, `subst('/re/repl/flags')`,
//!   `subst_uri(...)`, `subst_user(...)`, `subst_body(...)`;
//! - body and replies: `has_body([mime])`, `set_body(txt, ctype)`,
//!   `append_to_reply(txt)` (headers for the next local reply);
//! - strings: `starts_with(s, prefix)`, `ends_with(s, suffix)`,
//!   `cmp_str(a, b)`, `cmp_istr(a, b)`, `in_list(s, list, sep)`.
//!
//! Regular expressions are matched case-insensitively with `^`/`$` at
//! line ends (Kamailio's `REG_ICASE|REG_NEWLINE`). Text arguments may hold
//! pseudo-variables; a header text missing its final CRLF gets one.
//! Changes to the body fix Content-Length.
//!
//! Not here: `set_reply_body` (local replies carry no script-set body
//! yet), the multipart helpers, `subst_hf`, `filter_body`.
#![forbid(unsafe_code)]

use regex::bytes::{Captures, Regex, RegexBuilder};
use sr_sdk::fixup::{Arg, FixupEnv};
use sr_sdk::prelude::*;
use std::sync::Arc;

mod more;
mod multipart;

/// A compiled sed-like substitution `/re/repl/flags`.
#[derive(Debug)]
pub struct Subst {
    re: Regex,
    repl: Vec<ReplPart>,
    global: bool,
}

#[derive(Debug)]
enum ReplPart {
    /// Text, possibly with pseudo-variables.
    Text(Fixed),
    /// `\0`..`\9`
    Group(usize),
    /// `\u`: the Request-URI.
    Uri,
}

/// Splits `/re/repl/flags` (any delimiter) into its three parts, with
/// escaped delimiters unescaped in the first two.
pub fn split_subst(expr: &str) -> Result<(String, String, String), String> {
    let mut chars = expr.chars();
    let delim = chars
        .next()
        .ok_or_else(|| "empty substitution expression".to_string())?;
    let mut parts = vec![String::new()];
    let mut esc = false;
    for c in chars {
        if esc {
            if c != delim {
                parts.last_mut().unwrap().push('\\');
            }
            parts.last_mut().unwrap().push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == delim && parts.len() < 3 {
            parts.push(String::new());
        } else {
            parts.last_mut().unwrap().push(c);
        }
    }
    if esc {
        parts.last_mut().unwrap().push('\\');
    }
    if parts.len() != 3 {
        return Err(format!("'{expr}' is not a /re/repl/flags expression"));
    }
    let flags = parts.pop().unwrap();
    let repl = parts.pop().unwrap();
    let re = parts.pop().unwrap();
    Ok((re, repl, flags))
}

impl Subst {
    /// Compiles a substitution; `multiline` makes `^`/`$` match at line
    /// ends (whole-message substitutions) unless the `s` flag is given.
    pub fn compile(
        env: Option<&dyn FixupEnv>,
        expr: &str,
        multiline: bool,
    ) -> Result<Subst, String> {
        let (re, repl, flags) = split_subst(expr)?;
        let mut icase = false;
        let mut global = false;
        let mut dotall = false;
        for f in flags.chars() {
            match f {
                'i' => icase = true,
                'g' => global = true,
                's' => dotall = true,
                other => return Err(format!("unknown substitution flag '{other}' in '{expr}'")),
            }
        }
        let re = RegexBuilder::new(&re)
            .case_insensitive(icase)
            .multi_line(multiline && !dotall)
            .dot_matches_new_line(dotall)
            .build()
            .map_err(|e| format!("bad regular expression in '{expr}': {e}"))?;
        Ok(Subst {
            re,
            repl: parse_repl(env, &repl)?,
            global,
        })
    }

    /// Applies to `input`: the new text and the number of replacements.
    pub fn apply(&self, ctx: &mut Ctx<'_>, input: &[u8]) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(input.len() + 16);
        let mut last = 0;
        let mut n = 0;
        for caps in self.re.captures_iter(input) {
            let m = caps.get(0).expect("group 0");
            out.extend_from_slice(&input[last..m.start()]);
            self.expand(ctx, &caps, &mut out);
            last = m.end();
            n += 1;
            if !self.global {
                break;
            }
        }
        out.extend_from_slice(&input[last..]);
        (out, n)
    }

    /// The replacements as ranges of `input` (for recording edits).
    fn ranges(&self, ctx: &mut Ctx<'_>, input: &[u8]) -> Vec<(usize, usize, Vec<u8>)> {
        let mut v = Vec::new();
        for caps in self.re.captures_iter(input) {
            let m = caps.get(0).expect("group 0");
            let mut t = Vec::new();
            self.expand(ctx, &caps, &mut t);
            v.push((m.start(), m.end(), t));
            if !self.global {
                break;
            }
        }
        v
    }

    fn expand(&self, ctx: &mut Ctx<'_>, caps: &Captures<'_>, out: &mut Vec<u8>) {
        for p in &self.repl {
            match p {
                ReplPart::Text(f) => out.extend_from_slice(f.str(ctx).as_bytes()),
                ReplPart::Group(i) => {
                    if let Some(g) = caps.get(*i) {
                        out.extend_from_slice(g.as_bytes());
                    }
                }
                ReplPart::Uri => out.extend_from_slice(ctx.msg.ruri().as_bytes()),
            }
        }
    }
}

fn parse_repl(env: Option<&dyn FixupEnv>, repl: &str) -> Result<Vec<ReplPart>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let flush = |text: &mut String, parts: &mut Vec<ReplPart>| -> Result<(), String> {
        if text.is_empty() {
            return Ok(());
        }
        let t = std::mem::take(text);
        let f = match env {
            Some(env) if t.contains('$') => Fixed::Dyn(env.compile_format(&t)?),
            _ => Fixed::Str(t),
        };
        parts.push(ReplPart::Text(f));
        Ok(())
    };
    let mut it = repl.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match it.next() {
            Some(d @ '0'..='9') => {
                flush(&mut text, &mut parts)?;
                parts.push(ReplPart::Group(d as usize - '0' as usize));
            }
            Some('u') => {
                flush(&mut text, &mut parts)?;
                parts.push(ReplPart::Uri);
            }
            Some('n') => text.push('\n'),
            Some('r') => text.push('\r'),
            Some('t') => text.push('\t'),
            Some(o) => text.push(o),
            None => text.push('\\'),
        }
    }
    flush(&mut text, &mut parts)?;
    Ok(parts)
}

/// Compiles a message regex: case-insensitive, `^`/`$` at line ends.
fn msg_regex(s: &str) -> Result<Regex, String> {
    RegexBuilder::new(s)
        .case_insensitive(true)
        .multi_line(true)
        .build()
        .map_err(|e| format!("bad regular expression '{s}': {e}"))
}

fn re_fixup(_env: &dyn FixupEnv, _i: usize, a: &Arg) -> Result<Fixed, String> {
    match a {
        Arg::Str(s) => Ok(Fixed::Custom(Arc::new(msg_regex(s)?))),
        Arg::Int(i) => Ok(Fixed::Custom(Arc::new(msg_regex(&i.to_string())?))),
        Arg::Expr(_, t) => Err(format!("'{t}' must be a constant regular expression")),
    }
}

/// First parameter a message regex, the rest text with PVs.
fn re_txt_fixup(env: &dyn FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    if i == 0 {
        re_fixup(env, i, a)
    } else {
        fixup::spve(env, i, a)
    }
}

fn subst_fixup(multiline: bool) -> fixup::FixupFn {
    Arc::new(move |env: &dyn FixupEnv, _i: usize, a: &Arg| {
        let text = match a {
            Arg::Str(s) => s.clone(),
            Arg::Int(i) => i.to_string(),
            Arg::Expr(_, t) => return Err(format!("'{t}' must be a constant expression")),
        };
        Ok(Fixed::Custom(Arc::new(Subst::compile(
            Some(env),
            &text,
            multiline,
        )?)))
    })
}

fn regex_of(f: &Fixed) -> &Regex {
    f.custom::<Regex>().expect("regex fixup")
}

/// Makes header text end in CRLF (Kamailio requires the script to write
/// it; a missing one would glue the next header onto this one).
fn header_text(s: &str) -> String {
    let mut t = s.to_string();
    if !t.is_empty() && !t.ends_with('\n') {
        t.push_str("\r\n");
    }
    t
}

/// The body as it will be sent (after an earlier `set_body` or body
/// substitution), with the Content-Type given then.
fn current_body(msg: &SipMsg) -> (Vec<u8>, Option<String>) {
    let ct = msg.edits.body().and_then(|(_, ct)| ct.map(str::to_string));
    (msg.body().to_vec(), ct)
}

/// Records replacements given as ranges of the received message: those in
/// the head become edits, those in the body rebuild the body (so that
/// Content-Length follows). Matches inside a body the script already
/// replaced are dropped, as Kamailio drops lumps inside deleted text.
fn record(msg: &mut SipMsg, ranges: Vec<(usize, usize, Vec<u8>)>) {
    let body_start = msg.msg().body_start() as usize;
    let mut body_ranges = Vec::new();
    for (s, e, t) in ranges {
        if s < body_start {
            msg.edits.replace(s as u32, e as u32, &t);
        } else {
            body_ranges.push((s - body_start, e - body_start, t));
        }
    }
    if body_ranges.is_empty() {
        return;
    }
    if msg.edits.body().is_some() {
        lm_dbg!("textops: match inside a replaced body ignored");
        return;
    }
    let orig = msg.msg().body();
    let mut out = Vec::with_capacity(orig.len() + 16);
    let mut last = 0;
    for (s, e, t) in body_ranges {
        if s < last {
            continue;
        }
        out.extend_from_slice(&orig[last..s]);
        out.extend_from_slice(&t);
        last = e;
    }
    out.extend_from_slice(&orig[last..]);
    msg.edits.set_body(&out, None);
}

fn set_current_body(msg: &mut SipMsg, body: &[u8], ct: Option<String>) {
    msg.edits.set_body(body, ct.as_deref());
}

/// Whether the message's method (CSeq method for replies) is in `list`.
pub fn method_in(msg: &SipMsg, list: &str) -> bool {
    let m = msg.msg();
    let method = match m.txn_method() {
        Ok(x) => x,
        Err(_) => return false,
    };
    list.split(['|', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .any(|item| {
            // Upper-cased on the stack: every known method name is short.
            let mut buf = [0u8; 16];
            let upper = match buf.get_mut(..item.len()) {
                Some(b) => {
                    b.copy_from_slice(item.as_bytes());
                    b.make_ascii_uppercase();
                    std::str::from_utf8(b).unwrap_or(item)
                }
                None => item,
            };
            match Method::parse(upper) {
                // Known methods: compared as methods (the message's name is
                // case-sensitive, the list's is not).
                Method::Other(_) => method.as_str().eq_ignore_ascii_case(item),
                known => known == method,
            }
        })
}

/// Kamailio's comparison codes: 1 equal, -1 when the first is greater,
/// -2 when it is smaller.
fn cmp_rc(a: &str, b: &str) -> i32 {
    match a.cmp(b) {
        std::cmp::Ordering::Equal => 1,
        std::cmp::Ordering::Greater => -1,
        std::cmp::Ordering::Less => -2,
    }
}

fn bool_rc(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

fn append_hf(ctx: &mut Ctx<'_>, txt: &str, after: Option<&str>) -> i32 {
    let text = header_text(txt);
    let m = ctx.msg.msg();
    let at = match after {
        None => m.headers_end(),
        Some(name) => match m.headers_by_name(name).last() {
            Some(h) => h.end,
            None => m.headers_end(),
        },
    };
    ctx.msg.edits.insert(at, text.as_bytes());
    1
}

fn insert_hf(ctx: &mut Ctx<'_>, txt: &str, before: Option<&str>) -> i32 {
    let text = header_text(txt);
    let m = ctx.msg.msg();
    let at = match before {
        None => m.headers_start(),
        Some(name) => match m.headers_by_name(name).next() {
            Some(h) => h.start,
            None => m.headers_start(),
        },
    };
    ctx.msg.edits.insert(at, text.as_bytes());
    1
}

fn remove_where(ctx: &mut Ctx<'_>, pred: impl Fn(&sr_sdk::sip_msg::Header<'_>) -> bool) -> i32 {
    let spans: Vec<(u32, u32)> = ctx
        .msg
        .msg()
        .headers()
        .iter()
        .filter(|h| pred(h))
        .map(|h| (h.start, h.end))
        .collect();
    for (s, e) in &spans {
        ctx.msg.edits.delete(*s, *e);
    }
    // 1 however many went, as Kamailio's.
    bool_rc(!spans.is_empty())
}

fn search_append(ctx: &mut Ctx<'_>, re: &Regex, txt: &str, body_only: bool) -> i32 {
    if body_only {
        let (body, ct) = current_body(ctx.msg);
        let Some(m) = re.find(&body) else {
            return -1;
        };
        let mut out = body[..m.end()].to_vec();
        out.extend_from_slice(txt.as_bytes());
        out.extend_from_slice(&body[m.end()..]);
        set_current_body(ctx.msg, &out, ct);
        return 1;
    }
    let Some(m) = re.find(ctx.msg.msg().raw()) else {
        return -1;
    };
    let end = m.end();
    record(ctx.msg, vec![(end, end, txt.as_bytes().to_vec())]);
    1
}

fn replace(ctx: &mut Ctx<'_>, re: &Regex, txt: &str, all: bool) -> i32 {
    let raw = ctx.msg.msg().raw();
    let ranges: Vec<(usize, usize, Vec<u8>)> = if all {
        re.find_iter(raw)
            .map(|m| (m.start(), m.end(), txt.as_bytes().to_vec()))
            .collect()
    } else {
        re.find(raw)
            .map(|m| (m.start(), m.end(), txt.as_bytes().to_vec()))
            .into_iter()
            .collect()
    };
    if ranges.is_empty() {
        return -1;
    }
    record(ctx.msg, ranges);
    1
}

fn replace_body(ctx: &mut Ctx<'_>, re: &Regex, txt: &str, all: bool) -> i32 {
    let (body, ct) = current_body(ctx.msg);
    let new = if all {
        re.replace_all(&body, regex::bytes::NoExpand(txt.as_bytes()))
    } else {
        re.replace(&body, regex::bytes::NoExpand(txt.as_bytes()))
    };
    if let std::borrow::Cow::Borrowed(_) = new {
        return -1;
    }
    let new = new.into_owned();
    set_current_body(ctx.msg, &new, ct);
    1
}

fn subst_msg(ctx: &mut Ctx<'_>, s: &Subst) -> i32 {
    let raw = ctx.msg.msg().raw().to_vec();
    let ranges = s.ranges(ctx, &raw);
    if ranges.is_empty() {
        return -1;
    }
    record(ctx.msg, ranges);
    1
}

fn subst_body(ctx: &mut Ctx<'_>, s: &Subst) -> i32 {
    let (body, ct) = current_body(ctx.msg);
    let (new, n) = s.apply(ctx, &body);
    if n == 0 {
        return -1;
    }
    set_current_body(ctx.msg, &new, ct);
    1
}

fn subst_uri(ctx: &mut Ctx<'_>, s: &Subst) -> i32 {
    if !ctx.msg.is_request() {
        return -1;
    }
    let uri = ctx.msg.ruri().as_bytes().to_vec();
    let (new, n) = s.apply(ctx, &uri);
    if n == 0 {
        return -1;
    }
    match String::from_utf8(new) {
        Ok(u) => {
            ctx.msg.new_uri = Some(u);
            1
        }
        Err(_) => -1,
    }
}

/// The user part of a SIP URI as a range of the text.
fn user_range(uri: &str) -> Option<(usize, usize)> {
    let colon = uri.find(':')? + 1;
    let rest = &uri[colon..];
    let end_host = rest.find([';', '?']).unwrap_or(rest.len());
    match rest[..end_host].find('@') {
        Some(at) => {
            let user_end = rest[..at].find(':').unwrap_or(at);
            Some((colon, colon + user_end))
        }
        None => Some((colon, colon)),
    }
}

fn subst_user(ctx: &mut Ctx<'_>, s: &Subst) -> i32 {
    if !ctx.msg.is_request() {
        return -1;
    }
    let uri = ctx.msg.ruri().to_string();
    let Some((us, ue)) = user_range(&uri) else {
        return -1;
    };
    let (new_user, n) = s.apply(ctx, &uri.as_bytes()[us..ue]);
    if n == 0 {
        return -1;
    }
    let Ok(new_user) = String::from_utf8(new_user) else {
        return -1;
    };
    let mut out = String::with_capacity(uri.len() + new_user.len());
    out.push_str(&uri[..us]);
    out.push_str(&new_user);
    if us == ue && !new_user.is_empty() {
        out.push('@');
    }
    let mut rest = &uri[ue..];
    if us != ue && new_user.is_empty() {
        // The user part is gone: drop the password and the '@' too.
        rest = &rest[rest.find('@').map_or(0, |i| i + 1)..];
    }
    out.push_str(rest);
    ctx.msg.new_uri = Some(out);
    1
}

/// `has_body([mime])`.
pub fn has_body(msg: &SipMsg, mime: Option<&str>) -> bool {
    let m = msg.msg();
    let len = match msg.edits.body() {
        Some((b, _)) => b.len(),
        None => m.body().len(),
    };
    if len == 0 || m.content_length() == Some(0) && msg.edits.body().is_none() {
        return false;
    }
    let Some(want) = mime.map(str::trim).filter(|s| !s.is_empty()) else {
        return true;
    };
    let ct: String = match msg.edits.body().and_then(|b| b.1) {
        Some(ct) => ct.to_string(),
        // No Content-Type: Kamailio takes the body as application/sdp.
        None => m
            .value(HeaderName::ContentType)
            .unwrap_or("application/sdp")
            .to_string(),
    };
    let media = ct.split(';').next().unwrap_or("").trim();
    let want = want.split(';').next().unwrap_or("").trim();
    match want.split_once('/') {
        Some((t, "*")) => media
            .split_once('/')
            .is_some_and(|(mt, _)| mt.eq_ignore_ascii_case(t)),
        _ => media.eq_ignore_ascii_case(want),
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let rt = RouteType::REQUEST | RouteType::ONREPLY | RouteType::FAILURE | RouteType::BRANCH;
    let req_rt = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let re = Some(fixup::f(re_fixup));
    let re_txt = Some(fixup::f(re_txt_fixup));
    let cs = Some(fixup::f(fixup::const_str));
    multipart::add(more::add(ModuleDef::new("textops")))
        .cmd("is_method", 1, rt, cs.clone(), |ctx, p| {
            let list = p[0].str(ctx);
            bool_rc(method_in(ctx.msg, &list))
        })
        .cmd("append_hf", 1, rt, None, |ctx, p| {
            let t = p[0].str(ctx);
            append_hf(ctx, &t, None)
        })
        .cmd("append_hf", 2, rt, None, |ctx, p| {
            let t = p[0].str(ctx);
            let h = p[1].str(ctx);
            append_hf(ctx, &t, Some(&h))
        })
        .cmd("insert_hf", 1, rt, None, |ctx, p| {
            let t = p[0].str(ctx);
            insert_hf(ctx, &t, None)
        })
        .cmd("insert_hf", 2, rt, None, |ctx, p| {
            let t = p[0].str(ctx);
            let h = p[1].str(ctx);
            insert_hf(ctx, &t, Some(&h))
        })
        .cmd("remove_hf", 1, RouteType::ANY, cs.clone(), |ctx, p| {
            let name = p[0].str(ctx).trim().to_string();
            remove_where(ctx, |h| h.is(&name))
        })
        .cmd("remove_hf_pv", 1, RouteType::ANY, None, |ctx, p| {
            let name = p[0].str(ctx).trim().to_string();
            remove_where(ctx, |h| h.is(&name))
        })
        .cmd("remove_hf_re", 1, RouteType::ANY, re.clone(), |ctx, p| {
            let r = regex_of(&p[0]);
            remove_where(ctx, |h| r.is_match(h.name_str.as_bytes()))
        })
        .cmd("is_present_hf", 1, rt, cs.clone(), |ctx, p| {
            let name = p[0].str(ctx).trim().to_string();
            let found = ctx.msg.msg().headers_by_name(&name).next().is_some();
            bool_rc(found)
        })
        .cmd("is_present_hf_re", 1, rt, re.clone(), |ctx, p| {
            let r = regex_of(&p[0]);
            bool_rc(
                ctx.msg
                    .msg()
                    .headers()
                    .iter()
                    .any(|h| r.is_match(h.name_str.as_bytes())),
            )
        })
        .cmd("search", 1, rt, re.clone(), |ctx, p| {
            bool_rc(regex_of(&p[0]).is_match(ctx.msg.msg().raw()))
        })
        .cmd("search_body", 1, rt, re, |ctx, p| {
            let (body, _) = current_body(ctx.msg);
            bool_rc(!body.is_empty() && regex_of(&p[0]).is_match(&body))
        })
        .cmd("search_append", 2, rt, re_txt.clone(), |ctx, p| {
            let t = p[1].str(ctx);
            search_append(ctx, regex_of(&p[0]), &t, false)
        })
        .cmd("search_append_body", 2, rt, re_txt.clone(), |ctx, p| {
            let t = p[1].str(ctx);
            search_append(ctx, regex_of(&p[0]), &t, true)
        })
        .cmd("replace", 2, rt, re_txt.clone(), |ctx, p| {
            let t = p[1].str(ctx);
            replace(ctx, regex_of(&p[0]), &t, false)
        })
        .cmd("replace_all", 2, rt, re_txt.clone(), |ctx, p| {
            let t = p[1].str(ctx);
            replace(ctx, regex_of(&p[0]), &t, true)
        })
        .cmd("replace_body", 2, rt, re_txt.clone(), |ctx, p| {
            let t = p[1].str(ctx);
            replace_body(ctx, regex_of(&p[0]), &t, false)
        })
        .cmd("replace_body_all", 2, rt, re_txt, |ctx, p| {
            let t = p[1].str(ctx);
            replace_body(ctx, regex_of(&p[0]), &t, true)
        })
        .cmd("subst", 1, rt, Some(subst_fixup(true)), |ctx, p| {
            let s = p[0].custom::<Subst>().expect("subst fixup");
            subst_msg(ctx, s)
        })
        .cmd("subst_body", 1, rt, Some(subst_fixup(true)), |ctx, p| {
            let s = p[0].custom::<Subst>().expect("subst fixup");
            subst_body(ctx, s)
        })
        .cmd("subst_uri", 1, rt, Some(subst_fixup(false)), |ctx, p| {
            let s = p[0].custom::<Subst>().expect("subst fixup");
            subst_uri(ctx, s)
        })
        .cmd("subst_user", 1, rt, Some(subst_fixup(false)), |ctx, p| {
            let s = p[0].custom::<Subst>().expect("subst fixup");
            subst_user(ctx, s)
        })
        .cmd("has_body", 0, rt, None, |ctx, _| {
            bool_rc(has_body(ctx.msg, None))
        })
        .cmd("has_body", 1, rt, None, |ctx, p| {
            let mime = p[0].str(ctx);
            bool_rc(has_body(ctx.msg, Some(&mime)))
        })
        .cmd("set_body", 2, rt, None, |ctx, p| {
            let body = p[0].str(ctx);
            let ct = p[1].str(ctx);
            let ct = ct.trim();
            ctx.msg
                .edits
                .set_body(body.as_bytes(), (!ct.is_empty()).then_some(ct));
            1
        })
        .cmd("set_reply_body", 2, rt_reply_body(), None, |ctx, p| {
            let body = p[0].str(ctx).into_owned();
            let ct = p[1].str(ctx).trim().to_string();
            if ct.is_empty() {
                lm_err!("set_reply_body: empty content type");
                return -1;
            }
            // The Content-Type goes with the reply's other headers, in
            // the order of the calls (as Kamailio's reply lumps); a second
            // call changes nothing (Kamailio keeps the first body too, and
            // adds a second Content-Type).
            if ctx.msg.reply_body.is_some() {
                lm_warn!("set_reply_body: the reply has a body already");
                return 1;
            }
            ctx.msg
                .reply_headers
                .push_str(&format!("Content-Type: {ct}\r\n"));
            ctx.msg.reply_body = Some(body.into_bytes());
            1
        })
        .cmd("append_time", 0, rt_reply_body(), None, |ctx, _| {
            let d = sr_sdk::db::format_rfc1123(sr_sdk::db::now());
            ctx.msg.reply_headers.push_str(&format!("Date: {d}\r\n"));
            1
        })
        .cmd("append_time_to_request", 0, rt, None, |ctx, _| {
            let d = sr_sdk::db::format_rfc1123(sr_sdk::db::now());
            append_hf(ctx, &format!("Date: {d}\r\n"), None)
        })
        .cmd("search_str", 2, RouteType::ANY, None, |ctx, p| {
            let text = p[0].str(ctx).into_owned();
            let re = p[1].str(ctx).into_owned();
            match regex::Regex::new(&re) {
                Ok(r) => bool_rc(r.is_match(&text)),
                Err(e) => {
                    lm_err!("search_str: bad regular expression '{re}': {e}");
                    -1
                }
            }
        })
        .cmd(
            "append_to_reply",
            1,
            req_rt | RouteType::ERROR,
            None,
            |ctx, p| {
                let t = header_text(&p[0].str(ctx));
                ctx.msg.reply_headers.push_str(&t);
                1
            },
        )
        .cmd("starts_with", 2, RouteType::ANY, None, |ctx, p| {
            let (s, x) = (p[0].str(ctx), p[1].str(ctx));
            // The start compared as cmp_str compares (Kamailio).
            match s.get(..x.len()) {
                Some(head) => cmp_rc(head, &x),
                None => -2,
            }
        })
        .cmd("ends_with", 2, RouteType::ANY, None, |ctx, p| {
            let (s, x) = (p[0].str(ctx), p[1].str(ctx));
            // The end compared as cmp_str compares (Kamailio).
            match s.len().checked_sub(x.len()).and_then(|i| s.get(i..)) {
                Some(tail) => cmp_rc(tail, &x),
                None => -2,
            }
        })
        .cmd("cmp_str", 2, RouteType::ANY, None, |ctx, p| {
            let a = p[0].str(ctx);
            cmp_rc(&a, &p[1].str(ctx))
        })
        .cmd("cmp_istr", 2, RouteType::ANY, None, |ctx, p| {
            let a = p[0].str(ctx).to_ascii_lowercase();
            cmp_rc(&a, &p[1].str(ctx).to_ascii_lowercase())
        })
        .cmd("in_list", 3, RouteType::ANY, None, |ctx, p| {
            let subject = p[0].str(ctx);
            let list = p[1].str(ctx);
            let sep = p[2].str(ctx);
            let Some(sep) = sep.chars().next() else {
                return -1;
            };
            bool_rc(list.split(sep).any(|x| x.trim() == subject))
        })
}

/// Where `set_reply_body` may be called (Kamailio: request, failure and
/// branch routes).
fn rt_reply_body() -> RouteType {
    RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sed_expressions() {
        assert_eq!(
            split_subst("/a\\/b/c/ig").unwrap(),
            ("a/b".into(), "c".into(), "ig".into())
        );
        assert_eq!(
            split_subst("#x#\\1y#").unwrap(),
            ("x".into(), "\\1y".into(), "".into())
        );
        assert!(split_subst("/a/b").is_err());
    }

    #[test]
    fn user_ranges() {
        let u = "sip:alice:pw@example.com;x=y";
        let (s, e) = user_range(u).unwrap();
        assert_eq!(&u[s..e], "alice");
        let u = "sip:example.com";
        assert_eq!(user_range(u), Some((4, 4)));
    }

    fn msg(method: &str) -> SipMsg {
        let rcv = sr_sdk::RecvInfo::loopback();
        let text = format!(
            "{method} sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        SipMsg::parse(bytes::Bytes::from(text), rcv, 1).unwrap()
    }

    /// is_method: list items are case-insensitive; the request's own method
    /// name is case-sensitive for the standard methods (`invite` is an
    /// extension method, not INVITE); extension methods compare without case.
    #[test]
    fn method_lists() {
        let inv = msg("INVITE");
        assert!(method_in(&inv, "INVITE"));
        assert!(method_in(&inv, "bye|invite"));
        assert!(method_in(&inv, " Bye , InViTe "));
        assert!(!method_in(
            &inv,
            "BYE|ACK|SUBSCRIBE|a-method-name-longer-than-sixteen"
        ));
        let lower = msg("invite");
        assert!(!method_in(&lower, "INVITE"));
        let ext = msg("FOO");
        assert!(method_in(&ext, "foo"));
        assert!(method_in(&ext, "BAR|Foo"));
        let long = msg("AVERYLONGEXTENSIONMETHOD");
        assert!(method_in(&long, "averylongextensionmethod"));
        assert!(!method_in(&long, "INVITE"));
    }

    #[test]
    fn header_text_gets_crlf() {
        assert_eq!(header_text("X: 1"), "X: 1\r\n");
        assert_eq!(header_text("X: 1\r\n"), "X: 1\r\n");
    }
}
