//! The compile step: binds every call to a module export by name, arity
//! and route type, runs fixups, compiles pseudo-variables, format strings
//! and regexes, resolves route names. All mistakes are reported at once as
//! `file:line:col: message`, before any socket opens.

use super::ir::*;
use super::pv::{self, PvEnv, SharedVars};
use super::transform::{self, TrArg};
use crate::registry::{LookupError, Registry};
use sr_cfg::{
    BinaryOp, CaseLabel, CfgError, Config, ExprKind, FormatPart, PvIndex, PvRef, RouteKind, Span,
    StmtKind, TopItem,
};
use sr_sdk::fixup::{self, Arg, Assign, Eval, FixupEnv};
use sr_sdk::{Core, Ctx, Fixed, Proto, RouteId, RouteType, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Compiles a parsed pseudo-variable reference (index, transformations).
pub(crate) fn pv_ref(r: &PvRef, env: &PvEnv<'_>) -> Result<PvExpr, String> {
    let base = pv::resolve(&r.spec, env)?;
    let (index, dyn_index) = match &r.spec.index {
        None => (None, None),
        Some(PvIndex::Int(i)) => (Some(*i), None),
        Some(PvIndex::All) => (Some(i64::MIN), None),
        Some(PvIndex::Pv(p)) => (None, Some(Box::new(pv_ref(p, env)?))),
    };
    let mut transforms = Vec::new();
    for t in &r.spec.transforms {
        let arg = |s: &str| -> Result<TrArg, String> {
            if s.starts_with('$') {
                let spec = sr_cfg::parse_pv(s).map_err(|e| e.to_string())?;
                let pr = PvRef {
                    text: s.to_string(),
                    spec,
                };
                Ok(TrArg::Dyn(Arc::new(pv_ref(&pr, env)?)))
            } else {
                Ok(TrArg::Const(s.to_string()))
            }
        };
        transforms.push(transform::compile(t, &arg)?);
    }
    Ok(PvExpr {
        pv: base,
        index,
        dyn_index,
        transforms,
        text: r.text.clone(),
    })
}

/// Compiles a pseudo-variable from its text (`$ru`, `$(avp(x)[1])`).
pub(crate) fn pv_text(s: &str, env: &PvEnv<'_>) -> Result<PvExpr, String> {
    let spec = sr_cfg::parse_pv(s).map_err(|e| format!("bad pseudo-variable '{s}': {e}"))?;
    pv_ref(
        &PvRef {
            text: s.to_string(),
            spec,
        },
        env,
    )
}

/// Compiles a format string (text with pseudo-variables).
pub(crate) fn format_text(s: &str, env: &PvEnv<'_>) -> Result<Format, String> {
    let parts = sr_cfg::parse_format(s).map_err(|e| format!("bad format '{s}': {e}"))?;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        out.push(match p {
            FormatPart::Text(t) => FormatPiece::Text(t),
            FormatPart::Pv(r) => FormatPiece::Pv(pv_ref(&r, env)?),
        });
    }
    Ok(Format { parts: out })
}

/// Route names interned across reloads, so a [`RouteId`] kept by a module
/// (tm's armed failure route) stays meaningful after the script changes.
#[derive(Debug, Default)]
pub struct RouteNames {
    names: Mutex<Vec<(RouteKind, String)>>,
}

impl RouteNames {
    /// The id of a route name (allocated on first use).
    pub fn id(&self, kind: RouteKind, name: &str) -> RouteId {
        let mut v = self.names.lock().unwrap_or_else(|e| e.into_inner());
        match v.iter().position(|(k, n)| *k == kind && n == name) {
            Some(i) => RouteId(i as u32),
            None => {
                v.push((kind, name.to_string()));
                RouteId(v.len() as u32 - 1)
            }
        }
    }

    /// The kind and name behind an id.
    pub fn get(&self, id: RouteId) -> Option<(RouteKind, String)> {
        let v = self.names.lock().unwrap_or_else(|e| e.into_inner());
        v.get(id.0 as usize).cloned()
    }
}

/// What the compiler needs from the runtime.
pub struct CompileEnv<'a> {
    /// The module registry.
    pub registry: &'a Registry,
    /// The core (for fixups).
    pub core: &'a dyn Core,
    /// `$shv` storage.
    pub shv: &'a SharedVars,
    /// Custom config variables.
    pub cfg: &'a SharedVars,
    /// Interned route names.
    pub route_names: &'a RouteNames,
    /// `max_while_loops`.
    pub max_while: u32,
    /// The debugger's tracing switch: actions are compiled with their
    /// place when it is published.
    pub trace: Option<std::sync::Arc<sr_sdk::cfgtrace::CfgTrace>>,
}

