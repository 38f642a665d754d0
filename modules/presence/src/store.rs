//! What presence keeps: publications (Kamailio's `presentity` table),
//! subscriptions (`active_watchers`) and watchers' authorisation states
//! (`watchers`), in memory, each change written through to the database
//! when the module has one, and read back from it at start.

use crate::events::Status;
use sr_sdk::db::{Cond, DbOp, DbPool, DbValue};
use std::collections::HashMap;
use std::sync::Arc;

/// A publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentity {
    /// The user part of the presentity's URI.
    pub user: String,
    /// Its host part.
    pub domain: String,
    /// The event package.
    pub event: String,
    /// The entity tag the publisher refreshes it by.
    pub etag: String,
    /// When it expires (Unix time).
    pub expires: i64,
    /// When it was last published or refreshed (Unix time).
    pub received_time: i64,
    /// The body.
    pub body: String,
    /// `handle_publish`'s sender URI, else empty.
    pub sender: String,
    /// Order of making, kept when refreshed: among publications of one
    /// second the later made is the newer (as rows come from Kamailio's
    /// table).
    pub seq: u64,
}

/// `sip:user@domain`, or `sip:domain` without a user (Kamailio's
/// `uandd_to_uri`).
pub fn uri(user: &str, domain: &str) -> String {
    if user.is_empty() {
        format!("sip:{domain}")
    } else {
        format!("sip:{user}@{domain}")
    }
}

impl Presentity {
    /// `sip:user@domain`.
    pub fn uri(&self) -> String {
        uri(&self.user, &self.domain)
    }
}

/// A subscription: the dialog a SUBSCRIBE made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// The presentity's URI (`sip:user@host` of the Request-URI).
    pub pres_uri: String,
    /// The event package.
    pub event: String,
    /// The Event header's `id`.
    pub event_id: String,
    /// The To URI's user part.
    pub to_user: String,
    /// The To URI's host part.
    pub to_domain: String,
    /// The From URI's user part.
    pub from_user: String,
    /// The From URI's host part.
    pub from_domain: String,
    /// The watcher's user part (the From's, or `handle_subscribe`'s URI).
    pub watcher_user: String,
    /// The watcher's host part.
    pub watcher_domain: String,
    /// Our tag.
    pub to_tag: String,
    /// The subscriber's tag.
    pub from_tag: String,
    /// The dialog's Call-ID.
    pub callid: String,
    /// Kamailio's `local_cseq`: the next NOTIFY has this plus 2.
    pub local_cseq: u32,
    /// The subscriber's last CSeq.
    pub remote_cseq: u32,
    /// The subscriber's Contact URI.
    pub contact: String,
    /// The SUBSCRIBE's Record-Route values, comma-joined.
    pub record_route: String,
    /// When it expires (Unix time).
    pub expires: i64,
    /// Its state.
    pub status: Status,
    /// Why it is not active, when it is not.
    pub reason: String,
    /// NOTIFYs sent (watcher-info documents carry it).
    pub version: u32,
    /// The socket the SUBSCRIBE came in on (`udp:127.0.0.1:5060`).
    pub socket: String,
    /// Our Contact URI in this dialog.
    pub local_contact: String,
    /// The subscriber's User-Agent.
    pub user_agent: String,
    /// Order of making (watchers are told in this order).
    pub seq: u64,
}

/// A subscription's key: Call-ID, our tag, the subscriber's tag.
pub type SubKey = (String, String, String);

impl Subscription {
    /// Its key.
    pub fn key(&self) -> SubKey {
        (
            self.callid.clone(),
            self.to_tag.clone(),
            self.from_tag.clone(),
        )
    }

    /// The watcher's URI.
    pub fn watcher_uri(&self) -> String {
        uri(&self.watcher_user, &self.watcher_domain)
    }
}

/// A watcher's authorisation key: presentity URI, watcher user, watcher
/// domain, event.
pub type WatcherKey = (String, String, String, String);

/// The tables.
#[derive(Debug, Default)]
pub struct Store {
    /// Publications, in the order they were made.
    pub pres: Vec<Presentity>,
    /// Subscriptions.
    pub subs: HashMap<SubKey, Subscription>,
    /// Watchers' states: status and the time the row was made.
    pub watchers: HashMap<WatcherKey, (Status, i64)>,
    seq: u64,
}

