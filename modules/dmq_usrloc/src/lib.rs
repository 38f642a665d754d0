//! # dmq_usrloc: registrations replicated between cluster nodes
//!
//! Kamailio's `dmq_usrloc`, on its JSON format (see [`json`]): with
//! `enable=1`, every contact saved or updated in the `usrloc_domain`
//! table is sent to the other active DMQ nodes on the `usrloc` channel
//! (action 1), every contact removed by a REGISTER too (action 2, with
//! `usrloc_delete`); contacts received that way are stored marked as
//! replicated and not sent on again. Expiry is not replicated: each node
//! expires its copies itself. When the node first meets another (`sync`),
//! it asks for every contact (action 3); a node asked sends them to the
//! asking node, in groups of `batch_msg_contacts` (`{"multi": ...}`) up to
//! `batch_msg_size` bytes. See `docs/modules/dmq_usrloc.md`.
#![forbid(unsafe_code)]

pub mod json;

use json::{contact_json, contact_of, messages, DELETE, SYNC, UPDATE};
use sr_mod_dmq::node::NodeUri;
use sr_mod_dmq::{DmqApi, PeerReply, DMQ_API};
use sr_mod_usrloc::{Change, Domain, Usrloc, FL_RPL, USRLOC_API};
use sr_sdk::prelude::*;
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

thread_local! {
    /// Set while this thread applies a message from another node: the
    /// changes it makes (removals included) are not sent back out.
    static APPLYING: Cell<bool> = const { Cell::new(false) };
}

/// Sets [`APPLYING`] for its lifetime.
struct Applying;

impl Applying {
    fn start() -> Applying {
        APPLYING.with(|a| a.set(true));
        Applying
    }
}

impl Drop for Applying {
    fn drop(&mut self) {
        APPLYING.with(|a| a.set(false));
    }
}

/// The channel.
pub const CHANNEL: &str = "usrloc";
const CONTENT_TYPE: &str = "application/json";

/// The module's state.
pub struct DmqUsrloc {
    enable: Arc<AtomicI64>,
    sync: Arc<AtomicI64>,
    batch_size: Arc<AtomicI64>,
    batch_usleep: Arc<AtomicI64>,
    batch_msg_size: Arc<AtomicI64>,
    batch_msg_contacts: Arc<AtomicI64>,
    usrloc_domain: Arc<RwLock<String>>,
    replicate_socket_info: Arc<AtomicI64>,
    usrloc_delete: Arc<AtomicI64>,
    dmq: OnceLock<DmqApi>,
    domain: OnceLock<Arc<Domain>>,
    core: OnceLock<Weak<dyn Core>>,
    /// Nodes a sync is being sent to (one at a time each).
    syncing: Mutex<HashSet<String>>,
}

fn reply(code: u16, reason: &str) -> PeerReply {
    PeerReply {
        code,
        reason: reason.into(),
        body: None,
    }
}

impl DmqUsrloc {
    fn with_socket(&self) -> bool {
        params::get_int(&self.replicate_socket_info) != 0
    }

    /// A change of the table: what came from this node goes to the others.
    fn changed(&self, ch: &Change<'_>) {
        if APPLYING.with(Cell::get) {
            return;
        }
        let (Some(dmq), Some(core)) = (self.dmq.get(), self.core.get().and_then(Weak::upgrade))
        else {
            return;
        };
        for c in ch.stored.iter().filter(|c| c.flags & FL_RPL == 0) {
            let body = contact_json(UPDATE, c, self.with_socket()).to_string();
            dmq.bcast(&*core, CHANNEL, &body, CONTENT_TYPE);
        }
        if params::get_int(&self.usrloc_delete) == 0 {
            return;
        }
        for c in ch.removed.iter().filter(|c| c.flags & FL_RPL == 0) {
            let body = contact_json(DELETE, c, self.with_socket()).to_string();
            dmq.bcast(&*core, CHANNEL, &body, CONTENT_TYPE);
        }
    }

