//! Lifecycle as Kamailio does it: read the config; load modules in config
//! order, applying each `modparam` as it is read; run `mod_init` in load
//! order; compile the routes (fixups); open the sockets and start the
//! workers, running `child_init(rank)` in each; on shutdown, `destroy` in
//! reverse load order. Also the routing-logic reload.

use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::script::compile::{compile, CompileEnv};
use crate::settings::{ListenSpec, Settings};
use crate::transport::{self, TcpConns, Transport};
use crate::udp_steer;
use sr_cfg::{CfgError, Config, ModParamValue, ParseOptions, Span, TopItem};
use sr_sdk::exports::{ModuleDef, ParamKind, ParamValue};
use sr_sdk::{lm_err, lm_info, rank, Core, Proto, RecvInfo};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Loads a module from a shared library (provided by the ABI layer).
pub type ExternalLoader = Arc<dyn Fn(&Path) -> Result<ModuleDef, String> + Send + Sync>;

/// A module compiled into the binary.
pub type InTree = (&'static str, fn() -> ModuleDef);

/// Command-line values that win over the config.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `-n`
    pub children: Option<usize>,
    /// `-l` (replaces the config's `listen`)
    pub listen: Vec<String>,
    /// `-L`
    pub mpath: Vec<String>,
    /// `-E`
    pub log_stderr: bool,
    /// `-d` / `--debug`
    pub debug: Option<i32>,
}

/// How to start.
#[derive(Clone, Default)]
pub struct Options {
    /// Config file.
    pub config: PathBuf,
    /// `-A` defines.
    pub defines: Vec<(String, Option<String>)>,
    /// Modules compiled in.
    pub in_tree: Vec<InTree>,
    /// Loader for shared-library modules.
    pub external: Option<ExternalLoader>,
    /// Command-line overrides.
    pub overrides: Overrides,
    /// The config's text, when it does not come from `config` (the
    /// built-in default); `config` then only names it in messages.
    pub config_text: Option<String>,
}

/// What a reload needs to re-read the config.
#[derive(Clone)]
pub struct ReloadInfo {
    path: PathBuf,
    text: Option<String>,
    popts: ParseOptions,
}

impl ReloadInfo {
    /// The configuration file as given.
    pub fn config_path(&self) -> &Path {
        &self.path
    }
}

fn parse_config(
    path: &Path,
    text: Option<&str>,
    popts: &ParseOptions,
) -> Result<Config, Vec<String>> {
    let r = match text {
        Some(t) => sr_cfg::parse_str(&path.display().to_string(), t, popts),
        None => sr_cfg::parse_file(path, popts),
    };
    r.map_err(|e| e.iter().map(|x| x.to_string()).collect())
}

/// The config after preprocessing (`--cfg-print`).
pub fn preprocess(opts: &Options) -> Result<String, Vec<String>> {
    let popts = parse_opts(opts);
    let r = match &opts.config_text {
        Some(t) => sr_cfg::preprocess_str_to_string(&opts.config.display().to_string(), t, &popts),
        None => sr_cfg::preprocess_to_string(&opts.config, &popts),
    };
    r.map_err(|e| e.iter().map(|x| x.to_string()).collect())
}

/// The version number define: X*1000000 + Y*1000 + Z.
fn version_number() -> i64 {
    let mut it = crate::settings::VERSION
        .split('.')
        .map(|p| p.parse::<i64>().unwrap_or(0));
    let (a, b, c) = (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    );
    a * 1_000_000 + b * 1000 + c
}

/// The defines siprouter sets itself (besides `MOD_<name>`).
pub fn builtin_defines() -> Vec<(String, Option<String>)> {
    let v = crate::settings::VERSION.replace('.', "_");
    let major = v.split('_').next().unwrap_or("0").to_string();
    let minor: String = v.split('_').take(2).collect::<Vec<_>>().join("_");
    vec![
        ("SIPROUTER".into(), None),
        (format!("SIPROUTER_{major}"), None),
        (format!("SIPROUTER_{minor}"), None),
        (
            "SIPROUTER_VERSION".into(),
            Some(version_number().to_string()),
        ),
        ("KAMAILIO".into(), None),
        (
            "OS_NAME".into(),
            Some(format!("\"{}\"", std::env::consts::OS)),
        ),
    ]
}

