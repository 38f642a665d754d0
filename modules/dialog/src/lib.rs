//! Module `dialog`: call dialogs tracked by the proxy (Kamailio's dialog
//! module, in-memory, `db_mode=0`).
//!
//! `dlg_manage()` (or the `dlg_flag` on a relayed INVITE) makes a dialog
//! of an initial INVITE and adds `;did=...` to the proxy's Record-Route;
//! tm's transaction callbacks move it through its states from the replies
//! (early, confirmed, failed), and the in-dialog requests, found through
//! rr's `loose_route()` by their `did`, confirm it (ACK), refresh it or
//! end it (BYE). Answered dialogs time out after `default_timeout` (or
//! `dlg_set_timeout`), with a BYE to both sides when asked. Profiles count
//! dialogs by name and value; `$dlg`, `$dlg_ctx` and `$dlg_var` read and
//! set them from the script; the `dlg.*` RPC methods list and end them.
#![forbid(unsafe_code)]

pub mod bye;
pub mod dlg;
mod dmq;
pub mod funcs;
pub mod profile;
pub mod pv;
pub mod rpc;
pub mod track;

use crate::dlg::Table;
use crate::profile::{Link, Profiles};
use bye::ByeTag;
use sr_mod_rr::{RrApi, RR_API};
use sr_mod_tm::local::LocalRequests;
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::time::Duration;

/// The module's parameters (Kamailio's names and defaults).
#[derive(Debug)]
pub struct Params {
    /// `enable_stats`.
    pub enable_stats: Arc<AtomicI64>,
    /// `enable_dmq`: dialogs replicated over DMQ (`dmq.rs`).
    pub enable_dmq: Arc<AtomicI64>,
    /// `hash_size`.
    pub hash_size: Arc<AtomicI64>,
    /// `rr_param`.
    pub rr_param: Arc<RwLock<String>>,
    /// `dlg_flag`.
    pub dlg_flag: Arc<AtomicI64>,
    /// `timeout_avp`.
    pub timeout_avp: Arc<RwLock<String>>,
    /// `default_timeout`, seconds.
    pub default_timeout: Arc<AtomicI64>,
    /// `early_timeout`, seconds.
    pub early_timeout: Arc<AtomicI64>,
    /// `end_timeout`, seconds.
    pub end_timeout: Arc<AtomicI64>,
    /// `noack_timeout`, seconds.
    pub noack_timeout: Arc<AtomicI64>,
    /// `send_bye`.
    pub send_bye: Arc<AtomicI64>,
    /// `timeout_noreset`.
    pub timeout_noreset: Arc<AtomicI64>,
    /// `dlg_extra_hdrs`.
    pub extra_hdrs: Arc<RwLock<String>>,
    /// `lreq_callee_headers`: more header lines for the callee's BYE.
    pub callee_hdrs: Arc<RwLock<String>>,
    /// `event_callback` (KEMI): refused when set.
    pub event_callback: Arc<RwLock<String>>,
    /// `dlg_match_mode`.
    pub match_mode: Arc<AtomicI64>,
    /// `detect_spirals`.
    pub detect_spirals: Arc<AtomicI64>,
    /// `h_id_start`.
    pub h_id_start: Arc<AtomicI64>,
    /// `h_id_step`.
    pub h_id_step: Arc<AtomicI64>,
    /// `profiles_with_value`.
    pub with_value: Arc<RwLock<String>>,
    /// `profiles_no_value`.
    pub no_value: Arc<RwLock<String>>,
    /// `db_mode`.
    pub db_mode: Arc<AtomicI64>,
    /// `db_url` (kept for `db_mode`, which is refused when set).
    pub db_url: Arc<RwLock<String>>,
    /// `ka_timer`.
    pub ka_timer: Arc<AtomicI64>,
    /// `track_cseq_updates`.
    pub track_cseq: Arc<AtomicI64>,
}

