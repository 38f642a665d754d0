//! OPTIONS pings to failed gateways (`ping_interval`): every gateway
//! `inactivate_gw` marked is pinged through tm until a 2xx (or a code of
//! `ping_valid_reply_codes`) makes it active again.

use crate::tables::{GW_ACTIVE, GW_PINGING};
use crate::Lcr;
use sr_mod_tm::local::Ended;
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What a ping is for: instance index, gateway index (1-based) and the
/// URI pinged (a reload in between may have moved the gateway).
pub type PingTag = (usize, usize, String);

/// `ping_valid_reply_codes`: comma-separated codes from 100 to 999, at
/// most 15.
pub fn reply_codes(s: &str) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for c in s.split(',').filter(|c| !c.is_empty()) {
        if out.len() == 15 {
            return Err("more than 15 ping reply codes".into());
        }
        match c.trim().parse::<u16>() {
            Ok(n) if (100..=999).contains(&n) => out.push(n),
            _ => return Err(format!("invalid ping_valid_reply_codes code '{c}'")),
        }
    }
    Ok(out)
}

/// Pings every gateway not active.
fn ping_all(l: &Lcr, core: &dyn Core, tm: &TmApi) {
    let from = l.s("ping_from");
    let socket = l.s("ping_socket");
    let tables = l.tables();
    for (i, inst) in tables.iter().enumerate() {
        for (j, gw) in inst.gws.iter().enumerate() {
            if gw.state.load(Ordering::Relaxed) < GW_PINGING {
                continue;
            }
            let mut dest = match core.resolve(&gw.uri, None) {
                Ok(d) => d,
                Err(e) => {
                    lm_err!("lcr: unable to ping [{}]: {e}", gw.uri);
                    continue;
                }
            };
            if !socket.is_empty() {
                dest.send_socket = sr_sdk::msg::socket_addr(&socket);
            }
            let (n, branch) = l.pings.next_branch();
            let mut text = l.pings.head(
                core, &dest, n, &branch, "OPTIONS", &gw.uri, &gw.uri, &from, 0,
            );
            text.push_str("\r\n");
            let tag = (i, j + 1, gw.uri.clone());
            if let Some(e) = l
                .pings
                .start(core, n, text.into_bytes(), dest, &tm.uac_timers(), tag)
            {
                ended(l, e);
            }
        }
    }
}

/// A ping's outcome: a valid answer makes the gateway active, if it is
/// still the one pinged.
pub fn ended(l: &Lcr, e: Ended<PingTag>) {
    let valid =
        (200..300).contains(&e.code) || l.valid_codes.get().is_some_and(|c| c.contains(&e.code));
    if !valid {
        return;
    }
    let (i, j, uri) = e.tag;
    let tables = l.tables();
    if let Some(gw) = tables.get(i).and_then(|inst| inst.gws.get(j - 1)) {
        if gw.uri == uri {
            lm_info!("lcr: activating gw with uri {uri}");
            gw.state.store(GW_ACTIVE, Ordering::Relaxed);
        }
    }
}

/// Binds tm and starts the ping and retransmission timers.
pub fn start(l: &Arc<Lcr>, core: &dyn Core) -> Result<(), String> {
    let tm = bind::<TmApi>(core, TM_API)
        .ok_or("lcr: ping_interval needs the tm module (load tm before lcr)")?;
    let handle = core.handle().ok_or("lcr: no core handle for its timers")?;
    let every = l.i("ping_interval").max(1) as u64;
    let (me, h) = (l.clone(), handle.clone());
    core.add_timer(
        "lcr-ping",
        Duration::from_secs(every),
        Arc::new(move || {
            if let Some(core) = h.upgrade() {
                ping_all(&me, &*core, &tm);
            }
        }),
    );
    let me = l.clone();
    core.add_timer(
        "lcr-ping-retransmit",
        Duration::from_millis(100),
        Arc::new(move || {
            if let Some(core) = handle.upgrade() {
                for e in me.pings.tick(&*core) {
                    ended(&me, e);
                }
            }
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_reply_codes() {
        assert_eq!(reply_codes("").unwrap(), Vec::<u16>::new());
        assert_eq!(reply_codes("403,405,501").unwrap(), vec![403, 405, 501]);
        assert!(reply_codes("99").is_err());
        assert!(reply_codes("abc").is_err());
    }
}