/// The database side (`db_url`): written to after the tables' lock is
/// released, so that a slow or unreachable server holds up only the
/// request that writes.
#[derive(Debug, Default)]
pub struct Db {
    /// The connections, when `db_url` is set.
    pub pool: Option<Arc<DbPool>>,
    /// Whether subscriptions are written (`subs_db_mode` not 0).
    pub subs: bool,
}

/// How far a subscription's CSeq is moved on when it is read back at start
/// (NOTIFYs do not write it each time; a CSeq must only grow).
pub const CSEQ_MARGIN_AT_LOAD: u32 = 100;

/// The table names.
#[derive(Debug, Clone)]
pub struct Tables {
    /// `presentity_table`.
    pub presentity: String,
    /// `active_watchers_table`.
    pub active_watchers: String,
    /// `watchers_table`.
    pub watchers: String,
}

fn int(v: impl Into<i64>) -> DbValue {
    DbValue::Int(v.into() as i32)
}

fn s(v: &str) -> DbValue {
    DbValue::str(v)
}

impl Store {
    /// The next publication order number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The live publications of a presentity for an event (and the one
    /// with entity tag `also`, live or not), newest first: by the time they
    /// were published, then by the order they were made.
    pub fn bodies(
        &self,
        user: &str,
        domain: &str,
        event: &str,
        now: i64,
        also: Option<&str>,
    ) -> Vec<&Presentity> {
        let mut v: Vec<&Presentity> = self
            .pres
            .iter()
            .filter(|p| p.user == user && p.domain == domain && p.event == event)
            .filter(|p| p.expires > now || Some(p.etag.as_str()) == also)
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse((p.received_time, p.seq)));
        v
    }

    /// The publication with this entity tag.
    pub fn find_pres(&self, user: &str, domain: &str, event: &str, etag: &str) -> Option<usize> {
        self.pres.iter().position(|p| {
            p.user == user && p.domain == domain && p.event == event && p.etag == etag
        })
    }

    /// The subscriptions to a presentity for an event.
    pub fn watchers_of(&self, pres_uri: &str, event: &str) -> Vec<Subscription> {
        let mut v: Vec<Subscription> = self
            .subs
            .values()
            .filter(|s| s.pres_uri == pres_uri && s.event == event)
            .cloned()
            .collect();
        v.sort_by_key(|s| s.seq);
        v
    }
}

impl Db {
    /// Writes a new publication.
    pub fn insert_pres(&self, t: &Tables, p: &Presentity) {
        let Some(db) = &self.pool else { return };
        let r = db.with(|c| {
            c.insert(
                &t.presentity,
                &[
                    ("username", s(&p.user)),
                    ("domain", s(&p.domain)),
                    ("event", s(&p.event)),
                    ("etag", s(&p.etag)),
                    ("expires", int(p.expires)),
                    ("received_time", int(p.received_time)),
                    ("body", DbValue::Blob(p.body.as_bytes().to_vec())),
                    ("sender", s(&p.sender)),
                    ("priority", int(0)),
                ],
            )
        });
        if let Err(e) = r {
            sr_sdk::lm_err!("presence: cannot store the publication of {}: {e}", p.uri());
        }
    }

    /// Rewrites a publication known by its old entity tag.
    pub fn update_pres(&self, t: &Tables, old_etag: &str, p: &Presentity) {
        let Some(db) = &self.pool else { return };
        let r = db.with(|c| {
            c.update(
                &t.presentity,
                &pres_conds(p, old_etag),
                &[
                    ("etag", s(&p.etag)),
                    ("expires", int(p.expires)),
                    ("received_time", int(p.received_time)),
                    ("body", DbValue::Blob(p.body.as_bytes().to_vec())),
                    ("sender", s(&p.sender)),
                ],
            )
        });
        if let Err(e) = r {
            sr_sdk::lm_err!(
                "presence: cannot update the publication of {}: {e}",
                p.uri()
            );
        }
    }

    /// Deletes a publication.
    pub fn delete_pres(&self, t: &Tables, p: &Presentity) {
        let Some(db) = &self.pool else { return };
        if let Err(e) = db.with(|c| c.delete(&t.presentity, &pres_conds(p, &p.etag))) {
            sr_sdk::lm_err!(
                "presence: cannot delete the publication of {}: {e}",
                p.uri()
            );
        }
    }