/// Kamailio's action type number and name of a statement, for `cfgtrace`
/// (`None` for a function call, which the interpreter logs itself).
fn trace_kind(s: &Stmt) -> Option<(u32, &'static str)> {
    Some(match s {
        Stmt::Expr(Expr::Call(_)) => return None,
        Stmt::Expr(Expr::Route(_) | Expr::RouteDyn(_)) => (5, "route"),
        Stmt::Expr(_) => (19, "eval"),
        Stmt::Assign(_, sr_cfg::AssignOp::AddAssign, _) => (64, "assign_add"),
        Stmt::Assign(..) => (63, "assign"),
        Stmt::If(..) => (16, "if"),
        Stmt::Switch { cases, .. } if cases.iter().all(|(c, _)| matches!(c, Case::Int(_))) => {
            (21, "switch")
        }
        // A switch on strings is Kamailio's `match` (MATCH_COND_T).
        Stmt::Switch { .. } => (22, "case"),
        Stmt::While(..) => (23, "while"),
        Stmt::Return(_) => (2, "return"),
        Stmt::Exit(_) => (2, "exit"),
        Stmt::Drop => (2, "drop"),
        // Kamailio's debugger names a `break` so.
        Stmt::Break => (2, "exit"),
        Stmt::Block(_) => (18, "block"),
        Stmt::Trace(..) => return None,
    })
}

/// The compiler of one config.
struct Compiler<'a> {
    cfg: &'a Config,
    env: &'a CompileEnv<'a>,
    pv_env: PvEnv<'a>,
    flags: HashMap<String, i64>,
    routes: Routes,
    errors: Vec<CfgError>,
    /// Route types each block can run as.
    reach: Vec<RouteType>,
    /// The configuration's files' text, read when tracing needs lines.
    texts: HashMap<u32, String>,
    /// The route type set of the block being compiled.
    cur_types: RouteType,
    /// Where the call statement being compiled is, when actions follow it
    /// in its block (what [`FixupEnv::continuation`] can name).
    cont_site: std::cell::Cell<Option<Span>>,
    /// The continuation a fixup asked for while the statement at
    /// `cont_site` was compiled: its route name.
    cont_wanted: std::cell::RefCell<Option<String>>,
}

fn kind_key(kind: RouteKind) -> RouteKind {
    match kind {
        RouteKind::Request => RouteKind::Sub,
        k => k,
    }
}

impl<'a> Compiler<'a> {
    fn err(&mut self, span: Span, message: impl Into<String>) {
        self.errors.push(CfgError {
            file: self.cfg.file_path(span.file).to_path_buf(),
            line: span.line,
            col: span.col,
            message: message.into(),
        });
    }

    fn compile_pv_ref(&self, r: &PvRef) -> Result<PvExpr, String> {
        pv_ref(r, &self.pv_env)
    }

    fn compile_pv_text(&self, s: &str) -> Result<PvExpr, String> {
        pv_text(s, &self.pv_env)
    }

    fn compile_format_text(&self, s: &str) -> Result<Format, String> {
        format_text(s, &self.pv_env)
    }

    /// Compiles a string literal: constant, or a format if it holds PVs.
    fn string_expr(&self, s: &str) -> Expr {
        Expr::Const(Value::Str(s.to_string().into()))
    }

