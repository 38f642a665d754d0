//! textopsx's header-value functions, as Kamailio's: a selector
//! `NAME[IDX].PARAM` picks a value of a comma-list header (the index
//! counts values across every header of that name, from 1, negative from
//! the end, `*` for all) or, for the `*2` functions, a whole header in
//! Authorization form (`Digest a=1, b=2`: commas separate its
//! parameters). Every change is an edit of the original message, placed
//! where Kamailio puts its lumps, so the result is byte for byte
//! Kamailio's (compared in `kamailio_parity_textopsx.rs`).

use sr_sdk::prelude::*;
use sr_sdk::sip_msg::scan::CommaSplit;

/// Which value(s) a selector names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idx {
    /// No index given.
    None,
    /// `[*]`.
    All,
    /// `[n]`, from 1; negative counts from the end.
    N(i64),
}

/// A parsed `NAME[IDX].PARAM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sel {
    /// The header name.
    pub name: String,
    /// The index.
    pub idx: Idx,
    /// The parameter, when one is named.
    pub param: Option<String>,
}

/// Parses a selector.
pub fn parse_sel(s: &str) -> Result<Sel, String> {
    let s = s.trim();
    let (head, param) = match s.rfind('.') {
        Some(i) if !s[i..].contains(']') => (&s[..i], Some(s[i + 1..].trim().to_string())),
        _ => (s, None),
    };
    if param.as_deref() == Some("") {
        return Err(format!("empty parameter name in '{s}'"));
    }
    let (name, idx) = match head.find('[') {
        None => (head.trim(), Idx::None),
        Some(i) => {
            let inner = head[i + 1..]
                .strip_suffix(']')
                .ok_or_else(|| format!("bad header selector '{s}'"))?
                .trim();
            let idx = if inner == "*" {
                Idx::All
            } else {
                match inner.parse::<i64>() {
                    Ok(0) | Err(_) => return Err(format!("bad index in '{s}'")),
                    Ok(n) => Idx::N(n),
                }
            };
            (head[..i].trim(), idx)
        }
    };
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_graphic() && c != b':') {
        return Err(format!("bad header name in '{s}'"));
    }
    Ok(Sel {
        name: name.to_string(),
        idx,
        param,
    })
}

/// One value of a comma-list header: offsets in the message.
#[derive(Debug, Clone, Copy)]
struct Val {
    start: u32,
    end: u32,
    /// The header it is in (its index among the headers of that name).
    hdr: usize,
    /// The comma before it (none for the first of its header).
    comma_before: Option<u32>,
    /// The comma after it (none for the last of its header).
    comma_after: Option<u32>,
}

/// A header of the name: line and value offsets.
#[derive(Debug, Clone, Copy)]
struct Hdr {
    start: u32,
    end: u32,
    value_start: u32,
    value_end: u32,
}

fn offset(raw: &[u8], part: &str) -> u32 {
    (part.as_ptr() as usize - raw.as_ptr() as usize) as u32
}

/// The headers named `name` and the values of each.
fn values(msg: &SipMsg, name: &str) -> (Vec<Hdr>, Vec<Val>) {
    let m = msg.msg();
    let raw = m.raw();
    let mut hdrs = Vec::new();
    let mut vals = Vec::new();
    for h in m.headers().iter().filter(|h| h.is(name)) {
        let hi = hdrs.len();
        hdrs.push(Hdr {
            start: h.start,
            end: h.end,
            value_start: h.value_start,
            value_end: h.value_end(),
        });
        let first = vals.len();
        for v in CommaSplit::new(h.value) {
            let start = offset(raw, v);
            vals.push(Val {
                start,
                end: start + v.len() as u32,
                hdr: hi,
                comma_before: None,
                comma_after: None,
            });
        }
        // The commas between neighbours.
        for i in first + 1..vals.len() {
            let gap = &raw[vals[i - 1].end as usize..vals[i].start as usize];
            if let Some(c) = gap.iter().position(|&b| b == b',') {
                let at = vals[i - 1].end + c as u32;
                vals[i - 1].comma_after = Some(at);
                vals[i].comma_before = Some(at);
            }
        }
    }
    (hdrs, vals)
}