    /// A message on the `usrloc` channel.
    fn received(
        self: &Arc<Self>,
        core: &dyn Core,
        msg: &SipMsg,
        from: Option<&NodeUri>,
    ) -> PeerReply {
        let Some(dom) = self.domain.get() else {
            return reply(500, "Server Internal Error");
        };
        let body = String::from_utf8_lossy(msg.msg().body()).into_owned();
        if body.trim().is_empty() {
            return reply(400, "Bad Request");
        }
        let list = match messages(&body) {
            Ok(l) => l,
            Err(e) => {
                lm_err!("dmq_usrloc: bad message: {e}");
                return reply(400, "Bad Request");
            }
        };
        let now = sr_sdk::db::now();
        let _applying = Applying::start();
        for o in list {
            match o.get("action").and_then(Json::as_i64) {
                Some(UPDATE) => {
                    let Some(c) = contact_of(&o, |s| is_local_socket(core, s)) else {
                        return reply(400, "Bad Request");
                    };
                    let aor = c.aor.clone();
                    let res = dom.with_record(&aor, now, |rec| {
                        // An older update of the same registration (the
                        // messages may cross) changes nothing.
                        let stale = rec.iter().any(|x| {
                            (x.ruid() == c.ruid || x.contact() == c.contact)
                                && x.callid() == c.callid
                                && x.cseq() > c.cseq
                        });
                        if stale {
                            return Ok(());
                        }
                        if rec.iter().any(|x| x.ruid() == c.ruid) {
                            rec.update(c);
                        } else {
                            // The same binding under another ruid: replaced.
                            let old: Vec<String> = rec
                                .iter()
                                .filter(|x| x.contact() == c.contact && x.callid() == c.callid)
                                .map(|x| x.ruid().to_string())
                                .collect();
                            for r in old {
                                rec.remove(&r);
                            }
                            rec.insert(c);
                        }
                        Ok(())
                    });
                    if let Err(e) = res {
                        lm_err!("dmq_usrloc: {aor}: {e}");
                        return reply(500, "Server Internal Error");
                    }
                }
                Some(DELETE) => {
                    let aor = o.get("aor").and_then(Json::as_str).unwrap_or_default();
                    let ruid = o.get("ruid").and_then(Json::as_str).unwrap_or_default();
                    if aor.is_empty() || ruid.is_empty() {
                        return reply(400, "Bad Request");
                    }
                    let _ = dom.with_record(aor, now, |rec| Ok(rec.remove(ruid)));
                }
                Some(SYNC) => self.start_sync(from),
                Some(0) => {}
                _ => return reply(400, "Bad Request"),
            }
        }
        reply(200, "OK")
    }

