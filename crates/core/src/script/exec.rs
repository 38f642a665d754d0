//! The interpreter: runs compiled routes with Kamailio's semantics (above 0
//! is true; a function returning 0 stops the script; `return 0` exits;
//! `drop`; `$rc` holds the last code; `==` typed by its left operand).

use super::ir::*;
use super::rval::{self, val};
use super::state;
use crate::myself;
use sr_cfg::{AssignOp, BinaryOp, CastKind, CoreVar, RouteKind, UnaryOp};
use sr_sdk::{lm_err, Ctx, RouteType, Value};
use std::borrow::Cow;
use std::net::IpAddr;

/// Why evaluation stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `exit`, `return 0`, or a function returning 0.
    Exit(i32),
    /// `drop`.
    Drop,
}

enum Flow {
    Next,
    Return(i32),
    Break,
}

/// Maximum nesting of `route()` calls (Kamailio's `max_recursive_level`).
const MAX_DEPTH: u32 = 256;

/// The interpreter for one message.
pub struct Exec<'r> {
    routes: &'r Routes,
    depth: u32,
    /// The value of the last statement run, as Kamailio's actions have
    /// one (a route that ends without `return` gives it): a call's or
    /// route's return code; 1 for an `if` whose branch ran nothing, an
    /// assignment, a loop. Unlike `$rc`, a condition's call does not set
    /// it, so a core `onreply_route` ending with a false `if` keeps its
    /// reply, as in Kamailio.
    ret: i32,
    /// The block running (for trace lines).
    block: usize,
    /// An expression failed (a division by zero): the assignment being
    /// evaluated is not made.
    expr_failed: bool,
    /// Route types whose functions may run besides the current one: a
    /// `route[...]` block run on its own keeps those it was compiled for
    /// (see [`RouteBody::types`]).
    extra: RouteType,
}

/// The result of running a top-level route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Return code.
    pub code: i32,
    /// `drop` was executed.
    pub dropped: bool,
    /// The script stopped by `exit` (or an equivalent).
    pub exited: bool,
}

/// The name of a route type in trace lines, as Kamailio's debugger
/// writes it.
fn route_type_name(rt: RouteType) -> &'static str {
    match rt {
        RouteType::FAILURE => "failure_route",
        RouteType::TM_ONREPLY | RouteType::CORE_ONREPLY | RouteType::ONREPLY => "onreply_route",
        RouteType::BRANCH => "branch_route",
        RouteType::ONSEND => "onsend_route",
        RouteType::ERROR => "error_route",
        RouteType::LOCAL => "local_route",
        RouteType::BRANCH_FAILURE => "branch_failure_route",
        RouteType::ONEVENT | RouteType::EVENT => "event_route",
        _ => "request_route",
    }
}

fn truthy(v: &Value<'_>) -> bool {
    rval::int(v) > 0
}

/// Whether an expression is a function's or route's result (true above
/// 0) rather than a value.
fn is_call(x: &Expr) -> bool {
    matches!(x, Expr::Call(_) | Expr::Route(_) | Expr::RouteDyn(_))
}

fn b(x: bool) -> Value<'static> {
    Value::Int(x as i64)
}