/// The position of a 1-based (negative: from the end) index among `n`.
fn pick(n: usize, i: i64) -> Option<usize> {
    let n = n as i64;
    let p = if i > 0 { i - 1 } else { n + i };
    (0..n).contains(&p).then_some(p as usize)
}

/// The values a selector names (`None`: the first).
fn chosen(vals_len: usize, idx: Idx) -> Vec<usize> {
    match idx {
        Idx::None => pick(vals_len, 1).into_iter().collect(),
        Idx::N(i) => pick(vals_len, i).into_iter().collect(),
        Idx::All => (0..vals_len).collect(),
    }
}

/// Removes one value: the only one of its header takes the header with
/// it; the first of several goes with the comma after it; any other with
/// the comma before it.
fn remove_value(msg: &mut SipMsg, hdrs: &[Hdr], vals: &[Val], i: usize) {
    let v = vals[i];
    match (v.comma_before, v.comma_after) {
        (None, None) => msg.edits.delete(hdrs[v.hdr].start, hdrs[v.hdr].end),
        (None, Some(c)) => msg.edits.delete(v.start, c + 1),
        (Some(c), _) => msg.edits.delete(c, v.end),
    }
}

/// A `;name[=value]` parameter of the text `start..end`: its `;` and end.
fn find_param(raw: &[u8], start: u32, end: u32, name: &str) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(&raw[start as usize..end as usize]).ok()?;
    let mut at = text.find(';')?;
    loop {
        let rest = &text[at + 1..];
        let next = rest.find(';').map(|i| at + 1 + i);
        let item = &text[at + 1..next.unwrap_or(text.len())];
        let pname = item.split('=').next().unwrap_or("").trim();
        if pname.eq_ignore_ascii_case(name) {
            let item_end = at + 1 + item.trim_end().len();
            return Some((start + at as u32, start + item_end as u32));
        }
        at = next?;
    }
}

fn param_text(name: &str, value: &str) -> String {
    if value.is_empty() {
        name.to_string()
    } else {
        format!("{name}={value}")
    }
}

/// `remove_hf_value`: 1 when something was removed, else -1.
pub fn remove(msg: &mut SipMsg, sel: &Sel) -> i32 {
    let (hdrs, vals) = values(msg, &sel.name);
    if hdrs.is_empty() {
        return -1;
    }
    let Some(param) = &sel.param else {
        if sel.idx == Idx::All {
            for h in &hdrs {
                msg.edits.delete(h.start, h.end);
            }
            return 1;
        }
        let picked = chosen(vals.len(), sel.idx);
        for &i in &picked {
            remove_value(msg, &hdrs, &vals, i);
        }
        return if picked.is_empty() { -1 } else { 1 };
    };
    let raw = msg.msg().raw();
    let spans: Vec<(u32, u32)> = chosen(vals.len(), sel.idx)
        .into_iter()
        .filter_map(|i| find_param(raw, vals[i].start, vals[i].end, param))
        .collect();
    for (s, e) in &spans {
        msg.edits.delete(*s, *e);
    }
    if spans.is_empty() {
        -1
    } else {
        1
    }
}

/// `assign_hf_value`: 1, or -1 when the value is not there.
pub fn assign(msg: &mut SipMsg, sel: &Sel, value: &str) -> i32 {
    let (_, vals) = values(msg, &sel.name);
    let picked = chosen(vals.len(), sel.idx);
    if picked.is_empty() {
        return -1;
    }
    let raw = msg.msg().raw();
    let mut ops: Vec<(u32, u32, String)> = Vec::new();
    for i in picked {
        let v = vals[i];
        match &sel.param {
            None => ops.push((v.start, v.end, value.to_string())),
            Some(p) => match find_param(raw, v.start, v.end, p) {
                Some((semi, end)) => ops.push((semi + 1, end, param_text(p, value))),
                None => ops.push((v.end, v.end, format!(";{}", param_text(p, value)))),
            },
        }
    }
    for (s, e, t) in ops {
        msg.edits.replace(s, e, t.as_bytes());
    }
    1
}

