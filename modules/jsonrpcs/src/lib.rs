//! # jsonrpcs (and ctl): the management endpoint
//!
//! JSON-RPC 2.0 compatible with Kamailio's `jsonrpcs`: every RPC method
//! any module exports (`system.listMethods`, `core.uptime`,
//! `stats.get_statistics`, ...) is reachable, dispatched through
//! [`Core::rpc_call`]. Batches and notifications are supported; bad JSON,
//! unknown methods and bad parameters come back as JSON-RPC error objects.
//!
//! Transports:
//! - a UNIX stream socket (parameter `socket`, default
//!   `/run/siprouter/siprouter_rpc.sock`): one JSON document per line in,
//!   one per line out, what `siprouter ctl` speaks;
//! - HTTP (parameter `http_listen`, e.g. `"127.0.0.1:5080"`, off by
//!   default): `POST` any path with a JSON-RPC body; `GET /metrics` gives
//!   every statistic in Prometheus text format as
//!   `siprouter_<group>_<name>`.
//!
//! - HTTP through the xhttp module, as Kamailio's stock configuration
//!   does it: `jsonrpc_dispatch()` in `event_route[xhttp:request]`
//!   answers the JSON-RPC document in the request's body;
//! - the script itself: `jsonrpc_exec(cmd)` runs a document and
//!   `$jsonrpl(code|text|body)` gives its answer.
//!
//! Kamailio's FIFO and datagram transports are not built: their
//! parameters are accepted; asking for them through `transport` is a
//! `mod_init` error, unless HTTP (1) is asked for too (the stock
//! configuration's 7), which gives a warning. The same module is also available under the name
//! `ctl` (Kamailio's binrpc module name; see [`ctl_module`]), so that
//! `loadmodule "ctl.so"` gives an RPC endpoint too: it speaks JSON-RPC,
//! not binrpc.
//!
//! The sockets are bound in `mod_init` (so a busy socket fails the start),
//! served by threads started from `child_init(PROC_MAIN)` with rank
//! `PROC_RPC`, which stop when the server shuts down; `destroy` removes
//! the socket file.
#![forbid(unsafe_code)]

pub mod accept;
pub mod binrpc;
pub mod dispatch;
pub mod exec;
pub mod fifo;
pub mod http;
pub mod metrics;
pub mod net;
pub mod unix;

use sr_sdk::prelude::*;
use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The default UNIX socket (what `siprouter ctl` connects to).
pub const DEFAULT_SOCKET: &str = "/run/siprouter/siprouter_rpc.sock";

/// The FIFO's default path (Kamailio's, where `kamctl` writes).
pub const DEFAULT_FIFO: &str = "/run/kamailio/kamailio_rpc.fifo";

/// The `ctl` module's default socket: Kamailio's, which `kamcmd` connects
/// to when given no `-s`.
pub const CTL_DEFAULT_SOCKET: &str = "/run/kamailio/kamailio_ctl";

/// Limits shared by the transports.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent connections per transport.
    pub max_conns: usize,
    /// Largest request document, in bytes.
    pub max_request: usize,
    /// Pretty-print HTTP responses (`pretty_format`).
    pub pretty: bool,
}

#[derive(Debug, Default)]
struct Settings {
    /// `None`: the default path; `Some("")`: no UNIX socket.
    socket: Option<String>,
    http_listen: Option<String>,
    transport: Option<i64>,
    fifo: Option<String>,
    fifo_reply_dir: Option<String>,
    fifo_mode: Option<u32>,
    /// `ctl`'s `binrpc` network sockets (TCP when `true`).
    net: Vec<(bool, SocketAddr)>,
    dgram: Option<String>,
    pretty: bool,
    mode: Option<u32>,
}

