//! The `#[repr(C)]` types of the ABI, shared by C modules (through
//! `include/siprouter/sr_module.h`, which declares the same layouts) and
//! Rust modules (through [`crate::declare_module!`]).
//!
//! Layout rules: nothing but C types, raw pointers and `extern "C"`
//! function pointers crosses; structs that may grow carry their size and
//! only ever get fields appended (a minor ABI bump).

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};

/// `"SRMODABI"` read as a little-endian `u64`: the first field of every
/// [`Stamp`].
pub const MAGIC: u64 = u64::from_le_bytes(*b"SRMODABI");
/// Major ABI version: a module built for another major is refused.
pub const ABI_MAJOR: u16 = 1;
/// Minor ABI version: fields and services are only appended within a
/// major; a module built for a newer minor than the host is refused.
pub const ABI_MINOR: u16 = 0;
/// The running core as the stamp names it, e.g. `siprouter 0.1.0`.
pub const CORE_VERSION: &str = concat!("siprouter ", env!("CARGO_PKG_VERSION"));

/// [`Stamp::lang`] of a module written in C against `sr_module.h`.
pub const LANG_C: u8 = 1;
/// [`Stamp::lang`] of a Rust `cdylib` made with [`crate::declare_module!`].
pub const LANG_RUST: u8 = 2;
/// [`Stamp::flags`] bit: the module was built with `panic = "abort"`, so a
/// panic in it ends the process.
pub const STAMP_PANIC_ABORT: u32 = 1;

/// `PARAM_STRING`: a `char*` parameter.
pub const PARAM_STRING: c_uint = 1 << 0;
/// `PARAM_INT`: an `int` parameter.
pub const PARAM_INT: c_uint = 1 << 1;
/// `PARAM_STR`: a `str` parameter.
pub const PARAM_STR: c_uint = 1 << 2;
/// `PARAM_USE_FUNC`: the pointer is a setter called for each `modparam`.
pub const PARAM_USE_FUNC: c_uint = 1 << 31;
/// `STAT_NO_RESET`: not cleared by `stats.reset_statistics`.
pub const STAT_NO_RESET: c_int = 1;
/// `STAT_IS_FUNC`: the pointer is a `long (*)(void)` computing the value.
pub const STAT_IS_FUNC: c_int = 8;

/// Kamailio's protocol numbers, as `msg_get_rcv` reports them.
pub mod proto {
    /// UDP
    pub const UDP: i32 = 1;
    /// TCP
    pub const TCP: i32 = 2;
    /// TLS
    pub const TLS: i32 = 3;
    /// SCTP
    pub const SCTP: i32 = 4;
    /// WebSocket
    pub const WS: i32 = 5;
    /// Secure WebSocket
    pub const WSS: i32 = 6;
}

/// Kamailio's `str`: a pointer and a length, not NUL-terminated.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SrStr {
    /// First byte.
    pub s: *const c_char,
    /// Length in bytes.
    pub len: c_int,
}

impl SrStr {
    /// The empty string.
    pub const EMPTY: SrStr = SrStr {
        s: std::ptr::null(),
        len: 0,
    };
}

/// The opaque message handle (`struct sip_msg *` in C). Valid only during
/// the call it is passed to.
#[repr(C)]
pub struct SipMsgOpaque {
    _private: [u8; 0],
}

/// The opaque statistic handle (`stat_var *` in C).
#[repr(C)]
pub struct StatVar {
    _private: [u8; 0],
}

