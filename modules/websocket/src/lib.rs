//! # websocket: SIP over WebSocket (RFC 7118)
//!
//! Kamailio's `websocket` module. A WebSocket client opens a TCP (or TLS)
//! connection to a SIP socket and sends an HTTP GET; the xhttp module runs
//! `event_route[xhttp:request]`, where `ws_handle_handshake()` checks the
//! request (RFC 6455 4.2.1: `Upgrade: websocket`, `Connection: Upgrade`,
//! a 16-byte `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`, and the
//! `sip` sub-protocol) and answers `101 Switching Protocols`. From then on
//! every WebSocket message on the connection is one SIP message received
//! over `ws` (`wss` on TLS): `$proto` says so, the Via siprouter adds to
//! what it sends there reads `SIP/2.0/WS`, and `nat_uac_test("64")` is
//! true. Messages to the client go back on its connection as text frames
//! (siprouter never opens a WebSocket connection itself).
//!
//! - `ws_handle_handshake()`: upgrades the connection; on a faulty request
//!   it sends the HTTP error (400, 405, 426 with `Sec-WebSocket-Version:
//!   13`, 503 while disabled) and returns 0, which ends the route.
//! - `ws_close([status, reason[, connection_id]])`: sends a Close frame
//!   (1000 "Normal closure" by default) and closes the connection (the
//!   current message's, or the one given).
//! - Parameters: `keepalive_mechanism` (0 none, 1 Ping, 2 Pong; default
//!   1), `keepalive_timeout` (seconds of idleness before a keepalive;
//!   180), `keepalive_interval` (seconds between checks; 1),
//!   `keepalive_processes` (accepted; one timer does the work),
//!   `ping_application_data` (the keepalive's payload), `sub_protocols`
//!   (1 sip, 2 msrp, 3 both; only sip is negotiated), `cors_mode` (0 none,
//!   1 `*`, 2 the client's Origin with credentials), `verbose_list`
//!   (accepted).
//! - RPC: `ws.dump`, `ws.close <id>`, `ws.ping <id>`, `ws.pong <id>`,
//!   `ws.disable`, `ws.enable`.
//! - Statistics (group `websocket`): `ws_current_connections`,
//!   `ws_max_concurrent_connections`, `ws_received_frames`,
//!   `ws_transmitted_frames`, `ws_successful_handshakes`,
//!   `ws_failed_handshakes`, `ws_local_closed_connections`, and the
//!   `ws_sip_*` versions of the connection and frame counts (all
//!   connections carry SIP).
//!
//! The framing (masking, fragments, control frames, Close) is the core's
//! (`sr_core::ws_codec`): the connection table is the core's.
#![forbid(unsafe_code)]

pub mod handshake;
mod rpc;

use handshake::{Cors, SUB_SIP};
use sr_sdk::prelude::*;
use sr_sdk::{StreamConns, WsCounts};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Ws {
    mechanism: Arc<AtomicI64>,
    timeout: Arc<AtomicI64>,
    interval: Arc<AtomicI64>,
    processes: Arc<AtomicI64>,
    ping_data: Arc<RwLock<String>>,
    sub_protocols: Arc<AtomicI64>,
    cors: Arc<AtomicI64>,
    verbose: Arc<AtomicI64>,
    pub(crate) disabled: AtomicBool,
    core: OnceLock<Weak<dyn Core>>,
    ok: Stat,
    failed: Stat,
    local_closed: Stat,
    max_conns: AtomicI64,
    /// Connections pinged and not heard from since: when the Ping went.
    awaiting_pong: std::sync::Mutex<std::collections::HashMap<u64, std::time::Instant>>,
}

impl Ws {
    pub(crate) fn conns(&self) -> Option<Arc<dyn StreamConns>> {
        self.core.get()?.upgrade()?.stream_conns()
    }

    fn cors(&self) -> Cors {
        match self.cors.load(Ordering::Relaxed) {
            1 => Cors::Any,
            2 => Cors::Echo,
            _ => Cors::None,
        }
    }

    fn open_now(&self) -> i64 {
        self.conns().map_or(0, |c| c.ws_conns().len() as i64)
    }

