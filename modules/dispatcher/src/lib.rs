//! # dispatcher: destination sets, load balancing and failover
//!
//! Kamailio's `dispatcher` module: sets of destinations loaded from a list
//! file (`setid uri [flags [priority [attrs]]]`) or a database table,
//! one chosen per request by an algorithm (`ds_select_dst(set, alg)`),
//! the rest kept in XAVPs for failover (`ds_next_dst()` in a
//! failure_route), destinations marked down by the script
//! (`ds_mark_dst()`) or by keepalive probing (`ds_ping_interval`), and
//! `event_route[dispatcher:dst-down]` / `[dispatcher:dst-up]` when one
//! turns. See `docs/modules/dispatcher.md`.
//!
//! - Algorithms: 0 Call-ID hash, 1 From URI, 2 To URI, 3 Request-URI, 4
//!   round robin, 5 authentication user name (round robin without
//!   credentials), 6 random, 7 `hash_pvar`, 8 priority order, 9 weight,
//!   11 relative weight, 12 parallel forking to every destination, 13
//!   latency-optimised round robin (without latency statistics: priority
//!   first, round robin among equal ones), 10 call load ([`callload`],
//!   with `ds_load_update()` and `ds_load_unset()`). The hash is
//!   Kamailio's, so a message goes where Kamailio would send it.
//! - Functions: `ds_select_dst`, `ds_select_domain`, `ds_select`,
//!   `ds_next_dst`, `ds_next_domain`, `ds_set_dst`, `ds_set_domain`,
//!   `ds_mark_dst`, `ds_is_from_list`, `ds_list_exists`, `ds_is_active`,
//!   `ds_reload`.
//! - RPC: `dispatcher.list`, `dispatcher.reload`, `dispatcher.set_state`,
//!   `dispatcher.ping_active`, `dispatcher.add`, `dispatcher.remove`,
//!   `dispatcher.hash`.
//! - Pseudo-variable: `$dsv(code|reason|flags)` in the event routes.
#![forbid(unsafe_code)]

pub mod callload;
pub mod dest;
mod funcs;
pub mod hash;
pub mod load;
pub mod order;
pub mod ping;
mod probe;
mod routes;
mod rpc;
pub mod select;
pub mod state;

use dest::Lists;
/// Reads a string parameter (`sr_sdk`'s `params::get_str`).
pub use params::get_str as text;
use params::{get_int as int, int_cell as i, str_cell as s};
use sr_sdk::fixup::Eval;
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

/// `flags` bit: hash only the user part of URIs.
pub const FLAG_USER_ONLY: i64 = 1;
/// `flags` bit: keep the other destinations for failover (XAVPs).
pub const FLAG_FAILOVER: i64 = 2;

