//! Module `uac`: the proxy acting as a user agent client (Kamailio's uac):
//! From/To replaced with the original kept for the dialog and restored in
//! replies and requests within (`uac_replace_from/to`, `restore_mode`),
//! digest credentials added when downstream challenges (`uac_auth`), and
//! requests sent from the script (`$uac_req`, `uac_req_send`,
//! `event_route[uac:reply]`), and remote registrations kept from the
//! `uacreg` table (`uac_reg`, see [`reg`]).
#![forbid(unsafe_code)]

pub mod auth;
pub mod codec;
pub mod reg;
pub mod reg_funcs;
pub mod replace;
pub mod send;

use auth::Credential;
use replace::{Restore, Which};
use sr_mod_rr::{RrApi, RrCtx, RR_API};
use sr_mod_tm::local::LocalRequests;
use sr_mod_tm::{TmApi, TmEvent, TmEventKind, TM_API};
use sr_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

/// `restore_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Headers rewritten only.
    None,
    /// Restored by `uac_restore_from/to()`.
    Manual,
    /// Restored by `loose_route()` (and in replies).
    Auto,
}

impl Mode {
    /// From the parameter (case-insensitive).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Mode::None),
            "manual" => Some(Mode::Manual),
            "auto" => Some(Mode::Auto),
            _ => None,
        }
    }
}

/// The module's parameters (Kamailio's names and defaults).
#[derive(Debug)]
pub struct Params {
    /// `rr_from_store_param`.
    pub rr_from: Arc<RwLock<String>>,
    /// `rr_to_store_param`.
    pub rr_to: Arc<RwLock<String>>,
    /// `restore_mode`.
    pub restore_mode: Arc<RwLock<String>>,
    /// `restore_passwd`.
    pub restore_passwd: Arc<RwLock<String>>,
    /// `restore_dlg`.
    pub restore_dlg: Arc<AtomicI64>,
    /// `restore_from_avp`.
    pub restore_from_avp: Arc<RwLock<String>>,
    /// `restore_to_avp`.
    pub restore_to_avp: Arc<RwLock<String>>,
    /// `auth_realm_avp`.
    pub auth_realm_avp: Arc<RwLock<String>>,
    /// `auth_username_avp`.
    pub auth_username_avp: Arc<RwLock<String>>,
    /// `auth_password_avp`.
    pub auth_password_avp: Arc<RwLock<String>>,
    /// `default_socket`.
    pub default_socket: Arc<RwLock<String>>,
    /// `event_callback` (refused when set).
    pub event_callback: Arc<RwLock<String>>,
    /// The `credential` parameters, the last given first.
    pub credentials: Arc<Mutex<Vec<Credential>>>,
}

