//! A Rust module ([`crate::declare_module!`]): calls its
//! `siprouter_module_v1` with the services table and turns the
//! [`ModuleV1`] descriptor into a [`ModuleDef`] whose handlers call
//! through the descriptor's dispatchers.

use crate::services::{self, MsgHandle};
use crate::types::{ArgV1, CoreApi, ModuleV1, PARAM_INT, PARAM_STRING, STAT_NO_RESET};
use libloading::os::unix::Library;
use sr_sdk::exports::{CmdExport, ModuleDef, ParamExport, ParamKind, ParamValue};
use sr_sdk::fixup::{Arg, FixupFn};
use sr_sdk::stats::{StatExport, StatSource};
use sr_sdk::{Fixed, RouteType};
use std::borrow::Cow;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::path::Path;
use std::sync::Arc;

/// The entry point's type.
type Entry = extern "C" fn(*const CoreApi) -> *const ModuleV1;

/// A value the module's fixup prepared, freed through the module when the
/// routes holding it are dropped.
struct RustFixed {
    ptr: *const c_void,
    desc: &'static ModuleV1,
}
// SAFETY: the pointer is the module's boxed `Fixed`, which is Send + Sync;
// the host only hands it back.
unsafe impl Send for RustFixed {}
// SAFETY: as above.
unsafe impl Sync for RustFixed {}

impl Drop for RustFixed {
    fn drop(&mut self) {
        (self.desc.free_fixup)(self.ptr);
    }
}

fn name_of(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: descriptor strings are NUL-terminated and owned by the
    // module's static descriptor, which lives as long as the process.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn slice<'a, T>(p: *const T, n: usize) -> &'a [T] {
    if p.is_null() || n == 0 {
        return &[];
    }
    // SAFETY: the descriptor's arrays hold `n` elements and are never
    // freed (the module is never unloaded).
    unsafe { std::slice::from_raw_parts(p, n) }
}

/// Converts a loaded Rust module.
pub(crate) fn load(lib: &'static Library, path: &Path) -> Result<ModuleDef, String> {
    let shown = path.display();
    // SAFETY: the stamp said this is a Rust module built with
    // declare_module!, which defines this function with this type.
    let entry: Entry = unsafe { lib.get::<Entry>(b"siprouter_module_v1\0") }
        .map(|s| *s)
        .map_err(|e| format!("module {shown}: {e}"))?;
    services::clear_error();
    let desc = entry(&services::CORE_API);
    if desc.is_null() {
        let why = services::take_error().unwrap_or_else(|| "no descriptor".into());
        return Err(format!("module {shown} failed to describe itself: {why}"));
    }
    // SAFETY: non-null descriptors point into the module's static storage.
    let desc: &'static ModuleV1 = unsafe { &*desc };
    if (desc.size as usize) < std::mem::size_of::<ModuleV1>() {
        return Err(format!("module {shown}: descriptor is too small"));
    }
    let name = name_of(desc.name);
    let mut def = ModuleDef::new(&name);
    for (i, c) in slice(desc.cmds, desc.n_cmds).iter().enumerate() {
        def.cmds.push(cmd(
            desc,
            i as c_uint,
            c.param_no as usize,
            c.flags,
            c.has_fixup != 0,
            name_of(c.name),
        ));
    }
    for (i, p) in slice(desc.params, desc.n_params).iter().enumerate() {
        let kind = match p.kind & (PARAM_INT | PARAM_STRING) {
            PARAM_INT => ParamKind::Int,
            PARAM_STRING => ParamKind::Str,
            _ => ParamKind::Any,
        };
        let idx = i as c_uint;
        def.params.push(ParamExport {
            name: name_of(p.name),
            kind,
            set: Arc::new(move |v| set_param(desc, idx, v)),
        });
    }
    for (i, s) in slice(desc.stats, desc.n_stats).iter().enumerate() {
        let idx = i as c_uint;
        def.stats.push(StatExport {
            name: name_of(s.name),
            no_reset: s.flags & STAT_NO_RESET != 0,
            source: StatSource::Func(Arc::new(move || (desc.stat_read)(idx))),
        });
    }
    def.init = Some(Arc::new(move |core| {
        services::remember_core(core);
        services::clear_error();
        match (desc.init)() {
            0 => Ok(()),
            rc => Err(services::take_error().unwrap_or_else(|| format!("mod_init returned {rc}"))),
        }
    }));
    def.child_init = Some(Arc::new(move |_core, rank| {
        services::clear_error();
        match (desc.child_init)(rank) {
            rc if rc < 0 => {
                Err(services::take_error().unwrap_or_else(|| format!("child_init returned {rc}")))
            }
            _ => Ok(()),
        }
    }));
    def.destroy = Some(Arc::new(move || (desc.destroy)()));
    if desc.has_response != 0 {
        def.response = Some(Arc::new(move |ctx| {
            let mut h = MsgHandle::new(ctx);
            (desc.response)(h.as_ptr()) == 0
        }));
    }
    Ok(def)
}

