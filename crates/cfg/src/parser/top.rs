//! Top-level items: globals, loadmodule, modparam, flags, cfg vars, route blocks.

use super::{PResult, Parser};
use crate::ast::*;
use crate::span::Span;
use crate::token::{Tk, Token};

const ROUTE_KEYWORDS: &[&str] = &[
    "request_route",
    "route",
    "failure_route",
    "onreply_route",
    "reply_route",
    "branch_route",
    "onsend_route",
    "event_route",
];

/// Global parameters that take `listen`-style socket values.
const LISTEN_LIKE: &[&str] = &["listen"];
/// Global parameters that accept several space-separated values.
const LIST_LIKE: &[&str] = &["alias", "listen"];

pub(crate) fn bool_word(s: &str) -> Option<bool> {
    match s {
        "yes" | "true" | "on" | "enable" => Some(true),
        "no" | "false" | "off" | "disable" => Some(false),
        _ => None,
    }
}

/// Edit distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let v = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Parser {
    /// Parse the whole input.
    pub fn parse_config(&mut self) -> Vec<TopItem> {
        let mut items = Vec::new();
        loop {
            if self.at_eof() || self.too_many_errors() {
                break;
            }
            if self.eat_op(";") {
                continue;
            }
            let before = self.consumed;
            match self.top_item() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {}
                Err(()) => self.sync_top(),
            }
            if self.consumed == before {
                self.bump();
            }
        }
        items
    }

    fn top_item(&mut self) -> PResult<Option<TopItem>> {
        let t = self.peek().clone();
        if t.kind != Tk::Ident {
            return self.unexpected(
                "a global parameter assignment, loadmodule, modparam or a route block",
            );
        }
        let next = self.peek_n(1).clone();
        match t.text.as_str() {
            "loadmodule" | "loadmodulex" => return self.loadmodule().map(Some),
            "loadpath" | "mpath" => return self.loadpath().map(Some),
            "modparam" | "modparamx" => return self.modparam().map(Some),
            "flags" if !next.is_op("=") => return self.flags().map(Some),
            kw if ROUTE_KEYWORDS.contains(&kw) => return self.route_block().map(Some),
            _ => {}
        }
        if next.is_op("=") {
            return self.global().map(Some);
        }
        if next.is_op(".") && self.peek_n(2).kind == Tk::Ident && self.peek_n(3).is_op("=") {
            return self.cfg_var().map(Some);
        }
        if next.is_op("{") || next.is_op("[") {
            let mut msg = format!("unknown route block type '{}'", t.text);
            if let Some(best) = ROUTE_KEYWORDS
                .iter()
                .filter(|k| distance(k, &t.text) <= 3)
                .min_by_key(|k| distance(k, &t.text))
            {
                msg.push_str(&format!(" (did you mean '{best}'?)"));
            }
            self.error(t.span, msg);
            // parse the block anyway so errors inside it are reported too
            self.bump();
            if self.at_op("[") {
                self.route_name()?;
            }
            self.block()?;
            return Ok(None);
        }
        self.unexpected_top(&t)
    }

    fn unexpected_top<T>(&mut self, t: &Token) -> PResult<T> {
        let mut msg = format!(
            "unexpected token {} at top level, expected a global parameter assignment ('name = value'), loadmodule, modparam or a route block",
            t.describe()
        );
        const KEYWORDS: &[&str] = &[
            "loadmodule",
            "loadmodulex",
            "loadpath",
            "mpath",
            "modparam",
            "modparamx",
            "flags",
        ];
        if let Some(best) = KEYWORDS
            .iter()
            .filter(|k| distance(k, &t.text) <= 2)
            .min_by_key(|k| distance(k, &t.text))
        {
            msg.push_str(&format!(" (did you mean '{best}'?)"));
        }
        self.fail(t.span, msg)
    }

    fn loadmodule(&mut self) -> PResult<TopItem> {
        let kw = self.bump();
        let expand = kw.text == "loadmodulex";
        let (path, path_span, opts) = if self.eat_op("(") {
            let (p, ps) = self.expect_string("a quoted module name")?;
            let opts = if self.eat_op(",") {
                Some(self.expect_string("a quoted options string")?.0)
            } else {
                None
            };
            self.expect_op(")")?;
            (p, ps, opts)
        } else {
            let (p, ps) = self.expect_string("a quoted module name")?;
            (p, ps, None)
        };
        let span = kw.span.to(self.last_span);
        self.eat_op(";");
        Ok(TopItem::LoadModule(LoadModule {
            path,
            opts,
            expand,
            path_span,
            span,
        }))
    }

    fn loadpath(&mut self) -> PResult<TopItem> {
        let kw = self.bump();
        self.eat_op("=");
        let (path, _) = self.expect_string("a quoted module directory")?;
        let span = kw.span.to(self.last_span);
        self.eat_op(";");
        Ok(TopItem::LoadPath(LoadPath { path, span }))
    }

    fn modparam(&mut self) -> PResult<TopItem> {
        let kw = self.bump();
        let expand = kw.text == "modparamx";
        self.expect_op("(")?;
        let (module, module_span) = self.expect_string("a quoted module name")?;
        self.expect_op(",")?;
        let (param, param_span) = self.expect_string("a quoted parameter name")?;
        self.expect_op(",")?;
        let vt = self.peek().clone();
        let value = if let Some((s, _)) = self.string_lit() {
            ModParamValue::Str(s)
        } else {
            match &vt.kind {
                Tk::Int(n) => {
                    self.bump();
                    ModParamValue::Int(*n)
                }
                Tk::Op("-") if matches!(self.peek_n(1).kind, Tk::Int(_)) => {
                    self.bump();
                    let Tk::Int(n) = self.bump().kind else {
                        return Err(());
                    };
                    ModParamValue::Int(-n)
                }
                Tk::Ident if bool_word(&vt.text).is_some() => {
                    self.bump();
                    ModParamValue::Int(i64::from(bool_word(&vt.text) == Some(true)))
                }
                _ => {
                    return self.unexpected(&format!(
                        "a string or a number as value of modparam(\"{module}\", \"{param}\")"
                    ))
                }
            }
        };
        let value_span = vt.span.to(self.last_span);
        self.expect_op(")")?;
        let span = kw.span.to(self.last_span);
        self.eat_op(";");
        Ok(TopItem::ModParam(ModParam {
            module,
            param,
            value,
            expand,
            module_span,
            param_span,
            value_span,
            span,
        }))
    }

    fn flags(&mut self) -> PResult<TopItem> {
        let kw = self.bump();
        let mut flags = Vec::new();
        loop {
            let t = self.peek().clone();
            if t.kind != Tk::Ident {
                return self.unexpected("a flag name");
            }
            self.bump();
            let mut bit = None;
            if self.eat_op(":") {
                match self.peek().kind {
                    Tk::Int(n) => {
                        self.bump();
                        bit = Some(n);
                    }
                    _ => return self.unexpected("a flag number"),
                }
            }
            flags.push(FlagDef {
                name: t.text.clone(),
                bit,
                span: t.span.to(self.last_span),
            });
            if !self.eat_op(",") {
                break;
            }
        }
        let span = kw.span.to(self.last_span);
        self.eat_op(";");
        Ok(TopItem::Flags(FlagsDecl { flags, span }))
    }

    fn cfg_var(&mut self) -> PResult<TopItem> {
        let g = self.bump();
        self.bump(); // '.'
        let n = self.bump();
        self.bump(); // '='
        let name_span = g.span.to(n.span);
        if g.text == "kemi" {
            // core parameters written with a dot: kemi.onsend_route_callback
            let (value, value_span) = self.global_value(&format!("kemi.{}", n.text))?;
            self.eat_op(";");
            return Ok(TopItem::Global(Global {
                name: format!("{}.{}", g.text, n.text),
                name_span,
                value,
                value_span,
                span: g.span.to(self.last_span),
            }));
        }
        let (value, _) = self.atom_value()?;
        let desc = if self.at_ident("desc") {
            self.bump();
            Some(self.expect_string("a quoted description after 'desc'")?.0)
        } else {
            None
        };
        let span = g.span.to(self.last_span);
        self.eat_op(";");
        Ok(TopItem::CfgVar(CfgVar {
            group: g.text,
            name: n.text,
            name_span,
            value,
            desc,
            span,
        }))
    }

    fn global(&mut self) -> PResult<TopItem> {
        let name = self.bump();
        let eq = self.bump(); // '='
        let next = self.peek().clone();
        if next.first_on_line
            && next.kind == Tk::Ident
            && (self.peek_n(1).is_op("=") || self.peek_n(1).is_op("."))
        {
            return self.fail(eq.span, format!("missing value after '{}='", name.text));
        }
        let (value, value_span) = self.global_value(&name.text)?;
        let span = name.span.to(self.last_span);
        self.eat_op(";");
        Ok(TopItem::Global(Global {
            name: name.text,
            name_span: name.span,
            value,
            value_span,
            span,
        }))
    }

    fn global_value(&mut self, name: &str) -> PResult<(GlobalValue, Span)> {
        if self.at_op("{") {
            return self.global_block();
        }
        let (first, span) = self.atom_value()?;
        let start_span = span;
        if !LIST_LIKE.contains(&name) {
            return Ok((first, span));
        }
        let listen = LISTEN_LIKE.contains(&name);
        let mut values = vec![first];
        let mut lv = ListenValue::default();
        let mut has_opts = false;
        loop {
            let t = self.peek().clone();
            if listen && t.kind == Tk::Ident {
                match t.text.as_str() {
                    "advertise" => {
                        self.bump();
                        let (v, _) = self.atom_value()?;
                        lv.advertise = Some(value_text(v));
                        has_opts = true;
                        continue;
                    }
                    "name" | "agname" => {
                        self.bump();
                        let (s, _) =
                            self.expect_string(&format!("a quoted string after '{}'", t.text))?;
                        if t.text == "name" {
                            lv.name = Some(s);
                        } else {
                            lv.agname = Some(s);
                        }
                        has_opts = true;
                        continue;
                    }
                    "virtual" => {
                        self.bump();
                        lv.virtual_ = true;
                        has_opts = true;
                        continue;
                    }
                    _ => {}
                }
            }
            // more values only on the same line
            let starts_value = matches!(
                t.kind,
                Tk::Ident | Tk::Int(_) | Tk::Dotted | Tk::Str(_) | Tk::BadNum
            ) || t.is_op("[");
            if t.first_on_line || !starts_value || has_opts {
                break;
            }
            let (v, _) = self.atom_value()?;
            values.push(v);
        }
        let span = start_span.to(self.last_span);
        if listen {
            lv.addrs = values.into_iter().map(value_text).collect();
            return Ok((GlobalValue::Listen(lv), span));
        }
        if values.len() == 1 {
            return Ok((values.pop().unwrap_or(GlobalValue::Int(0)), span));
        }
        Ok((GlobalValue::List(values), span))
    }

    /// `{ name = value; ... }`
    fn global_block(&mut self) -> PResult<(GlobalValue, Span)> {
        let open = self.bump();
        let mut entries = Vec::new();
        loop {
            if self.eat_op("}") {
                break;
            }
            if self.eat_op(";") {
                continue;
            }
            let t = self.peek().clone();
            if t.kind != Tk::Ident || !self.peek_n(1).is_op("=") {
                return self.unexpected("'name = value' or '}'");
            }
            self.bump();
            self.bump();
            let (value, value_span) = self.atom_value()?;
            entries.push(Global {
                name: t.text.clone(),
                name_span: t.span,
                value,
                value_span,
                span: t.span.to(self.last_span),
            });
        }
        Ok((GlobalValue::Block(entries), open.span.to(self.last_span)))
    }

    /// A single value: number, string(s), boolean, word or joined address.
    fn atom_value(&mut self) -> PResult<(GlobalValue, Span)> {
        if let Some((s, sp)) = self.string_lit() {
            return Ok((GlobalValue::Str(s), sp));
        }
        let t = self.peek().clone();
        match &t.kind {
            Tk::Op("-") if matches!(self.peek_n(1).kind, Tk::Int(_)) => {
                self.bump();
                let n = self.bump();
                let Tk::Int(v) = n.kind else { return Err(()) };
                Ok((GlobalValue::Int(-v), t.span.to(n.span)))
            }
            Tk::Ident | Tk::Int(_) | Tk::Dotted | Tk::BadNum | Tk::Op("[" | "*") => {
                self.bump();
                let (text, span, n) = self.join_adjacent(&t);
                if n == 1 {
                    match &t.kind {
                        Tk::Int(v) => return Ok((GlobalValue::Int(*v), span)),
                        Tk::Ident => {
                            if let Some(b) = bool_word(&t.text) {
                                return Ok((GlobalValue::Bool(b), span));
                            }
                        }
                        Tk::BadNum => {
                            return self.fail(t.span, format!("invalid number '{}'", t.text))
                        }
                        _ => {}
                    }
                }
                Ok((GlobalValue::Word(text), span))
            }
            _ => self.unexpected("a value (number, string, yes/no or address)"),
        }
    }

    fn route_name(&mut self) -> PResult<(String, Span)> {
        let open = self.expect_op("[")?;
        let mut name = String::new();
        let mut span: Option<Span> = None;
        loop {
            let t = self.peek().clone();
            match &t.kind {
                Tk::Op("]") => break,
                Tk::Eof | Tk::Op("{" | "}" | ";") => return self.unexpected("']'"),
                Tk::Str(s) => name.push_str(s),
                _ => name.push_str(&t.text),
            }
            self.bump();
            span = Some(span.map_or(t.span, |s| s.to(t.span)));
        }
        self.bump();
        match span {
            Some(sp) if !name.is_empty() => Ok((name, sp)),
            _ => self.fail(open.span, "empty route name '[]'"),
        }
    }

    fn route_block(&mut self) -> PResult<TopItem> {
        let kw = self.bump();
        let (name, name_span) = if self.at_op("[") {
            let (n, s) = self.route_name()?;
            (Some(n), Some(s))
        } else {
            (None, None)
        };
        let main = name.as_deref().is_none_or(|n| n == "0");
        let kind = match kw.text.as_str() {
            "request_route" => RouteKind::Request,
            "route" if main => RouteKind::Request,
            "route" => RouteKind::Sub,
            "failure_route" => RouteKind::Failure,
            "onreply_route" if main => RouteKind::Reply,
            "onreply_route" => RouteKind::OnReply,
            "reply_route" => RouteKind::Reply,
            "branch_route" => RouteKind::Branch,
            "onsend_route" => RouteKind::OnSend,
            _ => RouteKind::Event,
        };
        if matches!(
            kw.text.as_str(),
            "request_route" | "reply_route" | "onsend_route"
        ) && !main
        {
            let sp = name_span.unwrap_or(kw.span);
            self.error(sp, format!("'{}' does not take a name", kw.text));
        }
        if kind == RouteKind::Event && name.is_none() {
            self.error(
                kw.span,
                "event_route requires a name, e.g. event_route[group:event]",
            );
        }
        let (name, name_span) = if matches!(kind, RouteKind::Request | RouteKind::Reply) {
            (None, None)
        } else {
            (name, name_span)
        };
        if !self.at_op("{") {
            return self.unexpected(&format!("'{{' to start the {} block", kw.text));
        }
        let body = self.block()?;
        let span = kw.span.to(self.last_span);
        Ok(TopItem::Route(RouteBlock {
            kind,
            keyword: kw.text,
            name,
            name_span,
            body,
            span,
        }))
    }
}

/// Text of a value used as an address (`listen`, `advertise`).
fn value_text(v: GlobalValue) -> String {
    match v {
        GlobalValue::Int(n) => n.to_string(),
        GlobalValue::Bool(b) => b.to_string(),
        GlobalValue::Str(s) | GlobalValue::Word(s) => s,
        other => format!("{other:?}"),
    }
}