#[derive(Default)]
struct State {
    name: &'static str,
    cfg: Mutex<Settings>,
    unix: Mutex<Option<UnixListener>>,
    http: Mutex<Option<TcpListener>>,
    /// The FIFO made at start: its path and the reply folder.
    fifo: Mutex<Option<(PathBuf, PathBuf)>>,
    /// BINRPC network sockets bound at start.
    tcp: Mutex<Vec<TcpListener>>,
    udp: Mutex<Vec<std::net::UdpSocket>>,
    bound: Mutex<Option<PathBuf>>,
}

/// Socket paths served in this process (two modules on one path is a
/// configuration error).
fn claims() -> &'static Mutex<HashSet<PathBuf>> {
    static C: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn text(v: ParamValue) -> String {
    match v {
        ParamValue::Str(s) => s,
        ParamValue::Int(i) => i.to_string(),
    }
}

fn int(v: &ParamValue) -> Result<i64, String> {
    match v {
        ParamValue::Int(i) => Ok(*i),
        ParamValue::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an integer")),
    }
}

/// Binds the UNIX socket: a stale file is removed, a live server is an
/// error.
fn bind_unix(path: &Path, mode: Option<u32>) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{}: another server is answering on this socket",
                path.display()
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let l = UnixListener::bind(path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    if let Some(m) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m))
            .map_err(|e| format!("{}: cannot set mode {m:o}: {e}", path.display()))?;
    }
    Ok(l)
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let t = t.strip_prefix("tcp:").unwrap_or(t);
    let t = t.strip_prefix("http://").unwrap_or(t);
    t.parse()
        .map_err(|_| format!("http_listen '{s}': expected ip:port, e.g. 127.0.0.1:5080"))
}

impl State {
    fn init(&self) -> Result<(), String> {
        let cfg = lock(&self.cfg);
        // The FIFO (jsonrpcs only; ctl's FIFO speaks another protocol):
        // served when named, or when `transport` asks for it (0 is all).
        let fifo_wanted = self.name == "jsonrpcs"
            && (cfg.fifo.is_some() || cfg.transport.is_some_and(|t| t == 0 || t & 2 != 0));
        if fifo_wanted {
            let path = PathBuf::from(cfg.fifo.as_deref().unwrap_or(DEFAULT_FIFO));
            let reply = PathBuf::from(cfg.fifo_reply_dir.as_deref().unwrap_or("/tmp/"));
            if lock(claims()).insert(path.clone()) {
                match fifo::create(&path, cfg.fifo_mode.unwrap_or(0o660)) {
                    Ok(()) => *lock(&self.fifo) = Some((path, reply)),
                    Err(e) if cfg.fifo.is_some() => return Err(e),
                    // Kamailio's default place may not be writable here.
                    Err(e) => {
                        lock(claims()).remove(&path);
                        lm_warn!("{}: {e}: the FIFO transport is not served", self.name);
                    }
                }
            }
        }
        for &(tcp, addr) in &cfg.net {
            if tcp {
                let l = TcpListener::bind(addr).map_err(|e| format!("binrpc tcp:{addr}: {e}"))?;
                lock(&self.tcp).push(l);
            } else {
                let u = std::net::UdpSocket::bind(addr)
                    .map_err(|e| format!("binrpc udp:{addr}: {e}"))?;
                lock(&self.udp).push(u);
            }
        }
        if let Some(t) = cfg.transport.filter(|&t| t != 0) {
            let missing: Vec<&str> = [(4, "datagram"), (8, "TCP")]
                .iter()
                .filter(|(bit, _)| t & bit != 0)
                .map(|(_, n)| *n)
                .collect();
            if !missing.is_empty() && t & 3 == 0 {
                return Err(format!(
                    "transport {t} asks for {}: not built into siprouter; use the UNIX stream socket (socket), the FIFO (transport 2) and HTTP (transport 1: jsonrpc_dispatch from xhttp, or http_listen)",
                    missing.join(" and ")
                ));
            }
            if !missing.is_empty() {
                // (The stock configuration's 7: HTTP is there.)
                lm_warn!(
                    "{}: transport {t}: {} not built; HTTP (jsonrpc_dispatch) and the UNIX socket serve",
                    self.name,
                    missing.join(" and ")
                );
            }
        }
        if let Some(d) = &cfg.dgram {
            lm_notice!("{}: datagram socket '{d}' ignored: not built", self.name);
        }
        let default_path = if self.name == "ctl" {
            CTL_DEFAULT_SOCKET
        } else {
            DEFAULT_SOCKET
        };
        let path = match cfg.socket.as_deref() {
            None => Some(PathBuf::from(default_path)),
            Some("") => None,
            Some(p) => Some(PathBuf::from(p)),
        };
        let default = cfg.socket.is_none();
        if let Some(path) = path {
            if default && lock(claims()).contains(&path) {
                // Kamailio's stock configuration loads both jsonrpcs and
                // ctl; here they speak the same JSON-RPC, so the second
                // on the default socket has nothing to add.
                lm_notice!(
                    "{}: {} is served by the other RPC module already (jsonrpcs and ctl speak the same JSON-RPC)",
                    self.name,
                    path.display()
                );
                return self.bind_http(&cfg);
            }
            if !lock(claims()).insert(path.clone()) {
                return Err(format!(
                    "{} is already served by another RPC module (jsonrpcs and ctl): give them different sockets or load one",
                    path.display()
                ));
            }
            match bind_unix(&path, cfg.mode) {
                Ok(l) => {
                    *lock(&self.unix) = Some(l);
                    *lock(&self.bound) = Some(path);
                }
                Err(e) => {
                    lock(claims()).remove(&path);
                    return Err(e);
                }
            }
        }
        self.bind_http(&cfg)
    }