    /// Writes a subscription (inserted, or replaced when it exists).
    pub fn save_sub(&self, t: &Tables, sub: &Subscription) {
        let Some(db) = self.pool.as_ref().filter(|_| self.subs) else {
            return;
        };
        let keys = sub_conds(sub);
        let values = sub_values(sub);
        let r = db.with(|c| {
            let n = c.update(&t.active_watchers, &keys, &values)?;
            if n == 0 {
                let mut all: Vec<(&str, DbValue)> = vec![
                    ("callid", s(&sub.callid)),
                    ("to_tag", s(&sub.to_tag)),
                    ("from_tag", s(&sub.from_tag)),
                ];
                all.extend(values.iter().cloned());
                c.insert(&t.active_watchers, &all)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            sr_sdk::lm_err!(
                "presence: cannot store the subscription {}: {e}",
                sub.callid
            );
        }
    }

    /// Deletes a subscription.
    pub fn delete_sub(&self, t: &Tables, sub: &Subscription) {
        let Some(db) = self.pool.as_ref().filter(|_| self.subs) else {
            return;
        };
        if let Err(e) = db.with(|c| c.delete(&t.active_watchers, &sub_conds(sub))) {
            sr_sdk::lm_err!(
                "presence: cannot delete the subscription {}: {e}",
                sub.callid
            );
        }
    }

    /// Writes a watcher's state.
    pub fn save_watcher(&self, t: &Tables, k: &WatcherKey, status: Status, at: i64) {
        let Some(db) = &self.pool else { return };
        let r = db.with(|c| {
            c.replace(
                &t.watchers,
                &[
                    ("presentity_uri", s(&k.0)),
                    ("watcher_username", s(&k.1)),
                    ("watcher_domain", s(&k.2)),
                    ("event", s(&k.3)),
                    ("status", int(status as i64)),
                    ("reason", s("")),
                    ("inserted_time", int(at)),
                ],
            )
        });
        if let Err(e) = r {
            sr_sdk::lm_err!("presence: cannot store the watcher {}@{}: {e}", k.1, k.2);
        }
    }

    /// Reads what the database holds: live publications, subscriptions
    /// and watchers' states.
    pub fn load(&self, st: &mut Store, t: &Tables, now: i64) -> Result<(), String> {
        let Some(db) = self.pool.clone() else {
            return Ok(());
        };
        let live = [Cond::new("expires", DbOp::Gt, int(now))];
        let rows = db
            .with(|c| {
                c.query(
                    &t.presentity,
                    &live,
                    &[
                        "username",
                        "domain",
                        "event",
                        "etag",
                        "expires",
                        "received_time",
                        "body",
                        "sender",
                    ],
                    None,
                )
            })
            .map_err(|e| format!("presence: cannot read {}: {e}", t.presentity))?;
        for i in 0..rows.len() {
            let g = |n: &str| rows.get(i, n).as_string().unwrap_or_default();
            let seq = st.next_seq();
            st.pres.push(Presentity {
                user: g("username"),
                domain: g("domain"),
                event: g("event"),
                etag: g("etag"),
                expires: rows.get(i, "expires").as_i64().unwrap_or(0),
                received_time: rows.get(i, "received_time").as_i64().unwrap_or(0),
                body: g("body"),
                sender: g("sender"),
                seq,
            });
        }
        if self.subs {
            let cols = SUB_COLS;
            let rows = db
                .with(|c| c.query(&t.active_watchers, &live, cols, None))
                .map_err(|e| format!("presence: cannot read {}: {e}", t.active_watchers))?;
            for i in 0..rows.len() {
                let g = |n: &str| rows.get(i, n).as_string().unwrap_or_default();
                let n = |c: &str| rows.get(i, c).as_i64().unwrap_or(0);
                let sub = Subscription {
                    pres_uri: g("presentity_uri"),
                    event: g("event"),
                    event_id: g("event_id"),
                    to_user: g("to_user"),
                    to_domain: g("to_domain"),
                    from_user: g("from_user"),
                    from_domain: g("from_domain"),
                    watcher_user: g("watcher_username"),
                    watcher_domain: g("watcher_domain"),
                    to_tag: g("to_tag"),
                    from_tag: g("from_tag"),
                    callid: g("callid"),
                    local_cseq: (n("local_cseq").clamp(0, i64::from(i32::MAX)) as u32)
                        .saturating_add(CSEQ_MARGIN_AT_LOAD),
                    remote_cseq: n("remote_cseq").clamp(0, i64::from(u32::MAX)) as u32,
                    contact: g("contact"),
                    record_route: g("record_route"),
                    expires: n("expires"),
                    status: Status::from_i64(n("status")),
                    reason: g("reason"),
                    version: n("version").clamp(0, i64::from(i32::MAX)) as u32,
                    socket: g("socket_info"),
                    local_contact: g("local_contact"),
                    user_agent: g("user_agent"),
                    seq: 0,
                };
                let seq = st.next_seq();
                st.subs.insert(sub.key(), Subscription { seq, ..sub });
            }
        }
        let rows = db
            .with(|c| {
                c.query(
                    &t.watchers,
                    &[],
                    &[
                        "presentity_uri",
                        "watcher_username",
                        "watcher_domain",
                        "event",
                        "status",
                        "inserted_time",
                    ],
                    None,
                )
            })
            .map_err(|e| format!("presence: cannot read {}: {e}", t.watchers))?;
        for i in 0..rows.len() {
            let g = |n: &str| rows.get(i, n).as_string().unwrap_or_default();
            st.watchers.insert(
                (
                    g("presentity_uri"),
                    g("watcher_username"),
                    g("watcher_domain"),
                    g("event"),
                ),
                (
                    Status::from_i64(rows.get(i, "status").as_i64().unwrap_or(2)),
                    rows.get(i, "inserted_time").as_i64().unwrap_or(0),
                ),
            );
        }
        Ok(())
    }
}

const SUB_COLS: &[&str] = &[
    "presentity_uri",
    "event",
    "event_id",
    "to_user",
    "to_domain",
    "from_user",
    "from_domain",
    "watcher_username",
    "watcher_domain",
    "to_tag",
    "from_tag",
    "callid",
    "local_cseq",
    "remote_cseq",
    "contact",
    "record_route",
    "expires",
    "status",
    "reason",
    "version",
    "socket_info",
    "local_contact",
    "user_agent",
];

fn pres_conds(p: &Presentity, etag: &str) -> Vec<Cond> {
    vec![
        Cond::eq("username", s(&p.user)),
        Cond::eq("domain", s(&p.domain)),
        Cond::eq("event", s(&p.event)),
        Cond::eq("etag", s(etag)),
    ]
}

fn sub_conds(sub: &Subscription) -> Vec<Cond> {
    vec![
        Cond::eq("callid", s(&sub.callid)),
        Cond::eq("to_tag", s(&sub.to_tag)),
        Cond::eq("from_tag", s(&sub.from_tag)),
    ]
}

fn sub_values(sub: &Subscription) -> Vec<(&'static str, DbValue)> {
    vec![
        ("presentity_uri", s(&sub.pres_uri)),
        ("watcher_username", s(&sub.watcher_user)),
        ("watcher_domain", s(&sub.watcher_domain)),
        ("to_user", s(&sub.to_user)),
        ("to_domain", s(&sub.to_domain)),
        ("event", s(&sub.event)),
        ("event_id", s(&sub.event_id)),
        ("local_cseq", int(i64::from(sub.local_cseq))),
        ("remote_cseq", int(i64::from(sub.remote_cseq))),
        ("contact", s(&sub.contact)),
        ("record_route", s(&sub.record_route)),
        ("expires", int(sub.expires)),
        ("status", int(sub.status as i64)),
        ("reason", s(&sub.reason)),
        ("version", int(i64::from(sub.version))),
        ("socket_info", s(&sub.socket)),
        ("local_contact", s(&sub.local_contact)),
        ("from_user", s(&sub.from_user)),
        ("from_domain", s(&sub.from_domain)),
        ("updated", int(-1)),
        ("updated_winfo", int(-1)),
        ("flags", int(0)),
        ("user_agent", s(&sub.user_agent)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(etag: &str, rt: i64, seq: u64, exp: i64) -> Presentity {
        Presentity {
            user: "a".into(),
            domain: "d".into(),
            event: "presence".into(),
            etag: etag.into(),
            expires: exp,
            received_time: rt,
            body: etag.into(),
            sender: String::new(),
            seq,
        }
    }

    #[test]
    fn bodies_come_newest_first_and_live_only() {
        let st = Store {
            pres: vec![
                p("e1", 10, 1, 100),
                p("e2", 12, 2, 100),
                p("e3", 12, 3, 100),
                p("e4", 20, 4, 50),
            ],
            ..Store::default()
        };
        let got: Vec<&str> = st
            .bodies("a", "d", "presence", 60, None)
            .iter()
            .map(|p| p.etag.as_str())
            .collect();
        assert_eq!(got, ["e3", "e2", "e1"]);
        assert_eq!(st.find_pres("a", "d", "presence", "e2"), Some(1));
        assert_eq!(st.find_pres("a", "d", "dialog", "e2"), None);
    }
}
