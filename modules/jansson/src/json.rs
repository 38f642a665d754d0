//! JSON as the jansson library reads and writes it for Kamailio's module:
//! object members in their order, integers and reals kept apart, the top
//! level an object or an array, duplicate keys refused, and the compact
//! output jansson gives (`%.17g` reals with `.0` when they look whole,
//! `\uXXXX` for control characters, `/` and non-ASCII as they are).

use std::fmt::Write as _;

/// Deepest nesting read (jansson allows 2048; 512 keeps the recursion
/// well inside a worker's stack).
pub const MAX_DEPTH: usize = 512;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number without fraction or exponent.
    Int(i64),
    /// Any other number.
    Real(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, members in order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The member `key` of an object, to change.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Obj(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets member `key` of an object: replaced where it is, else added
    /// last. False when this is not an object.
    pub fn set(&mut self, key: &str, v: Json) -> bool {
        match self {
            Json::Obj(m) => {
                match m.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = v,
                    None => m.push((key.to_string(), v)),
                }
                true
            }
            _ => false,
        }
    }

    /// Compact text, as `json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER)`.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, true);
        out
    }

    /// Text as `json_dumps(json, 0)` writes it: `, ` and `: ` between
    /// items, no line breaks.
    pub fn dump_spaced(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, false);
        out
    }

    fn write(&self, out: &mut String, compact: bool) {
        let (comma, colon) = if compact { (",", ":") } else { (", ", ": ") };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Real(r) => out.push_str(&real_text(*r)),
            Json::Str(s) => write_str(s, out),
            Json::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    v.write(out, compact);
                }
                out.push(']');
            }
            Json::Obj(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    write_str(k, out);
                    out.push_str(colon);
                    v.write(out, compact);
                }
                out.push('}');
            }
        }
    }
}

/// C's `%.<prec>g`.
pub fn format_g(v: f64, prec: usize) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let p = prec.max(1);
    // The exponent after rounding to p significant digits.
    let sci = format!("{:.*e}", p - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, v)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A real as jansson writes it: `%.17g`, `.0` added when it looks whole,
/// the exponent without `+` and leading zeros (`1e300`, `1e-5`).
pub fn real_text(r: f64) -> String {
    let mut s = format_g(r, 17);
    if !s.contains(['.', 'e', 'n', 'i']) {
        s.push_str(".0");
    }
    if let Some(i) = s.find('e') {
        let (mant, exp) = s.split_at(i + 1);
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ("-", d),
            None => ("", exp.trim_start_matches('+')),
        };
        let digits = digits.trim_start_matches('0');
        s = format!(
            "{mant}{sign}{}",
            if digits.is_empty() { "0" } else { digits }
        );
    }
    s
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Reads a JSON text whose top level is an object or an array (jansson
/// without `JSON_DECODE_ANY`), refusing duplicate keys.
pub fn parse(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        b: text.as_bytes(),
        at: 0,
    };
    p.ws();
    if !matches!(p.peek(), Some(b'{' | b'[')) {
        return Err("'[' or '{' expected".into());
    }
    let v = p.value(0)?;
    p.ws();
    if p.at != p.b.len() {
        return Err(format!("end of file expected at {}", p.at));
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.b[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(v)
        } else {
            Err(format!("invalid token at {}", self.at))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err("maximum parsing depth reached".into());
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                let mut m: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(format!("string or '}}' expected at {}", self.at));
                    }
                    let k = self.string()?;
                    if m.iter().any(|(x, _)| *x == k) {
                        return Err(format!("duplicate object key '{k}'"));
                    }
                    self.ws();
                    if self.peek() != Some(b':') {
                        return Err(format!("':' expected at {}", self.at));
                    }
                    self.at += 1;
                    let v = self.value(depth + 1)?;
                    m.push((k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("'}}' expected at {}", self.at)),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut a = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(format!("']' expected at {}", self.at)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(format!("unexpected character at {}", self.at)),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.at;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.at += 1;
            }
            p.at - s
        };
        let first = self.peek();
        let n = digits(self);
        if n == 0 || (first == Some(b'0') && n > 1) {
            return Err(format!("invalid number at {start}"));
        }
        let mut real = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            real = true;
            if digits(self) == 0 {
                return Err(format!("invalid number at {start}"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            real = true;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(format!("invalid number at {start}"));
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.at]).unwrap_or("");
        if real {
            match text.parse::<f64>() {
                Ok(r) if r.is_finite() => Ok(Json::Real(r)),
                _ => Err("real number overflow".into()),
            }
        } else {
            text.parse::<i64>()
                .map(Json::Int)
                .map_err(|_| "too big integer".into())
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .b
            .get(self.at..self.at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("invalid escape at {}", self.at))?;
        self.at += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek().ok_or("premature end of input")?;
            self.at += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().ok_or("premature end of input")?;
                    self.at += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                if self.b.get(self.at..self.at + 2) != Some(b"\\u") {
                                    return Err("invalid Unicode escape".into());
                                }
                                self.at += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err("invalid Unicode escape".into());
                                }
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            if cp == 0 {
                                return Err("\\u0000 is not allowed".into());
                            }
                            char::from_u32(cp).ok_or("invalid Unicode escape")?
                        }
                        _ => return Err(format!("invalid escape at {}", self.at)),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err("control character in a string".into()),
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "invalid UTF-8 in a string".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_goes_back_out_compact_and_in_order() {
        let t = r#" { "b" : [1, -2, 3.5, 1e2, true, null], "a": {"x": "y\n\u00e9/\u0001"} } "#;
        let v = parse(t).unwrap();
        assert_eq!(
            v.dump(),
            "{\"b\":[1,-2,3.5,100.0,true,null],\"a\":{\"x\":\"y\\n\u{e9}/\\u0001\"}}"
        );
    }

    #[test]
    fn reals_are_written_as_jansson_writes_them() {
        assert_eq!(real_text(0.1), "0.10000000000000001");
        assert_eq!(real_text(2.0), "2.0");
        assert_eq!(real_text(1e300), "1.0000000000000001e300");
        assert_eq!(real_text(1.5e-7), "1.4999999999999999e-7");
        assert_eq!(real_text(-0.5), "-0.5");
        assert_eq!(format_g(0.0001234, 15), "0.0001234");
        assert_eq!(format_g(123456789012345678.0, 15), "1.23456789012346e+17");
        assert_eq!(format_g(1.5, 15), "1.5");
    }

    #[test]
    fn what_jansson_refuses_is_refused() {
        for bad in [
            "5",
            "\"s\"",
            "{\"a\":1,\"a\":2}",
            "[1,]",
            "[01]",
            "[1] x",
            "{\"a\" 1}",
            "[\"\\u0000\"]",
            "[99999999999999999999]",
            "[1e999]",
            "[\"\x01\"]",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(600) + &"]".repeat(600);
        assert!(parse(&deep).is_err());
        assert_eq!(
            parse("[\"\\ud83d\\ude00\"]").unwrap(),
            Json::Arr(vec![Json::Str("\u{1F600}".into())])
        );
    }
}