fn parse_opts(opts: &Options) -> ParseOptions {
    let mut p = ParseOptions::default();
    for (n, v) in builtin_defines()
        .into_iter()
        .chain(opts.defines.iter().cloned())
    {
        p = p.define(&n, v.as_deref());
    }
    p
}

fn cfg_err(cfg: &Config, span: Span, msg: String) -> CfgError {
    CfgError {
        file: cfg.file_path(span.file).to_path_buf(),
        line: span.line,
        col: span.col,
        message: msg,
    }
}

/// Finds a module: in-tree by base name (whatever the path says), else a
/// shared library on the module path.
fn locate(
    name_or_path: &str,
    opts: &Options,
    mpath: &[String],
) -> Result<(ModuleDef, String), String> {
    let base = name_or_path.rsplit('/').next().unwrap_or(name_or_path);
    let base = base.strip_suffix(".so").unwrap_or(base);
    if let Some((_, f)) = opts.in_tree.iter().find(|(n, _)| *n == base) {
        return Ok((f(), "in-tree".to_string()));
    }
    let loader = opts.external.as_ref().ok_or_else(|| {
        format!("module '{base}' not found: it is not part of siprouter, and this build loads no shared-library modules")
    })?;
    let mut candidates: Vec<PathBuf> = Vec::new();
    if name_or_path.contains('/') {
        candidates.push(PathBuf::from(name_or_path));
    } else {
        let file = if name_or_path.ends_with(".so") {
            name_or_path.to_string()
        } else {
            format!("{name_or_path}.so")
        };
        for d in mpath {
            candidates.push(Path::new(d).join(&file));
            candidates.push(Path::new(d).join(base).join(&file));
        }
        candidates.push(PathBuf::from(&file));
    }
    let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
        let known: Vec<&str> = opts.in_tree.iter().map(|(n, _)| *n).collect();
        format!(
            "module '{base}' not found (searched {}); in-tree modules: {}",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )
    })?;
    let def = loader(path)?;
    Ok((def, path.display().to_string()))
}

/// Applies one `modparam` to every loaded module whose name matches the
/// module regex (case-insensitive, anchored, as Kamailio matches it).
fn apply_modparam(
    reg: &Registry,
    module: &str,
    param: &str,
    v: &ModParamValue,
) -> Result<(), String> {
    let re = regex::RegexBuilder::new(&format!("^({module})$"))
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("modparam: bad module name pattern '{module}': {e}"))?;
    let mut matched = false;
    for m in &reg.modules {
        if !re.is_match(&m.def.name) {
            continue;
        }
        matched = true;
        let p = m
            .def
            .params
            .iter()
            .find(|p| p.name == param)
            .ok_or_else(|| {
                let known: Vec<&str> = m.def.params.iter().map(|p| p.name.as_str()).collect();
                format!(
                    "module '{}' has no parameter '{param}' (its parameters: {})",
                    m.def.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            })?;
        let value = match (p.kind, v) {
            (ParamKind::Int | ParamKind::Any, ModParamValue::Int(i)) => ParamValue::Int(*i),
            (ParamKind::Str | ParamKind::Any, ModParamValue::Str(s)) => ParamValue::Str(s.clone()),
            (ParamKind::Int, ModParamValue::Str(s)) => {
                return Err(format!(
                    "parameter '{param}' of module '{}' is an integer, got the string \"{s}\"",
                    m.def.name
                ))
            }
            (ParamKind::Str, ModParamValue::Int(i)) => {
                return Err(format!(
                    "parameter '{param}' of module '{}' is a string, got the integer {i}",
                    m.def.name
                ))
            }
        };
        (p.set)(value).map_err(|e| format!("modparam {}.{param}: {e}", m.def.name))?;
    }
    if matched {
        Ok(())
    } else {
        Err(format!("modparam: no loaded module matches '{module}' (modules must be loaded before their modparam)"))
    }
}

