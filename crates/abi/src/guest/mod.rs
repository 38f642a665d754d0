//! The module side of the ABI for Rust `cdylib` modules: what
//! [`crate::declare_module!`] expands to calls [`entry`], and the
//! dispatchers here run the module's ordinary [`ModuleDef`].
//!
//! A handler gets a real [`Ctx`](sr_sdk::Ctx): the message is parsed again in the
//! module from the bytes the host received, with the host's Request-URI,
//! destination URI and flags; after the handler returns, its changes
//! (edits, body, Request-URI, `$du`, flags, reply headers) are sent back
//! through the services table. [`Ctx::core`](sr_sdk::Ctx::core) is a proxy that forwards
//! what ABI 1 carries (replies, pseudo-variables, logging) and reports
//! the rest as unavailable.
//!
//! Every dispatcher runs the module's code under `catch_unwind`: a panic
//! is logged and becomes an error return; it never reaches the host.

mod message;
mod remote_core;

use crate::types::{
    ArgV1, CmdV1, CoreApi, ModuleV1, ParamV1, SipMsgOpaque, StatV1, ABI_MAJOR, PARAM_INT,
    PARAM_STRING, STAT_NO_RESET,
};
use message::with_message;
use remote_core::{GuestEnv, RemoteCore};
use sr_sdk::exports::{ModuleDef, ParamKind, ParamValue};
use sr_sdk::fixup::Arg;
use sr_sdk::log::L_ERR;
use sr_sdk::{Fixed, RouteType};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

static API: AtomicPtr<CoreApi> = AtomicPtr::new(std::ptr::null_mut());
static GUEST: OnceLock<Guest> = OnceLock::new();

thread_local! {
    pub(crate) static CURRENT: Cell<*mut SipMsgOpaque> = const { Cell::new(std::ptr::null_mut()) };
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(crate) fn api() -> Option<&'static CoreApi> {
    let p = API.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: the host passes the address of its static services table,
    // which lives as long as the process.
    Some(unsafe { &*p })
}

/// Everything the descriptor points into, kept alive in one static.
struct Guest {
    def: ModuleDef,
    name: CString,
    _names: Vec<CString>,
    _cmds: Vec<CmdV1>,
    _params: Vec<ParamV1>,
    _stats: Vec<StatV1>,
    desc: ModuleV1,
}

// SAFETY: the raw pointers in the vectors and descriptor point into the
// guest's own immutable data; ModuleDef is Send + Sync.
unsafe impl Sync for Guest {}
// SAFETY: as above.
unsafe impl Send for Guest {}

pub(crate) fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

impl Guest {
    fn new(def: ModuleDef) -> Guest {
        let mut names = Vec::new();
        let mut keep = |s: &str| {
            let c = cstring(s);
            let p = c.as_ptr();
            names.push(c);
            p
        };
        let cmds: Vec<CmdV1> = def
            .cmds
            .iter()
            .map(|c| CmdV1 {
                name: keep(&c.name),
                param_no: c.params as c_uint,
                flags: c.flags.0,
                has_fixup: c.fixup.is_some() as c_int,
            })
            .collect();
        let params: Vec<ParamV1> = def
            .params
            .iter()
            .map(|p| ParamV1 {
                name: keep(&p.name),
                kind: match p.kind {
                    ParamKind::Int => PARAM_INT,
                    ParamKind::Str => PARAM_STRING,
                    ParamKind::Any => PARAM_INT | PARAM_STRING,
                },
            })
            .collect();
        let stats: Vec<StatV1> = def
            .stats
            .iter()
            .map(|s| StatV1 {
                name: keep(&s.name),
                flags: if s.no_reset { STAT_NO_RESET } else { 0 },
            })
            .collect();
        let name = cstring(&def.name);
        let desc = ModuleV1 {
            size: std::mem::size_of::<ModuleV1>() as u32,
            name: name.as_ptr(),
            cmds: cmds.as_ptr(),
            n_cmds: cmds.len(),
            params: params.as_ptr(),
            n_params: params.len(),
            stats: stats.as_ptr(),
            n_stats: stats.len(),
            has_response: def.response.is_some() as c_int,
            init: g_init,
            child_init: g_child_init,
            destroy: g_destroy,
            response: g_response,
            call: g_call,
            fixup: g_fixup,
            free_fixup: g_free_fixup,
            param_set: g_param_set,
            stat_read: g_stat_read,
        };
        Guest {
            def,
            name,
            _names: names,
            _cmds: cmds,
            _params: params,
            _stats: stats,
            desc,
        }
    }
}

