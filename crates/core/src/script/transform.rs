//! Transformations: `{s.len}`, `{uri.user}`, `{param.value,tag}`,
//! `{nameaddr.uri}`, `{tobody.tag}`, `{re.subst,/a/b/g}`, ... compiled
//! once, applied to a value in order.

use super::transform_params as tp;
use super::transform_str::{self as xs, Esc};
use sip_msg::headers::NameAddr;
use sip_msg::Uri;
use sr_cfg::Transform;
use sr_sdk::fixup::Eval;
use sr_sdk::{Ctx, Value};
use std::borrow::Cow;
use std::sync::Arc;

/// A transformation argument: constant or evaluated per message.
#[derive(Debug, Clone)]
pub enum TrArg {
    /// Constant text.
    Const(String),
    /// A pseudo-variable.
    Dyn(Arc<dyn Eval>),
}

impl TrArg {
    fn get<'a>(&'a self, ctx: &mut Ctx<'_>) -> Cow<'a, str> {
        match self {
            TrArg::Const(s) => Cow::Borrowed(s),
            TrArg::Dyn(e) => Cow::Owned(e.eval(ctx).as_str().into_owned()),
        }
    }

    fn int(&self, ctx: &mut Ctx<'_>) -> i64 {
        sr_sdk::value::str_to_int(&self.get(ctx))
    }
}

