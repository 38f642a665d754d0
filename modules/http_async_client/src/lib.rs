//! # http_async_client: HTTP queries answered in a route
//!
//! Kamailio's `http_async_client`. `http_async_query(url, route)` sends an
//! HTTP(S) request from one of the module's `workers` threads. When the
//! request has a transaction (and `$http_req(suspend)` was not set to 0),
//! the transaction is suspended and the script stops (return 0); when the
//! answer comes, or the query fails or times out, `route[route]` runs on
//! the transaction's request (tm's `t_continue`), where `$http_ok`,
//! `$http_err`, `$http_rs`, `$http_rr`, `$http_hdr(name)`, `$http_rb`,
//! `$http_bs`, `$http_mb`, `$http_ml` and `$http_req_id` read the
//! outcome. Without a transaction the script goes on (return 1) and the
//! route runs later on a faked request. `$http_req(key)` sets the next
//! query: `hdr`, `body`, `method`, `timeout`, `username`, `password`,
//! `authmethod`, `tls_client_cert`, `tls_client_key`, `tls_ca_path`,
//! `suspend`, and `all` (= `$null`: back to the defaults).
#![forbid(unsafe_code)]

pub mod query;

use query::{Defaults, Outcome, Params};
use sr_mod_http_client::client;
use sr_mod_http_client::tls::{config as tls_config, TlsSettings};
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use sr_sdk::{PvName, RouteId};
use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, RwLock, Weak};

thread_local! {
    /// The settings of this thread's next query.
    static NEXT: RefCell<Option<Params>> = const { RefCell::new(None) };
    /// The outcome the callback route running on this thread reads.
    static CURRENT: RefCell<Option<Arc<Outcome>>> = const { RefCell::new(None) };
    /// The id of this thread's last query (`$http_req_id` after it).
    static LAST_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A query on its way to a worker.
struct Job {
    id: String,
    url: String,
    params: Params,
    route: RouteId,
    /// The suspended transaction to continue, if any.
    tx: Option<(u64, u64)>,
}

/// The module's settings and state.
struct Hac {
    workers: Arc<AtomicI64>,
    connection_timeout: Arc<AtomicI64>,
    tls_verify_host: Arc<AtomicI64>,
    tls_verify_peer: Arc<AtomicI64>,
    tls_client_cert: Arc<RwLock<String>>,
    tls_client_key: Arc<RwLock<String>>,
    tls_ca_path: Arc<RwLock<String>>,
    queue: OnceLock<Mutex<mpsc::Sender<Job>>>,
    tm: OnceLock<Arc<TmApi>>,
    core: OnceLock<Weak<dyn Core>>,
    seq: AtomicU64,
    requests: Stat,
    replies: Stat,
    errors: Stat,
    timeouts: Stat,
}

impl Hac {
    fn defaults(&self) -> Defaults {
        let text = |c: &RwLock<String>| c.read().map(|s| s.clone()).unwrap_or_default();
        Defaults {
            timeout_ms: u64::try_from(params::get_int(&self.connection_timeout)).unwrap_or(0),
            tls_client_cert: text(&self.tls_client_cert),
            tls_client_key: text(&self.tls_client_key),
            tls_ca_path: text(&self.tls_ca_path),
            tls_verify_peer: params::get_int(&self.tls_verify_peer) != 0,
            tls_verify_host: params::get_int(&self.tls_verify_host) != 0,
        }
    }

    /// Runs `f` on this thread's next-query settings.
    fn with_next<R>(&self, f: impl FnOnce(&mut Params) -> R) -> R {
        NEXT.with(|n| {
            let mut n = n.borrow_mut();
            let p = n.get_or_insert_with(|| Params::defaults(&self.defaults()));
            f(p)
        })
    }

    /// `http_async_query(url, route)`.
    fn query(&self, ctx: &mut Ctx<'_>, url: &str, route: RouteId) -> i32 {
        let Some(tm) = self.tm.get() else {
            return -1;
        };
        let params = self.with_next(|p| std::mem::replace(p, Params::defaults(&self.defaults())));
        let tx = if params.suspend && !ctx.msg.faked && tm.has_transaction(ctx.msg) {
            if tm.t_suspend(ctx) != 1 {
                lm_err!("http_async_query: failed to suspend request processing");
                return -1;
            }
            tm.t_ids(ctx)
        } else {
            None
        };
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{}-{n}", std::process::id());
        LAST_ID.with(|l| *l.borrow_mut() = Some(id.clone()));
        let job = Job {
            id,
            url: url.to_string(),
            params,
            route,
            tx,
        };
        let sent = self
            .queue
            .get()
            .and_then(|q| q.lock().ok().map(|q| q.send(job).is_ok()))
            .unwrap_or(false);
        if !sent {
            lm_err!("http_async_query: failed to relay query: {url}");
            return -1;
        }
        self.requests.inc();
        if tx.is_some() {
            0
        } else {
            1
        }
    }

    /// Sends a query and runs its route with the outcome (a worker).
    fn run(&self, job: Job) {
        let mut req = job.params.request(&job.url);
        let https = job.url.len() >= 8 && job.url[..8].eq_ignore_ascii_case("https://");
        let result = if https {
            let s = TlsSettings {
                cacert: job.params.tls_ca_path.clone(),
                verify_peer: job.params.tls_verify_peer,
                verify_host: job.params.tls_verify_host,
                client: (!job.params.tls_client_cert.is_empty()).then(|| {
                    (
                        job.params.tls_client_cert.clone(),
                        job.params.tls_client_key.clone(),
                    )
                }),
            };
            match tls_config(&s) {
                Ok(c) => {
                    req.tls = Some(Arc::new(c));
                    client::send(&req)
                }
                Err(e) => {
                    lm_err!("http_async_query: TLS settings: {e}");
                    Err(client::CurlError::SSL_CACERT_BADFILE)
                }
            }
        } else {
            client::send(&req)
        };
        match &result {
            Ok(_) => self.replies.inc(),
            Err(e) if *e == client::CurlError::OPERATION_TIMEDOUT => self.timeouts.inc(),
            Err(_) => self.errors.inc(),
        }
        let outcome = Arc::new(Outcome { id: job.id, result });
        let (Some(tm), Some(core)) = (self.tm.get(), self.core.get().and_then(Weak::upgrade))
        else {
            return;
        };
        CURRENT.with(|c| *c.borrow_mut() = Some(outcome));
        match job.tx {
            Some((index, label)) => {
                if tm.t_continue(&*core, index, label, job.route) < 0 {
                    lm_err!("http_async_client: transaction not found {index}:{label}");
                }
            }
            None => {
                let mut msg = SipMsg::faked();
                core.run_route(job.route, RouteType::REQUEST, &mut msg);
            }
        }
        CURRENT.with(|c| *c.borrow_mut() = None);
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        let tm = bind::<TmApi>(core, TM_API)
            .ok_or("http_async_client needs the tm module (load tm before it)")?;
        let _ = self.tm.set(tm);
        let handle = core.handle().ok_or("http_async_client: no core handle")?;
        let _ = self.core.set(handle);
        let n = params::get_int(&self.workers).clamp(1, 64);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let (h, rx) = (self.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("http-async-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    h.run(job);
                })
                .map_err(|e| format!("http_async_client: cannot start a worker: {e}"))?;
        }
        let _ = self.queue.set(Mutex::new(tx));
        Ok(())
    }
}