impl<'r> Exec<'r> {
    /// An interpreter over a compiled script.
    pub fn new(routes: &'r Routes) -> Exec<'r> {
        Exec {
            routes,
            depth: 0,
            ret: 1,
            block: 0,
            expr_failed: false,
            extra: RouteType(0),
        }
    }

    /// Runs block `idx` as a top-level route of type `rt`.
    pub fn run_top(&mut self, idx: usize, ctx: &mut Ctx<'_>) -> Outcome {
        state::touch_time();
        self.extra = match self.routes.blocks.get(idx) {
            Some(b) if b.kind == RouteKind::Sub => b.types,
            _ => RouteType(0),
        };
        match self.run_route(idx, ctx) {
            Ok(code) => Outcome {
                code,
                dropped: false,
                exited: false,
            },
            Err(Stop::Exit(code)) => Outcome {
                code,
                dropped: false,
                exited: true,
            },
            Err(Stop::Drop) => Outcome {
                code: 0,
                dropped: true,
                exited: true,
            },
        }
    }

    fn run_route(&mut self, idx: usize, ctx: &mut Ctx<'_>) -> Result<i32, Stop> {
        let Some(block) = self.routes.blocks.get(idx) else {
            return Ok(-1);
        };
        if self.depth >= MAX_DEPTH {
            lm_err!("route nesting deeper than {MAX_DEPTH}: stopping the script");
            return Err(Stop::Exit(-1));
        }
        self.depth += 1;
        // (An empty route gives 1.)
        self.ret = 1;
        let outer = std::mem::replace(&mut self.block, idx);
        let r = self.run_block(&block.body, ctx);
        self.block = outer;
        self.depth -= 1;
        let sub = block.kind == RouteKind::Sub;
        match r? {
            Flow::Return(0) if sub => Err(Stop::Exit(0)),
            Flow::Return(0) => Err(Stop::Exit(0)),
            Flow::Return(v) if sub => Ok(v),
            Flow::Return(v) => Err(Stop::Exit(v)),
            Flow::Next | Flow::Break => Ok(self.ret),
        }
    }

    fn run_block(&mut self, stmts: &[Stmt], ctx: &mut Ctx<'_>) -> Result<Flow, Stop> {
        for s in stmts {
            match self.run_stmt(s, ctx)? {
                Flow::Next => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Next)
    }

    fn run_stmt(&mut self, s: &Stmt, ctx: &mut Ctx<'_>) -> Result<Flow, Stop> {
        match s {
            Stmt::Expr(e) => {
                let v = self.eval(e, ctx)?;
                self.ret = 1;
                if matches!(e, Expr::Call(_) | Expr::Route(_) | Expr::RouteDyn(_)) {
                    self.ret = v.as_int() as i32;
                    state::set_last_rc(self.ret);
                }
            }
            Stmt::Assign(target, op, e) => {
                self.expr_failed = false;
                let v = self.eval(e, ctx)?.into_owned();
                if std::mem::take(&mut self.expr_failed) {
                    lm_err!("assignment to {}: the expression failed", target.text);
                    state::set_last_rc(-1);
                    self.ret = -1;
                    return Ok(Flow::Next);
                }
                let v = match op {
                    AssignOp::AddAssign => {
                        let cur = target.get(ctx);
                        add(cur, v).into_owned()
                    }
                    _ => v,
                };
                if let Err(m) = target.set(ctx, v) {
                    lm_err!("assignment to {}: {m}", target.text);
                }
                state::set_last_rc(1);
                self.ret = 1;
            }
            Stmt::If(c, t, o) => {
                let v = self.eval(c, ctx)?;
                let branch = if truthy(&v) { t } else { o };
                self.ret = 1;
                return self.run_block(branch, ctx);
            }
            Stmt::Switch {
                subject,
                cases,
                default,
                body,
            } => {
                let v = self.eval(subject, ctx)?.into_owned();
                self.ret = 1;
                let start = cases
                    .iter()
                    .find(|(c, _)| case_matches(c, &v))
                    .map(|(_, i)| *i)
                    .or(*default);
                if let Some(i) = start {
                    match self.run_block(&body[i..], ctx)? {
                        Flow::Break | Flow::Next => {}
                        f => return Ok(f),
                    }
                }
            }
            Stmt::While(c, body) => {
                self.ret = 1;
                let mut n = 0;
                while truthy(&self.eval(c, ctx)?) {
                    n += 1;
                    if n > self.routes.max_while.max(1) {
                        lm_err!(
                            "while loop stopped after max_while_loops={} iterations",
                            self.routes.max_while
                        );
                        break;
                    }
                    match self.run_block(body, ctx)? {
                        Flow::Break => break,
                        Flow::Next => {}
                        f => return Ok(f),
                    }
                }
            }
            Stmt::Return(e) => {
                let v = match e {
                    Some(e) => self.eval(e, ctx)?.as_int() as i32,
                    None => 1,
                };
                state::set_last_rc(v);
                return Ok(Flow::Return(v));
            }
            Stmt::Exit(e) => {
                let v = match e {
                    Some(e) => self.eval(e, ctx)?.as_int() as i32,
                    None => 0,
                };
                return Err(Stop::Exit(v));
            }
            Stmt::Drop => return Err(Stop::Drop),
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Block(b) => return self.run_block(b, ctx),
            Stmt::Trace(tp, inner) => {
                self.trace(ctx, tp.file, tp.line, tp.a, tp.name);
                return self.run_stmt(inner, ctx);
            }
        }
        Ok(Flow::Next)
    }

    /// Logs an action when the debugger traces.
    fn trace(&self, ctx: &Ctx<'_>, file: u32, line: u32, a: u32, name: &str) {
        let Some(t) = &self.routes.trace else {
            return;
        };
        let block = self.routes.blocks.get(self.block);
        let name_of_block = block
            .and_then(|b| b.name.as_deref())
            .unwrap_or("DEFAULT_ROUTE");
        let file = self
            .routes
            .files
            .get(file as usize)
            .map_or("", String::as_str);
        t.action(
            route_type_name(ctx.route),
            name_of_block,
            file,
            line,
            a,
            name,
        );
    }

    fn call(&mut self, c: &CallExpr, ctx: &mut Ctx<'_>) -> Result<i32, Stop> {
        if !c.flags.intersects(ctx.route) && !c.flags.intersects(self.extra) {
            lm_err!(
                "{}:{}: {}() is not allowed in {}",
                c.span.line,
                c.span.col,
                c.name,
                ctx.route.name()
            );
            return Ok(-1);
        }
        if self.routes.trace.is_some() {
            // Kamailio's MODULE0_T .. MODULE6_T, MODULEX_T.
            let a = 24 + c.params.len().min(7) as u32;
            self.trace(ctx, c.span.file.0, c.span.line, a, &c.name);
        }
        let rc = (c.handler)(ctx, &c.params);
        state::set_last_rc(rc);
        if rc == 0 {
            return Err(Stop::Exit(0));
        }
        Ok(rc)
    }

    /// Evaluates an expression.
    pub fn eval<'e>(&mut self, e: &'e Expr, ctx: &mut Ctx<'_>) -> Result<Value<'e>, Stop> {
        Ok(match e {
            Expr::Const(v) => match v {
                Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
                v => v.clone(),
            },
            Expr::Pv(p) => p.get(ctx),
            Expr::Call(c) => Value::Int(self.call(c, ctx)? as i64),
            Expr::Route(i) => {
                let rc = self.run_route(*i, ctx)?;
                state::set_last_rc(rc);
                Value::Int(rc as i64)
            }
            Expr::RouteDyn(x) => {
                let name = self.eval(x, ctx)?.as_str().into_owned();
                match self.routes.find(RouteKind::Sub, &name) {
                    Some(i) => {
                        let rc = self.run_route(i, ctx)?;
                        state::set_last_rc(rc);
                        Value::Int(rc as i64)
                    }
                    None => {
                        lm_err!("route({name}): no such route");
                        Value::Int(-1)
                    }
                }
            }
            Expr::CoreVar(v) => core_var(*v, ctx),
            Expr::CoreCmp(v, op, rhs) => {
                let r = self.core_cmp(*v, rhs, ctx, *op == BinaryOp::Match)?;
                b(if *op == BinaryOp::Ne { !r } else { r })
            }
            Expr::Unary(op, x) => {
                let v = self.eval(x, ctx)?;
                match op {
                    // A function's result is true above 0, so `!f()` is
                    // true for -1; any other value is an integer, and
                    // `!` is true for 0 only (`!(-3)` is false), as in
                    // Kamailio.
                    UnaryOp::Not if is_call(x) => b(!truthy(&v)),
                    UnaryOp::Not => b(rval::int(&v) == 0),
                    UnaryOp::Neg => val(rval::int(&v).wrapping_neg()),
                    UnaryOp::BitNot => val(!rval::int(&v)),
                }
            }
            Expr::Binary(op, l, r) => self.binary(*op, l, r, ctx)?,
            Expr::MatchConst(x, re) => {
                let v = self.eval(x, ctx)?;
                b(!v.is_null() && re.is_match(&v.as_str()))
            }
            Expr::Cast(k, x) => {
                let v = self.eval(x, ctx)?;
                match k {
                    CastKind::Int => val(rval::int(&v)),
                    CastKind::Str => Value::Str(Cow::Owned(v.as_str().into_owned())),
                }
            }
            Expr::Defined(x) => b(!self.eval(x, ctx)?.is_null()),
            Expr::Strlen(x) => Value::Int(self.eval(x, ctx)?.as_str().len() as i64),
            Expr::Strempty(x) => b(self.eval(x, ctx)?.as_str().is_empty()),
        })
    }

    fn binary<'e>(
        &mut self,
        op: BinaryOp,
        l: &'e Expr,
        r: &'e Expr,
        ctx: &mut Ctx<'_>,
    ) -> Result<Value<'e>, Stop> {
        use BinaryOp::*;
        if op == And {
            return Ok(b(truthy(&self.eval(l, ctx)?) && truthy(&self.eval(r, ctx)?)));
        }
        if op == Or {
            return Ok(b(truthy(&self.eval(l, ctx)?) || truthy(&self.eval(r, ctx)?)));
        }
        let lv = self.eval(l, ctx)?;
        let rv = self.eval(r, ctx)?;
        Ok(match op {
            Eq => b(equal(&lv, &rv)),
            Ne => b(!equal(&lv, &rv)),
            StrEq => b(lv.as_str() == rv.as_str()),
            StrNe => b(lv.as_str() != rv.as_str()),
            IntEq => b(rval::int(&lv) == rval::int(&rv)),
            IntNe => b(rval::int(&lv) != rval::int(&rv)),
            Match => match regex::RegexBuilder::new(&rv.as_str())
                .case_insensitive(true)
                .build()
            {
                Ok(re) => b(!lv.is_null() && re.is_match(&lv.as_str())),
                Err(e) => {
                    lm_err!("bad regular expression '{}': {e}", rv.as_str());
                    b(false)
                }
            },
            Gt | Lt | Ge | Le => {
                let ord = match (&lv, &rv) {
                    (Value::Str(a), Value::Str(c)) => a.as_ref().cmp(c.as_ref()),
                    _ => rval::int(&lv).cmp(&rval::int(&rv)),
                };
                b(match op {
                    Gt => ord.is_gt(),
                    Lt => ord.is_lt(),
                    Ge => ord.is_ge(),
                    _ => ord.is_le(),
                })
            }
            Add => add(lv, rv),
            Sub => val(rval::int(&lv).wrapping_sub(rval::int(&rv))),
            Mul => val(rval::int(&lv).wrapping_mul(rval::int(&rv))),
            Div | Mod => {
                let d = rval::int(&rv);
                if d == 0 {
                    // Kamailio fails the expression: an assignment of it
                    // is not made.
                    lm_err!("division by zero in the script");
                    self.expr_failed = true;
                    Value::Int(0)
                } else if op == Div {
                    val(rval::int(&lv).wrapping_div(d))
                } else {
                    val(rval::int(&lv).wrapping_rem(d))
                }
            }
            BitOr => val(rval::int(&lv) | rval::int(&rv)),
            BitAnd => val(rval::int(&lv) & rval::int(&rv)),
            BitXor => val(rval::int(&lv) ^ rval::int(&rv)),
            Shl => val(rval::int(&lv).wrapping_shl(rval::int(&rv) as u32)),
            Shr => val(rval::int(&lv).wrapping_shr(rval::int(&rv) as u32)),
            // Short-circuited above.
            And | Or => b(false),
        })
    }

