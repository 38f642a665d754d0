//! Recursive-descent parser producing the [`crate::ast`] from preprocessed tokens.
//!
//! Errors are recorded in the preprocessor's error list (so they come out in
//! source order with preprocessor errors) and the parser recovers at
//! statement and block boundaries.

mod expr;
mod stmt;
mod top;

use std::collections::VecDeque;

use crate::preprocess::Preprocessor;
use crate::span::Span;
use crate::token::{Tk, Token};

/// Marker for "an error was recorded"; the caller recovers.
pub(crate) type PResult<T> = Result<T, ()>;

/// Stop after this many errors (the rest is most likely noise).
const MAX_ERRORS: usize = 100;
/// Maximum nesting of blocks and expressions.
const MAX_DEPTH: usize = 64;

pub(crate) struct Parser {
    pub pp: Preprocessor,
    look: VecDeque<Token>,
    consumed: usize,
    depth: usize,
    last_span: Span,
}

impl Parser {
    pub fn new(pp: Preprocessor) -> Self {
        Parser {
            pp,
            look: VecDeque::new(),
            consumed: 0,
            depth: 0,
            last_span: Span::default(),
        }
    }

    fn fill(&mut self, n: usize) {
        while self.look.len() <= n {
            let t = self.pp.next();
            self.look.push_back(t);
        }
    }

    fn peek(&mut self) -> &Token {
        self.peek_n(0)
    }

    fn peek_n(&mut self, n: usize) -> &Token {
        self.fill(n);
        &self.look[n]
    }

    fn bump(&mut self) -> Token {
        self.fill(0);
        let t = self.look.pop_front().unwrap_or_else(|| self.pp.next());
        if t.kind != Tk::Eof {
            self.consumed += 1;
        }
        self.last_span = t.span;
        t
    }

    fn at_op(&mut self, op: &str) -> bool {
        self.peek().is_op(op)
    }

    fn at_ident(&mut self, name: &str) -> bool {
        self.peek().is_ident(name)
    }

    fn at_eof(&mut self) -> bool {
        self.peek().kind == Tk::Eof
    }

    /// Consume `op` if it is next.
    fn eat_op(&mut self, op: &str) -> bool {
        if self.at_op(op) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn too_many_errors(&self) -> bool {
        self.pp.error_count() >= MAX_ERRORS
    }

    fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.pp.error(span, msg);
    }

    fn fail<T>(&mut self, span: Span, msg: impl Into<String>) -> PResult<T> {
        self.error(span, msg);
        Err(())
    }

    /// Report the next token as unexpected.
    fn unexpected<T>(&mut self, expected: &str) -> PResult<T> {
        let t = self.peek().clone();
        if t.kind == Tk::Error {
            // already reported by the lexer
            return Err(());
        }
        let msg = if t.kind == Tk::Eof {
            format!("unexpected end of file, expected {expected}")
        } else {
            format!("unexpected token {}, expected {expected}", t.describe())
        };
        self.fail(t.span, msg)
    }

    fn expect_op(&mut self, op: &str) -> PResult<Token> {
        if self.at_op(op) {
            Ok(self.bump())
        } else {
            self.unexpected(&format!("'{op}'"))
        }
    }

    /// One or more adjacent string literals, concatenated.
    fn string_lit(&mut self) -> Option<(String, Span)> {
        let mut out: Option<(String, Span)> = None;
        while let Tk::Str(s) = &self.peek().kind {
            let s = s.clone();
            let t = self.bump();
            match &mut out {
                Some((acc, sp)) => {
                    acc.push_str(&s);
                    *sp = sp.to(t.span);
                }
                None => out = Some((s, t.span)),
            }
        }
        out
    }

    fn expect_string(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.string_lit() {
            Some(s) => Ok(s),
            None => self.unexpected(what),
        }
    }

    /// Enter a nesting level; errors out past [`MAX_DEPTH`].
    fn enter(&mut self, span: Span) -> PResult<()> {
        if self.depth >= MAX_DEPTH {
            return self.fail(span, "nesting too deep");
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Join tokens that touch each other (no whitespace) into one word, for
    /// addresses like `udp:[::1]:5060` or host names like `sip.example.com`.
    /// The first token has already been consumed and is passed in.
    fn join_adjacent(&mut self, first: &Token) -> (String, Span, usize) {
        let mut text = first.text.clone();
        let mut span = first.span;
        let mut n = 1;
        loop {
            let t = self.peek();
            if t.space_before || t.first_on_line {
                break;
            }
            let joinable = match &t.kind {
                Tk::Ident | Tk::Int(_) | Tk::Dotted | Tk::BadNum => true,
                Tk::Op(o) => matches!(*o, ":" | "." | "[" | "]" | "*" | "-"),
                _ => false,
            };
            if !joinable {
                break;
            }
            // a trailing ':' or '.' followed by whitespace is not part of the word
            if t.is_op(":") || t.is_op(".") || t.is_op("-") {
                let nt = self.peek_n(1);
                let cont = !nt.space_before
                    && !nt.first_on_line
                    && matches!(
                        nt.kind,
                        Tk::Ident | Tk::Int(_) | Tk::Dotted | Tk::BadNum | Tk::Op("[" | ":" | "*")
                    );
                if !cont {
                    break;
                }
            }
            let t = self.bump();
            text.push_str(&t.text);
            span = span.to(t.span);
            n += 1;
        }
        (text, span, n)
    }

    /// Skip to the end of the current statement: after a `;` or a balanced `}`
    /// at this level, or before a `}` that closes the enclosing block.
    fn sync_stmt(&mut self) {
        let mut depth = 0usize;
        loop {
            let t = self.peek();
            match &t.kind {
                Tk::Eof => return,
                Tk::Op(";") if depth == 0 => {
                    self.bump();
                    return;
                }
                Tk::Op("{") => depth += 1,
                Tk::Op("}") => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                    if depth == 0 {
                        self.bump();
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Skip to something that can start a top-level item.
    fn sync_top(&mut self) {
        let mut depth = 0usize;
        let start = self.consumed;
        loop {
            let moved = self.consumed > start;
            let t = self.peek();
            match &t.kind {
                Tk::Eof => return,
                Tk::Op("{") => depth += 1,
                Tk::Op("}") => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.bump();
                        return;
                    }
                }
                Tk::Op(";") if depth == 0 => {
                    self.bump();
                    return;
                }
                Tk::Ident if depth == 0 && t.first_on_line && moved => return,
                _ => {}
            }
            self.bump();
        }
    }
}
