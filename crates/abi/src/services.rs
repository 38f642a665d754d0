//! The host's side of [`CoreApi`]: the `extern "C"` functions a module
//! calls, working on the message handle the host passed it.
//!
//! A handle is the address of a [`MsgHandle`] on the host's stack, alive
//! for exactly the call into the module. Strings handed back are copied
//! into the handle's scratch space (NUL-terminated, for C), so they stay
//! valid until the module's function returns. No function here unwinds:
//! each body runs under `catch_unwind` and fails with a negative value.

use crate::types::{proto, CoreApi, SipMsgOpaque, SrStr, StatVar, ABI_MAJOR, ABI_MINOR};
use sr_sdk::{Core, Ctx, Proto, Stat, Value};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_long, c_uint, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{OnceLock, Weak};

/// The message a module is called with, and the strings handed to it.
pub(crate) struct MsgHandle<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
    scratch: Vec<Box<[u8]>>,
}

impl<'a, 'c> MsgHandle<'a, 'c> {
    /// A handle for one call.
    pub(crate) fn new(ctx: &'a mut Ctx<'c>) -> Self {
        MsgHandle {
            ctx,
            scratch: Vec::new(),
        }
    }

    /// The opaque pointer given to the module.
    pub(crate) fn as_ptr(&mut self) -> *mut SipMsgOpaque {
        (self as *mut Self).cast()
    }

    /// Copies `s` into scratch space and points `out` at it.
    fn give(&mut self, out: *mut SrStr, s: &[u8]) -> c_int {
        if out.is_null() {
            return -2;
        }
        let mut b = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s);
        b.push(0);
        let b = b.into_boxed_slice();
        let ptr = b.as_ptr().cast::<c_char>();
        self.scratch.push(b);
        // SAFETY: `out` is non-null and, by the API contract, points to a
        // writable `str` of the caller.
        unsafe {
            *out = SrStr {
                s: ptr,
                len: s.len() as c_int,
            }
        };
        0
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Takes the error text a module set with `set_error` on this thread.
pub(crate) fn take_error() -> Option<String> {
    LAST_ERROR.with(|e| e.borrow_mut().take())
}

/// Forgets any error text left from an earlier call.
pub(crate) fn clear_error() {
    LAST_ERROR.with(|e| *e.borrow_mut() = None);
}

static CORE: OnceLock<Weak<dyn Core>> = OnceLock::new();

/// Remembers the core for the services that need no message
/// (`shutting_down`).
pub(crate) fn remember_core(core: &dyn Core) {
    if let Some(w) = core.handle() {
        let _ = CORE.set(w);
    }
}

/// Reads a NUL-terminated string from a module.
fn text<'s>(p: *const c_char) -> Option<&'s str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: by the API contract a non-null string argument is
    // NUL-terminated and alive for the duration of the call.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// Runs `f` on the handle's message, turning a null handle or a panic into
/// `fail`.
fn with_msg<R>(h: *mut SipMsgOpaque, fail: R, f: impl FnOnce(&mut MsgHandle<'_, '_>) -> R) -> R {
    if h.is_null() {
        return fail;
    }
    // SAFETY: handles are made only by `MsgHandle::as_ptr` from a handle
    // that lives on the host's stack for the whole call into the module;
    // the contract forbids using one after that call returns.
    let mh = unsafe { &mut *h.cast::<MsgHandle<'_, '_>>() };
    catch_unwind(AssertUnwindSafe(|| f(mh))).unwrap_or(fail)
}

fn guard<R>(fail: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fail)
}

extern "C" fn log_level() -> c_int {
    sr_sdk::log::level()
}

extern "C" fn log(level: c_int, module: *const c_char, msg: *const c_char) {
    guard((), || {
        if sr_sdk::log::enabled(level) {
            let m = text(module).unwrap_or("module");
            let t = text(msg).unwrap_or("");
            sr_sdk::log::write(level, m, format_args!("{}", t.trim_end_matches('\n')));
        }
    })
}

extern "C" fn set_error(msg: *const c_char) {
    guard((), || {
        let t = text(msg).unwrap_or("").to_string();
        LAST_ERROR.with(|e| *e.borrow_mut() = Some(t));
    })
}

