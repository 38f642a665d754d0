//! Statements and blocks.

use super::{PResult, Parser};
use crate::ast::*;
use crate::pv::{parse_pv, PvRef};
use crate::span::Span;
use crate::token::Tk;

impl Parser {
    /// `{ stmts }` with error recovery inside.
    pub(crate) fn block(&mut self) -> PResult<Block> {
        let open = self.expect_op("{")?;
        self.enter(open.span)?;
        let mut stmts = Vec::new();
        let res = loop {
            if self.too_many_errors() {
                break Err(());
            }
            if self.at_op("}") {
                self.bump();
                break Ok(());
            }
            if self.at_eof() {
                let msg = format!(
                    "unexpected end of file, expected '}}' to close the block opened at line {}",
                    open.span.line
                );
                let sp = self.peek().span;
                self.error(sp, msg);
                break Err(());
            }
            self.stmt_into(&mut stmts);
        };
        self.leave();
        res.map(|()| Block {
            stmts,
            span: open.span.to(self.last_span),
        })
    }

    /// Parse one statement (recovering on error) and push it.
    fn stmt_into(&mut self, out: &mut Vec<Stmt>) {
        let before = self.consumed;
        match self.stmt() {
            Ok(Some(s)) => out.push(s),
            Ok(None) => {}
            Err(()) => self.sync_stmt(),
        }
        if self.consumed == before && !self.at_op("}") {
            self.bump();
        }
    }

    /// A single statement; `None` for an empty statement `;`.
    fn stmt(&mut self) -> PResult<Option<Stmt>> {
        let t = self.peek().clone();
        let start = t.span;
        let kind = match &t.kind {
            Tk::Op(";") => {
                self.bump();
                return Ok(None);
            }
            Tk::Op("{") => StmtKind::Block(self.block()?),
            Tk::Pv => self.assign()?,
            Tk::Ident => match t.text.as_str() {
                "if" => self.if_stmt()?,
                "switch" => self.switch_stmt()?,
                "while" => {
                    self.bump();
                    let cond = self.paren_cond("while")?;
                    let body = self.body()?;
                    StmtKind::While { cond, body }
                }
                "return" | "exit" | "drop" => {
                    self.bump();
                    let empty_parens = self.at_op("(") && self.peek_n(1).is_op(")");
                    let value = if self.at_op(";") || self.at_op("}") {
                        None
                    } else if empty_parens {
                        // `exit()`, `drop()`, `return()`
                        self.bump();
                        self.bump();
                        None
                    } else {
                        Some(self.expr()?)
                    };
                    self.end_stmt()?;
                    match t.text.as_str() {
                        "return" => StmtKind::Return(value),
                        "exit" => StmtKind::Exit(value),
                        _ => StmtKind::Drop(value),
                    }
                }
                "break" => {
                    self.bump();
                    self.end_stmt()?;
                    StmtKind::Break
                }
                "else" => return self.fail(t.span, "'else' without a matching 'if'"),
                "case" | "default" if self.peek_n(1).kind != Tk::Op("(") => {
                    return self.fail(t.span, format!("'{}' outside of a switch", t.text))
                }
                _ => self.expr_stmt()?,
            },
            _ => self.expr_stmt()?,
        };
        Ok(Some(Stmt {
            kind,
            span: start.to(self.last_span),
        }))
    }

    /// A function call used as a statement (`f(...);` or a bare `f;`).
    fn expr_stmt(&mut self) -> PResult<StmtKind> {
        let e = self.expr()?;
        let e = match e.kind {
            ExprKind::Ident(name) => Expr {
                kind: ExprKind::Call(Call {
                    name,
                    name_span: e.span,
                    args: Vec::new(),
                    parens: false,
                }),
                span: e.span,
            },
            ExprKind::Call(_) => e,
            _ => {
                if !self.at_op(";") {
                    return self.unexpected("';'");
                }
                return self.fail(
                    e.span,
                    "expected a statement (function call, assignment, if, switch, while, return, exit, drop or break)",
                );
            }
        };
        self.end_stmt()?;
        Ok(StmtKind::Expr(e))
    }

    /// The `;` ending a simple statement. A missing `;` right before `}` is an error too,
    /// as in Kamailio.
    fn end_stmt(&mut self) -> PResult<()> {
        if self.eat_op(";") {
            return Ok(());
        }
        let t = self.peek().clone();
        if t.first_on_line || t.is_op("}") {
            // the `;` was most likely forgotten at the end of the previous line:
            // report it and go on parsing from here without skipping anything
            self.unexpected::<()>("';'").ok();
            return Ok(());
        }
        self.unexpected("';'")
    }

