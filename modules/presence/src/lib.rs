//! Module `presence`: a presence server (Kamailio's presence module).
//!
//! `handle_publish()` keeps what PUBLISH requests publish (RFC 3903:
//! entity tags, refreshes, changes, removals, expiry), `handle_subscribe()`
//! keeps subscriptions (RFC 6665 dialogs: refresh, end, fetch) and both
//! send NOTIFY requests with the presentity's state to its watchers.
//! Event packages come from other modules through [`events::PresenceApi`]
//! (presence_xml adds `presence`, `presence.winfo` and `xcap-diff`).
//! Publications, subscriptions and watchers' states are kept in memory
//! and, with `db_url`, written through to Kamailio's `presentity`,
//! `active_watchers` and `watchers` tables and read back at start.
#![forbid(unsafe_code)]

pub mod common;
pub mod events;
pub mod funcs;
pub mod notify;
pub mod publish;
pub mod pv;
pub mod store;
pub mod subscribe;

use events::PresenceApi;
use notify::NotifyTag;
use sr_mod_tm::local::LocalRequests;
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::time::Duration;
use store::{Db, Store, Tables};

/// The module's parameters (Kamailio's names and defaults).
#[derive(Debug)]
pub struct Params {
    /// `db_url`.
    pub db_url: Arc<RwLock<String>>,
    /// `presentity_table`.
    pub presentity_table: Arc<RwLock<String>>,
    /// `active_watchers_table`.
    pub active_watchers_table: Arc<RwLock<String>>,
    /// `watchers_table`.
    pub watchers_table: Arc<RwLock<String>>,
    /// `clean_period`, seconds (0: no cleaning of publications).
    pub clean_period: Arc<AtomicI64>,
    /// `db_update_period`, seconds: how often expired subscriptions end.
    pub db_update_period: Arc<AtomicI64>,
    /// `expires_offset`, seconds.
    pub expires_offset: Arc<AtomicI64>,
    /// `max_expires`, seconds.
    pub max_expires: Arc<AtomicI64>,
    /// `min_expires`, seconds.
    pub min_expires: Arc<AtomicI64>,
    /// `min_expires_action`: 1 refuse (423), 2 raise.
    pub min_expires_action: Arc<AtomicI64>,
    /// `server_address`: our Contact.
    pub server_address: Arc<RwLock<String>>,
    /// `subs_db_mode`: 0 keeps subscriptions out of the database.
    pub subs_db_mode: Arc<AtomicI64>,
    /// `publ_cache`.
    pub publ_cache: Arc<AtomicI64>,
    /// `timeout_rm_subs`.
    pub timeout_rm_subs: Arc<AtomicI64>,
    /// `send_fast_notify`.
    pub send_fast_notify: Arc<AtomicI64>,
    /// `subs_respond_200`.
    pub subs_respond_200: Arc<AtomicI64>,
    /// `cseq_offset`.
    pub cseq_offset: Arc<AtomicI64>,
    /// `force_delete`: expired publications go without NOTIFY.
    pub force_delete: Arc<AtomicI64>,
}

impl Default for Params {
    fn default() -> Self {
        use params::{int_cell as i, str_cell as s};
        Params {
            db_url: s(""),
            presentity_table: s("presentity"),
            active_watchers_table: s("active_watchers"),
            watchers_table: s("watchers"),
            clean_period: i(100),
            db_update_period: i(100),
            expires_offset: i(0),
            max_expires: i(3600),
            min_expires: i(0),
            min_expires_action: i(1),
            server_address: s(""),
            subs_db_mode: i(2),
            publ_cache: i(1),
            timeout_rm_subs: i(1),
            send_fast_notify: i(1),
            subs_respond_200: i(1),
            cseq_offset: i(0),
            force_delete: i(0),
        }
    }
}

impl Params {
    /// `max_expires`.
    pub fn max_expires(&self) -> i64 {
        params::get_int(&self.max_expires).max(0)
    }
    /// `min_expires` (at most `max_expires`).
    pub fn min_expires(&self) -> i64 {
        params::get_int(&self.min_expires).clamp(0, self.max_expires())
    }
    /// `min_expires_action`.
    pub fn min_expires_action(&self) -> i64 {
        params::get_int(&self.min_expires_action)
    }
    /// `expires_offset`.
    pub fn expires_offset(&self) -> i64 {
        params::get_int(&self.expires_offset).max(0)
    }
    /// `server_address`.
    pub fn server_address(&self) -> String {
        params::get_str(&self.server_address)
    }
    /// `timeout_rm_subs`.
    pub fn timeout_rm_subs(&self) -> bool {
        params::get_int(&self.timeout_rm_subs) != 0
    }
    /// `send_fast_notify`.
    pub fn send_fast_notify(&self) -> bool {
        params::get_int(&self.send_fast_notify) != 0
    }
    /// `subs_respond_200`.
    pub fn respond_200(&self) -> bool {
        params::get_int(&self.subs_respond_200) != 0
    }
    /// `cseq_offset`.
    pub fn cseq_offset(&self) -> i64 {
        params::get_int(&self.cseq_offset)
    }
}

