//! Pre-built message templates: the text of each request is cut once
//! into literal pieces and fields; sending a message appends the pieces
//! and writes the per-call fields in between, with no parsing.
//!
//! Placeholders are `[name]`. Run-constant fields (addresses, transport)
//! are replaced when the template is compiled, then `[len]` becomes the
//! body length; the rest are [`Field`]s filled per message. A line holding
//! only a line field (`[routes]`, `[auth]`) disappears when it is empty.

use std::fmt;

/// A per-message field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `[call_id]`
    CallId,
    /// `[branch]`: Via branch (with the magic cookie).
    Branch,
    /// `[from_tag]`
    FromTag,
    /// `[cseq]`: the CSeq number.
    CSeq,
    /// `[user]`: the user part (REGISTER).
    User,
    /// `[ruri]`: the Request-URI of in-dialog requests.
    RUri,
    /// `[to_tag]`: `;tag=...` of the remote party, or nothing.
    ToTag,
    /// `[routes]`: whole `Route:` lines (a line field).
    Routes,
    /// `[auth]`: a whole `Authorization:` line (a line field).
    Auth,
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "call_id" => Field::CallId,
            "branch" => Field::Branch,
            "from_tag" => Field::FromTag,
            "cseq" => Field::CSeq,
            "user" => Field::User,
            "ruri" => Field::RUri,
            "to_tag" => Field::ToTag,
            "routes" => Field::Routes,
            "auth" => Field::Auth,
            _ => return None,
        })
    }

    /// Whether the field writes whole lines (CRLF included) or nothing.
    pub fn is_lines(self) -> bool {
        matches!(self, Field::Routes | Field::Auth)
    }
}

#[derive(Debug, Clone, Copy)]
enum Seg {
    Lit(usize, usize),
    Field(Field),
}

/// A compiled template.
#[derive(Clone)]
pub struct Template {
    text: Vec<u8>,
    segs: Vec<Seg>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("text", &String::from_utf8_lossy(&self.text))
            .field("segs", &self.segs.len())
            .finish()
    }
}

impl Template {
    /// Compiles `src`: lines end in LF or CRLF (sent as CRLF); the head
    /// ends at the first empty line; `statics` are (name, value) pairs
    /// replaced now; `[len]` is the body length. The body may not hold
    /// per-message fields.
    pub fn compile(src: &str, statics: &[(&str, &str)]) -> Result<Template, String> {
        let mut s = src.replace("\r\n", "\n");
        for (name, value) in statics {
            s = s.replace(&format!("[{name}]"), value);
        }
        let (head, body) = match s.split_once("\n\n") {
            Some((h, b)) => (h.to_string(), b.to_string()),
            None => (s.trim_end_matches('\n').to_string(), String::new()),
        };
        let body = if body.is_empty() {
            body
        } else {
            let mut b = body.replace('\n', "\r\n");
            if !b.ends_with("\r\n") {
                b.push_str("\r\n");
            }
            b
        };
        if body.contains('[') && body.contains(']') && find_field(&body).is_some() {
            return Err("per-message fields are not allowed in the body".into());
        }
        let head = head.replace("[len]", &body.len().to_string());
        let mut text = String::with_capacity(head.len() + body.len() + 64);
        let mut segs = Vec::new();
        let mut lit_start = 0usize;
        for line in head.split('\n') {
            let trimmed = line.trim();
            if let Some(f) = whole_line_field(trimmed) {
                flush(&mut segs, lit_start, text.len());
                segs.push(Seg::Field(f));
                lit_start = text.len();
                continue;
            }
            let mut rest = line;
            while let Some((before, f, after)) = split_field(rest)? {
                text.push_str(before);
                flush(&mut segs, lit_start, text.len());
                segs.push(Seg::Field(f));
                lit_start = text.len();
                rest = after;
            }
            text.push_str(rest);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text.push_str(&body);
        flush(&mut segs, lit_start, text.len());
        Ok(Template {
            text: text.into_bytes(),
            segs,
        })
    }

    /// Appends the message to `out`, asking `fill` to write each field.
    pub fn render(&self, out: &mut Vec<u8>, fill: &mut dyn FnMut(Field, &mut Vec<u8>)) {
        for s in &self.segs {
            match *s {
                Seg::Lit(a, b) => out.extend_from_slice(&self.text[a..b]),
                Seg::Field(f) => fill(f, out),
            }
        }
    }
}

fn flush(segs: &mut Vec<Seg>, a: usize, b: usize) {
    if b > a {
        segs.push(Seg::Lit(a, b));
    }
}

fn whole_line_field(line: &str) -> Option<Field> {
    let name = line.strip_prefix('[')?.strip_suffix(']')?;
    Field::parse(name).filter(|f| f.is_lines())
}

fn find_field(s: &str) -> Option<Field> {
    let mut rest = s;
    while let Some(i) = rest.find('[') {
        let after = &rest[i + 1..];
        if let Some(j) = after.find(']') {
            if let Some(f) = Field::parse(&after[..j]) {
                return Some(f);
            }
        }
        rest = after;
    }
    None
}

/// Splits at the first known placeholder. Brackets that are not a field
/// name (IPv6 literals, text) stay literal; an unknown `[word]` made of
/// lower-case letters and `_` is an error, to catch typos.
fn split_field(s: &str) -> Result<Option<(&str, Field, &str)>, String> {
    let mut from = 0;
    while let Some(i) = s[from..].find('[').map(|i| i + from) {
        let Some(j) = s[i + 1..].find(']').map(|j| j + i + 1) else {
            return Ok(None);
        };
        let name = &s[i + 1..j];
        if let Some(f) = Field::parse(name) {
            if f.is_lines() {
                return Err(format!("[{name}] must stand alone on its line"));
            }
            return Ok(Some((&s[..i], f, &s[j + 1..])));
        }
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(format!("unknown template field [{name}]"));
        }
        from = i + 1;
    }
    Ok(None)
}