impl Default for Params {
    fn default() -> Self {
        use params::{int_cell as i, str_cell as s};
        Params {
            rr_from: s("vsf"),
            rr_to: s("vst"),
            restore_mode: s("auto"),
            restore_passwd: s(""),
            restore_dlg: i(0),
            restore_from_avp: s(""),
            restore_to_avp: s(""),
            auth_realm_avp: s(""),
            auth_username_avp: s(""),
            auth_password_avp: s(""),
            default_socket: s(""),
            event_callback: s(""),
            credentials: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

/// The parameters of remote registrations (`reg_*`).
#[derive(Debug)]
pub struct RegParams {
    /// `reg_db_url`: turns them on.
    pub db_url: Arc<RwLock<String>>,
    /// `reg_db_table`.
    pub db_table: Arc<RwLock<String>>,
    /// `reg_contact_addr`.
    pub contact_addr: Arc<RwLock<String>>,
    /// `reg_timer_interval`, seconds.
    pub timer_interval: Arc<AtomicI64>,
    /// `reg_retry_interval`, seconds (0: a failure disables the account).
    pub retry_interval: Arc<AtomicI64>,
    /// `reg_keep_callid`.
    pub keep_callid: Arc<AtomicI64>,
    /// `reg_random_delay`, seconds.
    pub random_delay: Arc<AtomicI64>,
    /// `reg_active` (and `uac.reg_active`).
    pub active: Arc<AtomicI64>,
    /// `reg_use_domain`.
    pub use_domain: Arc<AtomicI64>,
}

impl Default for RegParams {
    fn default() -> Self {
        use params::{int_cell as i, str_cell as s};
        RegParams {
            db_url: s(""),
            db_table: s("uacreg"),
            contact_addr: s(""),
            timer_interval: i(90),
            retry_interval: i(0),
            keep_callid: i(0),
            random_delay: i(0),
            active: i(1),
            use_domain: i(0),
        }
    }
}

/// The counters of remote registrations (group `uac`).
#[derive(Debug, Default, Clone)]
pub struct RegStats {
    /// `regtotal`: accounts loaded.
    pub total: Stat,
    /// `regactive`: as Kamailio's counter (down when a REGISTER goes, up
    /// when its transaction ends).
    pub active: Stat,
    /// `regdisabled`: accounts disabled.
    pub disabled: Stat,
}

/// What the message knows of uac: which headers were replaced, and what
/// its replies get back once a transaction carries it.
#[derive(Debug, Clone, Default)]
pub struct UacCtx {
    /// `uac_replace_from` ran.
    pub from_done: bool,
    /// `uac_replace_to` ran.
    pub to_done: bool,
    /// Reply restore waiting for the transaction.
    pub restore: Restore,
    /// The From URI was restored from our Route (once per message).
    pub restored_from: bool,
    /// The To URI was restored from our Route.
    pub restored_to: bool,
}

/// The message's uac context, made if missing.
pub fn uac_ctx(msg: &mut SipMsg) -> &mut UacCtx {
    if msg.ext.get::<UacCtx>().is_none() {
        msg.ext.insert(UacCtx::default());
    }
    msg.ext
        .get_mut::<UacCtx>()
        .expect("uac context just inserted")
}

pub use sr_sdk::socket_addr;

/// The module's state.
pub struct Uac {
    /// Parameters.
    pub p: Params,
    mode: OnceLock<Mode>,
    tm: OnceLock<Arc<TmApi>>,
    rr: OnceLock<Arc<RrApi>>,
    core: OnceLock<Weak<dyn Core>>,
    /// Reply restores by transaction (tm's cell id).
    restores: Mutex<HashMap<u64, Restore>>,
    /// How many there are (replies skip the lock when none).
    pending: std::sync::atomic::AtomicUsize,
    /// Requests of `uac_req_send` in flight.
    pub reqs: LocalRequests<send::Sent>,
    /// Remote registrations' parameters.
    pub reg: RegParams,
    /// Remote registrations' counters.
    pub reg_stats: RegStats,
    accounts: Mutex<Vec<reg::Account>>,
    /// REGISTERs in flight.
    pub regs: LocalRequests<reg::RegTag>,
    pub(crate) reg_pool: OnceLock<sr_sdk::db::DbPool>,
    pub(crate) first_round: std::sync::atomic::AtomicBool,
}

impl Default for Uac {
    fn default() -> Self {
        Uac {
            p: Params::default(),
            mode: OnceLock::new(),
            tm: OnceLock::new(),
            rr: OnceLock::new(),
            core: OnceLock::new(),
            restores: Mutex::new(HashMap::new()),
            pending: std::sync::atomic::AtomicUsize::new(0),
            reqs: LocalRequests::new("uac"),
            reg: RegParams::default(),
            reg_stats: RegStats::default(),
            accounts: Mutex::new(Vec::new()),
            regs: LocalRequests::new("ureg"),
            reg_pool: OnceLock::new(),
            first_round: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for Uac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Uac")
    }
}

impl Uac {
    /// `restore_mode`.
    pub fn mode(&self) -> Mode {
        *self.mode.get_or_init(|| {
            Mode::parse(&params::get_str(&self.p.restore_mode)).unwrap_or(Mode::Auto)
        })
    }

    /// tm's API.
    pub fn tm(&self) -> Option<&Arc<TmApi>> {
        self.tm.get()
    }

    /// The core, for RPC handlers.
    pub fn core_ref(&self) -> Option<Arc<dyn Core>> {
        self.core.get()?.upgrade()
    }

    /// rr's API.
    pub fn rr(&self) -> Option<&Arc<RrApi>> {
        self.rr.get()
    }

    /// The `credential` parameters, the last given first.
    pub fn credentials(&self) -> Vec<Credential> {
        self.p
            .credentials
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// The replies of the message's transaction get `text` back in the
    /// header `w` (now if the transaction exists, else once it does).
    pub fn restore_replies(&self, msg: &mut SipMsg, w: Which, text: String) {
        let mut r = Restore::default();
        match w {
            Which::From => r.from = Some(text),
            Which::To => r.to = Some(text),
        }
        self.restore_all(msg, r);
    }

    fn restore_all(&self, msg: &mut SipMsg, r: Restore) {
        let merge = |into: &mut Restore, r: Restore| {
            if r.from.is_some() {
                into.from = r.from;
            }
            if r.to.is_some() {
                into.to = r.to;
            }
        };
        match self.tm().and_then(|t| t.cell_id(msg)) {
            Some(id) => {
                if let Ok(mut m) = self.restores.lock() {
                    merge(m.entry(id).or_default(), r);
                    self.pending
                        .store(m.len(), std::sync::atomic::Ordering::Relaxed);
                }
            }
            None => merge(&mut uac_ctx(msg).restore, r),
        }
    }

    fn on_tm(&self, core: &dyn Core, ev: &mut TmEvent<'_>) {
        match ev.kind {
            TmEventKind::RequestIn => {
                let r = ev
                    .req
                    .ext
                    .get_mut::<UacCtx>()
                    .map(|c| std::mem::take(&mut c.restore))
                    .unwrap_or_default();
                if !r.is_empty() {
                    if let Ok(mut m) = self.restores.lock() {
                        m.insert(ev.cell, r);
                        self.pending
                            .store(m.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            TmEventKind::ReplyIn => {
                if self.pending.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                    return;
                }
                let r = self
                    .restores
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&ev.cell).cloned());
                // With restore_*_avp, what the AVP of the request holds.
                let r = r.map(|mut r| {
                    for (slot, cell) in [
                        (&mut r.from, &self.p.restore_from_avp),
                        (&mut r.to, &self.p.restore_to_avp),
                    ] {
                        let avp = params::get_str(cell);
                        if slot.is_some() && !avp.is_empty() {
                            if let Some(v) = core.pv_get(ev.req, &avp).filter(|v| !v.is_null()) {
                                *slot = Some(v.as_str().into_owned());
                            }
                        }
                    }
                    r
                });
                if let (Some(r), Some(rpl)) = (r, ev.received.as_deref_mut()) {
                    replace::restore_reply(rpl, &r);
                }
            }
            _ => {}
        }
    }

    /// Forgets the restores of transactions that ended.
    fn sweep(&self) {
        let Some(tm) = self.tm() else {
            return;
        };
        let ids: Vec<u64> = match self.restores.lock() {
            Ok(m) => m.keys().copied().collect(),
            Err(_) => return,
        };
        let gone: Vec<u64> = ids.into_iter().filter(|id| !tm.cell_alive(*id)).collect();
        if let Ok(mut m) = self.restores.lock() {
            for id in gone {
                m.remove(&id);
            }
            self.pending
                .store(m.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        let p = &self.p;
        let mode = Mode::parse(&params::get_str(&p.restore_mode)).ok_or_else(|| {
            format!(
                "uac: restore_mode '{}' is not none, manual or auto",
                params::get_str(&p.restore_mode)
            )
        })?;
        let _ = self.mode.set(mode);
        if !params::get_str(&p.event_callback).is_empty() {
            return Err("uac: event_callback (a KEMI function) is not supported; use event_route[uac:reply]".into());
        }
        if params::get_int(&p.restore_dlg) != 0 {
            return Err("uac: restore_dlg (restore through dialog variables) is not supported; the Record-Route parameters are used".into());
        }
        if mode != Mode::None
            && (params::get_str(&p.rr_from).is_empty() || params::get_str(&p.rr_to).is_empty())
        {
            return Err("uac: rr_from_store_param and rr_to_store_param must not be empty".into());
        }
        let avps = [
            &p.auth_realm_avp,
            &p.auth_username_avp,
            &p.auth_password_avp,
        ]
        .map(|c| !params::get_str(c).is_empty());
        if avps.iter().any(|x| *x) && !avps.iter().all(|x| *x) {
            return Err("uac: partial definition of auth AVP! (set auth_realm_avp, auth_username_avp and auth_password_avp)".into());
        }
        let tm =
            bind::<TmApi>(core, TM_API).ok_or("uac needs the tm module (load tm before uac)")?;
        let u = self.clone();
        tm.register_callback(Arc::new(move |core, ev| u.on_tm(core, ev)));
        if mode != Mode::None {
            tm.want_request_in();
            tm.want_reply_in();
            let rr = bind::<RrApi>(core, RR_API).ok_or(
                "uac needs the rr module (load rr before uac) for restore_mode manual or auto",
            )?;
            if mode == Mode::Auto && !rr.append_fromtag() {
                return Err("uac: restore_mode auto needs rr's append_fromtag set to 1".into());
            }
            if mode == Mode::Auto {
                let u = self.clone();
                rr.register_callback(Arc::new(move |ctx, params| {
                    let mut r = Restore::default();
                    if replace::restore_request(&u, ctx, params, &[Which::From, Which::To], &mut r)
                    {
                        u.restore_all(ctx.msg, r);
                    }
                }));
            }
            let _ = self.rr.set(rr);
        }
        let _ = self.tm.set(tm);
        reg::start(self, core)?;
        let handle = core.handle().ok_or("uac: no core handle for its timers")?;
        let _ = self.core.set(handle.clone());
        let u = self.clone();
        let h = handle.clone();
        core.add_timer(
            "uac-restores",
            Duration::from_secs(5),
            Arc::new(move || {
                if h.upgrade().is_some() {
                    u.sweep();
                }
            }),
        );
        let u = self.clone();
        core.add_timer(
            "uac-requests",
            Duration::from_millis(100),
            Arc::new(move || {
                if let Some(core) = handle.upgrade() {
                    for e in u.reqs.tick(&*core) {
                        send::ended(&u, &*core, e, None);
                    }
                }
            }),
        );
        Ok(())
    }

    /// A reply: true when it answers one of `uac_req_send`'s requests or
    /// of the REGISTERs.
    fn on_reply(&self, ctx: &mut Ctx<'_>) -> bool {
        if self.reg_on() && self.reg_on_reply(ctx) {
            return true;
        }
        match self.reqs.take_reply(ctx.msg) {
            sr_mod_tm::local::Taken::NotOurs => false,
            sr_mod_tm::local::Taken::Absorbed => true,
            sr_mod_tm::local::Taken::Ended(e) => {
                send::ended(self, ctx.core, e, Some(ctx.msg));
                true
            }
        }
    }
}

/// `uac_restore_from()`/`uac_restore_to()` (manual mode): 1 restored, -1
/// not.
fn restore_cmd(uac: &Uac, ctx: &mut Ctx<'_>, w: Which) -> i32 {
    if !ctx.msg.is_request() {
        return -1;
    }
    let Some(params) = ctx
        .msg
        .ext
        .get::<RrCtx>()
        .and_then(|r| r.route_params.clone())
    else {
        return -1;
    };
    let mut r = Restore::default();
    if replace::restore_request(uac, ctx, &params, &[w], &mut r) {
        1
    } else {
        -1
    }
}

fn text(ctx: &mut Ctx<'_>, a: &Fixed) -> String {
    a.str(ctx).into_owned()
}

/// The name uac's API is published under (Kamailio's `load_uac_api`).
pub const UAC_API: &str = "uac";

/// What other modules may call (rtjson replaces From and To through it).
pub struct UacApi {
    uac: Arc<Uac>,
}

impl UacApi {
    /// `uac_replace_from(display, uri)`; `None` leaves the display name.
    pub fn replace_from(&self, ctx: &mut Ctx<'_>, display: Option<&str>, uri: &str) -> i32 {
        replace::replace(&self.uac, ctx, Which::From, display, uri)
    }

    /// `uac_replace_to(display, uri)`.
    pub fn replace_to(&self, ctx: &mut Ctx<'_>, display: Option<&str>, uri: &str) -> i32 {
        replace::replace(&self.uac, ctx, Which::To, display, uri)
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let u = Arc::new(Uac::default());
    let p = &u.p;
    let mut def =
        ModuleDef::new("uac").param("restore_dlg", ParamKind::Int, {
            let cell = p.restore_dlg.clone();
            move |v| {
                params::int(&cell)(v)?;
                if params::get_int(&cell) == 0 {
                    Ok(())
                } else {
                    Err("uac: restore_dlg (restore through dialog variables) is not supported; the Record-Route parameters are used".into())
                }
            }
        });
    for (name, cell) in [
        ("rr_from_store_param", &p.rr_from),
        ("rr_to_store_param", &p.rr_to),
        ("restore_passwd", &p.restore_passwd),
        ("restore_from_avp", &p.restore_from_avp),
        ("restore_to_avp", &p.restore_to_avp),
        ("auth_realm_avp", &p.auth_realm_avp),
        ("auth_username_avp", &p.auth_username_avp),
        ("auth_password_avp", &p.auth_password_avp),
        ("default_socket", &p.default_socket),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    // Checked when set, so that `siprouter -c` reports them in place.
    let rm = p.restore_mode.clone();
    def = def.param("restore_mode", ParamKind::Str, move |v| {
        params::string(&rm)(v)?;
        let m = params::get_str(&rm);
        Mode::parse(&m)
            .map(|_| ())
            .ok_or_else(|| format!("uac: restore_mode '{m}' is not none, manual or auto"))
    });
    let ev = p.event_callback.clone();
    def = def.param("event_callback", ParamKind::Str, move |v| {
        params::string(&ev)(v)?;
        if params::get_str(&ev).is_empty() {
            Ok(())
        } else {
            Err("uac: event_callback (a KEMI function) is not supported; use event_route[uac:reply]".into())
        }
    });
    let creds = p.credentials.clone();
    def = def.param("credential", ParamKind::Str, move |v| {
        let s = match v {
            ParamValue::Str(s) => s,
            ParamValue::Int(i) => i.to_string(),
        };
        let c = Credential::parse(&s)?;
        creds.lock().map_err(|_| "poisoned")?.insert(0, c);
        Ok(())
    });
    let r = &u.reg;
    for (name, cell) in [
        ("reg_db_url", &r.db_url),
        ("reg_db_table", &r.db_table),
        ("reg_contact_addr", &r.contact_addr),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    for (name, cell) in [
        ("reg_timer_interval", &r.timer_interval),
        ("reg_retry_interval", &r.retry_interval),
        ("reg_keep_callid", &r.keep_callid),
        ("reg_random_delay", &r.random_delay),
        ("reg_active", &r.active),
        ("reg_use_domain", &r.use_domain),
    ] {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    // Table sizing and garbage collection of Kamailio's shared memory:
    // nothing to size here.
    for name in ["reg_hash_size", "reg_gc_interval"] {
        def = def.param(name, ParamKind::Any, |_| Ok(()));
    }
    let st = &u.reg_stats;
    def = def
        .stat_no_reset("regtotal", st.total.clone())
        .stat_no_reset("regactive", st.active.clone())
        .stat_no_reset("regdisabled", st.disabled.clone());
    def = reg_funcs::export(def, &u);
    let ui = u.clone();
    def = def.on_init(move |core| {
        core.register_api(UAC_API, Arc::new(UacApi { uac: ui.clone() }));
        ui.init(core)
    });
    let uc = u.clone();
    def = def.on_child_init(move |core, r| {
        if r == rank::PROC_MAIN {
            reg::start_rounds(&uc, core)?;
        }
        Ok(())
    });
    let ur = u.clone();
    def = def.on_response(move |ctx| ur.on_reply(ctx));
    let req = RouteType::REQUEST | RouteType::BRANCH;
    let spve = Some(fixup::f(fixup::spve));
    let c = |u: &Arc<Uac>| u.clone();
    let (u1, u2, u3, u4, u5, u6, u7, u8, u9) = (
        c(&u),
        c(&u),
        c(&u),
        c(&u),
        c(&u),
        c(&u),
        c(&u),
        c(&u),
        c(&u),
    );
    let u10 = c(&u);
    def.cmd("uac_replace_from", 1, req, spve.clone(), move |ctx, a| {
        let uri = text(ctx, &a[0]);
        replace::replace(&u1, ctx, Which::From, None, &uri)
    })
    .cmd("uac_replace_from", 2, req, spve.clone(), move |ctx, a| {
        let (d, uri) = (text(ctx, &a[0]), text(ctx, &a[1]));
        replace::replace(&u2, ctx, Which::From, Some(&d), &uri)
    })
    .cmd("uac_replace_to", 1, req, spve.clone(), move |ctx, a| {
        let uri = text(ctx, &a[0]);
        replace::replace(&u3, ctx, Which::To, None, &uri)
    })
    .cmd("uac_replace_to", 2, req, spve.clone(), move |ctx, a| {
        let (d, uri) = (text(ctx, &a[0]), text(ctx, &a[1]));
        replace::replace(&u4, ctx, Which::To, Some(&d), &uri)
    })
    .cmd(
        "uac_restore_from",
        0,
        RouteType::REQUEST,
        None,
        move |ctx, _| restore_cmd(&u5, ctx, Which::From),
    )
    .cmd(
        "uac_restore_to",
        0,
        RouteType::REQUEST,
        None,
        move |ctx, _| restore_cmd(&u6, ctx, Which::To),
    )
    .cmd("uac_auth", 0, RouteType::FAILURE, None, move |ctx, _| {
        auth::uac_auth(&u7, ctx, 0)
    })
    .cmd(
        "uac_auth",
        1,
        RouteType::FAILURE,
        Some(fixup::f(fixup::igp)),
        move |ctx, a| {
            let mode = a[0].int(ctx);
            auth::uac_auth(&u8, ctx, mode)
        },
    )
    .cmd(
        "uac_auth_mode",
        1,
        RouteType::FAILURE,
        Some(fixup::f(fixup::igp)),
        move |ctx, a| {
            let mode = a[0].int(ctx);
            auth::uac_auth(&u10, ctx, mode)
        },
    )
    .cmd("uac_req_send", 0, RouteType::ANY, None, move |ctx, _| {
        send::uac_req_send(&u9, ctx)
    })
    .pv_rw("uac_req", send::get, send::set)
}
