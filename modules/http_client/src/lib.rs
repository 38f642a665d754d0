//! Module `http_client` (Kamailio's): HTTP requests from the script —
//! `http_client_query`, `http_client_get`, `http_connect` on connections
//! named by `httpcon`, `http_get_redirect` — with the HTTP status as the
//! return code, curl's error numbers and `$curlerror` when no answer
//! came, and `$httprhdr` for response headers; `http://` and `https://`
//! (rustls, with curl's `cacert`, `verify_peer`, `verify_host` and client
//! certificate options).
#![forbid(unsafe_code)]

pub mod client;
pub mod tls;

use client::{CurlError, Request, Response};
use sr_sdk::exports::params::{get_int, get_str, int, int_cell, str_cell, string};
use sr_sdk::fixup::{Arg, FixupEnv, FixupFn};
use sr_sdk::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A connection named by `httpcon`.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The name.
    pub name: String,
    /// The base URL (credentials taken out).
    pub url: String,
    /// `user:password`, sent with Basic authentication.
    pub auth: Option<String>,
    /// Per-connection timeout, in the module's unit.
    pub timeout: Option<i64>,
    /// Follow redirects.
    pub redirect: Option<bool>,
    /// `useragent` for this connection.
    pub user_agent: Option<String>,
    /// `maxdatasize` for this connection.
    pub max_size: Option<usize>,
    /// `failover`: another connection tried when this one fails.
    pub failover: Option<String>,
}

/// Parses an `httpcon` value: `name=>http://[user:pass@]host/path[;param=value]...`.
pub fn parse_conn(s: &str) -> Result<Conn, String> {
    let (name, rest) = s
        .split_once("=>")
        .ok_or_else(|| format!("httpcon '{s}': expected name=>url"))?;
    let mut parts = rest.trim().split(';');
    let url = parts.next().unwrap_or("").trim();
    let (scheme, after) = url
        .split_once("://")
        .ok_or_else(|| format!("httpcon '{s}': bad URL"))?;
    let auth_end = after.find('/').unwrap_or(after.len());
    let (auth, base) = match after[..auth_end].rsplit_once('@') {
        Some((cred, host)) => (
            Some(cred.to_string()),
            format!("{scheme}://{host}{}", &after[auth_end..]),
        ),
        None => (None, url.to_string()),
    };
    let mut c = Conn {
        name: name.trim().to_string(),
        url: base,
        auth,
        timeout: None,
        redirect: None,
        user_agent: None,
        max_size: None,
        failover: None,
    };
    for p in parts.filter(|p| !p.trim().is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let v = v.trim();
        match k.trim() {
            "timeout" => c.timeout = v.parse().ok(),
            "httpredirect" => c.redirect = Some(v != "0"),
            "useragent" => c.user_agent = Some(v.to_string()),
            "maxdatasize" => c.max_size = v.parse().ok(),
            "failover" => c.failover = Some(v.to_string()),
            "verify_peer" | "verify_host" | "client_cert" | "client_key" | "cipher_suites"
            | "tlsversion" | "keepalive" | "keep_connections" | "authmethod" => {}
            other => return Err(format!("httpcon '{s}': unknown parameter '{other}'")),
        }
    }
    Ok(c)
}

