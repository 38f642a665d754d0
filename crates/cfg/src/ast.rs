//! Abstract syntax tree of a Kamailio configuration.
//!
//! Every node carries a [`Span`] pointing at the user's text (for tokens that
//! came from a `#!define`, the span of the identifier that was replaced).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::pv::PvRef;
use crate::span::{FileId, Span};

/// A parsed configuration: top-level items in source order.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Files read, indexed by [`FileId`] (the main file is `FileId(0)`).
    pub files: Vec<PathBuf>,
    /// Items in the order they appear after preprocessing (order matters:
    /// `loadmodule` and `modparam` are applied as they are read).
    pub items: Vec<TopItem>,
    /// Defines in force at the end of parsing (including `MOD_<name>` from
    /// `loadmodule`, the caller's initial defines and `#!substdef`s).
    pub defines: BTreeMap<String, Option<String>>,
}

impl Config {
    /// Path of a file referenced by a span.
    pub fn file_path(&self, id: FileId) -> &Path {
        self.files
            .get(id.0 as usize)
            .map(PathBuf::as_path)
            .unwrap_or(Path::new(""))
    }

    /// Whether `name` was defined at the end of parsing.
    pub fn is_defined(&self, name: &str) -> bool {
        self.defines.contains_key(name)
    }

    /// All route blocks in source order.
    pub fn routes(&self) -> impl Iterator<Item = &RouteBlock> {
        self.items.iter().filter_map(|i| match i {
            TopItem::Route(r) => Some(r),
            _ => None,
        })
    }

    /// Route blocks of one kind, in source order.
    pub fn routes_of(&self, kind: RouteKind) -> impl Iterator<Item = &RouteBlock> {
        self.routes().filter(move |r| r.kind == kind)
    }

    /// The first route block of `kind` with the given name (`None` for unnamed blocks).
    pub fn route(&self, kind: RouteKind, name: Option<&str>) -> Option<&RouteBlock> {
        self.routes_of(kind).find(|r| r.name.as_deref() == name)
    }

    /// The main `request_route` (also written `route {}` or `route[0]`).
    pub fn request_route(&self) -> Option<&RouteBlock> {
        self.routes_of(RouteKind::Request).next()
    }

    /// `loadmodule` items in order.
    pub fn loadmodules(&self) -> impl Iterator<Item = &LoadModule> {
        self.items.iter().filter_map(|i| match i {
            TopItem::LoadModule(m) => Some(m),
            _ => None,
        })
    }

    /// `modparam` items in order.
    pub fn modparams(&self) -> impl Iterator<Item = &ModParam> {
        self.items.iter().filter_map(|i| match i {
            TopItem::ModParam(m) => Some(m),
            _ => None,
        })
    }

    /// Global parameter assignments in order.
    pub fn globals(&self) -> impl Iterator<Item = &Global> {
        self.items.iter().filter_map(|i| match i {
            TopItem::Global(g) => Some(g),
            _ => None,
        })
    }

    /// The last assignment of the global parameter `name` (later ones win).
    pub fn global(&self, name: &str) -> Option<&Global> {
        self.globals().filter(|g| g.name == name).last()
    }
}

/// A top-level item.
#[derive(Debug, Clone, PartialEq)]
pub enum TopItem {
    /// `name = value` core parameter.
    Global(Global),
    /// `group.name = value [desc "..."]` custom runtime config variable.
    CfgVar(CfgVar),
    /// `loadmodule "x.so"`.
    LoadModule(LoadModule),
    /// `loadpath "dir"` / `mpath = "dir"`.
    LoadPath(LoadPath),
    /// `modparam("mod", "param", value)`.
    ModParam(ModParam),
    /// `flags NAME[:n], ...;`.
    Flags(FlagsDecl),
    /// A route block.
    Route(RouteBlock),
}

