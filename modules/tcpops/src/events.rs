//! The event routes of a connection's end: `event_route[tcp:closed]`
//! (the peer closed it), `[tcp:timeout]` (idle past its lifetime) and
//! `[tcp:reset]` (the peer reset it), run one after the other on a thread
//! of their own with the connection as the faked message's source (`$si`,
//! `$sp`, `$proto`, `$conid`).

use sr_sdk::prelude::*;
use sr_sdk::{ConnEnd, RecvInfo};
use std::sync::mpsc;
use std::sync::Weak;
use std::time::Duration;

/// The route for an end.
pub fn route_name(end: ConnEnd) -> &'static str {
    match end {
        ConnEnd::Closed => "tcp:closed",
        ConnEnd::Timeout => "tcp:timeout",
        ConnEnd::Reset => "tcp:reset",
    }
}

/// Whether `closed_event` lets an end through: 1 every one, 2 those
/// asked for with `tcp_enable_closed_event`, 0 none.
pub fn wanted(mode: i64, asked: bool) -> bool {
    mode == 1 || (mode == 2 && asked)
}

/// Starts the thread that runs the routes and returns where to send
/// the ends (at most 1024 wait; more are dropped with a warning).
pub fn start(
    core: &dyn Core,
    weak: Weak<dyn Core>,
) -> Result<mpsc::SyncSender<(RecvInfo, ConnEnd)>, String> {
    let (tx, rx) = mpsc::sync_channel::<(RecvInfo, ConnEnd)>(1024);
    core.spawn_process(
        "tcpops-events",
        sr_sdk::route::rank::PROC_TIMER,
        Box::new(move || loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok((rcv, end)) => {
                    let Some(core) = weak.upgrade() else { return };
                    if core.shutting_down() {
                        return;
                    }
                    run(&*core, rcv, end);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if weak.upgrade().is_none_or(|c| c.shutting_down()) {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }),
    )?;
    Ok(tx)
}

fn run(core: &dyn Core, rcv: RecvInfo, end: ConnEnd) {
    let Some(id) = core.route_id(RouteType::EVENT, route_name(end)) else {
        return;
    };
    let mut msg = SipMsg::faked();
    msg.rcv = rcv;
    core.run_route(id, RouteType::EVENT, &mut msg);
}
