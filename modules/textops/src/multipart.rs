//! textops' multipart-body functions — `filter_body`, `get_body_part`,
//! `get_body_part_raw`, `remove_body_part`, `append_body_part`,
//! `append_body_part_hex`, `set_body_multipart` — and the header
//! functions `is_present_hf_re_pv`, `remove_hf_exp_pv`, `remove_hf_match`
//! and `replace_hdrs`.
//!
//! A part is found as Kamailio finds it: the first line of the body
//! starting with `Content-Type: ` whose value starts with the type asked
//! for (ignoring case); the value must then end right there, else the
//! search fails. A part's content runs from after its headers to the CRLF
//! before the next delimiter (RFC 2046). After a part is added or removed
//! the delimiters are rewritten, the last one closing (`--b--`), as
//! Kamailio's core does when it builds the message.

use crate::{bool_rc, msg_regex, remove_where};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::HeaderName;

/// The default boundary of the functions that make one.
const DEFAULT_BOUNDARY: &str = "unique-boundary-1";

/// The Content-Type the message will have (one set with the body, else
/// the received one).
fn content_type(msg: &SipMsg) -> Option<String> {
    if let Some(ct) = msg.edits.body().and_then(|(_, ct)| ct) {
        return Some(ct.to_string());
    }
    msg.msg().value(HeaderName::ContentType).map(str::to_string)
}

/// The Content-Type set with an earlier body change, to keep when the
/// body changes again.
fn set_ct(msg: &SipMsg) -> Option<String> {
    msg.edits.body().and_then(|(_, ct)| ct).map(str::to_string)
}

