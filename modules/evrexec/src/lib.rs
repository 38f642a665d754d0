//! Module `evrexec` (Kamailio's): event routes run outside SIP traffic.
//!
//! - param `exec` (repeatable): `name=evrexec:NAME[;wait=µs][;workers=N]`
//!   runs `event_route[evrexec:NAME]` once at start on each of N threads
//!   of its own (after `wait` microseconds); with `sockaddr=udp:IP:PORT`
//!   one thread binds that UDP socket and runs the route for each
//!   datagram, `$evr(data)` the datagram and `$evr(srcip)`,
//!   `$evr(srcport)`, `$evr(srcportno)` its source;
//! - RPC `evrexec.run name [data]` runs an event route in the RPC's
//!   thread, `$evr(data)` the data (empty without).
//!
//! The route runs on a faked request, as Kamailio's does. Unlike
//! Kamailio, an `exec` socket that cannot be bound stops the start with
//! the reason (Kamailio logs it and its process idles).
#![forbid(unsafe_code)]

pub mod task;

use sr_sdk::prelude::*;
use sr_sdk::route::rank;
use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};
use task::Task;

/// What `$evr(...)` reads while a route runs.
#[derive(Debug, Clone, Default)]
struct Info {
    /// The datagram or the RPC's data.
    data: String,
    /// The datagram's source.
    src: Option<SocketAddr>,
}

thread_local! {
    static INFO: RefCell<Option<Info>> = const { RefCell::new(None) };
}

/// Puts back what `$evr` read before a route.
struct Restore(Option<Info>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        INFO.with(|i| *i.borrow_mut() = prev);
    }
}

/// Runs event route `name` on a faked request with `info` for `$evr`:
/// false when there is no such route.
fn run(core: &dyn Core, name: &str, info: Option<Info>) -> bool {
    let Some(id) = core.route_id(RouteType::EVENT, name) else {
        return false;
    };
    let mut msg = SipMsg::faked();
    // The values before are put back after the route, also when it
    // panics or runs another evrexec route inside (`evrexec.run`).
    let _restore = Restore(INFO.with(|i| i.replace(info)));
    core.run_route(id, RouteType::EVENT, &mut msg);
    true
}

/// `$evr(name)`.
fn evr(name: &str) -> Value<'static> {
    INFO.with(|i| {
        let i = i.borrow();
        let Some(info) = i.as_ref() else {
            return Value::Null;
        };
        match name {
            "data" => Value::Str(info.data.clone().into()),
            "srcip" => info
                .src
                .map_or(Value::Null, |a| Value::Str(a.ip().to_string().into())),
            "srcport" => info
                .src
                .map_or(Value::Null, |a| Value::Str(a.port().to_string().into())),
            "srcportno" => Value::Int(info.src.map_or(0, |a| i64::from(a.port()))),
            _ => Value::Null,
        }
    })
}

/// Sleeps `us` microseconds in short steps; false when the server stops
/// meanwhile.
fn wait(h: &Weak<dyn Core>, us: u64) -> bool {
    let until = Instant::now() + Duration::from_micros(us);
    loop {
        if h.upgrade().is_none_or(|c| c.shutting_down()) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}

/// Receives datagrams on `sock` and runs the task's route for each, until
/// the server stops.
fn serve(h: &Weak<dyn Core>, t: &Task, sock: &UdpSocket) {
    let mut buf = vec![0u8; 65535];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if n == buf.len() {
                    lm_warn!("evrexec: datagram too large for buffer - truncated");
                }
                let Some(core) = h.upgrade() else { return };
                let info = Info {
                    data: String::from_utf8_lossy(&buf[..n]).into_owned(),
                    src: Some(from),
                };
                run(&*core, &t.name, Some(info));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                lm_err!(
                    "evrexec: failed to receive on socket - address: {} ({e})",
                    t.sockaddr.as_deref().unwrap_or("")
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if h.upgrade().is_none_or(|c| c.shutting_down()) {
            return;
        }
    }
}

/// Starts the tasks' threads (from `child_init(PROC_MAIN)`).
fn start(core: &dyn Core, tasks: &[Task]) -> Result<(), String> {
    if tasks.is_empty() {
        return Ok(());
    }
    let h = core
        .handle()
        .ok_or("evrexec: no core handle for its threads")?;
    for t in tasks {
        if let Some(spec) = &t.sockaddr {
            let addr = task::socket_addr(spec)?;
            let sock = UdpSocket::bind(addr)
                .map_err(|e| format!("evrexec: failed to bind socket - address: {spec} ({e})"))?;
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .map_err(|e| format!("evrexec: socket {spec}: {e}"))?;
            let (h, t) = (h.clone(), t.clone());
            core.spawn_process(
                &format!("evrexec-{}-socket", t.name),
                rank::PROC_RPC,
                Box::new(move || serve(&h, &t, &sock)),
            )?;
            continue;
        }
        for i in 0..t.workers {
            let (h, t) = (h.clone(), t.clone());
            core.spawn_process(
                &format!("evrexec-{}-{i}", t.name),
                rank::PROC_RPC,
                Box::new(move || {
                    if !wait(&h, t.wait_us) {
                        return;
                    }
                    if let Some(core) = h.upgrade() {
                        run(&*core, &t.name, None);
                    }
                }),
            )?;
        }
    }
    Ok(())
}

/// The module definition.
pub fn module() -> ModuleDef {
    let tasks: Arc<Mutex<Vec<Task>>> = Arc::default();
    let handle: Arc<OnceLock<Weak<dyn Core>>> = Arc::default();
    let (t_param, t_child) = (tasks.clone(), tasks);
    let (h_init, h_rpc) = (handle.clone(), handle);
    ModuleDef::new("evrexec")
        .param("exec", ParamKind::Str, move |v| {
            let text = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(n) => n.to_string(),
            };
            let t = task::parse(&text)?;
            // (Kamailio prepends: the last `exec` is started first.)
            t_param
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(0, t);
            Ok(())
        })
        .on_init(move |core| {
            if let Some(h) = core.handle() {
                let _ = h_init.set(h);
            }
            Ok(())
        })
        .on_child_init(move |core, r| {
            let tasks = t_child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            match r {
                // (The routes are compiled after mod_init.)
                rank::PROC_INIT => {
                    for t in &tasks {
                        if core.route_id(RouteType::EVENT, &t.name).is_none() {
                            return Err(format!("evrexec: event route not found: {}", t.name));
                        }
                    }
                    Ok(())
                }
                rank::PROC_MAIN => start(core, &tasks),
                _ => Ok(()),
            }
        })
        .pv_checked(
            "evr",
            |n| match n.inner.as_deref() {
                Some("data" | "srcip" | "srcport" | "srcportno") => Ok(()),
                other => Err(format!("unknown PV evr key: {}", other.unwrap_or_default())),
            },
            |_, n| evr(n.inner.as_deref().unwrap_or_default()),
        )
        .rpc("evrexec.run", "Execute event_route block", move |p| {
            let name = p
                .first()
                .and_then(|v| v.as_str())
                .ok_or_else(|| RpcError::new(500, "Invalid parameters"))?;
            let data = match p.get(1) {
                None => String::new(),
                Some(v) => v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            };
            let core = h_rpc
                .get()
                .and_then(Weak::upgrade)
                .ok_or_else(|| RpcError::new(500, "Server is stopping"))?;
            let info = Info { data, src: None };
            if run(&*core, name, Some(info)) {
                Ok(Json::Null)
            } else {
                Err(RpcError::new(500, "Event route not found"))
            }
        })
}
