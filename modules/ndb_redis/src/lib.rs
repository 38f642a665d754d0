//! # ndb_redis: Redis from the routing script
//!
//! Kamailio's `ndb_redis` module: named servers (`server`), commands from
//! the script (`redis_cmd`) with their replies kept in named containers
//! read with `$redis(name=>key)`, pipelines (`redis_pipe_cmd`,
//! `redis_execute`), `redis_free`, `$redisd(rpl_*)` for the reply types,
//! Redis Cluster redirections (`cluster`, `allow_dynamic_nodes`),
//! Sentinel, and servers disabled for a while after failures
//! (`allowed_timeouts`, `disable_time`).
//!
//! Each worker has its own connection to each server and its own reply
//! containers, as each Kamailio process does. The RESP client is this
//! module's own (resp.rs, client.rs).
#![forbid(unsafe_code)]

pub mod client;
pub mod format;
pub mod replies;
pub mod resp;
pub mod server;

use client::{Conn, Timeouts};
use resp::Reply;
use server::{Server, Target};
use sr_sdk::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Most commands a pipeline holds (Kamailio's limit).
const MAX_PIPELINED: usize = 1000;
/// Most `MOVED` redirections followed for one command.
const MAX_REDIRECTS: usize = 8;

/// The module's state.
struct Redis {
    servers: RwLock<Vec<Server>>,
    init_without_redis: Arc<AtomicI64>,
    connect_timeout: Arc<AtomicI64>,
    cmd_timeout: Arc<AtomicI64>,
    cluster: Arc<AtomicI64>,
    allowed_timeouts: Arc<AtomicI64>,
    disable_time: Arc<AtomicI64>,
    flush_on_reconnect: Arc<AtomicI64>,
    allow_dynamic_nodes: Arc<AtomicI64>,
    /// This instance's number (its thread-local state is keyed by it).
    id: usize,
}

/// A worker's state for one server.
#[derive(Default)]
struct Link {
    conn: Option<Conn>,
    /// Whether a connection was made before (a new one is a reconnection,
    /// for `flush_on_reconnect`).
    connected_before: bool,
    /// Commands waiting for `redis_execute`: the container and arguments.
    piped: Vec<(String, Vec<Vec<u8>>)>,
    /// Failures in a row (`allowed_timeouts`).
    errors: i64,
    /// Disabled until then (`disable_time`).
    disabled_until: Option<Instant>,
}

thread_local! {
    static LINKS: RefCell<HashMap<(usize, String), Link>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

fn ms(cell: &AtomicI64) -> Duration {
    Duration::from_millis(params::get_int(cell).max(0) as u64)
}

/// Why a command did not give a reply.
enum Failure {
    /// The server is disabled for a while (-2).
    Disabled,
    /// No connection, or no reply in time (-1).
    Io,
}

impl Redis {
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: ms(&self.connect_timeout),
            cmd: ms(&self.cmd_timeout),
        }
    }

    fn server(&self, name: &str) -> Option<Server> {
        self.servers
            .read()
            .ok()?
            .iter()
            .find(|s| s.name == name)
            .cloned()
    }

    fn with_link<T>(&self, name: &str, f: impl FnOnce(&mut Link) -> T) -> T {
        LINKS.with(|m| {
            f(m.borrow_mut()
                .entry((self.id, name.to_string()))
                .or_default())
        })
    }

    /// Whether the server is disabled now (re-enabled once its time is up).
    fn disabled(&self, srv: &str, link: &mut Link) -> bool {
        match link.disabled_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                lm_info!("ndb_redis: server [{srv}] enabled again");
                link.disabled_until = None;
                link.errors = 0;
                false
            }
            None => false,
        }
    }

    /// Counts a failure; past `allowed_timeouts` in a row, disables the
    /// server for `disable_time` seconds.
    fn count_failure(&self, srv: &str, link: &mut Link) {
        let allowed = params::get_int(&self.allowed_timeouts);
        if allowed < 0 {
            return;
        }
        link.errors += 1;
        if link.errors > allowed {
            let secs = params::get_int(&self.disable_time).max(0) as u64;
            lm_err!(
                "ndb_redis: server [{srv}] disabled for {secs} s after {} failed commands",
                link.errors
            );
            let now = Instant::now();
            // A time too far to add means "for good" (about 30 years).
            link.disabled_until = Some(
                now.checked_add(Duration::from_secs(secs))
                    .unwrap_or_else(|| now + Duration::from_secs(1 << 30)),
            );
        }
    }

    /// The link's connection, made (again) when there is none.
    fn connect<'a>(&self, srv: &Server, link: &'a mut Link) -> Result<&'a mut Conn, String> {
        if link.conn.is_none() {
            let mut c = Conn::open(srv, self.timeouts())?;
            if link.connected_before && params::get_int(&self.flush_on_reconnect) != 0 {
                if let Reply::Error(e) = c.command(&[b"FLUSHALL".to_vec()])? {
                    lm_err!("ndb_redis: FLUSHALL on [{}] failed: {e}", srv.name);
                }
            }
            link.connected_before = true;
            link.conn = Some(c);
        }
        link.conn
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    /// Sends `cmds` to `srv` on this worker's connection, connecting again
    /// and trying once more when the first attempt fails.
    fn send(&self, srv: &Server, cmds: &[Vec<Vec<u8>>]) -> Result<Vec<Reply>, Failure> {
        self.with_link(&srv.name, |link| {
            if self.disabled(&srv.name, link) {
                return Err(Failure::Disabled);
            }
            let mut last = String::new();
            for _ in 0..2 {
                let r = self.connect(srv, link).and_then(|c| c.pipeline(cmds));
                match r {
                    Ok(replies) => {
                        link.errors = 0;
                        if !link.conn.as_ref().is_some_and(Conn::in_step) {
                            lm_warn!(
                                "ndb_redis: server [{}] sent more than the replies: connection dropped",
                                srv.name
                            );
                            link.conn = None;
                        }
                        return Ok(replies);
                    }
                    Err(e) => {
                        link.conn = None;
                        last = e;
                    }
                }
            }
            lm_err!("ndb_redis: server [{}]: {last}", srv.name);
            self.count_failure(&srv.name, link);
            Err(Failure::Io)
        })
    }

    /// The server a `MOVED` error names, added when `allow_dynamic_nodes`
    /// allows and it is not configured.
    fn moved(&self, from: &Server, err: &str) -> Option<Server> {
        let rest = err.strip_prefix("MOVED ")?;
        let addr = rest.split_whitespace().nth(1)?;
        if let Some(s) = self.server(addr) {
            return Some(s);
        }
        if params::get_int(&self.allow_dynamic_nodes) == 0 {
            lm_err!("ndb_redis: no server named [{addr}] for the MOVED reply");
            return None;
        }
        let (host, port) = addr.rsplit_once(':')?;
        let s = Server {
            name: addr.to_string(),
            target: Target::Tcp(host.to_string(), port.parse().ok()?),
            db: from.db,
            pass: from.pass.clone(),
        };
        if let Ok(mut all) = self.servers.write() {
            if !all.iter().any(|x| x.name == s.name) {
                all.push(s.clone());
            }
        }
        Some(s)
    }

    /// Sends the pipelined commands of `srv`: -1 when none are waiting or
    /// they failed, -2 when the server is disabled, 1 otherwise (also
    /// when Redis answered some with an error, as Kamailio's).
    fn execute(&self, srv: &Server) -> i32 {
        let piped = self.with_link(&srv.name, |l| std::mem::take(&mut l.piped));
        if piped.is_empty() {
            lm_warn!("ndb_redis: no pipelined commands for server [{}]", srv.name);
            return -1;
        }
        let cmds: Vec<_> = piped.iter().map(|(_, a)| a.clone()).collect();
        match self.send(srv, &cmds) {
            Ok(replies) => {
                for ((name, _), r) in piped.iter().zip(replies) {
                    if let Reply::Error(e) = &r {
                        lm_err!("ndb_redis: Redis error: {e}");
                    }
                    replies::store(self.id, name, Some(r));
                }
                1
            }
            Err(f) => {
                for (name, _) in &piped {
                    replies::store(self.id, name, None);
                }
                match f {
                    Failure::Disabled => -2,
                    _ => -1,
                }
            }
        }
    }

    /// `redis_cmd`: 1 with a reply, -1 when it failed or Redis answered
    /// with an error (kept in the container), -2 while the server is
    /// disabled.
    fn cmd(&self, srv: &str, args: Vec<Vec<u8>>, res: &str) -> i32 {
        let Some(mut server) = self.server(srv) else {
            lm_err!("ndb_redis: no redis server found: {srv}");
            return -1;
        };
        if self.with_link(srv, |l| !l.piped.is_empty()) {
            lm_notice!("ndb_redis: redis_cmd with pipelined commands waiting: sending them first");
            self.execute(&server);
        }
        let cluster = params::get_int(&self.cluster) != 0;
        let mut hops = 0;
        loop {
            match self.send(&server, std::slice::from_ref(&args)) {
                Ok(mut r) => {
                    let reply = r.pop().unwrap_or(Reply::Nil);
                    if let Reply::Error(e) = &reply {
                        if cluster && hops < MAX_REDIRECTS {
                            if let Some(next) = self.moved(&server, e) {
                                hops += 1;
                                server = next;
                                continue;
                            }
                        }
                        lm_err!("ndb_redis: Redis error: {e}");
                        replies::store(self.id, res, Some(reply));
                        return -1;
                    }
                    replies::store(self.id, res, Some(reply));
                    return 1;
                }
                Err(f) => {
                    replies::store(self.id, res, None);
                    return match f {
                        Failure::Disabled => -2,
                        Failure::Io => -1,
                    };
                }
            }
        }
    }

    /// `redis_pipe_cmd`: the command held for `redis_execute`.
    fn pipe(&self, srv: &str, args: Vec<Vec<u8>>, res: &str) -> i32 {
        if self.server(srv).is_none() {
            lm_err!("ndb_redis: no redis server found: {srv}");
            return -1;
        }
        self.with_link(srv, |l| {
            if l.piped.len() >= MAX_PIPELINED {
                lm_err!(
                    "ndb_redis: too many pipelined commands for [{srv}] (most {MAX_PIPELINED})"
                );
                return -1;
            }
            l.piped.push((res.to_string(), args));
            1
        })
    }
}

