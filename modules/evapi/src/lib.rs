//! # evapi: an event socket for outside applications
//!
//! Kamailio's `evapi` module. Applications connect over TCP to
//! `bind_addr`; the script sends them events (`evapi_relay` to all,
//! `evapi_multicast` to those with a tag, `evapi_unicast` to the first
//! with it; the `async` variants suspend the transaction first, with tm's
//! `t_suspend`, so that an answer can continue it), and what they send
//! runs `event_route[evapi:message-received]` (with
//! `evapi:connection-new` and `evapi:connection-closed` around). Messages
//! are netstrings unless `netstring_format` is 0.
#![forbid(unsafe_code)]

pub mod frame;

use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicI64;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// Events waiting for a slow client before more are dropped for it.
const QUEUE: usize = 1024;

/// A connected application.
struct Client {
    /// To its writer thread (so that no SIP worker waits for a client).
    out: SyncSender<Arc<Vec<u8>>>,
    /// For closing it.
    stream: TcpStream,
    addr: SocketAddr,
    tag: Option<String>,
    /// Closed by `evapi_close` (no connection-closed event then).
    closed_here: bool,
    /// Gone, its connection-closed event running: sends skip it.
    closing: bool,
}

/// The event an event route runs for (what `$evapi(...)` reads).
#[derive(Debug, Clone)]
struct Current {
    conidx: usize,
    addr: SocketAddr,
    msg: Option<String>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// The module's state.
struct Evapi {
    bind_addr: Arc<RwLock<String>>,
    netstring: Arc<AtomicI64>,
    workers: Arc<AtomicI64>,
    max_clients: Arc<AtomicI64>,
    /// Slot `i` is connection index `i`.
    clients: Mutex<Vec<Option<Client>>>,
    tm: OnceLock<Arc<TmApi>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Evapi {
    fn framed(&self, data: &str) -> Vec<u8> {
        if params::get_int(&self.netstring) != 0 {
            frame::netstring(data.as_bytes())
        } else {
            data.as_bytes().to_vec()
        }
    }

    /// Queues `data` for every client `pick` accepts (`first`: only the
    /// first of them). 1, also when nobody got it (as Kamailio, whose
    /// dispatcher sends later).
    fn send(&self, data: &str, pick: impl Fn(&Client) -> bool, first: bool) -> i32 {
        let bytes = Arc::new(self.framed(data));
        let clients = lock(&self.clients);
        let mut sent = 0;
        for c in clients.iter().flatten() {
            if c.closing || !pick(c) {
                continue;
            }
            match c.out.try_send(bytes.clone()) {
                Ok(()) => sent += 1,
                Err(TrySendError::Full(_)) => {
                    lm_warn!("evapi: {} does not read its events: one dropped", c.addr);
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
            if first {
                break;
            }
        }
        if sent == 0 {
            lm_dbg!("evapi: no client took the event");
        }
        1
    }

    fn relay(&self, data: &str) -> i32 {
        self.send(data, |_| true, false)
    }

    /// To the clients tagged `tag` (every client for an empty tag, as
    /// Kamailio).
    fn multicast(&self, data: &str, tag: &str, first: bool) -> i32 {
        self.send(
            data,
            |c| tag.is_empty() || c.tag.as_deref() == Some(tag),
            first,
        )
    }

    /// Runs `event_route[name]` for client `conidx` with message `msg`
    /// (`None` outside message-received). A panic in the route is caught
    /// (the connection's threads go on).
    fn event(
        &self,
        core: &dyn Core,
        name: &str,
        conidx: usize,
        addr: SocketAddr,
        msg: Option<&str>,
    ) {
        let Some(id) = core.route_id(RouteType::EVENT, name) else {
            return;
        };
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                CURRENT.with(|c| *c.borrow_mut() = None);
            }
        }
        CURRENT.with(|c| {
            *c.borrow_mut() = Some(Current {
                conidx,
                addr,
                msg: msg.map(str::to_string),
            })
        });
        let _reset = Reset;
        let run = std::panic::AssertUnwindSafe(|| {
            let mut m = SipMsg::faked();
            core.run_route(id, RouteType::EVENT, &mut m);
        });
        if std::panic::catch_unwind(run).is_err() {
            lm_err!("evapi: event_route[{name}] failed (panic) for {addr}");
        }
    }

    /// `evapi_close()`: closes the client of the event being handled.
    fn close_current(&self) -> i32 {
        let Some(cur) = CURRENT.with(|c| c.borrow().clone()) else {
            return -1;
        };
        let mut clients = lock(&self.clients);
        match clients.get_mut(cur.conidx).and_then(Option::as_mut) {
            Some(c) => {
                c.closed_here = true;
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                1
            }
            None => -1,
        }
    }

    /// `evapi_set_tag(name)`: tags the client of the event being handled.
    fn set_tag(&self, tag: &str) -> i32 {
        if tag.len() >= 64 {
            lm_err!("evapi: tag size too big: {} / 64", tag.len());
            return -1;
        }
        let Some(cur) = CURRENT.with(|c| c.borrow().clone()) else {
            lm_err!("evapi: evapi env not set");
            return -1;
        };
        match lock(&self.clients)
            .get_mut(cur.conidx)
            .and_then(Option::as_mut)
        {
            Some(c) => {
                c.tag = Some(tag.to_string());
                1
            }
            None => -1,
        }
    }

    /// A new connection: the first free index, or refused when all
    /// `max_clients` are taken.
    fn accept(self: &Arc<Self>, core: &Arc<dyn Core>, stream: TcpStream, addr: SocketAddr) {
        let (Ok(mut writer), Ok(closer)) = (stream.try_clone(), stream.try_clone()) else {
            return;
        };
        // As Kamailio: keepalive probes find a peer gone without a word.
        let _ = socket2::SockRef::from(&stream).set_keepalive(true);
        let (out, queue) = sync_channel::<Arc<Vec<u8>>>(QUEUE);
        let max = params::get_int(&self.max_clients).max(1) as usize;
        let idx = {
            let mut clients = lock(&self.clients);
            let free = clients.iter().position(Option::is_none);
            let idx = match free {
                Some(i) => i,
                None if clients.len() < max => {
                    clients.push(None);
                    clients.len() - 1
                }
                None => {
                    lm_err!("evapi: too many clients ({max}): refusing {addr}");
                    return;
                }
            };
            clients[idx] = Some(Client {
                out,
                stream: closer,
                addr,
                tag: None,
                closed_here: false,
                closing: false,
            });
            idx
        };
        // The writer: what the script queued, in order; on a write error
        // the connection goes (the reader then sees it end).
        let wrote = std::thread::Builder::new()
            .name(format!("evapi-w{idx}"))
            .spawn(move || {
                for data in queue {
                    if writer.write_all(&data).is_err() {
                        let _ = writer.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
            });
        if let Err(e) = wrote {
            lm_err!("evapi: no thread for {addr}: {e}");
            lock(&self.clients)[idx] = None;
            return;
        }
        self.event(&**core, "evapi:connection-new", idx, addr, None);
        let me = self.clone();
        let core = core.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("evapi-{idx}"))
            .spawn(move || me.read_loop(&*core, stream, idx, addr));
        if let Err(e) = spawned {
            lm_err!("evapi: no thread for {addr}: {e}");
            lock(&self.clients)[idx] = None;
        }
    }

    /// Reads client `idx` until it goes: each message runs
    /// `evapi:message-received`, the end `evapi:connection-closed` (not
    /// after `evapi_close`).
    fn read_loop(&self, core: &dyn Core, mut stream: TcpStream, idx: usize, addr: SocketAddr) {
        let netstring = params::get_int(&self.netstring) != 0;
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 32767];
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let (msgs, invalid) = if netstring {
                buf.extend_from_slice(&chunk[..n]);
                let p = frame::take_netstrings(&mut buf);
                (p.messages, p.invalid)
            } else {
                (vec![chunk[..n].to_vec()], false)
            };
            for m in msgs {
                let text = String::from_utf8_lossy(&m);
                self.event(core, "evapi:message-received", idx, addr, Some(&text));
            }
            if invalid {
                lm_err!("evapi: cannot read the client message from {addr}: closing");
                let _ = stream.shutdown(std::net::Shutdown::Both);
                break;
            }
        }
        // The route runs with the client still in its slot (closing:
        // sends skip it), so that a new client cannot take its index
        // meanwhile; then the slot is freed (its writer ends with it).
        let run = {
            let mut clients = lock(&self.clients);
            match clients.get_mut(idx).and_then(Option::as_mut) {
                Some(c) => {
                    c.closing = true;
                    !c.closed_here
                }
                None => false,
            }
        };
        if run {
            self.event(core, "evapi:connection-closed", idx, addr, None);
        }
        if let Some(c) = lock(&self.clients).get_mut(idx).and_then(Option::take) {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn start(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        let spec = params::get_str(&self.bind_addr);
        let addr = spec.strip_prefix("tcp:").unwrap_or(&spec);
        let listener =
            TcpListener::bind(addr).map_err(|e| format!("evapi: cannot listen on {addr}: {e}"))?;
        let handle = core.handle().ok_or("evapi: no core handle")?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("evapi-accept".into())
            .spawn(move || {
                for s in listener.incoming() {
                    let s = match s {
                        Ok(s) => s,
                        Err(e) => {
                            // (Descriptors exhausted, say: no busy loop.)
                            lm_err!("evapi: accept failed: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                    };
                    let Some(core) = handle.upgrade() else { break };
                    let Ok(addr) = s.peer_addr() else { continue };
                    me.accept(&core, s, addr);
                }
            })
            .map_err(|e| format!("evapi: cannot start: {e}"))?;
        Ok(())
    }

    /// The async variants: the transaction suspended first (so that the
    /// data may name it), then `send`.
    fn suspended(&self, ctx: &mut Ctx<'_>, send: impl FnOnce(&mut Ctx<'_>) -> i32) -> i32 {
        let Some(tm) = self.tm.get() else {
            lm_err!("evapi: the async functions need the tm module (load tm before evapi)");
            return -1;
        };
        if tm.t_suspend(ctx) < 0 {
            lm_err!("evapi: failed to suspend the request processing");
            return -1;
        }
        send(ctx);
        1
    }
}

fn pv_get(n: &sr_sdk::PvName) -> Value<'static> {
    let Some(cur) = CURRENT.with(|c| c.borrow().clone()) else {
        return Value::Null;
    };
    match n.inner.as_deref() {
        Some("srcaddr") => Value::Str(cur.addr.ip().to_string().into()),
        Some("srcport") => Value::Int(i64::from(cur.addr.port())),
        Some("msg") => cur.msg.map_or(Value::Null, |m| Value::Str(m.into())),
        Some("conidx") => Value::Int(cur.conidx as i64),
        _ => Value::Null,
    }
}

/// The `evapi` module.
pub fn module() -> ModuleDef {
    let m = Arc::new(Evapi {
        bind_addr: params::str_cell("127.0.0.1:8448"),
        netstring: params::int_cell(1),
        workers: params::int_cell(1),
        max_clients: params::int_cell(8),
        clients: Mutex::new(Vec::new()),
        tm: OnceLock::new(),
    });
    let spve = Some(fixup::f(fixup::spve));
    let init = m.clone();
    let mut def = ModuleDef::new("evapi")
        .param("bind_addr", ParamKind::Str, params::string(&m.bind_addr))
        .param(
            "netstring_format",
            ParamKind::Int,
            params::int(&m.netstring),
        )
        .param("workers", ParamKind::Int, params::int(&m.workers))
        .param("max_clients", ParamKind::Int, params::int(&m.max_clients))
        .on_init(move |core| {
            if let Some(tm) = bind::<TmApi>(core, TM_API) {
                let _ = init.tm.set(tm);
            }
            init.start(core)
        })
        .pv_checked(
            "evapi",
            |n| match n.inner.as_deref() {
                Some("srcaddr" | "srcport" | "msg" | "conidx") => Ok(()),
                other => Err(format!("unknown PV evapi name {}", other.unwrap_or(""))),
            },
            |_, n| pv_get(n),
        );
    let (a, b, c) = (m.clone(), m.clone(), m.clone());
    def = def
        .cmd(
            "evapi_relay",
            1,
            RouteType::ANY,
            spve.clone(),
            move |ctx, p| {
                let d = p[0].str(ctx).into_owned();
                a.relay(&d)
            },
        )
        .cmd(
            "evapi_multicast",
            2,
            RouteType::ANY,
            spve.clone(),
            move |ctx, p| {
                let (d, t) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
                b.multicast(&d, &t, false)
            },
        )
        .cmd(
            "evapi_unicast",
            2,
            RouteType::ANY,
            spve.clone(),
            move |ctx, p| {
                let (d, t) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
                c.multicast(&d, &t, true)
            },
        );
    let (a, b, c) = (m.clone(), m.clone(), m.clone());
    def = def
        .cmd(
            "evapi_async_relay",
            1,
            RouteType::REQUEST,
            spve.clone(),
            move |ctx, p| {
                a.suspended(ctx, |ctx| {
                    let d = p[0].str(ctx).into_owned();
                    a.relay(&d)
                })
            },
        )
        .cmd(
            "evapi_async_multicast",
            2,
            RouteType::REQUEST,
            spve.clone(),
            move |ctx, p| {
                b.suspended(ctx, |ctx| {
                    let (d, t) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
                    b.multicast(&d, &t, false)
                })
            },
        )
        .cmd(
            "evapi_async_unicast",
            2,
            RouteType::REQUEST,
            spve.clone(),
            move |ctx, p| {
                c.suspended(ctx, |ctx| {
                    let (d, t) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
                    c.multicast(&d, &t, true)
                })
            },
        );
    let (a, b) = (m.clone(), m);
    def.cmd("evapi_close", 0, RouteType::ANY, None, move |_, _| {
        a.close_current()
    })
    .cmd("evapi_set_tag", 1, RouteType::ANY, spve, move |ctx, p| {
        let t = p[0].str(ctx).into_owned();
        b.set_tag(&t)
    })
}