    fn core_cmp(
        &mut self,
        v: CoreVar,
        rhs: &CoreRhs,
        ctx: &mut Ctx<'_>,
        regex: bool,
    ) -> Result<bool, Stop> {
        Ok(match rhs {
            CoreRhs::Myself => match v {
                // A URI without a port names the default port (5060, 5061
                // for sips or TLS), as Kamailio's GET_URI_PORT: an alias
                // without a port still matches any.
                CoreVar::Uri if ctx.msg.new_uri.is_none() => {
                    // The Request-URI as received was parsed with the message.
                    let m = &*ctx.msg;
                    m.msg().request_uri().is_some_and(|u| {
                        ctx.core.is_myself(u.host_str, Some(uri_port_or_default(u)))
                    })
                }
                CoreVar::Uri | CoreVar::FromUri | CoreVar::ToUri => {
                    let u = core_var(v, ctx).as_str().into_owned();
                    match sip_msg::Uri::parse(&u) {
                        Ok(uri) => ctx
                            .core
                            .is_myself(uri.host_str, Some(uri_port_or_default(&uri))),
                        Err(_) => false,
                    }
                }
                CoreVar::SrcIp => ctx.core.is_myself(&ctx.msg.rcv.src.ip().to_string(), None),
                CoreVar::DstIp => ctx.core.is_myself(&ctx.msg.rcv.dst.ip().to_string(), None),
                _ => false,
            },
            CoreRhs::Net(net, mask) => {
                let ip = core_var(v, ctx).as_str().parse::<IpAddr>().ok();
                ip.is_some_and(|ip| myself::in_net(ip, *net, *mask))
            }
            CoreRhs::Proto(p) => match v {
                CoreVar::Proto => ctx.msg.rcv.proto == *p,
                CoreVar::SndProto => state::send_dest().is_some_and(|d| d.proto == *p),
                _ => false,
            },
            CoreRhs::Af(af) => {
                let is6 = ctx.msg.rcv.src.is_ipv6();
                (*af == 6) == is6
            }
            CoreRhs::Expr(x) => {
                let l = core_var(v, ctx);
                let r = self.eval(x, ctx)?;
                if regex {
                    regex::RegexBuilder::new(&r.as_str())
                        .case_insensitive(true)
                        .build()
                        .map(|re| re.is_match(&l.as_str()))
                        .unwrap_or(false)
                } else if v == CoreVar::Method {
                    l.as_str().eq_ignore_ascii_case(&r.as_str())
                } else if matches!(v, CoreVar::SrcPort | CoreVar::DstPort | CoreVar::Status) {
                    l.as_int() == r.as_int()
                } else {
                    l.as_str() == r.as_str()
                }
            }
        })
    }
}

