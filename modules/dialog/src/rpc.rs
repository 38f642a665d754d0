//! The `dlg.*` RPC methods: listing dialogs, ending them, profile sizes
//! and members, the count of dialogs by state.

use crate::bye::Side;
use crate::dlg::{Dialog, Leg, State};
use crate::{track, Dlg};
use sr_sdk::prelude::*;
use std::sync::Arc;
use std::time::Instant;

fn leg(l: &Leg) -> Json {
    json!({
        "tag": l.tag,
        "contact": l.contact,
        "cseq": l.cseq.to_string(),
        "route_set": l.route_set.join(","),
        "socket": l.socket,
    })
}

/// One dialog as `dlg.list` shows it.
pub fn dialog_json(x: &Dialog, with_ctx: bool) -> Json {
    let now = Instant::now();
    let mut o = json!({
        "h_entry": x.h_entry,
        "h_id": x.h_id,
        "ref": 1,
        "call-id": x.callid,
        "from_uri": x.from_uri,
        "to_uri": x.to_uri,
        "state": x.state.num(),
        "start_ts": x.start_ts,
        "init_ts": x.init_ts,
        "end_ts": x.end_ts,
        "timeout": if x.deadline.is_some() { crate::dlg::unix_now() + x.timeout_left(now) } else { 0 },
        "lifetime": x.lifetime,
        "dflags": x.dflags,
        "sflags": x.sflags,
        "iflags": 0,
        "caller": leg(&x.caller),
        "callee": leg(&x.callee),
        "profiles": x.profiles.iter().map(|l| json!({ l.profile.clone(): l.value })).collect::<Vec<_>>(),
        "variables": x.vars.iter().map(|(k, v)| json!({ k.clone(): v })).collect::<Vec<_>>(),
    });
    if with_ctx {
        o["context"] = json!({
            "on_timeout": x.toroute,
        });
    }
    o
}

fn str_param(p: &[Json], i: usize, what: &str) -> Result<String, RpcError> {
    match p.get(i) {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(Json::Number(n)) => Ok(n.to_string()),
        _ => Err(RpcError::invalid_params(format!("missing {what}"))),
    }
}

fn u32_param(p: &[Json], i: usize, what: &str) -> Result<u32, RpcError> {
    let v = match p.get(i) {
        Some(Json::Number(n)) => n.as_u64(),
        Some(Json::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    v.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| RpcError::invalid_params(format!("{what} must be a number")))
}

fn list(d: &Dlg, ctx: bool, filter: Option<(&str, Option<&str>)>) -> Json {
    let t = d.table();
    Json::Array(
        t.all()
            .into_iter()
            .filter(|x| {
                filter.is_none_or(|(c, f)| x.callid == c && f.is_none_or(|f| f == x.caller.tag))
            })
            .map(|x| dialog_json(x, ctx))
            .collect(),
    )
}

fn check_profile(d: &Dlg, p: &[Json]) -> Result<(String, Option<String>), RpcError> {
    let name = str_param(p, 0, "profile name")?;
    let Some(with_value) = d.profiles().get(&name) else {
        return Err(RpcError::new(500, format!("Non existing profile: {name}")));
    };
    let value = if with_value {
        p.get(1).map(|_| str_param(p, 1, "value")).transpose()?
    } else {
        None
    };
    Ok((name, value))
}

fn end(d: &Dlg, key: (u32, u32)) -> Result<Json, RpcError> {
    let answered = d.table().get(key).map(|x| x.state);
    match answered {
        Some(s) if s.answered() => {
            let core = d
                .core()
                .ok_or_else(|| RpcError::new(500, "server is stopping"))?;
            track::terminate(d, &*core, key, Some(Side::Both), false);
            Ok(Json::Null)
        }
        Some(State::Deleted) | None => Err(RpcError::new(404, "Requested Dialog not found")),
        Some(_) => Err(RpcError::new(500, "Dialog is not answered yet")),
    }
}

/// Adds the RPC methods to the module.
pub fn export(def: ModuleDef, d: &Arc<Dlg>) -> ModuleDef {
    let c = |d: &Arc<Dlg>| d.clone();
    let (d1, d2, d3, d4, d5, d6, d7, d8, d9) =
        (c(d), c(d), c(d), c(d), c(d), c(d), c(d), c(d), c(d));
    def.rpc("dlg.list", "List the dialogs.", move |_| {
        Ok(list(&d1, false, None))
    })
    .rpc(
        "dlg.list_ctx",
        "List the dialogs, with their context.",
        move |_| Ok(list(&d2, true, None)),
    )
    .rpc(
        "dlg.dlg_list",
        "The dialogs of a Call-ID (and From-tag).",
        move |p| {
            let callid = str_param(p, 0, "Call-ID")?;
            let ftag = p.get(1).map(|_| str_param(p, 1, "From-tag")).transpose()?;
            Ok(list(&d3, false, Some((&callid, ftag.as_deref()))))
        },
    )
    .rpc(
        "dlg.dlg_list_ctx",
        "The dialogs of a Call-ID (and From-tag), with their context.",
        move |p| {
            let callid = str_param(p, 0, "Call-ID")?;
            let ftag = p.get(1).map(|_| str_param(p, 1, "From-tag")).transpose()?;
            Ok(list(&d4, true, Some((&callid, ftag.as_deref()))))
        },
    )
    .rpc(
        "dlg.end_dlg",
        "End an answered dialog (h_entry h_id): BYE to both sides.",
        move |p| {
            let key = (u32_param(p, 0, "h_entry")?, u32_param(p, 1, "h_id")?);
            end(&d5, key)
        },
    )
    .rpc(
        "dlg.terminate_dlg",
        "End an answered dialog (Call-ID From-tag To-tag): BYE to both sides.",
        move |p| {
            let (callid, ftag, ttag) = (
                str_param(p, 0, "Call-ID")?,
                str_param(p, 1, "From-tag")?,
                str_param(p, 2, "To-tag")?,
            );
            let key = d6.table().find(&callid, &ftag, &ttag).map(|(k, _)| k);
            match key {
                Some(k) => end(&d6, k),
                None => Err(RpcError::new(404, "Requested Dialog not found")),
            }
        },
    )
    .rpc(
        "dlg.profile_get_size",
        "The number of dialogs in a profile (with a value).",
        move |p| {
            let (name, value) = check_profile(&d7, p)?;
            let n = d7.table().counts.size(&name, value.as_deref());
            Ok(json!({ "profile": name, "value": value.unwrap_or_default(), "count": n }))
        },
    )
    .rpc(
        "dlg.profile_list",
        "The dialogs in a profile (with a value).",
        move |p| {
            let (name, value) = check_profile(&d8, p)?;
            let t = d8.table();
            let v: Vec<Json> = t
                .all()
                .into_iter()
                .filter(|x| {
                    x.profiles
                        .iter()
                        .any(|l| l.profile == name && value.as_deref().is_none_or(|v| v == l.value))
                })
                .map(|x| dialog_json(x, false))
                .collect();
            Ok(Json::Array(v))
        },
    )
    .rpc("dlg.stats_active", "The dialogs by state.", move |_| {
        let t = d9.table();
        let (s, e, c, a) = (
            t.count(|s| s == State::Unconfirmed),
            t.count(|s| s == State::Early),
            t.count(|s| s == State::ConfirmedNa),
            t.count(|s| s == State::Confirmed),
        );
        Ok(json!({
            "starting": s,
            "connecting": e + c,
            "answering": 0,
            "ongoing": a,
            "all": s + e + c + a,
        }))
    })
}
