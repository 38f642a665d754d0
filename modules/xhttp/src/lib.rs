//! # xhttp: HTTP requests on SIP sockets
//!
//! Kamailio's `xhttp` module. An HTTP/1.x request that arrives on a TCP or
//! TLS socket (the core frames it like a SIP message: a request without
//! Content-Length has no body) runs `event_route[xhttp:request]`, where
//! the script sees it as a message: `$rm` is the method, `$hu` the URL,
//! `$hdr(Name)` its headers, `$rb` its body, `$si`/`$sp`/`$Rp` the
//! addresses. The route answers with `xhttp_reply`, or upgrades the
//! connection with the websocket module's `ws_handle_handshake()`.
//!
//! - `xhttp_reply(code, reason, ctype, body)`: sends an HTTP/1.1 reply on
//!   the request's connection; the connection is then closed if the
//!   script called `set_reply_close()` or the client asked
//!   (`Connection: close`, HTTP/1.0).
//! - `$hu`: the request's URL (target) as written.
//! - Parameters: `url_match` (regular expression: only URLs matching it
//!   run the route), `url_skip` (URLs matching it do not), both empty by
//!   default; `event_callback` (a KEMI function name) is accepted and
//!   refused at start when set, since siprouter runs native scripts only.
//!
//! A request the route neither answered nor upgraded gets no reply (as in
//! Kamailio); without the event route, HTTP requests are dropped and a
//! warning says so at start.
#![forbid(unsafe_code)]

use regex::Regex;
use sr_sdk::prelude::*;
use std::sync::{Arc, OnceLock, RwLock};

/// The event route's name.
pub const ROUTE: &str = "xhttp:request";

#[derive(Default)]
struct Xhttp {
    url_match: Arc<RwLock<String>>,
    url_skip: Arc<RwLock<String>>,
    callback: Arc<RwLock<String>>,
    /// (url_match, url_skip), compiled at start.
    filters: OnceLock<(Option<Regex>, Option<Regex>)>,
}

impl Xhttp {
    /// Whether the URL passes `url_match` and `url_skip`.
    fn wanted(&self, url: &str) -> bool {
        let Some((m, s)) = self.filters.get() else {
            return true;
        };
        m.as_ref().is_none_or(|m| m.is_match(url)) && s.as_ref().is_none_or(|s| !s.is_match(url))
    }
}

fn compile(name: &str, text: &RwLock<String>) -> Result<Option<Regex>, String> {
    let t = text.read().map(|t| t.clone()).unwrap_or_default();
    if t.is_empty() {
        return Ok(None);
    }
    Regex::new(&t)
        .map(Some)
        .map_err(|e| format!("xhttp: {name} '{t}': {e}"))
}

/// Answers the HTTP request in `ctx` (`xhttp_reply`, and the modules
/// that answer HTTP requests through xhttp, as xhttp_prom).
pub fn reply(ctx: &mut Ctx<'_>, code: &str, reason: &str, ctype: &str, body: &str) -> i32 {
    let Ok(code) = code.trim().parse::<u16>() else {
        lm_err!("xhttp_reply: '{code}' is not a status code");
        return -1;
    };
    if !(100..600).contains(&code) {
        lm_err!("xhttp_reply: status code {code} out of range");
        return -1;
    }
    // A HEAD is answered with the headers a GET would get, no body.
    let head = ctx.msg.msg().method().is_some_and(|m| m.as_str() == "HEAD");
    let mut data = sr_sdk::http::reply(
        code,
        reason,
        &[],
        ctype,
        body.as_bytes(),
        ctx.core.version(),
    );
    if head && code >= 200 && code != 204 {
        data.truncate(data.len().saturating_sub(body.len()));
    }
    match sr_sdk::http::send(ctx, &data) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("xhttp_reply: {e}");
            -1
        }
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let x = Arc::new(Xhttp::default());
    let (xi, xh) = (x.clone(), x.clone());
    ModuleDef::new("xhttp")
        .param("url_match", ParamKind::Str, params::string(&x.url_match))
        .param("url_skip", ParamKind::Str, params::string(&x.url_skip))
        .param(
            "event_callback",
            ParamKind::Str,
            params::string(&x.callback),
        )
        .on_init(move |_| {
            if xi.callback.read().is_ok_and(|c| !c.is_empty()) {
                return Err(
                    "xhttp: event_callback names a KEMI function; siprouter runs \
                     event_route[xhttp:request] of the native script instead"
                        .to_string(),
                );
            }
            let filters = (
                compile("url_match", &xi.url_match)?,
                compile("url_skip", &xi.url_skip)?,
            );
            let _ = xi.filters.set(filters);
            Ok(())
        })
        .on_child_init(|core, rank| {
            // (The routes are compiled after mod_init.)
            if rank == sr_sdk::rank::PROC_INIT && core.route_id(RouteType::EVENT, ROUTE).is_none() {
                lm_warn!("xhttp: no event_route[{ROUTE}]: HTTP requests will be dropped");
            }
            Ok(())
        })
        .on_nonsip(move |ctx| {
            let url = ctx.msg.msg().http_target().unwrap_or_default();
            if !xh.wanted(url) {
                lm_dbg!("xhttp: {url} skipped (url_match/url_skip)");
                return false;
            }
            let Some(id) = ctx.core.route_id(RouteType::EVENT, ROUTE) else {
                return false;
            };
            ctx.core.run_route(id, RouteType::EVENT, ctx.msg);
            true
        })
        .cmd(
            "xhttp_reply",
            4,
            RouteType::REQUEST | RouteType::EVENT,
            Some(fixup::f(fixup::spve)),
            |ctx, a| {
                if !ctx.msg.msg().is_http() {
                    lm_err!("xhttp_reply: not an HTTP request");
                    return -1;
                }
                let (code, reason) = (a[0].str(ctx).into_owned(), a[1].str(ctx).into_owned());
                let (ctype, body) = (a[2].str(ctx).into_owned(), a[3].str(ctx).into_owned());
                reply(ctx, &code, &reason, &ctype, &body)
            },
        )
        .pv("hu", |ctx, _| {
            ctx.msg
                .msg()
                .http_target()
                .map_or(Value::Null, |t| Value::Str(t.to_string().into()))
        })
}