    /// Binds `http_listen`, if set.
    fn bind_http(&self, cfg: &Settings) -> Result<(), String> {
        if let Some(h) = &cfg.http_listen {
            let addr = parse_listen(h)?;
            let l = TcpListener::bind(addr).map_err(|e| format!("http_listen {addr}: {e}"))?;
            *lock(&self.http) = Some(l);
        }
        Ok(())
    }

    fn child_init(&self, core: &dyn Core, r: i32) -> Result<(), String> {
        if r != rank::PROC_MAIN {
            return Ok(());
        }
        let handle = core
            .handle()
            .ok_or("the core gives no handle for the RPC threads")?;
        let limits = Arc::new(Limits {
            max_conns: 32,
            max_request: 16 * 1024 * 1024,
            pretty: lock(&self.cfg).pretty,
        });
        if let Some(l) = lock(&self.unix).take() {
            let (h, lim) = (handle.clone(), limits.clone());
            core.spawn_process(
                &format!("{}-unix", self.name),
                rank::PROC_RPC,
                Box::new(move || unix::serve(l, h, lim)),
            )?;
        }
        for (i, l) in lock(&self.tcp).drain(..).enumerate() {
            let (h, lim) = (handle.clone(), limits.clone());
            core.spawn_process(
                &format!("{}-tcp{i}", self.name),
                rank::PROC_RPC,
                Box::new(move || net::serve_tcp(l, h, lim)),
            )?;
        }
        for (i, u) in lock(&self.udp).drain(..).enumerate() {
            let (h, lim) = (handle.clone(), limits.clone());
            core.spawn_process(
                &format!("{}-udp{i}", self.name),
                rank::PROC_RPC,
                Box::new(move || net::serve_udp(u, h, lim)),
            )?;
        }
        if let Some((path, reply)) = lock(&self.fifo).clone() {
            let (h, lim) = (handle.clone(), limits.clone());
            core.spawn_process(
                &format!("{}-fifo", self.name),
                rank::PROC_RPC,
                Box::new(move || fifo::serve(path, reply, h, lim)),
            )?;
        }
        if let Some(l) = lock(&self.http).take() {
            core.spawn_process(
                &format!("{}-http", self.name),
                rank::PROC_RPC,
                Box::new(move || http::serve(l, handle, limits)),
            )?;
        }
        Ok(())
    }

