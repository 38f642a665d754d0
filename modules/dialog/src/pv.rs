//! The pseudo-variables: `$dlg(attr)` (the current dialog, read-only),
//! `$dlg_ctx(attr)` (what the script set for it) and `$dlg_var(name)`
//! (the dialog's variables, kept for its later requests).

use crate::dlg::Dialog;
use crate::track::{self, dctx};
use crate::{Dlg, DlgCtx};
use sr_sdk::exports::PvName;
use sr_sdk::prelude::*;
use std::sync::Arc;

/// A string, `$null` when empty (as Kamailio shows a missing To-tag).
fn s(v: &str) -> Value<'static> {
    if v.is_empty() {
        Value::Null
    } else {
        Value::Str(v.to_string().into())
    }
}

/// `$dlg(attr)` of a dialog; `None` for an unknown attribute.
pub fn dlg_attr(x: &Dialog, attr: &str) -> Option<Value<'static>> {
    let rs = |v: &[String]| {
        if v.is_empty() {
            Value::Null
        } else {
            s(&v.join(","))
        }
    };
    Some(match attr {
        "h_id" => Value::Int(i64::from(x.h_id)),
        "h_entry" => Value::Int(i64::from(x.h_entry)),
        "state" => Value::Int(x.state.num()),
        "to_rs" => rs(&x.callee.route_set),
        "from_rs" => rs(&x.caller.route_set),
        "dflags" => Value::Int(i64::from(x.dflags & !crate::dlg::DFLAG_INTERNAL)),
        "sflags" => Value::Int(i64::from(x.sflags)),
        "callid" => s(&x.callid),
        "to_uri" => s(&x.to_uri),
        "to_tag" => s(&x.callee.tag),
        "from_uri" => s(&x.from_uri),
        "from_tag" => s(&x.caller.tag),
        "toroute" => s(&x.toroute),
        "lifetime" => Value::Int(i64::from(x.lifetime)),
        "start_ts" => Value::Int(x.start_ts as i64),
        "to_cseq" => s(&x.callee.cseq.to_string()),
        "from_cseq" => s(&x.caller.cseq.to_string()),
        "to_contact" => s(&x.callee.contact),
        "from_contact" => s(&x.caller.contact),
        "to_bindaddr" => s(&x.callee.socket),
        "from_bindaddr" => s(&x.caller.socket),
        "ref" => Value::Int(1),
        _ => return None,
    })
}

fn get_dlg(d: &Dlg, ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let attr = name.inner.as_deref().unwrap_or("").trim();
    let Some(k) = track::current(d, ctx.msg) else {
        return Value::Null;
    };
    let t = d.table();
    t.get(k)
        .and_then(|x| dlg_attr(x, attr))
        .unwrap_or(Value::Null)
}

/// `$dlg_ctx(attr)`: the message's dialog context — what the script set
/// for the dialog to be made (read when it is made), whether there is a
/// dialog (`set`), the direction `dlg_get` found (`dir`).
fn get_ctx(ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let attr = name.inner.as_deref().unwrap_or("").trim().to_string();
    let c = ctx.msg.ext.get::<DlgCtx>().cloned().unwrap_or_default();
    match attr.as_str() {
        "set" => Value::Int(i64::from(c.key.is_some())),
        "flags" => Value::Int(i64::from(c.flags)),
        "timeout_route" => match c.timeout_route {
            Some(r) if !r.is_empty() => Value::Str(r.into()),
            _ => Value::Null,
        },
        "timeout_bye" => Value::Int(i64::from(c.timeout_bye.unwrap_or(false))),
        "timeout" => Value::Int(i64::from(c.timeout.unwrap_or(0))),
        "on" => Value::Int(c.on),
        "dir" => Value::Int(i64::from(c.dir)),
        _ => Value::Null,
    }
}

fn int_of(v: &Value<'_>) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Str(t) => t
            .trim()
            .parse()
            .map_err(|_| format!("'{t}' is not an integer")),
        Value::Null => Ok(0),
    }
}

