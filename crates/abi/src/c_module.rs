//! A C module (`sr_module.h`, the seed's way): reads `struct
//! module_exports exports` and turns it into a [`ModuleDef`] whose
//! handlers call the module's functions.

use crate::services::{self, MsgHandle};
use crate::types::c::{
    ChildInitFunction, CmdExport5, CmdExport6, CmdFunction, DestroyFunction, FixupFunction,
    InitFunction, ModuleExports, ParamExport as CParam, ParamFunction, ResponseFunction,
    StatExport as CStat, StatFunction,
};
use crate::types::{
    CoreApi, SipMsgOpaque, Stamp, PARAM_INT, PARAM_STR, PARAM_STRING, PARAM_USE_FUNC, STAT_IS_FUNC,
    STAT_NO_RESET,
};
use libloading::os::unix::Library;
use sr_sdk::exports::{CmdExport, ModuleDef, ParamExport, ParamKind, ParamValue};
use sr_sdk::fixup::{Arg, FixupFn};
use sr_sdk::stats::{StatExport, StatSource};
use sr_sdk::{Fixed, RouteType, Stat};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::sync::Arc;

/// A pointer the module owns, handed back to it on each call. Sharing it
/// between worker threads is the module's contract (handlers run
/// concurrently and must treat fixed parameters as read-only).
struct ModPtr(*mut c_void);
// SAFETY: see the type's documentation; the host never dereferences it.
unsafe impl Send for ModPtr {}
// SAFETY: as above.
unsafe impl Sync for ModPtr {}

/// A parameter after its fixup: the text it started from (owned here, so
/// the module must not free it) and what the fixup made of it.
struct CFixed {
    _text: CString,
    value: ModPtr,
    free: Option<FixupFunction>,
    param_no: c_int,
}

impl Drop for CFixed {
    fn drop(&mut self) {
        if let Some(f) = self.free {
            let mut p = self.value.0;
            f(&mut p, self.param_no);
        }
    }
}