    fn destroy(&self) {
        lock(&self.unix).take();
        lock(&self.http).take();
        if let Some(p) = lock(&self.bound).take() {
            let _ = std::fs::remove_file(&p);
            lock(claims()).remove(&p);
        }
        if let Some((p, _)) = lock(&self.fifo).take() {
            let _ = std::fs::remove_file(&p);
            lock(claims()).remove(&p);
        }
    }
}

fn base(name: &'static str) -> (ModuleDef, Arc<State>) {
    let st = Arc::new(State {
        name,
        ..Default::default()
    });
    let (s1, s2, s3) = (st.clone(), st.clone(), st.clone());
    let def = ModuleDef::new(name)
        .on_init(move |_| s1.init())
        .on_child_init(move |core, r| s2.child_init(core, r))
        .on_destroy(move || s3.destroy());
    (def, st)
}

/// `jsonrpc_dispatch()`: answers the JSON-RPC document in the body of the
/// HTTP request being handled (in `event_route[xhttp:request]`), on its
/// connection: 200 with the response, 204 when it held only
/// notifications (as on `http_listen`). -1 when the message is not an
/// HTTP request.
fn dispatch_http(ctx: &mut Ctx<'_>, pretty: bool) -> i32 {
    if !ctx.msg.msg().is_http() {
        lm_err!("jsonrpc_dispatch: not an HTTP request");
        return -1;
    }
    let body = String::from_utf8_lossy(ctx.msg.body()).into_owned();
    let (code, reason, text) = dispatch::http_answer(ctx.core, &body, pretty);
    let data = sr_sdk::http::reply(
        code,
        reason,
        &[],
        "application/json",
        text.as_bytes(),
        ctx.core.version(),
    );
    match sr_sdk::http::send(ctx, &data) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("jsonrpc_dispatch: {e}");
            -1
        }
    }
}

/// The `jsonrpcs` module.
pub fn module() -> ModuleDef {
    let (def, st) = base("jsonrpcs");
    let (a, b, c, d, e, f, g) = (
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
    );
    let h = st;
    def.param("socket", ParamKind::Str, move |v| {
        lock(&a.cfg).socket = Some(text(v));
        Ok(())
    })
    .param("http_listen", ParamKind::Str, move |v| {
        let s = text(v);
        parse_listen(&s)?;
        lock(&b.cfg).http_listen = Some(s);
        Ok(())
    })
    .cmd(
        "jsonrpc_dispatch",
        0,
        RouteType::REQUEST | RouteType::EVENT,
        None,
        move |ctx, _| dispatch_http(ctx, lock(&g.cfg).pretty),
    )
    .param("transport", ParamKind::Int, move |v| {
        lock(&c.cfg).transport = Some(int(&v)?);
        Ok(())
    })
    .param("fifo_name", ParamKind::Str, move |v| {
        lock(&d.cfg).fifo = Some(text(v));
        Ok(())
    })
    .param("fifo_reply_dir", ParamKind::Str, {
        let st = e.clone();
        move |v| {
            lock(&st.cfg).fifo_reply_dir = Some(text(v));
            Ok(())
        }
    })
    .param("fifo_mode", ParamKind::Int, {
        let st = e.clone();
        move |v| {
            let m = int(&v)?;
            lock(&st.cfg).fifo_mode =
                Some(u32::try_from(m).map_err(|_| format!("fifo_mode {m} out of range"))?);
            Ok(())
        }
    })
    .param("fifo_user", ParamKind::Any, |_| Ok(()))
    .param("fifo_group", ParamKind::Any, |_| Ok(()))
    .param("dgram_socket", ParamKind::Str, move |v| {
        lock(&e.cfg).dgram = Some(text(v));
        Ok(())
    })
    .param("pretty_format", ParamKind::Int, move |v| {
        lock(&f.cfg).pretty = int(&v)? != 0;
        Ok(())
    })
    .param("fifo_mode", ParamKind::Int, |_| Ok(()))
    .param("fifo_group", ParamKind::Any, |_| Ok(()))
    .param("fifo_user", ParamKind::Any, |_| Ok(()))
    .param("fifo_reply_dir", ParamKind::Str, |_| Ok(()))
    .param("dgram_mode", ParamKind::Int, |_| Ok(()))
    .param("dgram_group", ParamKind::Any, |_| Ok(()))
    .param("dgram_user", ParamKind::Any, |_| Ok(()))
    .cmd(
        "jsonrpc_exec",
        1,
        RouteType::ANY,
        Some(fixup::f(fixup::spve)),
        move |ctx, p| {
            let cmd = p[0].str(ctx).into_owned();
            let pretty = lock(&h.cfg).pretty;
            exec::exec(ctx, &cmd, pretty)
        },
    )
    .pv("jsonrpl", exec::pv)
}