/// Reads and checks the config, loads the modules, applies their
/// parameters and (unless `check_only`) runs `mod_init`; compiles the
/// routes. Every error is returned, formatted `file:line:col: message`
/// where it has a location.
pub fn load(opts: &Options, check_only: bool) -> Result<Arc<Runtime>, Vec<String>> {
    let popts = parse_opts(opts);
    let cfg = parse_config(&opts.config, opts.config_text.as_deref(), &popts)?;
    let mut settings = Settings::from_config(&cfg)
        .map_err(|e| e.iter().map(|x| x.to_string()).collect::<Vec<_>>())?;
    apply_overrides(&mut settings, &opts.overrides).map_err(|e| vec![e])?;
    let rt = Arc::new(Runtime::new(settings));
    let _ = rt.self_ref.set(Arc::downgrade(&rt));
    let _ = rt.defines.set(
        cfg.defines
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    *rt.reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(ReloadInfo {
        path: opts.config.clone(),
        text: opts.config_text.clone(),
        popts,
    });
    sr_sdk::log::set_level(rt.settings.debug);
    let mut errors: Vec<String> = Vec::new();
    {
        let mut reg = rt.registry.write().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = reg.add(crate::core_module::module(&rt), "core") {
            errors.push(e);
        }
        reg.add_stats("core", rt.stats.exports());
        let mpath = rt.settings.mpath.clone();
        let mut failed: Vec<String> = Vec::new();
        for item in &cfg.items {
            match item {
                TopItem::LoadModule(lm) => {
                    let base = lm.module_name();
                    if reg.has_module(base) {
                        continue;
                    }
                    if base == "tls" {
                        // Part of the core (it configures the core's TLS
                        // sockets); its parameters go to the runtime.
                        if let Err(e) = reg.add(
                            crate::tls::module(
                                rt.tls.clone(),
                                rt.self_ref.get().cloned().unwrap_or_default(),
                            ),
                            "core",
                        ) {
                            errors.push(cfg_err(&cfg, lm.path_span, e).to_string());
                        }
                        continue;
                    }
                    match locate(&lm.path, opts, &mpath) {
                        Ok((def, origin)) => {
                            if let Err(e) = reg.add(def, &origin) {
                                errors.push(cfg_err(&cfg, lm.path_span, e).to_string());
                            }
                        }
                        Err(e) => {
                            failed.push(base.to_string());
                            errors.push(cfg_err(&cfg, lm.path_span, e).to_string());
                        }
                    }
                }
                TopItem::ModParam(mp) => {
                    let for_failed = regex::RegexBuilder::new(&format!("^({})$", mp.module))
                        .case_insensitive(true)
                        .build()
                        .is_ok_and(|re| failed.iter().any(|f| re.is_match(f)));
                    if for_failed {
                        // The missing module was reported at its loadmodule.
                        continue;
                    }
                    if let Err(e) = apply_modparam(&reg, &mp.module, &mp.param, &mp.value) {
                        let span = if e.contains("no loaded module") {
                            mp.module_span
                        } else if e.contains("has no parameter") {
                            mp.param_span
                        } else {
                            mp.value_span
                        };
                        errors.push(cfg_err(&cfg, span, e).to_string());
                    }
                }
                _ => {}
            }
        }
        if let Some(l) = rt.settings.listen.iter().find(|l| l.proto == Proto::Tls) {
            if !reg.has_module("tls") {
                errors.push(format!(
                    "{}: listen tls:{}: TLS needs the tls module (loadmodule \"tls.so\") with its certificate and private_key",
                    opts.config.display(),
                    l.addr
                ));
            }
        }
    }
    if !check_only && errors.is_empty() {
        let inits = rt.module_hooks(|d| Some(d.init.clone()));
        for (name, init) in inits {
            if let Some(init) = init {
                if let Err(e) = init(&*rt as &dyn Core) {
                    // The modules started so far clean up after themselves.
                    rt.destroy_modules();
                    return Err(vec![format!("module {name}: mod_init failed: {e}")]);
                }
            }
            *rt.initialized.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
    }
    let routes = {
        let reg = rt.registry.read().unwrap_or_else(|e| e.into_inner());
        let env = CompileEnv {
            registry: &reg,
            core: &*rt,
            shv: &rt.shv,
            cfg: &rt.cfg_vars,
            route_names: &rt.route_names,
            max_while: rt.settings.max_while_loops,
            trace: sr_sdk::bind::<sr_sdk::cfgtrace::CfgTrace>(
                &*rt as &dyn Core,
                sr_sdk::cfgtrace::CFG_TRACE_API,
            ),
        };
        match compile(&cfg, &env) {
            Ok(r) if errors.is_empty() => r,
            Ok(_) => {
                rt.destroy_modules();
                return Err(errors);
            }
            Err(e) => {
                rt.destroy_modules();
                errors.extend(e.iter().map(|x| x.to_string()));
                return Err(errors);
            }
        }
    };
    rt.set_routes(routes);
    let responses = rt.module_hooks(|d| d.response.clone());
    *rt.responses.write().unwrap_or_else(|e| e.into_inner()) =
        responses.into_iter().map(|(_, h)| h).collect();
    let requests = rt.module_hooks(|d| d.request.clone());
    *rt.requests.write().unwrap_or_else(|e| e.into_inner()) =
        requests.into_iter().map(|(_, h)| h).collect();
    let done = rt.module_hooks(|d| d.request_done.clone());
    *rt.request_done.write().unwrap_or_else(|e| e.into_inner()) =
        done.into_iter().map(|(_, h)| h).collect();
    let nonsip = rt.module_hooks(|d| d.nonsip.clone());
    *rt.nonsip.write().unwrap_or_else(|e| e.into_inner()) =
        nonsip.into_iter().map(|(_, h)| h).collect();
    let stun = rt.module_hooks(|d| d.stun_in.clone());
    let _ = rt.stun_in.set(stun.into_iter().map(|(_, h)| h).collect());
    let unparsed = rt.module_hooks(|d| d.unparsed.clone());
    let _ = rt
        .unparsed
        .set(unparsed.into_iter().map(|(_, h)| h).collect());
    let net_in = rt.module_hooks(|d| d.net_data_in.clone());
    let _ = rt
        .net_data_in
        .set(net_in.into_iter().map(|(_, h)| h).collect());
    Ok(rt)
}

fn apply_overrides(s: &mut Settings, o: &Overrides) -> Result<(), String> {
    if let Some(n) = o.children {
        s.children = n.max(1);
    }
    if !o.listen.is_empty() {
        s.listen.clear();
        for l in &o.listen {
            let v = s
                .listen_entries(l, None, None)
                .map_err(|e| format!("-l {l}: {e}"))?;
            s.listen.extend(v);
        }
    }
    s.mpath.extend(o.mpath.iter().cloned());
    if o.log_stderr {
        s.log_stderror = true;
    }
    if let Some(d) = o.debug {
        s.debug = d;
    }
    if s.listen.is_empty() {
        // With enable_tls, this adds tls:0.0.0.0:tls_port_no too.
        let any = format!("0.0.0.0:{}", s.port);
        s.listen = s.listen_entries(&any, None, None)?;
    }
    Ok(())
}

/// The TLS configurations, when the tls module is loaded (`load` refused
/// a TLS socket without it); an error when its files are missing or bad,
/// or a TLS socket has no certificate.
fn tls_configs(rt: &Runtime) -> Result<Option<crate::tls::TlsConfigs>, String> {
    let loaded = rt
        .registry
        .read()
        .map(|r| r.has_module("tls"))
        .unwrap_or(false);
    if !loaded {
        return Ok(None);
    }
    let tls_socket = rt.settings.listen.iter().find(|l| l.proto == Proto::Tls);
    let params = rt
        .tls
        .lock()
        .map_err(|_| "tls parameters lock poisoned")?
        .clone();
    let cfgs = crate::tls::build(&params).map_err(|e| format!("tls: {e}"))?;
    if let (Some(l), None) = (tls_socket, &cfgs.server) {
        return Err(format!(
            "listen tls:{}: the tls module has no certificate and private_key",
            l.addr
        ));
    }
    Ok(Some(cfgs))
}

/// The running threads.
pub struct Server {
    rt: Arc<Runtime>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    /// A handle on each UDP worker's socket, to wake the worker from its
    /// blocking receive at shutdown.
    udp_wake: Vec<std::net::UdpSocket>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Server")
    }
}

fn child_init_all(rt: &Runtime, rank: i32) -> Result<(), String> {
    for (name, f) in rt.module_hooks(|d| d.child_init.clone()) {
        f(rt as &dyn Core, rank)
            .map_err(|e| format!("module {name}: child_init({rank}) failed: {e}"))?;
    }
    Ok(())
}

impl Runtime {
    fn spawn_rank(
        self: &Arc<Self>,
        name: String,
        rank: i32,
        ready: mpsc::Sender<Result<(), String>>,
        body: Box<dyn FnOnce() + Send>,
    ) -> std::io::Result<JoinHandle<()>> {
        let rt = self.clone();
        std::thread::Builder::new().name(name).spawn(move || {
            sr_sdk::rank::set_current(rank);
            let r = child_init_all(&rt, rank);
            let ok = r.is_ok();
            if ok && rank == rank::PROC_SIPINIT {
                rt.run_event("core:worker-one-init");
            }
            let _ = ready.send(r);
            if ok {
                body();
            }
        })
    }
}

/// Opens the sockets and starts the workers, the TCP threads and the
/// timer; runs `child_init` for every rank. Fails (with the module named)
/// when a socket cannot be opened or a `child_init` fails.
pub fn start(rt: &Arc<Runtime>) -> Result<Server, String> {
    crate::script::state::mark_start();
    let stop = Arc::new(AtomicBool::new(false));
    child_init_all(rt, rank::PROC_INIT)?;
    let s = &rt.settings;
    // One queue per TCP worker: a connection's messages always go to the
    // same worker, so they are handled in the order they arrived (an ACK
    // never overtakes the BYE sent after it on the same connection).
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..s.tcp_workers())
        .map(|_| mpsc::channel::<transport::Inbound>())
        .unzip();
    let tls = tls_configs(rt)?;
    // A connection table (and TCP workers) when there is a stream socket,
    // or the tls module for connections to TLS destinations.
    let has_tcp = tls.is_some()
        || s.listen
            .iter()
            .any(|l| matches!(l.proto, Proto::Tcp | Proto::Tls));
    let tcp = has_tcp.then(|| {
        let t = Arc::new(TcpConns::new(
            txs,
            s.max_msg_size,
            s.tcp_max_connections,
            Duration::from_secs(s.tcp_connect_timeout),
            tls,
        ));
        t.set_accept_no_cl(s.tcp_accept_no_cl);
        // event_route[websocket:closed], with the connection as the
        // faked message's source (`$si`, `$sp`, `$conid`), as Kamailio.
        // It runs on a thread of its own, one event after the other: the
        // caller may be a worker in the middle of a script (ws_close), or
        // a connection's reader; none at shutdown. Only when the config
        // (as loaded at start) has the route; events beyond 1024 waiting
        // are dropped with a warning.
        if rt.routes().event("websocket:closed").is_some() {
            let weak = Arc::downgrade(rt);
            let (tx, rx) = mpsc::sync_channel::<sr_sdk::RecvInfo>(1024);
            t.on_ws_closed(Arc::new(move |rcv| {
                if weak.upgrade().is_some_and(|rt| !rt.shutting_down()) && tx.try_send(rcv).is_err()
                {
                    sr_sdk::lm_warn!(
                        "event_route[websocket:closed]: too many waiting; one skipped"
                    );
                }
            }));
            let weak = Arc::downgrade(rt);
            let _ = std::thread::Builder::new()
                .name("ws-closed".into())
                .spawn(move || loop {
                    match rx.recv_timeout(Duration::from_millis(500)) {
                        Ok(rcv) => match weak.upgrade() {
                            Some(rt) if !rt.shutting_down() => {
                                rt.run_event_from("websocket:closed", rcv);
                            }
                            _ => return,
                        },
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if weak.upgrade().is_none_or(|rt| rt.shutting_down()) {
                                return;
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                });
        }
        t
    });
    // UDP: one socket per worker per address.
    let mut udp_workers: Vec<UdpWorker> = Vec::new();
    let mut send_socks = Vec::new();
    let mut bound: Vec<ListenSpec> = Vec::new();
    let mut steer_groups = Vec::new();
    for l in s.listen.iter().filter(|l| l.proto == Proto::Udp) {
        let mut addr = l.addr;
        let load = Arc::new(udp_steer::Load::new(s.children));
        for i in 0..s.children {
            let sock =
                transport::udp_socket(addr).map_err(|e| format!("listen udp:{addr}: {e}"))?;
            if i == 0 {
                addr = sock.local_addr().map_err(|e| e.to_string())?;
                let clone = sock.try_clone().map_err(|e| e.to_string())?;
                send_socks.push((addr, Arc::new(clone)));
                bound.push(ListenSpec { addr, ..l.clone() });
                if s.udp_steer_low_load && s.children > 1 {
                    let clone = sock.try_clone().map_err(|e| e.to_string())?;
                    let gauge = rt.stats.udp_steered.clone();
                    steer_groups.extend(udp_steer::Steering::start(
                        addr,
                        clone,
                        load.clone(),
                        gauge,
                    ));
                }
            }
            udp_workers.push(UdpWorker {
                listen: ListenSpec { addr, ..l.clone() },
                sock,
                load: load.clone(),
                index: i,
            });
        }
    }
    let mut listeners = Vec::new();
    for l in s
        .listen
        .iter()
        .filter(|l| matches!(l.proto, Proto::Tcp | Proto::Tls))
    {
        let lst = transport::tcp_listener(l.addr)
            .map_err(|e| format!("listen {}:{}: {e}", l.proto, l.addr))?;
        let addr = lst.local_addr().map_err(|e| e.to_string())?;
        bound.push(ListenSpec { addr, ..l.clone() });
        listeners.push((lst, l.proto == Proto::Tls));
    }
    for b in &bound {
        rt.add_myself(&b.addr.ip().to_string(), Some(b.addr.port()));
        if b.addr.ip().is_unspecified() {
            rt.add_myself("127.0.0.1", Some(b.addr.port()));
            rt.add_myself("::1", Some(b.addr.port()));
            rt.add_myself("localhost", Some(b.addr.port()));
        }
    }
    let _ = rt.transport.set(Transport {
        udp: send_socks,
        tcp: tcp.clone(),
        net_data_out: rt
            .module_hooks(|d| d.net_data_out.clone())
            .into_iter()
            .map(|(_, h)| h)
            .collect(),
    });
    *rt.bound.lock().unwrap_or_else(|e| e.into_inner()) = bound;
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut handles = Vec::new();
    let mut expected = 0;
    let mut rank_no = 0;
    let mut udp_wake = Vec::new();
    for w in udp_workers {
        // Without this handle the worker could not be woken at stop.
        udp_wake.push(
            w.sock
                .try_clone()
                .map_err(|e| format!("udp {}: cannot duplicate the socket: {e}", w.listen.addr))?,
        );
        rank_no += 1;
        let (rt2, stop2) = (rt.clone(), stop.clone());
        let body: Box<dyn FnOnce() + Send> = Box::new(move || udp_loop(&rt2, w, &stop2));
        handles.push(
            rt.spawn_rank(format!("udp-{rank_no}"), rank_no, ready_tx.clone(), body)
                .map_err(|e| e.to_string())?,
        );
        expected += 1;
    }
    if tcp.is_some() {
        for rx in rxs {
            rank_no += 1;
            let (rt2, stop2) = (rt.clone(), stop.clone());
            let body: Box<dyn FnOnce() + Send> = Box::new(move || tcp_worker(&rt2, &rx, &stop2));
            handles.push(
                rt.spawn_rank(format!("tcp-{rank_no}"), rank_no, ready_tx.clone(), body)
                    .map_err(|e| e.to_string())?,
            );
            expected += 1;
        }
    }
    if let Some(tcp) = &tcp {
        for (lst, tls) in listeners {
            let (t2, stop2) = (tcp.clone(), stop.clone());
            let body: Box<dyn FnOnce() + Send> = Box::new(move || t2.accept_loop(lst, tls, &stop2));
            handles.push(
                rt.spawn_rank(
                    "tcp-main".into(),
                    rank::PROC_TCP_MAIN,
                    ready_tx.clone(),
                    body,
                )
                .map_err(|e| e.to_string())?,
            );
            expected += 1;
        }
    }
    {
        let (rt2, stop2) = (rt.clone(), stop.clone());
        let body: Box<dyn FnOnce() + Send> = Box::new(move || timer_loop(&rt2, &stop2));
        handles.push(
            rt.spawn_rank("timer".into(), rank::PROC_TIMER, ready_tx.clone(), body)
                .map_err(|e| e.to_string())?,
        );
        expected += 1;
    }
    if !steer_groups.is_empty() {
        let f: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            for g in &steer_groups {
                g.check();
            }
        });
        rt.add_timer("udp steering", udp_steer::CHECK_EVERY, f);
    }
    drop(ready_tx);
    let mut first_err = None;
    for _ in 0..expected {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => break,
        }
    }
    let server = Server {
        rt: rt.clone(),
        threads: Mutex::new(handles),
        stop,
        udp_wake,
    };
    *rt.server_stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(server.stop.clone());
    if let Some(e) = first_err {
        server.stop_threads();
        return Err(e);
    }
    child_init_all(rt, rank::PROC_MAIN).inspect_err(|_| server.stop_threads())?;
    lm_info!(
        "siprouter started: {} UDP workers, {} sockets",
        rank_no,
        rt.settings.listen.len()
    );
    Ok(server)
}

