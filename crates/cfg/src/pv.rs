//! Pseudo-variable (`$ru`, `$(avp(x)[1]{s.len})`, ...) and format-string syntax.
//!
//! Only the *syntax* is handled here: class names are not checked against
//! the set of known pseudo-variables (that is the job of the layer that binds
//! names to module exports).
//!
//! Grammar (as accepted by Kamailio's `pv_parse_spec`):
//!
//! ```text
//! short := '$' NAME [ '(' inner ')' ]
//! full  := '$(' NAME [ '(' inner ')' ] [ '[' index ']' ] { '{' transformation '}' } ')'
//! index := INT | '-' INT | '*' | pv
//! transformation := CLASS '.' NAME { ',' arg }
//! ```
//!
//! `NAME` is `[A-Za-z0-9_.?]+` (so `$?` is valid and `"$rm."` names the class `rm.`); `inner` is kept as raw text with balanced
//! parentheses (it may contain other pseudo-variables, e.g. `$sht(ipban=>$si)`).

use std::fmt;

/// A parsed pseudo-variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvSpec {
    /// Class name: `ru`, `var`, `avp`, `hdr`, `T_reply_code`, `sht`, ...
    pub class: String,
    /// Raw text between the parentheses after the class name (`From` in `$hdr(From)`).
    pub inner: Option<String>,
    /// Index (`[1]`, `[-1]`, `[*]`, `[$var(i)]`), only in the `$(...)` form.
    pub index: Option<PvIndex>,
    /// Transformations applied in order, only in the `$(...)` form.
    pub transforms: Vec<Transform>,
}

/// Index of a pseudo-variable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PvIndex {
    /// A fixed position; negative values count from the end.
    Int(i64),
    /// `[*]`: all values.
    All,
    /// The position is the value of another pseudo-variable.
    Pv(Box<PvRef>),
}

/// A transformation such as `{s.substr,1,2}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// Class, the part before the first dot (`s`, `uri`, `param`, `re`, ...).
    pub class: String,
    /// Name after the class (`substr`, `encode.base64`, `value`, ...).
    pub name: String,
    /// Raw, comma-separated arguments (may contain pseudo-variables).
    /// For `re.subst` the whole rest is one argument.
    pub args: Vec<String>,
}

/// Original text of a pseudo-variable together with its parsed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvRef {
    /// Text as written, e.g. `$(avp(x)[*])`.
    pub text: String,
    /// Parsed structure.
    pub spec: PvSpec,
}

/// One piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatPart {
    /// Literal text (with `$$` already turned into `$`).
    Text(String),
    /// A pseudo-variable to be evaluated.
    Pv(PvRef),
}

/// Error from [`parse_pv`] or [`parse_format`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvError {
    /// Byte offset in the parsed text where the problem was found.
    pub offset: usize,
    /// Description.
    pub message: String,
}

impl fmt::Display for PvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.offset)
    }
}

impl std::error::Error for PvError {}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, PvError> {
    Err(PvError {
        offset,
        message: message.into(),
    })
}

/// Characters allowed in a class name, as in Kamailio's `is_pv_valid_char`
/// (verified with kamailio 5.6: `$?` is valid and `"$rm."` names the class `rm.`).
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'?'
}

/// Find the end of the parenthesised group opening at `open` (which must be `(`).
/// Returns the index just past the matching `)`. Stops with an error at
/// a newline, but inside a transformation's braces, whose parameter may
/// be one (as in Kamailio: `$(var(m){s.select,0,\n})`).
fn balanced_end(b: &[u8], open: usize, what: &str) -> Result<usize, PvError> {
    let mut depth = 0usize;
    let mut braces = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            b'{' => braces += 1,
            b'}' => braces = braces.saturating_sub(1),
            b'\n' if braces == 0 => break,
            _ => {}
        }
        i += 1;
    }
    err(open, format!("unterminated {what}: missing ')'"))
}

/// Length-independent scan used by the lexer and format parser: given `b[start] == '$'`,
/// return the index just past the pseudo-variable that starts there.
pub(crate) fn pv_extent(b: &[u8], start: usize) -> Result<usize, PvError> {
    let mut i = start + 1;
    if i < b.len() && b[i] == b'(' {
        return balanced_end(b, i, "pseudo-variable");
    }
    let name_start = i;
    while i < b.len() && is_name_byte(b[i]) {
        i += 1;
    }
    if i == name_start {
        return err(start, "invalid pseudo-variable: expected a name after '$'");
    }
    if i < b.len() && b[i] == b'(' {
        return balanced_end(b, i, "pseudo-variable");
    }
    Ok(i)
}

