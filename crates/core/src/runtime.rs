//! The runtime: owns the registry, the compiled routes, the sockets and
//! the threads, and implements the [`Core`] services modules use.

use crate::core_stats::CoreStats;
use crate::dns::Dns;
use crate::myself::Myself;
use crate::registry::Registry;
use crate::script::compile::RouteNames;
use crate::script::exec::Exec;
use crate::script::ir::{route_type_of, Routes};
use crate::script::pv::SharedVars;
use crate::settings::Settings;
use crate::transport::Transport;
use arc_swap::ArcSwap;
use serde_json::Value as Json;
use sr_sdk::exports::{RequestFn, ResponseFn};
use sr_sdk::{
    BranchTarget, Core, Ctx, Dest, Outgoing, Proto, RouteId, RouteType, RpcError, RunResult,
    SendError, SipMsg, Value,
};
use std::any::Any;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// A periodic timer registered by a module or the core.
pub struct TimerEntry {
    /// Name, for messages.
    pub name: String,
    /// Period.
    pub interval: Duration,
    /// When it runs next.
    pub next: Instant,
    /// What it runs.
    pub f: Arc<dyn Fn() + Send + Sync>,
}

/// The running server.
pub struct Runtime {
    /// Core settings.
    pub settings: Settings,
    /// Everything modules export.
    pub registry: RwLock<Registry>,
    pub(crate) routes: ArcSwap<Routes>,
    /// Route names interned across reloads.
    pub route_names: RouteNames,
    /// `$shv` storage.
    pub shv: SharedVars,
    /// Custom config variables (`group.var = value`), by `group.var`;
    /// read with `$sel(cfg_get.group.var)`, changed with `cfg.set`.
    pub cfg_vars: SharedVars,
    apis: RwLock<HashMap<String, Arc<dyn Any + Send + Sync>>>,
    pub(crate) timers: Mutex<Vec<TimerEntry>>,
    pub(crate) transport: OnceLock<Transport>,
    pub(crate) myself: RwLock<Myself>,
    /// Tests modules added to `myself` (the domain module's table).
    myself_checks: RwLock<Vec<sr_sdk::MyselfCheck>>,
    /// Whether there are any (read without the lock on every `myself`).
    has_myself_checks: AtomicBool,
    /// Core statistics.
    pub stats: CoreStats,
    pub(crate) shutdown: AtomicBool,
    pub(crate) msg_ids: AtomicU64,
    pub(crate) dns: Dns,
    pub(crate) responses: RwLock<Vec<ResponseFn>>,
    pub(crate) requests: RwLock<Vec<RequestFn>>,
    pub(crate) nonsip: RwLock<Vec<RequestFn>>,
    /// The modules' request-done hooks.
    pub(crate) request_done: RwLock<Vec<RequestFn>>,
    /// The modules' received-data hooks, set once after `mod_init`.
    pub(crate) net_data_in: OnceLock<Vec<sr_sdk::exports::NetDataInFn>>,
    /// The modules' STUN hooks, set once after `mod_init`.
    pub(crate) stun_in: OnceLock<Vec<sr_sdk::exports::StunInFn>>,
    /// The modules' unparsed-data hooks (nosip), in load order.
    pub(crate) unparsed: OnceLock<Vec<sr_sdk::exports::UnparsedFn>>,
    pub(crate) started: Instant,
    pub(crate) reload: Mutex<Option<crate::startup::ReloadInfo>>,
    /// Sockets actually bound (ports resolved).
    pub bound: Mutex<Vec<crate::settings::ListenSpec>>,
    pub(crate) server_stop: Mutex<Option<Arc<AtomicBool>>>,
    pub(crate) extra_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// How many modules (in load order) ran their `mod_init`: those whose
    /// `destroy` runs at the end.
    pub(crate) initialized: Mutex<usize>,
    pub(crate) self_ref: OnceLock<std::sync::Weak<Runtime>>,
    /// Messages whose handling panicked (contained; see
    /// [`Runtime::receive_guarded`]). Zero unless there is a bug.
    pub panics: AtomicU64,
    /// The preprocessor's defines at the end of the config (`core.ppdefines`).
    pub defines: OnceLock<Vec<(String, Option<String>)>>,
    /// The destination blocklist (`use_dst_blocklist`).
    pub dst_blocklist: Option<sr_sdk::dst_blocklist::DstBlocklist>,
    /// The tls module's parameters (set by `modparam("tls", ...)`).
    pub tls: Arc<Mutex<crate::tls::TlsParams>>,
    version: String,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Runtime {
    /// Runs `f` with what resolves pseudo-variables at run time (module
    /// PVs, `$shv`, config variables; no preprocessor defines).
    fn with_pv_env<R>(
        &self,
        f: impl FnOnce(&crate::script::pv::PvEnv<'_>) -> R,
    ) -> Result<R, String> {
        let reg = self
            .registry
            .read()
            .map_err(|_| "registry unavailable".to_string())?;
        let defines = Default::default();
        let env = crate::script::pv::PvEnv {
            module_pvs: &reg.pvs,
            shv: &self.shv,
            cfg: &self.cfg_vars,
            defines: &defines,
            here: Default::default(),
        };
        Ok(f(&env))
    }

    /// A runtime with these settings and nothing loaded yet.
    pub fn new(settings: Settings) -> Runtime {
        let cfg_vars = SharedVars::default();
        if let Ok(mut m) = cfg_vars.write() {
            for (g, n, v) in &settings.cfg_vars {
                let v = match v {
                    sr_cfg::GlobalValue::Int(i) => Value::Int(*i),
                    sr_cfg::GlobalValue::Bool(b) => Value::Int(*b as i64),
                    sr_cfg::GlobalValue::Str(s) | sr_cfg::GlobalValue::Word(s) => {
                        Value::Str(s.clone().into())
                    }
                    _ => Value::Null,
                };
                m.insert(format!("{g}.{n}"), v);
            }
        }
        let mut me = Myself::default();
        for l in &settings.listen {
            me.add(&l.addr.ip().to_string(), Some(l.addr.port()));
            if let Some((h, p)) = &l.advertise {
                me.add(h, Some(p.unwrap_or(l.addr.port())));
            }
        }
        for (h, p) in &settings.aliases {
            me.add(h, *p);
        }
        if let Some(a) = &settings.advertised_address {
            me.add(a, settings.advertised_port);
        }
        let dst_blocklist = settings
            .use_dst_blocklist
            .then(|| sr_sdk::dst_blocklist::DstBlocklist::new(settings.dst_blocklist.clone()));
        Runtime {
            dst_blocklist,
            settings,
            registry: RwLock::new(Registry::default()),
            routes: ArcSwap::from_pointee(Routes::default()),
            route_names: RouteNames::default(),
            shv: SharedVars::default(),
            cfg_vars,
            apis: RwLock::new(HashMap::new()),
            timers: Mutex::new(Vec::new()),
            transport: OnceLock::new(),
            myself: RwLock::new(me),
            myself_checks: RwLock::new(Vec::new()),
            has_myself_checks: AtomicBool::new(false),
            stats: CoreStats::default(),
            shutdown: AtomicBool::new(false),
            msg_ids: AtomicU64::new(1),
            dns: Dns::default(),
            responses: RwLock::new(Vec::new()),
            requests: RwLock::new(Vec::new()),
            nonsip: RwLock::new(Vec::new()),
            request_done: RwLock::new(Vec::new()),
            net_data_in: OnceLock::new(),
            stun_in: OnceLock::new(),
            unparsed: OnceLock::new(),
            started: Instant::now(),
            reload: Mutex::new(None),
            bound: Mutex::new(Vec::new()),
            tls: Arc::default(),
            server_stop: Mutex::new(None),
            extra_threads: Mutex::new(Vec::new()),
            initialized: Mutex::new(0),
            self_ref: OnceLock::new(),
            panics: AtomicU64::new(0),
            defines: OnceLock::new(),
            version: format!("siprouter {}", crate::settings::VERSION),
        }
    }

    /// The compiled routes in force.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load_full()
    }

    /// Installs compiled routes (atomically; messages in flight keep the
    /// routes they started with).
    pub fn set_routes(&self, r: Routes) {
        self.routes.store(Arc::new(r));
    }

    /// Adds a local name for `myself` (after a wildcard listen is bound).
    pub fn add_myself(&self, host: &str, port: Option<u16>) {
        if let Ok(mut m) = self.myself.write() {
            m.add(host, port);
        }
    }

    /// A stateless reply (`Core::send_reply`), held on a UDP worker;
    /// `late_failure` runs if a held reply then cannot be sent.
    fn reply_statelessly(
        &self,
        msg: &mut SipMsg,
        code: u16,
        reason: &str,
        late_failure: Option<sr_sdk::LateFailure>,
    ) -> Result<(), SendError> {
        let tag = crate::outbound::stateless_to_tag(msg);
        let out = self.build_reply(msg, code, reason, Some(&tag), None)?;
        self.transport()?
            .send_counted_batched_then(
                &out.dest,
                &out.data,
                crate::udp_send_queue::HeldKind::Logged,
                late_failure,
            )
            .map_err(SendError)
    }

    /// Counts a stateless forward in `fwd_requests` or `drop_requests`.
    fn count_forward(&self, r: Result<(), SendError>) -> Result<(), SendError> {
        match &r {
            Ok(()) => self.stats.fwd_requests.inc(),
            Err(_) => self.stats.drop_requests.inc(),
        }
        r
    }

    /// Moves the stateless forwards this thread held and then failed to
    /// send from `fwd_replies`/`fwd_requests` to `drop_replies`/
    /// `drop_requests`.
    pub(crate) fn settle_held_sends(&self) {
        let f = crate::udp_send_queue::take_failed();
        for (n, fwd, drop) in [
            (f.replies, &self.stats.fwd_replies, &self.stats.drop_replies),
            (
                f.requests,
                &self.stats.fwd_requests,
                &self.stats.drop_requests,
            ),
        ] {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            if n > 0 {
                fwd.add(-n);
                drop.add(n);
            }
        }
    }

    pub(crate) fn transport(&self) -> Result<&Transport, SendError> {
        self.transport
            .get()
            .ok_or_else(|| SendError("sockets are not open".to_string()))
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// A hook of every loaded module that has it, in load order, with the
    /// module's name (`mod_init`, `child_init`, reply hooks, ...).
    pub fn module_hooks<T>(
        &self,
        pick: impl Fn(&sr_sdk::ModuleDef) -> Option<T>,
    ) -> Vec<(String, T)> {
        self.registry
            .read()
            .map(|r| {
                r.modules
                    .iter()
                    .filter_map(|m| pick(&m.def).map(|h| (m.def.name.clone(), h)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs the `destroy` of each module whose `mod_init` ran, in reverse
    /// load order, once (later calls do nothing): at shutdown, and when
    /// the start fails after some modules started (so that a module that
    /// made a file, such as jsonrpcs's socket, removes it).
    pub fn destroy_modules(&self) {
        let n = {
            let mut g = self.initialized.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *g)
        };
        let all = self.module_hooks(|d| Some(d.destroy.clone()));
        for d in all.into_iter().take(n).rev().filter_map(|(_, d)| d) {
            d();
        }
    }

    /// Runs `event_route[name]`, if the config has it, on a faked message
    /// (Kamailio's `faked_msg`), as Kamailio runs core events such as
    /// `core:worker-one-init`.
    pub fn run_event(&self, name: &str) -> Option<RunResult> {
        let idx = self.routes().event(name)?;
        let mut msg = SipMsg::faked();
        Some(self.run_block(idx, RouteType::EVENT, &mut msg))
    }

    /// Runs `event_route[name]`, if the config has it, on a faked message
    /// received as `rcv` says (an event about a connection).
    pub fn run_event_from(&self, name: &str, rcv: sr_sdk::RecvInfo) -> Option<RunResult> {
        let idx = self.routes().event(name)?;
        let mut msg = SipMsg::faked();
        msg.rcv = rcv;
        Some(self.run_block(idx, RouteType::EVENT, &mut msg))
    }

    /// Runs a top-level route block on a message.
    pub fn run_block(&self, idx: usize, rt: RouteType, msg: &mut SipMsg) -> RunResult {
        let routes = self.routes();
        run_in(self, &routes, idx, rt, msg)
    }
}

/// Runs block `idx` of `routes` as a top-level route. A module running a
/// route from a route (prefix_route, a route that runs prefix_route
/// again...) starts a new interpreter each time, so the nesting is
/// counted here.
fn run_in(
    rt: &Runtime,
    routes: &crate::script::ir::Routes,
    idx: usize,
    kind: RouteType,
    msg: &mut SipMsg,
) -> RunResult {
    thread_local! {
        static NESTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    const MAX_NESTED: u32 = 64;
    if NESTED.with(|n| n.get()) >= MAX_NESTED {
        sr_sdk::lm_err!("routes run from routes nest deeper than {MAX_NESTED}: not run");
        return RunResult {
            code: -1,
            dropped: false,
        };
    }
    NESTED.with(|n| n.set(n.get() + 1));
    let mut ctx = Ctx::new(msg, rt, kind);
    let out = Exec::new(routes).run_top(idx, &mut ctx);
    NESTED.with(|n| n.set(n.get().saturating_sub(1)));
    RunResult {
        code: out.code,
        dropped: out.dropped,
    }
}

impl Core for Runtime {
    fn version(&self) -> &str {
        &self.version
    }

    fn send_reply(&self, msg: &mut SipMsg, code: u16, reason: &str) -> Result<(), SendError> {
        self.reply_statelessly(msg, code, reason, None)
    }

    fn send_reply_then(
        &self,
        msg: &mut SipMsg,
        code: u16,
        reason: &str,
        late_failure: sr_sdk::LateFailure,
    ) -> Result<(), SendError> {
        self.reply_statelessly(msg, code, reason, Some(late_failure))
    }

    fn build_reply(
        &self,
        msg: &SipMsg,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) -> Result<Outgoing, SendError> {
        crate::outbound::build_reply(self, msg, code, reason, to_tag, body)
    }

    fn forward(&self, msg: &mut SipMsg, target: Option<&str>) -> Result<(), SendError> {
        self.count_forward(crate::outbound::forward(self, msg, target))
    }

    fn build_request(&self, msg: &SipMsg, target: &BranchTarget) -> Result<Outgoing, SendError> {
        crate::outbound::build_request(self, msg, target)
    }

    fn forward_reply(&self, reply: &mut SipMsg) -> Result<(), SendError> {
        let r = crate::outbound::forward_reply(self, reply);
        match &r {
            Ok(()) => self.stats.fwd_replies.inc(),
            Err(_) => self.stats.drop_replies.inc(),
        }
        r
    }

    fn reply_dest(&self, msg: &SipMsg) -> Result<Dest, SendError> {
        crate::outbound::reply_dest(self, msg)
    }

    fn send(&self, dest: &Dest, data: &[u8]) -> Result<(), SendError> {
        self.transport()?.send(dest, data).map_err(SendError)
    }

    fn send_batched(&self, dest: &Dest, data: &[u8]) {
        match self.transport() {
            Ok(t) => t.send_batched(dest, data),
            Err(e) => sr_sdk::lm_err!("send to {}: {e}", dest.addr),
        }
    }

    fn resolve(&self, uri: &str, proto: Option<Proto>) -> Result<Dest, SendError> {
        crate::outbound::resolve(self, uri, proto)
    }

    fn is_local_ack(&self, msg: &SipMsg) -> bool {
        let m = msg.msg();
        if m.method() != Some(sr_sdk::sip_msg::Method::Ack) {
            return false;
        }
        let Ok(Some(tag)) = m.to_tag() else {
            return false;
        };
        // Our stateless tags all start so: any other tag (a UAS's, on the
        // ACK of a 2xx) is not ours without hashing anything.
        tag.starts_with(crate::outbound::STATELESS_TAG_PREFIX)
            && tag == crate::outbound::stateless_to_tag(msg)
    }

    fn config_path(&self) -> Option<std::path::PathBuf> {
        let r = self.reload.lock().unwrap_or_else(|e| e.into_inner());
        let p = r.as_ref()?.config_path().to_path_buf();
        if p.is_absolute() {
            Some(p)
        } else {
            std::env::current_dir().ok().map(|d| d.join(p))
        }
    }

    fn is_myself(&self, host: &str, port: Option<u16>) -> bool {
        self.myself
            .read()
            .map(|m| m.matches(host, port))
            .unwrap_or(false)
            || (self.has_myself_checks.load(Ordering::Relaxed)
                && self
                    .myself_checks
                    .read()
                    .is_ok_and(|c| c.iter().any(|f| f(host, port))))
    }

    fn local_addr(&self, proto: Proto, near: Option<SocketAddr>) -> Option<(String, u16)> {
        crate::outbound::local_addr(self, proto, near)
    }

    fn received_on(&self, rcv: &sr_sdk::RecvInfo) -> Option<(String, u16)> {
        crate::outbound::received_on(self, rcv)
    }

    fn script_vars(&self, name: Option<&str>) -> Vec<(String, Value<'static>)> {
        use crate::script::state;
        match name {
            Some(n) => state::var_lookup(n)
                .map(|s| vec![(n.to_string(), state::var_get(s))])
                .unwrap_or_default(),
            None => state::var_names()
                .into_iter()
                .map(|(n, s)| (n, state::var_get(s)))
                .collect(),
        }
    }

    fn socket_by_name(&self, name: &str) -> Option<(Proto, SocketAddr)> {
        let b = self.bound.lock().ok()?;
        b.iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map(|l| (l.proto, l.addr))
    }

    fn route_id(&self, kind: RouteType, name: &str) -> Option<RouteId> {
        let k = crate::script::ir::kind_of(kind)?;
        self.routes().find(k, name)?;
        Some(self.route_names.id(k, name))
    }

    fn run_route(&self, id: RouteId, kind: RouteType, msg: &mut SipMsg) -> RunResult {
        let Some((k, name)) = self.route_names.get(id) else {
            return RunResult {
                code: -1,
                dropped: false,
            };
        };
        let routes = self.routes();
        let Some(idx) = routes.find(k, &name) else {
            sr_sdk::lm_err!("route {name} no longer exists after a reload");
            return RunResult {
                code: -1,
                dropped: false,
            };
        };
        let rt = if kind == RouteType(0) {
            route_type_of(k)
        } else {
            kind
        };
        run_in(self, &routes, idx, rt, msg)
    }

    fn pv_get(&self, msg: &mut SipMsg, name: &str) -> Option<Value<'static>> {
        let spec = sr_cfg::parse_pv(name).ok()?;
        let pv = self
            .with_pv_env(|env| crate::script::pv::resolve(&spec, env))
            .ok()?
            .ok()?;
        let mut ctx = Ctx::new(msg, self, RouteType::REQUEST);
        Some(pv.get(&mut ctx, None))
    }

    fn compile_format(&self, s: &str) -> Result<Arc<dyn sr_sdk::fixup::Eval>, String> {
        let f = self.with_pv_env(|env| crate::script::compile::format_text(s, env))??;
        Ok(Arc::new(f))
    }

    fn register_api(&self, name: &str, api: Arc<dyn Any + Send + Sync>) {
        if let Ok(mut a) = self.apis.write() {
            a.insert(name.to_string(), api);
        }
    }

    fn get_api(&self, name: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        self.apis.read().ok()?.get(name).cloned()
    }

    fn add_timer(&self, name: &str, interval: Duration, f: Arc<dyn Fn() + Send + Sync>) {
        if let Ok(mut t) = self.timers.lock() {
            t.push(TimerEntry {
                name: name.to_string(),
                interval,
                next: Instant::now() + interval,
                f,
            });
        }
    }

    fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    fn spawn_process(
        &self,
        name: &str,
        rank: i32,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), String> {
        let me = self
            .self_ref
            .get()
            .and_then(|w| w.upgrade())
            .ok_or("the runtime is not running")?;
        me.spawn_module_thread(name, rank, f)
    }

    fn rpc_call(&self, method: &str, params: &[Json]) -> Result<Json, RpcError> {
        let handler = {
            let reg = self
                .registry
                .read()
                .map_err(|_| RpcError::new(500, "registry unavailable"))?;
            reg.rpcs.get(method).map(|r| r.handler.clone())
        };
        match handler {
            Some(h) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(params))) {
                Ok(r) => r,
                Err(_) => Err(RpcError::new(500, format!("{method}: internal error"))),
            },
            None => Err(RpcError::new(-32601, format!("Method not found: {method}"))),
        }
    }

    fn statistics(&self) -> Vec<(String, String, i64)> {
        self.registry
            .read()
            .map(|r| r.read_stats())
            .unwrap_or_default()
    }

    fn handle(&self) -> Option<std::sync::Weak<dyn Core>> {
        let w: std::sync::Weak<dyn Core> = self.self_ref.get()?.clone();
        Some(w)
    }

    fn pv_set(&self, msg: &mut SipMsg, name: &str, v: Value<'_>) -> Result<(), String> {
        let spec = sr_cfg::parse_pv(name).map_err(|e| format!("{name}: {e:?}"))?;
        let pv = self.with_pv_env(|env| crate::script::pv::resolve(&spec, env))??;
        if !pv.writable() {
            return Err(format!("{name} is read-only"));
        }
        let index = match spec.index {
            Some(sr_cfg::PvIndex::All) => Some(i64::MIN),
            Some(sr_cfg::PvIndex::Int(i)) => Some(i),
            _ => None,
        };
        let mut ctx = Ctx::new(msg, self, RouteType::REQUEST);
        pv.set(&mut ctx, v, index)
    }

    fn shared_vars(&self) -> Vec<(String, Value<'static>)> {
        let mut v: Vec<_> = self
            .shv
            .read()
            .map(|m| m.iter().map(|(k, x)| (k.clone(), x.clone())).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn register_stats(
        &self,
        group: &str,
        stats: Vec<sr_sdk::stats::StatExport>,
    ) -> Result<(), String> {
        let mut reg = self.registry.write().map_err(|_| "registry unavailable")?;
        if let Some(g) = reg.stats.iter().find(|g| g.name == group) {
            if let Some(d) = stats
                .iter()
                .find(|s| g.stats.iter().any(|x| x.name == s.name))
            {
                return Err(format!("statistic {group}:{} already exists", d.name));
            }
        }
        reg.add_stats(group, stats);
        Ok(())
    }

    fn stream_conns(&self) -> Option<Arc<dyn sr_sdk::StreamConns>> {
        let tcp = self.transport.get()?.tcp.clone()?;
        Some(tcp)
    }

    fn aliases(&self) -> Vec<(String, Option<u16>)> {
        self.settings.aliases.clone()
    }

    fn socket_name(&self, rcv: &sr_sdk::RecvInfo) -> Option<String> {
        let i = crate::outbound::listen_of(self, rcv.proto, rcv.dst)?;
        self.settings.listen.get(i)?.name.clone()
    }

    fn server_id(&self) -> i64 {
        self.settings.server_id
    }

    fn dst_blocklist(&self) -> Option<&sr_sdk::dst_blocklist::DstBlocklist> {
        self.dst_blocklist.as_ref()
    }

    fn stateless_to_tag(&self, msg: &SipMsg) -> Option<String> {
        Some(crate::outbound::stateless_to_tag(msg))
    }

    fn user_agent_header(&self) -> Option<String> {
        let h = self.settings.user_agent_header.trim();
        (!h.is_empty()).then(|| h.to_string())
    }

    fn add_myself_check(&self, check: sr_sdk::MyselfCheck) -> Result<(), String> {
        self.myself_checks
            .write()
            .map_err(|_| "lock".to_string())?
            .push(check);
        self.has_myself_checks.store(true, Ordering::Relaxed);
        Ok(())
    }
}