/// The version stamp every module exports as the data symbol
/// `sr_module_stamp` (C: the `MODULE_VERSION` macro; Rust:
/// [`crate::declare_module!`]). The loader reads it before calling any of
/// the module's code.
///
/// The head, `magic` through `core_version`, is frozen: every ABI version,
/// major or minor, starts with it, so that a refused module can still be
/// named with the version it was built for.
#[repr(C)]
#[derive(Debug)]
pub struct Stamp {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`ABI_MAJOR`] the module was built for.
    pub abi_major: u16,
    /// [`ABI_MINOR`] the module was built for.
    pub abi_minor: u16,
    /// `sizeof` this struct in the module.
    pub size: u32,
    /// The core version the module was built against (diagnostics).
    pub core_version: *const c_char,
    /// The compiler and build options (diagnostics).
    pub build: *const c_char,
    /// `sizeof(void*)`.
    pub ptr_size: u8,
    /// `sizeof(int)`.
    pub int_size: u8,
    /// `sizeof(long)`.
    pub long_size: u8,
    /// [`LANG_C`] or [`LANG_RUST`].
    pub lang: u8,
    /// [`STAMP_PANIC_ABORT`] and future bits.
    pub flags: u32,
    /// C only: `sizeof(cmd_export_t)` (tells the seed's 5-field layout
    /// from Kamailio 5's 6-field one).
    pub cmd_size: u32,
    /// C only: `sizeof(struct module_exports)`.
    pub exports_size: u32,
}

// SAFETY: a stamp is immutable static data; its pointers point to static
// string literals.
unsafe impl Sync for Stamp {}

impl Stamp {
    /// The stamp of a Rust module built against this crate.
    pub const fn rust() -> Stamp {
        Stamp {
            magic: MAGIC,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            size: std::mem::size_of::<Stamp>() as u32,
            core_version: RUST_CORE_VERSION.as_ptr(),
            build: RUST_BUILD.as_ptr(),
            ptr_size: std::mem::size_of::<*const c_void>() as u8,
            int_size: std::mem::size_of::<c_int>() as u8,
            long_size: std::mem::size_of::<c_long>() as u8,
            lang: LANG_RUST,
            flags: if cfg!(panic = "abort") {
                STAMP_PANIC_ABORT
            } else {
                0
            },
            cmd_size: 0,
            exports_size: 0,
        }
    }
}

const RUST_CORE_VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!("siprouter ", env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(s) => s,
    Err(_) => panic!("version string has a NUL"),
};

const RUST_BUILD: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!("rust; sr-abi ", env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(s) => s,
    Err(_) => panic!("build string has a NUL"),
};