/// `==` with Kamailio's typing: the left operand's type decides; an
/// undefined left side takes the right side's type.
fn equal(l: &Value<'_>, r: &Value<'_>) -> bool {
    match (l, r) {
        (Value::Null, Value::Null) => true,
        (Value::Null, Value::Int(i)) => *i == 0,
        (Value::Null, Value::Str(s)) => s.is_empty(),
        (Value::Int(a), other) => !other.is_null() && *a as i32 == rval::int(other),
        (Value::Str(a), other) => !other.is_null() && a.as_ref() == other.as_str(),
    }
}

/// `+`: concatenation when the left side is a string (or undefined),
/// addition when it is an integer.
fn add<'e>(l: Value<'e>, r: Value<'e>) -> Value<'e> {
    match l {
        Value::Int(a) => val((a as i32).wrapping_add(rval::int(&r))),
        Value::Null => Value::Str(Cow::Owned(r.as_str().into_owned())),
        Value::Str(a) => {
            let mut s = a.into_owned();
            s.push_str(&r.as_str());
            Value::Str(Cow::Owned(s))
        }
    }
}

fn case_matches(c: &Case, v: &Value<'_>) -> bool {
    match c {
        Case::Int(i) => match v {
            Value::Int(x) => x == i,
            Value::Str(s) => s.trim().parse::<i64>() == Ok(*i),
            Value::Null => false,
        },
        Case::Str(s) => v.as_str() == s.as_str(),
        Case::Regex(r) => r.is_match(&v.as_str()),
    }
}

