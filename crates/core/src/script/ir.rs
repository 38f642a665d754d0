//! The compiled form of the routing script: route bodies as trees of
//! statements whose calls point straight at module handlers with their
//! prepared parameters, and whose pseudo-variables and regexes are
//! resolved and compiled.

use super::pv::CorePv;
use super::transform::Tr;
use sr_cfg::{AssignOp, BinaryOp, CastKind, CoreVar, RouteKind, Span, UnaryOp};
use sr_sdk::exports::CmdFn;
use sr_sdk::fixup::{Assign, Eval};
use sr_sdk::{Ctx, Fixed, Proto, RouteType, Value};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// A compiled pseudo-variable: class, index and transformations.
#[derive(Debug, Clone)]
pub struct PvExpr {
    /// The class.
    pub pv: CorePv,
    /// Constant index (`None` when absent, `i64::MIN` for `[*]`).
    pub index: Option<i64>,
    /// Index given by another pseudo-variable.
    pub dyn_index: Option<Box<PvExpr>>,
    /// Transformations, applied in order.
    pub transforms: Vec<Tr>,
    /// Text as written.
    pub text: String,
}

impl PvExpr {
    /// The index for this message (`i64::MIN` for `[*]`).
    fn index_now(&self, ctx: &mut Ctx<'_>) -> Option<i64> {
        match &self.dyn_index {
            Some(d) => Some(d.get(ctx).as_int()),
            None => self.index,
        }
    }

    /// Assigns a value, at the index written (`[*]`: all of them).
    pub fn set(&self, ctx: &mut Ctx<'_>, v: Value<'_>) -> Result<(), String> {
        let index = self.index_now(ctx);
        self.pv.set(ctx, v, index)
    }

    /// Reads the value (transformations applied).
    pub fn get(&self, ctx: &mut Ctx<'_>) -> Value<'static> {
        let index = self.index_now(ctx);
        let mut v = self.pv.get(ctx, index);
        for t in &self.transforms {
            v = t.apply(v, ctx);
        }
        v
    }
}

impl PvExpr {
    /// The value as a format string shows it: `None` (nothing written)
    /// when a transformation fails, and every transformation fails on
    /// `$null` but `{sql.val*}`'s (Kamailio's `pv_printf` writes nothing
    /// for a value it could not get).
    fn get_in_text(&self, ctx: &mut Ctx<'_>) -> Option<Value<'static>> {
        if self.transforms.is_empty() {
            return Some(self.get(ctx));
        }
        let index = self.index_now(ctx);
        let mut v = self.pv.get(ctx, index);
        for t in &self.transforms {
            if v.is_null() && !matches!(t, Tr::SqlVal(_)) {
                return None;
            }
            v = t.apply(v, ctx);
        }
        (!v.is_null()).then_some(v)
    }
}

impl Eval for PvExpr {
    fn eval(&self, ctx: &mut Ctx<'_>) -> Value<'static> {
        self.get(ctx)
    }
}

impl Assign for PvExpr {
    fn assign(&self, ctx: &mut Ctx<'_>, v: Value<'_>) -> Result<(), String> {
        self.set(ctx, v)
    }
}

/// A format string: text with pseudo-variables (`"sip:$rU@$fd"`).
#[derive(Debug, Clone)]
pub struct Format {
    /// The pieces.
    pub parts: Vec<FormatPiece>,
}

/// One piece of a [`Format`].
#[derive(Debug, Clone)]
pub enum FormatPiece {
    /// Literal text.
    Text(String),
    /// A pseudo-variable (null prints as `<null>`, as xlog does).
    Pv(PvExpr),
}

impl Format {
    /// Renders the string for this message.
    pub fn render(&self, ctx: &mut Ctx<'_>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                FormatPiece::Text(t) => out.push_str(t),
                FormatPiece::Pv(pv) => match pv.get_in_text(ctx) {
                    Some(Value::Null) => out.push_str("<null>"),
                    Some(v) => out.push_str(&v.as_str()),
                    None => {}
                },
            }
        }
        out
    }
}

impl Eval for Format {
    fn eval(&self, ctx: &mut Ctx<'_>) -> Value<'static> {
        Value::Str(self.render(ctx).into())
    }
}

/// A resolved module (or core) function call.
#[derive(Clone)]
pub struct CallExpr {
    /// Name as written.
    pub name: String,
    /// The handler.
    pub handler: CmdFn,
    /// Prepared parameters.
    pub params: Vec<Fixed>,
    /// Route types the function allows.
    pub flags: RouteType,
    /// Where it is called (for run-time messages).
    pub span: Span,
}

impl fmt::Debug for CallExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?})", self.name, self.params)
    }
}

/// The right-hand side of a core condition (`uri == myself`, `src_ip ==
/// 10.0.0.0/8`, `proto == UDP`).
#[derive(Debug, Clone)]
pub enum CoreRhs {
    /// `myself`
    Myself,
    /// An IP network.
    Net(IpAddr, u8),
    /// A transport name.
    Proto(Proto),
    /// An address family (4 or 6).
    Af(u8),
    /// Any other expression, compared as a string (or regex with `=~`).
    Expr(Box<Expr>),
}

