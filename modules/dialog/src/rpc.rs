//! The `dlg.*` RPC methods: listing dialogs, ending them, profile sizes
//! and members, the count of dialogs by state — with Kamailio's result
//! shapes and error codes.

use crate::bye::Side;
use crate::dlg::{Dialog, Leg, State, DFLAG_TIMEOUT_BYE};
use crate::{track, Dlg};
use sr_sdk::prelude::*;
use std::sync::Arc;
use std::time::Instant;

fn leg(l: &Leg, known: bool) -> Json {
    if !known {
        return json!({
            "tag": Json::Null,
            "contact": Json::Null,
            "cseq": Json::Null,
            "route_set": Json::Null,
            "socket": Json::Null,
        });
    }
    json!({
        "tag": l.tag,
        "contact": l.contact,
        "cseq": l.cseq.to_string(),
        "route_set": l.route_set.join(","),
        "socket": l.socket,
    })
}

/// One dialog as `dlg.list` shows it (Kamailio's fields, in its order):
/// the callee's fields are null until a 2xx; a profile without values is
/// a bare name, one with values `{name: value}`.
pub fn dialog_json(d: &Dlg, x: &Dialog, with_ctx: bool) -> Json {
    let now = Instant::now();
    let profiles: Vec<Json> = x
        .profiles
        .iter()
        .map(|l| match d.profiles().get(&l.profile) {
            Some(true) => json!({ l.profile.clone(): l.value }),
            _ => json!(l.profile),
        })
        .collect();
    let timeout = if x.deadline.is_some() {
        crate::dlg::unix_now() + x.timeout_left(now)
    } else {
        0
    };
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
        "duration": x.end_ts.saturating_sub(x.start_ts),
        "timeout": timeout,
        "lifetime": x.lifetime,
        "dflags": x.dflags & !crate::dlg::DFLAG_INTERNAL,
        "sflags": x.sflags,
        "iflags": u32::from(x.dflags & DFLAG_TIMEOUT_BYE != 0),
        "caller": leg(&x.caller, true),
        "callee": leg(&x.callee, x.start_ts != 0),
        "profiles": profiles,
        // As Kamailio's: an ended dialog shows no variables.
        "variables": x
            .vars
            .iter()
            .filter(|_| x.state != State::Deleted)
            .map(|(k, v)| json!({ k.clone(): v }))
            .collect::<Vec<_>>(),
    });
    if with_ctx {
        o["context"] = json!({ "on_timeout": x.toroute });
    }
    o
}

fn str_param(p: &[Json], i: usize, what: &str) -> Result<String, RpcError> {
    sr_sdk::rpc::param_opt_str(p, i)
        .ok_or_else(|| RpcError::invalid_params(format!("missing {what}")))
}

fn opt_param(p: &[Json], i: usize, what: &str) -> Result<Option<String>, RpcError> {
    p.get(i).map(|_| str_param(p, i, what)).transpose()
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
    let v: Vec<Json> = t
        .all()
        .into_iter()
        .filter(|x| {
            filter.is_none_or(|(c, f)| x.callid == c && f.is_none_or(|f| f == x.caller.tag))
        })
        .map(|x| dialog_json(d, x, ctx))
        .collect();
    // Kamailio answers a Call-ID it does not know with an empty result.
    if v.is_empty() && filter.is_some() {
        return json!({});
    }
    Json::Array(v)
}

/// `profile [value]`: a declared profile (404 otherwise); the value only
/// counts for a profile with values.
fn check_profile(d: &Dlg, p: &[Json]) -> Result<(String, Option<String>), RpcError> {
    let name = str_param(p, 0, "profile name")?;
    let Some(with_value) = d.profiles().get(&name) else {
        return Err(RpcError::new(404, format!("Profile not found: {name}")));
    };
    let value = opt_param(p, 1, "value")?.filter(|_| with_value);
    Ok((name, value))
}