/// The services the host offers a module: a table of `extern "C"`
/// function pointers, handed to a C module through its `sr_core` global
/// and to a Rust module through `siprouter_module_v1`. Append-only within
/// a major version; `size` tells how much of it a host filled in.
///
/// Conventions: message functions take the handle the module was called
/// with; they return 0 (or a count) on success and a negative value on
/// failure; `SrStr` results point into memory valid until the module's
/// function returns; C strings passed in are NUL-terminated.
#[repr(C)]
pub struct CoreApi {
    /// `sizeof` this table in the host.
    pub size: u32,
    /// The host's [`ABI_MAJOR`].
    pub abi_major: u16,
    /// The host's [`ABI_MINOR`].
    pub abi_minor: u16,
    /// The running version, e.g. `siprouter 0.1.0`.
    pub version: *const c_char,
    /// The current log level (`debug=`): L_ERR -1 ... L_DBG 3.
    pub log_level: extern "C" fn() -> c_int,
    /// Writes a log line: level, module name, text.
    pub log: extern "C" fn(c_int, *const c_char, *const c_char),
    /// Sets the error text reported when the current `mod_init`,
    /// `child_init`, fixup or parameter setter fails.
    pub set_error: extern "C" fn(*const c_char),
    /// 1 for a request, 0 for a reply.
    pub msg_is_request: extern "C" fn(*mut SipMsgOpaque) -> c_int,
    /// The method (requests; the CSeq method of replies).
    pub msg_get_method: extern "C" fn(*mut SipMsgOpaque, *mut SrStr) -> c_int,
    /// The current Request-URI (`$ru`, after rewrites).
    pub msg_get_ruri: extern "C" fn(*mut SipMsgOpaque, *mut SrStr) -> c_int,
    /// The destination URI (`$du`), empty when unset.
    pub msg_get_dst_uri: extern "C" fn(*mut SipMsgOpaque, *mut SrStr) -> c_int,
    /// The value of the `index`-th header called `name` (any case, compact
    /// forms too); -1 when there is none.
    pub msg_get_header: extern "C" fn(*mut SipMsgOpaque, *const c_char, c_int, *mut SrStr) -> c_int,
    /// The body as received.
    pub msg_get_body: extern "C" fn(*mut SipMsgOpaque, *mut SrStr) -> c_int,
    /// The source IP (text) and port.
    pub msg_get_source: extern "C" fn(*mut SipMsgOpaque, *mut SrStr, *mut c_int) -> c_int,
    /// The status code of a reply, 0 for a request.
    pub msg_get_status: extern "C" fn(*mut SipMsgOpaque) -> c_int,
    /// The received bytes.
    pub msg_get_buf: extern "C" fn(*mut SipMsgOpaque, *mut SrStr) -> c_int,
    /// Source and local address as `ip:port` text, and the protocol
    /// ([`proto`]).
    pub msg_get_rcv: extern "C" fn(*mut SipMsgOpaque, *mut SrStr, *mut SrStr, *mut c_int) -> c_int,
    /// The message flags (`$mf`).
    pub msg_get_flags: extern "C" fn(*mut SipMsgOpaque, *mut c_uint) -> c_int,
    /// A pseudo-variable's value as text (`$rU`, `$hdr(X)`, `$var(x)`);
    /// -1 when it has none.
    pub pv_get: extern "C" fn(*mut SipMsgOpaque, *const c_char, *mut SrStr) -> c_int,
    /// Appends `name: value` after the last header.
    pub msg_append_header: extern "C" fn(*mut SipMsgOpaque, *const c_char, *const c_char) -> c_int,
    /// Removes every header called `name`; returns how many, -1 for none.
    pub msg_remove_header: extern "C" fn(*mut SipMsgOpaque, *const c_char) -> c_int,
    /// Sets the Request-URI (`$ru`).
    pub msg_set_ruri: extern "C" fn(*mut SipMsgOpaque, *const c_char) -> c_int,
    /// Sets the destination URI (`$du`); an empty string clears it.
    pub msg_set_dst_uri: extern "C" fn(*mut SipMsgOpaque, *const c_char) -> c_int,
    /// Replaces the message flags.
    pub msg_set_flags: extern "C" fn(*mut SipMsgOpaque, c_uint) -> c_int,
    /// Replaces the received bytes `start..end` with `len` bytes of text
    /// (an insertion when `start == end`), as an edit applied on sending.
    pub msg_edit: extern "C" fn(*mut SipMsgOpaque, c_uint, c_uint, *const c_char, c_int) -> c_int,
    /// Replaces the body (Content-Length is fixed on sending); a NULL
    /// content type keeps the old one.
    pub msg_set_body:
        extern "C" fn(*mut SipMsgOpaque, *const c_char, c_int, *const c_char) -> c_int,
    /// Adds header lines to the next locally generated reply.
    pub append_to_reply: extern "C" fn(*mut SipMsgOpaque, *const c_char) -> c_int,
    /// Sets a pseudo-variable to a string.
    pub pv_set_str: extern "C" fn(*mut SipMsgOpaque, *const c_char, *const c_char) -> c_int,
    /// Sends a stateless reply to the request.
    pub send_reply: extern "C" fn(*mut SipMsgOpaque, c_int, *const c_char) -> c_int,
    /// Adds `n` to a statistic.
    pub stat_update: extern "C" fn(*mut StatVar, c_long),
    /// A statistic's value.
    pub stat_get: extern "C" fn(*mut StatVar) -> c_long,
    /// Resets a statistic to 0.
    pub stat_reset: extern "C" fn(*mut StatVar),
    /// 1 once the server is shutting down.
    pub shutting_down: extern "C" fn() -> c_int,
}

// SAFETY: the table is immutable; `version` points to a static string.
unsafe impl Sync for CoreApi {}

