//! # acc: accounting
//!
//! Kamailio's `acc` module: transactions whose request carries
//! `log_flag` (`db_flag`) are written to the log (the `acc` table) when
//! their final reply goes upstream — 2xx always, negative ones with
//! `failed_transaction_flag`, provisional ones with a body under
//! `early_media`; INVITEs with `log_missed_flag` (`db_missed_flag`) that
//! end negatively are written as missed calls (`missed_calls`), once per
//! forwarding attempt. `acc_log_request(comment)`,
//! `acc_db_request(comment, table)` and `acc_request(comment, table)`
//! write a record at once.
//!
//! The outcome of transactions comes from tm's callbacks
//! ([`sr_mod_tm::TmApi::register_callback`]); tables are written through
//! the SDK database API (`db_url`, any loaded driver).
#![forbid(unsafe_code)]

pub mod extra;
pub mod logic;
pub mod params;
pub mod record;

use logic::Acc;
use params::Params;
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::db::DbPool;
use sr_sdk::prelude::*;
use std::sync::Arc;

fn init(acc: &Arc<Acc>, p: &Params, core: &dyn Core) -> Result<(), String> {
    let s = p.settings()?;
    let url = params::get(&p.db_url);
    if !url.is_empty() {
        let pool = DbPool::open(core, &url).map_err(|e| format!("acc: {e}"))?;
        for (used, table) in [
            (s.db_flag != 0, &s.table_acc),
            (s.db_missed != 0, &s.table_missed),
        ] {
            if used && !pool.with(|c| c.table_exists(table)).unwrap_or(false) {
                lm_warn!(
                    "acc: table '{table}' does not exist (create it with 'siprouter db init')"
                );
            }
        }
        let _ = acc.db.set(Arc::new(pool));
    } else if s.db_flag != 0 || s.db_missed != 0 {
        return Err("acc: db_flag or db_missed_flag is set but db_url is not".into());
    }
    let _ = acc.settings.set(s);
    let tm = bind::<TmApi>(core, TM_API).ok_or("acc needs the tm module (load tm before acc)")?;
    let a = acc.clone();
    tm.register_callback(Arc::new(move |core, ev| a.on_event(core, ev)));
    Ok(())
}

/// The module definition.
pub fn module() -> ModuleDef {
    let acc = Arc::new(Acc::default());
    let p = Arc::new(Params::default());
    let any = RouteType::ANY;
    let spve = Some(fixup::f(fixup::spve));
    let (a0, a1, a2, a3) = (acc.clone(), acc.clone(), acc.clone(), acc);
    let p0 = p.clone();
    p.export(ModuleDef::new("acc"))
        .on_init(move |core| init(&a0, &p0, core))
        .cmd("acc_log_request", 1, any, spve.clone(), move |ctx, a| {
            let c = a[0].str(ctx).into_owned();
            a1.log_request(ctx, &c)
        })
        .cmd("acc_db_request", 2, any, spve.clone(), move |ctx, a| {
            let c = a[0].str(ctx).into_owned();
            let t = a[1].str(ctx).into_owned();
            a2.db_request(ctx, &c, &t)
        })
        .cmd("acc_request", 2, any, spve, move |ctx, a| {
            let c = a[0].str(ctx).into_owned();
            let t = a[1].str(ctx).into_owned();
            let rc = a3.log_request(ctx, &c);
            if a3.db.get().is_some() {
                return a3.db_request(ctx, &c, &t);
            }
            rc
        })
}
