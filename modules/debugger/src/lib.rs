//! Module `debugger`: Kamailio's debugger as configurations use it for
//! tracing: with `cfgtrace` every action the routing script runs is
//! logged — route type and block, file, line, Kamailio's action type
//! number and the action's name — at `log_level`, written with
//! `log_level_name` in place of the level when set (the stock
//! configuration's WITH_DEBUG: `exec`). The `dbg.trace` RPC method turns
//! tracing on and off at run time. `dbg_sip_msg` and `dbg_pv_dump` write
//! the message as it would be sent and the variables to the log. Interactive
//! breakpoints and per-module log levels are not built (their parameters
//! are accepted at their defaults only).
#![forbid(unsafe_code)]

mod dump;

use sr_sdk::cfgtrace::{CfgTrace, CFG_TRACE_API};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// The module's parameters.
#[derive(Debug)]
struct Params {
    cfgtrace: Arc<AtomicI64>,
    log_level: Arc<AtomicI64>,
    log_prefix: Arc<RwLock<String>>,
    log_level_name: Arc<RwLock<String>>,
}

/// Parameters that change nothing here: accepted with any value.
const IGNORED: &[&str] = &[
    "log_facility",
    "step_usleep",
    "step_loops",
    "mod_hash_size",
    "cfgpkgcheck",
    "reset_msgid",
    "mod_facility",
];

/// Parameters whose feature is not built: accepted at their default only.
const DEFAULT_ONLY: &[(&str, i64, &str)] = &[
    ("breakpoint", 0, "interactive breakpoints"),
    ("log_assign", 0, "logging assigned values"),
    ("mod_level_mode", 0, "per-module log levels"),
    ("mod_facility_mode", 0, "per-module log facilities"),
    ("cfgtest", 0, "cfgt's unit-test dumps"),
];

/// The module definition.
pub fn module() -> ModuleDef {
    let p = Arc::new(Params {
        cfgtrace: params::int_cell(0),
        log_level: params::int_cell(-1),
        log_prefix: params::str_cell("*** cfgtrace:"),
        log_level_name: params::str_cell(""),
    });
    let trace = Arc::new(CfgTrace::default());
    let mut def = ModuleDef::new("debugger");
    def = def
        .param("cfgtrace", ParamKind::Int, params::int(&p.cfgtrace))
        .param("log_level", ParamKind::Int, params::int(&p.log_level))
        .param("log_prefix", ParamKind::Str, params::string(&p.log_prefix))
        .param(
            "log_level_name",
            ParamKind::Str,
            params::string(&p.log_level_name),
        );
    for name in IGNORED {
        def = def.param(name, ParamKind::Any, |_| Ok(()));
    }
    def = def.param("mod_level", ParamKind::Any, |v| match v {
        ParamValue::Str(s) if s.is_empty() => Ok(()),
        _ => Err("debugger: 'mod_level' (per-module log levels) is not supported".into()),
    });
    for (name, ok, what) in DEFAULT_ONLY {
        let (ok, what) = (*ok, *what);
        def = def.param(name, ParamKind::Int, move |v| match v {
            ParamValue::Int(i) if i == ok => Ok(()),
            ParamValue::Str(s) if s.trim().parse::<i64>() == Ok(ok) => Ok(()),
            _ => Err(format!(
                "debugger: '{name}' other than {ok} is not supported ({what} is not built)"
            )),
        });
    }
    let (pi, ti) = (p.clone(), trace.clone());
    def = def.on_init(move |core| {
        ti.on
            .store(params::get_int(&pi.cfgtrace) != 0, Ordering::Relaxed);
        ti.level.store(
            params::get_int(&pi.log_level).clamp(-5, 3) as i32,
            Ordering::Relaxed,
        );
        if let Ok(mut l) = ti.label.write() {
            *l = params::get_str(&pi.log_level_name);
        }
        if let Ok(mut x) = ti.prefix.write() {
            *x = params::get_str(&pi.log_prefix);
        }
        core.register_api(CFG_TRACE_API, ti.clone());
        Ok(())
    });
    // With breakpoints off (the only mode built), a breakpoint is passed
    // by, as in Kamailio.
    def = def.cmd(
        "dbg_breakpoint",
        1,
        RouteType::ANY,
        Some(fixup::f(fixup::igp)),
        |_ctx, _a| 1,
    );
    for n in 0..=2usize {
        def = def.cmd(
            "dbg_sip_msg",
            n,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            |ctx, a| {
                let l = a.first().map(|x| x.str(ctx).into_owned());
                let l = dump::level(l.as_deref(), sr_sdk::log::L_ERR);
                dump::sip_msg(ctx, l)
            },
        );
    }
    for n in 0..=2usize {
        def = def.cmd(
            "dbg_pv_dump",
            n,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            |ctx, a| {
                let mask = a.first().map_or(31, |x| x.int(ctx));
                let l = a.get(1).map(|x| x.str(ctx).into_owned());
                let l = dump::level(l.as_deref(), sr_sdk::log::L_DBG);
                dump::pv_dump(ctx, mask, l)
            },
        );
    }
    let tr = trace.clone();
    def.rpc(
        "dbg.trace",
        "Turns the tracing of the routing script on or off (\"on\" | \"off\").",
        move |params| {
            let cmd = sr_sdk::rpc::param_str(params, 0, "on or off")?;
            let on = match cmd.as_str() {
                "on" => true,
                "off" => false,
                _ => return Err(RpcError::new(500, "Unknown inner command")),
            };
            tr.on.store(on, Ordering::Relaxed);
            Ok(Json::Object(Default::default()))
        },
    )
}
