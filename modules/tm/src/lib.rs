//! # tm: transaction-stateful proxying
//!
//! Kamailio's `tm` module: `t_relay()` creates a transaction for the
//! request (the request, its edits, flags and AVPs are cloned into it),
//! sends one branch per destination (R-URI plus `append_branch`/`lookup`
//! branches, each through `branch_route`), relays provisional replies
//! and every 2xx at once, holds negative replies until every branch ended
//! and relays the best one (or runs `failure_route`, where `t_relay()`
//! starts the next serial-forking round), CANCELs pending branches,
//! ACKs negative replies, answers with 408 on timeout and absorbs
//! retransmissions in both directions.
//!
//! The proxy logic is sans-IO ([`proxy`]): unit-tested on a virtual
//! clock, driven here by the real clock from the core's timer thread
//! ([`engine`]). Statistics are registered under the `tmx` group, as
//! Kamailio names them.
#![forbid(unsafe_code)]

pub mod api;
pub mod blocklist;
pub mod callbacks;
pub mod cell;
pub mod contacts;
pub mod ctx;
pub mod engine;
pub mod funcs;
pub mod funcs_more;
pub mod local;
pub mod params;
pub mod proxy;
pub mod relay;
pub mod reply;
pub mod rpc;
pub mod rpc_reply;
pub mod rpc_uac;
pub mod stats;
pub mod suspend;
pub mod table;

pub use api::{TmApi, TM_API};
pub use callbacks::{TmCallback, TmEvent, TmEventKind};

use engine::Engine;
use sr_sdk::prelude::*;
use sr_sdk::stats::{StatExport, StatSource};
use std::sync::Arc;
use std::time::Duration;

/// The module definition.
pub fn module() -> ModuleDef {
    let e = Arc::new(Engine::new());
    let mut def = ModuleDef::new("tm");
    def = e.params.export(def);
    def = funcs::export(def, &e);
    def = rpc::export(def, &e);
    def = rpc_reply::export(def, &e);
    let uac = Arc::new(rpc_uac::RpcUac::default());
    def = rpc_uac::export(def, &e, &uac);
    def = funcs_more::export(def, &e, &uac);
    let (e1, e2, e7) = (e.clone(), e.clone(), e.clone());
    let (u1, u2) = (uac.clone(), uac);
    def.on_init(move |core| {
        e1.set_core(core);
        let bridge: Arc<dyn sr_mod_sl::StatefulReply> = Arc::new(api::SlBridge(e1.clone()));
        core.register_api(sr_mod_sl::STATEFUL_API, Arc::new(bridge));
        core.register_api(TM_API, Arc::new(TmApi::new(e1.clone())));
        let mut stats: Vec<StatExport> = e1
            .stats
            .list()
            .into_iter()
            .map(|(name, s)| StatExport {
                // A gauge of transactions in progress: a reset would
                // make it wrong (and negative once they end).
                no_reset: name == "active_transactions",
                name,
                source: StatSource::Value(s),
            })
            .collect();
        let e4 = e1.clone();
        stats.push(StatExport {
            name: "inuse_transactions".into(),
            no_reset: true,
            source: StatSource::Func(Arc::new(move || e4.inuse() as i64)),
        });
        if let Err(err) = core.register_stats("tmx", stats) {
            lm_warn!("tm: statistics not registered: {err}");
        }
        let e5 = e1.clone();
        core.add_timer("tm", Duration::from_millis(10), Arc::new(move || e5.tick()));
        let (u, e6) = (u1.clone(), e1.clone());
        core.add_timer(
            "tm_rpc_uac",
            Duration::from_millis(100),
            Arc::new(move || {
                if let Some(core) = e6.core() {
                    u.tick(&*core);
                }
            }),
        );
        Ok(())
    })
    // (Replies to requests RPC sent are taken first.)
    .on_response(move |ctx| u2.on_response(ctx.msg) || e2.on_response(ctx))
    .on_request_done(move |ctx| {
        e7.send_delayed_error(ctx);
        false
    })
}
