//! Expressions, with the precedence table of Kamailio's `cfg.y`.

use super::top::bool_word;
use super::{PResult, Parser};
use crate::ast::*;
use crate::token::{Tk, Token};

/// Binary operator for a token, if it is one.
fn binary_op(t: &Token) -> Option<BinaryOp> {
    use BinaryOp::*;
    Some(match &t.kind {
        Tk::Op(o) => match *o {
            "||" => Or,
            "&&" => And,
            "|" => BitOr,
            "&" => BitAnd,
            "^" => BitXor,
            "<<" => Shl,
            ">>" => Shr,
            "==" => Eq,
            "!=" => Ne,
            "=~" => Match,
            ">" => Gt,
            "<" => Lt,
            ">=" => Ge,
            "<=" => Le,
            "+" => Add,
            "-" => Sub,
            "*" => Mul,
            "/" => Div,
            _ => return None,
        },
        Tk::Ident => match t.text.as_str() {
            "or" => Or,
            "and" => And,
            "eq" => StrEq,
            "ne" => StrNe,
            "ieq" => IntEq,
            "ine" => IntNe,
            "mod" => Mod,
            _ => return None,
        },
        _ => return None,
    })
}

fn is_comparison(t: &Token) -> bool {
    binary_op(t).is_some_and(BinaryOp::is_comparison)
}

impl Parser {
    /// Parse an expression.
    pub(crate) fn expr(&mut self) -> PResult<Expr> {
        let span = self.peek().span;
        self.enter(span)?;
        let r = self.binary(2);
        self.leave();
        r
    }

    /// Precedence climbing; all binary operators are left-associative.
    fn binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let t = self.peek().clone();
            let Some(op) = binary_op(&t) else { break };
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.bump();
            let rhs = self.binary(prec + 1)?;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    /// Prefix operators: `!`, `not`, `-`, `~`, `defined`, casts.
    fn unary(&mut self) -> PResult<Expr> {
        let t = self.peek().clone();
        let op = match &t.kind {
            Tk::Op("!") => Some(UnaryOp::Not),
            Tk::Op("-") => Some(UnaryOp::Neg),
            Tk::Op("~") => Some(UnaryOp::BitNot),
            Tk::Ident if t.text == "not" => Some(UnaryOp::Not),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let e = self.nested_unary(t.span)?;
            let span = t.span.to(e.span);
            // fold negative literals
            if let (UnaryOp::Neg, ExprKind::Int(n)) = (op, &e.kind) {
                return Ok(Expr {
                    kind: ExprKind::Int(n.wrapping_neg()),
                    span,
                });
            }
            return Ok(Expr {
                kind: ExprKind::Unary(op, Box::new(e)),
                span,
            });
        }
        if t.is_ident("defined") {
            self.bump();
            let e = self.nested_unary(t.span)?;
            let span = t.span.to(e.span);
            return Ok(Expr {
                kind: ExprKind::Defined(Box::new(e)),
                span,
            });
        }
        if t.is_op("(") && self.peek_n(2).is_op(")") {
            let inner = self.peek_n(1).clone();
            let cast = match (&inner.kind, inner.text.as_str()) {
                (Tk::Ident, "int") => Some(CastKind::Int),
                (Tk::Ident, "str") => Some(CastKind::Str),
                _ => None,
            };
            if let Some(c) = cast {
                self.bump();
                self.bump();
                self.bump();
                let e = self.nested_unary(t.span)?;
                let span = t.span.to(e.span);
                return Ok(Expr {
                    kind: ExprKind::Cast(c, Box::new(e)),
                    span,
                });
            }
        }
        self.primary()
    }

    fn nested_unary(&mut self, span: crate::span::Span) -> PResult<Expr> {
        self.enter(span)?;
        let r = self.unary();
        self.leave();
        r
    }