/// The module's state.
pub struct Presence {
    /// Parameters.
    pub p: Params,
    /// The event packages.
    pub api: Arc<PresenceApi>,
    store: Mutex<Store>,
    db: OnceLock<Db>,
    tables: OnceLock<Tables>,
    tm: OnceLock<Arc<TmApi>>,
    core: OnceLock<Weak<dyn Core>>,
    /// The NOTIFYs in flight.
    pub notifies: LocalRequests<NotifyTag>,
    /// Replies through tm or sl.
    pub replier: sr_mod_sl::Replier,
    /// When the module started (Unix time), for entity tags.
    pub startup: i64,
    counter: AtomicU64,
}

impl Default for Presence {
    fn default() -> Self {
        Presence {
            p: Params::default(),
            api: Arc::new(PresenceApi::default()),
            store: Mutex::new(Store::default()),
            db: OnceLock::new(),
            tables: OnceLock::new(),
            tm: OnceLock::new(),
            core: OnceLock::new(),
            notifies: LocalRequests::new("pres"),
            replier: sr_mod_sl::Replier::default(),
            startup: sr_sdk::db::now(),
            counter: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presence")
    }
}

impl Presence {
    /// The tables, locked.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The database side (nothing written without `db_url`).
    pub fn db(&self) -> &Db {
        self.db.get_or_init(Db::default)
    }

    /// The table names.
    pub fn tables(&self) -> &Tables {
        self.tables.get_or_init(|| Tables {
            presentity: params::get_str(&self.p.presentity_table),
            active_watchers: params::get_str(&self.p.active_watchers_table),
            watchers: params::get_str(&self.p.watchers_table),
        })
    }

    /// tm's API (bound at `mod_init`).
    pub fn tm(&self) -> Option<&Arc<TmApi>> {
        self.tm.get()
    }

    /// The core, for timers and RPC handlers.
    pub fn core(&self) -> Option<Arc<dyn Core>> {
        self.core.get()?.upgrade()
    }