/// The outcome the running callback route reads.
fn current() -> Option<Arc<Outcome>> {
    CURRENT.with(|c| c.borrow().clone())
}

fn text(v: Option<String>) -> Value<'static> {
    v.map_or(Value::Null, Value::from)
}

/// Sets one `$http_req(key)`.
fn set_req(h: &Hac, key: &str, v: Value<'_>) -> Result<(), String> {
    let s = (!v.is_null()).then(|| v.as_str().into_owned());
    h.with_next(|p| {
        match key {
            "all" => {
                if s.is_none() {
                    *p = Params::defaults(&h.defaults());
                }
            }
            "hdr" => p.headers.extend(s),
            "body" => p.body = s,
            "method" => match s {
                Some(m) if !p.set_method(&m) => {
                    return Err(format!("$http_req(method): unsupported method '{m}'"))
                }
                Some(_) => {}
                None => p.method = None,
            },
            "timeout" => {
                p.timeout_ms = match v {
                    Value::Null => h.defaults().timeout_ms,
                    Value::Int(i) => u64::try_from(i).unwrap_or(0),
                    Value::Str(_) => return Err("invalid value type for $http_req(timeout)".into()),
                }
            }
            "authmethod" => p.authmethod = v.as_int(),
            "username" => p.username = s.unwrap_or_default(),
            "password" => p.password = s.unwrap_or_default(),
            "tls_client_cert" => p.tls_client_cert = s.unwrap_or_default(),
            "tls_client_key" => p.tls_client_key = s.unwrap_or_default(),
            "tls_ca_path" => p.tls_ca_path = s.unwrap_or_default(),
            "suspend" => p.suspend = v.is_null() || v.as_int() != 0,
            other => return Err(format!("unknown http_req name {other}")),
        }
        Ok(())
    })
}

const REQ_KEYS: &[&str] = &[
    "all",
    "hdr",
    "body",
    "method",
    "timeout",
    "authmethod",
    "username",
    "password",
    "tls_client_cert",
    "tls_client_key",
    "tls_ca_path",
    "suspend",
];