    /// Answers a sync request in the background (the request is answered
    /// at once); one sync at a time per asking node.
    fn start_sync(self: &Arc<Self>, from: Option<&NodeUri>) {
        let key = from.map_or_else(|| "*".to_string(), NodeUri::key);
        if !self
            .syncing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone())
        {
            return;
        }
        let me = self.clone();
        let to = from.cloned();
        let spawned = std::thread::Builder::new()
            .name("dmq_usrloc sync".into())
            .spawn(move || {
                if let Some(core) = me.core.get().and_then(Weak::upgrade) {
                    me.send_all(&*core, to.as_ref());
                }
                me.syncing
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
            });
        if let Err(e) = spawned {
            lm_err!("dmq_usrloc: sync thread: {e}");
        }
    }

    /// Every valid contact of the table to `to` (every active node when
    /// the asker is not a listed node), grouped as configured.
    fn send_all(&self, core: &dyn Core, to: Option<&NodeUri>) {
        let (Some(dmq), Some(dom)) = (self.dmq.get(), self.domain.get()) else {
            return;
        };
        let all = match dom.dump() {
            Ok(a) => a,
            Err(e) => {
                lm_err!("dmq_usrloc: sync: {e}");
                return;
            }
        };
        let per_msg = params::get_int(&self.batch_msg_contacts).clamp(1, 150) as usize;
        let max_size = params::get_int(&self.batch_msg_size).clamp(1, 60000) as usize;
        let pause_every = params::get_int(&self.batch_size).max(0) as usize;
        let pause = params::get_int(&self.batch_usleep).max(0) as u64;
        let send = |body: String| match to {
            Some(n) => {
                if !dmq.send_to(core, n, CHANNEL, &body, CONTENT_TYPE) {
                    dmq.bcast(core, CHANNEL, &body, CONTENT_TYPE);
                }
            }
            None => dmq.bcast(core, CHANNEL, &body, CONTENT_TYPE),
        };
        let mut group = JsonMap::new();
        let mut size = 0;
        let mut n = 0usize;
        let now = sr_sdk::db::now();
        for c in all
            .iter()
            .flat_map(|(_, cs)| cs.iter())
            .filter(|c| c.is_valid(now))
        {
            let one = contact_json(UPDATE, c, self.with_socket());
            n += 1;
            if per_msg == 1 {
                send(one.to_string());
            } else {
                size += one.to_string().len();
                group.insert((group.len() + 1).to_string(), one);
                if group.len() >= per_msg || size >= max_size {
                    let g = std::mem::take(&mut group);
                    send(json!({ "multi": g }).to_string());
                    size = 0;
                }
            }
            if pause_every > 0 && pause > 0 && n.is_multiple_of(pause_every) {
                std::thread::sleep(std::time::Duration::from_micros(pause));
            }
        }
        if !group.is_empty() {
            send(json!({ "multi": group }).to_string());
        }
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        if params::get_int(&self.enable) == 0 {
            return Ok(());
        }
        let dmq = bind::<DmqApi>(core, DMQ_API)
            .ok_or("dmq_usrloc needs the dmq module (load dmq before dmq_usrloc)")?;
        let ul = bind::<Usrloc>(core, USRLOC_API)
            .ok_or("dmq_usrloc needs the usrloc module (load usrloc before dmq_usrloc)")?;
        let name = params::get_str(&self.usrloc_domain);
        let dom = ul.register_domain(&name)?;
        let _ = self
            .core
            .set(core.handle().ok_or("dmq_usrloc: no core handle")?);
        let me = self.clone();
        dom.watch(Arc::new(move |ch| me.changed(ch)));
        let _ = self.domain.set(dom);
        let me = self.clone();
        let on_init: Option<sr_mod_dmq::InitFn> = if params::get_int(&self.sync) != 0 {
            let me2 = self.clone();
            Some(Arc::new(move |core: &dyn Core| {
                if let Some(d) = me2.dmq.get() {
                    d.bcast(
                        core,
                        CHANNEL,
                        &json!({ "action": SYNC }).to_string(),
                        CONTENT_TYPE,
                    );
                }
            }))
        } else {
            None
        };
        dmq.register_peer(
            CHANNEL,
            Arc::new(move |core, msg, from| me.received(core, msg, from)),
            on_init,
        );
        let _ = self.dmq.set((*dmq).clone());
        Ok(())
    }
}

/// Whether `sock` (`proto:ip:port`) is one of our sockets.
fn is_local_socket(core: &dyn Core, sock: &str) -> bool {
    let mut parts = sock.splitn(2, ':');
    let (_, Some(rest)) = (parts.next(), parts.next()) else {
        return false;
    };
    match rest.rsplit_once(':') {
        Some((h, p)) => core.is_myself(h.trim_matches(['[', ']']), p.parse().ok()),
        None => false,
    }
}

/// The `dmq_usrloc` module.
pub fn module() -> ModuleDef {
    let m = Arc::new(DmqUsrloc {
        enable: params::int_cell(0),
        sync: params::int_cell(1),
        batch_size: params::int_cell(0),
        batch_usleep: params::int_cell(0),
        batch_msg_size: params::int_cell(60000),
        batch_msg_contacts: params::int_cell(1),
        usrloc_domain: params::str_cell("location"),
        replicate_socket_info: params::int_cell(0),
        usrloc_delete: params::int_cell(1),
        dmq: OnceLock::new(),
        domain: OnceLock::new(),
        core: OnceLock::new(),
        syncing: Mutex::new(HashSet::new()),
    });
    let ini = m.clone();
    ModuleDef::new("dmq_usrloc")
        .param("enable", ParamKind::Int, params::int(&m.enable))
        .param("sync", ParamKind::Int, params::int(&m.sync))
        .param("batch_size", ParamKind::Int, params::int(&m.batch_size))
        .param("batch_usleep", ParamKind::Int, params::int(&m.batch_usleep))
        .param(
            "batch_msg_size",
            ParamKind::Int,
            params::int(&m.batch_msg_size),
        )
        .param(
            "batch_msg_contacts",
            ParamKind::Int,
            params::int(&m.batch_msg_contacts),
        )
        .param(
            "usrloc_domain",
            ParamKind::Str,
            params::string(&m.usrloc_domain),
        )
        .param(
            "replicate_socket_info",
            ParamKind::Int,
            params::int(&m.replicate_socket_info),
        )
        .param(
            "usrloc_delete",
            ParamKind::Int,
            params::int(&m.usrloc_delete),
        )
        .on_init(move |core| ini.init(core))
}