    /// The next request count (entity tags carry it).
    pub fn next_counter(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a request that makes no entity tag (a SUBSCRIBE), as
    /// Kamailio's counter does.
    pub fn counter_tick(&self) {
        self.counter.fetch_add(1, Ordering::Relaxed);
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        for (name, v, ok) in [
            ("subs_db_mode", params::get_int(&self.p.subs_db_mode), 0..=3),
            ("publ_cache", params::get_int(&self.p.publ_cache), 0..=2),
            (
                "min_expires_action",
                params::get_int(&self.p.min_expires_action),
                1..=2,
            ),
        ] {
            if !ok.contains(&v) {
                return Err(format!("presence: {name} {v} is out of range"));
            }
        }
        let tm = bind::<TmApi>(core, TM_API)
            .ok_or("presence needs the tm module (load tm before presence)")?;
        let _ = self.tm.set(tm);
        let url = params::get_str(&self.p.db_url);
        let mut db = Db {
            pool: None,
            subs: params::get_int(&self.p.subs_db_mode) != 0,
        };
        if !url.is_empty() {
            let pool = sr_sdk::db::DbPool::open(core, &url)
                .map_err(|e| format!("presence: db_url: {e}"))?;
            db.pool = Some(Arc::new(pool));
        }
        let t = self.tables().clone();
        db.load(&mut self.store(), &t, sr_sdk::db::now())?;
        let _ = self.db.set(db);
        let handle = core
            .handle()
            .ok_or("presence: no core handle for its timers")?;
        let _ = self.core.set(handle.clone());
        // Expiry runs on a thread of its own, not on the core's timer
        // thread that tm's retransmissions share: ending a subscription
        // sends a NOTIFY, which may wait for a TCP connection or the
        // database.
        let clean = params::get_int(&self.p.clean_period).max(0) as u64;
        let upd = params::get_int(&self.p.db_update_period).max(1) as u64;
        let pr = self.clone();
        let h = handle.clone();
        std::thread::Builder::new()
            .name("presence-timer".into())
            .spawn(move || {
                let mut tick: u64 = 0;
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let Some(core) = h.upgrade() else {
                        break;
                    };
                    if core.shutting_down() {
                        break;
                    }
                    tick += 1;
                    let now = sr_sdk::db::now();
                    if clean > 0 && tick.is_multiple_of(clean) {
                        funcs::expire_publications(&pr, &*core, now);
                    }
                    if tick.is_multiple_of(upd) {
                        funcs::expire_subscriptions(&pr, &*core, now);
                    }
                }
            })
            .map_err(|e| format!("presence: cannot start its timer thread: {e}"))?;
        let pr = self.clone();
        core.add_timer(
            "presence-notify-retransmit",
            Duration::from_millis(100),
            Arc::new(move || {
                if let Some(core) = handle.upgrade() {
                    for e in pr.notifies.tick(&*core) {
                        notify::ended(&pr, &*core, e, None);
                    }
                }
            }),
        );
        Ok(())
    }
}

/// Parameters of Kamailio's with no use here (its process model, hash
/// sizes, logging): accepted with any value.
const IGNORED: &[&str] = &[
    "waitn_time",
    "notifier_poll_rate",
    "notifier_processes",
    "startup_mode",
    "subs_htable_size",
    "pres_htable_size",
    "fetch_rows",
    "db_table_lock_type",
    "local_log_level",
    "local_log_facility",
    "timer_mode",
    "sip_uri_match",
    "pres_subs_mode",
    "retrieve_order_by",
];

/// Parameters whose feature is not built: accepted at their default.
const DEFAULT_ONLY: &[(&str, i64, &str)] = &[
    ("enable_dmq", 0, "sharing presence over DMQ"),
    ("retrieve_order", 0, "ordering publications by priority"),
    ("enable_sphere_check", 0, "sphere checks"),
    (
        "subs_remove_match",
        0,
        "matching subscriptions to remove by watcher",
    ),
    (
        "delete_same_subs",
        0,
        "deleting older subscriptions of a watcher",
    ),
];

/// The module definition.
pub fn module() -> ModuleDef {
    let pr = Arc::new(Presence::default());
    let p = &pr.p;
    let mut def = ModuleDef::new("presence");
    for (name, cell) in [
        ("db_url", &p.db_url),
        ("presentity_table", &p.presentity_table),
        ("active_watchers_table", &p.active_watchers_table),
        ("watchers_table", &p.watchers_table),
        ("server_address", &p.server_address),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    for (name, cell) in [
        ("clean_period", &p.clean_period),
        ("db_update_period", &p.db_update_period),
        ("expires_offset", &p.expires_offset),
        ("max_expires", &p.max_expires),
        ("min_expires", &p.min_expires),
        ("min_expires_action", &p.min_expires_action),
        ("subs_db_mode", &p.subs_db_mode),
        ("publ_cache", &p.publ_cache),
        ("timeout_rm_subs", &p.timeout_rm_subs),
        ("send_fast_notify", &p.send_fast_notify),
        ("subs_respond_200", &p.subs_respond_200),
        ("cseq_offset", &p.cseq_offset),
        ("force_delete", &p.force_delete),
    ] {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    for name in IGNORED {
        def = def.param(name, ParamKind::Any, |_| Ok(()));
    }
    for (name, ok, what) in DEFAULT_ONLY {
        let (ok, what) = (*ok, *what);
        def = def.param(name, ParamKind::Int, move |v| match v {
            ParamValue::Int(i) if i == ok => Ok(()),
            ParamValue::Str(s) if s.trim().parse::<i64>() == Ok(ok) => Ok(()),
            _ => Err(format!(
                "presence: '{name}' other than {ok} is not supported ({what} is not built)"
            )),
        });
    }
    def = def.param("xavp_cfg", ParamKind::Str, |v| match v {
        ParamValue::Str(s) if s.is_empty() => Ok(()),
        _ => Err("presence: 'xavp_cfg' is not supported".into()),
    });
    let pi = pr.clone();
    def = def.on_init(move |core| {
        core.register_api(events::PRESENCE_API, pi.api.clone());
        let reader = Arc::downgrade(&pi);
        pi.api.set_state_reader(Arc::new(move |uri, event| {
            let pr = reader.upgrade()?;
            let ev = pr.api.find(event)?;
            let st = pr.store();
            notify::state_body(&pr, &st, &ev, uri, None, sr_sdk::db::now())
        }));
        pi.init(core)
    });
    let pr2 = pr.clone();
    def = def.on_response(move |ctx| notify::on_reply(&pr2, ctx));
    let def = pv::export(def, &pr);
    funcs::export(def, &pr)
}