/// One UDP worker: receives batches with `recvmmsg` (blocking without a
/// timeout: arming a timer on every sleep cost system time per message)
/// until [`Server`] shuts the socket down for reading at stop. Under load it
/// sleeps up to `udp_batch_wait` between batches instead of blocking after
/// every datagram ([`crate::udp_pace`]).
fn udp_loop(rt: &Runtime, w: UdpWorker, stop: &AtomicBool) {
    use crate::udp_pace::{Next, Pace};
    let UdpWorker {
        listen,
        sock,
        load,
        index,
    } = w;
    let local = listen.addr;
    let mut batch = crate::udp_batch::RecvBatch::new();
    let wait = Duration::from_micros(rt.settings.udp_batch_wait_us);
    let mut pace = Pace::new(wait, crate::udp_batch::RecvBatch::CAPACITY);
    let mut next = Next::Block;
    if let (true, Ok(t)) = (rt.settings.udp_hold_sends, rt.transport()) {
        crate::udp_send_queue::hold_on_this_thread(t.udp.clone());
    }
    loop {
        let blocking = match next {
            Next::Block => true,
            Next::TakeNow => false,
            Next::SleepThenTake(d) => {
                rt.stats.udp_batch_waits.inc();
                std::thread::sleep(d);
                false
            }
        };
        let got = batch.recv(&sock, !blocking);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let n = match got {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                // Any sleep was done: take what queued, without a second one.
                next = Next::TakeNow;
                continue;
            }
            Err(e) => {
                lm_err!("udp {local}: {e}");
                std::thread::sleep(Duration::from_millis(10));
                next = Next::Block;
                continue;
            }
        };
        let started = (n > 0).then(Instant::now);
        if let Some(t) = started {
            rt.stats.udp_recv_batches.inc();
            load.batch_started(index, t);
        }
        for (data, src) in batch.iter() {
            let rcv = RecvInfo {
                src,
                dst: local,
                proto: Proto::Udp,
                conn_id: 0,
            };
            rt.receive_guarded(bytes::Bytes::copy_from_slice(data), rcv);
            // A slow message must not hold earlier messages' sends long.
            if crate::udp_send_queue::held_since()
                .is_some_and(|t| t.elapsed() >= crate::udp_send_queue::MAX_HOLD)
            {
                crate::udp_send_queue::flush();
            }
        }
        crate::udp_send_queue::flush();
        rt.settle_held_sends();
        let now = Instant::now();
        if let Some(t) = started {
            load.batch_done(index, t, now);
        }
        next = pace.after(n, now);
    }
}

