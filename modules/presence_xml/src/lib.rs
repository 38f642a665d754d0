//! Module `presence_xml`: the XML event packages of the presence module
//! (Kamailio's presence_xml): `presence` (PIDF bodies checked when
//! published, merged for NOTIFY as Kamailio merges them, an offline body
//! for a removed publication), `presence.winfo` (watcher information)
//! and `xcap-diff`. Watchers are authorised with `force_active=1`; XCAP
//! authorization rules are not built, so `force_active=0` is refused.
#![forbid(unsafe_code)]

pub mod check;
pub mod pidf;
pub mod xml;

use sr_mod_presence::events::{EventDef, Kind, PresenceApi, Status, PRESENCE_API};
use sr_sdk::prelude::*;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

/// The module's parameters.
#[derive(Debug)]
pub struct Params {
    /// `force_active`.
    pub force_active: Arc<AtomicI64>,
    /// `disable_presence`.
    pub disable_presence: Arc<AtomicI64>,
    /// `disable_winfo`.
    pub disable_winfo: Arc<AtomicI64>,
    /// `disable_xcapdiff`.
    pub disable_xcapdiff: Arc<AtomicI64>,
    /// `passive_mode`: no packages added.
    pub passive_mode: Arc<AtomicI64>,
    /// `default_expires`.
    pub default_expires: Arc<AtomicI64>,
    /// `db_url` (for XCAP documents, which are not read).
    pub db_url: Arc<RwLock<String>>,
}

impl Default for Params {
    fn default() -> Self {
        use params::{int_cell as i, str_cell as s};
        Params {
            force_active: i(0),
            disable_presence: i(0),
            disable_winfo: i(0),
            disable_xcapdiff: i(0),
            passive_mode: i(0),
            default_expires: i(3600),
            db_url: s(""),
        }
    }
}

fn on(cell: &AtomicI64) -> bool {
    params::get_int(cell) != 0
}

fn init(p: &Params, core: &dyn Core) -> Result<(), String> {
    let api = bind::<PresenceApi>(core, PRESENCE_API)
        .ok_or("presence_xml needs the presence module (load presence before presence_xml)")?;
    if on(&p.passive_mode) {
        return Ok(());
    }
    if !on(&p.force_active) {
        return Err("presence_xml: force_active=0 authorizes watchers by XCAP rules, which are not supported; set modparam(\"presence_xml\", \"force_active\", 1)".into());
    }
    let expires = params::get_int(&p.default_expires).clamp(0, i64::from(u32::MAX)) as u32;
    if !on(&p.disable_presence) {
        let mut e = EventDef::publ("presence", "application/pidf+xml");
        e.default_expires = expires;
        e.req_auth = true;
        e.agg = Some(Arc::new(pidf::aggregate));
        e.offline = Some(Arc::new(pidf::offline));
        e.check = Some(Arc::new(pidf::well_formed));
        e.auth = Some(Arc::new(|_w: &str, _p: &str| Status::Active));
        api.add_event(e)?;
    }
    if !on(&p.disable_winfo) {
        let mut e = EventDef::publ("presence.winfo", "application/watcherinfo+xml");
        e.kind = Kind::Winfo;
        e.default_expires = expires;
        api.add_event(e)?;
    }
    if !on(&p.disable_xcapdiff) {
        let mut e = EventDef::publ("xcap-diff", "application/xcap-diff+xml");
        e.default_expires = expires;
        api.add_event(e)?;
    }
    Ok(())
}

/// Parameters whose feature is not built: accepted at these values only.
const FIXED: &[(&str, i64, &str)] = &[
    ("disable_bla", 1, "the dialog;sla package"),
    (
        "force_dummy_presence",
        0,
        "a made-up body for presentities without publications",
    ),
    (
        "force_presence_single_body",
        0,
        "choosing one body instead of merging",
    ),
];

/// Parameters that change nothing here (XCAP servers and documents).
const IGNORED: &[&str] = &[
    "xcap_table",
    "integrated_xcap_server",
    "xcap_server",
    "xcapauth_userdel_reason",
    "presence_single_body_priorities",
    "presence_single_body_lookup_element",
];

/// The module definition.
pub fn module() -> ModuleDef {
    let p = Arc::new(Params::default());
    let mut def = ModuleDef::new("presence_xml");
    for (name, cell) in [
        ("force_active", &p.force_active),
        ("disable_presence", &p.disable_presence),
        ("disable_winfo", &p.disable_winfo),
        ("disable_xcapdiff", &p.disable_xcapdiff),
        ("passive_mode", &p.passive_mode),
        ("default_expires", &p.default_expires),
    ] {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    def = def.param("db_url", ParamKind::Str, params::string(&p.db_url));
    for name in IGNORED {
        def = def.param(name, ParamKind::Any, |_| Ok(()));
    }
    for (name, ok, what) in FIXED {
        let (ok, what) = (*ok, *what);
        def = def.param(name, ParamKind::Int, move |v| match v {
            ParamValue::Int(i) if i == ok => Ok(()),
            ParamValue::Str(s) if s.trim().parse::<i64>() == Ok(ok) => Ok(()),
            _ => Err(format!(
                "presence_xml: '{name}' other than {ok} is not supported ({what} is not built)"
            )),
        });
    }
    let pi = p.clone();
    def = def.on_init(move |core| init(&pi, core));
    let api: Arc<std::sync::OnceLock<Arc<PresenceApi>>> = Arc::default();
    let a0 = api.clone();
    def = def.on_child_init(move |core, _| {
        if let Some(a) = bind::<PresenceApi>(core, PRESENCE_API) {
            let _ = a0.set(a);
        }
        Ok(())
    });
    for (name, f) in [
        (
            "pres_check_basic",
            check::check_basic as fn(&str, &str) -> i32,
        ),
        ("pres_check_activities", check::check_activities),
    ] {
        let api = api.clone();
        def = def.cmd(
            name,
            2,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            move |ctx, p| {
                let (uri, what) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
                presentity_check(&api, &uri, &what, f)
            },
        );
    }
    def
}

/// Runs a check on the presentity's merged `presence` document: -1 for a
/// bad URI, no `presence` package, or no document.
fn presentity_check(
    api: &std::sync::OnceLock<Arc<PresenceApi>>,
    uri: &str,
    what: &str,
    f: fn(&str, &str) -> i32,
) -> i32 {
    if sr_sdk::sip_msg::Uri::parse(uri).is_err() {
        lm_err!("presence_xml: bad uri: {uri}");
        return -1;
    }
    let Some(api) = api.get() else {
        return -1;
    };
    if api.find("presence").is_none() {
        lm_err!("presence_xml: event presence is not registered");
        return -1;
    }
    match api.presentity_body(uri, "presence") {
        Some(body) => f(&body, what),
        None => {
            lm_dbg!("presence_xml: cannot get presentity for {uri}");
            -1
        }
    }
}