    fn compile_expr(&mut self, e: &sr_cfg::Expr) -> Expr {
        match &e.kind {
            ExprKind::Int(i) => Expr::Const(Value::Int(*i)),
            ExprKind::Str(s) => self.string_expr(s),
            ExprKind::Bool(b) => Expr::Const(Value::Int(*b as i64)),
            ExprKind::Null => Expr::Const(Value::Null),
            ExprKind::Pv(r) => match self.compile_pv_ref(r) {
                Ok(p) => Expr::Pv(Box::new(p)),
                Err(m) => {
                    self.err(e.span, m);
                    Expr::Const(Value::Null)
                }
            },
            ExprKind::Select(s) => {
                self.err(
                    e.span,
                    format!("selects (@{s}) are not supported; use pseudo-variables"),
                );
                Expr::Const(Value::Null)
            }
            ExprKind::Ident(s) => match self.flags.get(s) {
                Some(b) => Expr::Const(Value::Int(*b)),
                None => Expr::Const(Value::Str(s.clone().into())),
            },
            ExprKind::Word(s) => Expr::Const(Value::Str(s.clone().into())),
            ExprKind::Net { addr, .. } => Expr::Const(Value::Str(addr.clone().into())),
            ExprKind::Myself => {
                self.err(
                    e.span,
                    "'myself' can only be compared with a core keyword (uri, src_ip, ...)",
                );
                Expr::Const(Value::Null)
            }
            ExprKind::CoreVar(v) => Expr::CoreVar(*v),
            ExprKind::Call(c) => self.compile_call(c, e.span),
            ExprKind::Unary(op, x) => Expr::Unary(*op, Box::new(self.compile_expr(x))),
            ExprKind::Binary(op, l, r) => self.compile_binary(*op, l, r, e.span),
            ExprKind::Cast(k, x) => Expr::Cast(*k, Box::new(self.compile_expr(x))),
            ExprKind::Defined(x) => Expr::Defined(Box::new(self.compile_expr(x))),
            ExprKind::Strlen(x) => Expr::Strlen(Box::new(self.compile_expr(x))),
            ExprKind::Strempty(x) => Expr::Strempty(Box::new(self.compile_expr(x))),
        }
    }

    fn compile_binary(
        &mut self,
        op: BinaryOp,
        l: &sr_cfg::Expr,
        r: &sr_cfg::Expr,
        span: Span,
    ) -> Expr {
        if let ExprKind::CoreVar(v) = &l.kind {
            if matches!(op, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Match) {
                let rhs = match &r.kind {
                    ExprKind::Myself => CoreRhs::Myself,
                    ExprKind::Net { addr, mask } => match addr.parse::<IpAddr>() {
                        Ok(a) => CoreRhs::Net(a, (*mask).clamp(0, 128) as u8),
                        Err(_) => {
                            self.err(r.span, format!("'{addr}' is not an IP address"));
                            CoreRhs::Myself
                        }
                    },
                    ExprKind::Ident(id) if Proto::parse(id).is_some() => {
                        CoreRhs::Proto(Proto::parse(id).unwrap_or(Proto::Udp))
                    }
                    ExprKind::Ident(id) if id.eq_ignore_ascii_case("INET") => CoreRhs::Af(4),
                    ExprKind::Ident(id) if id.eq_ignore_ascii_case("INET6") => CoreRhs::Af(6),
                    _ => CoreRhs::Expr(Box::new(self.compile_expr(r))),
                };
                if let (BinaryOp::Match, CoreRhs::Expr(x)) = (op, &rhs) {
                    if let Expr::Const(Value::Str(s)) = &**x {
                        if let Some(re) = self.regex(s, r.span) {
                            return Expr::MatchConst(Box::new(Expr::CoreVar(*v)), re);
                        }
                    }
                }
                return Expr::CoreCmp(*v, op, rhs);
            }
        }
        let le = self.compile_expr(l);
        if op == BinaryOp::Match {
            if let ExprKind::Str(s) = &r.kind {
                if let Some(re) = self.regex(s, r.span) {
                    return Expr::MatchConst(Box::new(le), re);
                }
                return Expr::Const(Value::Null);
            }
        }
        let _ = span;
        Expr::Binary(op, Box::new(le), Box::new(self.compile_expr(r)))
    }