/// One UDP worker's socket and what it shares with the others of its
/// address.
struct UdpWorker {
    listen: ListenSpec,
    sock: std::net::UdpSocket,
    /// The address's busy-time counters, for [`udp_steer`].
    load: Arc<udp_steer::Load>,
    /// The worker's number among the address's workers (0: the first
    /// socket opened on it).
    index: usize,
}

fn tcp_worker(rt: &Runtime, rx: &mpsc::Receiver<transport::Inbound>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((data, rcv)) => rt.receive_guarded(data, rcv),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The longest the timer thread sleeps: how late it runs a timer a module
/// adds while it sleeps (a stop unparks it).
const TIMER_MAX_SLEEP: Duration = Duration::from_millis(100);

/// The shortest: a timer with a zero interval, or one whose function takes
/// longer than its interval, runs at most once per this (the old loop's
/// 5 ms sleep gave such a floor too).
const TIMER_MIN_SLEEP: Duration = Duration::from_millis(1);

/// The timer thread: runs the modules' periodic timers when due and closes
/// idle TCP connections once a second. It sleeps until the next of those is
/// due (between [`TIMER_MIN_SLEEP`] and [`TIMER_MAX_SLEEP`]), so a server
/// whose only timers run every few seconds wakes about ten times a second,
/// not every few milliseconds.
fn timer_loop(rt: &Runtime, stop: &AtomicBool) {
    let lifetime = Duration::from_secs(rt.settings.tcp_connection_lifetime.max(1));
    let mut next_idle = Instant::now() + Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_idle {
            if let Some(tcp) = rt.transport.get().and_then(|t| t.tcp.as_ref()) {
                tcp.close_idle(lifetime);
            }
            next_idle = now + Duration::from_secs(1);
        }
        let mut due: Vec<Arc<dyn Fn() + Send + Sync>> = Vec::new();
        let mut wake = next_idle.min(now + TIMER_MAX_SLEEP);
        if let Ok(mut t) = rt.timers.lock() {
            for e in t.iter_mut() {
                if e.next <= now {
                    e.next = now + e.interval;
                    due.push(e.f.clone());
                }
                wake = wake.min(e.next);
            }
        }
        for f in due {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f())).is_err() {
                lm_err!("a timer function panicked");
            }
        }
        let sleep = wake.saturating_duration_since(Instant::now());
        std::thread::park_timeout(sleep.max(TIMER_MIN_SLEEP));
    }
}

