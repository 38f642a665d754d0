//! Module `topos` (Kamailio's): topology stripping. Loading it is enough
//! (with `record_route()` for every initial request): each message sent
//! keeps only this server's Via, loses the Record-Route entries of the
//! other side and gets a Contact of this server's carrying a key of the
//! dialog; what was taken out is stored in a database (Kamailio's
//! `topos_d` and `topos_t` tables) and put back on each message received,
//! so the routing script and every module see the messages whole.
//!
//! Not built: the redis storage, `contact_mode` 2 and the `xavu_*`
//! parameters, `rr_update`, the KEMI `event_callback` (each refused at
//! start when set).
#![forbid(unsafe_code)]

pub mod pack;
pub mod store;
pub mod tps;

use sr_sdk::db::DbPool;
use sr_sdk::exports::params::{get_int, get_str, int, int_cell, str_cell, string};
use sr_sdk::fixup;
use sr_sdk::prelude::*;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tps::{ContactMode, EventRoutes, Settings, Tps};

/// Kamailio's default `db_url`.
pub const DEFAULT_DB_URL: &str = "mysql://kamailio:kamailiorw@localhost/kamailio";

/// The module definition.
pub fn module() -> ModuleDef {
    let storage = str_cell("db");
    let db_url = str_cell(DEFAULT_DB_URL);
    let mask_callid = int_cell(0);
    let sanity_checks = int_cell(0);
    let branch_expire = int_cell(180);
    let dialog_expire = int_cell(10800);
    let clean_interval = int_cell(60);
    let event_callback = str_cell("");
    let event_mode = int_cell(3);
    let contact_host = str_cell("");
    let contact_mode = int_cell(0);
    let cparam_name = str_cell("tps");
    let xavu_cfg = str_cell("");
    let xavu_a = str_cell("");
    let xavu_b = str_cell("");
    let xavu_host = str_cell("");
    let rr_update = int_cell(0);
    let context = str_cell("");
    let state: Arc<OnceLock<Tps>> = Arc::new(OnceLock::new());
    let (s_in, s_out, s_init) = (state.clone(), state.clone(), state.clone());
    let init = {
        let storage = storage.clone();
        let db_url = db_url.clone();
        let mask_callid = mask_callid.clone();
        let branch_expire = branch_expire.clone();
        let dialog_expire = dialog_expire.clone();
        let clean_interval = clean_interval.clone();
        let event_callback = event_callback.clone();
        let event_mode = event_mode.clone();
        let contact_host = contact_host.clone();
        let contact_mode = contact_mode.clone();
        let cparam_name = cparam_name.clone();
        let xavus = [
            xavu_cfg.clone(),
            xavu_a.clone(),
            xavu_b.clone(),
            xavu_host.clone(),
        ];
        let rr_update = rr_update.clone();
        let context = context.clone();
        move |core: &dyn Core| -> Result<(), String> {
            match get_str(&storage).as_str() {
                "db" => {}
                "redis" => {
                    return Err("topos: storage 'redis' is not built; use 'db'".into());
                }
                other => return Err(format!("topos: unknown storage type: {other}")),
            }
            if !get_str(&event_callback).is_empty() {
                return Err("topos: event_callback needs a KEMI engine, which siprouter does not have; use event routes".into());
            }
            if get_int(&mask_callid) != 0 {
                return Err(
                    "topos: mask_callid is not built (Kamailio 5.6 does not implement it either)"
                        .into(),
                );
            }
            if get_int(&rr_update) != 0 {
                return Err("topos: rr_update is not built".into());
            }
            if xavus.iter().any(|x| !get_str(x).is_empty()) {
                return Err("topos: the xavu_* parameters are not built".into());
            }
            let mode = match get_int(&contact_mode) {
                0 => ContactMode::User,
                1 => ContactMode::Param,
                2 => return Err("topos: contact_mode 2 (keys from XAVUs) is not built".into()),
                n => return Err(format!("topos: invalid contact_mode {n} (0 or 1)")),
            };
            let ctx = get_str(&context);
            if ctx.len() > 12 {
                return Err(format!(
                    "topos: context '{ctx}' is longer than 12 characters"
                ));
            }
            let url = get_str(&db_url);
            let pool = DbPool::open(core, &url).map_err(|e| format!("topos: {e}"))?;
            for t in [store::DIALOGS, store::BRANCHES] {
                let ok = pool
                    .with(|c| c.table_exists(t))
                    .map_err(|e| format!("topos: {e}"))?;
                if !ok {
                    return Err(format!(
                        "topos: table '{t}' is missing in {url} (create it with 'siprouter db init')"
                    ));
                }
            }
            let cfg = Settings {
                contact_mode: mode,
                cparam_name: get_str(&cparam_name),
                contact_host: get_str(&contact_host),
                branch_expire: get_int(&branch_expire),
                dialog_expire: get_int(&dialog_expire),
                event_mode: get_int(&event_mode),
                context: ctx,
            };
            let interval = get_int(&clean_interval).max(1) as u64;
            let _ = state.set(Tps::new(cfg, pool, core.handle()));
            let st = state.clone();
            core.add_timer(
                "topos-clean",
                Duration::from_secs(interval),
                Arc::new(move || {
                    if let Some(t) = st.get() {
                        t.clean();
                    }
                }),
            );
            Ok(())
        }
    };
    ModuleDef::new("topos")
        .param("storage", ParamKind::Str, string(&storage))
        .param("db_url", ParamKind::Str, string(&db_url))
        .param("mask_callid", ParamKind::Int, int(&mask_callid))
        .param("sanity_checks", ParamKind::Int, int(&sanity_checks))
        .param("branch_expire", ParamKind::Int, int(&branch_expire))
        .param("dialog_expire", ParamKind::Int, int(&dialog_expire))
        .param("clean_interval", ParamKind::Int, int(&clean_interval))
        .param("event_callback", ParamKind::Str, string(&event_callback))
        .param("event_mode", ParamKind::Int, int(&event_mode))
        .param("contact_host", ParamKind::Str, string(&contact_host))
        .param("contact_mode", ParamKind::Int, int(&contact_mode))
        .param("cparam_name", ParamKind::Str, string(&cparam_name))
        .param("xavu_cfg", ParamKind::Str, string(&xavu_cfg))
        .param("xavu_field_a_contact", ParamKind::Str, string(&xavu_a))
        .param("xavu_field_b_contact", ParamKind::Str, string(&xavu_b))
        .param(
            "xavu_field_contact_host",
            ParamKind::Str,
            string(&xavu_host),
        )
        .param("rr_update", ParamKind::Int, int(&rr_update))
        .param("context", ParamKind::Str, string(&context))
        .cmd(
            "tps_set_context",
            1,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            |ctx, p| {
                tps::set_context(&p[0].str(ctx));
                1
            },
        )
        .on_init(init)
        // The routes are compiled after mod_init: looked up here.
        .on_child_init(move |core, rank| {
            if rank == sr_sdk::rank::PROC_INIT {
                if let Some(t) = s_init.get() {
                    let _ = t.routes.set(EventRoutes {
                        outgoing: core.route_id(RouteType::EVENT, "topos:msg-outgoing"),
                        sending: core.route_id(RouteType::EVENT, "topos:msg-sending"),
                        incoming: core.route_id(RouteType::EVENT, "topos:msg-incoming"),
                        receiving: core.route_id(RouteType::EVENT, "topos:msg-receiving"),
                    });
                }
            }
            Ok(())
        })
        .on_net_data_in(move |buf, _rcv| s_in.get().and_then(|t| t.received(buf)))
        .on_net_data_out(move |buf, _dest| s_out.get().and_then(|t| t.sending(buf)))
}