    fn regex(&mut self, s: &str, span: Span) -> Option<Arc<regex::Regex>> {
        match regex::RegexBuilder::new(s).case_insensitive(true).build() {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                let why = e.to_string();
                let why = why
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                self.err(span, format!("bad regular expression '{s}': {why}"));
                None
            }
        }
    }

    fn arg_of(&mut self, e: &sr_cfg::Expr) -> Arg {
        match &e.kind {
            ExprKind::Str(s) | ExprKind::Word(s) => Arg::Str(s.clone()),
            ExprKind::Int(i) => Arg::Int(*i),
            ExprKind::Bool(b) => Arg::Int(*b as i64),
            ExprKind::Null => Arg::Str("$null".to_string()),
            ExprKind::Pv(r) => Arg::Str(r.text.clone()),
            ExprKind::Ident(s) => match self.flags.get(s) {
                Some(b) => Arg::Int(*b),
                None => Arg::Str(s.clone()),
            },
            ExprKind::Net { addr, mask } => Arg::Str(format!("{addr}/{mask}")),
            _ => {
                let x = self.compile_expr(e);
                Arg::Expr(
                    Arc::new(ExprEval(x)),
                    format!("expression at line {}", e.span.line),
                )
            }
        }
    }

    fn compile_call(&mut self, c: &sr_cfg::Call, span: Span) -> Expr {
        if let Some(t) = c.route_target() {
            return match t {
                sr_cfg::RouteTarget::Name(n) => match self.routes.find(RouteKind::Sub, &n) {
                    Some(i) => Expr::Route(i),
                    None => {
                        self.err(c.name_span, format!("route '{n}' is not defined"));
                        Expr::Const(Value::Int(-1))
                    }
                },
                sr_cfg::RouteTarget::Dynamic(x) => Expr::RouteDyn(Box::new(self.compile_expr(x))),
            };
        }
        let found = self
            .env
            .registry
            .find_cmd(&c.name, c.args.len())
            .map(|(m, cmd)| (m.to_string(), cmd.clone()));
        let (module, cmd) = match found {
            Ok(x) => x,
            Err(LookupError::Unknown) => {
                let mods = self.env.registry.module_names().join(", ");
                self.err(
                    c.name_span,
                    format!(
                        "unknown function '{}' (missing loadmodule?); loaded modules: {mods}",
                        c.name
                    ),
                );
                return Expr::Const(Value::Int(-1));
            }
            Err(LookupError::Arity(n)) => {
                let n: Vec<String> = n.iter().map(|x| x.to_string()).collect();
                self.err(
                    c.name_span,
                    format!(
                        "function '{}' takes {} parameter(s), {} given",
                        c.name,
                        n.join(" or "),
                        c.args.len()
                    ),
                );
                return Expr::Const(Value::Int(-1));
            }
        };
        if !c.parens && module != "core" {
            self.err(
                c.name_span,
                format!("function '{}' must be called with parentheses", c.name),
            );
        }
        if !cmd.flags.intersects(self.cur_types) {
            self.err(
                c.name_span,
                format!(
                    "function '{}' cannot be used in {} (module {module} allows it in: {})",
                    c.name,
                    self.cur_types.name(),
                    allowed_names(cmd.flags)
                ),
            );
        }
        let mut params = Vec::with_capacity(c.args.len());
        // The continuation is this call's: not that of a call in one of its
        // arguments.
        let site = self.cont_site.take();
        for (i, a) in c.args.iter().enumerate() {
            let arg = self.arg_of(a);
            self.cont_site.set(site);
            let fx = match &cmd.fixup {
                Some(f) => f(self as &dyn FixupEnv, i, &arg),
                None => fixup::spve(self as &dyn FixupEnv, i, &arg),
            };
            self.cont_site.set(None);
            match fx {
                Ok(f) => params.push(f),
                Err(m) => {
                    self.err(a.span, format!("{}(): parameter {}: {m}", c.name, i + 1));
                    params.push(Fixed::Str(String::new()));
                }
            }
        }
        Expr::Call(Box::new(CallExpr {
            name: c.name.clone(),
            handler: cmd.handler.clone(),
            params,
            flags: cmd.flags,
            span,
        }))
    }

    /// Compiles a block. The actions after a call whose fixup asked for
    /// its continuation also become a route of their own (an unnamed
    /// `route` block under a name no script can write), sharing the
    /// compiled statements.
    fn compile_block(&mut self, stmts: &[sr_cfg::Stmt]) -> Vec<Stmt> {
        let outer_site = self.cont_site.take();
        let outer_wanted = self.cont_wanted.take();
        let mut out = Vec::with_capacity(stmts.len());
        let mut conts = Vec::new();
        for (i, s) in stmts.iter().enumerate() {
            let call = matches!(&s.kind, StmtKind::Expr(e) if matches!(e.kind, ExprKind::Call(_)));
            self.cont_site
                .set((call && i + 1 < stmts.len()).then_some(s.span));
            out.push(self.compile_stmt(s));
            if let Some(name) = self.cont_wanted.take() {
                conts.push((i, name));
            }
        }
        for (i, name) in conts {
            let idx = self.routes.blocks.len();
            self.routes.blocks.push(RouteBody {
                kind: RouteKind::Sub,
                name: Some(name.clone()),
                body: out[i + 1..].to_vec(),
                types: self.cur_types,
            });
            self.routes.by_name.insert((RouteKind::Sub, name), idx);
        }
        self.cont_site.set(outer_site);
        *self.cont_wanted.borrow_mut() = outer_wanted;
        out
    }

    /// The route name of the actions after the call at `span`: its place
    /// in the (canonical) file, numbered when the same text is compiled
    /// twice (a file included in two blocks).
    fn continuation_name(&self, span: Span) -> String {
        let file = self
            .routes
            .files
            .get(span.file.0 as usize)
            .cloned()
            .unwrap_or_else(|| self.cfg.file_path(span.file).display().to_string());
        let base = format!("<actions after {file}:{}:{}>", span.line, span.col);
        let taken = |n: &str| {
            self.routes
                .by_name
                .contains_key(&(RouteKind::Sub, n.to_string()))
                || self.cont_wanted.borrow().as_deref() == Some(n)
        };
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|k| format!("{base}#{k}"))
            .find(|n| !taken(n))
            .unwrap_or(base)
    }

    fn compile_stmt(&mut self, s: &sr_cfg::Stmt) -> Stmt {
        {
            // Where the statement is, for `$cfg(...)` in it.
            let file = self.cfg.file_path(s.span.file).display().to_string();
            let mut here = self.pv_env.here.borrow_mut();
            let route = here.as_ref().map(|h| h.route.clone()).unwrap_or_default();
            *here = Some(crate::script::pv::CfgHere {
                file,
                line: s.span.line,
                route,
            });
        }
        let st = self.compile_stmt_inner(s);
        if self.env.trace.is_none() {
            return st;
        }
        match trace_kind(&st) {
            Some((a, name)) => {
                let line = self.trace_line(s);
                Stmt::Trace(
                    Box::new(TracePoint {
                        file: s.span.file.0,
                        line,
                        a,
                        name,
                    }),
                    Box::new(st),
                )
            }
            None => st,
        }
    }

    /// The line Kamailio's debugger gives a statement: where it starts for
    /// a simple one; for a compound one the line its parser was on when it
    /// took the statement in — where it ends, or for an `if` without
    /// `else` the token after it (read to see there is no `else`), and for
    /// an `else` without braces wherever the statement in it was taken.
    fn trace_line(&mut self, s: &sr_cfg::Stmt) -> u32 {
        match &s.kind {
            StmtKind::If {
                otherwise: None, ..
            } => self.line_after(s.span, false),
            StmtKind::If {
                otherwise: Some(b), ..
            } => match b.stmts.as_slice() {
                [inner] if inner.span == b.span => self.trace_line(inner),
                _ => self.line_after(s.span, true),
            },
            StmtKind::While { .. } | StmtKind::Switch { .. } => self.line_after(s.span, true),
            _ => s.span.line,
        }
    }

    /// The line of the first token after `span` in its file (comments and
    /// blanks skipped), or with `last` the line of its last character; the
    /// span's own line when the file cannot be read.
    fn line_after(&mut self, span: Span, last: bool) -> u32 {
        let path = self.cfg.file_path(span.file).to_path_buf();
        let text = self
            .texts
            .entry(span.file.0)
            .or_insert_with(|| std::fs::read_to_string(&path).unwrap_or_default());
        let b = text.as_bytes();
        let mut i = span.end as usize;
        if i > b.len() || i == 0 {
            return span.line;
        }
        if last {
            return 1 + b[..i - 1].iter().filter(|c| **c == b'\n').count() as u32;
        }
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'#' || b[i..].starts_with(b"//")) {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else if b[i..].starts_with(b"/*") {
                i = b[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(b.len(), |p| i + 2 + p + 2);
            } else {
                break;
            }
        }
        1 + b[..i.min(b.len())].iter().filter(|c| **c == b'\n').count() as u32
    }

    fn compile_stmt_inner(&mut self, s: &sr_cfg::Stmt) -> Stmt {
        match &s.kind {
            StmtKind::Expr(e) => Stmt::Expr(self.compile_expr(e)),
            StmtKind::Assign {
                target,
                target_span,
                op,
                value,
            } => {
                let v = self.compile_expr(value);
                match self.compile_pv_ref(target) {
                    Ok(p) if p.pv.writable() => Stmt::Assign(Box::new(p), *op, v),
                    Ok(_) => {
                        self.err(*target_span, format!("{} is read-only", target.text));
                        Stmt::Block(vec![])
                    }
                    Err(m) => {
                        self.err(*target_span, m);
                        Stmt::Block(vec![])
                    }
                }
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.compile_expr(cond);
                let t = self.compile_block(&then.stmts);
                let o = otherwise
                    .as_ref()
                    .map(|b| self.compile_block(&b.stmts))
                    .unwrap_or_default();
                Stmt::If(c, t, o)
            }
            StmtKind::Switch { subject, cases } => {
                let subject = self.compile_expr(subject);
                let mut labels = Vec::new();
                let mut default = None;
                let mut start = 0;
                for case in cases {
                    match &case.label {
                        CaseLabel::Int(i) => labels.push((Case::Int(*i), start)),
                        CaseLabel::Str(x) => labels.push((Case::Str(x.clone()), start)),
                        CaseLabel::Regex(x) => {
                            if let Some(r) = self.regex(x, case.span) {
                                labels.push((Case::Regex(r), start));
                            }
                        }
                        CaseLabel::Default => default = Some(start),
                    }
                    start += case.body.len();
                }
                // One list, as Kamailio joins the cases: what follows an
                // action (its continuation) runs on into the next case.
                let all: Vec<sr_cfg::Stmt> =
                    cases.iter().flat_map(|c| c.body.iter().cloned()).collect();
                let body = self.compile_block(&all);
                Stmt::Switch {
                    subject,
                    cases: labels,
                    default,
                    body,
                }
            }
            StmtKind::While { cond, body } => {
                let c = self.compile_expr(cond);
                Stmt::While(c, self.compile_block(&body.stmts))
            }
            StmtKind::Return(e) => Stmt::Return(e.as_ref().map(|e| self.compile_expr(e))),
            StmtKind::Exit(e) => Stmt::Exit(e.as_ref().map(|e| self.compile_expr(e))),
            StmtKind::Drop(_) => Stmt::Drop,
            StmtKind::Break => Stmt::Break,
            StmtKind::Block(b) => Stmt::Block(self.compile_block(&b.stmts)),
        }
    }
}

