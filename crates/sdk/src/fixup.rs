//! Fixups: turning a function's parameter text into a prepared value once,
//! when the config is loaded, so that calling the function costs no
//! parsing. The standard fixups carry Kamailio's names (`spve`, `igp`,
//! `regexp`, `pvar`, ...).
//!
//! A fixup runs once per parameter after every module's `mod_init`, with
//! the parameter's index (0-based) and its [`Arg`]. What it returns is
//! kept for the life of the routes and handed to the function on every
//! call; it is dropped when the routes are (a reload, or shutdown), which
//! is Kamailio's `free_fixup`.

use crate::core_api::{Core, RouteId};
use crate::ctx::Ctx;
use crate::route::RouteType;
use crate::value::Value;
use regex::Regex;
use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Something the core evaluates per message: a pseudo-variable, a format
/// string such as `"sip:$rU@$fd"`, or an expression.
pub trait Eval: Send + Sync + fmt::Debug {
    /// The value for this message.
    fn eval(&self, ctx: &mut Ctx<'_>) -> Value<'static>;
}

/// A writable pseudo-variable (an lvalue such as `$var(x)`, `$avp(y)`).
pub trait Assign: Eval {
    /// Sets the value (`$null` deletes where the PV allows it).
    fn assign(&self, ctx: &mut Ctx<'_>, v: Value<'_>) -> Result<(), String>;
}

/// A parameter as written in the script, before its fixup.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A string literal or a bare pseudo-variable (`"$ru"`, `$ru`), as text.
    Str(String),
    /// An integer literal.
    Int(i64),
    /// Any other expression, compiled by the core; the text is for
    /// messages.
    Expr(Arc<dyn Eval>, String),
}

impl Arg {
    /// The text as written (for error messages).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Arg::Str(s) => Cow::Borrowed(s),
            Arg::Int(i) => Cow::Owned(i.to_string()),
            Arg::Expr(_, t) => Cow::Borrowed(t),
        }
    }
}

/// A prepared parameter.
#[derive(Clone)]
pub enum Fixed {
    /// A constant string.
    Str(String),
    /// A constant integer.
    Int(i64),
    /// Evaluated on each call.
    Dyn(Arc<dyn Eval>),
    /// A compiled regular expression.
    Regex(Arc<Regex>),
    /// A writable pseudo-variable.
    Pv(Arc<dyn Assign>),
    /// A route block.
    Route(RouteId),
    /// Anything a module's own fixup prepared.
    Custom(Arc<dyn Any + Send + Sync>),
}