fn end(d: &Dlg, key: (u32, u32), extra: &str) -> Result<Json, RpcError> {
    let state = d.table().get(key).map(|x| x.state);
    match state {
        Some(s) if s.answered() => {
            let core = d
                .core()
                .ok_or_else(|| RpcError::new(500, "server is stopping"))?;
            if track::terminate(d, &*core, key, Some((Side::Both, extra)), false) {
                Ok(Json::Null)
            } else {
                Err(RpcError::new(404, "Dialog not found"))
            }
        }
        Some(State::Deleted) | None => Err(RpcError::new(404, "Dialog not found")),
        Some(_) => Err(RpcError::new(
            500,
            "terminating non-confirmed dialogs not supported",
        )),
    }
}

/// `callid from_tag to_tag`: the dialog, if any (400 with fewer
/// parameters).
fn by_ids(d: &Dlg, p: &[Json]) -> Result<Option<(u32, u32)>, RpcError> {
    if p.len() < 3 {
        return Err(RpcError::new(400, "Too few parameters"));
    }
    let (callid, ftag, ttag) = (
        str_param(p, 0, "Call-ID")?,
        str_param(p, 1, "From-tag")?,
        str_param(p, 2, "To-tag")?,
    );
    Ok(d.table().find(&callid, &ftag, &ttag).map(|(k, _)| k))
}

fn stats_active(d: &Dlg) -> Json {
    let t = d.table();
    let n = |s: State| t.count(|x| x == s);
    let (s, e, c, a) = (
        n(State::Unconfirmed),
        n(State::Early),
        n(State::ConfirmedNa),
        n(State::Confirmed),
    );
    json!({
        "starting": s,
        "connecting": e,
        "answering": c,
        "ongoing": a,
        "all": s + e + c + a,
    })
}

fn is_alive(d: &Dlg, p: &[Json]) -> Result<Json, RpcError> {
    let key = by_ids(d, p)?.ok_or_else(|| RpcError::new(404, "Dialog not found"))?;
    match d.table().get(key).map(|x| x.state) {
        Some(State::Confirmed) => Ok(json!("Alive")),
        Some(State::Deleted) | None => Err(RpcError::new(404, "Dialog not found")),
        Some(_) => Err(RpcError::new(500, "Dialog not in confirmed state")),
    }
}

/// `dlg.list_match key op value [limit]`: the dialogs whose `ruri`,
/// `furi`, `turi`, `callid` or `start_ts` matches (`eq`, `re`, `sw`; `gt`,
/// `lt` for `start_ts`); 404 when none does.
fn list_match(d: &Dlg, p: &[Json], ctx: bool) -> Result<Json, RpcError> {
    let (key, op, val) = (
        str_param(p, 0, "key")?,
        str_param(p, 1, "operator")?,
        str_param(p, 2, "value")?,
    );
    let limit = match p.get(3) {
        Some(_) => u32_param(p, 3, "limit")? as usize,
        None => usize::MAX,
    };
    let bad = || RpcError::new(500, "Unsupported matching operator");
    let re = if op == "re" {
        Some(
            regex::Regex::new(&val)
                .map_err(|_| RpcError::new(500, "Invalid regular expression"))?,
        )
    } else {
        None
    };
    let num: Option<u64> = val.trim().parse().ok();
    let t = d.table();
    let mut out = Vec::new();
    for x in t.all() {
        let hit = match key.as_str() {
            "start_ts" => {
                let n = num.ok_or_else(|| RpcError::new(500, "Invalid value"))?;
                match op.as_str() {
                    "eq" => x.start_ts == n,
                    "gt" => x.start_ts > n,
                    "lt" => x.start_ts < n,
                    _ => return Err(bad()),
                }
            }
            "ruri" | "furi" | "turi" | "callid" => {
                let s = match key.as_str() {
                    "ruri" => &x.req_uri,
                    "furi" => &x.from_uri,
                    "turi" => &x.to_uri,
                    _ => &x.callid,
                };
                match (op.as_str(), &re) {
                    ("eq", _) => *s == val,
                    ("sw", _) => s.starts_with(&val),
                    ("re", Some(r)) => r.is_match(s),
                    _ => return Err(bad()),
                }
            }
            _ => return Err(RpcError::new(500, "Unsupported matching key")),
        };
        if hit {
            out.push(dialog_json(d, x, ctx));
            if out.len() >= limit {
                break;
            }
        }
    }
    if out.is_empty() {
        return Err(RpcError::new(404, "Not found"));
    }
    Ok(Json::Array(out))
}

