//! Tables replicated over DMQ (`enable_dmq=1`, tables with
//! `dmqreplicate=1`), in Kamailio 5.6's JSON on the `htable` channel:
//! `{"action":2,"htname":"t","cname":"k","type":0,"intval":5,"mode":1}`
//! (set; `type` 2 with `strval` for text), 3 (a new lifetime, `intval`
//! seconds), 4 (delete), 5 and 6 (remove by regular expression or prefix,
//! `strval` the pattern, `mode` 0 on names, 1 on values) and 1 (send me
//! your items). The answer to 1 is `{"cells":[{"htname","cname","type",
//! "strval"|"intval","expire"}]}` with absolute expiry times (0: never),
//! in messages of about 60,000 bytes at most. Received changes are applied
//! without being sent on.

use crate::table::{Table, Val};
use crate::Htable;
use sr_mod_dmq::node::NodeUri;
use sr_mod_dmq::{DmqApi, PeerReply, DMQ_API};
use sr_sdk::prelude::*;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The channel.
pub const CHANNEL: &str = "htable";
const CONTENT_TYPE: &str = "application/json";
const SYNC: i64 = 1;
const SET: i64 = 2;
const SET_EXPIRE: i64 = 3;
const DELETE: i64 = 4;
const RM_RE: i64 = 5;
const RM_SW: i64 = 6;
/// Kamailio's `AVP_VAL_STR`, the `type` of a text value.
const TYPE_STR: i64 = 2;
/// Where a sync message is cut.
const GROUP_MAX: usize = 60000;

fn reply(code: u16, reason: &str) -> PeerReply {
    PeerReply {
        code,
        reason: reason.into(),
        body: None,
    }
}

fn value_json(m: &mut JsonMap<String, Json>, v: &Val) {
    match v {
        Val::Int(i) => {
            m.insert("type".into(), json!(0));
            m.insert("intval".into(), json!(i));
        }
        Val::Str(s) => {
            m.insert("type".into(), json!(TYPE_STR));
            m.insert("strval".into(), json!(s));
        }
    }
}

impl Htable {
    /// Binds dmq and registers the channel (after every `mod_init`, so
    /// htable may be loaded before dmq).
    pub(crate) fn dmq_start(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        if params::get_int(&self.dmq) == 0 {
            return Ok(());
        }
        let api = sr_sdk::bind::<DmqApi>(core, DMQ_API)
            .ok_or("htable: enable_dmq needs the dmq module")?;
        let _ = self
            .core
            .set(core.handle().ok_or("htable: no core handle")?);
        let me = self.clone();
        let on_init: Option<sr_mod_dmq::InitFn> =
            (params::get_int(&self.dmq_init_sync) != 0).then(|| {
                let me2 = self.clone();
                Arc::new(move |core: &dyn Core| {
                    if let Some(api) = me2.dmq_api.get() {
                        api.bcast(
                            core,
                            CHANNEL,
                            &json!({ "action": SYNC }).to_string(),
                            CONTENT_TYPE,
                        );
                    }
                }) as sr_mod_dmq::InitFn
            });
        api.register_peer(
            CHANNEL,
            Arc::new(move |core, msg, from| me.dmq_received(core, msg, from)),
            on_init,
        );
        let _ = self.dmq_api.set((*api).clone());
        Ok(())
    }

    /// Sends `m` to the other nodes when `t` is replicated.
    fn replicate(&self, t: &Table, m: JsonMap<String, Json>) {
        if !t.dmqreplicate {
            return;
        }
        let (Some(api), Some(core)) = (self.dmq_api.get(), self.core.get().and_then(Weak::upgrade))
        else {
            return;
        };
        api.bcast(&*core, CHANNEL, &Json::Object(m).to_string(), CONTENT_TYPE);
    }

    fn head(action: i64, t: &Table, key: Option<&str>) -> JsonMap<String, Json> {
        let mut m = JsonMap::new();
        m.insert("action".into(), json!(action));
        m.insert("htname".into(), json!(t.name));
        if let Some(k) = key {
            m.insert("cname".into(), json!(k));
        }
        m
    }

    /// A value set (`$sht`, `$shtinc`, `sht_setx*`, RPC).
    pub(crate) fn rep_set(&self, t: &Table, key: &str, v: &Val) {
        if !t.dmqreplicate || self.dmq_api.get().is_none() {
            return;
        }
        let mut m = Self::head(SET, t, Some(key));
        value_json(&mut m, v);
        m.insert("mode".into(), json!(1));
        self.replicate(t, m);
    }

    /// A new lifetime (`$shtex`, the expiry of `sht_setx*`, RPC).
    pub(crate) fn rep_expire(&self, t: &Table, key: &str, secs: u64) {
        if !t.dmqreplicate || self.dmq_api.get().is_none() {
            return;
        }
        let mut m = Self::head(SET_EXPIRE, t, Some(key));
        m.insert("type".into(), json!(0));
        m.insert("intval".into(), json!(secs));
        m.insert("mode".into(), json!(0));
        self.replicate(t, m);
    }

    /// An item removed (`$sht = $null`, `sht_rm`, RPC).
    pub(crate) fn rep_delete(&self, t: &Table, key: &str) {
        if !t.dmqreplicate || self.dmq_api.get().is_none() {
            return;
        }
        let mut m = Self::head(DELETE, t, Some(key));
        m.insert("mode".into(), json!(0));
        self.replicate(t, m);
    }

    /// Items removed by a pattern (`re` or `sw`) on names or values.
    pub(crate) fn rep_remove(&self, t: &Table, op: &str, pattern: &str, on_value: bool) {
        if !t.dmqreplicate || self.dmq_api.get().is_none() {
            return;
        }
        let action = if op == "sw" { RM_SW } else { RM_RE };
        let mut m = Self::head(action, t, None);
        m.insert("type".into(), json!(TYPE_STR));
        m.insert("strval".into(), json!(pattern));
        m.insert("mode".into(), json!(i32::from(on_value)));
        self.replicate(t, m);
    }

