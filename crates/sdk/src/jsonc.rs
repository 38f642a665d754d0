//! JSON read and written as the json-c library does it, which Kamailio's
//! `json` module uses (`json_get_field`, `{json.parse,...}`): a lenient
//! reader (single-quoted strings, comments, trailing commas, `NaN`,
//! `Infinity`, literals in any case, anything after the value ignored) and
//! its default "spaced" writer (`{ "a": 1, "b": [ 1, 2 ] }`, `/` written
//! as `\/`, a number as it was written).

/// Deepest nesting read (json-c's default tokener depth).
const MAX_DEPTH: usize = 32;

/// A JSON value as json-c keeps it.
#[derive(Debug, Clone, PartialEq)]
pub enum JVal {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer within 64 bits (signed).
    Int(i64),
    /// A positive integer above `i64::MAX`.
    UInt(u64),
    /// A number with a fraction or an exponent, kept as written; `NaN`
    /// and the infinities as json-c writes them.
    Double(String),
    /// A string (after its escapes).
    Str(String),
    /// An array.
    Array(Vec<JVal>),
    /// An object, its members in the order first seen (a repeated key
    /// replaces the value in place, as json-c does).
    Object(Vec<(String, JVal)>),
}

impl JVal {
    /// The member `key` of an object (`None` for anything else).
    pub fn get(&self, key: &str) -> Option<&JVal> {
        match self {
            JVal::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Whether this is `null` (json-c keeps it as no object at all: a
    /// member or element that is `null` reads as missing).
    pub fn is_null(&self) -> bool {
        matches!(self, JVal::Null)
    }

    /// Element `idx` of an array.
    pub fn at(&self, idx: i64) -> Option<&JVal> {
        match self {
            JVal::Array(a) => usize::try_from(idx).ok().and_then(|i| a.get(i)),
            _ => None,
        }
    }

    /// json-c's `json_object_get_string`: a string's text, anything
    /// else written as JSON.
    pub fn get_string(&self) -> String {
        match self {
            JVal::Str(s) => until_nul(s).to_string(),
            v => v.to_json_string(),
        }
    }

    /// json-c's `json_object_to_json_string` (its spaced format).
    pub fn to_json_string(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            JVal::Null => out.push_str("null"),
            JVal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            JVal::Int(i) => out.push_str(&i.to_string()),
            JVal::UInt(u) => out.push_str(&u.to_string()),
            JVal::Double(t) => out.push_str(t),
            JVal::Str(s) => write_str(s, out),
            JVal::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push(' ');
                    v.write(out);
                }
                out.push_str(" ]");
            }
            JVal::Object(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push(' ');
                    write_str(k, out);
                    out.push_str(": ");
                    v.write(out);
                }
                out.push_str(" }");
            }
        }
    }
}

