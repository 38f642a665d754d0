//! The glue between the pings, the states and the event routes: starting
//! the probing timers, taking the replies to pings, and applying a new
//! state (from a ping's result or `ds_mark_dst`) with the thresholds,
//! running `event_route[dispatcher:dst-down]` / `[dispatcher:dst-up]`
//! when a destination turns.

use crate::dest::{Dest, DISABLED};
use crate::ping::{Mode, Outcome};
use crate::state::{self, Thresholds, Turn};
use crate::{text, Dispatcher};
use sr_mod_tm::api::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `$dsv(...)` reads in the event routes.
#[derive(Debug, Clone)]
pub struct Dsv {
    /// `$dsv(code)`.
    pub code: u16,
    /// `$dsv(reason)`.
    pub reason: Option<String>,
    /// `$dsv(flags)`: 1 when a real reply was received.
    pub flags: i64,
}

/// Serialises state changes (they read and write two fields).
static STATE_LOCK: Mutex<()> = Mutex::new(());

/// The probing mode.
pub fn mode(ds: &Dispatcher) -> Mode {
    Mode::from_int(ds.p.probing_mode.load(Ordering::Relaxed))
}

fn thresholds(ds: &Dispatcher) -> Thresholds {
    let t = |a: &std::sync::atomic::AtomicI64| a.load(Ordering::Relaxed).max(1) as u32;
    Thresholds {
        probing: t(&ds.p.probing_threshold),
        inactive: t(&ds.p.inactive_threshold),
    }
}

/// Applies the state `new` gives for `d`'s flags now (`None`: leave it),
/// with the thresholds, in one step under the state lock; when `d` turns
/// down or up, runs the event route on `msg` with `$dsv` set to `dsv`
/// (after the lock is released).
pub fn apply(
    ds: &Dispatcher,
    core: &dyn Core,
    d: &Dest,
    new: impl FnOnce(u32) -> Option<u32>,
    dsv: Dsv,
    msg: &mut SipMsg,
) -> Turn {
    let turn = {
        let _g = STATE_LOCK.lock();
        let Some(new) = new(d.flags()) else {
            return Turn::Same;
        };
        let (flags, count, turn) = state::update(
            d.flags(),
            d.count.load(Ordering::Relaxed),
            new,
            thresholds(ds),
        );
        d.flags.store(flags, Ordering::Relaxed);
        d.count.store(count, Ordering::Relaxed);
        turn
    };
    // Looked up now: the routes are compiled after mod_init (and a
    // reload may add or remove them).
    let route = match turn {
        Turn::Down => core.route_id(RouteType::EVENT, "dispatcher:dst-down"),
        Turn::Up => core.route_id(RouteType::EVENT, "dispatcher:dst-up"),
        Turn::Same => None,
    };
    match turn {
        Turn::Down => lm_info!("dispatcher: {} (set {}) is down now", d.uri, d.setid),
        Turn::Up => lm_info!("dispatcher: {} (set {}) is up now", d.uri, d.setid),
        Turn::Same => {}
    }
    if let Some(id) = route {
        msg.ext.insert(dsv);
        core.run_route(id, RouteType::EVENT, msg);
        msg.ext.remove::<Dsv>();
    }
    turn
}

/// Sets `d`'s state bits to `new` directly (`dispatcher.set_state`: no
/// thresholds, no event routes), under the state lock.
pub fn set_direct(d: &Dest, new: u32) {
    let _g = STATE_LOCK.lock();
    d.flags
        .store((d.flags() & !crate::dest::STATES) | new, Ordering::Relaxed);
    d.count.store(0, Ordering::Relaxed);
}

/// A ping's result.
fn outcome(ds: &Dispatcher, core: &dyn Core, o: Outcome) {
    let lists = ds.lists();
    let Some(d) = lists
        .set(o.setid)
        .and_then(|s| s.dests.iter().find(|d| d.uri == o.uri))
    else {
        return; // reloaded meanwhile
    };
    let ok = ds.replies.get().is_some_and(|r| r.ok(o.code));
    let m = mode(ds);
    let dsv = Dsv {
        code: o.code,
        reason: Some(o.reason.clone()),
        flags: i64::from(o.replied),
    };
    let mut msg = match SipMsg::parse(
        bytes::Bytes::from(o.request),
        sr_sdk::RecvInfo::loopback(),
        0,
    ) {
        Ok(m) => m,
        Err(_) => SipMsg::faked(),
    };
    // A disabled destination is never changed by a ping.
    let new = |flags: u32| {
        if flags & DISABLED != 0 {
            None
        } else {
            m.result_state(ok, flags)
        }
    };
    apply(ds, core, d, new, dsv, &mut msg);
}

