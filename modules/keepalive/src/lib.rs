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
use sr_sdk::rpc::param_opt_str;
use sr_sdk::RpcError;
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
    /// Who added it (`_params` for a `destination` parameter).
    pub owner: String,
    /// Its state.
    pub state: State,
    /// Failed pings in a row.
    pub failed: i64,
    /// A ping is under way.
    pub pinging: bool,
    /// When it was last pinged (Unix seconds, 0 never).
    pub last_checked: i64,
    /// When a ping last got a 2xx (0 never).
    pub last_up: i64,
    /// When a ping last failed (0 never).
    pub last_down: i64,
}

/// The owner of the destinations given by `destination` parameters.
pub const PARAMS_OWNER: &str = "_params";

impl State {
    /// Kamailio's number for it (0 unknown, 1 up, 2 down).
    pub fn code(self) -> i32 {
        match self {
            State::Unknown => 0,
            State::Up => 1,
            State::Down => 2,
        }
    }
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
    /// Adds a destination: 1, -2 when `owner` has it already (its count
    /// of failed pings starts again), -1 for an invalid URI.
    fn add(&self, uri: &str, owner: &str) -> i32 {
        let uri = normalize(uri);
        if sr_sdk::sip_msg::Uri::parse(&uri).is_err() {
            lm_err!("keepalive: invalid uri <{uri}>");
            return -1;
        }
        let mut d = lock(&self.dests);
        if let Some(x) = d.iter_mut().find(|x| x.uri == uri && x.owner == owner) {
            lm_info!("keepalive: uri [{uri}] already in stack --ignoring");
            x.failed = 0;
            return -2;
        }
        d.push(Dest {
            uri,
            owner: owner.to_string(),
            state: State::Unknown,
            failed: 0,
            pinging: false,
            last_checked: 0,
            last_up: 0,
            last_down: 0,
        });
        1
    }

    /// The destinations, newest first (as Kamailio lists them).
    fn list(&self) -> Vec<Dest> {
        lock(&self.dests).iter().rev().cloned().collect()
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
        let now = sr_sdk::db::now();
        let mut due: Vec<String> = lock(&self.dests)
            .iter_mut()
            .filter(|x| !x.pinging)
            .map(|x| {
                x.pinging = true;
                x.last_checked = now;
                x.uri.clone()
            })
            .collect();
        // One ping for a destination more than one owner added.
        due.sort_unstable();
        due.dedup();
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
        let now = sr_sdk::db::now();
        let new = if up { State::Up } else { State::Down };
        let limit = params::get_int(&self.delete_counter);
        let mut changed = false;
        lock(&self.dests).retain_mut(|x| {
            if x.uri != uri {
                return true;
            }
            x.pinging = false;
            if up {
                x.failed = 0;
                x.last_up = now;
            } else {
                x.failed += 1;
                x.last_down = now;
            }
            changed |= x.state != new;
            x.state = new;
            let gone = !up && limit > 0 && x.owner != PARAMS_OWNER && x.failed >= limit;
            if gone {
                lm_info!("keepalive: removing destination {uri} after {limit} failed pings");
            }
            !gone
        });
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
            if self.add(&uri, PARAMS_OWNER) == -1 {
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

/// The URI and owner an RPC command names (both required, not empty).
fn uri_owner(p: &[Json]) -> Result<(String, String), RpcError> {
    let (Some(uri), Some(owner)) = (param_opt_str(p, 0), param_opt_str(p, 1)) else {
        return Err(RpcError::new(500, "Not enough parameters or wrong format"));
    };
    if uri.is_empty() || owner.is_empty() {
        return Err(RpcError::new(500, "parameter is len less than 1"));
    }
    Ok((uri, owner))
}

/// A time as `keepalive.list` shows it: C's `ctime_r`, newline included.
fn shown_time(t: i64) -> String {
    sr_sdk::localtime::ctime(t) + "\n"
}

fn rpc_list(k: &Keepalive) -> Json {
    let out: Vec<Json> = k
        .list()
        .iter()
        .map(|d| {
            json!({
                "uri": d.uri,
                "owner": d.owner,
                "last checked": shown_time(d.last_checked),
                "last up": shown_time(d.last_up),
                "last down": shown_time(d.last_down),
                "state": d.state.code(),
            })
        })
        .collect();
    Json::Array(out)
}

fn rpc_get(k: &Keepalive, p: &[Json]) -> Result<Json, RpcError> {
    let (uri, owner) = uri_owner(p)?;
    let uri = normalize(&uri);
    k.list()
        .into_iter()
        .find(|d| d.uri == uri && d.owner == owner)
        .map(|d| json!({"uri": d.uri, "owner": d.owner, "state": d.state.code()}))
        .ok_or_else(|| RpcError::new(500, "couldn't get data from list"))
}

fn rpc_add(k: &Keepalive, p: &[Json]) -> Result<Json, RpcError> {
    let (uri, owner) = uri_owner(p)?;
    if k.add(&uri, &owner) == -1 {
        return Err(RpcError::new(500, "couldn't add data to list"));
    }
    Ok(json!("Ok. Destination added."))
}

fn rpc_del(k: &Keepalive, p: &[Json]) -> Result<Json, RpcError> {
    let (uri, owner) = uri_owner(p)?;
    if k.del(&uri, &owner) < 0 {
        return Err(RpcError::new(500, "couldn't delete data from list"));
    }
    Ok(json!("Ok. Destination removed."))
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
    let (l, ra, rd, rg, rf) = (k.clone(), k.clone(), k.clone(), k.clone(), k.clone());
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
        .rpc(
            "keepalive.list",
            "Return the content of keepalive destination groups",
            move |_| Ok(rpc_list(&l)),
        )
        .rpc(
            "keepalive.add",
            "add new destination to keepalive memory. Usage: keepalive.add sip:user@domain listname",
            move |p| rpc_add(&ra, p),
        )
        .rpc(
            "keepalive.del",
            "delete destination from keepalive memory. Usage: keepalive.del sip:user@domain listname",
            move |p| rpc_del(&rd, p),
        )
        .rpc(
            "keepalive.get",
            "get destination details from keepalive memory. Usage: keepalive.get sip:user@domain listname",
            move |p| rpc_get(&rg, p),
        )
        .rpc(
            "keepalive.flush",
            "Flush data from keepalive memory. Usage: keepalive.flush",
            move |_| {
                lock(&rf.dests).clear();
                Ok(json!("Ok. Destination list flushed."))
            },
        )
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