fn set_param(desc: &'static ModuleV1, idx: c_uint, v: ParamValue) -> Result<(), String> {
    services::clear_error();
    let rc = match &v {
        ParamValue::Int(i) => (desc.param_set)(idx, 1, *i, std::ptr::null(), 0),
        ParamValue::Str(s) => (desc.param_set)(idx, 0, 0, s.as_ptr().cast(), s.len()),
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(services::take_error().unwrap_or_else(|| format!("setter returned {rc}")))
    }
}

fn cmd(
    desc: &'static ModuleV1,
    idx: c_uint,
    params: usize,
    flags: c_uint,
    has_fixup: bool,
    name: String,
) -> CmdExport {
    let fname = name.clone();
    let fixup: Option<FixupFn> = has_fixup.then(|| -> FixupFn {
        Arc::new(move |_env, i, arg| {
            let (is_int, n, text): (c_int, i64, Cow<'_, str>) = match arg {
                Arg::Int(n) => (1, *n, Cow::Owned(n.to_string())),
                Arg::Str(s) => (0, 0, Cow::Borrowed(s.as_str())),
                Arg::Expr(_, t) => {
                    return Err(format!(
                        "parameter '{t}' of {fname} must be a constant: the module prepares it at load time"
                    ))
                }
            };
            let mut out: *const c_void = std::ptr::null();
            services::clear_error();
            let rc = (desc.fixup)(idx, i as c_uint, is_int, n, text.as_ptr().cast(), text.len(), &mut out);
            if rc != 0 || out.is_null() {
                return Err(services::take_error()
                    .unwrap_or_else(|| format!("fixup of parameter {} of {fname} failed", i + 1)));
            }
            Ok(Fixed::Custom(Arc::new(RustFixed { ptr: out, desc })))
        })
    });
    CmdExport {
        name,
        params,
        fixup,
        handler: Arc::new(move |ctx, p| {
            // Texts first (they need the context), then the handle.
            let texts: Vec<Option<String>> = p
                .iter()
                .map(|f| match f.custom::<RustFixed>() {
                    Some(_) => None,
                    None => Some(f.str(ctx).into_owned()),
                })
                .collect();
            let args: Vec<ArgV1> = p
                .iter()
                .zip(&texts)
                .map(|(f, t)| match (f.custom::<RustFixed>(), t) {
                    (Some(r), _) => ArgV1 {
                        fixed: r.ptr,
                        s: std::ptr::null(),
                        len: 0,
                    },
                    (None, t) => {
                        let t = t.as_deref().unwrap_or("");
                        ArgV1 {
                            fixed: std::ptr::null(),
                            s: t.as_ptr().cast(),
                            len: t.len(),
                        }
                    }
                })
                .collect();
            let route = ctx.route.0;
            let mut h = MsgHandle::new(ctx);
            (desc.call)(idx, h.as_ptr(), args.as_ptr(), args.len(), route)
        }),
        flags: RouteType(flags),
    }
}