/// Where `d`'s ping goes: its `obproxy`, else `outbound_proxy`, else
/// itself (its address resolved when the list was loaded, no lookup on
/// the timer thread).
fn ping_target(core: &dyn Core, d: &Dest, proxy: &str) -> Result<sr_sdk::Dest, String> {
    let via = [d.attrs.obproxy.as_str(), proxy]
        .into_iter()
        .find(|p| !p.is_empty());
    if let (None, Some(a)) = (via, d.addr) {
        let sips = d
            .uri
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
        let proto = a
            .proto
            .unwrap_or(if sips { Proto::Tls } else { Proto::Udp });
        let port = a
            .port
            .unwrap_or(if proto == Proto::Tls { 5061 } else { 5060 });
        return Ok(sr_sdk::Dest::new(proto, (a.ip, port).into()));
    }
    let target = via.map_or_else(|| d.uri.clone(), crate::dest::with_scheme);
    core.resolve(&target, None).map_err(|e| e.to_string())
}

/// One probing round.
fn round(ds: &Dispatcher, core: &dyn Core) {
    if !ds.ping_active.load(Ordering::Relaxed) {
        return;
    }
    let Some(tm) = ds.tm.get() else {
        return;
    };
    let timers = tm.uac_timers();
    let m = mode(ds);
    let method = text(&ds.p.ping_method);
    let (default_from, proxy) = (text(&ds.p.ping_from), text(&ds.p.outbound_proxy));
    let default_socket = &ds.names().default_socket;
    let lists = ds.lists();
    for d in lists.sets.iter().flat_map(|s| s.dests.iter()) {
        if !m.wants(d.flags()) {
            continue;
        }
        let from = if d.attrs.ping_from.is_empty() {
            default_from.as_str()
        } else {
            d.attrs.ping_from.as_str()
        };
        let mut to = match ping_target(core, d, &proxy) {
            Ok(t) => t,
            Err(e) => {
                lm_warn!("dispatcher: keepalive to {}: {e}", d.uri);
                let (_, data) = ds
                    .pinger
                    .request(d, &method, from, Proto::Udp, "127.0.0.1", None);
                outcome(ds, core, Outcome::send_failed(d, data));
                continue;
            }
        };
        to.send_socket = if d.attrs.socket.is_empty() {
            crate::dest::socket_addr(default_socket)
        } else {
            d.socket_addr
        };
        let local = sr_mod_tm::local::via_host(core, &to).unwrap_or_default();
        let ua = core.user_agent_header();
        let (n, data) = ds
            .pinger
            .request(d, &method, from, to.proto, &local, ua.as_deref());
        if let Some(o) = ds.pinger.start(core, d, n, data, to, &timers) {
            outcome(ds, core, o);
        }
    }
}

/// Starts probing when `ds_ping_interval` is set (it needs tm, for its
/// timers, as in Kamailio).
pub fn start(ds: &Arc<Dispatcher>, core: &dyn Core) -> Result<(), String> {
    let every = ds.p.ping_interval.load(Ordering::Relaxed);
    if every <= 0 {
        return Ok(());
    }
    let tm = bind::<TmApi>(core, TM_API)
        .ok_or("dispatcher: ds_ping_interval needs the tm module (load it before dispatcher)")?;
    // Its timers are read each round (cfg changes reach the pings).
    let _ = ds.tm.set(tm);
    let handle = core
        .handle()
        .ok_or("dispatcher: no core handle for probing")?;
    let (d, h) = (ds.clone(), handle.clone());
    core.add_timer(
        "dispatcher-ping",
        Duration::from_secs(every as u64),
        Arc::new(move || {
            if let Some(core) = h.upgrade() {
                round(&d, &*core);
            }
        }),
    );
    let d = ds.clone();
    core.add_timer(
        "dispatcher-ping-retransmit",
        Duration::from_millis(100),
        Arc::new(move || {
            if let Some(core) = handle.upgrade() {
                for o in d.pinger.tick(&*core) {
                    outcome(&d, &*core, o);
                }
            }
        }),
    );
    Ok(())
}

/// A reply: true when it answers one of our pings (it goes no further).
pub fn on_reply(ds: &Dispatcher, ctx: &mut Ctx<'_>) -> bool {
    match ds.pinger.take_reply(ctx.msg) {
        sr_mod_tm::local::Taken::NotOurs => false,
        sr_mod_tm::local::Taken::Absorbed => true,
        sr_mod_tm::local::Taken::Ended(e) => {
            outcome(ds, ctx.core, crate::ping::Outcome::from(e));
            true
        }
    }
}
