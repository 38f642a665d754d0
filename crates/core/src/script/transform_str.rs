//! The string transformations beyond the basic ones: digests, escapes,
//! URL encoding, prefixes, the core hash, time formatting — each as
//! Kamailio 5.6 computes it (checked by `kamailio_parity_transformations`).

use sr_sdk::Value;

/// Which escaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Esc {
    /// `s.escape.common`: backslashes before `'`, `"`, `\` and NUL.
    Common,
    /// `s.escape.user`: `%XX` for what a SIP URI's user may not hold.
    User,
    /// `s.escape.param`: `%XX` for what a SIP URI parameter may not hold.
    Param,
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `s.sha256`, `s.sha384`, `s.sha512`: the digest in lower-case hex.
pub fn sha(bits: u16, s: &str) -> String {
    use sha2::Digest;
    match bits {
        256 => hex_lower(&sha2::Sha256::digest(s.as_bytes())),
        384 => hex_lower(&sha2::Sha384::digest(s.as_bytes())),
        _ => hex_lower(&sha2::Sha512::digest(s.as_bytes())),
    }
}

/// `s.encode.base64t`: base64 without the `=` padding.
pub fn b64t_enc(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(s)
}

/// `s.decode.base64t`: base64 with or without padding; `None` when it is
/// not base64.
pub fn b64t_dec(s: &str) -> Option<String> {
    use base64::Engine;
    let e = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    e.decode(s)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn user_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?".contains(&c)
}

fn param_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-_.!~*'()[]/:&+$".contains(&c)
}

fn percent(out: &mut String, c: u8) {
    out.push_str(&format!("%{c:02x}"));
}

/// `s.escape.*`; `None` for `s.escape.user`/`param` of a control or
/// non-ASCII character (Kamailio refuses them).
pub fn escape(kind: Esc, s: &str) -> Option<String> {
    if kind != Esc::Common && s.bytes().any(|c| !(32..=126).contains(&c)) {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 8);
    for &c in s.as_bytes() {
        match kind {
            Esc::Common => match c {
                b'\'' | b'"' | b'\\' => {
                    out.push('\\');
                    out.push(char::from(c));
                }
                0 => out.push_str("\\0"),
                _ => out.push(char::from(c)),
            },
            Esc::User if user_ok(c) => out.push(char::from(c)),
            Esc::Param if param_ok(c) => out.push(char::from(c)),
            _ => percent(&mut out, c),
        }
    }
    if kind == Esc::Common {
        // Bytes above 0x7f went through `char::from` one by one above;
        // keep the text's own characters instead.
        let mut fixed = String::with_capacity(out.len());
        for ch in s.chars() {
            match ch {
                '\'' | '"' | '\\' => {
                    fixed.push('\\');
                    fixed.push(ch);
                }
                '\0' => fixed.push_str("\\0"),
                c => fixed.push(c),
            }
        }
        return Some(fixed);
    }
    Some(out)
}

fn hexval(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

/// `%XX` decoding; `None` for a `%` not followed by two hex digits.
fn percent_decode(s: &str, plus_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = hexval(*b.get(i + 1)?)?;
                let l = hexval(*b.get(i + 2)?)?;
                out.push(h << 4 | l);
                i += 3;
            }
            b'+' if plus_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// `s.unescape.*`; `None` when the text does not decode.
pub fn unescape(kind: Esc, s: &str) -> Option<String> {
    match kind {
        Esc::Common => {
            let mut out = String::with_capacity(s.len());
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('\0'),
                    Some(n) => out.push(n),
                    None => out.push('\\'),
                }
            }
            Some(out)
        }
        _ => percent_decode(s, false),
    }
}

/// `s.escape.csv`: in double quotes, inner double quotes doubled.
pub fn escape_csv(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `s.urlencode.param`: letters, digits and `-_.~` as they are, the rest
/// `%XX`.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) {
            out.push(char::from(c));
        } else {
            percent(&mut out, c);
        }
    }
    out
}

