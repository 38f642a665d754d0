//! Loading a module from a shared library: recognise it from its symbols
//! (without running it), open it, check its version stamp before calling
//! anything, then hand it to the C or Rust converter. Libraries are never
//! closed.

use crate::elf;
use crate::types::{Stamp, ABI_MAJOR, ABI_MINOR, CORE_VERSION, LANG_C, LANG_RUST, MAGIC};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use sr_sdk::ModuleDef;
use std::ffi::{c_char, c_int, c_long, c_void, CStr};
use std::path::Path;

/// The data symbol holding a module's [`Stamp`].
pub const STAMP_SYMBOL: &str = "sr_module_stamp";
/// The function a Rust module exports ([`crate::declare_module!`]).
pub const RUST_ENTRY_SYMBOL: &str = "siprouter_module_v1";
/// The `struct module_exports` a C module exports.
pub const C_EXPORTS_SYMBOL: &str = "exports";
/// The services pointer a C module's `MODULE_VERSION` defines.
pub const C_CORE_SYMBOL: &str = "sr_core";

/// What the header tells a module author to do when a module is refused.
const REBUILD: &str = "modules must be rebuilt against include/siprouter/sr_module.h (C) or the sr-abi crate of this version (Rust)";

/// Loads the module at `path` (see the crate documentation).
pub fn load_module(path: &Path) -> Result<ModuleDef, String> {
    let shown = path.display();
    let data = std::fs::read(path).map_err(|e| format!("cannot read module {shown}: {e}"))?;
    let syms = elf::defined_symbols(&data).map_err(|e| format!("module {shown}: {e}"))?;
    let has = |s: &str| syms.iter().any(|x| x == s);
    if !has(STAMP_SYMBOL) {
        if has("module_version") && has("exports") {
            let built = elf::kamailio_version(&data).unwrap_or_else(|| "kamailio".into());
            return Err(format!(
                "module {shown} was built for {built}, this is {CORE_VERSION}: {REBUILD}; it was not loaded"
            ));
        }
        return Err(format!(
            "{shown} is not a siprouter module: it has no {STAMP_SYMBOL} symbol (C modules need MODULE_VERSION, Rust modules sr_abi::declare_module!)"
        ));
    }
    // SAFETY: opening runs the library's ELF constructors. The file
    // exports our stamp symbol, so it claims to be a siprouter module;
    // nothing else of it runs before the stamp is checked below.
    let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|e| format!("cannot load module {shown}: {e}"))?;
    // SAFETY: the symbol is a data object; we only take its address.
    let stamp_ptr: *const Stamp = unsafe { lib.get::<*const Stamp>(b"sr_module_stamp\0") }
        .map(|s| *s)
        .map_err(|e| format!("module {shown}: {e}"))?;
    check_stamp(stamp_ptr, &shown.to_string())?;
    // SAFETY: check_stamp verified the magic and that the module's stamp
    // is at least as large as ours, so every field read is inside it.
    let stamp = unsafe { &*stamp_ptr };
    // Never unloaded: handlers, statistics and strings of the module stay
    // referenced for the life of the process.
    let lib: &'static Library = Box::leak(Box::new(lib));
    match stamp.lang {
        LANG_C => crate::c_module::load(lib, stamp, path),
        LANG_RUST => crate::rust_module::load(lib, path),
        other => Err(format!("module {shown}: unknown module language {other}")),
    }
}

fn c_text(p: *const c_char) -> String {
    if p.is_null() {
        return "?".into();
    }
    // SAFETY: stamp strings are NUL-terminated static strings of the
    // module (its MODULE_VERSION or declare_module!).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The part of [`Stamp`] frozen across all ABI versions: magic, major,
/// minor, size and the core version string.
const HEAD: usize = 24;

/// Checks magic, version and build sizes; the message names the module,
/// what it was built for and what is running.
fn check_stamp(p: *const Stamp, shown: &str) -> Result<(), String> {
    if p.is_null() {
        return Err(format!("module {shown}: {STAMP_SYMBOL} is NULL"));
    }
    // Read the fixed head first (magic, versions, size): it is the same
    // in every version of the ABI.
    // SAFETY: the symbol points at an object of the module; every version
    // of the stamp starts with these 16 bytes (and `core_version`).
    let (magic, major, minor, size) = unsafe {
        let s = &*p;
        (s.magic, s.abi_major, s.abi_minor, s.size)
    };
    if magic != MAGIC {
        return Err(format!(
            "module {shown}: {STAMP_SYMBOL} has a bad magic number (not a siprouter module, or a corrupt one)"
        ));
    }
    let ours = std::mem::size_of::<Stamp>() as u32;
    let built_for = |v: &str| {
        format!(
            "module {shown} was built for {v} (module ABI {major}.{minor}), this is {CORE_VERSION} (module ABI {ABI_MAJOR}.{ABI_MINOR}): {REBUILD}"
        )
    };
    if major != ABI_MAJOR || minor > ABI_MINOR || size < ours {
        // The head up to `core_version` is the same in every ABI version.
        let v = if size as usize >= HEAD {
            // SAFETY: size covers the head, which holds core_version.
            c_text(unsafe { (*p).core_version })
        } else {
            "an unknown version".to_string()
        };
        return Err(built_for(&v));
    }
    // SAFETY: size >= ours, so the whole struct is readable.
    let s = unsafe { &*p };
    let want = (
        std::mem::size_of::<*const c_void>() as u8,
        std::mem::size_of::<c_int>() as u8,
        std::mem::size_of::<c_long>() as u8,
    );
    if (s.ptr_size, s.int_size, s.long_size) != want {
        return Err(format!(
            "module {shown} was built for another platform (pointer/int/long sizes {}/{}/{}, here {}/{}/{}): {REBUILD}",
            s.ptr_size, s.int_size, s.long_size, want.0, want.1, want.2
        ));
    }
    if s.flags & crate::types::STAMP_PANIC_ABORT != 0 {
        sr_sdk::lm_warn!(
            "module {shown} was built with panic=abort: a panic in it ends the server ({})",
            c_text(s.build)
        );
    }
    Ok(())
}