/// Parse a pseudo-variable such as `$ru`, `$var(x)`, `$(avp(x)[1]{s.len})`.
pub fn parse_pv(text: &str) -> Result<PvSpec, PvError> {
    parse_pv_depth(text, 0)
}

const MAX_PV_DEPTH: usize = 32;

fn parse_pv_depth(text: &str, depth: usize) -> Result<PvSpec, PvError> {
    if depth > MAX_PV_DEPTH {
        return err(0, "pseudo-variable nested too deeply");
    }
    let b = text.as_bytes();
    if b.first() != Some(&b'$') {
        return err(0, "pseudo-variable must start with '$'");
    }
    let end = pv_extent(b, 0)?;
    if end != b.len() {
        return err(
            end,
            format!("unexpected '{}' after pseudo-variable", &text[end..]),
        );
    }
    if b.get(1) == Some(&b'(') {
        // full form: body between "$(" and the final ")"
        let body = &text[2..text.len() - 1];
        parse_body(body, 2, true, depth)
    } else {
        parse_body(&text[1..], 1, false, depth)
    }
}

fn parse_body(body: &str, base: usize, full: bool, depth: usize) -> Result<PvSpec, PvError> {
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() && is_name_byte(b[i]) {
        i += 1;
    }
    if i == 0 {
        return err(base, "missing pseudo-variable name");
    }
    let class = body[..i].to_string();
    let mut inner = None;
    if i < b.len() && b[i] == b'(' {
        let close = balanced_end(b, i, "pseudo-variable name").map_err(|e| PvError {
            offset: e.offset + base,
            ..e
        })?;
        inner = Some(body[i + 1..close - 1].to_string());
        i = close;
    }
    let mut index = None;
    let mut transforms = Vec::new();
    if full {
        if i < b.len() && b[i] == b'[' {
            let close = match find_close(b, i, b'[', b']') {
                Some(c) => c,
                None => return err(base + i, "unterminated index: missing ']'"),
            };
            index = Some(parse_index(&body[i + 1..close], base + i + 1, depth)?);
            i = close + 1;
        }
        while i < b.len() && b[i] == b'{' {
            let close = match find_close(b, i, b'{', b'}') {
                Some(c) => c,
                None => return err(base + i, "unterminated transformation: missing '}'"),
            };
            transforms.push(parse_transform(&body[i + 1..close], base + i + 1)?);
            i = close + 1;
        }
    }
    if i != b.len() {
        return err(
            base + i,
            format!("unexpected '{}' in pseudo-variable", &body[i..]),
        );
    }
    Ok(PvSpec {
        class,
        inner,
        index,
        transforms,
    })
}