extern "C" fn msg_is_request(h: *mut SipMsgOpaque) -> c_int {
    with_msg(h, -2, |m| m.ctx.msg.is_request() as c_int)
}

extern "C" fn msg_get_method(h: *mut SipMsgOpaque, out: *mut SrStr) -> c_int {
    with_msg(h, -2, |m| {
        let msg = m.ctx.msg.msg();
        let method = match msg.method() {
            Some(me) => me.as_str().to_string(),
            None => match msg.cseq() {
                Ok(c) => c.method.as_str().to_string(),
                Err(_) => return -1,
            },
        };
        m.give(out, method.as_bytes())
    })
}

extern "C" fn msg_get_ruri(h: *mut SipMsgOpaque, out: *mut SrStr) -> c_int {
    with_msg(h, -2, |m| {
        let u = m.ctx.msg.ruri().to_string();
        m.give(out, u.as_bytes())
    })
}

extern "C" fn msg_get_dst_uri(h: *mut SipMsgOpaque, out: *mut SrStr) -> c_int {
    with_msg(h, -2, |m| {
        let u = m.ctx.msg.dst_uri.clone().unwrap_or_default();
        m.give(out, u.as_bytes())
    })
}

extern "C" fn msg_get_header(
    h: *mut SipMsgOpaque,
    name: *const c_char,
    index: c_int,
    out: *mut SrStr,
) -> c_int {
    with_msg(h, -2, |m| {
        let (Some(name), Ok(i)) = (text(name), usize::try_from(index)) else {
            return -2;
        };
        let v = m
            .ctx
            .msg
            .msg()
            .headers_by_name(name)
            .nth(i)
            .map(|x| x.value.to_string());
        match v {
            Some(v) => m.give(out, v.as_bytes()),
            None => -1,
        }
    })
}

extern "C" fn msg_get_body(h: *mut SipMsgOpaque, out: *mut SrStr) -> c_int {
    with_msg(h, -2, |m| {
        let b = m.ctx.msg.msg().body().to_vec();
        m.give(out, &b)
    })
}

extern "C" fn msg_get_source(h: *mut SipMsgOpaque, ip: *mut SrStr, port: *mut c_int) -> c_int {
    with_msg(h, -2, |m| {
        let src = m.ctx.msg.rcv.src;
        if !port.is_null() {
            // SAFETY: non-null, and by contract a writable int.
            unsafe { *port = c_int::from(src.port()) };
        }
        m.give(ip, src.ip().to_string().as_bytes())
    })
}

extern "C" fn msg_get_status(h: *mut SipMsgOpaque) -> c_int {
    with_msg(h, -2, |m| {
        c_int::from(m.ctx.msg.msg().status().unwrap_or(0))
    })
}

extern "C" fn msg_get_buf(h: *mut SipMsgOpaque, out: *mut SrStr) -> c_int {
    with_msg(h, -2, |m| {
        let b = m.ctx.msg.bytes().clone();
        m.give(out, &b)
    })
}

fn proto_number(p: Proto) -> c_int {
    match p {
        Proto::Udp => proto::UDP,
        Proto::Tcp => proto::TCP,
        Proto::Tls => proto::TLS,
        Proto::Sctp => proto::SCTP,
        Proto::Ws => proto::WS,
        Proto::Wss => proto::WSS,
    }
}

extern "C" fn msg_get_rcv(
    h: *mut SipMsgOpaque,
    src: *mut SrStr,
    dst: *mut SrStr,
    proto_out: *mut c_int,
) -> c_int {
    with_msg(h, -2, |m| {
        let rcv = m.ctx.msg.rcv;
        if !proto_out.is_null() {
            // SAFETY: non-null, and by contract a writable int.
            unsafe { *proto_out = proto_number(rcv.proto) };
        }
        let rc = m.give(src, rcv.src.to_string().as_bytes());
        if rc < 0 {
            return rc;
        }
        m.give(dst, rcv.dst.to_string().as_bytes())
    })
}