/// A script function of a Rust module.
#[repr(C)]
#[derive(Debug)]
pub struct CmdV1 {
    /// Name used in the script.
    pub name: *const c_char,
    /// Number of parameters.
    pub param_no: c_uint,
    /// Route types it may be called from (Kamailio's flag values).
    pub flags: c_uint,
    /// 1 when the module prepares the parameters itself
    /// ([`ModuleV1::fixup`]); 0 when the host passes each parameter as
    /// text, pseudo-variables evaluated.
    pub has_fixup: c_int,
}

/// A parameter of a Rust module.
#[repr(C)]
#[derive(Debug)]
pub struct ParamV1 {
    /// Name used in `modparam`.
    pub name: *const c_char,
    /// [`PARAM_INT`], [`PARAM_STRING`] or both.
    pub kind: c_uint,
}

/// A statistic of a Rust module.
#[repr(C)]
#[derive(Debug)]
pub struct StatV1 {
    /// Name within the module's group.
    pub name: *const c_char,
    /// [`STAT_NO_RESET`] and friends.
    pub flags: c_int,
}

/// One parameter of a call: either the value a module fixup prepared
/// (`fixed`), or the text the host evaluated (`s`, `len`).
#[repr(C)]
#[derive(Debug)]
pub struct ArgV1 {
    /// What [`ModuleV1::fixup`] returned, or NULL.
    pub fixed: *const c_void,
    /// The text, when `fixed` is NULL.
    pub s: *const c_char,
    /// Length of `s`.
    pub len: usize,
}

/// What `siprouter_module_v1` returns: a Rust module's exports, with
/// module-wide dispatchers taking the index of the function, parameter or
/// statistic.
#[repr(C)]
#[derive(Debug)]
pub struct ModuleV1 {
    /// `sizeof` this struct in the module (append-only).
    pub size: u32,
    /// Module name.
    pub name: *const c_char,
    /// Script functions.
    pub cmds: *const CmdV1,
    /// Number of `cmds`.
    pub n_cmds: usize,
    /// Parameters.
    pub params: *const ParamV1,
    /// Number of `params`.
    pub n_params: usize,
    /// Statistics.
    pub stats: *const StatV1,
    /// Number of `stats`.
    pub n_stats: usize,
    /// 1 when the module has a response hook.
    pub has_response: c_int,
    /// `mod_init`: 0 is success.
    pub init: extern "C" fn() -> c_int,
    /// `child_init(rank)`: negative is failure.
    pub child_init: extern "C" fn(c_int) -> c_int,
    /// `destroy`.
    pub destroy: extern "C" fn(),
    /// The response hook: 0 when the reply was consumed.
    pub response: extern "C" fn(*mut SipMsgOpaque) -> c_int,
    /// Calls function `cmd`: handle, parameters, their count, the route
    /// type running. Kamailio's return convention.
    pub call: extern "C" fn(c_uint, *mut SipMsgOpaque, *const ArgV1, usize, c_uint) -> c_int,
    /// Prepares parameter `idx` (0-based) of function `cmd` from its text
    /// (`is_int` set for an integer literal, value in the `i64`); stores
    /// the prepared value in the out pointer; 0 is success.
    pub fixup: extern "C" fn(
        c_uint,
        c_uint,
        c_int,
        i64,
        *const c_char,
        usize,
        *mut *const c_void,
    ) -> c_int,
    /// Frees a value [`ModuleV1::fixup`] prepared.
    pub free_fixup: extern "C" fn(*const c_void),
    /// Sets parameter `idx`: `is_int`, the integer, the text and its
    /// length; 0 is success.
    pub param_set: extern "C" fn(c_uint, c_int, i64, *const c_char, usize) -> c_int,
    /// Reads statistic `idx`.
    pub stat_read: extern "C" fn(c_uint) -> i64,
}