/// The module parameters.
#[derive(Debug)]
pub struct Params {
    /// `list_file`.
    pub list_file: Arc<RwLock<String>>,
    /// `db_url`.
    pub db_url: Arc<RwLock<String>>,
    /// `table_name`.
    pub table_name: Arc<RwLock<String>>,
    /// `setid_col`, `destination_col`, `flags_col`, `priority_col`,
    /// `attrs_col`.
    pub cols: [Arc<RwLock<String>>; 5],
    /// `force_dst`.
    pub force_dst: Arc<AtomicI64>,
    /// `flags`.
    pub flags: Arc<AtomicI64>,
    /// `use_default`.
    pub use_default: Arc<AtomicI64>,
    /// `xavp_dst`.
    pub xavp_dst: Arc<RwLock<String>>,
    /// `xavp_dst_mode`.
    pub xavp_dst_mode: Arc<AtomicI64>,
    /// `xavp_ctx`.
    pub xavp_ctx: Arc<RwLock<String>>,
    /// `xavp_ctx_mode`.
    pub xavp_ctx_mode: Arc<AtomicI64>,
    /// `hash_pvar`.
    pub hash_pvar: Arc<RwLock<String>>,
    /// `setid_pvname`.
    pub setid_pvname: Arc<RwLock<String>>,
    /// `attrs_pvname`.
    pub attrs_pvname: Arc<RwLock<String>>,
    /// `ds_ping_method`.
    pub ping_method: Arc<RwLock<String>>,
    /// `ds_ping_from`.
    pub ping_from: Arc<RwLock<String>>,
    /// `ds_ping_interval` (s).
    pub ping_interval: Arc<AtomicI64>,
    /// `ds_probing_threshold`.
    pub probing_threshold: Arc<AtomicI64>,
    /// `ds_inactive_threshold`.
    pub inactive_threshold: Arc<AtomicI64>,
    /// `ds_ping_reply_codes`.
    pub ping_reply_codes: Arc<RwLock<String>>,
    /// `ds_probing_mode`.
    pub probing_mode: Arc<AtomicI64>,
    /// `outbound_proxy` (where pings go).
    pub outbound_proxy: Arc<RwLock<String>>,
    /// `ds_default_socket`.
    pub default_socket: Arc<RwLock<String>>,
    /// `reload_delta` (s).
    pub reload_delta: Arc<AtomicI64>,
    /// `ds_load_mode`.
    pub load_mode: Arc<AtomicI64>,
    /// `ds_attrs_none`.
    pub attrs_none: Arc<AtomicI64>,
    /// `ds_hash_size`: above 0 enables call-load distribution (algorithm
    /// 10).
    pub hash_size: Arc<AtomicI64>,
    /// `ds_hash_expire` (s): a confirmed call's load lasts that long.
    pub hash_expire: Arc<AtomicI64>,
    /// `ds_hash_initexpire` (s): a call's load until its 2xx.
    pub hash_initexpire: Arc<AtomicI64>,
    /// `ds_hash_check_interval` (s).
    pub hash_check_interval: Arc<AtomicI64>,
    /// `ds_ping_latency_stats` (not built).
    pub latency_stats: Arc<AtomicI64>,
    /// `event_callback` (KEMI: not built).
    pub event_callback: Arc<RwLock<String>>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            list_file: s("/etc/kamailio/dispatcher.list"),
            db_url: s(""),
            table_name: s("dispatcher"),
            cols: [
                s("setid"),
                s("destination"),
                s("flags"),
                s("priority"),
                s("attrs"),
            ],
            force_dst: i(1),
            flags: i(0),
            use_default: i(0),
            xavp_dst: s("_dsdst_"),
            xavp_dst_mode: i(0),
            xavp_ctx: s("_dsctx_"),
            xavp_ctx_mode: i(0),
            hash_pvar: s(""),
            setid_pvname: s(""),
            attrs_pvname: s(""),
            ping_method: s("OPTIONS"),
            ping_from: s("sip:dispatcher@localhost"),
            ping_interval: i(0),
            probing_threshold: i(1),
            inactive_threshold: i(1),
            ping_reply_codes: s(""),
            probing_mode: i(0),
            outbound_proxy: s(""),
            default_socket: s(""),
            reload_delta: i(5),
            load_mode: i(0),
            attrs_none: i(0),
            hash_size: i(0),
            hash_expire: i(7200),
            hash_initexpire: i(7200),
            hash_check_interval: i(30),
            latency_stats: i(0),
            event_callback: s(""),
        }
    }
}

/// The value of parameter `name` in `;a=b;name=v` (case-insensitive
/// name), if present.
pub fn params_value<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// The parameters read on every call, fixed once the module is up.
#[derive(Debug, Clone)]
pub struct Names {
    /// `xavp_dst`.
    pub xavp_dst: String,
    /// `xavp_ctx`.
    pub xavp_ctx: String,
    /// `ds_default_socket`.
    pub default_socket: String,
    /// `setid_pvname`.
    pub setid_pv: String,
    /// `attrs_pvname`.
    pub attrs_pv: String,
}