/// An expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A constant.
    Const(Value<'static>),
    /// A pseudo-variable.
    Pv(Box<PvExpr>),
    /// A function call: its return code.
    Call(Box<CallExpr>),
    /// `route(NAME)`: the route's return code.
    Route(usize),
    /// `route($var(x))`: resolved by name at run time.
    RouteDyn(Box<Expr>),
    /// A core condition keyword on its own (its value).
    CoreVar(CoreVar),
    /// `keyword op rhs`.
    CoreCmp(CoreVar, BinaryOp, CoreRhs),
    /// Unary operator.
    Unary(UnaryOp, Box<Expr>),
    /// Binary operator.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `=~` against a constant regex, compiled once.
    MatchConst(Box<Expr>, Arc<regex::Regex>),
    /// A cast.
    Cast(CastKind, Box<Expr>),
    /// `defined e`.
    Defined(Box<Expr>),
    /// `strlen(e)`.
    Strlen(Box<Expr>),
    /// `strempty(e)`.
    Strempty(Box<Expr>),
}

/// A switch case label.
#[derive(Debug, Clone)]
pub enum Case {
    /// Integer.
    Int(i64),
    /// String.
    Str(String),
    /// Regex.
    Regex(Arc<regex::Regex>),
}

/// A statement.
#[derive(Debug, Clone)]
pub enum Stmt {
    /// An expression (usually a call); sets `$rc`.
    Expr(Expr),
    /// Assignment.
    Assign(Box<PvExpr>, AssignOp, Expr),
    /// `if`.
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    /// `switch`: cases with the index of their first statement in `body`.
    Switch {
        /// The switched value.
        subject: Expr,
        /// Labels and where their statements start.
        cases: Vec<(Case, usize)>,
        /// Where `default:` starts.
        default: Option<usize>,
        /// All case bodies, in order (falling through).
        body: Vec<Stmt>,
    },
    /// `while`.
    While(Expr, Vec<Stmt>),
    /// `return [e]`.
    Return(Option<Expr>),
    /// `exit [e]`.
    Exit(Option<Expr>),
    /// `drop`.
    Drop,
    /// `break`.
    Break,
    /// A nested block.
    Block(Vec<Stmt>),
    /// An action logged before it runs while the debugger's `cfgtrace`
    /// is on (compiled only when the debugger is loaded).
    Trace(Box<TracePoint>, Box<Stmt>),
}

/// Where an action was written and what Kamailio calls it, for
/// `cfgtrace`.
#[derive(Debug, Clone)]
pub struct TracePoint {
    /// Index of its file in [`Routes::files`].
    pub file: u32,
    /// Its line.
    pub line: u32,
    /// Kamailio's action type number (`a=`).
    pub a: u32,
    /// Its name (`n=`).
    pub name: &'static str,
}

/// One compiled route block.
#[derive(Debug, Clone)]
pub struct RouteBody {
    /// Kind.
    pub kind: RouteKind,
    /// Name, if any.
    pub name: Option<String>,
    /// Statements.
    pub body: Vec<Stmt>,
    /// The route types its functions were checked against when compiled
    /// (for a `route[...]` block, those of the blocks that call it; for
    /// the actions after an `async_sleep`, those of the block they are
    /// in). A `route[...]` block run on its own (tm's `t_continue` runs
    /// it as a failure_route) may call these too, as in Kamailio, which
    /// checks only when it reads the script.
    pub types: RouteType,
}

/// The whole compiled script.
#[derive(Debug, Default)]
pub struct Routes {
    /// All route bodies.
    pub blocks: Vec<RouteBody>,
    /// Index of `request_route`.
    pub request: Option<usize>,
    /// Index of the core `reply_route`.
    pub reply: Option<usize>,
    /// Index of `onsend_route`.
    pub onsend: Option<usize>,
    /// Named blocks by kind and name.
    pub by_name: HashMap<(RouteKind, String), usize>,
    /// `max_while_loops`.
    pub max_while: u32,
    /// The debugger's tracing switch, when the debugger is loaded.
    pub trace: Option<std::sync::Arc<sr_sdk::cfgtrace::CfgTrace>>,
    /// The configuration's files, for trace lines.
    pub files: Vec<String>,
}

impl Routes {
    /// Finds a named block of a kind (`route[X]` for [`RouteKind::Sub`]).
    pub fn find(&self, kind: RouteKind, name: &str) -> Option<usize> {
        self.by_name.get(&(kind, name.to_string())).copied()
    }

    /// Finds an event route by `group:name`.
    pub fn event(&self, name: &str) -> Option<usize> {
        self.find(RouteKind::Event, name)
    }
}

/// The kind of route block for a route type (for module fixups).
pub fn kind_of(rt: RouteType) -> Option<RouteKind> {
    Some(match rt {
        RouteType::REQUEST => RouteKind::Sub,
        RouteType::FAILURE => RouteKind::Failure,
        RouteType::TM_ONREPLY => RouteKind::OnReply,
        RouteType::BRANCH => RouteKind::Branch,
        RouteType::CORE_ONREPLY => RouteKind::Reply,
        RouteType::ONSEND => RouteKind::OnSend,
        RouteType::EVENT | RouteType::ONEVENT => RouteKind::Event,
        _ => return None,
    })
}

/// The route type a block of this kind runs as.
pub fn route_type_of(kind: RouteKind) -> RouteType {
    match kind {
        RouteKind::Request | RouteKind::Sub => RouteType::REQUEST,
        RouteKind::Failure => RouteType::FAILURE,
        RouteKind::OnReply => RouteType::TM_ONREPLY,
        RouteKind::Reply => RouteType::CORE_ONREPLY,
        RouteKind::Branch => RouteType::BRANCH,
        RouteKind::OnSend => RouteType::ONSEND,
        RouteKind::Event => RouteType::EVENT,
    }
}