/// The module definition.
pub fn module() -> ModuleDef {
    let h = Arc::new(Hac {
        workers: params::int_cell(1),
        connection_timeout: params::int_cell(500),
        tls_verify_host: params::int_cell(2),
        tls_verify_peer: params::int_cell(1),
        tls_client_cert: params::str_cell(""),
        tls_client_key: params::str_cell(""),
        tls_ca_path: params::str_cell(""),
        queue: OnceLock::new(),
        tm: OnceLock::new(),
        core: OnceLock::new(),
        seq: AtomicU64::new(0),
        requests: Stat::new(),
        replies: Stat::new(),
        errors: Stat::new(),
        timeouts: Stat::new(),
    });
    let hq = h.clone();
    let hs = h.clone();
    let route_fx = fixup::route(RouteType::REQUEST);
    let mut def = ModuleDef::new("http_async_client")
        .param("workers", ParamKind::Int, params::int(&h.workers))
        .param(
            "connection_timeout",
            ParamKind::Int,
            params::int(&h.connection_timeout),
        )
        .param(
            "tls_verify_host",
            ParamKind::Int,
            params::int(&h.tls_verify_host),
        )
        .param(
            "tls_verify_peer",
            ParamKind::Int,
            params::int(&h.tls_verify_peer),
        )
        .param(
            "tls_client_cert",
            ParamKind::Str,
            params::string(&h.tls_client_cert),
        )
        .param(
            "tls_client_key",
            ParamKind::Str,
            params::string(&h.tls_client_key),
        )
        .param(
            "tls_ca_path",
            ParamKind::Str,
            params::string(&h.tls_ca_path),
        );
    // Accepted with no effect: curl and libev tuning.
    for name in [
        "hash_size",
        "tls_version",
        "curl_verbose",
        "memory_manager",
        "tcp_keepalive",
        "tcp_ka_idle",
        "tcp_ka_interval",
    ] {
        def = def.param(name, ParamKind::Any, |_| Ok(()));
    }
    def = def
        .stat("requests", h.requests.clone())
        .stat("replies", h.replies.clone())
        .stat("errors", h.errors.clone())
        .stat("timeouts", h.timeouts.clone())
        .cmd(
            "http_async_query",
            2,
            RouteType::ANY,
            Some(Arc::new(move |env, i, a| {
                if i == 1 {
                    route_fx(env, i, a)
                } else {
                    fixup::spve(env, i, a)
                }
            })),
            move |ctx, p| {
                let url = p[0].str(ctx).into_owned();
                let Fixed::Route(r) = &p[1] else {
                    return -1;
                };
                hq.query(ctx, &url, *r)
            },
        )
        .pv_rw_checked(
            "http_req",
            |n: &PvName| {
                let key = n.inner.as_deref().unwrap_or("");
                if REQ_KEYS.contains(&key) {
                    Ok(())
                } else {
                    Err(format!("unknown http_req name {key}"))
                }
            },
            |_, _| Value::Null,
            move |_, n: &PvName, v| {
                let key = n.inner.as_deref().unwrap_or("");
                set_req(&hs, key, v)
            },
        );
    for name in ["http_req_id", "http_query_id"] {
        def = def.pv(name, |_, _| {
            text(
                current()
                    .map(|o| o.id.clone())
                    .or_else(|| LAST_ID.with(|l| l.borrow().clone())),
            )
        });
    }
    def = def
        .pv("http_ok", |_, _| {
            current().map_or(Value::Null, |o| Value::Int(i64::from(o.ok())))
        })
        .pv("http_err", |_, _| {
            text(current().and_then(|o| o.error().map(str::to_string)))
        })
        .pv("http_rs", |_, _| {
            current()
                .and_then(|o| o.response().map(|r| Value::Int(i64::from(r.status))))
                .unwrap_or(Value::Null)
        })
        .pv("http_rr", |_, _| {
            text(current().and_then(|o| o.response().map(|r| r.reason.clone())))
        })
        .pv("http_hdr", |_, n| {
            let name = n.inner.clone().unwrap_or_default();
            text(current().and_then(|o| o.header(&name, n.index.unwrap_or(0))))
        })
        .pv("http_rb", |_, _| {
            text(current().and_then(|o| {
                o.response()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            }))
        })
        .pv("http_bs", |_, _| {
            current()
                .and_then(|o| {
                    o.response()
                        .map(|r| Value::Int(i64::try_from(r.body.len()).unwrap_or(0)))
                })
                .unwrap_or(Value::Null)
        })
        .pv("http_mb", |_, _| text(current().and_then(|o| o.whole())))
        .pv("http_ml", |_, _| {
            current().and_then(|o| o.whole()).map_or(Value::Null, |w| {
                Value::Int(i64::try_from(w.len()).unwrap_or(0))
            })
        });
    def.on_init(move |core| h.init(core))
}