fn name_of(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: names in the export arrays are NUL-terminated strings of the
    // module, which is never unloaded.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// One row of `cmd_export_t`, whichever layout the module uses.
struct CmdRow {
    name: String,
    function: Option<CmdFunction>,
    param_no: c_int,
    fixup: Option<FixupFunction>,
    free_fixup: Option<FixupFunction>,
    flags: u32,
}

fn read_cmds(cmds: *const c_void, cmd_size: usize) -> Result<Vec<CmdRow>, String> {
    let mut out = Vec::new();
    if cmds.is_null() {
        return Ok(out);
    }
    for i in 0.. {
        let row = if cmd_size == std::mem::size_of::<CmdExport6>() {
            // SAFETY: the module declared this array with the 6-field
            // layout (its stamp says so) and ends it with a NULL name,
            // which stops the loop before reading past it.
            let r = unsafe { &*cmds.cast::<CmdExport6>().add(i) };
            (
                r.name,
                r.function,
                r.param_no,
                r.fixup,
                r.free_fixup,
                r.flags,
            )
        } else if cmd_size == std::mem::size_of::<CmdExport5>() {
            // SAFETY: as above, with the seed's 5-field layout.
            let r = unsafe { &*cmds.cast::<CmdExport5>().add(i) };
            (r.name, r.function, r.param_no, r.fixup, None, r.flags)
        } else {
            return Err(format!("unknown cmd_export_t size {cmd_size}"));
        };
        let Some(name) = name_of(row.0) else { break };
        out.push(CmdRow {
            name,
            function: row.1,
            param_no: row.2,
            fixup: row.3,
            free_fixup: row.4,
            flags: row.5,
        });
    }
    Ok(out)
}

fn cmd_export(row: CmdRow, module: &str) -> Result<Option<CmdExport>, String> {
    if row.param_no < 0 {
        return Ok(None); // NO_SCRIPT / variadic: not callable from a script
    }
    if row.param_no > 6 {
        return Err(format!(
            "function {} takes {} parameters; C functions take at most 6",
            row.name, row.param_no
        ));
    }
    let Some(function) = row.function else {
        return Err(format!("function {} has no C function", row.name));
    };
    let (fixup, free, name) = (row.fixup, row.free_fixup, row.name.clone());
    let param_no = row.param_no;
    let module = module.to_string();
    let fx: FixupFn = Arc::new(move |_env, i, arg| {
        let text = match arg {
            Arg::Str(s) => s.clone(),
            Arg::Int(n) => n.to_string(),
            Arg::Expr(_, t) => {
                return Err(format!(
                    "parameter '{t}' of {name} must be a constant: C module functions get their parameters as text"
                ))
            }
        };
        let text = CString::new(text).map_err(|_| format!("parameter of {name} contains a NUL"))?;
        let param_no = i as c_int + 1;
        let mut value: *mut c_void = text.as_ptr().cast_mut().cast();
        if let Some(f) = fixup {
            services::clear_error();
            let rc = f(&mut value, param_no);
            if rc < 0 {
                let why = services::take_error().unwrap_or_else(|| format!("returned {rc}"));
                return Err(format!(
                    "module {module}: fixup of parameter {param_no} of {name} failed: {why}"
                ));
            }
        }
        Ok(Fixed::Custom(Arc::new(CFixed {
            _text: text,
            value: ModPtr(value),
            free: if fixup.is_some() { free } else { None },
            param_no,
        })))
    });
    Ok(Some(CmdExport {
        name: row.name,
        params: row.param_no as usize,
        fixup: Some(fx),
        handler: Arc::new(move |ctx, p| {
            let arg = |i: usize| {
                p.get(i)
                    .and_then(|f| f.custom::<CFixed>())
                    .map_or(std::ptr::null_mut(), |c| c.value.0.cast::<c_char>())
            };
            let a: [*mut c_char; 6] = std::array::from_fn(arg);
            let mut h = MsgHandle::new(ctx);
            call_c(function, param_no, h.as_ptr(), &a)
        }),
        flags: RouteType(row.flags),
    }))
}

type Cmd3 = extern "C" fn(*mut SipMsgOpaque, *mut c_char, *mut c_char, *mut c_char) -> c_int;
type Cmd4 =
    extern "C" fn(*mut SipMsgOpaque, *mut c_char, *mut c_char, *mut c_char, *mut c_char) -> c_int;
type Cmd5 = extern "C" fn(
    *mut SipMsgOpaque,
    *mut c_char,
    *mut c_char,
    *mut c_char,
    *mut c_char,
    *mut c_char,
) -> c_int;
type Cmd6 = extern "C" fn(
    *mut SipMsgOpaque,
    *mut c_char,
    *mut c_char,
    *mut c_char,
    *mut c_char,
    *mut c_char,
    *mut c_char,
) -> c_int;

/// Calls a C script function with as many parameters as it declares
/// (Kamailio's `cmd_function` and `cmd_function3..6`, stored as
/// `cmd_function` in `cmd_export_t`).
fn call_c(f: CmdFunction, n: c_int, h: *mut SipMsgOpaque, a: &[*mut c_char; 6]) -> c_int {
    match n {
        0..=2 => f(h, a[0], a[1]),
        3 => {
            // SAFETY: the module exported this function with 3 parameters;
            // the pointer is re-typed to the arity it was declared with.
            let g = unsafe { std::mem::transmute::<CmdFunction, Cmd3>(f) };
            g(h, a[0], a[1], a[2])
        }
        4 => {
            // SAFETY: as above, 4 parameters.
            let g = unsafe { std::mem::transmute::<CmdFunction, Cmd4>(f) };
            g(h, a[0], a[1], a[2], a[3])
        }
        5 => {
            // SAFETY: as above, 5 parameters.
            let g = unsafe { std::mem::transmute::<CmdFunction, Cmd5>(f) };
            g(h, a[0], a[1], a[2], a[3], a[4])
        }
        _ => {
            // SAFETY: as above, 6 parameters (param_no is checked <= 6).
            let g = unsafe { std::mem::transmute::<CmdFunction, Cmd6>(f) };
            g(h, a[0], a[1], a[2], a[3], a[4], a[5])
        }
    }
}

/// Where a `modparam` value goes in the module.
struct ParamTarget {
    kind: u32,
    ptr: ModPtr,
}

fn param_export(p: &CParam, name: String) -> Result<ParamExport, String> {
    let kind_bits = p.kind & (PARAM_INT | PARAM_STRING | PARAM_STR);
    let kind = match kind_bits {
        PARAM_INT => ParamKind::Int,
        k if k & PARAM_INT == 0 && k != 0 => ParamKind::Str,
        _ => {
            return Err(format!(
                "parameter {name} has an unknown type {:#x}",
                p.kind
            ))
        }
    };
    if p.pointer.is_null() {
        return Err(format!("parameter {name} has no pointer"));
    }
    let t = ParamTarget {
        kind: p.kind,
        ptr: ModPtr(p.pointer),
    };
    let pname = name.clone();
    Ok(ParamExport {
        name,
        kind,
        set: Arc::new(move |v| set_param(&t, &pname, v)),
    })
}

fn set_param(t: &ParamTarget, name: &str, v: ParamValue) -> Result<(), String> {
    let kind = t.kind & !PARAM_USE_FUNC;
    let func = t.kind & PARAM_USE_FUNC != 0;
    match v {
        ParamValue::Int(i) => {
            let i = c_int::try_from(i).map_err(|_| format!("{i} does not fit an int"))?;
            if func {
                // SAFETY: with PARAM_USE_FUNC the pointer is the module's
                // setter `int f(modparam_t, void*)`.
                let f: ParamFunction = unsafe { std::mem::transmute(t.ptr.0) };
                return call_setter(f, PARAM_INT, i as isize as *mut c_void, name);
            }
            // SAFETY: a PARAM_INT pointer is the module's `int` variable;
            // parameters are set on the main thread while loading.
            unsafe { *t.ptr.0.cast::<c_int>() = i };
        }
        ParamValue::Str(s) => {
            let c = CString::new(s).map_err(|_| "the value contains a NUL".to_string())?;
            let len = c.as_bytes().len() as c_int;
            // Parameter strings live as long as the module: leaked.
            let p = c.into_raw();
            if func {
                // SAFETY: as above, the module's setter.
                let f: ParamFunction = unsafe { std::mem::transmute(t.ptr.0) };
                if kind & PARAM_STR != 0 {
                    let s = Box::into_raw(Box::new(crate::types::SrStr { s: p, len }));
                    return call_setter(f, PARAM_STR, s.cast(), name);
                }
                return call_setter(f, PARAM_STRING, p.cast(), name);
            }
            if kind & PARAM_STR != 0 {
                // SAFETY: a PARAM_STR pointer is the module's `str`.
                unsafe {
                    *t.ptr.0.cast::<crate::types::SrStr>() = crate::types::SrStr { s: p, len }
                };
            } else {
                // SAFETY: a PARAM_STRING pointer is the module's `char*`.
                unsafe { *t.ptr.0.cast::<*mut c_char>() = p };
            }
        }
    }
    Ok(())
}

fn call_setter(f: ParamFunction, kind: u32, v: *mut c_void, name: &str) -> Result<(), String> {
    services::clear_error();
    let rc = f(kind, v);
    if rc < 0 {
        let why = services::take_error().unwrap_or_else(|| format!("returned {rc}"));
        return Err(format!("setting {name} failed: {why}"));
    }
    Ok(())
}

fn stat_export(s: &CStat, name: String) -> StatExport {
    let no_reset = s.flags & STAT_NO_RESET != 0;
    if s.flags & STAT_IS_FUNC != 0 && !s.pointer.is_null() {
        // SAFETY: with STAT_IS_FUNC the pointer is `long f(void)`.
        let f: StatFunction = unsafe { std::mem::transmute(s.pointer) };
        return StatExport {
            name,
            no_reset: true,
            source: StatSource::Func(Arc::new(move || f() as i64)),
        };
    }
    let stat = Stat::new();
    if !s.pointer.is_null() {
        // SAFETY: the pointer is the module's `stat_var*` variable; it is
        // written once, while loading.
        unsafe { *s.pointer = services::stat_handle(&stat) };
    }
    StatExport {
        name,
        no_reset,
        source: StatSource::Value(stat),
    }
}

/// Converts a loaded C module.
pub(crate) fn load(lib: &'static Library, stamp: &Stamp, path: &Path) -> Result<ModuleDef, String> {
    let shown = path.display();
    // SAFETY: we take the address of the module's `sr_core` global (a
    // `const struct sr_core_api *`) and store the services table in it,
    // before any of the module's functions runs.
    unsafe {
        let core = lib.get::<*mut *const CoreApi>(b"sr_core\0").map_err(|e| {
            format!("module {shown}: no sr_core symbol (MODULE_VERSION missing?): {e}")
        })?;
        **core = &services::CORE_API;
    }
    // SAFETY: the address of the module's `struct module_exports exports`.
    let exp: *const ModuleExports = unsafe { lib.get::<*const ModuleExports>(b"exports\0") }
        .map(|s| *s)
        .map_err(|e| format!("module {shown}: no exports symbol: {e}"))?;
    if (stamp.exports_size as usize) < std::mem::size_of::<ModuleExports>() {
        return Err(format!(
            "module {shown}: struct module_exports is {} bytes, expected {}",
            stamp.exports_size,
            std::mem::size_of::<ModuleExports>()
        ));
    }
    // SAFETY: the symbol is the module's exports struct, whose size the
    // stamp confirmed.
    let exp = unsafe { &*exp };
    let name = name_of(exp.name).ok_or_else(|| format!("module {shown}: exports has no name"))?;
    let mut def = ModuleDef::new(&name);
    let err = |e: String| format!("module {name} ({shown}): {e}");
    for row in read_cmds(exp.cmds, stamp.cmd_size as usize).map_err(err)? {
        if let Some(c) = cmd_export(row, &name).map_err(err)? {
            def.cmds.push(c);
        }
    }
    if !exp.params.is_null() {
        for i in 0.. {
            // SAFETY: a param_export_t array ended by a NULL name.
            let p = unsafe { &*exp.params.add(i) };
            let Some(pn) = name_of(p.name) else { break };
            def.params.push(param_export(p, pn).map_err(err)?);
        }
    }
    if !exp.stats.is_null() {
        for i in 0.. {
            // SAFETY: a stat_export_t array ended by a NULL name.
            let s = unsafe { &*exp.stats.add(i) };
            let Some(sn) = name_of(s.name) else { break };
            def.stats.push(stat_export(s, sn));
        }
    }
    hooks(
        &mut def,
        exp.init,
        exp.child_init,
        exp.destroy,
        exp.response,
    );
    Ok(def)
}

fn hooks(
    def: &mut ModuleDef,
    init: Option<InitFunction>,
    child: Option<ChildInitFunction>,
    destroy: Option<DestroyFunction>,
    response: Option<ResponseFunction>,
) {
    def.init = Some(Arc::new(move |core| {
        services::remember_core(core);
        let Some(f) = init else { return Ok(()) };
        services::clear_error();
        match f() {
            0 => Ok(()),
            rc => Err(services::take_error().unwrap_or_else(|| format!("mod_init returned {rc}"))),
        }
    }));
    if let Some(f) = child {
        def.child_init =
            Some(Arc::new(move |_core, rank| {
                services::clear_error();
                match f(rank) {
                    rc if rc < 0 => Err(services::take_error()
                        .unwrap_or_else(|| format!("child_init returned {rc}"))),
                    _ => Ok(()),
                }
            }));
    }
    if let Some(f) = destroy {
        def.destroy = Some(Arc::new(move || f()));
    }
    if let Some(f) = response {
        def.response = Some(Arc::new(move |ctx| {
            let mut h = MsgHandle::new(ctx);
            f(h.as_ptr()) == 0
        }));
    }
}
