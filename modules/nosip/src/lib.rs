//! Module `nosip` (Kamailio's): a received message that does not parse
//! as SIP (over UDP, TCP, TLS) runs `event_route[nosip:msg]` instead of
//! being answered or dropped, the raw data in `$nosip` (in any other
//! route `$nosip` is the whole received message).
//!
//! - param `msg_skip`: data matching this POSIX extended expression is
//!   left to the core;
//! - param `msg_match`: only data matching it from the first line's
//!   second word on runs the route (Kamailio matches from the request URI
//!   of the message that did not parse).
//!
//! `$nosip` is text: bytes that are not UTF-8 are replaced (Kamailio
//! gives the bytes).
//!
//! The route runs on a faked request carrying the data's source, so
//! `$si`, `$sp` and `$proto` name the sender; a reply is sent only if
//! the route sends one (`send_data`, say).
#![forbid(unsafe_code)]

use regex::Regex;
use sr_sdk::prelude::*;
use sr_sdk::route::rank;
use sr_sdk::RecvInfo;
use std::cell::RefCell;
use std::sync::{Arc, OnceLock, RwLock, Weak};

/// The event route's name.
const ROUTE: &str = "nosip:msg";

thread_local! {
    /// The data the route runs for.
    static DATA: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Puts back the data that was there before, also when the route
/// panics (the worker goes on with the next message).
struct Restore(Option<String>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        DATA.with(|d| *d.borrow_mut() = prev);
    }
}

/// Where the first line's second word starts.
fn second_word(text: &str) -> Option<usize> {
    let line_end = text.find(['\r', '\n']).unwrap_or(text.len());
    let line = &text[..line_end];
    let first_end = line.find(char::is_whitespace)?;
    let rest = &line[first_end..];
    let skip = rest.len() - rest.trim_start().len();
    (first_end + skip < line.len()).then_some(first_end + skip)
}

#[derive(Default)]
struct NoSip {
    msg_match: Arc<RwLock<String>>,
    msg_skip: Arc<RwLock<String>>,
    /// Compiled at start.
    res: OnceLock<(Option<Regex>, Option<Regex>)>,
    core: OnceLock<Weak<dyn Core>>,
}

fn compile(what: &str, text: &str) -> Result<Option<Regex>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    Regex::new(text)
        .map(Some)
        .map_err(|e| format!("nosip: bad {what} re {text}: {e}"))
}

impl NoSip {
    /// The hook: true when the route ran.
    fn take(&self, buf: &[u8], rcv: &RecvInfo) -> bool {
        let text = String::from_utf8_lossy(buf);
        if let Some((m, s)) = self.res.get() {
            if s.as_ref().is_some_and(|s| s.is_match(&text)) {
                lm_dbg!("nosip: matched skip re");
                return false;
            }
            if let Some(m) = m {
                // (Kamailio matches from the request URI of the message
                // that did not parse to the end of the data: here from the
                // first line's second word on.)
                let from = second_word(&text).unwrap_or(text.len());
                if !m.is_match(&text[from..]) {
                    lm_dbg!("nosip: message not matched");
                    return false;
                }
            }
        }
        let Some(core) = self.core.get().and_then(Weak::upgrade) else {
            return false;
        };
        let Some(id) = core.route_id(RouteType::EVENT, ROUTE) else {
            return false;
        };
        let mut msg = SipMsg::faked();
        msg.rcv = *rcv;
        let _restore = Restore(DATA.with(|d| d.replace(Some(text.into_owned()))));
        core.run_route(id, RouteType::EVENT, &mut msg);
        true
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let n = Arc::new(NoSip::default());
    let (init, hook) = (n.clone(), n.clone());
    ModuleDef::new("nosip")
        .param("msg_match", ParamKind::Str, params::string(&n.msg_match))
        .param("msg_skip", ParamKind::Str, params::string(&n.msg_skip))
        .on_init(move |core| {
            let m = compile("match", &params::get_str(&init.msg_match))?;
            let s = compile("skip", &params::get_str(&init.msg_skip))?;
            let _ = init.res.set((m, s));
            if let Some(h) = core.handle() {
                let _ = init.core.set(h);
            }
            Ok(())
        })
        .on_child_init(move |core, r| {
            // (The routes are compiled after mod_init.)
            if r == rank::PROC_INIT && core.route_id(RouteType::EVENT, ROUTE).is_none() {
                return Err(format!("nosip: failed to find event_route[{ROUTE}]"));
            }
            Ok(())
        })
        .on_unparsed(move |buf, rcv| hook.take(buf, rcv))
        .pv("nosip", |ctx, _| {
            DATA.with(|d| match d.borrow().as_ref() {
                Some(t) => Value::Str(t.clone().into()),
                None => Value::Str(
                    String::from_utf8_lossy(ctx.msg.msg().raw())
                        .into_owned()
                        .into(),
                ),
            })
        })
}