/// A core parameter assignment. Names are not validated at this layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Parameter name (`debug`, `listen`, `kemi.onsend_route_callback`, ...).
    pub name: String,
    /// Location of the name.
    pub name_span: Span,
    /// Assigned value.
    pub value: GlobalValue,
    /// Location of the value.
    pub value_span: Span,
    /// Whole item.
    pub span: Span,
}

/// Value of a global parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum GlobalValue {
    /// A number (possibly negative).
    Int(i64),
    /// `yes`/`no`/`true`/`false`/`on`/`off`/`enable`/`disable`.
    Bool(bool),
    /// A quoted string (adjacent literals concatenated).
    Str(String),
    /// An unquoted word or address, joined from adjacent tokens:
    /// `LOG_LOCAL0`, `udp:127.0.0.1:5060`, `10.0.0.1`, `[::1]:5060`.
    Word(String),
    /// The value of `listen=`: socket(s) plus options.
    Listen(ListenValue),
    /// Several space-separated values on one line (e.g. `alias=a.com b.com`).
    List(Vec<GlobalValue>),
    /// A `{ name = value; ... }` block (Kamailio 6 `socket = {...}`).
    Block(Vec<Global>),
}

/// `listen = addr [addr...] [advertise addr] [name "s"] [virtual] [agname "g"]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListenValue {
    /// Socket addresses, e.g. `udp:127.0.0.1:5060` (strings are kept without quotes).
    pub addrs: Vec<String>,
    /// `advertise host[:port]`.
    pub advertise: Option<String>,
    /// `name "sock"`.
    pub name: Option<String>,
    /// `virtual` flag.
    pub virtual_: bool,
    /// `agname "group"` (async worker group).
    pub agname: Option<String>,
}

/// A custom config variable declaration `group.name = value [desc "text"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CfgVar {
    /// Group (`pstn` in `pstn.gw_ip`).
    pub group: String,
    /// Variable name (`gw_ip`).
    pub name: String,
    /// Location of `group.name`.
    pub name_span: Span,
    /// Default value (Int, Bool or Str).
    pub value: GlobalValue,
    /// Description given with `desc`.
    pub desc: Option<String>,
    /// Whole item.
    pub span: Span,
}

/// `loadmodule "path"`, `loadmodule("path", "opts")` or `loadmodulex`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadModule {
    /// Path or name as written (`tm.so`, `/usr/lib/.../tm.so`, `tm`).
    pub path: String,
    /// Options string of the two-argument form (`"g"`, `"o"`).
    pub opts: Option<String>,
    /// `loadmodulex` (variables in the name are to be evaluated).
    pub expand: bool,
    /// Location of the path string.
    pub path_span: Span,
    /// Whole item.
    pub span: Span,
}

impl LoadModule {
    /// Module name: base name without directory and `.so` (`tm` for `/x/tm.so`).
    pub fn module_name(&self) -> &str {
        let base = self.path.rsplit('/').next().unwrap_or(&self.path);
        base.strip_suffix(".so").unwrap_or(base)
    }
}

/// `loadpath "dirs"` / `mpath = "dirs"` (colon-separated directories).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPath {
    /// The path string.
    pub path: String,
    /// Whole item.
    pub span: Span,
}

/// `modparam("module", "param", value)` or `modparamx(...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModParam {
    /// Module name (may be a regex such as `nathelper|registrar`).
    pub module: String,
    /// Parameter name.
    pub param: String,
    /// Value.
    pub value: ModParamValue,
    /// `modparamx` (variables in the values are to be evaluated).
    pub expand: bool,
    /// Location of the module name.
    pub module_span: Span,
    /// Location of the parameter name.
    pub param_span: Span,
    /// Location of the value.
    pub value_span: Span,
    /// Whole item.
    pub span: Span,
}

/// Value of a `modparam`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModParamValue {
    /// String value.
    Str(String),
    /// Integer value (booleans `yes`/`no` become 1/0, as in Kamailio).
    Int(i64),
}

/// `flags NAME[:bit], ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagsDecl {
    /// Declared flags.
    pub flags: Vec<FlagDef>,
    /// Whole item.
    pub span: Span,
}