/// `append_hf_value`: after the value named, else a new header at the end
/// of the header section. 1.
pub fn append(msg: &mut SipMsg, sel: &Sel, value: &str) -> i32 {
    let (_, vals) = values(msg, &sel.name);
    let at = match sel.idx {
        Idx::N(i) => pick(vals.len(), i).map(|p| vals[p].end),
        _ => None,
    };
    match at {
        Some(end) => msg.edits.insert(end, format!(",{value}").as_bytes()),
        None => {
            let line = format!("{}: {value}\r\n", sel.name);
            let m = msg.msg();
            let end = m.headers_end();
            msg.edits.insert(end, line.as_bytes());
        }
    }
    1
}

/// `insert_hf_value`: before the value named (after the one before it in
/// its header), or without an index a new header before the first of the
/// name (at the end when there is none). -1 for an index out of range.
pub fn insert(msg: &mut SipMsg, sel: &Sel, value: &str) -> i32 {
    let (hdrs, vals) = values(msg, &sel.name);
    match sel.idx {
        Idx::N(i) => {
            let Some(p) = pick(vals.len(), i) else {
                return -1;
            };
            match vals[p].comma_before {
                None => msg
                    .edits
                    .insert(vals[p].start, format!("{value},").as_bytes()),
                Some(_) => msg
                    .edits
                    .insert(vals[p - 1].end, format!(",{value}").as_bytes()),
            }
        }
        _ => {
            let line = format!("{}: {value}\r\n", sel.name);
            let at = match hdrs.first() {
                Some(h) => h.start,
                None => msg.msg().headers_end(),
            };
            msg.edits.insert(at, line.as_bytes());
        }
    }
    1
}

/// The parameters of a header in Authorization form (after the scheme,
/// separated by commas): each one's offsets.
fn auth_params(raw: &[u8], h: &Hdr) -> Vec<(u32, u32, String)> {
    let Ok(text) = std::str::from_utf8(&raw[h.value_start as usize..h.value_end as usize]) else {
        return Vec::new();
    };
    // A scheme is a token followed by white space before the first '='.
    let skip = match text.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) if !text[..i].contains('=') && !text[..i].contains(',') => i,
        _ => 0,
    };
    let mut out = Vec::new();
    for part in CommaSplit::new(&text[skip..]) {
        let start = offset(raw, part);
        let name = part.split('=').next().unwrap_or("").trim().to_string();
        out.push((start, start + part.len() as u32, name));
    }
    out
}

/// The headers a `*2` selector names.
fn chosen_hdrs(hdrs: &[Hdr], idx: Idx) -> Vec<Hdr> {
    chosen(hdrs.len(), idx)
        .into_iter()
        .map(|i| hdrs[i])
        .collect()
}

/// `remove_hf_value2`: the header, or its parameter. 1, or -1 when
/// nothing was there.
pub fn remove2(msg: &mut SipMsg, sel: &Sel) -> i32 {
    let (hdrs, _) = values(msg, &sel.name);
    let picked = chosen_hdrs(&hdrs, sel.idx);
    let mut done = false;
    for h in picked {
        match &sel.param {
            None => {
                msg.edits.delete(h.start, h.end);
                done = true;
            }
            Some(p) => {
                let raw = msg.msg().raw();
                let params = auth_params(raw, &h);
                let Some(i) = params.iter().position(|x| x.2.eq_ignore_ascii_case(p)) else {
                    continue;
                };
                let (s, e, _) = params[i];
                let span = if i > 0 {
                    let prev_end = params[i - 1].1;
                    let gap = &raw[prev_end as usize..s as usize];
                    let c = gap.iter().position(|&b| b == b',').unwrap_or(0) as u32;
                    (prev_end + c, e)
                } else if let Some(next) = params.get(1) {
                    let gap = &raw[e as usize..next.0 as usize];
                    let c = gap.iter().position(|&b| b == b',').unwrap_or(0) as u32;
                    (s, e + c + 1)
                } else {
                    (s, e)
                };
                msg.edits.delete(span.0, span.1);
                done = true;
            }
        }
    }
    if done {
        1
    } else {
        -1
    }
}