/// The script's arguments: server, command text, its `%s` values, reply
/// container; `None` (after a log line) when the command cannot be made.
fn read_args(ctx: &mut Ctx<'_>, p: &[Fixed]) -> Option<(String, Vec<Vec<u8>>, String)> {
    let all: Vec<String> = p.iter().map(|f| f.str(ctx).into_owned()).collect();
    let (srv, rest) = all.split_first()?;
    let (res, rest) = rest.split_last()?;
    let (cmd, vals) = rest.split_first()?;
    let vals: Vec<&str> = vals.iter().map(String::as_str).collect();
    match format::format(cmd, &vals) {
        Ok(args) if streams(&args) => {
            lm_err!("ndb_redis: [{cmd}] answers with a stream of replies: not supported");
            None
        }
        Ok(args) => Some((srv.clone(), args, res.clone())),
        Err(e) => {
            lm_err!("ndb_redis: cannot make the command: {e}");
            None
        }
    }
}

/// Commands after which Redis keeps sending (subscriptions, `MONITOR`):
/// their later messages would be read as the next commands' replies.
fn streams(args: &[Vec<u8>]) -> bool {
    args.first().is_some_and(|c| {
        [
            "SUBSCRIBE",
            "PSUBSCRIBE",
            "SSUBSCRIBE",
            "MONITOR",
            "SYNC",
            "PSYNC",
        ]
        .iter()
        .any(|s| c.eq_ignore_ascii_case(s.as_bytes()))
    })
}