/// One named flag.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagDef {
    /// Flag name.
    pub name: String,
    /// Explicit bit position.
    pub bit: Option<i64>,
    /// Location.
    pub span: Span,
}

/// Kind of a route block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// `request_route`, `route {}` or `route[0]`.
    Request,
    /// `route[NAME]` sub-route.
    Sub,
    /// `failure_route[NAME]`.
    Failure,
    /// `onreply_route[NAME]` (tm reply route).
    OnReply,
    /// `reply_route`, `onreply_route {}` or `onreply_route[0]` (core reply route).
    Reply,
    /// `branch_route[NAME]`.
    Branch,
    /// `onsend_route`.
    OnSend,
    /// `event_route[group:name]`.
    Event,
}

/// A route block.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteBlock {
    /// Kind (normalised: `route[0]` is [`RouteKind::Request`]).
    pub kind: RouteKind,
    /// Keyword as written (`route`, `onreply_route`, ...).
    pub keyword: String,
    /// Name between brackets (`None` for unnamed blocks and `[0]` of the main routes).
    pub name: Option<String>,
    /// Location of the name.
    pub name_span: Option<Span>,
    /// Statements.
    pub body: Block,
    /// Whole block.
    pub span: Span,
}

/// A `{ ... }` sequence of statements (also used for a single-statement `if` body).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// Location (of the `{`, or of the single statement).
    pub span: Span,
}

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// What it is.
    pub kind: StmtKind,
    /// Location.
    pub span: Span,
}

/// Statement kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// An expression used as a statement, normally a [`Call`] (`t_relay();`, `route(X);`).
    Expr(Expr),
    /// `$pv = expr` or `$pv += expr`.
    Assign {
        /// Assigned pseudo-variable.
        target: PvRef,
        /// Location of the target.
        target_span: Span,
        /// Operator.
        op: AssignOp,
        /// Value.
        value: Expr,
    },
    /// `if (cond) then [else otherwise]`; `else if` is an `else` block holding one `If`.
    If {
        /// Condition.
        cond: Expr,
        /// Taken branch.
        then: Block,
        /// `else` branch.
        otherwise: Option<Block>,
    },
    /// `switch (subject) { case ...: ... default: ... }`.
    Switch {
        /// Switched value.
        subject: Expr,
        /// Cases in order (a `default` is a case with [`CaseLabel::Default`]).
        cases: Vec<SwitchCase>,
    },
    /// `while (cond) body`.
    While {
        /// Condition.
        cond: Expr,
        /// Body.
        body: Block,
    },
    /// `return [expr]` / `return(expr)`.
    Return(Option<Expr>),
    /// `exit [expr]`.
    Exit(Option<Expr>),
    /// `drop [expr]`.
    Drop(Option<Expr>),
    /// `break`.
    Break,
    /// A nested `{ ... }` block.
    Block(Block),
}

/// Assignment operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Assign,
    /// `+=`
    AddAssign,
}

/// One `case` (or `default`) of a switch; cases fall through without `break`.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchCase {
    /// The label.
    pub label: CaseLabel,
    /// Statements up to the next label.
    pub body: Vec<Stmt>,
    /// Location of the label.
    pub span: Span,
}

/// A switch label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseLabel {
    /// `case 1:` / `case -1:`.
    Int(i64),
    /// `case "text":`.
    Str(String),
    /// `case /"regex":`.
    Regex(String),
    /// `default:`.
    Default,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Location.
    pub span: Span,
}