fn guest() -> Option<&'static Guest> {
    GUEST.get()
}

/// Sends a log line to the host (as the module).
pub(crate) fn log_line(level: c_int, text: &str) {
    let Some(a) = api() else {
        eprintln!("{text}");
        return;
    };
    let name = guest().map_or(c"module".as_ptr(), |g| g.name.as_ptr());
    let t = cstring(text);
    (a.log)(level, name, t.as_ptr());
}

pub(crate) fn set_error(text: &str) {
    if let Some(a) = api() {
        let t = cstring(text);
        (a.set_error)(t.as_ptr());
    }
}

fn panic_text(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Runs module code; a panic is logged (and set as the error text) and
/// turns into `fail`.
fn shield<R>(what: &str, fail: R, f: impl FnOnce() -> R) -> R {
    if let Some(a) = api() {
        sr_sdk::log::set_level((a.log_level)());
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let at = PANIC_AT
                .with(|l| l.borrow_mut().take())
                .map_or_else(String::new, |l| format!(" at {l}"));
            let msg = format!("{what} panicked{at}: {}", panic_text(&*p));
            log_line(L_ERR, &msg);
            set_error(&msg);
            fail
        }
    }
}

/// What `siprouter_module_v1` does: remembers the services table, builds
/// the module's [`ModuleDef`] once and returns its descriptor (NULL when
/// building it failed; the reason is logged).
pub fn entry(api_table: *const CoreApi, build: fn() -> ModuleDef) -> *const ModuleV1 {
    API.store(api_table.cast_mut(), Ordering::Release);
    let Some(a) = api() else {
        return std::ptr::null();
    };
    if a.abi_major != ABI_MAJOR {
        return std::ptr::null();
    }
    sr_sdk::log::set_sink(Box::new(|level, _target, args| {
        log_line(level, &args.to_string());
    }));
    // This hook belongs to the module's own copy of std: instead of
    // printing to stderr it keeps the panic's location for the one log
    // line `shield` writes.
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| l.to_string());
        PANIC_AT.with(|p| *p.borrow_mut() = at);
    }));
    shield("building the module's exports", std::ptr::null(), || {
        let g = GUEST.get_or_init(|| Guest::new(build()));
        &g.desc as *const ModuleV1
    })
}

extern "C" fn g_init() -> c_int {
    shield("mod_init", -1, || {
        let Some(g) = guest() else { return -1 };
        match &g.def.init {
            None => 0,
            Some(f) => match f(&RemoteCore) {
                Ok(()) => 0,
                Err(e) => {
                    set_error(&e);
                    -1
                }
            },
        }
    })
}

extern "C" fn g_child_init(rank: c_int) -> c_int {
    shield("child_init", -1, || {
        let Some(g) = guest() else { return -1 };
        match &g.def.child_init {
            None => 0,
            Some(f) => match f(&RemoteCore, rank) {
                Ok(()) => 0,
                Err(e) => {
                    set_error(&e);
                    -1
                }
            },
        }
    })
}

extern "C" fn g_destroy() {
    shield("destroy", (), || {
        if let Some(f) = guest().and_then(|g| g.def.destroy.as_ref()) {
            f();
        }
    })
}

