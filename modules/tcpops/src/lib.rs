//! # tcpops: TCP connection operations
//!
//! Kamailio's `tcpops` module, on the core's TCP/TLS (and WebSocket)
//! connections: whether a connection is alive (`tcp_conid_alive`,
//! `tcp_conid_state`), which one goes to an address (`tcp_get_conid`),
//! keepalive probes (`tcp_keepalive_enable`/`_disable`), a lifetime of
//! its own (`tcp_set_connection_lifetime`), closing it
//! (`tcp_close_connection`), and the event routes of its end —
//! `event_route[tcp:closed]`, `[tcp:timeout]`, `[tcp:reset]` — chosen by
//! `closed_event` (0 none, 1 every connection, 2 those asked for with
//! `tcp_enable_closed_event`). A function without a connection id works
//! on the connection the message came on.
#![forbid(unsafe_code)]

pub mod events;

use sr_sdk::prelude::*;
use sr_sdk::{ConnEnd, Keepalive, RecvInfo, StreamConns};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::AtomicI64;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The module's state.
pub struct Tcpops {
    closed_event: Arc<AtomicI64>,
    events: Mutex<Option<mpsc::SyncSender<(RecvInfo, ConnEnd)>>>,
}

fn conns(ctx: &Ctx<'_>) -> Option<Arc<dyn StreamConns>> {
    ctx.core.stream_conns()
}

/// The connection the message came on (`None`, logged, when it came
/// over UDP).
fn own_conn(ctx: &Ctx<'_>, what: &str) -> Option<u64> {
    let id = ctx.msg.rcv.conn_id;
    if id == 0 || !ctx.msg.rcv.proto.is_reliable() {
        lm_err!("{what}: the current message does not come from a TCP connection");
        return None;
    }
    Some(id)
}

/// A connection id parameter as Kamailio reads it (an integer, or a
/// pseudo-variable holding one).
fn conid(ctx: &mut Ctx<'_>, a: &Fixed, what: &str) -> Option<u64> {
    match a.int_strict(ctx) {
        Some(i) if i > 0 => Some(i as u64),
        Some(i) => {
            lm_err!("{what}: invalid connection id {i}");
            None
        }
        None => {
            lm_err!("{what}: invalid parameter 'conid' (must be a number)");
            None
        }
    }
}

fn number(ctx: &mut Ctx<'_>, a: &Fixed, name: &str, what: &str) -> Option<u32> {
    match a.int_strict(ctx) {
        Some(i) if i >= 0 => Some(i.min(i64::from(u32::MAX)) as u32),
        _ => {
            lm_err!("{what}: invalid parameter '{name}' (must be a number)");
            None
        }
    }
}

fn rc(ok: bool) -> i32 {
    if ok {
        1
    } else {
        -1
    }
}

fn alive(ctx: &mut Ctx<'_>, a: &Fixed) -> i32 {
    let Some(id) = conid(ctx, a, "tcp_conid_alive") else {
        return -1;
    };
    rc(conns(ctx).is_some_and(|c| c.conn(id).is_some()))
}

fn keepalive(ctx: &mut Ctx<'_>, id: Option<u64>, ka: Option<Keepalive>) -> i32 {
    let Some(id) = id else { return -1 };
    let Some(c) = conns(ctx) else { return -1 };
    if c.conn(id).is_none() {
        lm_err!("tcp_keepalive: connection id {id} does not exist");
        return -1;
    }
    match c.set_keepalive(id, ka) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("tcp_keepalive: connection {id}: {e}");
            -1
        }
    }
}

fn keepalive_of(ctx: &mut Ctx<'_>, a: &[Fixed]) -> Option<Keepalive> {
    let w = "tcp_keepalive_enable";
    Some(Keepalive {
        idle: number(ctx, &a[0], "idle", w)?,
        count: number(ctx, &a[1], "cnt", w)?,
        interval: number(ctx, &a[2], "intvl", w)?,
    })
}

fn lifetime(ctx: &mut Ctx<'_>, id: Option<u64>, a: &Fixed) -> i32 {
    let w = "tcp_set_connection_lifetime";
    let (Some(id), Some(secs)) = (id, number(ctx, a, "time", w)) else {
        return -1;
    };
    rc(conns(ctx).is_some_and(|c| {
        c.conn(id).is_some() && c.set_lifetime(id, Duration::from_secs(u64::from(secs)))
    }))
}

fn close(ctx: &mut Ctx<'_>, id: Option<u64>) -> i32 {
    let Some(id) = id else { return -1 };
    let Some(c) = conns(ctx) else { return -1 };
    if c.conn(id).is_none() {
        return -1;
    }
    c.close(id);
    1
}

impl Tcpops {
    fn enable_event(&self, ctx: &mut Ctx<'_>, id: Option<u64>) -> i32 {
        if params::get_int(&self.closed_event) != 2 {
            lm_err!("tcp_enable_closed_event() can only be used if the \"closed_event\" modparam is set to 2");
            return -1;
        }
        let Some(id) = id else { return -1 };
        rc(conns(ctx).is_some_and(|c| c.want_end_event(id)))
    }

    /// Reports connection ends to the event thread, in the main
    /// process's `child_init` (the connection table exists then).
    fn child_init(self: &Arc<Self>, core: &dyn Core, rank: i32) -> Result<(), String> {
        if rank != sr_sdk::rank::PROC_MAIN || params::get_int(&self.closed_event) == 0 {
            return Ok(());
        }
        let Some(c) = core.stream_conns() else {
            return Ok(());
        };
        let weak = core
            .handle()
            .ok_or("tcpops: no core handle for its events")?;
        let tx = events::start(core, weak)?;
        *self.events.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        let me = self.clone();
        c.on_end(Arc::new(move |rcv, end, asked| {
            if !events::wanted(params::get_int(&me.closed_event), asked) {
                return;
            }
            let tx = me.events.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(tx) = tx {
                if tx.try_send((rcv, end)).is_err() {
                    lm_warn!("tcpops: too many connection events waiting; one skipped");
                }
            }
        }));
        Ok(())
    }
}