fn profile_list(d: &Dlg, p: &[Json]) -> Result<Json, RpcError> {
    let (name, value) = check_profile(d, p)?;
    let t = d.table();
    let v: Vec<Json> = t
        .all()
        .into_iter()
        .filter(|x| {
            x.profiles
                .iter()
                .any(|l| l.profile == name && value.as_deref().is_none_or(|v| v == l.value))
        })
        .map(|x| dialog_json(d, x, false))
        .collect();
    Ok(Json::Array(v))
}

/// Adds the RPC methods to the module.
pub fn export(def: ModuleDef, d: &Arc<Dlg>) -> ModuleDef {
    type Handler = fn(&Dlg, &[Json]) -> Result<Json, RpcError>;
    let methods: [(&str, &str, Handler); 13] = [
        (
            "dlg.list_match",
            "The dialogs matching: key (ruri furi turi callid start_ts) op (eq re sw gt lt) value [limit].",
            |d, p| list_match(d, p, false),
        ),
        (
            "dlg.list_match_ctx",
            "dlg.list_match, with the dialogs' context.",
            |d, p| list_match(d, p, true),
        ),
        ("dlg.list", "List the dialogs.", |d, _| {
            Ok(list(d, false, None))
        }),
        (
            "dlg.list_ctx",
            "List the dialogs, with their context.",
            |d, _| Ok(list(d, true, None)),
        ),
        (
            "dlg.dlg_list",
            "The dialogs of a Call-ID (and From-tag).",
            |d, p| {
                let (c, f) = (str_param(p, 0, "Call-ID")?, opt_param(p, 1, "From-tag")?);
                Ok(list(d, false, Some((&c, f.as_deref()))))
            },
        ),
        (
            "dlg.dlg_list_ctx",
            "The dialogs of a Call-ID (and From-tag), with their context.",
            |d, p| {
                let (c, f) = (str_param(p, 0, "Call-ID")?, opt_param(p, 1, "From-tag")?);
                Ok(list(d, true, Some((&c, f.as_deref()))))
            },
        ),
        (
            "dlg.end_dlg",
            "End an answered dialog (h_entry h_id [extra headers]): BYE to both sides.",
            |d, p| {
                let key = (u32_param(p, 0, "h_entry")?, u32_param(p, 1, "h_id")?);
                let extra = opt_param(p, 2, "extra headers")?.unwrap_or_default();
                end(d, key, &extra)
            },
        ),
        (
            "dlg.terminate_dlg",
            "End an answered dialog (Call-ID From-tag To-tag): BYE to both sides.",
            |d, p| match by_ids(d, p)? {
                Some(k) => end(d, k, ""),
                None => Err(RpcError::new(500, "Couldnt find callid in dialog")),
            },
        ),
        (
            "dlg.is_alive",
            "Whether a dialog (Call-ID From-tag To-tag) is answered.",
            is_alive,
        ),
        (
            "dlg.profile_get_size",
            "The number of dialogs in a profile (with a value).",
            |d, p| {
                let (name, value) = check_profile(d, p)?;
                let with_value = d.profiles().get(&name) == Some(true);
                Ok(json!(d
                    .table()
                    .profile_size(&name, value.as_deref(), with_value)))
            },
        ),
        (
            "dlg.profile_list",
            "The dialogs in a profile (with a value).",
            profile_list,
        ),
        ("dlg.stats_active", "The dialogs by state.", |d, _| {
            Ok(stats_active(d))
        }),
        ("dlg.briefing", "The dialogs, briefly.", |d, _| {
            let t = d.table();
            let v: Vec<Json> = t
                .all()
                .into_iter()
                .map(|x| {
                    json!({
                        "from_uri": x.from_uri,
                        "to_uri": x.to_uri,
                        "call-id": x.callid,
                        "from_tag": x.caller.tag,
                        "to_tag": x.callee.tag,
                    })
                })
                .collect();
            Ok(Json::Array(v))
        }),
    ];
    let mut def = def;
    for (name, doc, f) in methods {
        let d = d.clone();
        def = def.rpc(name, doc, move |p| f(&d, p));
    }
    def
}