/// Sets the context. `timeout_route` also changes the message's dialog
/// when there is one; `flags` and `timeout_bye` are read when the dialog
/// is made (setting them after `dlg_manage` changes nothing), `timeout`
/// and `on` are only kept — all as in Kamailio 5.6.
fn set_ctx(d: &Dlg, ctx: &mut Ctx<'_>, name: &PvName, v: Value<'_>) -> Result<(), String> {
    let attr = name.inner.as_deref().unwrap_or("").trim().to_string();
    let key = track::current(d, ctx.msg);
    match attr.as_str() {
        "flags" => dctx(ctx.msg).flags = int_of(&v)? as u32,
        "timeout_bye" => dctx(ctx.msg).timeout_bye = Some(int_of(&v)? != 0),
        // As Kamailio 5.6's: any other name writes `on`.
        "on" | "set" | "dir" | "timeout_route_id" => dctx(ctx.msg).on = int_of(&v)?,
        "timeout_route" => {
            let r = match &v {
                Value::Null => String::new(),
                other => other.as_str().into_owned(),
            };
            if let Some(k) = key {
                if let Some(x) = d.table().get_mut(k) {
                    x.toroute = r.clone();
                }
            }
            dctx(ctx.msg).timeout_route = Some(r);
        }
        "timeout" => {
            let n = int_of(&v)?;
            if n <= 0 || n > i64::from(u32::MAX) {
                return Err(format!("$dlg_ctx(timeout): {n} is not a valid timeout"));
            }
            // Kept, and used by nothing (as in Kamailio 5.6): the lifetime
            // comes from `timeout_avp` or `dlg_set_timeout`.
            dctx(ctx.msg).timeout = Some(n as u32);
        }
        other => return Err(format!("$dlg_ctx({other}) cannot be set")),
    }
    Ok(())
}

/// `$dlg_var(name)`: of the message's dialog, else as set before it
/// was made.
fn get_var(d: &Dlg, ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let var = name.inner.as_deref().unwrap_or("").trim();
    match track::current(d, ctx.msg) {
        Some(k) => {
            let t = d.table();
            t.get(k)
                .and_then(|x| x.vars.get(var))
                .map_or(Value::Null, |v| Value::Str(v.clone().into()))
        }
        None => ctx
            .msg
            .ext
            .get::<DlgCtx>()
            .and_then(|c| c.vars.get(var).cloned().flatten())
            .map_or(Value::Null, |v| Value::Str(v.into())),
    }
}

fn set_var(d: &Dlg, ctx: &mut Ctx<'_>, name: &PvName, v: Value<'_>) -> Result<(), String> {
    let var = name.inner.as_deref().unwrap_or("").trim().to_string();
    let val = match v {
        Value::Null => None,
        other => Some(other.as_str().into_owned()),
    };
    match track::current(d, ctx.msg) {
        Some(k) => {
            let mut t = d.table();
            let Some(x) = t.get_mut(k) else {
                return Err(format!("$dlg_var({var}): the dialog is gone"));
            };
            match val {
                None => {
                    x.vars.remove(&var);
                }
                Some(v) => {
                    x.vars.insert(var, v);
                }
            }
        }
        None => {
            dctx(ctx.msg).vars.insert(var, val);
        }
    }
    Ok(())
}

/// Adds the pseudo-variables to the module.
pub fn export(def: ModuleDef, d: &Arc<Dlg>) -> ModuleDef {
    let (d1, d3, d4, d5) = (d.clone(), d.clone(), d.clone(), d.clone());
    let (d6, d7, d8) = (d.clone(), d.clone(), d.clone());
    // `$DLG_count`: the answered dialogs; `$DLG_status`/`$DLG_lifetime`:
    // the state and lifetime of the dialog `loose_route()` matched this
    // request to ($null otherwise), as Kamailio's.
    let routed = |d: &Dlg, ctx: &mut Ctx<'_>, f: fn(&Dialog) -> i64| -> Value<'static> {
        let c = ctx.msg.ext.get::<DlgCtx>();
        match c.filter(|c| c.routed).and_then(|c| c.key) {
            Some(k) => d.table().get(k).map_or(Value::Null, |x| Value::Int(f(x))),
            None => Value::Null,
        }
    };
    def.pv("DLG_count", move |_, _| Value::Int(d6.stats.active.get()))
        .pv("DLG_status", move |ctx, _| {
            routed(&d7, ctx, |x| x.state.num())
        })
        .pv("DLG_lifetime", move |ctx, _| {
            routed(&d8, ctx, |x| i64::from(x.lifetime))
        })
        .pv("dlg", move |ctx, n| get_dlg(&d1, ctx, n))
        .pv_rw(
            "dlg_ctx",
            move |ctx, n| get_ctx(ctx, n),
            move |ctx, n, v| set_ctx(&d3, ctx, n, v),
        )
        .pv_rw(
            "dlg_var",
            move |ctx, n| get_var(&d4, ctx, n),
            move |ctx, n, v| set_var(&d5, ctx, n, v),
        )
}