/// Index of the bracket closing the one at `open`, honouring nesting of all bracket kinds.
fn find_close(b: &[u8], open: usize, o: u8, c: u8) -> Option<usize> {
    let mut depth = 0i32;
    let mut i = open;
    while i < b.len() {
        let x = b[i];
        if x == o {
            depth += 1;
        } else if x == c {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

fn parse_index(s: &str, base: usize, depth: usize) -> Result<PvIndex, PvError> {
    let t = s.trim();
    if t == "*" {
        return Ok(PvIndex::All);
    }
    if t.starts_with('$') {
        let spec = parse_pv_depth(t, depth + 1).map_err(|e| PvError {
            offset: e.offset + base,
            ..e
        })?;
        return Ok(PvIndex::Pv(Box::new(PvRef {
            text: t.to_string(),
            spec,
        })));
    }
    match t.parse::<i64>() {
        Ok(n) => Ok(PvIndex::Int(n)),
        Err(_) => err(
            base,
            format!("invalid index '{t}': expected a number, '*' or a pseudo-variable"),
        ),
    }
}

/// Split at commas that are not nested inside (), {} or [].
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out
}

fn parse_transform(s: &str, base: usize) -> Result<Transform, PvError> {
    let (head, rest) = match s.find(',') {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let head = head.trim();
    let Some(dot) = head.find('.') else {
        return err(
            base,
            format!("invalid transformation '{{{s}}}': expected 'class.name'"),
        );
    };
    let class = head[..dot].to_string();
    let name = head[dot + 1..].to_string();
    if class.is_empty() || name.is_empty() {
        return err(
            base,
            format!("invalid transformation '{{{s}}}': expected 'class.name'"),
        );
    }
    let args = match rest {
        None => Vec::new(),
        Some(r) if class == "re" && name == "subst" => vec![r.to_string()],
        Some(r) => split_args(r),
    };
    Ok(Transform { class, name, args })
}

/// Parse a format string mixing text and pseudo-variables, as used by `xlog`
/// and most module functions taking "dynamic strings": `"sip:$rU@$fd:5060"`.
///
/// Escaping follows Kamailio's `pv_parse_format` (verified against
/// kamailio 5.6): `$$` yields a literal `$`; a backslash is **not** an escape
/// here (`\$ru` gives a `\` followed by the value of `$ru`). A `$` that does
/// not start a valid pseudo-variable is an error, as in Kamailio.
pub fn parse_format(s: &str) -> Result<Vec<FormatPart>, PvError> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    let mut lit_start = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        text.push_str(&s[lit_start..i]);
        if b.get(i + 1) == Some(&b'$') {
            text.push('$');
            i += 2;
            lit_start = i;
            continue;
        }
        let end = pv_extent(b, i).map_err(|e| PvError {
            offset: e.offset.max(i),
            ..e
        })?;
        let pv_text = &s[i..end];
        let spec = parse_pv(pv_text).map_err(|e| PvError {
            offset: e.offset + i,
            ..e
        })?;
        if !text.is_empty() {
            parts.push(FormatPart::Text(std::mem::take(&mut text)));
        }
        parts.push(FormatPart::Pv(PvRef {
            text: pv_text.to_string(),
            spec,
        }));
        i = end;
        lit_start = i;
    }
    text.push_str(&s[lit_start..]);
    if !text.is_empty() {
        parts.push(FormatPart::Text(text));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let p = parse_pv("$ru").unwrap();
        assert_eq!(p.class, "ru");
        assert!(p.inner.is_none());
        let p = parse_pv("$var(x)").unwrap();
        assert_eq!((p.class.as_str(), p.inner.as_deref()), ("var", Some("x")));
        let p = parse_pv("$sht(ipban=>$si)").unwrap();
        assert_eq!(p.inner.as_deref(), Some("ipban=>$si"));
        assert_eq!(parse_pv("$?").unwrap().class, "?");
        assert_eq!(parse_pv("$rm.").unwrap().class, "rm.");
        assert!(parse_pv("$").is_err());
        assert!(parse_pv("$var(x").is_err());
        assert!(parse_pv("$ru x").is_err());
    }

    #[test]
    fn full_forms() {
        let p = parse_pv("$(avp(x)[1]{s.len})").unwrap();
        assert_eq!(p.index, Some(PvIndex::Int(1)));
        assert_eq!(p.transforms[0].class, "s");
        assert_eq!(p.transforms[0].name, "len");
        let p = parse_pv("$(avp(x)[-1])").unwrap();
        assert_eq!(p.index, Some(PvIndex::Int(-1)));
        let p = parse_pv("$(ru{s.substr,1,2}{s.encode.base64})").unwrap();
        assert_eq!(p.transforms[0].args, vec!["1", "2"]);
        assert_eq!(p.transforms[1].name, "encode.base64");
        let p = parse_pv("$(hdr(X){re.subst,/a,b/c/g})").unwrap();
        assert_eq!(p.transforms[0].args, vec!["/a,b/c/g"]);
        let p = parse_pv("$(avp(x)[$var(i)])").unwrap();
        match p.index {
            Some(PvIndex::Pv(r)) => assert_eq!(r.spec.class, "var"),
            other => panic!("{other:?}"),
        }
        assert!(parse_pv("$(ru{slen})").is_err());
        assert!(parse_pv("$(avp(x)[a])").is_err());
    }

    #[test]
    fn formats() {
        let f = parse_format("sip:$rU@$fd:5060").unwrap();
        assert_eq!(f.len(), 5);
        assert_eq!(f[0], FormatPart::Text("sip:".into()));
        let f = parse_format("cost $$5 \\$ru").unwrap();
        assert_eq!(f[0], FormatPart::Text("cost $5 \\".into()));
        assert!(matches!(&f[1], FormatPart::Pv(p) if p.spec.class == "ru"));
        assert!(parse_format("a $ b").is_err());
        assert_eq!(parse_format("").unwrap(), vec![]);
    }
}