/// `tcp_get_conid(hostport, pv)`: the connection to `host:port` into
/// `pv`; -1 when there is none (`pv` unchanged).
fn get_conid(ctx: &mut Ctx<'_>, a: &[Fixed]) -> i32 {
    let hostport = a[0].str(ctx).trim().to_string();
    let addr: Option<SocketAddr> = hostport
        .parse()
        .ok()
        .or_else(|| hostport.to_socket_addrs().ok().and_then(|mut it| it.next()));
    let Some(addr) = addr else {
        lm_err!("tcp_get_conid: failed to resolve [{hostport}]");
        return -1;
    };
    let Some(id) = conns(ctx).and_then(|c| c.conn_to(addr)) else {
        return -1;
    };
    match &a[1] {
        Fixed::Pv(pv) => match pv.assign(ctx, Value::Int(id as i64)) {
            Ok(()) => 1,
            Err(e) => {
                lm_err!("tcp_get_conid: failed to set the output var: {e}");
                -1
            }
        },
        _ => -1,
    }
}

/// The `tcpops` module.
pub fn module() -> ModuleDef {
    let t = Arc::new(Tcpops {
        closed_event: Arc::new(AtomicI64::new(1)),
        events: Mutex::new(None),
    });
    let any = RouteType::ANY;
    let igp = || Some(fixup::f(fixup::igp));
    let ce = t.closed_event.clone();
    let mut def = ModuleDef::new("tcpops").param("closed_event", ParamKind::Int, move |v| {
        params::int(&ce)(v)?;
        let m = params::get_int(&ce);
        if (0..=2).contains(&m) {
            Ok(())
        } else {
            Err(format!("invalid \"closed_event\" value: {m}, must be 0 (disabled), 1 (enabled) or 2 (manual)"))
        }
    });
    def = def
        .cmd("tcp_conid_alive", 1, any, igp(), |ctx, a| alive(ctx, &a[0]))
        .cmd("tcp_conid_state", 1, any, igp(), |ctx, a| alive(ctx, &a[0]))
        .cmd("tcp_keepalive_enable", 3, any, igp(), |ctx, a| {
            let id = own_conn(ctx, "tcp_keepalive_enable");
            let ka = keepalive_of(ctx, a);
            if ka.is_none() {
                return -1;
            }
            keepalive(ctx, id, ka)
        })
        .cmd("tcp_keepalive_enable", 4, any, igp(), |ctx, a| {
            let id = conid(ctx, &a[0], "tcp_keepalive_enable");
            let ka = keepalive_of(ctx, &a[1..]);
            if ka.is_none() {
                return -1;
            }
            keepalive(ctx, id, ka)
        })
        .cmd("tcp_keepalive_disable", 0, any, None, |ctx, _| {
            let id = own_conn(ctx, "tcp_keepalive_disable");
            keepalive(ctx, id, None)
        })
        .cmd("tcp_keepalive_disable", 1, any, igp(), |ctx, a| {
            let id = conid(ctx, &a[0], "tcp_keepalive_disable");
            keepalive(ctx, id, None)
        })
        .cmd("tcp_set_connection_lifetime", 1, any, igp(), |ctx, a| {
            let id = own_conn(ctx, "tcp_set_connection_lifetime");
            lifetime(ctx, id, &a[0])
        })
        .cmd("tcp_set_connection_lifetime", 2, any, igp(), |ctx, a| {
            let id = conid(ctx, &a[0], "tcp_set_connection_lifetime");
            lifetime(ctx, id, &a[1])
        })
        // The connection requests go over when the flag says so (the
        // next hop's address then only names the protocol).
        .cmd("tcp_set_otcpid", 1, any, igp(), |ctx, a| {
            let id = a[0].int(ctx);
            ctx.msg.fwd_flags.otcpid = u64::try_from(id).unwrap_or(0);
            1
        })
        .cmd("tcp_set_otcpid_flag", 1, any, igp(), |ctx, a| {
            ctx.msg.fwd_flags.use_otcpid = a[0].int(ctx) != 0;
            1
        })
        .cmd("tcp_close_connection", 0, any, None, |ctx, _| {
            let id = own_conn(ctx, "tcp_close_connection");
            close(ctx, id)
        })
        .cmd("tcp_close_connection", 1, any, igp(), |ctx, a| {
            let id = conid(ctx, &a[0], "tcp_close_connection");
            close(ctx, id)
        })
        .cmd(
            "tcp_get_conid",
            2,
            any,
            Some(Arc::new(|env, i, arg| {
                if i == 0 {
                    fixup::spve(env, i, arg)
                } else {
                    fixup::pvar(env, i, arg)
                }
            })),
            get_conid,
        );
    let (t1, t2) = (t.clone(), t.clone());
    def = def
        .cmd("tcp_enable_closed_event", 0, any, None, move |ctx, _| {
            let id = own_conn(ctx, "tcp_enable_closed_event");
            t1.enable_event(ctx, id)
        })
        .cmd("tcp_enable_closed_event", 1, any, igp(), move |ctx, a| {
            let id = conid(ctx, &a[0], "tcp_enable_closed_event");
            t2.enable_event(ctx, id)
        });
    def.on_child_init(move |core, rank| t.child_init(core, rank))
}