/// A C string's view of a value: up to its first NUL.
fn until_nul(s: &str) -> &str {
    s.split('\0').next().unwrap_or("")
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Reads a JSON text as json-c's `json_tokener_parse` does; `None` where
/// it returns NULL (no complete value, or an error before its end).
pub fn parse(text: &str) -> Option<JVal> {
    // json-c reads a C string: a NUL ends the text (and a number there).
    let mut r = Reader {
        b: until_nul(text).as_bytes(),
        i: 0,
    };
    r.value(0)
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips white space and comments (`/* */`, `//` to the line end).
    fn ws(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) => self.i += 1,
                Some(b'/') => match self.b.get(self.i + 1) {
                    Some(b'*') => {
                        let rest = &self.b[self.i + 2..];
                        let end = rest.windows(2).position(|w| w == b"*/")?;
                        self.i += 2 + end + 2;
                    }
                    Some(b'/') => {
                        let rest = &self.b[self.i + 2..];
                        let end = rest.iter().position(|&c| c == b'\n')?;
                        self.i += 2 + end + 1;
                    }
                    _ => return None,
                },
                _ => return Some(()),
            }
        }
    }

    /// A literal word in any case.
    fn word(&mut self, w: &str) -> bool {
        let n = w.len();
        match self.b.get(self.i..self.i + n) {
            Some(s) if s.eq_ignore_ascii_case(w.as_bytes()) => {
                self.i += n;
                true
            }
            _ => false,
        }
    }

    fn value(&mut self, depth: usize) -> Option<JVal> {
        self.ws()?;
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            q @ (b'"' | b'\'') => {
                self.i += 1;
                self.string(q).map(JVal::Str)
            }
            b'n' | b'N' => {
                if self.word("null") {
                    Some(JVal::Null)
                } else if self.word("nan") {
                    Some(JVal::Double("NaN".into()))
                } else {
                    None
                }
            }
            b'i' | b'I' => self
                .word("infinity")
                .then(|| JVal::Double("Infinity".into())),
            b't' | b'T' => self.word("true").then_some(JVal::Bool(true)),
            b'f' | b'F' => self.word("false").then_some(JVal::Bool(false)),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn object(&mut self, depth: usize) -> Option<JVal> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        let mut members: Vec<(String, JVal)> = Vec::new();
        // Where each key is in `members` (a repeated key replaces the value
        // in place; a list scan would make a long object cost n²).
        let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        self.ws()?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(JVal::Object(members));
        }
        loop {
            let q = self.peek()?;
            if q != b'"' && q != b'\'' {
                return None;
            }
            self.i += 1;
            let key = self.string(q)?;
            self.ws()?;
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            let v = self.value(depth)?;
            match at.get(&key) {
                Some(&i) => members[i].1 = v,
                None => {
                    at.insert(key.clone(), members.len());
                    members.push((key, v));
                }
            }
            self.ws()?;
            match self.peek()? {
                b'}' => {
                    self.i += 1;
                    return Some(JVal::Object(members));
                }
                b',' => {
                    self.i += 1;
                    self.ws()?;
                    // A trailing comma.
                    if self.peek()? == b'}' {
                        self.i += 1;
                        return Some(JVal::Object(members));
                    }
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<JVal> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        let mut items = Vec::new();
        self.ws()?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(JVal::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.ws()?;
            match self.peek()? {
                b']' => {
                    self.i += 1;
                    return Some(JVal::Array(items));
                }
                b',' => {
                    self.i += 1;
                    self.ws()?;
                    if self.peek()? == b']' {
                        self.i += 1;
                        return Some(JVal::Array(items));
                    }
                }
                _ => return None,
            }
        }
    }

    /// A string's text after its opening quote `q`, up to the same quote.
    fn string(&mut self, q: u8) -> Option<String> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            if c == q {
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let e = self.peek()?;
            self.i += 1;
            match e {
                b'"' | b'\\' | b'/' => out.push(e),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let hi = self.hex4()?;
                    let ch = if (0xd800..0xdc00).contains(&hi) {
                        // A high surrogate: its low half should follow.
                        if self.b.get(self.i..self.i + 2) == Some(b"\\u") {
                            self.i += 2;
                            let lo = self.hex4()?;
                            if (0xdc00..0xe000).contains(&lo) {
                                char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
                            } else {
                                let mut b = [0u8; 4];
                                out.extend_from_slice('\u{fffd}'.encode_utf8(&mut b).as_bytes());
                                char::from_u32(lo)
                            }
                        } else {
                            None
                        }
                    } else {
                        char::from_u32(hi)
                    };
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.unwrap_or('\u{fffd}').encode_utf8(&mut b).as_bytes());
                }
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.b.get(self.i..self.i + 4)?;
        let s = std::str::from_utf8(h).ok()?;
        let v = u32::from_str_radix(s, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    /// A number: its characters (json-c's `0-9 . + - e E`), an integer
    /// saturating at the 64-bit limits, or a double kept as written.
    fn number(&mut self) -> Option<JVal> {
        let start = self.i;
        if self.peek() == Some(b'-') && matches!(self.b.get(self.i + 1), Some(b'i' | b'I')) {
            self.i += 1;
            return self
                .word("infinity")
                .then(|| JVal::Double("-Infinity".into()));
        }
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'.' | b'+' | b'-' | b'e' | b'E')
        ) {
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        let is_double = t.contains(['.', 'e', 'E']);
        if !is_double {
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            if t.starts_with('-') {
                return Some(JVal::Int(t.parse::<i64>().unwrap_or(i64::MIN)));
            }
            let u = t.parse::<u64>().unwrap_or(u64::MAX);
            return Some(match i64::try_from(u) {
                Ok(i) => JVal::Int(i),
                Err(_) => JVal::UInt(u),
            });
        }
        if valid_double(t) {
            Some(JVal::Double(t.to_string()))
        } else {
            None
        }
    }
}

/// Kamailio's `{json.parse,path}`: the value at `path` in the JSON text
/// (`a.b[2].c`: members by name, `[n]` an element of an array; `escape`
/// in a name stands for a dot), as text; `None` when the text is not
/// JSON or nothing is there. A name followed by `[n]` whose value is not
/// an array stays on that value, as Kamailio does.
pub fn path(json: &str, path: &str, escape: char) -> Option<String> {
    let root = parse(json)?;
    let mut cur = &root;
    for tok in until_nul(path).split('.').filter(|t| !t.is_empty()) {
        let tok = tok.replace(escape, ".");
        // sscanf("%[^[][%[^]]]"): a name, then maybe `[index]`.
        let (name, rest) = tok.split_at(tok.find('[').unwrap_or(tok.len()));
        if name.is_empty() {
            return None;
        }
        cur = cur.get(name).filter(|v| !v.is_null())?;
        let idx = rest.get(1..).map(|r| &r[..r.find(']').unwrap_or(r.len())]);
        if let (Some(i), JVal::Array(_)) = (idx.filter(|i| !i.is_empty()), cur) {
            cur = cur.at(crate::text::atoi(i)).filter(|v| !v.is_null())?;
        }
    }
    Some(cur.get_string())
}

/// Whether `strtod` reads all of `t`: `-?digits[.digits][e[+-]digits]`,
/// digits on at least one side of the point.
fn valid_double(t: &str) -> bool {
    let b = t.strip_prefix('-').unwrap_or(t).as_bytes();
    let mut i = 0;
    let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int;
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac;
    }
    if int + frac == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Option<String> {
        parse(s).map(|v| v.to_json_string())
    }

    #[test]
    fn writes_as_json_c_does() {
        assert_eq!(
            w(r#"{"a":1,"b":[1,2.50,"x/y"],"c":{},"d":[],"e":null,"f":true}"#).as_deref(),
            Some(
                r#"{ "a": 1, "b": [ 1, 2.50, "x\/y" ], "c": { }, "d": [ ], "e": null, "f": true }"#
            )
        );
        assert_eq!(
            w("\"a\\u0001\\n\\u00e9\"").as_deref(),
            Some("\"a\\u0001\\né\"")
        );
    }

    #[test]
    fn reads_leniently() {
        assert_eq!(w("{'foo':'bar'}").as_deref(), Some(r#"{ "foo": "bar" }"#));
        assert_eq!(w("[1,2,] trailing").as_deref(), Some("[ 1, 2 ]"));
        assert_eq!(
            w("/* c */ {\"a\": TRUE, // x\n }").as_deref(),
            Some(r#"{ "a": true }"#)
        );
        assert_eq!(
            w("[NaN, -Infinity, 1e5]").as_deref(),
            Some("[ NaN, -Infinity, 1e5 ]")
        );
        assert_eq!(
            w(r#"{"a":1,"a":2,"b":3}"#).as_deref(),
            Some(r#"{ "a": 2, "b": 3 }"#)
        );
        assert_eq!(
            w("99999999999999999999").as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(
            w("-99999999999999999999").as_deref(),
            Some("-9223372036854775808")
        );
    }

    #[test]
    fn refuses_what_json_c_refuses() {
        for bad in [
            "",
            "  ",
            "{",
            "{a:1}",
            "[1 2]",
            "\"abc",
            "tru",
            "1e",
            "{\"a\" 1}",
            "\"\\x\"",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let deep = "[".repeat(33) + &"]".repeat(33);
        assert_eq!(parse(&deep), None);
        let ok = "[".repeat(32) + &"]".repeat(32);
        assert!(parse(&ok).is_some());
    }

    #[test]
    fn paths_as_kamailio_reads_them() {
        let j = r#"{"a":{"b":[10,{"c":"x"}]},"d.e":5,"s":"t"}"#;
        assert_eq!(path(j, "a.b[1].c", '%').as_deref(), Some("x"));
        assert_eq!(path(j, "a.b[0]", '%').as_deref(), Some("10"));
        assert_eq!(
            path(j, "a.b", '%').as_deref(),
            Some("[ 10, { \"c\": \"x\" } ]")
        );
        assert_eq!(path(j, "d%e", '%').as_deref(), Some("5"));
        assert_eq!(path(j, "..s..", '%').as_deref(), Some("t"));
        assert_eq!(path(j, "s[3]", '%').as_deref(), Some("t"));
        assert_eq!(path(j, "a.b[7]", '%'), None);
        assert_eq!(path(j, "zz", '%'), None);
        assert_eq!(path("nope", "s", '%'), None);
        assert_eq!(
            path(j, "", '%').as_deref(),
            Some(parse(j).unwrap().to_json_string().as_str())
        );
    }

    #[test]
    fn strings_read_and_get() {
        let v = parse(r#"{"s":"a\"b","n":5,"o":{"x":[1]}}"#).unwrap();
        assert_eq!(v.get("s").unwrap().get_string(), "a\"b");
        assert_eq!(v.get("n").unwrap().get_string(), "5");
        assert_eq!(v.get("o").unwrap().get_string(), r#"{ "x": [ 1 ] }"#);
        assert_eq!(
            v.get("o").unwrap().get("x").unwrap().at(0),
            Some(&JVal::Int(1))
        );
        assert_eq!(v.get("zz"), None);
        assert_eq!(parse("\"\\ud83d\\ude00\"").unwrap().get_string(), "😀");
    }
}
