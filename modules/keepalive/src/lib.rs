//! # keepalive: destinations watched with OPTIONS
//!
//! Kamailio's `keepalive` module. Each destination (`destination`
//! parameters, or added from the script with `ka_add_destination`) gets
//! an OPTIONS every `ping_interval` seconds, from `ping_from`; a 2xx
//! marks it up, any other answer or none (tm's `fr_timer`) down. A
//! change runs `event_route[keepalive:dst-up]` or `[keepalive:dst-down]`
//! with `$ru` the destination. `ka_is_alive(dst)` tells the state (1 up,
//! 2 down, -1 unknown destination). A destination added from the script
//! is removed after `delete_counter` failed pings in a row.
#![forbid(unsafe_code)]

use sr_mod_tm::local::{Ended, LocalRequests, Taken};
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// A destination's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not answered yet.
    Unknown,
    /// Its last ping got a 2xx.
    Up,
    /// Its last ping got another answer, or none.
    Down,
}

/// A watched destination.
#[derive(Debug, Clone)]
pub struct Dest {
    /// The SIP URI pinged (`sip:` added when it has no scheme).
    pub uri: String,
    /// Who added it (empty for a `destination` parameter).
    pub owner: String,
    /// Its state.
    pub state: State,
    /// Failed pings in a row.
    pub failed: i64,
    /// A ping is under way.
    pub pinging: bool,
}

/// `sip:` in front of a destination without a scheme.
pub fn normalize(uri: &str) -> String {
    let u = uri.trim();
    let lower = u.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        u.to_string()
    } else {
        format!("sip:{u}")
    }
}

/// Whether `name` (as the script gives it to `ka_is_alive`) names `uri`:
/// the URI without its `sip:`, as Kamailio compares, or the URI itself.
pub fn names(uri: &str, name: &str) -> bool {
    let name = name.trim();
    uri == name || uri.strip_prefix("sip:") == Some(name)
}

