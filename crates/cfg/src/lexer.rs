//! Tokenizer for one source text (a file or a define value).

use std::rc::Rc;

use crate::pv::pv_extent;
use crate::span::{FileId, Span};
use crate::token::{Tk, Token};

/// Directives recognised after `#!` (or `!!`).
pub(crate) const DIRECTIVES: &[&str] = &[
    "define",
    "def",
    "trydef",
    "redefine",
    "redef",
    "undef",
    "tryundef",
    "ifdef",
    "ifndef",
    "ifexp",
    "else",
    "endif",
    "subst",
    "substdef",
    "substdefs",
    "defenv",
    "defenvs",
    "trydefenv",
    "trydefenvs",
    "defexp",
    "defexps",
    "include_file",
    "import_file",
];

const CONDITIONALS: &[&str] = &["ifdef", "ifndef", "ifexp", "else", "endif"];

/// Operators, longest first.
const OPS2: &[&str] = &["==", "!=", "=~", "+=", "&&", "||", "<<", ">>", ">=", "<="];
const OPS1: &[&str] = &[
    "=", "!", "~", "&", "|", "^", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", "{", "}", ";",
    ",", ":", ".",
];

/// Lexer error: location and message.
pub(crate) type LexError = (Span, String);

pub(crate) struct Lexer {
    file: FileId,
    src: Rc<str>,
    pos: usize,
    line: u32,
    col: u32,
    first_on_line: bool,
}

impl Lexer {
    pub fn new(file: FileId, src: Rc<str>) -> Self {
        Lexer {
            file,
            src,
            pos: 0,
            line: 1,
            col: 1,
            first_on_line: true,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.src.as_bytes()
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        self.bytes().get(self.pos + off).copied()
    }

    /// Advance one byte, keeping line/column up to date.
    fn bump(&mut self) {
        if let Some(b) = self.peek_at(0) {
            self.pos += 1;
            if b == b'\n' {
                self.line += 1;
                self.col = 1;
                self.first_on_line = true;
            } else if b & 0xC0 != 0x80 {
                self.col += 1;
            }
        }
    }

    fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    fn here(&self) -> Span {
        Span {
            file: self.file,
            line: self.line,
            col: self.col,
            start: self.pos as u32,
            end: self.pos as u32,
        }
    }

    fn skip_line(&mut self) {
        while let Some(b) = self.peek_at(0) {
            if b == b'\n' {
                break;
            }
            self.bump();
        }
    }

    fn word_at(&self, off: usize) -> &str {
        let b = self.bytes();
        let s = self.pos + off;
        let mut e = s;
        while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_') {
            e += 1;
        }
        &self.src[s..e]
    }