    /// One keepalive round: a Ping (or Pong) to each connection idle for
    /// `keepalive_timeout`; with Pings, a connection from which nothing
    /// came within `keepalive_timeout` of its Ping is closed, as Kamailio
    /// closes one still awaiting its Pong.
    fn keepalive(&self) {
        let pong = match self.mechanism.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => return,
        };
        let Some(c) = self.conns() else {
            return;
        };
        let limit = Duration::from_secs(self.timeout.load(Ordering::Relaxed).max(1) as u64);
        let data = self.ping_data.read().map(|d| d.clone()).unwrap_or_default();
        let Ok(mut waiting) = self.awaiting_pong.lock() else {
            return;
        };
        let conns = c.ws_conns();
        // (ws_conns is sorted by id.)
        waiting.retain(|id, _| conns.binary_search_by_key(id, |w| w.id).is_ok());
        for w in conns {
            if let Some(sent) = waiting.get(&w.id).copied() {
                if w.silent < sent.elapsed() {
                    // Heard from since the Ping.
                    waiting.remove(&w.id);
                } else if sent.elapsed() >= limit {
                    lm_warn!("websocket: {} did not answer its Ping; closing", w.peer);
                    waiting.remove(&w.id);
                    c.close(w.id);
                    self.local_closed.inc();
                    continue;
                } else {
                    continue;
                }
            }
            if w.idle >= limit {
                match c.ws_ping(w.id, pong, data.as_bytes()) {
                    Ok(()) if !pong => {
                        waiting.insert(w.id, std::time::Instant::now());
                    }
                    Ok(()) => {}
                    Err(e) => lm_dbg!("websocket: keepalive to {}: {e}", w.peer),
                }
            }
        }
    }

    /// `ws_handle_handshake()`.
    fn handshake(&self, ctx: &mut Ctx<'_>) -> i32 {
        let a = if self.disabled.load(Ordering::Relaxed) {
            handshake::refuse(503, "Service Unavailable")
        } else if !matches!(ctx.msg.rcv.proto, Proto::Tcp | Proto::Tls) {
            lm_err!("ws_handle_handshake: not an HTTP request on a TCP or TLS connection");
            return 0;
        } else {
            handshake::answer(
                ctx.msg.msg(),
                self.sub_protocols.load(Ordering::Relaxed),
                self.cors(),
            )
        };
        let headers: Vec<(&str, &str)> = a.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let data = sr_sdk::http::reply(a.code, a.reason, &headers, "", b"", ctx.core.version());
        if a.code != 101 {
            self.failed.inc();
            lm_info!(
                "websocket: handshake from {} refused: {} {}",
                ctx.msg.rcv.src,
                a.code,
                a.reason
            );
            let _ = sr_sdk::http::send(ctx, &data);
            return 0;
        }
        let Some(c) = ctx.core.stream_conns() else {
            return 0;
        };
        // (Counted first: the client may act on the 101 before the write
        // returns.)
        self.ok.inc();
        match c.upgrade_ws(ctx.msg.rcv.conn_id, &data) {
            Ok(()) => {
                self.max_conns
                    .fetch_max(c.ws_conns().len() as i64, Ordering::Relaxed);
                1
            }
            Err(e) => {
                self.ok.dec();
                self.failed.inc();
                lm_err!("ws_handle_handshake: {e}");
                0
            }
        }
    }

    /// Runs [`Ws::keepalive`] every `keepalive_interval` until shutdown.
    fn keepalive_loop(&self, core: Weak<dyn Core>) {
        let every = Duration::from_secs(self.interval.load(Ordering::Relaxed).max(1) as u64);
        let mut next = std::time::Instant::now() + every;
        loop {
            match core.upgrade() {
                Some(c) if !c.shutting_down() => {}
                _ => return,
            }
            let now = std::time::Instant::now();
            if now >= next {
                self.keepalive();
                next = now + every;
            }
            std::thread::sleep(Duration::from_millis(100).min(every));
        }
    }

    /// Closes connection `id` with a Close frame.
    pub(crate) fn close(
        &self,
        c: &dyn StreamConns,
        id: u64,
        status: u16,
        reason: &str,
    ) -> Result<(), String> {
        c.ws_close(id, status, reason).map_err(|e| e.0)?;
        self.local_closed.inc();
        Ok(())
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let w = Arc::new(Ws::default());
    w.mechanism.store(1, Ordering::Relaxed);
    w.timeout.store(180, Ordering::Relaxed);
    w.interval.store(1, Ordering::Relaxed);
    w.processes.store(1, Ordering::Relaxed);
    w.sub_protocols.store(SUB_SIP, Ordering::Relaxed);
    if let Ok(mut d) = w.ping_data.write() {
        *d = "siprouter WebSocket keepalive".to_string();
    }
    let mut m = ModuleDef::new("websocket")
        // $ws_conid: the connection event_route[websocket:closed] runs for
        // ($null elsewhere).
        .pv("ws_conid", |ctx, _| {
            let r = ctx.msg.rcv;
            if ctx.route == RouteType::EVENT
                && matches!(r.proto, Proto::Ws | Proto::Wss)
                && r.conn_id != 0
            {
                Value::Int(r.conn_id as i64)
            } else {
                Value::Null
            }
        })
        .param(
            "keepalive_mechanism",
            ParamKind::Int,
            params::int(&w.mechanism),
        )
        .param("keepalive_timeout", ParamKind::Int, params::int(&w.timeout))
        .param(
            "keepalive_interval",
            ParamKind::Int,
            params::int(&w.interval),
        )
        .param(
            "keepalive_processes",
            ParamKind::Int,
            params::int(&w.processes),
        )
        .param(
            "ping_application_data",
            ParamKind::Str,
            params::string(&w.ping_data),
        )
        .param(
            "sub_protocols",
            ParamKind::Int,
            params::int(&w.sub_protocols),
        )
        .param("cors_mode", ParamKind::Int, params::int(&w.cors))
        .param("verbose_list", ParamKind::Int, params::int(&w.verbose));
    let wi = w.clone();
    m = m.on_init(move |core| {
        let sub = wi.sub_protocols.load(Ordering::Relaxed);
        if !(1..=3).contains(&sub) {
            return Err(format!(
                "websocket: sub_protocols {sub}: 1 (sip), 2 (msrp) or 3"
            ));
        }
        if sub & SUB_SIP == 0 {
            lm_warn!("websocket: sub_protocols without sip: every handshake will be refused");
        }
        if let Some(h) = core.handle() {
            let _ = wi.core.set(h);
        }
        Ok(())
    });
    let wk = w.clone();
    m = m.on_child_init(move |core, rank| {
        if rank != sr_sdk::rank::PROC_MAIN {
            return Ok(());
        }
        // A thread of its own, not the shared timer's: a ping to a client
        // that stopped reading may wait on its connection (tm's timers
        // must not).
        let Some(h) = core.handle() else {
            return Ok(());
        };
        let w = wk.clone();
        core.spawn_process(
            "ws-keepalive",
            sr_sdk::rank::PROC_NOCHLDINIT,
            Box::new(move || w.keepalive_loop(h)),
        )
    });
    let wh = w.clone();
    m = m.cmd(
        "ws_handle_handshake",
        0,
        RouteType::EVENT,
        None,
        move |ctx, _| wh.handshake(ctx),
    );
    for n in [0, 2, 3] {
        let wc = w.clone();
        let fix = (n > 0).then(|| fixup::f(fixup::spve));
        m = m.cmd("ws_close", n, RouteType::ANY, fix, move |ctx, a| {
            let status = a.first().map_or(1000, |s| s.int(ctx));
            let reason = a
                .get(1)
                .map_or("Normal closure".into(), |r| r.str(ctx).into_owned());
            let id = match a.get(2) {
                Some(i) => i.int(ctx) as u64,
                None => ctx.msg.rcv.conn_id,
            };
            let Ok(status) = u16::try_from(status) else {
                lm_err!("ws_close: bad status {status}");
                return -1;
            };
            let Some(c) = ctx.core.stream_conns() else {
                return -1;
            };
            match wc.close(c.as_ref(), id, status, &reason) {
                Ok(()) => 1,
                Err(e) => {
                    lm_err!("ws_close: {e}");
                    -1
                }
            }
        });
    }
    m = rpc::add(m, &w);
    let count = |w: &Arc<Ws>, f: fn(&WsCounts) -> u64| {
        let w = w.clone();
        move || w.conns().map_or(0, |c| f(&c.ws_counts()) as i64)
    };
    let current = |w: &Arc<Ws>| {
        let w = w.clone();
        move || w.open_now()
    };
    let max = |w: &Arc<Ws>| {
        let w = w.clone();
        move || w.max_conns.load(Ordering::Relaxed).max(w.open_now())
    };
    let local = |w: &Arc<Ws>| {
        let w = w.clone();
        move || w.local_closed.get()
    };
    // Every connection carries SIP: the ws_sip_* statistics are the same
    // counts under Kamailio's other names.
    for prefix in ["ws", "ws_sip"] {
        m = m
            .stat_fn(&format!("{prefix}_current_connections"), current(&w))
            .stat_fn(&format!("{prefix}_max_concurrent_connections"), max(&w))
            .stat_fn(
                &format!("{prefix}_received_frames"),
                count(&w, |c| c.received),
            )
            .stat_fn(
                &format!("{prefix}_transmitted_frames"),
                count(&w, |c| c.sent),
            )
            .stat_fn(
                &format!("{prefix}_remote_closed_connections"),
                count(&w, |c| c.remote_closed),
            )
            .stat_fn(
                &format!("{prefix}_failed_connections"),
                count(&w, |c| c.failed),
            )
            .stat_fn(&format!("{prefix}_local_closed_connections"), local(&w));
    }
    m.stat("ws_successful_handshakes", w.ok.clone())
        .stat("ws_failed_handshakes", w.failed.clone())
}