/// `assign_hf_value2`: the whole value, or one parameter (added at the end
/// with a comma when missing). 1, or -1 when the header is not there.
pub fn assign2(msg: &mut SipMsg, sel: &Sel, value: &str) -> i32 {
    let (hdrs, _) = values(msg, &sel.name);
    let picked = chosen_hdrs(&hdrs, sel.idx);
    if picked.is_empty() {
        return -1;
    }
    for h in picked {
        match &sel.param {
            None => msg
                .edits
                .replace(h.value_start, h.value_end, value.as_bytes()),
            Some(p) => {
                let params = auth_params(msg.msg().raw(), &h);
                let text = param_text(p, value);
                match params.iter().find(|x| x.2.eq_ignore_ascii_case(p)) {
                    Some((s, e, _)) => msg.edits.replace(*s, *e, text.as_bytes()),
                    None => msg.edits.insert(h.value_end, format!(",{text}").as_bytes()),
                }
            }
        }
    }
    1
}

fn same(raw: &[u8], v: &Val, value: &str) -> bool {
    raw[v.start as usize..v.end as usize].eq_ignore_ascii_case(value.trim().as_bytes())
}

/// `hf_value_exists`: whether a value of the header equals `value`
/// (ignoring case).
pub fn exists(msg: &SipMsg, name: &str, value: &str) -> bool {
    let (_, vals) = values(msg, name);
    let raw = msg.msg().raw();
    vals.iter().any(|v| same(raw, v, value))
}

/// `include_hf_value`: `value` added after the last value unless there
/// (a new header at the end when the header is missing). 1.
pub fn include(msg: &mut SipMsg, name: &str, value: &str) -> i32 {
    if exists(msg, name, value) {
        return 1;
    }
    let (hdrs, vals) = values(msg, name);
    match (vals.last(), hdrs.last()) {
        (Some(v), _) => msg.edits.insert(v.end, format!(",{value}").as_bytes()),
        (None, Some(h)) => msg.edits.insert(h.value_end, value.as_bytes()),
        (None, None) => {
            let end = msg.msg().headers_end();
            msg.edits
                .insert(end, format!("{name}: {value}\r\n").as_bytes());
        }
    }
    1
}

/// `exclude_hf_value`: every value equal to `value` removed (a header left
/// without one goes). 1.
pub fn exclude(msg: &mut SipMsg, name: &str, value: &str) -> i32 {
    let (hdrs, vals) = values(msg, name);
    let raw = msg.msg().raw();
    let hit: Vec<usize> = (0..vals.len())
        .filter(|&i| same(raw, &vals[i], value))
        .collect();
    for i in hit {
        remove_value(msg, &hdrs, &vals, i);
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert_eq!(
            parse_sel("Foo").unwrap(),
            Sel {
                name: "Foo".into(),
                idx: Idx::None,
                param: None
            }
        );
        let s = parse_sel("foo[-1].bar").unwrap();
        assert_eq!((s.idx, s.param.as_deref()), (Idx::N(-1), Some("bar")));
        assert_eq!(parse_sel("foo[*]").unwrap().idx, Idx::All);
        assert!(parse_sel("foo[0]").is_err());
        assert!(parse_sel("foo[x]").is_err());
        assert!(parse_sel("foo.").is_err());
        assert!(parse_sel("").is_err());
    }

    #[test]
    fn picks_from_either_end() {
        assert_eq!(pick(3, 1), Some(0));
        assert_eq!(pick(3, -1), Some(2));
        assert_eq!(pick(3, 4), None);
        assert_eq!(pick(3, -4), None);
        assert_eq!(pick(0, 1), None);
    }
}