fn allowed_names(flags: RouteType) -> String {
    if flags == RouteType::ANY {
        return "any route".to_string();
    }
    let all = [
        RouteType::REQUEST,
        RouteType::FAILURE,
        RouteType::TM_ONREPLY,
        RouteType::BRANCH,
        RouteType::ONSEND,
        RouteType::CORE_ONREPLY,
        RouteType::ONEVENT,
    ];
    let names: Vec<&str> = all
        .iter()
        .filter(|t| flags.intersects(**t))
        .map(|t| t.name())
        .collect();
    names.join(", ")
}

impl FixupEnv for Compiler<'_> {
    fn core(&self) -> &dyn Core {
        self.env.core
    }

    fn route_id(&self, kind: RouteType, name: &str) -> Option<RouteId> {
        let k = kind_of(kind)?;
        self.routes.find(k, name)?;
        Some(self.env.route_names.id(k, name))
    }

    fn is_loaded(&self, module: &str) -> bool {
        self.env.registry.has_module(module)
    }

    fn compile_format(&self, s: &str) -> Result<Arc<dyn Eval>, String> {
        Ok(Arc::new(self.compile_format_text(s)?))
    }

    fn compile_pv(&self, s: &str) -> Result<Arc<dyn Eval>, String> {
        Ok(Arc::new(self.compile_pv_text(s)?))
    }

    fn compile_lvalue(&self, s: &str) -> Result<Arc<dyn Assign>, String> {
        let p = self.compile_pv_text(s)?;
        if !p.pv.writable() {
            return Err(format!("{s} is read-only"));
        }
        Ok(Arc::new(p))
    }

    fn continuation(&self) -> Option<RouteId> {
        let name = self.continuation_name(self.cont_site.get()?);
        let id = self.env.route_names.id(RouteKind::Sub, &name);
        *self.cont_wanted.borrow_mut() = Some(name);
        Some(id)
    }
}