/// The `ctl` module: the same endpoint under Kamailio's binrpc module
/// name. `binrpc` takes `unix:/path` (or `unixs:/path`, or a bare path),
/// `tcp:host:port` or `udp:host:port` (BINRPC only); `fifo` is not built
/// (a `mod_init` error).
pub fn ctl_module() -> ModuleDef {
    let (def, st) = base("ctl");
    let (a, b, c) = (st.clone(), st.clone(), st);
    def.param("binrpc", ParamKind::Str, move |v| {
        let s = text(v);
        if let Some(net) = net::parse(&s) {
            let mut cfg = lock(&a.cfg);
            cfg.net.push(net?);
            // As Kamailio: sockets named replace the default one.
            if cfg.socket.is_none() {
                cfg.socket = Some(String::new());
            }
            return Ok(());
        }
        let path = s
            .strip_prefix("unixs:")
            .or_else(|| s.strip_prefix("unix:"))
            .unwrap_or(&s);
        if s.contains("://") || s.starts_with("unixd:") {
            return Err(format!(
                "binrpc '{s}': give unix:/path, tcp:host:port or udp:host:port"
            ));
        }
        lock(&a.cfg).socket = Some(path.to_string());
        Ok(())
    })
    .param("fifo", ParamKind::Str, move |v| {
        let s = text(v);
        if !s.is_empty() {
            return Err(format!("fifo '{s}': the FIFO transport is not built"));
        }
        lock(&b.cfg).fifo = None;
        Ok(())
    })
    .param("mode", ParamKind::Int, move |v| {
        let m = int(&v)?;
        let m = u32::try_from(m).map_err(|_| format!("mode {m} out of range"))?;
        lock(&c.cfg).mode = Some(m);
        Ok(())
    })
    .param("user", ParamKind::Any, |_| Ok(()))
    .param("group", ParamKind::Any, |_| Ok(()))
    .param("binrpc_max_body_size", ParamKind::Int, |_| Ok(()))
    .param("binrpc_struct_max_body_size", ParamKind::Int, |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert!(parse_listen("127.0.0.1:5080").is_ok());
        assert!(parse_listen("tcp:127.0.0.1:5080").is_ok());
        assert!(parse_listen("nohost").is_err());
    }

    #[test]
    fn transports_not_built_are_refused_and_the_fifo_is_made() {
        let st = State::default();
        lock(&st.cfg).transport = Some(4);
        lock(&st.cfg).socket = Some(String::new());
        assert!(st.init().unwrap_err().contains("datagram"));
        // The stock configuration's 7: HTTP and FIFO with datagram (not
        // built, a warning).
        lock(&st.cfg).transport = Some(7);
        assert!(st.init().is_ok());
        let st = State {
            name: "jsonrpcs",
            ..Default::default()
        };
        let dir = std::env::temp_dir().join(format!("sr-fifo-unit-{}", std::process::id()));
        let path = dir.join("rpc.fifo");
        lock(&st.cfg).socket = Some(String::new());
        lock(&st.cfg).fifo = Some(path.display().to_string());
        assert!(st.init().is_ok());
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&path).unwrap().file_type().is_fifo());
        st.destroy();
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
