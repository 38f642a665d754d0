//! # sst: SIP session timers
//!
//! Kamailio's `sst` module (RFC 4028) on the dialog module. A dialog
//! made of an INVITE that carries the `sst_flag` gets a session timer:
//! the INVITE's `Session-Expires` (raised to `min_se`), or, without one,
//! a `Session-Expires: <min_se>` this proxy adds. A `Session-Expires`
//! below `min_se` from a caller that supports timers is answered with a
//! 422 and `Min-SE` (`reject_to_small`); from one that does not, the
//! request's `Min-SE` is raised. The 2xx's `Session-Expires` (one is
//! added, `;refresher=uac`, when the callee gave none and the caller
//! supports timers or this proxy asked) becomes the dialog's lifetime,
//! renewed by each re-INVITE or UPDATE that refreshes the session; a
//! session not refreshed in time ends with its dialog (the dialog
//! module's `send_bye` sends the BYEs), counted by `expired_sst`.
//!
//! Function `sstCheckMin(send_reply)` (also `sst_check_min`): 1 when the
//! request's `Session-Expires` or `Min-SE` is below `min_se` (and, when
//! `send_reply` is not 0, a 422 with `Min-SE` is sent), else -1.
//!
//! Parameters: `enable_stats` (1), `min_se` (90), `reject_to_small`
//! (1), `sst_flag` (needed), `timeout_avp` (accepted: the lifetime is
//! given to the dialog directly).
#![forbid(unsafe_code)]

pub mod headers;
pub mod session;

use sr_mod_dialog::{Dlg, DIALOG_API};
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The module's state: parameters, statistic, the dialog module.
#[derive(Default)]
pub struct Sst {
    enable_stats: Arc<AtomicI64>,
    min_se: Arc<AtomicI64>,
    reject: Arc<AtomicI64>,
    flag: Arc<AtomicI64>,
    timeout_avp: Arc<RwLock<String>>,
    expired: Stat,
    dialog: OnceLock<Arc<Dlg>>,
}

impl Sst {
    fn new() -> Sst {
        let s = Sst::default();
        s.enable_stats.store(1, Ordering::Relaxed);
        s.min_se.store(90, Ordering::Relaxed);
        s.reject.store(1, Ordering::Relaxed);
        s.flag.store(-1, Ordering::Relaxed);
        s
    }

    /// `min_se`, seconds.
    pub fn min_se(&self) -> u32 {
        params::get_int(&self.min_se).clamp(0, i64::from(u32::MAX)) as u32
    }

    /// `sst_flag`.
    pub fn flag(&self) -> i64 {
        params::get_int(&self.flag)
    }

    /// `reject_to_small`.
    pub fn reject(&self) -> bool {
        params::get_int(&self.reject) != 0
    }

    /// The dialog module (bound at `mod_init`).
    pub fn dialog(&self) -> Option<Arc<Dlg>> {
        self.dialog.get().cloned()
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        let flag = self.flag();
        if flag < 0 {
            return Err("sst: no sst_flag set".into());
        }
        if flag > 31 {
            return Err(format!("sst: invalid sst_flag {flag}"));
        }
        if params::get_int(&self.min_se) < 0 {
            return Err("sst: min_se must not be negative".into());
        }
        let dlg = bind::<Dlg>(core, DIALOG_API)
            .ok_or("sst needs the dialog module (load dialog before sst)")?;
        let tm = bind::<TmApi>(core, TM_API).ok_or("sst needs the tm module")?;
        let s = self.clone();
        let d = dlg.clone();
        dlg.hooks
            .on_created(Arc::new(move |ctx, key| session::created(&s, ctx, &d, key)));
        let s = self.clone();
        dlg.hooks.on_expired(Arc::new(move |x| {
            if session::Info::of(x).is_some_and(|i| i.active) {
                lm_info!(
                    "sst: the session timer of dialog {}:{} expired",
                    x.h_entry,
                    x.h_id
                );
                if params::get_int(&s.enable_stats) != 0 {
                    s.expired.inc();
                }
            }
        }));
        let s = self.clone();
        tm.register_callback(Arc::new(move |_core, ev| session::on_tm(&s, ev)));
        tm.want_reply_in();
        let _ = self.dialog.set(dlg);
        if !params::get_str(&self.timeout_avp).is_empty() {
            lm_dbg!("sst: timeout_avp is not needed: the dialog's lifetime is set directly");
        }
        Ok(())
    }
}

/// `sstCheckMin(send_reply)`: 1 when the `Session-Expires` or the
/// `Min-SE` of the request is below `min_se` (a 422 sent when asked),
/// -1 otherwise or without `Session-Expires`.
pub fn check_min(s: &Sst, ctx: &mut Ctx<'_>, send_reply: bool) -> i32 {
    let m = ctx.msg.msg();
    let se = match headers::session_expires(m) {
        None => return -1,
        Some(Ok(se)) => se.interval,
        Some(Err(e)) => {
            lm_err!("sstCheckMin: Session-Expires: {e}");
            return -1;
        }
    };
    let min = s.min_se();
    let lowest = match headers::min_se(m) {
        Some(Ok(v)) => v.min(se),
        Some(Err(e)) => {
            lm_err!("sstCheckMin: Min-SE: {e}");
            return -1;
        }
        None => se,
    };
    if lowest >= min {
        return -1;
    }
    if send_reply && !session::reply_422(ctx, min) {
        lm_err!("sstCheckMin: the 422 could not be sent");
    }
    1
}

fn truthy(ctx: &mut Ctx<'_>, a: &Fixed) -> bool {
    match a {
        Fixed::Int(i) => *i != 0,
        other => {
            let v = other.str(ctx);
            let v = v.trim();
            !(v.is_empty() || v == "0")
        }
    }
}

/// The `sst` module.
pub fn module() -> ModuleDef {
    let s = Arc::new(Sst::new());
    let def = ModuleDef::new("sst")
        .param("enable_stats", ParamKind::Int, params::int(&s.enable_stats))
        .param("min_se", ParamKind::Int, params::int(&s.min_se))
        .param("reject_to_small", ParamKind::Int, params::int(&s.reject))
        .param("sst_flag", ParamKind::Int, params::int(&s.flag))
        .param(
            "timeout_avp",
            ParamKind::Str,
            params::string(&s.timeout_avp),
        )
        .stat("expired_sst", s.expired.clone());
    let mut def = def;
    for name in ["sstCheckMin", "sst_check_min"] {
        let c = s.clone();
        def = def.cmd(
            name,
            1,
            RouteType::REQUEST,
            Some(fixup::f(fixup::spve)),
            move |ctx, a| {
                let send = truthy(ctx, &a[0]);
                check_min(&c, ctx, send)
            },
        );
    }
    let si = s.clone();
    def.on_init(move |core| si.init(core))
}