impl Server {
    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    fn stop_threads(&self) {
        self.rt.shutdown.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        for s in &self.udp_wake {
            // Wakes a worker blocked in recv_from on this socket: Linux
            // does so even for unconnected UDP sockets, while returning
            // ENOTCONN, which is expected here.
            let _ = socket2::SockRef::from(s).shutdown(std::net::Shutdown::Read);
        }
        if let Some(tcp) = self.rt.transport.get().and_then(|t| t.tcp.as_ref()) {
            tcp.close_all();
        }
        let hs: Vec<_> = self
            .threads
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for h in &hs {
            // The timer thread sleeps parked: wake it to see the stop.
            h.thread().unpark();
        }
        for h in hs {
            let _ = h.join();
        }
        let extra: Vec<_> = self
            .rt
            .extra_threads
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for h in extra {
            let _ = h.join();
        }
    }

    /// Stops every thread, then runs each module's `destroy` in reverse
    /// load order.
    pub fn shutdown(&self) {
        self.stop_threads();
        self.rt.destroy_modules();
    }
}

impl Runtime {
    /// Re-reads the config and swaps in its routes if they compile; on any
    /// error the running routes stay and the errors are returned.
    pub fn reload_routes(&self) -> Result<usize, Vec<String>> {
        let info = self
            .reload
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .ok_or_else(|| vec!["no config file to reload".to_string()])?;
        let cfg = parse_config(&info.path, info.text.as_deref(), &info.popts)?;
        let reg = self
            .registry
            .read()
            .map_err(|_| vec!["registry unavailable".to_string()])?;
        let mut errs = Vec::new();
        for lm in cfg.loadmodules() {
            if !reg.has_module(lm.module_name()) {
                errs.push(
                    cfg_err(
                        &cfg,
                        lm.path_span,
                        format!(
                            "module '{}' is not loaded: adding modules needs a restart",
                            lm.module_name()
                        ),
                    )
                    .to_string(),
                );
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let env = CompileEnv {
            registry: &reg,
            core: self,
            shv: &self.shv,
            cfg: &self.cfg_vars,
            route_names: &self.route_names,
            max_while: self.settings.max_while_loops,
            trace: sr_sdk::bind::<sr_sdk::cfgtrace::CfgTrace>(
                self as &dyn Core,
                sr_sdk::cfgtrace::CFG_TRACE_API,
            ),
        };
        let routes =
            compile(&cfg, &env).map_err(|e| e.iter().map(|x| x.to_string()).collect::<Vec<_>>())?;
        let n = routes.blocks.len();
        drop(reg);
        self.set_routes(routes);
        lm_info!(
            "routing logic reloaded from {}: {n} route blocks",
            info.path.display()
        );
        Ok(n)
    }

    /// Starts a module thread (see [`Core::spawn_process`]).
    pub(crate) fn spawn_module_thread(
        self: &Arc<Self>,
        name: &str,
        rank: i32,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        let h = self
            .spawn_rank(name.to_string(), rank, tx, f)
            .map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())??;
        if let Ok(mut t) = self.extra_threads.lock() {
            t.push(h);
        }
        Ok(())
    }
}