// SAFETY: the descriptor is built once and never changed; its pointers
// point into data owned by the same immutable static.
unsafe impl Sync for ModuleV1 {}
// SAFETY: as above; moving the descriptor moves no ownership.
unsafe impl Send for ModuleV1 {}

/// The layouts `sr_module.h` declares for C modules.
pub mod c {
    use super::{SipMsgOpaque, StatVar};
    use std::ffi::{c_char, c_int, c_long, c_uint, c_void};

    /// `int f(struct sip_msg*, char*, char*)`.
    pub type CmdFunction = extern "C" fn(*mut SipMsgOpaque, *mut c_char, *mut c_char) -> c_int;
    /// `int fixup(void** param, int param_no)` (and `free_fixup`).
    pub type FixupFunction = extern "C" fn(*mut *mut c_void, c_int) -> c_int;
    /// `int response(struct sip_msg*)`.
    pub type ResponseFunction = extern "C" fn(*mut SipMsgOpaque) -> c_int;
    /// `int mod_init(void)`.
    pub type InitFunction = extern "C" fn() -> c_int;
    /// `int child_init(int rank)`.
    pub type ChildInitFunction = extern "C" fn(c_int) -> c_int;
    /// `void destroy(void)`.
    pub type DestroyFunction = extern "C" fn();
    /// `int setter(modparam_t type, void* val)` (`PARAM_USE_FUNC`).
    pub type ParamFunction = extern "C" fn(c_uint, *mut c_void) -> c_int;
    /// `long f(void)` (`STAT_IS_FUNC`).
    pub type StatFunction = extern "C" fn() -> c_long;

    /// Kamailio 5's `cmd_export_t` (the default layout).
    #[repr(C)]
    #[derive(Debug)]
    pub struct CmdExport6 {
        /// Name, NULL ends the array.
        pub name: *const c_char,
        /// Handler.
        pub function: Option<CmdFunction>,
        /// Parameter count.
        pub param_no: c_int,
        /// Fixup.
        pub fixup: Option<FixupFunction>,
        /// Free fixup.
        pub free_fixup: Option<FixupFunction>,
        /// Route flags.
        pub flags: c_uint,
    }

    /// The seed's `cmd_export_t` (`SR_MODULE_SEED_CMDS`).
    #[repr(C)]
    #[derive(Debug)]
    pub struct CmdExport5 {
        /// Name, NULL ends the array.
        pub name: *const c_char,
        /// Handler.
        pub function: Option<CmdFunction>,
        /// Parameter count.
        pub param_no: c_int,
        /// Fixup.
        pub fixup: Option<FixupFunction>,
        /// Route flags.
        pub flags: c_uint,
    }

    /// `param_export_t`.
    #[repr(C)]
    #[derive(Debug)]
    pub struct ParamExport {
        /// Name, NULL ends the array.
        pub name: *const c_char,
        /// `PARAM_*` bits.
        pub kind: c_uint,
        /// Where the value goes (or the setter).
        pub pointer: *mut c_void,
    }

    /// `stat_export_t`.
    #[repr(C)]
    #[derive(Debug)]
    pub struct StatExport {
        /// Name, NULL ends the array.
        pub name: *const c_char,
        /// `STAT_*` bits.
        pub flags: c_int,
        /// Where the handle goes (or the function, with `STAT_IS_FUNC`).
        pub pointer: *mut *mut StatVar,
    }

    /// `struct module_exports`, in the seed's order.
    #[repr(C)]
    #[derive(Debug)]
    pub struct ModuleExports {
        /// Module name.
        pub name: *const c_char,
        /// Script functions.
        pub cmds: *const c_void,
        /// Parameters.
        pub params: *const ParamExport,
        /// Statistics.
        pub stats: *const StatExport,
        /// `mod_init`.
        pub init: Option<InitFunction>,
        /// Reply hook.
        pub response: Option<ResponseFunction>,
        /// `destroy`.
        pub destroy: Option<DestroyFunction>,
        /// `child_init`.
        pub child_init: Option<ChildInitFunction>,
    }
}
