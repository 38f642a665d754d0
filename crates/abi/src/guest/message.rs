//! The module-side copy of the host's message: built from what the
//! services table reports before a handler runs, and its changes sent
//! back after.

use super::remote_core::RemoteCore;
use super::{api, cstring, log_line, CURRENT};
use crate::types::{proto, CoreApi, SipMsgOpaque, SrStr};
use sr_sdk::log::L_ERR;
use sr_sdk::{Ctx, Proto, RecvInfo, RouteType, SipMsg};
use std::cell::Cell;
use std::ffi::{c_int, c_uint};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Reads a string the host hands back through an out-parameter.
pub(crate) fn fetch(f: impl FnOnce(*mut SrStr) -> c_int) -> Option<Vec<u8>> {
    let mut s = SrStr::EMPTY;
    if f(&mut s) < 0 {
        return None;
    }
    Some(str_bytes(&s))
}

/// Copies the bytes of a string the host returned.
fn str_bytes(s: &SrStr) -> Vec<u8> {
    if s.s.is_null() || s.len <= 0 {
        return Vec::new();
    }
    // SAFETY: the host points `s` at `len` bytes valid until this call
    // into the module returns.
    unsafe { std::slice::from_raw_parts(s.s.cast::<u8>(), s.len as usize) }.to_vec()
}

pub(crate) fn fetch_text(f: impl FnOnce(*mut SrStr) -> c_int) -> Option<String> {
    fetch(f).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// What the host's message looked like before the handler ran.
struct Before {
    new_uri: Option<String>,
    dst_uri: Option<String>,
    flags: u32,
}

fn proto_of(n: c_int) -> Proto {
    match n {
        proto::TCP => Proto::Tcp,
        proto::TLS => Proto::Tls,
        proto::SCTP => Proto::Sctp,
        proto::WS => Proto::Ws,
        proto::WSS => Proto::Wss,
        _ => Proto::Udp,
    }
}

fn remote_msg(a: &CoreApi, h: *mut SipMsgOpaque) -> Result<(SipMsg, Before), String> {
    let buf = fetch(|o| (a.msg_get_buf)(h, o)).ok_or("no message")?;
    let mut src = SrStr::EMPTY;
    let mut dst = SrStr::EMPTY;
    let mut pr: c_int = 0;
    let (mut s_txt, mut d_txt) = (String::new(), String::new());
    if (a.msg_get_rcv)(h, &mut src, &mut dst, &mut pr) >= 0 {
        s_txt = String::from_utf8_lossy(&str_bytes(&src)).into_owned();
        d_txt = String::from_utf8_lossy(&str_bytes(&dst)).into_owned();
    }
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let rcv = RecvInfo {
        src: s_txt.parse().unwrap_or(unspecified),
        dst: d_txt.parse().unwrap_or(unspecified),
        proto: proto_of(pr),
        conn_id: 0,
    };
    let mut m = SipMsg::parse(bytes::Bytes::from(buf), rcv, 0).map_err(|e| format!("{e:?}"))?;
    let received = m.msg().request_uri().map(|u| u.raw.to_string());
    let ruri = fetch_text(|o| (a.msg_get_ruri)(h, o));
    if m.is_request() && ruri.is_some() && ruri != received {
        m.new_uri = ruri;
    }
    m.dst_uri = fetch_text(|o| (a.msg_get_dst_uri)(h, o)).filter(|u| !u.is_empty());
    let mut flags: c_uint = 0;
    (a.msg_get_flags)(h, &mut flags);
    m.flags = flags;
    let before = Before {
        new_uri: m.new_uri.clone(),
        dst_uri: m.dst_uri.clone(),
        flags,
    };
    Ok((m, before))
}

fn push_back(a: &CoreApi, h: *mut SipMsgOpaque, m: &mut SipMsg, before: &Before) {
    for (start, end, text) in m.edits.ops() {
        (a.msg_edit)(h, start, end, text.as_ptr().cast(), text.len() as c_int);
    }
    if let Some((body, ct)) = m.edits.body() {
        let ct = ct.map(cstring);
        let ct_ptr = ct.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        (a.msg_set_body)(h, body.as_ptr().cast(), body.len() as c_int, ct_ptr);
    }
    if m.new_uri != before.new_uri {
        if let Some(u) = &m.new_uri {
            (a.msg_set_ruri)(h, cstring(u).as_ptr());
        }
    }
    if m.dst_uri != before.dst_uri {
        let u = cstring(m.dst_uri.as_deref().unwrap_or(""));
        (a.msg_set_dst_uri)(h, u.as_ptr());
    }
    if m.flags != before.flags {
        (a.msg_set_flags)(h, m.flags);
    }
    push_reply_headers(a, h, m);
}

pub(crate) fn push_reply_headers(a: &CoreApi, h: *mut SipMsgOpaque, m: &mut SipMsg) {
    if !m.reply_headers.is_empty() {
        (a.append_to_reply)(h, cstring(&m.reply_headers).as_ptr());
        m.reply_headers.clear();
    }
}

/// Runs `f` on the module-side copy of the host's message, then sends the
/// changes back.
pub(crate) fn with_message(
    h: *mut SipMsgOpaque,
    route: RouteType,
    fail: c_int,
    f: impl FnOnce(&mut Ctx<'_>) -> c_int,
) -> c_int {
    let Some(a) = api() else { return fail };
    let (mut m, before) = match remote_msg(a, h) {
        Ok(x) => x,
        Err(e) => {
            log_line(L_ERR, &format!("cannot read the message: {e}"));
            return fail;
        }
    };
    let prev = CURRENT.with(|c| c.replace(h));
    let rc = {
        let mut ctx = Ctx::new(&mut m, &RemoteCore, route);
        catch_unwind(AssertUnwindSafe(|| f(&mut ctx)))
    };
    CURRENT.with(|c| c.set(prev));
    match rc {
        Ok(rc) => {
            push_back(a, h, &mut m, &before);
            rc
        }
        Err(p) => std::panic::resume_unwind(p),
    }
}

pub(crate) fn current() -> Option<(&'static CoreApi, *mut SipMsgOpaque)> {
    let h = CURRENT.with(Cell::get);
    (!h.is_null()).then_some(())?;
    api().map(|a| (a, h))
}