/// The module's state.
pub struct Dispatcher {
    /// Parameters.
    pub p: Params,
    lists: RwLock<Arc<Lists>>,
    last_reload: Mutex<Option<std::time::Instant>>,
    hash_fmt: OnceLock<Arc<dyn Eval>>,
    pinger: ping::Pinger,
    ping_active: AtomicBool,
    replies: OnceLock<ping::ReplyCodes>,
    names: OnceLock<Names>,
    tm: OnceLock<std::sync::Arc<sr_mod_tm::api::TmApi>>,
    core: OnceLock<Weak<dyn Core>>,
    /// The call loads (algorithm 10).
    pub calls: callload::CallLoad,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher {
            p: Params::default(),
            lists: RwLock::new(Arc::new(Lists::default())),
            last_reload: Mutex::new(None),
            hash_fmt: OnceLock::new(),
            pinger: ping::Pinger::new(),
            ping_active: AtomicBool::new(true),
            replies: OnceLock::new(),
            names: OnceLock::new(),
            tm: OnceLock::new(),
            core: OnceLock::new(),
            calls: callload::CallLoad::default(),
        }
    }
}

impl Dispatcher {
    /// The sets now.
    pub fn lists(&self) -> Arc<Lists> {
        self.lists.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// The names and values read on every call (taken from the
    /// parameters on first use, after `modparam`).
    pub fn names(&self) -> &Names {
        self.names.get_or_init(|| Names {
            xavp_dst: text(&self.p.xavp_dst),
            xavp_ctx: text(&self.p.xavp_ctx),
            default_socket: text(&self.p.default_socket),
            setid_pv: text(&self.p.setid_pvname),
            attrs_pv: text(&self.p.attrs_pvname),
        })
    }

    fn source(&self) -> load::Source {
        load::Source {
            list_file: text(&self.p.list_file),
            db_url: text(&self.p.db_url),
            table: text(&self.p.table_name),
            cols: self.p.cols.each_ref().map(|c| text(c)),
            strict: int(&self.p.load_mode) == 1,
        }
    }

    /// Loads the sets again from their source (a new set of states);
    /// refused within `reload_delta` seconds of the last load.
    pub fn reload(&self, core: &dyn Core) -> Result<(), String> {
        self.rate_limit()?;
        let entries = load::read(core, &self.source())?;
        self.install(core, &entries, None)
    }

    /// Refuses a change within `reload_delta` of the last one.
    fn rate_limit(&self) -> Result<(), String> {
        let delta = int(&self.p.reload_delta);
        let mut last = self.last_reload.lock().map_err(|_| "dispatcher: lock")?;
        let now = std::time::Instant::now();
        if delta > 0 && last.is_some_and(|t| now.duration_since(t).as_secs() < delta as u64) {
            return Err("Ongoing reload".into());
        }
        *last = Some(now);
        Ok(())
    }

    /// Builds and swaps in the sets from `entries`, keeping the states of
    /// `keep`'s destinations.
    fn install(
        &self,
        core: &dyn Core,
        entries: &[load::Entry],
        keep: Option<&Lists>,
    ) -> Result<(), String> {
        let strict = int(&self.p.load_mode) == 1;
        let l = load::build(core, entries, keep, strict, int(&self.p.attrs_none) != 0)?;
        if let Ok(mut cur) = self.lists.write() {
            *cur = Arc::new(l);
        }
        Ok(())
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        if !text(&self.p.event_callback).is_empty() {
            return Err("dispatcher: event_callback (KEMI) is not supported by siprouter; use event_route[dispatcher:dst-down] and [dispatcher:dst-up]".into());
        }
        if int(&self.p.hash_size) > 0 {
            // Expired call loads go every ds_hash_check_interval.
            let every = int(&self.p.hash_check_interval).max(1) as u64;
            let d = self.clone();
            core.add_timer(
                "dispatcher-calls",
                std::time::Duration::from_secs(every),
                Arc::new(move || {
                    let secs = |v: &AtomicI64| std::time::Duration::from_secs(int(v).max(0) as u64);
                    d.calls.expire(
                        std::time::Instant::now(),
                        secs(&d.p.hash_initexpire),
                        secs(&d.p.hash_expire),
                    );
                }),
            );
        }
        if int(&self.p.latency_stats) != 0 {
            lm_warn!("dispatcher: ds_ping_latency_stats is not built: no latency statistics are kept (algorithm 13 uses priorities)");
        }
        let codes = ping::ReplyCodes::parse(&text(&self.p.ping_reply_codes))?;
        let _ = self.replies.set(codes);
        if let Some(h) = core.handle() {
            let _ = self.core.set(h);
        }
        let entries = load::read(core, &self.source())?;
        // The load at start does not count for reload_delta: the first
        // reload is always taken, as in Kamailio.
        self.install(core, &entries, None)?;
        probe::start(self, core)
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let ds = Arc::new(Dispatcher::default());
    let p = &ds.p;
    let strs: [(&str, &Arc<RwLock<String>>); 18] = [
        ("list_file", &p.list_file),
        ("db_url", &p.db_url),
        ("table_name", &p.table_name),
        ("setid_col", &p.cols[0]),
        ("destination_col", &p.cols[1]),
        ("flags_col", &p.cols[2]),
        ("priority_col", &p.cols[3]),
        ("attrs_col", &p.cols[4]),
        ("xavp_dst", &p.xavp_dst),
        ("xavp_ctx", &p.xavp_ctx),
        ("hash_pvar", &p.hash_pvar),
        ("setid_pvname", &p.setid_pvname),
        ("attrs_pvname", &p.attrs_pvname),
        ("ds_ping_method", &p.ping_method),
        ("ds_ping_from", &p.ping_from),
        ("ds_ping_reply_codes", &p.ping_reply_codes),
        ("outbound_proxy", &p.outbound_proxy),
        ("ds_default_socket", &p.default_socket),
    ];
    let ints: [(&str, &Arc<AtomicI64>); 17] = [
        ("force_dst", &p.force_dst),
        ("flags", &p.flags),
        ("use_default", &p.use_default),
        ("xavp_dst_mode", &p.xavp_dst_mode),
        ("xavp_ctx_mode", &p.xavp_ctx_mode),
        ("ds_ping_interval", &p.ping_interval),
        ("ds_probing_threshold", &p.probing_threshold),
        ("ds_inactive_threshold", &p.inactive_threshold),
        ("ds_probing_mode", &p.probing_mode),
        ("reload_delta", &p.reload_delta),
        ("ds_load_mode", &p.load_mode),
        ("ds_attrs_none", &p.attrs_none),
        ("ds_hash_size", &p.hash_size),
        ("ds_hash_expire", &p.hash_expire),
        ("ds_hash_initexpire", &p.hash_initexpire),
        ("ds_hash_check_interval", &p.hash_check_interval),
        ("ds_ping_latency_stats", &p.latency_stats),
    ];
    let mut def = ModuleDef::new("dispatcher");
    for (name, cell) in strs {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    for (name, cell) in ints {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    def = def.param(
        "event_callback",
        ParamKind::Str,
        params::string(&p.event_callback),
    );
    // Tuning of what is not built here (latency estimation, DNS refresh,
    // timer process): accepted, no effect.
    for name in [
        "ds_timer_mode",
        "ds_latency_estimator_alpha",
        "ds_dns_mode",
        "ds_dns_interval",
        "ds_dns_ttl",
        "ds_db_extra_attrs",
        "ds_default_sockname",
        "ds_append_branch",
    ] {
        def = def.param(name, ParamKind::Any, |_| Ok(()));
    }
    let d = ds.clone();
    def = def.on_init(move |core| d.init(core));
    let d = ds.clone();
    def = def.on_response(move |ctx| probe::on_reply(&d, ctx));
    def = def.pv("dsv", funcs::dsv);
    let def = funcs::export(&ds, def);
    rpc::export(&ds, def)
}