/// The `boundary` parameter of a Content-Type value.
fn boundary_of(ct: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

fn is_multipart(ct: &str) -> bool {
    ct.split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/mixed"))
}

/// The start of the next line of `b` at or after `from` that starts with
/// `text` (lines end in CRLF).
fn line_starting(b: &[u8], mut from: usize, text: &[u8]) -> Option<usize> {
    while from + text.len() <= b.len() {
        if b[from..].starts_with(text) {
            return Some(from);
        }
        let cr = b[from..b.len().saturating_sub(1)]
            .iter()
            .position(|&c| c == b'\r')?;
        if b.get(from + cr + 1) != Some(&b'\n') {
            return None;
        }
        from += cr + 2;
    }
    None
}

/// A part found in a multipart body: offsets in the body.
#[derive(Debug, Clone, Copy)]
struct Part {
    /// Its `Content-Type:` line.
    ct_line: usize,
    /// Just past that line.
    ct_end: usize,
    /// Its content (past the empty line).
    content: usize,
    /// The CRLF before the next delimiter (the end of the content).
    delim: usize,
    /// Just past the next delimiter's line.
    after_delim: usize,
}

/// Finds the first part of type `ctype` in `body` (boundary `b`).
fn find_part(body: &[u8], b: &str, ctype: &str) -> Option<Part> {
    const CT: &[u8] = b"Content-Type: ";
    let mut from = 0;
    loop {
        let line = line_starting(body, from, CT)?;
        let v = line + CT.len();
        if body.len() <= v + ctype.len() + 2 {
            return None;
        }
        if !body[v..v + ctype.len()].eq_ignore_ascii_case(ctype.as_bytes()) {
            from = v;
            continue;
        }
        let end = v + ctype.len();
        if &body[end..end + 2] != b"\r\n" {
            lm_err!("textops: no CRLF found after content type");
            return None;
        }
        let ct_end = end + 2;
        let mut content = ct_end;
        while content < body.len() && matches!(body[content], b'\r' | b'\n') {
            content += 1;
        }
        // The delimiter: the CRLF before `--boundary`, anywhere after.
        let delim_text = format!("\r\n--{b}");
        let delim = content
            + body[content..]
                .windows(delim_text.len())
                .position(|w| w == delim_text.as_bytes())?;
        let line_end = delim + delim_text.len();
        let after_delim = body[line_end..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(body.len(), |i| line_end + i + 2);
        return Some(Part {
            ct_line: line,
            ct_end,
            content,
            delim,
            after_delim,
        });
    }
}

/// Rewrites the delimiter lines of `body`: each `--b`, the last one
/// `--b--`; what follows the last is dropped. Unchanged with fewer than
/// two delimiters.
pub fn fix_boundaries(body: &[u8], b: &str) -> Vec<u8> {
    let mark = format!("--{b}");
    let line_end = |at: usize| {
        body[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(body.len(), |i| at + i + 2)
    };
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(at) = line_starting(body, from, mark.as_bytes()) {
        starts.push(at);
        // (The next delimiter is on another line.)
        from = line_end(at);
    }
    if b.is_empty() || starts.len() < 2 {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&body[..starts[0]]);
    for w in starts.windows(2) {
        out.extend_from_slice(mark.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body[line_end(w[0])..w[1]]);
    }
    out.extend_from_slice(mark.as_bytes());
    out.extend_from_slice(b"--\r\n");
    out
}

/// A part as the functions that add one write it: headers, content (with
/// a CRLF added unless it ends in an empty line), then a delimiter.
fn part_text(content: &[u8], ctype: &str, disposition: &str, b: &str, first: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if first {
        out.extend_from_slice(format!("--{b}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Type: {ctype}\r\n").as_bytes());
    if !disposition.is_empty() {
        out.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(content);
    if !content.ends_with(b"\r\n\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{b}\r\n").as_bytes());
    out
}

/// The body, its Content-Type and its boundary, for a multipart message.
fn multipart(msg: &SipMsg) -> Option<(Vec<u8>, String, String)> {
    let ct = content_type(msg)?;
    if !is_multipart(&ct) {
        return None;
    }
    let b = boundary_of(&ct)?;
    Some((msg.body().to_vec(), ct, b))
}

/// `filter_body(ctype)`: the body becomes the content of the first part of
/// that type (the Content-Type header is left to the script).
pub fn filter_body(msg: &mut SipMsg, ctype: &str) -> i32 {
    let Some((body, _, b)) = multipart(msg) else {
        lm_warn!("filter_body: body not multipart");
        return -1;
    };
    let Some(p) = find_part(&body, &b, ctype) else {
        return -1;
    };
    let keep = body[p.content..p.delim].to_vec();
    let keep_ct = set_ct(msg);
    msg.edits.set_body(&keep, keep_ct.as_deref());
    1
}

/// `get_body_part(ctype, pv)` (`raw`: `get_body_part_raw`): the content of
/// the first part of that type, from the end of its Content-Type line (raw:
/// from that line) to the end of the next delimiter line. A body that is not multipart is returned
/// whole when its Content-Type is `ctype`.
pub fn get_body_part(msg: &SipMsg, ctype: &str, raw: bool) -> Option<Vec<u8>> {
    let body = msg.body();
    match multipart(msg) {
        Some((body, _, b)) => {
            let p = find_part(&body, &b, ctype)?;
            Some(if raw {
                body[p.ct_line..p.after_delim].to_vec()
            } else {
                // (From the end of the Content-Type line to the CRLF
                // before the delimiter, both line ends included, as
                // Kamailio's.)
                body[p.ct_end..p.delim + 2].to_vec()
            })
        }
        None => {
            let ct = content_type(msg)?;
            let media = ct.split(';').next().unwrap_or("").trim();
            (media.eq_ignore_ascii_case(ctype.trim()) && !body.is_empty()).then(|| body.to_vec())
        }
    }
}

/// `remove_body_part(ctype)`: the first part of that type goes, with the
/// delimiter after it.
pub fn remove_body_part(msg: &mut SipMsg, ctype: &str) -> i32 {
    let Some((body, _, b)) = multipart(msg) else {
        lm_err!("remove_body_part: cannot get the boundary; is the body multipart?");
        return -1;
    };
    let Some(p) = find_part(&body, &b, ctype) else {
        return -1;
    };
    let mut out = body[..p.ct_line].to_vec();
    out.extend_from_slice(&body[p.after_delim..]);
    let out = fix_boundaries(&out, &b);
    let keep_ct = set_ct(msg);
    msg.edits.set_body(&out, keep_ct.as_deref());
    1
}

/// `append_body_part(txt, ctype[, disposition])`: a part added at the end
/// of a multipart body.
pub fn append_body_part(msg: &mut SipMsg, content: &[u8], ctype: &str, disp: &str) -> i32 {
    if content.is_empty() || ctype.is_empty() {
        lm_err!("append_body_part: empty body or content type");
        return -1;
    }
    if msg.body().is_empty() {
        return -1;
    }
    let Some((body, _, b)) = multipart(msg) else {
        lm_err!("append_body_part: cannot get the boundary; is the body multipart?");
        return -1;
    };
    let mut out = body;
    out.extend_from_slice(&part_text(content, ctype, disp, &b, false));
    let out = fix_boundaries(&out, &b);
    let keep_ct = set_ct(msg);
    msg.edits.set_body(&out, keep_ct.as_deref());
    1
}

/// `set_body_multipart([txt, ctype][, boundary])`: the body becomes a
/// multipart one with one part — `txt` of type `ctype`, or without them
/// the current body with its own type — and the message's Content-Type
/// `multipart/mixed;boundary="..."`, with `Mime-Version: 1.0`. A message
/// already multipart gets the new part as its whole body (its
/// Content-Type kept); without `txt` it is left as it is.
pub fn set_body_multipart(msg: &mut SipMsg, new: Option<(Vec<u8>, String)>, b: &str) -> i32 {
    if b.is_empty() || b.starts_with('-') {
        lm_err!("set_body_multipart: invalid boundary '{b}'");
        return -1;
    }
    let ct = content_type(msg).unwrap_or_default();
    let already = is_multipart(&ct);
    let (content, ctype) = match new {
        Some(x) => x,
        None if already => {
            lm_warn!("set_body_multipart: the body is multipart already");
            return 1;
        }
        None => (msg.body().to_vec(), ct.clone()),
    };
    if content.is_empty() || ctype.is_empty() {
        lm_err!("set_body_multipart: empty body or content type");
        return -1;
    }
    let body = fix_boundaries(&part_text(&content, &ctype, "", b, true), b);
    if already {
        let keep_ct = set_ct(msg);
        msg.edits.set_body(&body, keep_ct.as_deref());
        return 1;
    }
    let new_ct = format!("multipart/mixed;boundary=\"{b}\"");
    msg.edits.set_body(&body, Some(&new_ct));
    let end = msg.msg().headers_end();
    msg.edits.insert(end, b"Mime-Version: 1.0\r\n");
    1
}

/// Decodes hexadecimal digits, spaces between pairs allowed.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| {
            let h = (p[0] as char).to_digit(16)?;
            let l = (p[1] as char).to_digit(16)?;
            Some((h * 16 + l) as u8)
        })
        .collect()
}

/// `remove_hf_match(name, op, expr)`: the headers of that name whose
/// value is `eq`ual to, `ne` (not equal), `in`cludes or matches (`re`)
/// `expr` go. 1, -2 when none did, -1 for an unknown operator or a bad
/// expression.
pub fn remove_hf_match(ctx: &mut Ctx<'_>, name: &str, op: &str, expr: &str) -> i32 {
    let test: Box<dyn Fn(&str) -> bool> = match op {
        "eq" => Box::new(|v: &str| v == expr),
        "ne" => Box::new(|v: &str| v != expr),
        "in" => Box::new(|v: &str| v.contains(expr)),
        "re" => match regex::Regex::new(expr) {
            Ok(re) => Box::new(move |v: &str| re.is_match(v)),
            Err(e) => {
                lm_err!("remove_hf_match: bad expression '{expr}': {e}");
                return -1;
            }
        },
        _ => {
            lm_err!("remove_hf_match: unknown operator '{op}' (eq, ne, in, re)");
            return -1;
        }
    };
    match remove_where(ctx, |h| h.is(name) && test(h.value)) {
        1 => 1,
        _ => -2,
    }
}

/// `replace_hdrs(re, txt)`: the first match of `re` in the header section
/// replaced by `txt`.
pub fn replace_hdrs(msg: &mut SipMsg, re: &regex::bytes::Regex, txt: &str) -> i32 {
    let m = msg.msg();
    let (start, end) = (m.headers_start() as usize, m.headers_end() as usize);
    let Some(found) = re.find(&m.raw()[start..end]) else {
        return -1;
    };
    let (s, e) = ((start + found.start()) as u32, (start + found.end()) as u32);
    msg.edits.replace(s, e, txt.as_bytes());
    1
}

/// Adds the functions.
pub fn add(def: ModuleDef) -> ModuleDef {
    let rt = RouteType::REQUEST | RouteType::ONREPLY | RouteType::FAILURE | RouteType::BRANCH;
    let req = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let spve = Some(fixup::f(fixup::spve));
    let pv2 = Some(fixup::f(|env, i, a| {
        if i == 1 {
            fixup::pvar(env, i, a)
        } else {
            fixup::spve(env, i, a)
        }
    }));
    let mut def = def
        .cmd("filter_body", 1, rt, spve.clone(), |ctx, p| {
            let t = p[0].str(ctx).into_owned();
            filter_body(ctx.msg, &t)
        })
        .cmd("remove_body_part", 1, req, spve.clone(), |ctx, p| {
            let t = p[0].str(ctx).into_owned();
            remove_body_part(ctx.msg, &t)
        })
        .cmd("is_present_hf_re_pv", 1, rt, spve.clone(), |ctx, p| {
            let re = p[0].str(ctx).into_owned();
            match msg_regex(&re) {
                Ok(re) => bool_rc(
                    ctx.msg
                        .msg()
                        .headers()
                        .iter()
                        .any(|h| re.is_match(h.name_str.as_bytes())),
                ),
                Err(e) => {
                    lm_err!("is_present_hf_re_pv: {e}");
                    -1
                }
            }
        })
        .cmd(
            "remove_hf_match",
            3,
            RouteType::ANY,
            spve.clone(),
            |ctx, p| {
                let (n, op, e) = (
                    p[0].str(ctx).into_owned(),
                    p[1].str(ctx).into_owned(),
                    p[2].str(ctx).into_owned(),
                );
                remove_hf_match(ctx, n.trim(), op.trim(), &e)
            },
        )
        .cmd("replace_hdrs", 2, RouteType::ANY, spve.clone(), |ctx, p| {
            let (re, txt) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            match msg_regex(&re) {
                Ok(re) => replace_hdrs(ctx.msg, &re, &txt),
                Err(e) => {
                    lm_err!("replace_hdrs: {e}");
                    -1
                }
            }
        });
    for (name, raw) in [("get_body_part", false), ("get_body_part_raw", true)] {
        def = def.cmd(name, 2, rt, pv2.clone(), move |ctx, p| {
            let t = p[0].str(ctx).into_owned();
            let Some(part) = get_body_part(ctx.msg, &t, raw) else {
                return -1;
            };
            let Fixed::Pv(dst) = &p[1] else {
                return -1;
            };
            let v = String::from_utf8_lossy(&part).into_owned();
            match dst.assign(ctx, Value::from(v)) {
                Ok(()) => 1,
                Err(e) => {
                    lm_err!("{name}: {e}");
                    -1
                }
            }
        });
    }
    for n in [2usize, 3] {
        def = def
            .cmd("append_body_part", n, req, spve.clone(), |ctx, p| {
                let txt = p[0].str(ctx).into_owned();
                let ct = p[1].str(ctx).into_owned();
                let cd = p
                    .get(2)
                    .map(|x| x.str(ctx).into_owned())
                    .unwrap_or_default();
                append_body_part(ctx.msg, txt.as_bytes(), &ct, &cd)
            })
            .cmd("append_body_part_hex", n, req, spve.clone(), |ctx, p| {
                let hex = p[0].str(ctx).into_owned();
                let ct = p[1].str(ctx).into_owned();
                let cd = p
                    .get(2)
                    .map(|x| x.str(ctx).into_owned())
                    .unwrap_or_default();
                let Some(bytes) = from_hex(&hex) else {
                    lm_err!("append_body_part_hex: '{hex}' is not hexadecimal");
                    return -1;
                };
                append_body_part(ctx.msg, &bytes, &ct, &cd)
            });
    }
    def.cmd("set_body_multipart", 0, req, None, |ctx, _| {
        set_body_multipart(ctx.msg, None, DEFAULT_BOUNDARY)
    })
    .cmd("set_body_multipart", 1, req, spve.clone(), |ctx, p| {
        let b = p[0].str(ctx).into_owned();
        set_body_multipart(ctx.msg, None, &b)
    })
    .cmd("set_body_multipart", 2, req, spve.clone(), |ctx, p| {
        let (t, c) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        set_body_multipart(ctx.msg, Some((t.into_bytes(), c)), DEFAULT_BOUNDARY)
    })
    .cmd("set_body_multipart", 3, req, spve, |ctx, p| {
        let (t, c) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        let b = p[2].str(ctx).into_owned();
        set_body_multipart(ctx.msg, Some((t.into_bytes(), c)), &b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n";

    #[test]
    fn finds_parts_as_kamailio() {
        let p = find_part(BODY, "b1", "text/plain").unwrap();
        assert_eq!(&BODY[p.content..p.delim], b"hi");
        assert_eq!(&BODY[p.ct_end..p.delim + 2], b"\r\nhi\r\n");
        assert_eq!(
            &BODY[p.ct_line..p.after_delim],
            b"Content-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n"
        );
        let p = find_part(BODY, "b1", "APPLICATION/SDP").unwrap();
        assert_eq!(&BODY[p.content..p.delim], b"v=0\r\n");
        // A type followed by more than the line end does not match.
        assert!(find_part(BODY, "b1", "text/plai").is_none());
        assert!(find_part(BODY, "b1", "image/png").is_none());
    }

    #[test]
    fn boundaries_are_closed_once() {
        let body = b"--b\r\nx\r\n--b--\r\ny\r\n--b\r\n";
        assert_eq!(
            fix_boundaries(body, "b"),
            b"--b\r\nx\r\n--b\r\ny\r\n--b--\r\n"
        );
        assert_eq!(fix_boundaries(b"--b\r\nx\r\n", "b"), b"--b\r\nx\r\n");
        // Two delimiters on one line count once (no slice backwards).
        assert_eq!(
            fix_boundaries(b"--b--b\r\nx\r\n--b\r\n", "b"),
            b"--b\r\nx\r\n--b--\r\n"
        );
        assert_eq!(fix_boundaries(b"----\r\n----\r\n", ""), b"----\r\n----\r\n");
        assert_eq!(boundary_of("multipart/mixed;boundary=\"\""), None);
    }

    #[test]
    fn hex() {
        assert_eq!(from_hex("6b 61 6d61").unwrap(), b"kama");
        assert!(from_hex("6").is_none());
        assert!(from_hex("zz").is_none());
    }
}