extern "C" fn msg_get_flags(h: *mut SipMsgOpaque, out: *mut c_uint) -> c_int {
    with_msg(h, -2, |m| {
        if out.is_null() {
            return -2;
        }
        // SAFETY: non-null, and by contract a writable unsigned int.
        unsafe { *out = m.ctx.msg.flags };
        0
    })
}

extern "C" fn pv_get(h: *mut SipMsgOpaque, name: *const c_char, out: *mut SrStr) -> c_int {
    with_msg(h, -2, |m| {
        let Some(name) = text(name) else { return -2 };
        let core = m.ctx.core;
        match core.pv_get(m.ctx.msg, name) {
            Some(Value::Null) | None => -1,
            Some(v) => {
                let s = v.as_str().into_owned();
                m.give(out, s.as_bytes())
            }
        }
    })
}

extern "C" fn msg_append_header(
    h: *mut SipMsgOpaque,
    name: *const c_char,
    value: *const c_char,
) -> c_int {
    with_msg(h, -2, |m| {
        let (Some(n), Some(v)) = (text(name), text(value)) else {
            return -2;
        };
        if n.is_empty() || n.contains([':', '\r', '\n']) || v.contains(['\r', '\n']) {
            return -2;
        }
        let at = m.ctx.msg.msg().headers_end();
        m.ctx
            .msg
            .edits
            .insert(at, format!("{n}: {v}\r\n").as_bytes());
        0
    })
}

extern "C" fn msg_remove_header(h: *mut SipMsgOpaque, name: *const c_char) -> c_int {
    with_msg(h, -2, |m| {
        let Some(n) = text(name) else { return -2 };
        let spans: Vec<(u32, u32)> = m
            .ctx
            .msg
            .msg()
            .headers_by_name(n)
            .map(|x| (x.start, x.end))
            .collect();
        for (s, e) in &spans {
            m.ctx.msg.edits.delete(*s, *e);
        }
        if spans.is_empty() {
            -1
        } else {
            spans.len() as c_int
        }
    })
}

extern "C" fn msg_set_ruri(h: *mut SipMsgOpaque, uri: *const c_char) -> c_int {
    with_msg(h, -2, |m| match text(uri) {
        Some(u) if !u.is_empty() => {
            m.ctx.msg.new_uri = Some(u.to_string());
            0
        }
        _ => -2,
    })
}

extern "C" fn msg_set_dst_uri(h: *mut SipMsgOpaque, uri: *const c_char) -> c_int {
    with_msg(h, -2, |m| {
        m.ctx.msg.dst_uri = text(uri).filter(|u| !u.is_empty()).map(str::to_string);
        0
    })
}

extern "C" fn msg_set_flags(h: *mut SipMsgOpaque, flags: c_uint) -> c_int {
    with_msg(h, -2, |m| {
        m.ctx.msg.flags = flags;
        0
    })
}

extern "C" fn msg_edit(
    h: *mut SipMsgOpaque,
    start: c_uint,
    end: c_uint,
    txt: *const c_char,
    len: c_int,
) -> c_int {
    with_msg(h, -2, |m| {
        let total = m.ctx.msg.bytes().len() as u64;
        let (Ok(len), true) = (
            usize::try_from(len),
            start <= end && u64::from(end) <= total,
        ) else {
            return -2;
        };
        let bytes: &[u8] = if len == 0 || txt.is_null() {
            &[]
        } else {
            // SAFETY: the module passes `len` readable bytes at `txt`.
            unsafe { std::slice::from_raw_parts(txt.cast::<u8>(), len) }
        };
        m.ctx.msg.edits.replace(start, end, bytes);
        0
    })
}

extern "C" fn msg_set_body(
    h: *mut SipMsgOpaque,
    body: *const c_char,
    len: c_int,
    ctype: *const c_char,
) -> c_int {
    with_msg(h, -2, |m| {
        let Ok(len) = usize::try_from(len) else {
            return -2;
        };
        let bytes: &[u8] = if len == 0 || body.is_null() {
            &[]
        } else {
            // SAFETY: the module passes `len` readable bytes at `body`.
            unsafe { std::slice::from_raw_parts(body.cast::<u8>(), len) }
        };
        m.ctx.msg.edits.set_body(bytes, text(ctype));
        0
    })
}