    fn primary(&mut self) -> PResult<Expr> {
        if let Some((s, span)) = self.string_lit() {
            return Ok(Expr {
                kind: ExprKind::Str(s),
                span,
            });
        }
        let t = self.peek().clone();
        let kind = match &t.kind {
            Tk::Int(n) => {
                self.bump();
                ExprKind::Int(*n)
            }
            Tk::Pv => {
                self.bump();
                if t.text == "$null" {
                    ExprKind::Null
                } else {
                    ExprKind::Pv(self.pv_ref(&t.text, t.span)?)
                }
            }
            Tk::Select => {
                self.bump();
                ExprKind::Select(t.text.trim_start_matches('@').to_string())
            }
            Tk::BadNum => {
                self.bump();
                return self.fail(t.span, format!("invalid number '{}'", t.text));
            }
            Tk::Dotted => {
                self.bump();
                // addr/mask
                let slash = self.peek().clone();
                if slash.is_op("/") && !slash.space_before {
                    if let Tk::Int(m) = self.peek_n(1).kind {
                        if !self.peek_n(1).space_before {
                            self.bump();
                            let mt = self.bump();
                            return Ok(Expr {
                                kind: ExprKind::Net {
                                    addr: t.text.clone(),
                                    mask: m,
                                },
                                span: t.span.to(mt.span),
                            });
                        }
                    }
                }
                let (text, span, _) = self.join_adjacent(&t);
                return Ok(Expr {
                    kind: ExprKind::Word(text),
                    span,
                });
            }
            Tk::Op("(") => {
                self.bump();
                let e = self.expr()?;
                self.expect_op(")")?;
                return Ok(Expr {
                    kind: e.kind,
                    span: t.span.to(self.last_span),
                });
            }
            Tk::Ident => return self.ident_expr(t),
            _ => return self.unexpected("an expression"),
        };
        Ok(Expr { kind, span: t.span })
    }

    fn ident_expr(&mut self, t: Token) -> PResult<Expr> {
        self.bump();
        let next = self.peek().clone();
        if next.is_op("(") {
            match t.text.as_str() {
                "strlen" | "strempty" => {
                    self.bump();
                    let e = self.expr()?;
                    self.expect_op(")")?;
                    let b = Box::new(e);
                    let kind = if t.text == "strlen" {
                        ExprKind::Strlen(b)
                    } else {
                        ExprKind::Strempty(b)
                    };
                    return Ok(Expr {
                        kind,
                        span: t.span.to(self.last_span),
                    });
                }
                _ => return self.call(t),
            }
        }
        // msg:len
        if t.text == "msg"
            && next.is_op(":")
            && !next.space_before
            && self.peek_n(1).is_ident("len")
        {
            self.bump();
            let l = self.bump();
            return Ok(Expr {
                kind: ExprKind::CoreVar(CoreVar::MsgLen),
                span: t.span.to(l.span),
            });
        }
        if let Some(cv) = CoreVar::from_keyword(&t.text) {
            if is_comparison(&next) {
                return Ok(Expr {
                    kind: ExprKind::CoreVar(cv),
                    span: t.span,
                });
            }
        }
        if t.text == "myself" {
            return Ok(Expr {
                kind: ExprKind::Myself,
                span: t.span,
            });
        }
        if let Some(b) = bool_word(&t.text) {
            return Ok(Expr {
                kind: ExprKind::Bool(b),
                span: t.span,
            });
        }
        // udp:1.2.3.4:5060, sip.example.com
        let (text, span, n) = self.join_adjacent(&t);
        let kind = if n == 1 {
            ExprKind::Ident(text)
        } else {
            ExprKind::Word(text)
        };
        Ok(Expr { kind, span })
    }

    /// `name(args...)`; the name token has been consumed and `(` is next.
    fn call(&mut self, name: Token) -> PResult<Expr> {
        self.bump(); // '('
        let mut args = Vec::new();
        if !self.at_op(")") {
            loop {
                args.push(self.expr()?);
                if self.eat_op(",") {
                    continue;
                }
                if self.at_op(")") {
                    break;
                }
                return self.unexpected(&format!("',' or ')' in the arguments of '{}'", name.text));
            }
        }
        self.bump(); // ')'
        Ok(Expr {
            kind: ExprKind::Call(Call {
                name: name.text.clone(),
                name_span: name.span,
                args,
                parens: true,
            }),
            span: name.span.to(self.last_span),
        })
    }
}
