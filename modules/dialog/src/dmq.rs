//! Dialogs replicated over DMQ (`enable_dmq=1`), in Kamailio 5.6's JSON on
//! the `dialog` channel: "just enough to have synced profiles". A dialog
//! made here is sent whole when its INVITE gets its transaction (action 1:
//! ids, Call-ID, URIs, the caller's leg, `vars`, `profiles` as a JSON
//! document in a string), then its state changes (action 2: early with the
//! caller's leg, confirmed at the ACK with both legs, ended) and its removal
//! (action 3); `{"action":4}` asks a node for all its dialogs, each sent as
//! action 1 with its state. Dialogs received are kept without sockets,
//! count in their profiles and show in `dlg.list`, and are never sent on;
//! they end (without a BYE) when their lifetime passes or the owner says.
//! The nodes must use the same `hash_size`: a dialog's `h_entry` is the
//! hash of its Call-ID.

use crate::dlg::{unix_now, Dialog, Leg, State, DFLAG_REPLICATED, DFLAG_SENT};
use crate::profile::Link;
use crate::Dlg;
use sr_mod_dmq::node::NodeUri;
use sr_mod_dmq::{DmqApi, PeerReply, DMQ_API};
use sr_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The channel.
pub const CHANNEL: &str = "dialog";
const CONTENT_TYPE: &str = "application/json";
const UPDATE: i64 = 1;
const STATE: i64 = 2;
const REMOVE: i64 = 3;
const SYNC: i64 = 4;
/// The most dialogs kept in all before those of other nodes are refused.
const MAX_RECEIVED: usize = 200_000;
/// The longest lifetime taken from another node (a week).
const MAX_LIFETIME: u32 = 7 * 24 * 3600;

fn reply(code: u16, reason: &str) -> PeerReply {
    PeerReply {
        code,
        reason: reason.into(),
        body: None,
    }
}

type Obj = JsonMap<String, Json>;

fn ids(m: &mut Obj, action: i64, x: &Dialog) {
    m.insert("action".into(), json!(action));
    m.insert("h_entry".into(), json!(x.h_entry));
    m.insert("h_id".into(), json!(x.h_id));
}

fn leg(m: &mut Obj, n: u8, l: &Leg) {
    m.insert(format!("tag{n}"), json!(l.tag));
    m.insert(format!("cseq{n}"), json!(l.cseq.to_string()));
    m.insert(format!("route_set{n}"), json!(l.route_set.join(",")));
    m.insert(format!("contact{n}"), json!(l.contact));
}

/// The fields of a state: early (the caller's leg), confirmed (both legs,
/// Kamailio's order: tags, CSeqs, route sets, contacts).
fn state_fields(m: &mut Obj, x: &Dialog) {
    m.insert("state".into(), json!(x.state.num()));
    match x.state {
        State::Early => {
            m.insert("start_ts".into(), json!(0));
            m.insert("lifetime".into(), json!(x.lifetime));
            leg(m, 1, &x.caller);
        }
        State::Confirmed | State::ConfirmedNa => {
            m.insert("start_ts".into(), json!(x.start_ts));
            m.insert("lifetime".into(), json!(x.lifetime));
            let (c, e) = (&x.caller, &x.callee);
            m.insert("tag1".into(), json!(c.tag));
            m.insert("tag2".into(), json!(e.tag));
            m.insert("cseq1".into(), json!(c.cseq.to_string()));
            m.insert("cseq2".into(), json!(e.cseq.to_string()));
            m.insert("route_set1".into(), json!(c.route_set.join(",")));
            m.insert("route_set2".into(), json!(e.route_set.join(",")));
            m.insert("contact1".into(), json!(c.contact));
            m.insert("contact2".into(), json!(e.contact));
        }
        _ => {}
    }
}

/// The whole dialog (action 1), with its state's fields.
fn whole(x: &Dialog) -> Json {
    let mut m = Obj::new();
    ids(&mut m, UPDATE, x);
    m.insert("init_ts".into(), json!(x.init_ts));
    m.insert("callid".into(), json!(x.callid));
    m.insert("from_uri".into(), json!(x.from_uri));
    m.insert("to_uri".into(), json!(x.to_uri));
    m.insert("req_uri".into(), json!(x.req_uri));
    leg(&mut m, 1, &x.caller);
    if !x.vars.is_empty() {
        m.insert("vars".into(), json!(x.vars));
    }
    if !x.profiles.is_empty() {
        let list: Vec<Json> = x
            .profiles
            .iter()
            .map(|l| {
                if l.value.is_empty() {
                    json!({ "name": l.profile })
                } else {
                    json!({ "name": l.profile, "value": l.value })
                }
            })
            .collect();
        m.insert(
            "profiles".into(),
            json!(json!({ "profiles": list }).to_string()),
        );
    }
    if x.state == State::ConfirmedNa {
        // (Never sent as 3: a node learns of the 2xx at the ACK.)
        let mut early = x.clone();
        early.state = State::Early;
        state_fields(&mut m, &early);
    } else {
        state_fields(&mut m, x);
    }
    Json::Object(m)
}

