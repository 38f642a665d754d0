//! Module `topoh` (Kamailio's): topology hiding. Loading it is enough: on
//! every message sent, the Vias below this server's, the Record-Route
//! entries of other hops, the Contact and (with `mask_callid`) the
//! Call-ID are encoded into values at `mask_ip`; on every message
//! received, what was encoded is decoded before the script runs, so the
//! routing script and every module see the real addresses. The encoding
//! and the `TH` cookie are Kamailio's: with the same `mask_key`,
//! siprouter and Kamailio servers decode each other's messages (behind a
//! load balancer, or during a migration).
#![forbid(unsafe_code)]

pub mod mask;
pub mod splice;
pub mod th;

use sr_sdk::exports::params::{get_int, get_str, int, int_cell, str_cell, string};
use sr_sdk::prelude::*;
use std::sync::{Arc, OnceLock};

/// Kamailio 5.6's default `mask_key` (its documentation says `_static_value_`;
/// the code, and so interoperability, uses this).
pub const DEFAULT_KEY: &str = "aL9.n8~Hm]Z";

/// The module definition.
pub fn module() -> ModuleDef {
    let key = str_cell(DEFAULT_KEY);
    let ip = str_cell("127.0.0.8");
    let uparam_name = str_cell("line");
    let uparam_prefix = str_cell("sr-");
    let vparam_name = str_cell("branch");
    let vparam_prefix = str_cell("z9hG4bKsr-");
    let callid_prefix = str_cell("!!:");
    let event_callback = str_cell("");
    let mask_callid = int_cell(0);
    let mask_mode = int_cell(0);
    let sanity_checks = int_cell(0);
    let uri_prefix_checks = int_cell(0);
    let event_mode = int_cell(3);
    let use_mode = int_cell(0);
    let state: Arc<OnceLock<th::Th>> = Arc::new(OnceLock::new());
    let (s_in, s_out, s_init) = (state.clone(), state.clone(), state.clone());
    let init = {
        let (key, ip, un, up, vn, vp, cp) = (
            key.clone(),
            ip.clone(),
            uparam_name.clone(),
            uparam_prefix.clone(),
            vparam_name.clone(),
            vparam_prefix.clone(),
            callid_prefix.clone(),
        );
        let (mc, mm, upc, um, cb, em) = (
            mask_callid.clone(),
            mask_mode.clone(),
            uri_prefix_checks.clone(),
            use_mode.clone(),
            event_callback.clone(),
            event_mode.clone(),
        );
        move |core: &dyn Core| -> Result<(), String> {
            if !get_str(&cb).is_empty() {
                return Err("topoh: event_callback needs a KEMI engine, which siprouter does not have; use event routes".into());
            }
            let mask = mask::Mask::new(get_str(&key).as_bytes())?;
            let ip = get_str(&ip);
            if ip.is_empty() {
                return Err(
                    "topoh: mask_ip must be set (an address per socket is not built)".into(),
                );
            }
            if get_int(&um) == 1 {
                // Library mode: only the API (not built) would use it.
                return Ok(());
            }
            let (un, up, vn, vp) = (get_str(&un), get_str(&up), get_str(&vn), get_str(&vp));
            let th = th::Th {
                mask,
                via_prefix: format!("SIP/2.0/UDP {ip};{vn}={vp}"),
                uri_prefix: format!("sip:{ip};{un}={up}"),
                addr_myself: core.is_myself(ip.trim_matches(['[', ']']), None),
                ip,
                uparam_name: un,
                uparam_prefix: up,
                vparam_name: vn,
                vparam_prefix: vp,
                callid_prefix: get_str(&cp),
                mask_callid: get_int(&mc) != 0,
                keep_3xx_contact: get_int(&mm) & 1 != 0,
                uri_prefix_checks: get_int(&upc) != 0,
                core: core.handle(),
                event_mode: get_int(&em),
                routes: OnceLock::new(),
            };
            if th.addr_myself {
                sr_sdk::lm_info!("mask address matches myself [{}]", th.ip);
            }
            let _ = state.set(th);
            Ok(())
        }
    };
    ModuleDef::new("topoh")
        .param("mask_key", ParamKind::Str, string(&key))
        .param("mask_ip", ParamKind::Str, string(&ip))
        .param("mask_callid", ParamKind::Int, int(&mask_callid))
        .param("mask_mode", ParamKind::Int, int(&mask_mode))
        .param("uparam_name", ParamKind::Str, string(&uparam_name))
        .param("uparam_prefix", ParamKind::Str, string(&uparam_prefix))
        .param("vparam_name", ParamKind::Str, string(&vparam_name))
        .param("vparam_prefix", ParamKind::Str, string(&vparam_prefix))
        .param("callid_prefix", ParamKind::Str, string(&callid_prefix))
        .param("sanity_checks", ParamKind::Int, int(&sanity_checks))
        .param("uri_prefix_checks", ParamKind::Int, int(&uri_prefix_checks))
        .param("event_callback", ParamKind::Str, string(&event_callback))
        .param("event_mode", ParamKind::Int, int(&event_mode))
        .param("use_mode", ParamKind::Int, int(&use_mode))
        .on_init(init)
        // The routes are compiled after mod_init: looked up here.
        .on_child_init(move |core, rank| {
            if rank == sr_sdk::rank::PROC_INIT {
                if let Some(th) = s_init.get() {
                    let _ = th.routes.set(th::EventRoutes {
                        outgoing: core.route_id(RouteType::EVENT, "topoh:msg-outgoing"),
                        sending: core.route_id(RouteType::EVENT, "topoh:msg-sending"),
                    });
                }
            }
            Ok(())
        })
        .on_net_data_in(move |buf, _rcv| s_in.get().and_then(|t| t.received(buf)))
        .on_net_data_out(move |buf, _dest| s_out.get().and_then(|t| t.sending(buf)))
}