/// A compiled transformation.
#[derive(Debug, Clone)]
pub enum Tr {
    /// `s.len`
    Len,
    /// `s.int`
    Int,
    /// `s.md5`
    Md5,
    /// `s.tolower`
    Lower,
    /// `s.toupper`
    Upper,
    /// `s.trim`, `s.rtrim`, `s.ltrim`
    Trim(u8),
    /// `s.substr,offset,len`
    Substr(TrArg, TrArg),
    /// `s.select,index,sep`
    Select(TrArg, char),
    /// `s.strip,n`
    Strip(TrArg),
    /// `s.striptail,n`
    StripTail(TrArg),
    /// `s.replace,a,b`
    Replace(TrArg, TrArg),
    /// `s.before,x`
    Before(TrArg),
    /// `s.after,x`
    After(TrArg),
    /// `s.rm,x`
    Rm(TrArg),
    /// `s.count,c`
    Count(TrArg),
    /// `s.unquote`
    Unquote,
    /// `s.unbracket`
    Unbracket,
    /// `s.numeric`
    Numeric,
    /// `s.encode.base64`
    B64Enc,
    /// `s.decode.base64`
    B64Dec,
    /// `s.encode.hexa`
    HexEnc,
    /// `s.decode.hexa`
    HexDec,
    /// `uri.<part>`
    Uri(&'static str),
    /// `uri.param,name`
    UriParam(TrArg),
    /// `param.value,name[,sep]`
    ParamValue(TrArg, char),
    /// `param.in,name[,sep]`
    ParamIn(TrArg, char),
    /// `param.count[,sep]`
    ParamCount(char),
    /// `param.valueat,i[,sep]`
    ParamValueAt(TrArg, char),
    /// `param.name,i[,sep]`
    ParamName(TrArg, char),
    /// `tobody.<part>`
    Addr(&'static str),
    /// `nameaddr.<part>`
    NameAddr(&'static str),
    /// `re.subst,/re/repl/flags`
    Subst(Arc<regex::Regex>, String, bool),
    /// `line.count`
    LineCount,
    /// `line.at,n`
    LineAt(TrArg),
    /// json's `json.parse,path`: the value at a path of a JSON text
    /// (`""` when there is none, as Kamailio gives).
    JsonParse(TrArg),
    /// sqlops' `sql.val` (0), `sql.val.int` (1), `sql.val.str` (2): a value
    /// as an SQL literal.
    SqlVal(u8),
    /// `s.sha256`, `s.sha384`, `s.sha512`
    Sha(u16),
    /// `s.encode.base64t`
    B64tEnc,
    /// `s.decode.base64t`
    B64tDec,
    /// `s.escape.*`
    Escape(Esc),
    /// `s.unescape.*`
    Unescape(Esc),
    /// `s.escape.csv`
    EscapeCsv,
    /// `s.urlencode.param`
    UrlEnc,
    /// `s.urldecode.param`
    UrlDec,
    /// `s.prefixes[,max]`, `s.prefixes.quoted[,max]`
    Prefixes(Option<TrArg>, bool),
    /// `s.rmws`
    Rmws,
    /// `s.corehash[,size]`
    CoreHash(Option<TrArg>),
    /// `s.rafter,x` (true) and `s.rbefore,x`
    RSplit(TrArg, bool),
    /// `s.ftime,format`
    FTime(TrArg),
    /// `line.sw,prefix`
    LineSw(TrArg),
}

fn sep_arg(args: &[String], i: usize) -> char {
    args.get(i).and_then(|s| s.chars().next()).unwrap_or(';')
}

/// Compiles a transformation. `compile_arg` turns an argument that holds a
/// pseudo-variable into something evaluated per message.
pub fn compile(
    t: &Transform,
    compile_arg: &dyn Fn(&str) -> Result<TrArg, String>,
) -> Result<Tr, String> {
    let a = |i: usize| -> Result<TrArg, String> {
        match t.args.get(i) {
            Some(s) => compile_arg(s),
            None => Err(format!(
                "transformation {{{}.{}}} needs argument {}",
                t.class,
                t.name,
                i + 1
            )),
        }
    };
    let opt = |i: usize| -> Result<Option<TrArg>, String> {
        match t.args.get(i) {
            Some(s) if !s.is_empty() => compile_arg(s).map(Some),
            _ => Ok(None),
        }
    };
    let name = t.name.as_str();
    Ok(match (t.class.as_str(), name) {
        ("s", "len") => Tr::Len,
        ("s", "int") => Tr::Int,
        ("s", "md5") => Tr::Md5,
        ("s", "tolower") => Tr::Lower,
        ("s", "toupper") => Tr::Upper,
        ("s", "trim") => Tr::Trim(3),
        ("s", "ltrim") => Tr::Trim(1),
        ("s", "rtrim") => Tr::Trim(2),
        ("s", "substr") => Tr::Substr(a(0)?, a(1)?),
        // `{s.select,0,,}`: the separator is the comma itself.
        ("s", "select") if t.args.len() == 3 && t.args[1].is_empty() && t.args[2].is_empty() => {
            Tr::Select(a(0)?, ',')
        }
        ("s", "select") => Tr::Select(a(0)?, sep_arg(&t.args, 1)),
        ("s", "strip") => Tr::Strip(a(0)?),
        ("s", "striptail") => Tr::StripTail(a(0)?),
        ("s", "replace") => Tr::Replace(a(0)?, a(1)?),
        ("s", "before") => Tr::Before(a(0)?),
        ("s", "after") => Tr::After(a(0)?),
        ("s", "rm") => Tr::Rm(a(0)?),
        ("s", "count") => Tr::Count(a(0)?),
        ("s", "unquote") => Tr::Unquote,
        ("s", "unbracket") => Tr::Unbracket,
        ("s", "numeric") => Tr::Numeric,
        ("s", "encode.base64") => Tr::B64Enc,
        ("s", "decode.base64") => Tr::B64Dec,
        ("s", "encode.hexa") => Tr::HexEnc,
        ("s", "sha256") => Tr::Sha(256),
        ("s", "sha384") => Tr::Sha(384),
        ("s", "sha512") => Tr::Sha(512),
        ("s", "encode.base64t") => Tr::B64tEnc,
        ("s", "decode.base64t") => Tr::B64tDec,
        ("s", "escape.common") => Tr::Escape(Esc::Common),
        ("s", "unescape.common") => Tr::Unescape(Esc::Common),
        ("s", "escape.user") => Tr::Escape(Esc::User),
        ("s", "unescape.user") => Tr::Unescape(Esc::User),
        ("s", "escape.param") => Tr::Escape(Esc::Param),
        ("s", "unescape.param") => Tr::Unescape(Esc::Param),
        ("s", "escape.csv") => Tr::EscapeCsv,
        ("s", "urlencode.param") => Tr::UrlEnc,
        ("s", "urldecode.param") => Tr::UrlDec,
        ("s", "prefixes") => Tr::Prefixes(opt(0)?, false),
        ("s", "prefixes.quoted") => Tr::Prefixes(opt(0)?, true),
        ("s", "rmws") => Tr::Rmws,
        ("s", "corehash") => Tr::CoreHash(opt(0)?),
        ("s", "rafter") => Tr::RSplit(a(0)?, true),
        ("s", "rbefore") => Tr::RSplit(a(0)?, false),
        ("s", "ftime") => Tr::FTime(TrArg::Const(t.args.join(","))),
        ("line", "sw") => Tr::LineSw(a(0)?),
        ("s", "decode.hexa") => Tr::HexDec,
        ("uri", "param") => Tr::UriParam(a(0)?),
        ("uri", p) => Tr::Uri(match p {
            "user" => "user",
            "host" | "domain" => "host",
            "port" => "port",
            "params" => "params",
            "passwd" => "passwd",
            "headers" => "headers",
            "transport" => "transport",
            "scheme" => "scheme",
            "ttl" => "ttl",
            "maddr" => "maddr",
            "method" => "method",
            "lr" => "lr",
            "r2" => "r2",
            "duri" => "duri",
            "saor" => "saor",
            "suri" => "suri",
            _ => return Err(format!("unknown transformation {{uri.{p}}}")),
        }),
        ("param", "value") => Tr::ParamValue(a(0)?, sep_arg(&t.args, 1)),
        ("param", "in") => Tr::ParamIn(a(0)?, sep_arg(&t.args, 1)),
        ("param", "count") => Tr::ParamCount(sep_arg(&t.args, 0)),
        ("param", "valueat") => Tr::ParamValueAt(a(0)?, sep_arg(&t.args, 1)),
        ("param", "name") => Tr::ParamName(a(0)?, sep_arg(&t.args, 1)),
        ("nameaddr", p) => Tr::NameAddr(match p {
            "name" => "display",
            "uri" => "uri",
            "len" => "len",
            _ => return Err(format!("unknown transformation {{nameaddr.{p}}}")),
        }),
        ("tobody", p) => Tr::Addr(match (t.class.as_str(), p) {
            (_, "uri") => "uri",
            ("nameaddr", "name") | ("tobody", "display") => "display",
            ("nameaddr", "len") => "len",
            ("tobody", "tag") => "tag",
            ("tobody", "user") => "user",
            ("tobody", "host") => "host",
            ("tobody", "params") => "params",
            _ => return Err(format!("unknown transformation {{{}.{p}}}", t.class)),
        }),
        ("re", "subst") => {
            let expr = t.args.join(",");
            compile_subst(&expr)?
        }
        ("line", "count") => Tr::LineCount,
        ("line", "at") => Tr::LineAt(a(0)?),
        ("json", n) if n.eq_ignore_ascii_case("parse") => Tr::JsonParse(a(0)?),
        ("sql", n) if n.eq_ignore_ascii_case("val") => Tr::SqlVal(0),
        ("sql", n) if n.eq_ignore_ascii_case("val.int") => Tr::SqlVal(1),
        ("sql", n) if n.eq_ignore_ascii_case("val.str") => Tr::SqlVal(2),
        (c, n) => return Err(format!("unknown transformation {{{c}.{n}}}")),
    })
}

/// A value as an SQL literal, as sqlops writes it: NULL as `NULL`, `0` or
/// `''` (by `kind`), an integer as it is, a string quoted with `'`, `"`,
/// `\` and NUL escaped by a backslash.
fn sql_val(v: &Value<'_>, kind: u8) -> Value<'static> {
    match v {
        Value::Null => sv(match kind {
            0 => "NULL",
            1 => "0",
            _ => "''",
        }),
        Value::Int(i) => sv(i.to_string()),
        Value::Str(s) => {
            let mut out = String::with_capacity(s.len() + 2);
            out.push('\'');
            for c in s.chars() {
                match c {
                    '\'' | '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\0' => out.push_str("\\0"),
                    c => out.push(c),
                }
            }
            out.push('\'');
            sv(out)
        }
    }
}

/// Compiles a `/re/repl/flags` substitution (flags `i`, `g`).
pub fn compile_subst(expr: &str) -> Result<Tr, String> {
    let (re, repl, flags) = split_subst(expr)?;
    let r = regex::RegexBuilder::new(&re)
        .case_insensitive(flags.contains('i'))
        .build()
        .map_err(|e| format!("bad regular expression in '{expr}': {e}"))?;
    Ok(Tr::Subst(
        Arc::new(r),
        convert_repl(&repl),
        flags.contains('g'),
    ))
}

/// Splits `/re/repl/flags` on unescaped delimiters (the first character is
/// the delimiter).
pub fn split_subst(expr: &str) -> Result<(String, String, String), String> {
    let mut chars = expr.chars();
    let delim = chars.next().ok_or("empty substitution")?;
    let mut parts = vec![String::new()];
    let mut esc = false;
    for c in chars {
        if esc {
            if c != delim {
                if let Some(p) = parts.last_mut() {
                    p.push('\\');
                }
            }
            if let Some(p) = parts.last_mut() {
                p.push(c);
            }
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == delim {
            parts.push(String::new());
        } else {
            if let Some(p) = parts.last_mut() {
                p.push(c);
            }
        }
    }
    if parts.len() != 3 {
        return Err(format!(
            "substitution '{expr}' must be /regex/replacement/flags"
        ));
    }
    let flags = parts.pop().unwrap_or_default();
    let repl = parts.pop().unwrap_or_default();
    let re = parts.pop().unwrap_or_default();
    Ok((re, repl, flags))
}

/// Turns `\1` back-references into the regex crate's `${1}`.
pub fn convert_repl(repl: &str) -> String {
    let mut out = String::with_capacity(repl.len());
    let mut it = repl.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str(&format!("${{{d}}}"));
                    it.next();
                }
                Some(&n) => {
                    out.push(n);
                    it.next();
                }
                None => out.push('\\'),
            },
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

fn sv(s: impl Into<String>) -> Value<'static> {
    Value::Str(Cow::Owned(s.into()))
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    let d = Md5::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn uri_part(s: &str, part: &str) -> Value<'static> {
    let s = s.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(s);
    let Ok(u) = Uri::parse(s) else {
        return Value::Null;
    };
    match part {
        "user" => u.user.map_or(sv(""), sv),
        "host" => sv(u.host_str),
        "port" => u.port.map_or(Value::Null, |p| sv(p.to_string())),
        // A tel: URI's parameters belong to its number.
        "params" if s.get(..4).is_some_and(|x| x.eq_ignore_ascii_case("tel:")) => sv(""),
        "params" => sv(u.params),
        "passwd" => u.password.map_or(sv(""), sv),
        "headers" => u.headers.map_or(sv(""), sv),
        "scheme" => sv(s.split(':').next().unwrap_or("")),
        // The destination, the address of record, the address with its
        // port and transport (as Kamailio builds them).
        "duri" | "saor" | "suri" => {
            let scheme = s.split(':').next().unwrap_or("sip");
            let user = match (part, u.user) {
                ("duri", _) | (_, None) => String::new(),
                (_, Some(us)) => format!("{us}@"),
            };
            let port = match (part, u.port) {
                ("saor", _) | (_, None) => String::new(),
                (_, Some(p)) => format!(":{p}"),
            };
            let transport = match (part, u.param("transport")) {
                ("saor", _) => String::new(),
                (_, Some(Some(t))) => format!(";transport={t}"),
                _ => String::new(),
            };
            sv(format!("{scheme}:{user}{}{port}{transport}", u.host_str))
        }
        p => u.param(p).map_or(sv(""), |v| sv(v.unwrap_or(""))),
    }
}

impl Tr {
    /// Applies the transformation. Errors give `$null`, as Kamailio does.
    pub fn apply(&self, v: Value<'_>, ctx: &mut Ctx<'_>) -> Value<'static> {
        if let Tr::SqlVal(kind) = self {
            return sql_val(&v, *kind);
        }
        if v.is_null() && !matches!(self, Tr::Len) {
            return Value::Null;
        }
        let s = v.as_str();
        let s: &str = &s;
        match self {
            Tr::Len => Value::Int(s.len() as i64),
            // Kamailio's str2sint: the whole text a decimal number of 32
            // bits, else the transformation fails ($null).
            Tr::Int => {
                super::rval::str2sint_dec(s).map_or(Value::Null, |i| Value::Int(i64::from(i)))
            }
            Tr::Md5 => sv(md5_hex(s)),
            // ASCII letters only, as Kamailio.
            Tr::Lower => sv(s.to_ascii_lowercase()),
            Tr::Upper => sv(s.to_ascii_uppercase()),
            Tr::Trim(m) => sv(match m {
                1 => s.trim_start(),
                2 => s.trim_end(),
                _ => s.trim(),
            }),
            // An offset outside the text fails; a length of 0 or one
            // past the end takes the rest (Kamailio's rules).
            Tr::Substr(o, l) => {
                let (o, l) = (o.int(ctx), l.int(ctx).max(0));
                let n = s.len() as i64;
                let start = if o >= 0 { o } else { n + o };
                if o >= n || start < 0 {
                    return Value::Null;
                }
                let end = if l == 0 || start + l >= n {
                    n
                } else {
                    start + l
                };
                sv(
                    String::from_utf8_lossy(&s.as_bytes()[start as usize..end as usize])
                        .into_owned(),
                )
            }
            Tr::Select(i, sep) => {
                let parts: Vec<&str> = s.split(*sep).collect();
                let i = i.int(ctx);
                let k = if i < 0 { parts.len() as i64 + i } else { i };
                // Out of range: the empty text (Kamailio).
                if k < 0 {
                    sv("")
                } else {
                    sv(parts.get(k as usize).copied().unwrap_or(""))
                }
            }
            Tr::Strip(n) => sv(s.get(n.int(ctx).max(0) as usize..).unwrap_or("")),
            Tr::StripTail(n) => {
                let k = s.len().saturating_sub(n.int(ctx).max(0) as usize);
                sv(s.get(..k).unwrap_or(""))
            }
            Tr::Replace(a, b) => sv(s.replace(&*a.get(ctx), &b.get(ctx))),
            Tr::Before(x) => {
                let x = x.get(ctx);
                sv(s.find(&*x).map_or(s, |i| &s[..i]))
            }
            Tr::After(x) => {
                let x = x.get(ctx);
                sv(s.find(&*x).map_or("", |i| &s[i + x.len()..]))
            }
            Tr::Rm(x) => sv(s.replace(&*x.get(ctx), "")),
            Tr::Count(c) => {
                let c = c.get(ctx);
                let ch = c.chars().next().unwrap_or('\0');
                Value::Int(s.chars().filter(|x| *x == ch).count() as i64)
            }
            Tr::Unquote => sv(s
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(s)),
            Tr::Unbracket => sv(s
                .strip_prefix('<')
                .and_then(|x| x.strip_suffix('>'))
                .unwrap_or(s)),
            Tr::Numeric => sv(s.chars().filter(char::is_ascii_digit).collect::<String>()),
            Tr::B64Enc => {
                use base64::Engine;
                sv(base64::engine::general_purpose::STANDARD.encode(s))
            }
            Tr::B64Dec => {
                use base64::Engine;
                match base64::engine::general_purpose::STANDARD.decode(s) {
                    Ok(b) => sv(String::from_utf8_lossy(&b).into_owned()),
                    Err(_) => Value::Null,
                }
            }
            Tr::Sha(bits) => sv(xs::sha(*bits, s)),
            Tr::B64tEnc => sv(xs::b64t_enc(s)),
            Tr::B64tDec => xs::b64t_dec(s).map_or(Value::Null, sv),
            Tr::Escape(k) => xs::escape(*k, s).map_or(Value::Null, sv),
            Tr::Unescape(k) => xs::unescape(*k, s).map_or(Value::Null, sv),
            Tr::EscapeCsv => sv(xs::escape_csv(s)),
            Tr::UrlEnc => sv(xs::urlencode(s)),
            Tr::UrlDec => xs::urldecode(s).map_or(Value::Null, sv),
            Tr::Prefixes(max, quoted) => {
                let max = max.as_ref().map(|m| m.int(ctx).max(0) as usize);
                sv(xs::prefixes(s, max, *quoted))
            }
            Tr::Rmws => sv(xs::rmws(s)),
            Tr::CoreHash(size) => {
                let size = size.as_ref().map(|n| n.int(ctx));
                xs::corehash(s, size)
            }
            Tr::RSplit(x, after) => xs::rsplit(s, &x.get(ctx), *after).map_or(Value::Null, sv),
            Tr::FTime(f) => xs::ftime(s, &f.get(ctx)).map_or(Value::Null, sv),
            Tr::LineSw(_) if s.is_empty() => Value::Null,
            Tr::LineSw(p) => sv(xs::line_starting(s, &p.get(ctx))),
            Tr::HexEnc => sv(s.bytes().map(|b| format!("{b:02x}")).collect::<String>()),
            // Pairs of digits; a last odd digit is dropped (Kamailio).
            Tr::HexDec => {
                let b = s.as_bytes();
                let mut out = Vec::with_capacity(b.len() / 2);
                for c in b.chunks_exact(2) {
                    match std::str::from_utf8(c)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(x) => out.push(x),
                        None => return Value::Null,
                    }
                }
                sv(String::from_utf8_lossy(&out).into_owned())
            }
            Tr::Uri(p) => uri_part(s, p),
            Tr::UriParam(n) => uri_part(s, &n.get(ctx)),
            Tr::ParamValue(n, sep) => {
                let n = n.get(ctx);
                let Some(list) = tp::params(s, *sep) else {
                    return Value::Null;
                };
                list.into_iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&n))
                    .map_or(sv(""), |(_, v)| sv(v))
            }
            Tr::ParamIn(n, sep) => {
                let n = n.get(ctx);
                let list = tp::params(s, *sep).unwrap_or_default();
                Value::Int(list.iter().any(|(k, _)| k.eq_ignore_ascii_case(&n)) as i64)
            }
            Tr::ParamCount(sep) => Value::Int(tp::params(s, *sep).map_or(0, |l| l.len()) as i64),
            Tr::ParamValueAt(i, sep) => {
                let Some(list) = tp::params(s, *sep) else {
                    return Value::Null;
                };
                let i = i.int(ctx).max(0) as usize;
                list.get(i).map_or(sv(""), |(_, v)| sv(v.clone()))
            }
            Tr::ParamName(i, sep) => {
                let Some(list) = tp::params(s, *sep) else {
                    return Value::Null;
                };
                let i = i.int(ctx).max(0) as usize;
                list.get(i).map_or(sv(""), |(k, _)| sv(k.clone()))
            }
            Tr::NameAddr(p) => match tp::nameaddr(s) {
                Some((name, uri, len)) => match *p {
                    "uri" => sv(uri),
                    "display" => sv(name),
                    _ => Value::Int(len as i64),
                },
                None => Value::Null,
            },
            Tr::Addr(p) => match NameAddr::parse(s, "value") {
                Ok(na) => match *p {
                    "uri" => sv(na.uri_str),
                    // tobody.display: as written, quotes kept.
                    "display" => sv(s[..s.find('<').unwrap_or(0)].trim()),
                    "len" => Value::Int(s.len() as i64),
                    "tag" => sv(na.tag().unwrap_or("")),
                    "user" => sv(na.uri.user.unwrap_or("")),
                    "host" => sv(na.uri.host_str),
                    "params" => sv(na.params),
                    _ => Value::Null,
                },
                Err(_) => Value::Null,
            },
            Tr::Subst(..) if s.is_empty() => Value::Null,
            Tr::Subst(re, repl, global) => {
                if *global {
                    sv(re.replace_all(s, repl.as_str()).into_owned())
                } else {
                    sv(re.replace(s, repl.as_str()).into_owned())
                }
            }
            Tr::LineAt(_) if s.is_empty() => Value::Null,
            Tr::LineCount => Value::Int(s.lines().count() as i64),
            Tr::LineAt(n) => {
                let n = n.int(ctx);
                let lines: Vec<&str> = s.lines().collect();
                let k = if n < 0 { lines.len() as i64 + n } else { n };
                if k < 0 {
                    Value::Null
                } else {
                    sv(lines.get(k as usize).copied().unwrap_or(""))
                }
            }
            // (Kamailio's json module: `%` in a name stands for a dot.)
            Tr::JsonParse(p) => sv(sr_sdk::jsonc::path(s, &p.get(ctx), '%').unwrap_or_default()),
            // (Applied above, before the `$null` check.)
            Tr::SqlVal(kind) => sql_val(&v, *kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_forms() {
        let u = "sip:alice:pw@example.com:5070;transport=tcp;lr";
        assert_eq!(
            uri_part(u, "duri"),
            sv("sip:example.com:5070;transport=tcp")
        );
        assert_eq!(uri_part(u, "saor"), sv("sip:alice@example.com"));
        assert_eq!(
            uri_part(u, "suri"),
            sv("sip:alice@example.com:5070;transport=tcp")
        );
        assert_eq!(uri_part("sips:b.com", "suri"), sv("sips:b.com"));
        assert_eq!(uri_part("sip:b.com", "port"), Value::Null);
    }

    #[test]
    fn subst_parts() {
        assert_eq!(
            split_subst("/a\\/b/c/g").unwrap(),
            ("a/b".into(), "c".into(), "g".into())
        );
        assert!(split_subst("/x/").is_err());
        assert_eq!(convert_repl("\\1-\\2$"), "${1}-${2}$$");
    }
}