    /// A message on the `htable` channel.
    fn dmq_received(&self, core: &dyn Core, msg: &SipMsg, from: Option<&NodeUri>) -> PeerReply {
        let body = msg.msg().body();
        let o = match sr_sdk::serde_json::from_slice::<Json>(body) {
            Ok(Json::Object(o)) if !o.is_empty() => o,
            _ => return reply(400, "Bad Request"),
        };
        if let Some(cells) = o.get("cells") {
            self.apply_cells(cells);
            return reply(200, "OK");
        }
        const KNOWN: [&str; 7] = [
            "action", "htname", "cname", "type", "strval", "intval", "mode",
        ];
        if let Some(k) = o.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            lm_err!("htable: dmq: unrecognized field '{k}' in json object");
            return reply(400, "Bad Request");
        }
        let action = o.get("action").and_then(Json::as_i64).unwrap_or(0);
        if action == SYNC {
            self.send_cells(core, from);
            return reply(200, "OK");
        }
        let Some(t) = o
            .get("htname")
            .and_then(Json::as_str)
            .and_then(|n| self.table(n))
        else {
            lm_err!("htable: dmq: unable to get table");
            return reply(500, "Server Internal Error");
        };
        let cname = o.get("cname").and_then(Json::as_str);
        let now = Instant::now();
        let int = o.get("intval").and_then(Json::as_i64).unwrap_or(0);
        let text = || o.get("strval").and_then(Json::as_str).unwrap_or_default();
        let is_str = o.get("type").and_then(Json::as_i64).unwrap_or(0) & TYPE_STR != 0;
        match (action, cname) {
            (SET, Some(k)) => {
                let v = if is_str {
                    Val::Str(text().to_string())
                } else {
                    Val::Int(int)
                };
                t.set(k, v, None, now);
            }
            (SET_EXPIRE, Some(k)) => {
                t.set_expire(k, u64::try_from(int).unwrap_or(0), now);
            }
            (DELETE, Some(k)) => {
                t.remove(k, now);
            }
            (RM_RE | RM_SW, _) => {
                let op = if action == RM_SW { "sw" } else { "re" };
                let on_value = o.get("mode").and_then(Json::as_i64).unwrap_or(0) == 1;
                let m = match crate::Matcher::new(op, text()) {
                    Ok(m) => m,
                    Err(e) => {
                        lm_err!("htable: dmq: {e}");
                        return reply(500, "Server Internal Error");
                    }
                };
                t.remove_where(now, |n, val| m.item(on_value, n, val));
            }
            _ => {
                lm_err!("htable: dmq: unrecognized action {action}");
                return reply(500, "Server Internal Error");
            }
        }
        reply(200, "OK")
    }

    /// Stores the items of a sync answer: absolute expiry times become
    /// lifetimes; a time passed (or 0) gives the table's own lifetime.
    fn apply_cells(&self, cells: &Json) {
        let Some(cells) = cells.as_array() else {
            return;
        };
        let (now, unix) = (Instant::now(), sr_sdk::db::now());
        for c in cells.iter().filter_map(Json::as_object) {
            let (Some(name), Some(key)) = (
                c.get("htname").and_then(Json::as_str),
                c.get("cname")
                    .and_then(Json::as_str)
                    .filter(|k| !k.is_empty()),
            ) else {
                continue;
            };
            let Some(t) = self.table(name) else {
                lm_warn!("htable: dmq: unable to get table {name}");
                continue;
            };
            let v = if c.get("type").and_then(Json::as_i64).unwrap_or(0) & TYPE_STR != 0 {
                Val::Str(
                    c.get("strval")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )
            } else {
                Val::Int(c.get("intval").and_then(Json::as_i64).unwrap_or(0))
            };
            let left = c.get("expire").and_then(Json::as_i64).unwrap_or(0) - unix;
            let life =
                (t.autoexpire.is_some() && left > 0).then(|| Duration::from_secs(left as u64));
            t.set(key, v, life, now);
        }
    }

    /// Every item of the replicated tables to `to` (every active node
    /// when the asker is not a listed node).
    fn send_cells(&self, core: &dyn Core, to: Option<&NodeUri>) {
        let Some(api) = self.dmq_api.get() else {
            return;
        };
        let send = |cells: Vec<Json>| {
            let body = json!({ "cells": cells }).to_string();
            let sent = to.is_some_and(|n| api.send_to(core, n, CHANNEL, &body, CONTENT_TYPE));
            if !sent {
                api.bcast(core, CHANNEL, &body, CONTENT_TYPE);
            }
        };
        let (now, unix) = (Instant::now(), sr_sdk::db::now());
        let tables: Vec<Arc<Table>> = self
            .tables
            .read()
            .map(|m| m.values().filter(|t| t.dmqreplicate).cloned().collect())
            .unwrap_or_default();
        let mut group = Vec::new();
        let mut size = 12;
        for t in tables {
            for (_, key, val, expires) in t.entries(now) {
                let exp = expires.map_or(0, |e| {
                    unix + e.saturating_duration_since(now).as_secs() as i64
                });
                let mut m = JsonMap::new();
                m.insert("htname".into(), json!(t.name));
                m.insert("cname".into(), json!(key));
                value_json(&mut m, &val);
                m.insert("expire".into(), json!(exp));
                let cell = Json::Object(m);
                size += cell.to_string().len() + 1;
                group.push(cell);
                if size >= GROUP_MAX {
                    send(std::mem::take(&mut group));
                    size = 12;
                }
            }
        }
        send(group);
    }
}