/// Appends a decimal number without going through `fmt`.
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    sip_msg::text::push_dec_bytes(out, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "OPTIONS sip:x@[remote] SIP/2.0\n\
Via: SIP/2.0/UDP [local];branch=[branch]\n\
[routes]\n\
Call-ID: [call_id]\n\
CSeq: [cseq] OPTIONS\n\
Content-Length: [len]\n\
\n\
v=0\n";

    fn render(t: &Template, routes: &str) -> String {
        let mut out = Vec::new();
        t.render(&mut out, &mut |f, o| match f {
            Field::Branch => o.extend_from_slice(b"z9hG4bK1"),
            Field::CallId => o.extend_from_slice(b"c1"),
            Field::CSeq => push_u64(o, 42),
            Field::Routes => o.extend_from_slice(routes.as_bytes()),
            _ => {}
        });
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn substitutes_statics_fields_and_length() {
        let t = Template::compile(
            SRC,
            &[("remote", "127.0.0.1:5060"), ("local", "127.0.0.1:7000")],
        )
        .unwrap();
        assert_eq!(
            render(&t, ""),
            "OPTIONS sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK1\r\nCall-ID: c1\r\nCSeq: 42 OPTIONS\r\nContent-Length: 5\r\n\r\nv=0\r\n"
        );
        let with = render(&t, "Route: <sip:p;lr>\r\n");
        assert!(
            with.contains("branch=z9hG4bK1\r\nRoute: <sip:p;lr>\r\nCall-ID: c1\r\n"),
            "{with}"
        );
    }

    #[test]
    fn rejects_typos_and_misplaced_line_fields() {
        assert!(Template::compile("A [cal_id] B\n\n", &[]).is_err());
        assert!(Template::compile("A [routes] B\n\n", &[]).is_err());
        assert!(Template::compile("A\n\n[call_id]", &[]).is_err());
        // IPv6 literals and other brackets are text.
        assert!(Template::compile("A sip:[::1]:5060 [X]\n\n", &[]).is_ok());
    }

    #[test]
    fn numbers() {
        let mut o = Vec::new();
        push_u64(&mut o, 0);
        o.push(b' ');
        push_u64(&mut o, 18446744073709551615);
        assert_eq!(o, b"0 18446744073709551615");
    }
}