/// The value of a core keyword.
pub fn core_var(v: CoreVar, ctx: &mut Ctx<'_>) -> Value<'static> {
    let m = &*ctx.msg;
    let s = |x: String| Value::Str(Cow::Owned(x));
    match v {
        CoreVar::Method => m
            .msg()
            .txn_method()
            .map_or(Value::Null, |x| s(x.as_str().to_string())),
        CoreVar::Uri => {
            if m.is_request() {
                s(m.ruri().to_string())
            } else {
                Value::Null
            }
        }
        CoreVar::Status => m
            .msg()
            .status()
            .map_or(Value::Null, |c| Value::Int(c as i64)),
        CoreVar::FromUri => m
            .msg()
            .from()
            .map_or(Value::Null, |f| s(f.uri_str.to_string())),
        CoreVar::ToUri => m
            .msg()
            .to()
            .map_or(Value::Null, |t| s(t.uri_str.to_string())),
        CoreVar::SrcIp => s(m.rcv.src.ip().to_string()),
        CoreVar::SrcPort => Value::Int(m.rcv.src.port() as i64),
        CoreVar::DstIp => s(m.rcv.dst.ip().to_string()),
        CoreVar::DstPort => Value::Int(m.rcv.dst.port() as i64),
        CoreVar::Proto => s(m.rcv.proto.as_str().to_string()),
        CoreVar::Af => s(if m.rcv.src.is_ipv6() { "INET6" } else { "INET" }.to_string()),
        CoreVar::MsgLen => Value::Int(m.msg().raw().len() as i64),
        CoreVar::SndProto => {
            state::send_dest().map_or(Value::Null, |d| s(d.proto.as_str().to_string()))
        }
        CoreVar::SndAf => state::send_dest().map_or(Value::Null, |d| {
            s(if d.to.is_ipv6() { "INET6" } else { "INET" }.to_string())
        }),
        CoreVar::SndIp => state::send_dest()
            .and_then(|d| d.local)
            .map_or(Value::Null, |a| s(a.ip().to_string())),
        CoreVar::SndPort => state::send_dest()
            .and_then(|d| d.local)
            .map_or(Value::Null, |a| Value::Int(a.port() as i64)),
        CoreVar::ToIp => state::send_dest().map_or(Value::Null, |d| s(d.to.ip().to_string())),
        CoreVar::ToPort => {
            state::send_dest().map_or(Value::Null, |d| Value::Int(d.to.port() as i64))
        }
    }
}

/// Runs a route block of the given kind as top level (used by the core's
/// `run_route` for modules).
pub fn run(routes: &Routes, idx: usize, ctx: &mut Ctx<'_>) -> Outcome {
    Exec::new(routes).run_top(idx, ctx)
}

/// A URI's port, or the default of its scheme and transport (5061 for
/// `sips:` and `transport=tls`, else 5060).
fn uri_port_or_default(u: &sip_msg::Uri<'_>) -> u16 {
    u.port.unwrap_or_else(|| {
        let tls = matches!(u.scheme, sip_msg::Scheme::Sips)
            || u.param("transport")
                .flatten()
                .is_some_and(|t| t.eq_ignore_ascii_case("tls"));
        if tls {
            5061
        } else {
            5060
        }
    })
}
