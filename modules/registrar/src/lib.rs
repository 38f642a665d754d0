//! # registrar: the SIP registrar
//!
//! Kamailio's `registrar` on top of `usrloc` (bound by name, so `usrloc`
//! must be loaded first):
//!
//! - `save(table[, flags[, uri]])` processes a REGISTER (RFC 3261 10.3):
//!   adds, refreshes and removes bindings, `Contact: *` with `Expires: 0`,
//!   Call-ID/CSeq ordering, the expires limits, `max_contacts`, Path (RFC
//!   3327), `received_avp`; replies 200 OK with every current contact.
//!   Returns 1 inserted, 2 updated, 3 deleted, 4 only queried, -1 error,
//!   -2 too many contacts.
//! - `lookup(table[, uri])`: Request-URI from the best contact, the
//!   others as branches, `$du` from the Path or received address.
//!   Returns 1 found, -1 not found, -2 method not allowed, -3 error.
//! - `registered`, `unregister`, `lookup_branches`, `reg_fetch_contacts`,
//!   `reg_free_contacts` and `$ulc(profile=>attr)`.
//!
//! GRUU (RFC 5627, `gruu_enabled`, on by default as in Kamailio): a
//! REGISTER that says `Supported: gruu` gets a `pub-gruu` and a
//! `temp-gruu` for each contact with a `+sip.instance`, and `lookup`
//! routes a request to either to that one contact.
#![forbid(unsafe_code)]

mod fetch;
mod lookup;
mod save;
mod util;

pub use lookup::rc as lookup_rc;
pub use save::{SAVE_MEMORY, SAVE_NOREPLY, SAVE_NO_RANGE, SAVE_REPLACE};

use sr_mod_usrloc::{Domain, Usrloc, USRLOC_API};
use sr_sdk::fixup::FixupEnv;
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The module's parameters.
#[derive(Debug)]
pub struct Config {
    default_expires: Arc<AtomicI64>,
    default_expires_range: Arc<AtomicI64>,
    expires_range: Arc<AtomicI64>,
    min_expires: Arc<AtomicI64>,
    max_expires: Arc<AtomicI64>,
    max_contacts: Arc<AtomicI64>,
    method_filtering: Arc<AtomicI64>,
    use_path: Arc<AtomicI64>,
    path_mode: Arc<AtomicI64>,
    received_avp: Arc<RwLock<String>>,
    gruu_enabled: Arc<AtomicI64>,
    append_branches: Arc<AtomicI64>,
    retry_after: Arc<AtomicI64>,
    min_expires_mode: Arc<AtomicI64>,
    outbound_mode: Arc<AtomicI64>,
    regid_mode: Arc<AtomicI64>,
    flow_timer: Arc<AtomicI64>,
}

fn int(v: i64) -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(v))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_expires: int(3600),
            default_expires_range: int(0),
            expires_range: int(0),
            min_expires: int(60),
            max_expires: int(0),
            max_contacts: int(0),
            method_filtering: int(0),
            use_path: int(0),
            path_mode: int(2),
            received_avp: Arc::new(RwLock::new(String::new())),
            gruu_enabled: int(1),
            append_branches: int(1),
            retry_after: int(0),
            min_expires_mode: int(0),
            outbound_mode: int(0),
            regid_mode: int(0),
            flow_timer: int(0),
        }
    }
}

/// Counters.
#[derive(Debug, Default)]
pub struct Stats {
    accepted: Stat,
    rejected: Stat,
}

/// The registrar's state.
#[derive(Debug, Default)]
pub struct Registrar {
    cfg: Config,
    stats: Stats,
    ul: OnceLock<Arc<Usrloc>>,
    replier: sr_mod_sl::Replier,
}

impl Registrar {
    fn ul(&self) -> Arc<Usrloc> {
        self.ul.get().cloned().unwrap_or_default()
    }

    /// The AVP name of `received_avp` (`$avp(RECEIVED)` gives `RECEIVED`).
    fn received_avp(&self) -> Option<String> {
        sr_sdk::avp::spec_name(&self.cfg.received_avp.read().ok()?)
    }
}

/// Resolves the table parameter (a constant) to a usrloc table at fixup
/// time; the other parameters may hold pseudo-variables.
/// The registrar's API name (`bind::<RegistrarApi>(core,
/// REGISTRAR_API)`, Kamailio's `load_registrar_api`), registered at
/// `mod_init`.
pub const REGISTRAR_API: &str = "registrar";

/// What the registrar offers other modules.
#[derive(Debug)]
pub struct RegistrarApi {
    reg: Arc<Registrar>,
}