    /// Skip whitespace and comments. Returns `Err` for an unterminated block comment.
    fn skip_trivia(&mut self) -> Result<bool, LexError> {
        let mut skipped = false;
        loop {
            match self.peek_at(0) {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\x0b') => {
                    self.bump();
                    skipped = true;
                }
                Some(b'#') if self.peek_at(1) != Some(b'!') => {
                    self.skip_line();
                    skipped = true;
                }
                Some(b'#') => {
                    // `#!` + directive is a token; anything else (#!KAMAILIO, ...) is a comment.
                    let w = self.word_at(2);
                    if DIRECTIVES.contains(&w) {
                        return Ok(skipped);
                    }
                    self.skip_line();
                    skipped = true;
                }
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    self.skip_line();
                    skipped = true;
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let start = self.here();
                    self.bump_n(2);
                    let mut depth = 1;
                    loop {
                        match (self.peek_at(0), self.peek_at(1)) {
                            (None, _) => {
                                return Err((start, "unterminated comment '/*'".to_string()))
                            }
                            (Some(b'*'), Some(b'/')) => {
                                self.bump_n(2);
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            (Some(b'/'), Some(b'*')) => {
                                self.bump_n(2);
                                depth += 1;
                            }
                            _ => self.bump(),
                        }
                    }
                    skipped = true;
                }
                _ => return Ok(skipped),
            }
        }
    }

    fn make(&self, kind: Tk, start: Span, space: bool, first: bool) -> Token {
        let end = self.pos;
        Token {
            kind,
            text: self.src[start.start as usize..end].to_string(),
            span: Span {
                end: end as u32,
                ..start
            },
            space_before: space,
            first_on_line: first,
        }
    }

    /// Next token in normal (active) mode.
    pub fn next_token(&mut self) -> Result<Token, LexError> {
        let space = self.skip_trivia()?;
        let first = self.first_on_line;
        self.first_on_line = false;
        let start = self.here();
        let Some(c) = self.peek_at(0) else {
            return Ok(self.make(Tk::Eof, start, space, first));
        };
        // `!!` directives
        if (c == b'#' || (c == b'!' && self.peek_at(1) == Some(b'!')))
            && DIRECTIVES.contains(&self.word_at(2))
        {
            return Ok(self.directive(start, space, first));
        }
        match c {
            b'"' | b'\'' => self.string(start, space, first),
            b'$' => {
                let end = pv_extent(self.bytes(), self.pos).map_err(|e| {
                    let mut sp = start;
                    sp.end = sp.start + 1;
                    (sp, e.message)
                });
                match end {
                    Ok(end) => {
                        let n = end - self.pos;
                        self.bump_n(n);
                        Ok(self.make(Tk::Pv, start, space, first))
                    }
                    Err(e) => {
                        // skip the rest of the would-be name so we make progress
                        self.bump();
                        while matches!(self.peek_at(0), Some(b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'(')
                        {
                            self.bump();
                        }
                        Err(e)
                    }
                }
            }
            b'@' if matches!(self.peek_at(1), Some(b) if b.is_ascii_alphabetic() || b == b'_') => {
                self.bump();
                while let Some(b) = self.peek_at(0) {
                    if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
                        self.bump();
                    } else if b == b'[' {
                        // index like [1] or ["name"]
                        let save = self.pos;
                        let rest = &self.bytes()[save..];
                        match rest.iter().position(|&x| x == b']' || x == b'\n') {
                            Some(p) if rest[p] == b']' => self.bump_n(p + 1),
                            _ => break,
                        }
                    } else {
                        break;
                    }
                }
                let mut t = self.make(Tk::Select, start, space, first);
                t.kind = Tk::Select;
                Ok(t)
            }
            b'0'..=b'9' => Ok(self.number(start, space, first)),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                while matches!(self.peek_at(0), Some(b) if b.is_ascii_alphanumeric() || b == b'_') {
                    self.bump();
                }
                Ok(self.make(Tk::Ident, start, space, first))
            }
            _ => {
                let rest = &self.src[self.pos..];
                for op in OPS2.iter().chain(OPS1.iter()) {
                    if rest.starts_with(op) {
                        self.bump_n(op.len());
                        return Ok(self.make(Tk::Op(op), start, space, first));
                    }
                }
                let ch = rest.chars().next().unwrap_or('?');
                self.bump_n(ch.len_utf8());
                let mut sp = start;
                sp.end = self.pos as u32;
                Err((sp, format!("unexpected character '{}'", ch.escape_debug())))
            }
        }
    }

    fn directive(&mut self, start: Span, space: bool, first: bool) -> Token {
        self.bump_n(2);
        let name = self.word_at(0).to_string();
        self.bump_n(name.len());
        let mut rest = String::new();
        loop {
            match self.peek_at(0) {
                None | Some(b'\n') => break,
                Some(b'\\') if self.peek_at(1) == Some(b'\n') => {
                    self.bump_n(2);
                    rest.push('\n');
                }
                Some(b'\\') if self.peek_at(1) == Some(b'\r') && self.peek_at(2) == Some(b'\n') => {
                    self.bump_n(3);
                    rest.push('\n');
                }
                Some(_) => {
                    let ch = self.src[self.pos..].chars().next().unwrap_or(' ');
                    rest.push(ch);
                    self.bump_n(ch.len_utf8());
                }
            }
        }
        let mut t = self.make(Tk::Ident, start, space, first);
        t.text = format!("#!{name}");
        t.span.end = t.span.start + 2 + name.len() as u32;
        t.kind = Tk::Directive {
            name,
            rest: rest.trim_end_matches('\r').to_string(),
        };
        t
    }

    /// Skip text inside a false conditional: only `#!ifdef/#!ifndef/#!ifexp/#!else/#!endif`
    /// are recognised (anywhere, like Kamailio's lexer).
    pub fn skip_to_conditional(&mut self) -> Token {
        self.first_on_line = false;
        loop {
            let Some(c) = self.peek_at(0) else {
                let s = self.here();
                return self.make(Tk::Eof, s, true, true);
            };
            if (c == b'#' || c == b'!') && self.peek_at(1) == Some(b'!') {
                let w = self.word_at(2);
                if CONDITIONALS.contains(&w) {
                    let s = self.here();
                    return self.directive(s, true, true);
                }
            }
            self.bump();
        }
    }

    fn string(&mut self, start: Span, space: bool, first: bool) -> Result<Token, LexError> {
        let q = self.peek_at(0).unwrap_or(b'"');
        self.bump();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek_at(0) else {
                let mut sp = start;
                sp.end = sp.start + 1;
                return Err((sp, "unterminated string".to_string()));
            };
            if c == q {
                self.bump();
                break;
            }
            if c == b'\\' {
                let Some(n) = self.peek_at(1) else {
                    self.bump();
                    continue;
                };
                self.bump_n(2);
                match n {
                    b'n' => buf.push(b'\n'),
                    b'r' => buf.push(b'\r'),
                    b't' => buf.push(b'\t'),
                    b'a' => buf.push(7),
                    b'\\' => buf.push(b'\\'),
                    b'"' => buf.push(b'"'),
                    b'\'' => buf.push(b'\''),
                    b'\n' => {} // line continuation
                    other => {
                        buf.push(b'\\');
                        buf.push(other);
                    }
                }
                continue;
            }
            buf.push(c);
            self.bump();
        }
        let value = String::from_utf8_lossy(&buf).into_owned();
        Ok(self.make(Tk::Str(value), start, space, first))
    }

    fn number(&mut self, start: Span, space: bool, first: bool) -> Token {
        while matches!(self.peek_at(0), Some(b) if b.is_ascii_alphanumeric() || b == b'_') {
            self.bump();
        }
        // dotted form: 10.0.0.1
        let mut dotted = false;
        while self.peek_at(0) == Some(b'.')
            && matches!(self.peek_at(1), Some(b) if b.is_ascii_digit())
        {
            dotted = true;
            self.bump();
            while matches!(self.peek_at(0), Some(b) if b.is_ascii_alphanumeric()) {
                self.bump();
            }
        }
        let text = &self.src[start.start as usize..self.pos];
        let kind = if dotted {
            Tk::Dotted
        } else {
            match parse_number(text) {
                Some(n) => Tk::Int(n),
                None => Tk::BadNum,
            }
        };
        self.make(kind, start, space, first)
    }
}