/// Expression kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Integer literal (negative literals are folded: `-1`).
    Int(i64),
    /// String literal (adjacent literals concatenated; not yet split into a format).
    Str(String),
    /// `yes`/`no`/`true`/`false`/`on`/`off`/`enable`/`disable`.
    Bool(bool),
    /// `$null`.
    Null,
    /// A pseudo-variable.
    Pv(PvRef),
    /// `@select.expression` (text without `@`).
    Select(String),
    /// A bare identifier: route name, flag name, `L_INFO`, protocol names (`UDP`, `TCP`,
    /// `TLS`, `SCTP`, `WS`, `WSS`), address families (`INET`, `INET6`), ...
    Ident(String),
    /// An unquoted address or host joined from adjacent tokens
    /// (`udp:1.2.3.4:5060`, `10.0.0.1`, `sip.example.com`).
    Word(String),
    /// `addr/mask` network (`10.0.0.0/8`).
    Net {
        /// Address part.
        addr: String,
        /// Mask length.
        mask: i64,
    },
    /// `myself`.
    Myself,
    /// A core condition keyword (`method`, `uri`, `src_ip`, ...).
    CoreVar(CoreVar),
    /// A function call (core action or module function; resolved later).
    Call(Call),
    /// Unary operator.
    Unary(UnaryOp, Box<Expr>),
    /// Binary operator.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `(int)e` / `(str)e`.
    Cast(CastKind, Box<Expr>),
    /// `defined e`.
    Defined(Box<Expr>),
    /// `strlen(e)`.
    Strlen(Box<Expr>),
    /// `strempty(e)`.
    Strempty(Box<Expr>),
}

/// A function call `name(args...)` (or a bare `name;` statement, with `parens == false`).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Function name.
    pub name: String,
    /// Location of the name.
    pub name_span: Span,
    /// Arguments.
    pub args: Vec<Expr>,
    /// Whether the call was written with parentheses.
    pub parens: bool,
}

/// Target of a `route(...)` call.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteTarget<'a> {
    /// A fixed route name (`route(RELAY)`, `route("RELAY")`, `route(1)`).
    Name(String),
    /// Resolved at run time (`route($var(x))`).
    Dynamic(&'a Expr),
}

impl Call {
    /// For a `route(...)` call, the called route; `None` for other functions.
    pub fn route_target(&self) -> Option<RouteTarget<'_>> {
        if self.name != "route" || self.args.len() != 1 {
            return None;
        }
        let a = &self.args[0];
        Some(match &a.kind {
            ExprKind::Ident(s) | ExprKind::Str(s) | ExprKind::Word(s) => {
                RouteTarget::Name(s.clone())
            }
            ExprKind::Int(n) => RouteTarget::Name(n.to_string()),
            _ => RouteTarget::Dynamic(a),
        })
    }
}

/// Calls `f` on every function call in `stmts`, in source order, descending
/// into nested blocks, conditions, `switch` cases and call arguments.
pub fn for_each_call<'a>(stmts: &'a [Stmt], f: &mut impl FnMut(&'a Call)) {
    fn expr<'a>(e: &'a Expr, f: &mut impl FnMut(&'a Call)) {
        match &e.kind {
            ExprKind::Call(c) => {
                f(c);
                c.args.iter().for_each(|a| expr(a, f));
            }
            ExprKind::Unary(_, x)
            | ExprKind::Cast(_, x)
            | ExprKind::Defined(x)
            | ExprKind::Strlen(x)
            | ExprKind::Strempty(x) => expr(x, f),
            ExprKind::Binary(_, l, r) => {
                expr(l, f);
                expr(r, f);
            }
            _ => {}
        }
    }
    for s in stmts {
        match &s.kind {
            StmtKind::Expr(e) | StmtKind::Assign { value: e, .. } => expr(e, f),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                expr(cond, f);
                for_each_call(&then.stmts, f);
                if let Some(o) = otherwise {
                    for_each_call(&o.stmts, f);
                }
            }
            StmtKind::Switch { subject, cases } => {
                expr(subject, f);
                for c in cases {
                    for_each_call(&c.body, f);
                }
            }
            StmtKind::While { cond, body } => {
                expr(cond, f);
                for_each_call(&body.stmts, f);
            }
            StmtKind::Return(Some(e)) | StmtKind::Exit(Some(e)) | StmtKind::Drop(Some(e)) => {
                expr(e, f)
            }
            StmtKind::Block(b) => for_each_call(&b.stmts, f),
            _ => {}
        }
    }
}