extern "C" fn append_to_reply(h: *mut SipMsgOpaque, txt: *const c_char) -> c_int {
    with_msg(h, -2, |m| {
        let Some(t) = text(txt) else { return -2 };
        m.ctx.msg.reply_headers.push_str(t);
        if !t.ends_with("\r\n") {
            m.ctx.msg.reply_headers.push_str("\r\n");
        }
        0
    })
}

extern "C" fn pv_set_str(h: *mut SipMsgOpaque, name: *const c_char, value: *const c_char) -> c_int {
    with_msg(h, -2, |m| {
        let (Some(n), Some(v)) = (text(name), text(value)) else {
            return -2;
        };
        let core = m.ctx.core;
        match core.pv_set(m.ctx.msg, n, Value::str(v)) {
            Ok(()) => 0,
            Err(e) => {
                sr_sdk::lm_err!("module set {n}: {e}");
                -1
            }
        }
    })
}

extern "C" fn send_reply(h: *mut SipMsgOpaque, code: c_int, reason: *const c_char) -> c_int {
    with_msg(h, -2, |m| {
        let Ok(code) = u16::try_from(code) else {
            return -2;
        };
        if !(100..700).contains(&code) {
            return -2;
        }
        let core = m.ctx.core;
        match core.send_reply(m.ctx.msg, code, text(reason).unwrap_or("")) {
            Ok(()) => 1,
            Err(e) => {
                sr_sdk::lm_err!("module reply {code}: {e}");
                -1
            }
        }
    })
}

/// A new statistic handle for `s`, owned by the module for the life of
/// the process.
pub(crate) fn stat_handle(s: &Stat) -> *mut StatVar {
    Box::into_raw(Box::new(s.clone())).cast()
}

fn with_stat<R>(v: *mut StatVar, fail: R, f: impl FnOnce(&Stat) -> R) -> R {
    if v.is_null() {
        return fail;
    }
    // SAFETY: non-null handles come only from `stat_handle`, which leaks
    // the box, so the `Stat` lives as long as the process.
    let s = unsafe { &*v.cast::<Stat>() };
    f(s)
}

// `long` is 64 bits here but 32 on other targets.
#[allow(clippy::unnecessary_cast)]
extern "C" fn stat_update(v: *mut StatVar, n: c_long) {
    with_stat(v, (), |s| s.add(n as i64))
}

extern "C" fn stat_get(v: *mut StatVar) -> c_long {
    with_stat(v, 0, |s| s.get() as c_long)
}

extern "C" fn stat_reset(v: *mut StatVar) {
    with_stat(v, (), |s| s.reset())
}

extern "C" fn shutting_down() -> c_int {
    guard(0, || {
        CORE.get()
            .and_then(Weak::upgrade)
            .is_some_and(|c| c.shutting_down()) as c_int
    })
}

const VERSION_C: &CStr = match CStr::from_bytes_with_nul(
    concat!("siprouter ", env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(s) => s,
    Err(_) => panic!("version string has a NUL"),
};

/// The table every module gets.
pub(crate) static CORE_API: CoreApi = CoreApi {
    size: std::mem::size_of::<CoreApi>() as u32,
    abi_major: ABI_MAJOR,
    abi_minor: ABI_MINOR,
    version: VERSION_C.as_ptr(),
    log_level,
    log,
    set_error,
    msg_is_request,
    msg_get_method,
    msg_get_ruri,
    msg_get_dst_uri,
    msg_get_header,
    msg_get_body,
    msg_get_source,
    msg_get_status,
    msg_get_buf,
    msg_get_rcv,
    msg_get_flags,
    pv_get,
    msg_append_header,
    msg_remove_header,
    msg_set_ruri,
    msg_set_dst_uri,
    msg_set_flags,
    msg_edit,
    msg_set_body,
    append_to_reply,
    pv_set_str,
    send_reply,
    stat_update,
    stat_get,
    stat_reset,
    shutting_down,
};