/// The module's state.
pub struct Keepalive {
    interval: Arc<AtomicI64>,
    ping_from: Arc<RwLock<String>>,
    delete_counter: Arc<AtomicI64>,
    initial: Mutex<Vec<String>>,
    dests: Mutex<Vec<Dest>>,
    sent: LocalRequests<String>,
    tm: OnceLock<Arc<TmApi>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Keepalive {
    fn add(&self, uri: &str, owner: &str) -> i32 {
        let uri = normalize(uri);
        if sr_sdk::sip_msg::Uri::parse(&uri).is_err() {
            lm_err!("keepalive: invalid uri <{uri}>");
            return -1;
        }
        let mut d = lock(&self.dests);
        if d.iter().any(|x| x.uri == uri) {
            lm_dbg!("keepalive: uri [{uri}] already in stack --ignoring");
            return 1;
        }
        d.push(Dest {
            uri,
            owner: owner.to_string(),
            state: State::Unknown,
            failed: 0,
            pinging: false,
        });
        1
    }

    fn del(&self, uri: &str, owner: &str) -> i32 {
        let uri = normalize(uri);
        let mut d = lock(&self.dests);
        let before = d.len();
        d.retain(|x| !(x.uri == uri && (owner.is_empty() || x.owner == owner)));
        if d.len() < before {
            1
        } else {
            -1
        }
    }

    fn is_alive(&self, name: &str) -> i32 {
        match lock(&self.dests).iter().find(|x| names(&x.uri, name)) {
            // A destination not answered yet reads as up, as Kamailio's.
            Some(x) if x.state == State::Down => 2,
            Some(_) => 1,
            None => -1,
        }
    }

    /// Pings every destination with no ping under way.
    fn ping_all(&self, core: &dyn Core) {
        let Some(tm) = self.tm.get() else { return };
        let due: Vec<String> = lock(&self.dests)
            .iter_mut()
            .filter(|x| !x.pinging)
            .map(|x| {
                x.pinging = true;
                x.uri.clone()
            })
            .collect();
        let from = params::get_str(&self.ping_from);
        for uri in due {
            let dest = match core.resolve(&uri, None) {
                Ok(d) => d,
                Err(e) => {
                    lm_warn!("keepalive: {uri}: {e}");
                    self.result(core, &uri, false);
                    continue;
                }
            };
            let (n, branch) = self.sent.next_branch();
            let mut text = self
                .sent
                .head(core, &dest, n, &branch, "OPTIONS", &uri, &uri, &from, 0);
            text.push_str("\r\n");
            if let Some(e) =
                self.sent
                    .start(core, n, text.into_bytes(), dest, &tm.uac_timers(), uri)
            {
                self.ended(core, e);
            }
        }
    }

    fn ended(&self, core: &dyn Core, e: Ended<String>) {
        self.result(core, &e.tag, (200..300).contains(&e.code));
    }

    /// A ping's outcome: the new state, the event route when it changed,
    /// and the removal of a script-added destination that failed
    /// `delete_counter` times in a row.
    fn result(&self, core: &dyn Core, uri: &str, up: bool) {
        let changed = {
            let mut d = lock(&self.dests);
            let Some(i) = d.iter().position(|x| x.uri == uri) else {
                return;
            };
            let new = if up { State::Up } else { State::Down };
            let x = &mut d[i];
            x.pinging = false;
            x.failed = if up { 0 } else { x.failed + 1 };
            let changed = x.state != new;
            x.state = new;
            let limit = params::get_int(&self.delete_counter);
            if !up && limit > 0 && !x.owner.is_empty() && x.failed >= limit {
                lm_info!("keepalive: removing destination {uri} after {limit} failed pings");
                d.remove(i);
            }
            changed
        };
        if changed {
            let name = if up {
                "keepalive:dst-up"
            } else {
                "keepalive:dst-down"
            };
            if let Some(id) = core.route_id(RouteType::EVENT, name) {
                let mut msg = SipMsg::faked();
                msg.new_uri = Some(uri.to_string());
                core.run_route(id, RouteType::EVENT, &mut msg);
            }
        }
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        let tm = bind::<TmApi>(core, TM_API)
            .ok_or("keepalive needs the tm module (load tm before keepalive)")?;
        let _ = self.tm.set(tm);
        for uri in lock(&self.initial).drain(..).collect::<Vec<_>>() {
            if self.add(&uri, "") < 0 {
                return Err(format!("keepalive: invalid destination '{uri}'"));
            }
        }
        let handle = core
            .handle()
            .ok_or("keepalive: no core handle for its timers")?;
        let me = self.clone();
        let h = handle.clone();
        let every = params::get_int(&self.interval).max(1) as u64;
        core.add_timer(
            "keepalive-ping",
            Duration::from_secs(every),
            Arc::new(move || {
                if let Some(core) = h.upgrade() {
                    me.ping_all(&*core);
                }
            }),
        );
        let me = self.clone();
        core.add_timer(
            "keepalive-retransmit",
            Duration::from_millis(100),
            Arc::new(move || {
                if let Some(core) = handle.upgrade() {
                    for e in me.sent.tick(&*core) {
                        me.ended(&*core, e);
                    }
                }
            }),
        );
        Ok(())
    }
}

/// The `keepalive` module.
pub fn module() -> ModuleDef {
    let k = Arc::new(Keepalive {
        interval: params::int_cell(30),
        ping_from: params::str_cell("sip:keepalive@kamailio.org"),
        delete_counter: params::int_cell(5),
        initial: Mutex::new(Vec::new()),
        dests: Mutex::new(Vec::new()),
        sent: LocalRequests::new("ka"),
        tm: OnceLock::new(),
    });
    let kd = k.clone();
    let spve = Some(fixup::f(fixup::spve));
    let (a, b, c) = (k.clone(), k.clone(), k.clone());
    let r = k.clone();
    let ki = k.clone();
    ModuleDef::new("keepalive")
        .param("ping_interval", ParamKind::Int, params::int(&k.interval))
        .param("ping_from", ParamKind::Str, params::string(&k.ping_from))
        .param(
            "delete_counter",
            ParamKind::Int,
            params::int(&k.delete_counter),
        )
        .param("destination", ParamKind::Str, move |v| {
            let s = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            lock(&kd.initial).push(s);
            Ok(())
        })
        .cmd(
            "ka_is_alive",
            1,
            RouteType::ANY,
            spve.clone(),
            move |ctx, p| {
                let name = p[0].str(ctx).into_owned();
                a.is_alive(&name)
            },
        )
        .cmd(
            "ka_add_destination",
            2,
            RouteType::ANY,
            spve.clone(),
            move |ctx, p| {
                let uri = p[0].str(ctx).into_owned();
                let owner = p[1].str(ctx).into_owned();
                b.add(&uri, &owner)
            },
        )
        .cmd(
            "ka_del_destination",
            2,
            RouteType::ANY,
            spve,
            move |ctx, p| {
                let uri = p[0].str(ctx).into_owned();
                let owner = p[1].str(ctx).into_owned();
                c.del(&uri, &owner)
            },
        )
        .on_response(move |ctx| match r.sent.take_reply(ctx.msg) {
            Taken::NotOurs => false,
            Taken::Absorbed => true,
            Taken::Ended(e) => {
                r.ended(ctx.core, e);
                true
            }
        })
        .on_init(move |core| ki.init(core))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_schemes() {
        assert_eq!(normalize("127.0.0.1:5060"), "sip:127.0.0.1:5060");
        assert_eq!(normalize("sip:a.example"), "sip:a.example");
        assert!(names("sip:127.0.0.1:5060", "127.0.0.1:5060"));
        assert!(names("sip:127.0.0.1:5060", "sip:127.0.0.1:5060"));
        assert!(!names("sip:127.0.0.1:5060", "127.0.0.1"));
    }
}