/// Core condition keywords usable on the left of `==`, `!=`, `=~`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoreVar {
    /// `method`
    Method,
    /// `uri`
    Uri,
    /// `status`
    Status,
    /// `from_uri`
    FromUri,
    /// `to_uri`
    ToUri,
    /// `src_ip`
    SrcIp,
    /// `src_port`
    SrcPort,
    /// `dst_ip`
    DstIp,
    /// `dst_port`
    DstPort,
    /// `snd_ip`
    SndIp,
    /// `snd_port`
    SndPort,
    /// `snd_proto`
    SndProto,
    /// `snd_af`
    SndAf,
    /// `to_ip`
    ToIp,
    /// `to_port`
    ToPort,
    /// `proto`
    Proto,
    /// `af`
    Af,
    /// `msg:len`
    MsgLen,
}

impl CoreVar {
    /// Keyword for an identifier (`msg:len` is handled by the parser).
    pub fn from_keyword(s: &str) -> Option<CoreVar> {
        Some(match s {
            "method" => CoreVar::Method,
            "uri" => CoreVar::Uri,
            "status" => CoreVar::Status,
            "from_uri" => CoreVar::FromUri,
            "to_uri" => CoreVar::ToUri,
            "src_ip" => CoreVar::SrcIp,
            "src_port" => CoreVar::SrcPort,
            "dst_ip" => CoreVar::DstIp,
            "dst_port" => CoreVar::DstPort,
            "snd_ip" => CoreVar::SndIp,
            "snd_port" => CoreVar::SndPort,
            "snd_proto" => CoreVar::SndProto,
            "snd_af" => CoreVar::SndAf,
            "to_ip" => CoreVar::ToIp,
            "to_port" => CoreVar::ToPort,
            "proto" => CoreVar::Proto,
            "af" => CoreVar::Af,
            _ => return None,
        })
    }
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!` / `not`
    Not,
    /// unary `-`
    Neg,
    /// `~`
    BitNot,
}

/// Binary operators, see [`BinaryOp::precedence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `||` / `or`
    Or,
    /// `&&` / `and`
    And,
    /// `|`
    BitOr,
    /// `&`
    BitAnd,
    /// `^`
    BitXor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (POSIX extended, case-insensitive regex match)
    Match,
    /// `eq` (string comparison)
    StrEq,
    /// `ne` (string comparison)
    StrNe,
    /// `ieq` (integer comparison)
    IntEq,
    /// `ine` (integer comparison)
    IntNe,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `mod`
    Mod,
}

impl BinaryOp {
    /// Precedence level from Kamailio's `cfg.y` (higher binds tighter; all left-associative).
    pub fn precedence(self) -> u8 {
        use BinaryOp::*;
        match self {
            Or => 2,
            And => 3,
            BitOr => 4,
            BitAnd => 5,
            BitXor => 6,
            Shl => 7,
            Shr => 8,
            Eq | Ne | Match | StrEq | StrNe | IntEq | IntNe => 9,
            Gt | Lt | Ge | Le => 10,
            Add | Sub => 11,
            Mul | Div | Mod => 12,
        }
    }

    /// Operator text.
    pub fn as_str(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Or => "||",
            And => "&&",
            BitOr => "|",
            BitAnd => "&",
            BitXor => "^",
            Shl => "<<",
            Shr => ">>",
            Eq => "==",
            Ne => "!=",
            Match => "=~",
            StrEq => "eq",
            StrNe => "ne",
            IntEq => "ieq",
            IntNe => "ine",
            Gt => ">",
            Lt => "<",
            Ge => ">=",
            Le => "<=",
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "mod",
        }
    }

    /// Whether this is one of the comparison operators.
    pub fn is_comparison(self) -> bool {
        matches!(self.precedence(), 9 | 10)
    }
}

/// Cast target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastKind {
    /// `(int)`
    Int,
    /// `(str)`
    Str,
}