/// Parse decimal, `0x` hex, `0` octal and `…b` binary numbers.
pub(crate) fn parse_number(text: &str) -> Option<i64> {
    if let Some(h) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    if let Some(b) = text.strip_suffix('b') {
        if !b.is_empty() && b.bytes().all(|c| c == b'0' || c == b'1') {
            return i64::from_str_radix(b, 2).ok();
        }
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return i64::from_str_radix(&text[1..], 8).ok();
    }
    if text.bytes().all(|c| c.is_ascii_digit()) {
        return text.parse().ok();
    }
    None
}

/// Tokenize a whole text (used for define values and directive arguments).
pub(crate) fn tokenize(file: FileId, text: &str) -> Result<Vec<Token>, LexError> {
    let mut lx = Lexer::new(file, Rc::from(text));
    let mut out = Vec::new();
    loop {
        let t = lx.next_token()?;
        if t.kind == Tk::Eof {
            return Ok(out);
        }
        out.push(t);
        if out.len() > 100_000 {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tk> {
        tokenize(FileId(0), s)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn numbers() {
        assert_eq!(
            kinds("12 0x1F 017 101b 0"),
            vec![
                Tk::Int(12),
                Tk::Int(31),
                Tk::Int(15),
                Tk::Int(5),
                Tk::Int(0)
            ]
        );
        assert_eq!(kinds("10.0.0.1"), vec![Tk::Dotted]);
        assert_eq!(kinds("5e00 09"), vec![Tk::BadNum, Tk::BadNum]);
    }

    #[test]
    fn strings_and_comments() {
        let k = kinds("\"a\\n\\\"b\\+\" 'x' # c\n// d\n/* e /* f */ */ y");
        assert_eq!(
            k,
            vec![Tk::Str("a\n\"b\\+".into()), Tk::Str("x".into()), Tk::Ident]
        );
        assert!(tokenize(FileId(0), "\"abc").is_err());
        assert!(tokenize(FileId(0), "/* abc").is_err());
    }

    #[test]
    fn pvs_and_ops() {
        let toks = tokenize(
            FileId(0),
            "$(avp(x)[1]{s.len})==$sht(a=>$si) =~ += @ruri.user",
        )
        .unwrap();
        assert_eq!(toks[0].text, "$(avp(x)[1]{s.len})");
        assert_eq!(toks[1].kind, Tk::Op("=="));
        assert_eq!(toks[2].text, "$sht(a=>$si)");
        assert_eq!(toks[3].kind, Tk::Op("=~"));
        assert_eq!(toks[4].kind, Tk::Op("+="));
        assert_eq!(toks[5].kind, Tk::Select);
    }

    #[test]
    fn positions() {
        let toks = tokenize(FileId(0), "a\n  \"é\" c").unwrap();
        assert_eq!((toks[1].span.line, toks[1].span.col), (2, 3));
        assert_eq!((toks[2].span.line, toks[2].span.col), (2, 7));
        assert!(toks[1].first_on_line && !toks[2].first_on_line);
    }
}