fn text(o: &Obj, k: &str) -> String {
    o.get(k)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

fn leg_of(o: &Obj, n: u8) -> Leg {
    Leg {
        tag: text(o, &format!("tag{n}")),
        contact: text(o, &format!("contact{n}")),
        cseq: text(o, &format!("cseq{n}")).parse().unwrap_or(0),
        route_set: text(o, &format!("route_set{n}"))
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        socket: String::new(),
    }
}

impl Dlg {
    /// Binds dmq and registers the channel (after every `mod_init`).
    pub(crate) fn dmq_start(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        if params::get_int(&self.p.enable_dmq) == 0 {
            return Ok(());
        }
        let api = sr_sdk::bind::<DmqApi>(core, DMQ_API)
            .ok_or("dialog: enable_dmq needs the dmq module")?;
        let me = self.clone();
        let me2 = self.clone();
        api.register_peer(
            CHANNEL,
            Arc::new(move |core, msg, from| me.dmq_received(core, msg, from)),
            Some(Arc::new(move |core: &dyn Core| {
                if let Some(api) = me2.dmq.get() {
                    api.bcast(
                        core,
                        CHANNEL,
                        &json!({ "action": SYNC }).to_string(),
                        CONTENT_TYPE,
                    );
                }
            })),
        );
        let _ = self.dmq.set((*api).clone());
        let _ = self
            .dmq_core
            .set(core.handle().ok_or("dialog: no core handle")?);
        Ok(())
    }

    fn dmq_send(&self, body: &Json) {
        let (Some(api), Some(core)) = (self.dmq.get(), self.dmq_core.get().and_then(Weak::upgrade))
        else {
            return;
        };
        api.bcast(&*core, CHANNEL, &body.to_string(), CONTENT_TYPE);
    }

    /// A dialog made here, whole, once (its INVITE got its transaction).
    pub(crate) fn rep_create(&self, key: (u32, u32)) {
        if self.dmq.get().is_none() {
            return;
        }
        let body = match self.table().get_mut(key) {
            Some(x) if x.dflags & (DFLAG_REPLICATED | DFLAG_SENT) == 0 => {
                x.dflags |= DFLAG_SENT;
                whole(x)
            }
            _ => return,
        };
        self.dmq_send(&body);
    }

    /// A state change of a dialog made here (early, confirmed, ended).
    pub(crate) fn rep_state(&self, key: (u32, u32)) {
        if self.dmq.get().is_none() {
            return;
        }
        let body = match self.table().get(key) {
            Some(x) if x.dflags & (DFLAG_REPLICATED | DFLAG_SENT) == DFLAG_SENT => {
                let mut m = Obj::new();
                ids(&mut m, STATE, x);
                state_fields(&mut m, x);
                Json::Object(m)
            }
            _ => return,
        };
        self.dmq_send(&body);
    }

    /// A dialog made here is gone from the table.
    pub(crate) fn rep_removed(&self, x: &Dialog) {
        if self.dmq.get().is_none() || x.dflags & (DFLAG_REPLICATED | DFLAG_SENT) != DFLAG_SENT {
            return;
        }
        let mut m = Obj::new();
        ids(&mut m, REMOVE, x);
        m.insert("state".into(), json!(State::Deleted.num()));
        self.dmq_send(&Json::Object(m));
    }

    /// The profiles of a message (a JSON document in a string), those this
    /// server knows with the right kind of value.
    fn profiles_of(&self, o: &Obj) -> Vec<Link> {
        let Some(s) = o.get("profiles").and_then(Json::as_str) else {
            return Vec::new();
        };
        let Ok(doc) = sr_sdk::serde_json::from_str::<Json>(s) else {
            return Vec::new();
        };
        let list = doc
            .get("profiles")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for p in list.iter().filter_map(Json::as_object) {
            let name = text(p, "name");
            let value = p.get("value").and_then(Json::as_str);
            match (self.profiles().get(&name), value) {
                (Some(true), Some(v)) => out.push(Link {
                    profile: name,
                    value: v.to_string(),
                }),
                (Some(false), None) => out.push(Link {
                    profile: name,
                    value: String::new(),
                }),
                (None, _) => lm_err!("dialog: dmq: profile [{name}] not found"),
                _ => {}
            }
        }
        out
    }

    /// A message on the `dialog` channel.
    fn dmq_received(&self, core: &dyn Core, msg: &SipMsg, from: Option<&NodeUri>) -> PeerReply {
        let Ok(Json::Object(o)) = sr_sdk::serde_json::from_slice::<Json>(msg.msg().body()) else {
            return reply(400, "Bad Request");
        };
        let num = |k: &str| o.get(k).and_then(Json::as_i64).unwrap_or(0);
        let action = num("action");
        if action == SYNC {
            // This server's own dialogs (the others' come from their
            // owners), to the asker (to all when it is not a listed node).
            let mine: Vec<Json> = self
                .table()
                .all()
                .into_iter()
                .filter(|x| x.dflags & DFLAG_REPLICATED == 0 && x.state != State::Deleted)
                .map(whole)
                .collect();
            if let Some(api) = self.dmq.get() {
                for b in mine {
                    let b = b.to_string();
                    if !from.is_some_and(|n| api.send_to(core, n, CHANNEL, &b, CONTENT_TYPE)) {
                        api.bcast(core, CHANNEL, &b, CONTENT_TYPE);
                    }
                }
            }
            return reply(200, "OK");
        }
        if !matches!(action, UPDATE | STATE | REMOVE) {
            return reply(200, "OK");
        }
        let key = (
            u32::try_from(num("h_entry")).unwrap_or(u32::MAX),
            u32::try_from(num("h_id")).unwrap_or(0),
        );
        let state = match num("state") {
            2 => State::Early,
            3 => State::ConfirmedNa,
            4 => State::Confirmed,
            5 => State::Deleted,
            _ => State::Unconfirmed,
        };
        let mut t = self.table();
        // This server's own dialog under the same ids (another node's
        // copy of it, or ids that collide: give each node its own
        // h_id_start and h_id_step): left alone.
        if t.get(key).is_some_and(|x| x.dflags & DFLAG_REPLICATED == 0) {
            return reply(200, "OK");
        }
        if action == REMOVE {
            return match t.remove(key) {
                Some(_) => reply(200, "OK"),
                None => reply(500, "Server Internal Error"),
            };
        }
        if action == UPDATE {
            let callid = text(&o, "callid");
            if t.entry_of(&callid) != key.0 {
                lm_err!("dialog: dmq: inconsistent hash data from peer: make sure all nodes use the same hash size");
                return reply(500, "Server Internal Error");
            }
            let profiles = self.profiles_of(&o);
            let vars: BTreeMap<String, String> = o
                .get("vars")
                .and_then(Json::as_object)
                .map(|v| {
                    v.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            let old = t.get_mut(key).map(|x| {
                for (k, v) in vars.clone() {
                    x.vars.insert(k, v);
                }
                x.init_ts = u64::try_from(num("init_ts")).unwrap_or(x.init_ts);
                x.profiles.clone()
            });
            match old {
                Some(old) => {
                    for l in old {
                        t.unlink(key, &l.profile, Some(&l.value));
                    }
                    for l in profiles {
                        t.link(key, l);
                    }
                }
                None => {
                    if t.count(|_| true) >= MAX_RECEIVED {
                        lm_err!(
                            "dialog: dmq: {MAX_RECEIVED} dialogs kept, no more from other nodes"
                        );
                        return reply(500, "Server Internal Error");
                    }
                    let now = Instant::now();
                    let d = Dialog {
                        h_entry: key.0,
                        h_id: key.1,
                        state: State::Unconfirmed,
                        callid,
                        from_uri: text(&o, "from_uri"),
                        to_uri: text(&o, "to_uri"),
                        req_uri: text(&o, "req_uri"),
                        caller: leg_of(&o, 1),
                        callee: Leg::default(),
                        init_ts: u64::try_from(num("init_ts")).unwrap_or(0),
                        start_ts: 0,
                        end_ts: 0,
                        lifetime: 0,
                        deadline: None,
                        created: now,
                        ended: None,
                        sflags: 0,
                        dflags: DFLAG_REPLICATED,
                        toroute: String::new(),
                        profiles,
                        vars,
                        tm_cell: None,
                        answered_at: None,
                        closing: false,
                        mod_data: BTreeMap::new(),
                    };
                    if !t.insert_at(d, key) {
                        return reply(500, "Server Internal Error");
                    }
                }
            }
            if state == State::Unconfirmed {
                return reply(200, "OK");
            }
        }
        let Some(x) = t.get_mut(key) else {
            lm_err!("dialog: dmq: dialog [{}:{}] not found", key.0, key.1);
            return reply(500, "Server Internal Error");
        };
        if state.num() < x.state.num() {
            lm_notice!("dialog: dmq: ignoring backwards state change");
            return reply(200, "OK");
        }
        if action == STATE && matches!(state, State::Unconfirmed | State::ConfirmedNa) {
            lm_err!("dialog: dmq: unhandled state update {}", state.num());
            return reply(500, "Server Internal Error");
        }
        match state {
            State::Early | State::ConfirmedNa | State::Confirmed => {
                x.start_ts = u64::try_from(num("start_ts")).unwrap_or(0);
                x.lifetime = u32::try_from(num("lifetime"))
                    .unwrap_or(0)
                    .min(MAX_LIFETIME);
                x.caller = leg_of(&o, 1);
                x.state = state;
                if state != State::Early {
                    x.callee = leg_of(&o, 2);
                    let now = Instant::now();
                    x.answered_at = Some(now);
                    x.deadline = Some(now + Duration::from_secs(u64::from(x.lifetime)));
                }
            }
            State::Deleted => {
                x.end_ts = unix_now();
                t.end(key, Instant::now());
            }
            State::Unconfirmed => {}
        }
        reply(200, "OK")
    }
}