impl Default for Params {
    fn default() -> Self {
        use params::{int_cell as i, str_cell as s};
        Params {
            enable_stats: i(1),
            enable_dmq: i(0),
            hash_size: i(4096),
            rr_param: s("did"),
            dlg_flag: i(-1),
            timeout_avp: s(""),
            default_timeout: i(43200),
            early_timeout: i(300),
            end_timeout: i(300),
            noack_timeout: i(60),
            send_bye: i(0),
            timeout_noreset: i(0),
            extra_hdrs: s(""),
            callee_hdrs: s(""),
            event_callback: s(""),
            match_mode: i(0),
            detect_spirals: i(1),
            h_id_start: i(0),
            h_id_step: i(1),
            with_value: s(""),
            no_value: s(""),
            db_mode: i(0),
            db_url: s(""),
            ka_timer: i(0),
            track_cseq: i(0),
        }
    }
}

impl Params {
    /// The declared profiles.
    pub fn profiles(&self) -> Result<Profiles, String> {
        let mut p = Profiles::default();
        p.declare(&params::get_str(&self.with_value), true)?;
        p.declare(&params::get_str(&self.no_value), false)?;
        Ok(p)
    }
}

/// The statistics (group `dialog`).
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// `active_dialogs`: answered and not ended.
    pub active: Stat,
    /// `early_dialogs`: with a provisional reply, not answered.
    pub early: Stat,
    /// `processed_dialogs`: made since start.
    pub processed: Stat,
    /// `expired_dialogs`: ended by their timeout.
    pub expired: Stat,
    /// `failed_dialogs`: ended by a negative final reply.
    pub failed: Stat,
}

/// What the current message knows of its dialog (Kamailio's dialog
/// context): the dialog, and what the script set before there was one.
#[derive(Debug, Clone, Default)]
pub struct DlgCtx {
    /// The dialog (`h_entry`, `h_id`).
    pub key: Option<(u32, u32)>,
    /// Whether the message goes from caller to callee (as the module found
    /// it).
    pub downstream: bool,
    /// `$dlg_ctx(dir)`: 1 downstream, 2 upstream, 0 unknown — set by
    /// `dlg_get`, as in Kamailio.
    pub dir: u8,
    /// Set when `loose_route()` (or `dlg_manage()`) matched the request to
    /// its dialog (`$DLG_status`, `$DLG_lifetime`).
    pub routed: bool,
    /// `$dlg_var` set before the dialog was made (`None`: removed).
    pub vars: std::collections::BTreeMap<String, Option<String>>,
    /// Profiles set before the dialog was made.
    pub pending: Vec<Link>,
    /// `dlg_setflag` before the dialog was made.
    pub flags: u32,
    /// `$dlg_ctx(timeout_bye)`: read when the dialog is made.
    pub timeout_bye: Option<bool>,
    /// `$dlg_ctx(on)`.
    pub on: i64,
    /// `$dlg_ctx(timeout_route)`.
    pub timeout_route: Option<String>,
    /// `dlg_set_timeout` / `$dlg_ctx(timeout)` before the dialog was made.
    pub timeout: Option<u32>,
}

/// The module's state.
pub struct Dlg {
    /// Parameters.
    pub p: Params,
    table: OnceLock<Mutex<Table>>,
    profiles: OnceLock<Profiles>,
    /// Statistics.
    pub stats: Stats,
    tm: OnceLock<Arc<TmApi>>,
    rr: OnceLock<Arc<RrApi>>,
    core: OnceLock<Weak<dyn Core>>,
    /// The BYEs in flight.
    pub byes: LocalRequests<ByeTag>,
    /// What other modules asked to be told (Kamailio's dialog callbacks).
    pub hooks: Hooks,
    /// dmq, with `enable_dmq`.
    dmq: OnceLock<sr_mod_dmq::DmqApi>,
    dmq_core: OnceLock<Weak<dyn Core>>,
}