impl fmt::Debug for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fixed::Str(s) => write!(f, "Str({s:?})"),
            Fixed::Int(i) => write!(f, "Int({i})"),
            Fixed::Dyn(e) => write!(f, "Dyn({e:?})"),
            Fixed::Regex(r) => write!(f, "Regex({})", r.as_str()),
            Fixed::Pv(p) => write!(f, "Pv({p:?})"),
            Fixed::Route(r) => write!(f, "Route({})", r.0),
            Fixed::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl Fixed {
    /// The string value for this call (constants are not copied).
    pub fn str<'a>(&'a self, ctx: &mut Ctx<'_>) -> Cow<'a, str> {
        match self {
            Fixed::Str(s) => Cow::Borrowed(s),
            Fixed::Int(i) => Cow::Owned(i.to_string()),
            Fixed::Dyn(e) => match e.eval(ctx) {
                Value::Str(s) => Cow::Owned(s.into_owned()),
                other => Cow::Owned(other.as_str().into_owned()),
            },
            Fixed::Pv(p) => Cow::Owned(p.eval(ctx).as_str().into_owned()),
            Fixed::Regex(r) => Cow::Borrowed(r.as_str()),
            Fixed::Route(_) | Fixed::Custom(_) => Cow::Borrowed(""),
        }
    }

    /// The integer value for this call.
    pub fn int(&self, ctx: &mut Ctx<'_>) -> i64 {
        match self {
            Fixed::Int(i) => *i,
            Fixed::Str(s) => crate::value::str_to_int(s),
            Fixed::Dyn(e) => e.eval(ctx).as_int(),
            Fixed::Pv(p) => p.eval(ctx).as_int(),
            _ => 0,
        }
    }

    /// The integer value for this call as Kamailio's `get_int_fparam`
    /// reads it: a constant integer, or a pseudo-variable holding an
    /// integer; `None` for a pseudo-variable holding a string (even of
    /// digits) or nothing.
    pub fn int_strict(&self, ctx: &mut Ctx<'_>) -> Option<i64> {
        let v = match self {
            Fixed::Int(i) => return Some(*i),
            Fixed::Dyn(e) => e.eval(ctx),
            Fixed::Pv(p) => p.eval(ctx),
            _ => return None,
        };
        match v {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// A module's own prepared value, by type.
    pub fn custom<T: Any + Send + Sync>(&self) -> Option<&T> {
        match self {
            Fixed::Custom(c) => c.downcast_ref(),
            _ => None,
        }
    }

    /// The constant string, if this is one.
    pub fn as_const_str(&self) -> Option<&str> {
        match self {
            Fixed::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// What a fixup may use: the core (routes, other modules' APIs) and the
/// compiler for pseudo-variables and format strings.
pub trait FixupEnv {
    /// The core.
    fn core(&self) -> &dyn Core;
    /// Looks up a route block of the config being compiled (`t_on_failure`
    /// names a `failure_route`). Ids stay valid across reloads.
    fn route_id(&self, kind: RouteType, name: &str) -> Option<RouteId>;
    /// Whether a module of this name is loaded. During `siprouter -c` no
    /// `mod_init` runs, so an API a module publishes there is missing even
    /// when the module is loaded: a fixup that binds one can use this to
    /// tell a missing module from a check run.
    fn is_loaded(&self, module: &str) -> bool;
    /// Compiles a format string with pseudo-variables (`"sip:$rU@$fd"`).
    fn compile_format(&self, s: &str) -> Result<Arc<dyn Eval>, String>;
    /// Compiles a readable pseudo-variable (`$ru`, `$(hdr(X){s.len})`).
    fn compile_pv(&self, s: &str) -> Result<Arc<dyn Eval>, String>;
    /// Compiles a writable pseudo-variable.
    fn compile_lvalue(&self, s: &str) -> Result<Arc<dyn Assign>, String>;
    /// The actions after the call being prepared, in its block, as a
    /// route a module can run later (Kamailio's `action->next`, which
    /// `async_sleep` goes on with after its pause). `None` when the call is
    /// not a statement of its own or is the last one of its block. The
    /// route runs only those actions: the block around it is not resumed.
    fn continuation(&self) -> Option<RouteId> {
        None
    }
}

/// A fixup: environment, parameter index (0-based), the argument.
pub type FixupFn = Arc<dyn Fn(&dyn FixupEnv, usize, &Arg) -> Result<Fixed, String> + Send + Sync>;

fn has_pv(s: &str) -> bool {
    s.contains('$')
}

/// A string that may contain pseudo-variables (Kamailio's `fixup_spve`).
pub fn spve(env: &dyn FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    match arg {
        Arg::Str(s) if has_pv(s) => env.compile_format(s).map(Fixed::Dyn),
        Arg::Str(s) => Ok(Fixed::Str(s.clone())),
        Arg::Int(i) => Ok(Fixed::Str(i.to_string())),
        Arg::Expr(e, _) => Ok(Fixed::Dyn(e.clone())),
    }
}

/// The pseudo-variable `s` starts with, compiled: the longest prefix that
/// is one and is not followed by more of a name (Kamailio's parse of a
/// single variable, which ignores what follows it).
fn leading_pv(env: &dyn FixupEnv, s: &str) -> Option<Arc<dyn Eval>> {
    if !s.starts_with('$') {
        return None;
    }
    let ends: Vec<usize> = s
        .char_indices()
        .map(|(i, _)| i)
        .skip(2)
        .chain(std::iter::once(s.len()))
        .filter(|&e| !s[e..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    ends.iter()
        .rev()
        .find_map(|&e| env.compile_pv(&s[..e]).ok())
}

/// One pseudo-variable or a literal string (Kamailio's `fixup_var_str`,
/// as tm's `t_reply` reason): text starting with a pseudo-variable is that
/// variable's value (Kamailio ignores what follows it: `"$var(x) b"` is
/// the value of `$var(x)`); any other text is taken as written, `$` and
/// all (`"a $var(x)"` stays `a $var(x)`).
pub fn var_str(env: &dyn FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    match arg {
        Arg::Str(s) => Ok(leading_pv(env, s).map_or_else(|| Fixed::Str(s.clone()), Fixed::Dyn)),
        _ => spve(env, i, arg),
    }
}

/// One pseudo-variable, else a format string (Kamailio's
/// `fixup_var_pve_str`, as sl's `sl_send_reply` reason): `"$var(x) b"` is
/// the value of `$var(x)` (what follows is ignored, as in Kamailio), `"a
/// $var(x)"` a format string.
pub fn var_pve_str(env: &dyn FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    match arg {
        Arg::Str(s) => match leading_pv(env, s) {
            Some(pv) => Ok(Fixed::Dyn(pv)),
            None => spve(env, i, arg),
        },
        _ => spve(env, i, arg),
    }
}

/// An integer or a pseudo-variable read as one (Kamailio's `fixup_igp`).
pub fn igp(env: &dyn FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    match arg {
        Arg::Int(i) => Ok(Fixed::Int(*i)),
        Arg::Str(s) if s.trim_start().starts_with('$') => env.compile_pv(s.trim()).map(Fixed::Dyn),
        Arg::Str(s) => s
            .trim()
            .parse::<i64>()
            .map(Fixed::Int)
            .map_err(|_| format!("'{s}' is not an integer")),
        Arg::Expr(e, _) => Ok(Fixed::Dyn(e.clone())),
    }
}

/// A constant string only.
pub fn const_str(_env: &dyn FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    match arg {
        Arg::Str(s) => Ok(Fixed::Str(s.clone())),
        Arg::Int(i) => Ok(Fixed::Str(i.to_string())),
        Arg::Expr(_, t) => Err(format!("'{t}' must be a constant string")),
    }
}

/// A constant integer only.
pub fn const_int(_env: &dyn FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    match arg {
        Arg::Int(i) => Ok(Fixed::Int(*i)),
        Arg::Str(s) => s
            .trim()
            .parse::<i64>()
            .map(Fixed::Int)
            .map_err(|_| format!("'{s}' is not an integer")),
        Arg::Expr(_, t) => Err(format!("'{t}' must be a constant integer")),
    }
}

/// A regular expression, matched case-insensitively as Kamailio's
/// `fixup_regexp` (REG_ICASE) does.
pub fn regexp(_env: &dyn FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    let text = match arg {
        Arg::Str(s) => s.clone(),
        Arg::Int(i) => i.to_string(),
        Arg::Expr(_, t) => return Err(format!("'{t}' must be a constant regular expression")),
    };
    regex::RegexBuilder::new(&text)
        .case_insensitive(true)
        .build()
        .map(|r| Fixed::Regex(Arc::new(r)))
        .map_err(|e| format!("bad regular expression '{text}': {e}"))
}

/// A writable pseudo-variable (Kamailio's `fixup_pvar`).
pub fn pvar(env: &dyn FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    match arg {
        Arg::Str(s) => env.compile_lvalue(s.trim()).map(Fixed::Pv),
        other => Err(format!("'{}' is not a pseudo-variable", other.text())),
    }
}

/// A fixup resolving a route block name of the given kind.
pub fn route(kind: RouteType) -> FixupFn {
    Arc::new(move |env, _i, arg| {
        let name = arg.text();
        env.route_id(kind, &name)
            .map(Fixed::Route)
            .ok_or_else(|| format!("{} '{}' is not defined", kind.name(), name))
    })
}

/// Wraps a plain fixup function.
pub fn f(func: fn(&dyn FixupEnv, usize, &Arg) -> Result<Fixed, String>) -> FixupFn {
    Arc::new(func)
}