/// An expression evaluated as a function argument (no route calls).
#[derive(Debug)]
pub struct ExprEval(pub Expr);

impl Eval for ExprEval {
    fn eval(&self, ctx: &mut Ctx<'_>) -> Value<'static> {
        let routes = Routes::default();
        let mut ex = super::exec::Exec::new(&routes);
        ex.eval(&self.0, ctx)
            .map(|v| v.into_owned())
            .unwrap_or(Value::Null)
    }
}

/// Named flags declared with `flags NAME:bit, ...`.
fn named_flags(cfg: &Config) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    let mut next = 0;
    for item in &cfg.items {
        if let TopItem::Flags(f) = item {
            for d in &f.flags {
                let bit = d.bit.unwrap_or(next);
                next = bit + 1;
                out.insert(d.name.clone(), bit);
            }
        }
    }
    out
}

/// Compiles the route blocks of a parsed config.
pub fn compile(cfg: &Config, env: &CompileEnv<'_>) -> Result<Routes, Vec<CfgError>> {
    let empty = BTreeMap::new();
    let mut c = Compiler {
        cfg,
        env,
        pv_env: PvEnv {
            module_pvs: &env.registry.pvs,
            shv: env.shv,
            cfg: env.cfg,
            defines: if cfg.defines.is_empty() {
                &empty
            } else {
                &cfg.defines
            },
            here: Default::default(),
        },
        flags: named_flags(cfg),
        routes: Routes {
            max_while: env.max_while,
            trace: env.trace.clone(),
            files: cfg
                .files
                .iter()
                .map(|f| {
                    std::fs::canonicalize(f)
                        .unwrap_or_else(|_| f.clone())
                        .display()
                        .to_string()
                })
                .collect(),
            ..Default::default()
        },
        errors: Vec::new(),
        reach: Vec::new(),
        cur_types: RouteType::REQUEST,
        texts: HashMap::new(),
        cont_site: Default::default(),
        cont_wanted: Default::default(),
    };
    // Pass 1: the route table.
    let blocks: Vec<&sr_cfg::RouteBlock> = cfg.routes().collect();
    for (i, b) in blocks.iter().enumerate() {
        c.routes.blocks.push(RouteBody {
            kind: b.kind,
            name: b.name.clone(),
            body: Vec::new(),
            types: RouteType(0),
        });
        let single = match b.kind {
            RouteKind::Request => Some(c.routes.request.replace(i)),
            RouteKind::Reply => Some(c.routes.reply.replace(i)),
            RouteKind::OnSend => Some(c.routes.onsend.replace(i)),
            _ => None,
        };
        if let Some(prev) = single {
            if prev.is_some() {
                let span = b.name_span.unwrap_or(b.span);
                c.err(span, format!("{} is defined twice", b.keyword));
            }
            continue;
        }
        if let Some(n) = &b.name {
            let key = (kind_key(b.kind), n.clone());
            if c.routes.by_name.insert(key, i).is_some() {
                let span = b.name_span.unwrap_or(b.span);
                c.err(span, format!("{}[{n}] is defined twice", b.keyword));
            }
        }
    }
    // Pass 2: which route types each block can run as.
    c.reach = blocks
        .iter()
        .map(|b| match b.kind {
            RouteKind::Sub => RouteType(0),
            k => route_type_of(k),
        })
        .collect();
    let callees: Vec<Vec<usize>> = blocks
        .iter()
        .map(|b| {
            let mut callees = Vec::new();
            sr_cfg::for_each_call(&b.body.stmts, &mut |call| {
                if let Some(sr_cfg::RouteTarget::Name(n)) = call.route_target() {
                    callees.extend(c.routes.find(RouteKind::Sub, &n));
                }
            });
            callees
        })
        .collect();
    let mut changed = true;
    let mut seen: HashSet<(usize, u32)> = HashSet::new();
    while changed {
        changed = false;
        for (i, cs) in callees.iter().enumerate() {
            for &j in cs {
                let new = RouteType(c.reach[j].0 | c.reach[i].0);
                if new != c.reach[j] && seen.insert((j, new.0)) {
                    c.reach[j] = new;
                    changed = true;
                }
            }
        }
    }
    // Pass 3: bodies.
    for (i, b) in blocks.iter().enumerate() {
        c.cur_types = match c.reach[i] {
            RouteType(0) => RouteType::REQUEST,
            t => t,
        };
        *c.pv_env.here.borrow_mut() = Some(crate::script::pv::CfgHere {
            // Unnamed blocks as Kamailio names them (its debugger too).
            route: b.name.clone().unwrap_or_else(|| "DEFAULT_ROUTE".into()),
            ..Default::default()
        });
        let body = c.compile_block(&b.body.stmts);
        c.routes.blocks[i].body = body;
        c.routes.blocks[i].types = c.cur_types;
    }
    if c.errors.is_empty() {
        Ok(c.routes)
    } else {
        Err(c.errors)
    }
}