/// Called with the initial INVITE and the dialog just made of it
/// (Kamailio's `DLGCB_CREATED`): the request may still be changed.
pub type CreatedHook = Arc<dyn Fn(&mut Ctx<'_>, (u32, u32)) + Send + Sync>;

/// Called with a dialog that timed out, before it is ended (Kamailio's
/// `DLGCB_EXPIRED`).
pub type ExpiredHook = Arc<dyn Fn(&dlg::Dialog) + Send + Sync>;

/// The functions other modules registered ([`Dlg::hooks`]).
#[derive(Default)]
pub struct Hooks {
    created: RwLock<Vec<CreatedHook>>,
    expired: RwLock<Vec<ExpiredHook>>,
}

impl Hooks {
    /// Adds a function called for each dialog made.
    pub fn on_created(&self, f: CreatedHook) {
        self.created
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    /// Adds a function called for each dialog that times out.
    pub fn on_expired(&self, f: ExpiredHook) {
        self.expired
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    fn created(&self) -> Vec<CreatedHook> {
        self.created
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn expired(&self) -> Vec<ExpiredHook> {
        self.expired
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The name the module publishes itself under (`bind::<Dlg>(core,
/// DIALOG_API)`, Kamailio's `load_dlg_api`), at `mod_init`.
pub const DIALOG_API: &str = "dialog";

impl Default for Dlg {
    fn default() -> Self {
        Dlg {
            p: Params::default(),
            table: OnceLock::new(),
            profiles: OnceLock::new(),
            stats: Stats::default(),
            tm: OnceLock::new(),
            rr: OnceLock::new(),
            core: OnceLock::new(),
            byes: LocalRequests::new("dlg"),
            hooks: Hooks::default(),
            dmq: OnceLock::new(),
            dmq_core: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for Dlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dlg")
    }
}

impl Dlg {
    /// The table, locked.
    pub fn table(&self) -> MutexGuard<'_, Table> {
        let t = self.table.get_or_init(|| {
            // Rounded down to a power of two, as Kamailio's.
            let size = params::get_int(&self.p.hash_size).clamp(1, 1 << 20) as u32;
            let size = 1u32 << (31 - size.leading_zeros());
            Mutex::new(Table::new(
                size,
                params::get_int(&self.p.h_id_start),
                params::get_int(&self.p.h_id_step).max(1) as u32,
            ))
        });
        t.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The declared profiles.
    pub fn profiles(&self) -> &Profiles {
        self.profiles
            .get_or_init(|| self.p.profiles().unwrap_or_default())
    }

    /// tm's API (bound at `mod_init`).
    pub fn tm(&self) -> Option<&Arc<TmApi>> {
        self.tm.get()
    }

    /// rr's API (bound at `mod_init`).
    pub fn rr(&self) -> Option<&Arc<RrApi>> {
        self.rr.get()
    }

    /// The core, for timers and RPC handlers.
    pub fn core(&self) -> Option<Arc<dyn Core>> {
        self.core.get()?.upgrade()
    }

    /// Whether the statistics are kept.
    pub fn stats_on(&self) -> bool {
        params::get_int(&self.p.enable_stats) != 0
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        if params::get_int(&self.p.db_mode) != 0 {
            return Err(
                "dialog: db_mode other than 0 (dialogs stored in a database) is not supported; dialogs are kept in memory".into(),
            );
        }
        if params::get_int(&self.p.ka_timer) != 0 {
            return Err(
                "dialog: ka_timer (keepalive OPTIONS within dialogs) is not supported".into(),
            );
        }
        if !params::get_str(&self.p.event_callback).is_empty() {
            return Err("dialog: event_callback (a KEMI function) is not supported; use event_route[dialog:...]".into());
        }
        if params::get_int(&self.p.track_cseq) != 0 {
            return Err("dialog: track_cseq_updates is not supported".into());
        }
        let mm = params::get_int(&self.p.match_mode);
        if !(0..=2).contains(&mm) {
            return Err(format!("dialog: dlg_match_mode {mm} is not 0, 1 or 2"));
        }
        if params::get_int(&self.p.default_timeout) <= 0 {
            return Err("dialog: default_timeout must be above 0".into());
        }
        if params::get_str(&self.p.rr_param).is_empty() {
            return Err("dialog: rr_param is empty".into());
        }
        let _ = self.profiles.set(self.p.profiles()?);
        drop(self.table());
        let tm = bind::<TmApi>(core, TM_API)
            .ok_or("dialog needs the tm module (load tm before dialog)")?;
        let rr = bind::<RrApi>(core, RR_API)
            .ok_or("dialog needs the rr module (load rr before dialog)")?;
        let d = self.clone();
        tm.register_callback(Arc::new(move |core, ev| track::on_tm(&d, core, ev)));
        tm.want_request_in();
        let d = self.clone();
        rr.register_callback(Arc::new(move |ctx, params| {
            track::on_route(&d, ctx, params)
        }));
        let _ = self.tm.set(tm);
        let _ = self.rr.set(rr);
        core.register_api(DIALOG_API, self.clone());
        let handle = core
            .handle()
            .ok_or("dialog: no core handle for its timers")?;
        let _ = self.core.set(handle.clone());
        let d = self.clone();
        let h = handle.clone();
        core.add_timer(
            "dialog-timer",
            Duration::from_secs(1),
            Arc::new(move || {
                if let Some(core) = h.upgrade() {
                    track::tick(&d, &*core);
                }
            }),
        );
        let d = self.clone();
        core.add_timer(
            "dialog-bye-retransmit",
            Duration::from_millis(100),
            Arc::new(move || {
                if let Some(core) = handle.upgrade() {
                    for e in d.byes.tick(&*core) {
                        bye::ended(&d, &*core, e);
                    }
                }
            }),
        );
        Ok(())
    }
}

/// Integer parameters of Kamailio's accepted at their default value only
/// (what they turn on is not built), with that value.
const IGNORED_INT: &[(&str, i64)] = &[
    ("ka_interval", 0),
    ("ka_failed_limit", 1),
    ("timer_procs", 0),
    ("keep_proxy_rr", 0),
    ("dlg_filter_mode", 0),
];

/// Parameters of Kamailio's that change nothing here: the database ones
/// (dialogs are kept in memory, `db_mode` 0), the bridge's, and ones for
/// internals siprouter does not have. Accepted with any value.
const IGNORED_STR: &[&str] = &[
    "wait_ack",
    "initial_cbs_inscript",
    "db_update_period",
    "db_fetch_rows",
    "db_skip_load",
    "table_name",
    "call_id_column",
    "from_uri_column",
    "from_tag_column",
    "to_uri_column",
    "to_tag_column",
    "h_id_column",
    "h_entry_column",
    "state_column",
    "start_time_column",
    "timeout_column",
    "to_cseq_column",
    "from_cseq_column",
    "to_route_column",
    "from_route_column",
    "to_contact_column",
    "from_contact_column",
    "to_sock_column",
    "from_sock_column",
    "sflags_column",
    "toroute_name_column",
    "vars_table_name",
    "bridge_controller",
    "bridge_contact",
    "ruri_pvar",
    "xavp_cfg",
];

/// The module definition.
pub fn module() -> ModuleDef {
    let d = Arc::new(Dlg::default());
    let p = &d.p;
    let mut def = ModuleDef::new("dialog");
    for (name, cell) in [
        ("enable_stats", &p.enable_stats),
        ("enable_dmq", &p.enable_dmq),
        ("hash_size", &p.hash_size),
        ("dlg_flag", &p.dlg_flag),
        ("default_timeout", &p.default_timeout),
        ("early_timeout", &p.early_timeout),
        ("end_timeout", &p.end_timeout),
        ("noack_timeout", &p.noack_timeout),
        ("send_bye", &p.send_bye),
        ("timeout_noreset", &p.timeout_noreset),
        ("detect_spirals", &p.detect_spirals),
        ("h_id_start", &p.h_id_start),
        ("h_id_step", &p.h_id_step),
    ] {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    for (name, cell) in [
        ("rr_param", &p.rr_param),
        ("timeout_avp", &p.timeout_avp),
        ("dlg_extra_hdrs", &p.extra_hdrs),
        ("lreq_callee_headers", &p.callee_hdrs),
        ("db_url", &p.db_url),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    // Kamailio's parameters for what is not built, or has no use here:
    // accepted at their defaults, refused otherwise (see the module page).
    for (name, ok) in IGNORED_INT {
        let ok = *ok;
        def = def.param(name, ParamKind::Int, move |v| match v {
            ParamValue::Int(i) if i == ok => Ok(()),
            ParamValue::Str(s) if s.trim().parse::<i64>() == Ok(ok) => Ok(()),
            _ => Err(format!("dialog: '{name}' other than {ok} is not supported")),
        });
    }
    for name in IGNORED_STR {
        def = def.param(name, ParamKind::Any, |_| Ok(()));
    }
    // Checked when set, so that `siprouter -c` reports them with their
    // place in the configuration.
    type Check = fn(i64) -> Result<(), String>;
    let checks: [(&str, &Arc<AtomicI64>, Check); 4] = [
        ("dlg_match_mode", &p.match_mode, |v| {
            if (0..=2).contains(&v) {
                Ok(())
            } else {
                Err(format!("dialog: dlg_match_mode {v} is not 0, 1 or 2"))
            }
        }),
        ("db_mode", &p.db_mode, |v| {
            if v == 0 {
                Ok(())
            } else {
                Err("dialog: db_mode other than 0 (dialogs stored in a database) is not supported; dialogs are kept in memory".into())
            }
        }),
        ("ka_timer", &p.ka_timer, |v| {
            if v == 0 {
                Ok(())
            } else {
                Err("dialog: ka_timer (keepalive OPTIONS within dialogs) is not supported".into())
            }
        }),
        ("track_cseq_updates", &p.track_cseq, |v| {
            if v == 0 {
                Ok(())
            } else {
                Err("dialog: track_cseq_updates is not supported".into())
            }
        }),
    ];
    for (name, cell, check) in checks {
        let set = params::int(cell);
        let cell = cell.clone();
        def = def.param(name, ParamKind::Int, move |v| {
            set(v)?;
            check(params::get_int(&cell))
        });
    }
    for (name, cell, with_value) in [
        ("profiles_with_value", &p.with_value, true),
        ("profiles_no_value", &p.no_value, false),
    ] {
        let set = params::string(cell);
        let cell = cell.clone();
        def = def.param(name, ParamKind::Str, move |v| {
            set(v)?;
            profile::Profiles::default().declare(&params::get_str(&cell), with_value)
        });
    }
    let ev = p.event_callback.clone();
    def = def.param("event_callback", ParamKind::Str, move |v| {
        params::string(&ev)(v)?;
        if params::get_str(&ev).is_empty() {
            Ok(())
        } else {
            Err("dialog: event_callback (a KEMI function) is not supported; use event_route[dialog:...]".into())
        }
    });
    let s = &d.stats;
    def = def
        .stat_no_reset("active_dialogs", s.active.clone())
        .stat_no_reset("early_dialogs", s.early.clone())
        .stat("processed_dialogs", s.processed.clone())
        .stat("expired_dialogs", s.expired.clone())
        .stat("failed_dialogs", s.failed.clone());
    let di = d.clone();
    def = def.on_init(move |core| di.init(core));
    // dmq is bound after every mod_init, so dialog may be loaded first.
    let dd = d.clone();
    def = def.on_child_init(move |core, rank| {
        if rank == sr_sdk::rank::PROC_INIT {
            dd.dmq_start(core)?;
        }
        Ok(())
    });
    let dr = d.clone();
    def = def.on_response(move |ctx| bye::on_reply(&dr, ctx));
    def = funcs::export(def, &d);
    def = pv::export(def, &d);
    rpc::export(def, &d)
}