extern "C" fn g_response(h: *mut SipMsgOpaque) -> c_int {
    shield("the response hook", 1, || {
        let Some(f) = guest().and_then(|g| g.def.response.as_ref()) else {
            return 1;
        };
        with_message(
            h,
            RouteType::CORE_ONREPLY,
            1,
            |ctx| if f(ctx) { 0 } else { 1 },
        )
    })
}

extern "C" fn g_call(
    cmd: c_uint,
    h: *mut SipMsgOpaque,
    args: *const ArgV1,
    n: usize,
    route: c_uint,
) -> c_int {
    let Some(g) = guest() else { return -1 };
    let Some(c) = g.def.cmds.get(cmd as usize) else {
        return -1;
    };
    shield(&format!("function {}", c.name), -1, || {
        let raw: &[ArgV1] = if args.is_null() || n == 0 {
            &[]
        } else {
            // SAFETY: the host passes `n` parameters at `args`, alive for
            // the call.
            unsafe { std::slice::from_raw_parts(args, n) }
        };
        let fixed: Vec<Fixed> = raw.iter().map(arg_value).collect();
        with_message(h, RouteType(route), -1, |ctx| (c.handler)(ctx, &fixed))
    })
}

fn arg_value(a: &ArgV1) -> Fixed {
    if !a.fixed.is_null() {
        // SAFETY: non-null `fixed` values are the boxes g_fixup made, kept
        // alive by the host until it calls g_free_fixup.
        return unsafe { &*a.fixed.cast::<Fixed>() }.clone();
    }
    Fixed::Str(bytes_text(a.s, a.len))
}

fn bytes_text(s: *const c_char, len: usize) -> String {
    if s.is_null() || len == 0 {
        return String::new();
    }
    // SAFETY: the host passes `len` readable bytes at `s`.
    let b = unsafe { std::slice::from_raw_parts(s.cast::<u8>(), len) };
    String::from_utf8_lossy(b).into_owned()
}

extern "C" fn g_fixup(
    cmd: c_uint,
    idx: c_uint,
    is_int: c_int,
    ival: i64,
    s: *const c_char,
    len: usize,
    out: *mut *const c_void,
) -> c_int {
    shield("a fixup", -1, || {
        let Some(c) = guest().and_then(|g| g.def.cmds.get(cmd as usize)) else {
            return -1;
        };
        let Some(f) = &c.fixup else { return -1 };
        let arg = if is_int != 0 {
            Arg::Int(ival)
        } else {
            Arg::Str(bytes_text(s, len))
        };
        match f(&GuestEnv, idx as usize, &arg) {
            Ok(v) if !out.is_null() => {
                // SAFETY: `out` is the host's writable pointer slot.
                unsafe { *out = Box::into_raw(Box::new(v)).cast::<c_void>() };
                0
            }
            Ok(_) => -1,
            Err(e) => {
                set_error(&format!("function {}: {e}", c.name));
                -1
            }
        }
    })
}

extern "C" fn g_free_fixup(p: *const c_void) {
    shield("freeing a fixup", (), || {
        if !p.is_null() {
            // SAFETY: `p` came from Box::into_raw in g_fixup and the host
            // frees each value once.
            drop(unsafe { Box::from_raw(p.cast_mut().cast::<Fixed>()) });
        }
    })
}

extern "C" fn g_param_set(
    idx: c_uint,
    is_int: c_int,
    ival: i64,
    s: *const c_char,
    len: usize,
) -> c_int {
    shield("a parameter setter", -1, || {
        let Some(p) = guest().and_then(|g| g.def.params.get(idx as usize)) else {
            return -1;
        };
        let v = if is_int != 0 {
            ParamValue::Int(ival)
        } else {
            ParamValue::Str(bytes_text(s, len))
        };
        match (p.set)(v) {
            Ok(()) => 0,
            Err(e) => {
                set_error(&e);
                -1
            }
        }
    })
}

extern "C" fn g_stat_read(idx: c_uint) -> i64 {
    shield("a statistic", 0, || {
        guest()
            .and_then(|g| g.def.stats.get(idx as usize))
            .map_or(0, |s| s.source.read())
    })
}