    fn assign(&mut self) -> PResult<StmtKind> {
        let pv = self.bump();
        let target = self.pv_ref(&pv.text, pv.span)?;
        let op_tok = self.peek().clone();
        let op = match &op_tok.kind {
            Tk::Op("=") => AssignOp::Assign,
            Tk::Op("+=") => AssignOp::AddAssign,
            _ => return self.unexpected(&format!("'=' or '+=' after '{}'", pv.text)),
        };
        self.bump();
        let value = self.expr()?;
        self.end_stmt()?;
        Ok(StmtKind::Assign {
            target,
            target_span: pv.span,
            op,
            value,
        })
    }

    /// Parse pseudo-variable text into a [`PvRef`], reporting syntax errors at `span`.
    pub(crate) fn pv_ref(&mut self, text: &str, span: Span) -> PResult<PvRef> {
        match parse_pv(text) {
            Ok(spec) => Ok(PvRef {
                text: text.to_string(),
                spec,
            }),
            Err(e) => self.fail(
                span,
                format!("invalid pseudo-variable '{text}': {}", e.message),
            ),
        }
    }

    /// `( expr )` after `if`/`while`/`switch`.
    fn paren_cond(&mut self, what: &str) -> PResult<Expr> {
        if !self.at_op("(") {
            return self.unexpected(&format!("'(' after '{what}'"));
        }
        self.bump();
        let e = self.expr()?;
        self.expect_op(")")?;
        Ok(e)
    }

    /// Body of if/else/while: a block or a single statement.
    fn body(&mut self) -> PResult<Block> {
        if self.at_op("{") {
            return self.block();
        }
        let span = self.peek().span;
        self.enter(span)?;
        let r = self.stmt();
        self.leave();
        let stmts: Vec<Stmt> = r?.into_iter().collect();
        Ok(Block {
            stmts,
            span: span.to(self.last_span),
        })
    }

    fn if_stmt(&mut self) -> PResult<StmtKind> {
        self.bump();
        let cond = self.paren_cond("if")?;
        let then = self.body()?;
        let otherwise = if self.at_ident("else") {
            self.bump();
            Some(self.body()?)
        } else {
            None
        };
        Ok(StmtKind::If {
            cond,
            then,
            otherwise,
        })
    }

    fn switch_stmt(&mut self) -> PResult<StmtKind> {
        self.bump();
        let subject = self.paren_cond("switch")?;
        let open = self.expect_op("{")?;
        self.enter(open.span)?;
        let r = self.switch_cases();
        self.leave();
        Ok(StmtKind::Switch { subject, cases: r? })
    }

    fn switch_cases(&mut self) -> PResult<Vec<SwitchCase>> {
        let mut cases: Vec<SwitchCase> = Vec::new();
        loop {
            if self.too_many_errors() {
                return Err(());
            }
            let t = self.peek().clone();
            if t.is_op("}") {
                self.bump();
                return Ok(cases);
            }
            if t.kind == Tk::Eof {
                return self.unexpected("'}' to close the switch");
            }
            if t.is_ident("case") || t.is_ident("default") {
                self.bump();
                let label = if t.text == "default" {
                    CaseLabel::Default
                } else {
                    match self.case_label() {
                        Ok(l) => l,
                        Err(()) => {
                            // skip to the ':' of this label and keep its statements
                            while !self.at_op(":") && !self.at_op("}") && !self.at_eof() {
                                self.bump();
                            }
                            CaseLabel::Str(String::new())
                        }
                    }
                };
                if self.expect_op(":").is_err() {
                    continue;
                }
                cases.push(SwitchCase {
                    label,
                    body: Vec::new(),
                    span: t.span.to(self.last_span),
                });
                continue;
            }
            let Some(cur) = cases.last_mut() else {
                self.unexpected::<()>("'case' or 'default'").ok();
                self.sync_stmt();
                continue;
            };
            let mut body = std::mem::take(&mut cur.body);
            self.stmt_into(&mut body);
            if let Some(cur) = cases.last_mut() {
                cur.body = body;
            }
        }
    }

    fn case_label(&mut self) -> PResult<CaseLabel> {
        if let Some((s, _)) = self.string_lit() {
            return Ok(CaseLabel::Str(s));
        }
        let t = self.peek().clone();
        match &t.kind {
            Tk::Int(n) => {
                self.bump();
                Ok(CaseLabel::Int(*n))
            }
            Tk::Op("-") if matches!(self.peek_n(1).kind, Tk::Int(_)) => {
                self.bump();
                let Tk::Int(n) = self.bump().kind else {
                    return Err(());
                };
                Ok(CaseLabel::Int(-n))
            }
            Tk::Op("/") => {
                self.bump();
                match self.string_lit() {
                    Some((s, _)) => Ok(CaseLabel::Regex(s)),
                    None => self.unexpected("a quoted regular expression after 'case /'"),
                }
            }
            _ => self.unexpected("a number, a string or /\"regex\" after 'case'"),
        }
    }
}