impl RegistrarApi {
    /// Kamailio's `lookup_to_dset`: the contacts of `uri`'s AoR in `dom`
    /// (a usrloc table) that accept `method`, as branches, best first;
    /// the `lookup` return codes ([`lookup_rc`]) when there is none.
    pub fn contact_branches(
        &self,
        dom: &Domain,
        uri: &str,
        method: Option<&str>,
    ) -> Result<Vec<Branch>, i32> {
        lookup::contact_branches(&self.reg, dom, uri, method)
    }
}

fn fixup_table(env: &dyn FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    if i > 0 {
        return fixup::spve(env, i, a);
    }
    let Arg::Str(name) = a else {
        return Err(format!("table name '{}' must be a constant", a.text()));
    };
    match bind::<Usrloc>(env.core(), USRLOC_API) {
        Some(ul) => Ok(Fixed::Custom(ul.register_domain(name)?)),
        // A config check: usrloc is loaded but its mod_init did not run.
        None if env.is_loaded("usrloc") => Ok(Fixed::Str(name.clone())),
        None => Err("registrar needs the usrloc module (load it before registrar)".into()),
    }
}

fn domain(p: &[Fixed]) -> Option<Arc<Domain>> {
    match p.first() {
        Some(Fixed::Custom(c)) => c.clone().downcast::<Domain>().ok(),
        _ => None,
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let reg = Arc::new(Registrar::default());
    let c = &reg.cfg;
    let fx = Some(fixup::f(fixup_table));
    let req = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let save_rt = RouteType::REQUEST | RouteType::ONREPLY | RouteType::FAILURE;
    let mut def = ModuleDef::new("registrar")
        .param(
            "default_expires",
            ParamKind::Int,
            params::int(&c.default_expires),
        )
        .param(
            "default_expires_range",
            ParamKind::Int,
            params::int(&c.default_expires_range),
        )
        .param(
            "expires_range",
            ParamKind::Int,
            params::int(&c.expires_range),
        )
        .param("min_expires", ParamKind::Int, params::int(&c.min_expires))
        .param("max_expires", ParamKind::Int, params::int(&c.max_expires))
        .param("max_contacts", ParamKind::Int, params::int(&c.max_contacts))
        .param(
            "method_filtering",
            ParamKind::Int,
            params::int(&c.method_filtering),
        )
        .param("use_path", ParamKind::Int, params::int(&c.use_path))
        .param("path_mode", ParamKind::Int, params::int(&c.path_mode))
        .param(
            "received_avp",
            ParamKind::Str,
            params::string(&c.received_avp),
        )
        .param("gruu_enabled", ParamKind::Int, params::int(&c.gruu_enabled))
        .param(
            "append_branches",
            ParamKind::Int,
            params::int(&c.append_branches),
        )
        .param("retry_after", ParamKind::Int, params::int(&c.retry_after))
        .param(
            "min_expires_mode",
            ParamKind::Int,
            params::int(&c.min_expires_mode),
        )
        .param(
            "outbound_mode",
            ParamKind::Int,
            params::int(&c.outbound_mode),
        )
        .param("regid_mode", ParamKind::Int, params::int(&c.regid_mode))
        .param("flow_timer", ParamKind::Int, params::int(&c.flow_timer));
    let (r1, r2, r3, r4, r5) = (
        reg.cfg.max_expires.clone(),
        reg.cfg.max_contacts.clone(),
        reg.cfg.default_expires.clone(),
        reg.stats.accepted.clone(),
        reg.stats.rejected.clone(),
    );
    let (r6, r7) = (
        reg.cfg.default_expires_range.clone(),
        reg.cfg.expires_range.clone(),
    );
    def = def
        .stat_fn("max_expires", move || r1.load(Ordering::Relaxed))
        .stat_fn("max_contacts", move || r2.load(Ordering::Relaxed))
        .stat_fn("default_expire", move || r3.load(Ordering::Relaxed))
        .stat_fn("default_expires_range", move || r6.load(Ordering::Relaxed))
        .stat_fn("expires_range", move || r7.load(Ordering::Relaxed))
        .stat("accepted_regs", r4)
        .stat("rejected_regs", r5);
    // add_sock_hdr(name): `name: proto:ip:port` of the socket the request
    // came in on, for a registrar that passes the REGISTER on.
    def = def.cmd(
        "add_sock_hdr",
        1,
        RouteType::REQUEST,
        Some(fixup::f(fixup::spve)),
        |ctx, p| {
            let name = p[0].str(ctx).into_owned();
            let name = name.trim();
            if name.is_empty() {
                return -1;
            }
            let rcv = ctx.msg.rcv;
            let line = format!("{name}: {}:{}\r\n", rcv.proto.as_str(), rcv.dst);
            let end = ctx.msg.msg().headers_end();
            ctx.msg.edits.insert(end, line.as_bytes());
            1
        },
    );
    for n in 1..=3usize {
        let r = reg.clone();
        def = def.cmd("save", n, save_rt, fx.clone(), move |ctx, p| {
            let Some(d) = domain(p) else { return -1 };
            // (Flags as Kamailio reads them: decimal, or hex with `0x`.)
            let flags = p
                .get(1)
                .map_or(0, |f| sr_sdk::text::strtol(&f.str(ctx), 0).0);
            let uri = p.get(2).map(|u| u.str(ctx).into_owned());
            save::save(ctx, &r, &d, flags, uri.as_deref())
        });
    }
    for n in 1..=2usize {
        let (r, r2) = (reg.clone(), reg.clone());
        def = def
            .cmd("lookup", n, req, fx.clone(), move |ctx, p| {
                let Some(d) = domain(p) else { return -3 };
                let uri = p.get(1).map(|u| u.str(ctx).into_owned());
                lookup::lookup(ctx, &r, &d, uri.as_deref())
            })
            .cmd("registered", n, req, fx.clone(), move |ctx, p| {
                let Some(d) = domain(p) else { return -1 };
                let uri = p.get(1).map(|u| u.str(ctx).into_owned());
                lookup::registered(ctx, &r2, &d, uri.as_deref())
            });
    }
    for n in 2..=3usize {
        let r = reg.clone();
        def = def.cmd(
            "unregister",
            n,
            RouteType::ANY,
            fx.clone(),
            move |ctx, p| {
                let Some(d) = domain(p) else { return -1 };
                let uri = p[1].str(ctx).into_owned();
                let ruid = p.get(2).map(|u| u.str(ctx).into_owned());
                lookup::unregister(&r, &d, &uri, ruid.as_deref())
            },
        );
    }
    for n in 1..=2usize {
        let r = reg.clone();
        def = def.cmd("lookup_to_dset", n, req, fx.clone(), move |ctx, p| {
            let Some(d) = domain(p) else { return -3 };
            let uri = p.get(1).map(|u| u.str(ctx).into_owned());
            lookup::lookup_to_dset(ctx, &r, &d, uri.as_deref())
        });
    }
    let r9 = reg.clone();
    def = def.cmd(
        "reg_send_reply",
        0,
        RouteType::REQUEST | RouteType::FAILURE,
        None,
        move |ctx, _| save::send_held(ctx, &r9),
    );
    let (r6, r7) = (reg.clone(), reg.clone());
    def = def
        .cmd("lookup_branches", 1, req, fx.clone(), move |ctx, p| {
            let Some(d) = domain(p) else { return -3 };
            lookup::lookup_branches(ctx, &r6, &d)
        })
        .cmd(
            "reg_fetch_contacts",
            3,
            RouteType::ANY,
            fx,
            move |ctx, p| {
                let Some(d) = domain(p) else { return -1 };
                let uri = p[1].str(ctx).into_owned();
                let profile = p[2].str(ctx).into_owned();
                fetch::fetch(ctx, &r7, &d, &uri, &profile)
            },
        )
        .cmd(
            "reg_free_contacts",
            1,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            |ctx, p| {
                let profile = p[0].str(ctx).into_owned();
                fetch::free(ctx, &profile)
            },
        )
        .pv("ulc", fetch::pv_get);
    let r8 = reg;
    def.on_init(move |core| {
        let ul = bind::<Usrloc>(core, USRLOC_API)
            .ok_or("registrar needs the usrloc module (load it before registrar)")?;
        let _ = r8.ul.set(ul);
        core.register_api(REGISTRAR_API, Arc::new(RegistrarApi { reg: r8.clone() }));
        for (name, v) in [
            ("default_expires_range", &r8.cfg.default_expires_range),
            ("expires_range", &r8.cfg.expires_range),
        ] {
            let v = v.load(Ordering::Relaxed);
            if !(0..=100).contains(&v) {
                return Err(format!(
                    "registrar: {name} must be between 0 and 100 (a percentage), not {v}"
                ));
            }
        }
        let cfg = &r8.cfg;
        let ob = cfg.outbound_mode.load(Ordering::Relaxed);
        if !(0..=2).contains(&ob) {
            return Err("registrar: outbound_mode modparam must be 0 (not supported), 1 (supported), or 2 (supported and required)".into());
        }
        let regid = cfg.regid_mode.load(Ordering::Relaxed);
        if !(0..=1).contains(&regid) {
            return Err(format!("registrar: regid_mode must be 0 or 1, not {regid}"));
        }
        let ft = cfg.flow_timer.load(Ordering::Relaxed);
        if !(0..=999).contains(&ft) || (ft > 0 && ob == 0) {
            return Err(format!(
                "registrar: bad value for flow_timer ({ft}): 0 to 999, and other than 0 only with outbound_mode 1 or 2"
            ));
        }
        Ok(())
    })
}
