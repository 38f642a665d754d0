//! Tokens shared by the lexer, the preprocessor and the parser.

use crate::span::Span;

/// Kind of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tk {
    /// Identifier `[A-Za-z_][A-Za-z0-9_]*` (keywords are identifiers too).
    Ident,
    /// Number (decimal, hex, octal or binary), already converted.
    Int(i64),
    /// String literal; the payload is the unescaped value.
    Str(String),
    /// Pseudo-variable; `text` holds its full text.
    Pv,
    /// `@select.expression`; `text` holds it without the `@`.
    Select,
    /// Dotted number such as an IPv4 address `10.0.0.1`.
    Dotted,
    /// A word starting with a digit that is not a valid number (`5e00`, `09`).
    BadNum,
    /// Operator or punctuation.
    Op(&'static str),
    /// Preprocessor directive `#!name rest-of-line`.
    Directive {
        /// Directive name, e.g. `ifdef`.
        name: String,
        /// Rest of the (continued) line.
        rest: String,
    },
    /// Placeholder for text the lexer rejected (already reported).
    Error,
    /// End of input.
    Eof,
}

/// A token with its source text and location.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Tk,
    /// Source text as written (strings include their quotes).
    pub text: String,
    pub span: Span,
    /// Whitespace or a comment precedes the token.
    pub space_before: bool,
    /// First token on its source line.
    pub first_on_line: bool,
}

impl Token {
    pub fn is_op(&self, op: &str) -> bool {
        matches!(self.kind, Tk::Op(o) if o == op)
    }

    pub fn is_ident(&self, name: &str) -> bool {
        self.kind == Tk::Ident && self.text == name
    }

    /// Short description used in error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Tk::Eof => "end of file".to_string(),
            Tk::Str(_) => format!("string {}", truncate(&self.text)),
            _ => format!("'{}'", truncate(&self.text)),
        }
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        let t: String = s.chars().take(40).collect();
        format!("{t}...")
    } else {
        s.to_string()
    }
}