/// `s.urldecode.param` (a `%` too near the end to be followed by two
/// digits ends the text, as in Kamailio).
pub fn urldecode(s: &str) -> Option<String> {
    let cut = match s.rfind('%') {
        Some(i) if i + 2 >= s.len() => &s[..i],
        _ => s,
    };
    percent_decode(cut, true)
}

/// `s.prefixes[,max]` and `s.prefixes.quoted[,max]`: every leading part,
/// shortest first, comma-separated.
pub fn prefixes(s: &str, max: Option<usize>, quoted: bool) -> String {
    let n = max.filter(|m| *m > 0).map_or(s.len(), |m| m.min(s.len()));
    let mut parts = Vec::with_capacity(n);
    for i in 1..=n {
        if let Some(p) = s.get(..i) {
            parts.push(if quoted {
                format!("'{p}'")
            } else {
                p.to_string()
            });
        }
    }
    parts.join(",")
}

/// `s.rmws`: without blanks and line breaks.
pub fn rmws(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
        .collect()
}

/// `s.corehash[,size]`: Kamailio's core hash, masked to a power-of-two
/// size when one is given.
pub fn corehash(s: &str, size: Option<i64>) -> Value<'static> {
    let h = sr_sdk::hash::core_hash(s.as_bytes(), None, false);
    let h = match size {
        Some(n) if n > 0 => h & (n as u32).wrapping_sub(1),
        _ => h,
    };
    Value::Int(i64::from(h))
}

/// `s.rafter,x` / `s.rbefore,x`: after / before the last `x`.
pub fn rsplit(s: &str, x: &str, after: bool) -> Option<String> {
    let i = s.rfind(x)?;
    Some(if after {
        s[i + x.len()..].to_string()
    } else {
        s[..i].to_string()
    })
}

/// `s.ftime,format`: the value as Unix seconds (unsigned; the empty text
/// is 0) through `strftime`, local time.
pub fn ftime(s: &str, fmt: &str) -> Option<String> {
    let t: u32 = if s.is_empty() { 0 } else { s.parse().ok()? };
    sr_sdk::localtime::strftime(fmt, i64::from(t), false)
}

/// `line.sw,prefix`: the first line starting with `prefix` (empty when
/// none does).
pub fn line_starting(s: &str, prefix: &str) -> String {
    s.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .find(|l| l.starts_with(prefix))
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        for kind in [Esc::Common, Esc::User, Esc::Param] {
            for s in ["a b&c=d%20e", "\"q\" 'x' \\", "caf\u{e9}", ""] {
                if let Some(e) = escape(kind, s) {
                    assert_eq!(unescape(kind, &e).as_deref(), Some(s), "{kind:?} {s}");
                }
            }
        }
        assert_eq!(
            escape(Esc::User, "a b@c/d").as_deref(),
            Some("a%20b%40c%2fd")
        );
        assert_eq!(escape(Esc::User, "caf\u{e9}"), None);
        assert_eq!(urlencode("a b/c"), "a%20b%2fc");
        assert_eq!(urldecode("a+b%2F").as_deref(), Some("a b/"));
        assert_eq!(unescape(Esc::User, "%zz"), None);
        assert_eq!(prefixes("123", None, false), "1,12,123");
        assert_eq!(prefixes("123", Some(2), true), "'1','12'");
        assert_eq!(rmws(" a\tb\r\n"), "ab");
        assert_eq!(rsplit("a;b;c", ";", true).as_deref(), Some("c"));
        assert_eq!(rsplit("a;b;c", ";", false).as_deref(), Some("a;b"));
        assert_eq!(b64t_enc("ab"), "YWI");
        assert_eq!(b64t_dec("YWI").as_deref(), Some("ab"));
        assert_eq!(escape_csv("a\"b"), "\"a\"\"b\"");
    }
}