fn redisd(name: &sr_sdk::PvName) -> Value<'static> {
    let v = match name.inner.as_deref().unwrap_or("") {
        "rpl_str" => resp::TYPE_STRING,
        "rpl_arr" => resp::TYPE_ARRAY,
        "rpl_int" => resp::TYPE_INTEGER,
        "rpl_nil" => resp::TYPE_NIL,
        "rpl_sts" => resp::TYPE_STATUS,
        "rpl_err" => resp::TYPE_ERROR,
        _ => return Value::Null,
    };
    Value::Int(v)
}

/// An index pseudo-variable's value as an integer.
fn pv_int(ctx: &mut Ctx<'_>, pv: &str) -> Option<i64> {
    match ctx.core.pv_get(ctx.msg, pv)? {
        Value::Int(i) => Some(i),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Null => None,
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let r = Arc::new(Redis {
        servers: RwLock::new(Vec::new()),
        init_without_redis: params::int_cell(0),
        connect_timeout: params::int_cell(1000),
        cmd_timeout: params::int_cell(1000),
        cluster: params::int_cell(0),
        allowed_timeouts: params::int_cell(-1),
        disable_time: params::int_cell(0),
        flush_on_reconnect: params::int_cell(0),
        allow_dynamic_nodes: params::int_cell(0),
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
    });
    let (srv, init) = (r.clone(), r.clone());
    let mut def = ModuleDef::new("ndb_redis")
        .param("server", ParamKind::Str, move |v| {
            let v = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            let s = server::parse(&v)?;
            srv.servers
                .write()
                .map_err(|_| "poisoned".to_string())?
                .push(s);
            Ok(())
        })
        .param(
            "init_without_redis",
            ParamKind::Int,
            params::int(&r.init_without_redis),
        )
        .param(
            "connect_timeout",
            ParamKind::Int,
            params::int(&r.connect_timeout),
        )
        .param("cmd_timeout", ParamKind::Int, params::int(&r.cmd_timeout))
        .param("cluster", ParamKind::Int, params::int(&r.cluster))
        .param(
            "allowed_timeouts",
            ParamKind::Int,
            params::int(&r.allowed_timeouts),
        )
        .param("disable_time", ParamKind::Int, params::int(&r.disable_time))
        .param(
            "flush_on_reconnect",
            ParamKind::Int,
            params::int(&r.flush_on_reconnect),
        )
        .param(
            "allow_dynamic_nodes",
            ParamKind::Int,
            params::int(&r.allow_dynamic_nodes),
        )
        .on_init(move |_core| {
            // One connection to each server now, so that a wrong address
            // stops the start (each worker then opens its own).
            let servers = init.servers.read().map_err(|_| "poisoned")?.clone();
            let lenient = params::get_int(&init.init_without_redis) != 0;
            for s in &servers {
                if let Err(e) = Conn::open(s, init.timeouts()) {
                    if !lenient {
                        return Err(format!(
                            "ndb_redis: failed to connect to server [{}]: {e}",
                            s.name
                        ));
                    }
                    lm_warn!(
                        "ndb_redis: failed to connect to server [{}]: {e} - trying on use",
                        s.name
                    );
                }
            }
            Ok(())
        });
    for nargs in 3..=6usize {
        let c = r.clone();
        def = def.cmd(
            "redis_cmd",
            nargs,
            RouteType::ANY,
            Some(Arc::new(fixup::spve)),
            move |ctx, p| match read_args(ctx, p) {
                Some((srv, args, res)) => c.cmd(&srv, args, &res),
                None => -1,
            },
        );
        let c = r.clone();
        def = def.cmd(
            "redis_pipe_cmd",
            nargs,
            RouteType::ANY,
            Some(Arc::new(fixup::spve)),
            move |ctx, p| {
                if params::get_int(&c.cluster) != 0 {
                    lm_err!(
                        "ndb_redis: Pipelining is not supported if cluster parameter is enabled"
                    );
                    return -1;
                }
                match read_args(ctx, p) {
                    Some((srv, args, res)) => c.pipe(&srv, args, &res),
                    None => -1,
                }
            },
        );
    }
    let c = r.clone();
    def = def.cmd(
        "redis_execute",
        1,
        RouteType::ANY,
        Some(Arc::new(fixup::spve)),
        move |ctx, p| {
            if params::get_int(&c.cluster) != 0 {
                lm_err!("ndb_redis: Pipelining is not supported if cluster parameter is enabled");
                return -1;
            }
            let name = p[0].str(ctx).into_owned();
            match c.server(&name) {
                Some(s) => c.execute(&s),
                None => {
                    lm_err!("ndb_redis: no redis server found: {name}");
                    -1
                }
            }
        },
    );
    let c = r.clone();
    def = def.cmd(
        "redis_free",
        1,
        RouteType::ANY,
        Some(Arc::new(fixup::spve)),
        move |ctx, p| {
            let name = p[0].str(ctx).into_owned();
            if replies::free(c.id, &name) {
                1
            } else {
                -1
            }
        },
    );
    let c = r.clone();
    let check = |name: &sr_sdk::PvName| {
        replies::parse_spec(name.inner.as_deref().unwrap_or(""))
            .map(|_| ())
            .ok_or_else(|| {
                "invalid key spec (name=>type|value|info|size, type[n], value[n], value[n]=>...)"
                    .to_string()
            })
    };
    def = def.pv_checked("redis", check, move |ctx, name| {
        let Some(spec) = replies::parse_spec(name.inner.as_deref().unwrap_or("")) else {
            return Value::Null;
        };
        replies::with(c.id, &spec.name, |reply| {
            replies::get(reply, &spec, &mut |pv| pv_int(ctx, pv))
        })
        .unwrap_or(Value::Null)
    });
    let known = |name: &sr_sdk::PvName| match redisd(name) {
        Value::Null => Err(
            "unknown redisd name (rpl_str, rpl_arr, rpl_int, rpl_nil, rpl_sts, rpl_err)"
                .to_string(),
        ),
        _ => Ok(()),
    };
    def.pv_checked("redisd", known, |_ctx, name| redisd(name))
}