/// The module's settings.
struct Settings {
    timeout: Option<Duration>,
    timeout_ms: bool,
    timeout_on: bool,
    user_agent: String,
    redirect: bool,
    query_result: i64,
    query_max: usize,
    max_size: usize,
    conns: HashMap<String, Conn>,
    response_headers: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Per worker: the last response's headers and each connection's last
/// URL (after redirects).
type Last = (Vec<(String, String)>, HashMap<String, String>);

thread_local! {
    static LAST: RefCell<Last> = RefCell::new(Default::default());
}

struct Counters {
    ok: Stat,
    fail: Stat,
}

fn strs_then_pvar(n: usize) -> Option<FixupFn> {
    Some(Arc::new(move |env: &dyn FixupEnv, i: usize, arg: &Arg| {
        if i + 1 == n {
            sr_sdk::fixup::pvar(env, i, arg)
        } else {
            sr_sdk::fixup::spve(env, i, arg)
        }
    }))
}

fn assign(ctx: &mut Ctx<'_>, dst: &Fixed, v: Value<'_>) {
    if let Fixed::Pv(p) = dst {
        if let Err(e) = p.assign(ctx, v) {
            lm_err!("http_client: cannot set the result: {e}");
        }
    }
}

impl Settings {
    fn timeout_of(&self, conn: Option<&Conn>) -> Option<Duration> {
        if !self.timeout_on {
            return None;
        }
        match conn.and_then(|c| c.timeout) {
            Some(t) if self.timeout_ms => Some(Duration::from_millis(t.max(1) as u64)),
            Some(t) => Some(Duration::from_secs(t.max(1) as u64)),
            None => self.timeout,
        }
    }

    fn run(&self, c: &Counters, req: &Request) -> Result<Response, CurlError> {
        let r = client::send(req);
        match &r {
            Ok(resp) => {
                c.ok.inc();
                if self.response_headers {
                    LAST.with(|l| l.borrow_mut().0 = resp.headers.clone());
                }
            }
            Err(e) => {
                c.fail.inc();
                lm_err!("http_client: {} {}: {}", req.method, req.url, e.text());
            }
        }
        r
    }

    fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<String>,
        hdrs: &str,
        conn: Option<&Conn>,
    ) -> Request {
        // The script's headers are one item, as Kamailio hands them to
        // curl (line breaks inside kept).
        let hdrs = hdrs.trim_end_matches(['\r', '\n']);
        let mut headers: Vec<String> = if hdrs.trim().is_empty() {
            Vec::new()
        } else {
            vec![hdrs.to_string()]
        };
        if let Some(a) = conn.and_then(|c| c.auth.as_deref()) {
            headers.insert(0, format!("Authorization: Basic {}", base64(a.as_bytes())));
        }
        Request {
            method: method.to_string(),
            url: url.to_string(),
            body: body.map(String::into_bytes),
            headers,
            timeout: self.timeout_of(conn),
            user_agent: conn
                .and_then(|c| c.user_agent.clone())
                .unwrap_or_else(|| self.user_agent.clone()),
            follow: conn.and_then(|c| c.redirect).unwrap_or(self.redirect),
            max_size: conn.and_then(|c| c.max_size).unwrap_or(self.max_size),
            tls: self.tls.clone(),
        }
    }
}

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for ch in b.chunks(3) {
        let v = |i: usize| ch.get(i).copied().unwrap_or(0) as u32;
        let n = (v(0) << 16) | (v(1) << 8) | v(2);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if ch.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if ch.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The body as the script gets it from `http_client_query`: the first
/// line (`query_result` 1) or all of it, cut at `query_maxdatasize`.
fn query_text(s: &Settings, body: &[u8]) -> String {
    let mut b = body;
    if s.query_result == 1 {
        if let Some(i) = b.iter().position(|&c| c == b'\n') {
            b = &b[..i];
        }
        if b.last() == Some(&b'\r') {
            b = &b[..b.len() - 1];
        }
    }
    if s.query_max > 0 && b.len() > s.query_max {
        b = &b[..s.query_max];
    }
    String::from_utf8_lossy(b).into_owned()
}

/// The module definition.
pub fn module() -> ModuleDef {
    let timeout = int_cell(4);
    let timeout_mode = int_cell(1);
    let useragent = str_cell("");
    // Kamailio 5.6 does not follow redirects unless told to (checked by
    // kamailio_parity_http_client).
    let redirect = int_cell(0);
    let query_result = int_cell(1);
    let query_max = int_cell(0);
    let max_size = int_cell(0);
    let resp_headers = int_cell(0);
    let conns: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
    let refused: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let settings: Arc<OnceLock<Settings>> = Arc::new(OnceLock::new());
    let counters = Arc::new(Counters {
        ok: Stat::new(),
        fail: Stat::new(),
    });
    let mut def = ModuleDef::new("http_client")
        .param("connection_timeout", ParamKind::Int, int(&timeout))
        .param("timeout_mode", ParamKind::Int, int(&timeout_mode))
        .param("useragent", ParamKind::Str, string(&useragent))
        .param("httpredirect", ParamKind::Int, int(&redirect))
        .param("query_result", ParamKind::Int, int(&query_result))
        .param("query_maxdatasize", ParamKind::Int, int(&query_max))
        .param("maxdatasize", ParamKind::Int, int(&max_size))
        .param("response_headers", ParamKind::Int, int(&resp_headers));
    let cc = conns.clone();
    def = def.param("httpcon", ParamKind::Str, move |v| {
        let ParamValue::Str(s) = v else {
            return Err("httpcon is text".into());
        };
        let c = parse_conn(&s)?;
        cc.lock().map_err(|_| "lock")?.push(c);
        Ok(())
    });
    // Accepted: TLS settings (no https here) and connection reuse.
    for p in ["keep_connections", "tlsversion", "authmethod"] {
        def = def.param(p, ParamKind::Int, |_| Ok(()));
    }
    def = def.param("cipher_suites", ParamKind::Str, |_| Ok(()));
    let verify_peer = int_cell(1);
    let verify_host = int_cell(2);
    let cacert = str_cell("");
    let client_cert = str_cell("");
    let client_key = str_cell("");
    def = def
        .param("verify_peer", ParamKind::Int, int(&verify_peer))
        .param("verify_host", ParamKind::Int, int(&verify_host))
        .param("cacert", ParamKind::Str, string(&cacert))
        .param("client_cert", ParamKind::Str, string(&client_cert))
        .param("client_key", ParamKind::Str, string(&client_key));
    for p in ["httpproxy", "httpproxyport", "config_file", "netinterface"] {
        let r = refused.clone();
        def = def.param(p, ParamKind::Str, move |v| {
            let set = match v {
                ParamValue::Str(s) => !s.is_empty(),
                ParamValue::Int(i) => i != 0,
            };
            if set {
                if let Ok(mut r) = r.lock() {
                    r.push(p.to_string());
                }
            }
            Ok(())
        });
    }
    let s_init = settings.clone();
    def = def.on_init(move |core| {
        if let Some(p) = refused.lock().ok().and_then(|r| r.first().cloned()) {
            return Err(format!("http_client: {p} is not built"));
        }
        let mode = get_int(&timeout_mode);
        let t = get_int(&timeout).max(0) as u64;
        let ua = match get_str(&useragent) {
            u if u.is_empty() => format!("siprouter ({})", core.version()),
            u => u,
        };
        let ts = tls::TlsSettings {
            cacert: get_str(&cacert),
            verify_peer: get_int(&verify_peer) != 0,
            verify_host: get_int(&verify_host) != 0,
            client: match (get_str(&client_cert), get_str(&client_key)) {
                (c, k) if !c.is_empty() && !k.is_empty() => Some((c, k)),
                (c, k) if !c.is_empty() || !k.is_empty() => {
                    return Err("http_client: client_cert and client_key go together".into())
                }
                _ => None,
            },
        };
        // A CA file that cannot be read makes HTTPS fail (curl's error 77)
        // rather than the start, as with curl; a client certificate that
        // cannot be read stops the start.
        let tls_cfg = match tls::config(&ts) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) if ts.client.is_some() && !e.starts_with("cacert") => {
                return Err(format!("http_client: {e}"))
            }
            Err(e) => {
                lm_warn!("http_client: HTTPS unavailable: {e}");
                None
            }
        };
        let conns = conns
            .lock()
            .map(|c| c.iter().map(|c| (c.name.clone(), c.clone())).collect())
            .unwrap_or_default();
        let _ = s_init.set(Settings {
            timeout: match mode {
                0 => None,
                2 => Some(Duration::from_millis(t.max(1))),
                _ => Some(Duration::from_secs(t.max(1))),
            },
            timeout_ms: mode == 2,
            timeout_on: mode != 0,
            user_agent: ua,
            redirect: get_int(&redirect) != 0,
            query_result: get_int(&query_result),
            query_max: get_int(&query_max).max(0) as usize,
            max_size: get_int(&max_size).max(0) as usize,
            conns,
            response_headers: get_int(&resp_headers) != 0,
            tls: tls_cfg,
        });
        Ok(())
    });
    // http_client_query(url, [post], [hdrs], result)
    for n in 2..=4usize {
        let (st, c) = (settings.clone(), counters.clone());
        def = def.cmd(
            "http_client_query",
            n,
            RouteType::ANY,
            strs_then_pvar(n),
            move |ctx, a| {
                let Some(s) = st.get() else { return -1 };
                let url = a[0].str(ctx).into_owned();
                let post = (n >= 3)
                    .then(|| a[1].str(ctx).into_owned())
                    .filter(|p| !p.is_empty());
                let hdrs = if n == 4 {
                    a[2].str(ctx).into_owned()
                } else {
                    String::new()
                };
                let method = if post.is_some() { "POST" } else { "GET" };
                let req = s.request(method, &url, post, &hdrs, None);
                match s.run(&c, &req) {
                    // The body of a 2xx-4xx answer; an empty text for a 5xx
                    // or no answer, whose return code is curl's error number.
                    Ok(r) => {
                        let text = if r.status < 500 {
                            query_text(s, &r.body)
                        } else {
                            String::new()
                        };
                        assign(ctx, &a[n - 1], Value::Str(text.into()));
                        i32::from(r.status)
                    }
                    Err(e) => {
                        assign(ctx, &a[n - 1], Value::Str("".into()));
                        e.0 as i32
                    }
                }
            },
        );
    }
    // http_client_get(url, body, hdrs, result)
    let (st, c) = (settings.clone(), counters.clone());
    def = def.cmd(
        "http_client_get",
        4,
        RouteType::ANY,
        strs_then_pvar(4),
        move |ctx, a| {
            let Some(s) = st.get() else { return -1 };
            let url = a[0].str(ctx).into_owned();
            let body = Some(a[1].str(ctx).into_owned()).filter(|b| !b.is_empty());
            let hdrs = a[2].str(ctx).into_owned();
            let req = s.request("GET", &url, body, &hdrs, None);
            match s.run(&c, &req) {
                Ok(r) => {
                    assign(
                        ctx,
                        &a[3],
                        Value::Str(String::from_utf8_lossy(&r.body).into_owned().into()),
                    );
                    i32::from(r.status)
                }
                Err(_) => -1,
            }
        },
    );
    // http_connect(con, url, result) and (con, url, ctype, data, result);
    // http_connect_raw(con, url, ctype, data, result).
    for (name, n) in [
        ("http_connect", 3usize),
        ("http_connect", 5),
        ("http_connect_raw", 5),
    ] {
        let (st, c) = (settings.clone(), counters.clone());
        def = def.cmd(name, n, RouteType::ANY, strs_then_pvar(n), move |ctx, a| {
            let Some(s) = st.get() else { return -1 };
            let con = a[0].str(ctx).into_owned();
            let Some(mut conn) = s.conns.get(&con).cloned() else {
                lm_err!("http_client: http_connect: no connection '{con}'");
                return -1;
            };
            let path = a[1].str(ctx).into_owned();
            let (ctype, data) = if n == 5 {
                (a[2].str(ctx).into_owned(), Some(a[3].str(ctx).into_owned()))
            } else {
                (String::new(), None)
            };
            let mut tried = 0;
            loop {
                let url = format!("{}{path}", conn.url);
                let hdrs = if ctype.is_empty() {
                    String::new()
                } else {
                    format!("Content-Type: {ctype}")
                };
                let method = if data.is_some() { "POST" } else { "GET" };
                let req = s.request(method, &url, data.clone(), &hdrs, Some(&conn));
                let r = s.run(&c, &req);
                let failed = match &r {
                    Ok(resp) => resp.status >= 500,
                    Err(_) => true,
                };
                if failed && tried < 5 {
                    if let Some(f) = conn.failover.as_ref().and_then(|f| s.conns.get(f)) {
                        conn = f.clone();
                        tried += 1;
                        continue;
                    }
                }
                return match r {
                    Ok(resp) => {
                        LAST.with(|l| l.borrow_mut().1.insert(con.clone(), resp.url.clone()));
                        assign(
                            ctx,
                            &a[n - 1],
                            Value::Str(String::from_utf8_lossy(&resp.body).into_owned().into()),
                        );
                        i32::from(resp.status)
                    }
                    Err(e) => e.0 as i32,
                };
            }
        });
    }
    let st = settings.clone();
    def = def.cmd(
        "http_get_redirect",
        2,
        RouteType::ANY,
        strs_then_pvar(2),
        move |ctx, a| {
            let Some(s) = st.get() else { return -1 };
            let con = a[0].str(ctx).into_owned();
            if !s.conns.contains_key(&con) {
                return -1;
            }
            match LAST.with(|l| l.borrow().1.get(&con).cloned()) {
                Some(u) => {
                    assign(ctx, &a[1], Value::Str(u.into()));
                    1
                }
                None => -1,
            }
        },
    );
    def = def.cmd(
        "http_client_response_headers_set",
        1,
        RouteType::ANY,
        Some(sr_sdk::fixup::f(sr_sdk::fixup::spve)),
        |ctx, a| {
            if a[0].int(ctx) == 0 {
                LAST.with(|l| l.borrow_mut().0.clear());
            }
            1
        },
    );
    def = def
        .pv("curlerror", |ctx, n| {
            let inner = n.inner.clone().unwrap_or_default();
            let code = if inner.starts_with('$') {
                let msg = &mut *ctx.msg;
                ctx.core.pv_get(msg, &inner).map_or(0, |v| v.as_int())
            } else {
                inner.trim().parse().unwrap_or(0)
            };
            if code < 0 {
                return Value::Null;
            }
            Value::Str(CurlError(code as u32).text().into())
        })
        .pv("httprhdr", |_ctx, n| {
            let name = n.inner.clone().unwrap_or_default();
            LAST.with(|l| {
                l.borrow()
                    .0
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                    .map_or(Value::Null, |(_, v)| Value::Str(v.clone().into()))
            })
        });
    let st = settings.clone();
    def = def.rpc(
        "httpclient.listcon",
        "Lists the httpcon connections.",
        move |_p| {
            let Some(s) = st.get() else {
                return Ok(sr_sdk::serde_json::json!([]));
            };
            let mut v: Vec<_> = s.conns.values().collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(sr_sdk::serde_json::Value::Array(
                v.iter()
                    .map(|c| sr_sdk::serde_json::json!({"name": c.name, "url": c.url}))
                    .collect(),
            ))
        },
    );
    let st = settings.clone();
    def = def.stat_fn("connections", move || {
        st.get().map_or(0, |s| s.conns.len() as i64)
    });
    def.stat("connok", counters.ok.clone())
        .stat("connfail", counters.fail.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_read_as_kamailio_writes_them() {
        let c = parse_conn("apithree=>http://annabella:mysecret@atlanta.example.com/api/12;timeout=12;failover=apione").unwrap();
        assert_eq!(c.name, "apithree");
        assert_eq!(c.url, "http://atlanta.example.com/api/12");
        assert_eq!(c.auth.as_deref(), Some("annabella:mysecret"));
        assert_eq!(c.timeout, Some(12));
        assert_eq!(c.failover.as_deref(), Some("apione"));
        assert!(parse_conn("nourl").is_err());
        assert!(parse_conn("x=>http://h/;bogus=1").is_err());
        assert_eq!(base64(b"annabella:mysecret"), "YW5uYWJlbGxhOm15c2VjcmV0");
    }
}
