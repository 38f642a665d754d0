//! The pseudo-variables: `$dlg(attr)` (the current dialog, read-only),
//! `$dlg_ctx(attr)` (what the script set for it) and `$dlg_var(name)`
//! (the dialog's variables, kept for its later requests).

use crate::dlg::{Dialog, DFLAG_TIMEOUT_BYE};
use crate::track::{self, dctx};
use crate::{Dlg, DlgCtx};
use sr_sdk::exports::PvName;
use sr_sdk::prelude::*;
use std::sync::Arc;
use std::time::Instant;

fn s(v: &str) -> Value<'static> {
    Value::Str(v.to_string().into())
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
        "dflags" => Value::Int(i64::from(x.dflags)),
        "sflags" => Value::Int(i64::from(x.sflags)),
        "callid" => s(&x.callid),
        "to_uri" => s(&x.to_uri),
        "to_tag" => s(&x.callee.tag),
        "from_uri" => s(&x.from_uri),
        "from_tag" => s(&x.caller.tag),
        "toroute" | "toroute_name" => s(&x.toroute),
        "lifetime" => Value::Int(i64::from(x.lifetime)),
        "start_ts" => Value::Int(x.start_ts as i64),
        "init_ts" => Value::Int(x.init_ts as i64),
        "end_ts" => Value::Int(x.end_ts as i64),
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

/// The attributes `$dlg` knows.
pub const DLG_ATTRS: &[&str] = &[
    "h_id",
    "h_entry",
    "state",
    "to_rs",
    "from_rs",
    "dflags",
    "sflags",
    "callid",
    "to_uri",
    "to_tag",
    "from_uri",
    "from_tag",
    "toroute",
    "toroute_name",
    "lifetime",
    "start_ts",
    "init_ts",
    "end_ts",
    "to_cseq",
    "from_cseq",
    "to_contact",
    "from_contact",
    "to_bindaddr",
    "from_bindaddr",
    "ref",
];

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

fn get_ctx(d: &Dlg, ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let attr = name.inner.as_deref().unwrap_or("").trim().to_string();
    let key = track::current(d, ctx.msg);
    let c = ctx.msg.ext.get::<DlgCtx>().cloned().unwrap_or_default();
    let t = d.table();
    let x = key.and_then(|k| t.get(k));
    match attr.as_str() {
        "set" => Value::Int(i64::from(x.is_some())),
        "flags" => Value::Int(i64::from(x.map_or(c.flags, |x| x.sflags))),
        "timeout_route" => match x.map(|x| x.toroute.clone()).or(c.timeout_route) {
            Some(r) if !r.is_empty() => s(&r),
            _ => Value::Null,
        },
        "timeout_bye" => Value::Int(i64::from(x.map_or(c.timeout_bye.unwrap_or(false), |x| {
            x.dflags & DFLAG_TIMEOUT_BYE != 0
        }))),
        "timeout" => Value::Int(i64::from(x.map_or(c.timeout.unwrap_or(0), |x| x.lifetime))),
        "timeout_left" => Value::Int(x.map_or(0, |x| x.timeout_left(Instant::now()) as i64)),
        "on" => Value::Int(i64::from(x.is_some())),
        "dir" => match x {
            Some(_) if c.downstream => Value::Int(1),
            Some(_) => Value::Int(2),
            None => Value::Int(0),
        },
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

fn set_ctx(d: &Dlg, ctx: &mut Ctx<'_>, name: &PvName, v: Value<'_>) -> Result<(), String> {
    let attr = name.inner.as_deref().unwrap_or("").trim().to_string();
    let key = track::current(d, ctx.msg);
    match attr.as_str() {
        "flags" => {
            let n = int_of(&v)? as u32;
            match key {
                Some(k) => {
                    if let Some(x) = d.table().get_mut(k) {
                        x.sflags = n;
                    }
                }
                None => dctx(ctx.msg).flags = n,
            }
        }
        "timeout_route" => {
            let r = match &v {
                Value::Null => String::new(),
                other => other.as_str().into_owned(),
            };
            match key {
                Some(k) => {
                    if let Some(x) = d.table().get_mut(k) {
                        x.toroute = r;
                    }
                }
                None => dctx(ctx.msg).timeout_route = Some(r),
            }
        }
        "timeout_bye" => {
            let on = int_of(&v)? != 0;
            match key {
                Some(k) => {
                    if let Some(x) = d.table().get_mut(k) {
                        if on {
                            x.dflags |= DFLAG_TIMEOUT_BYE;
                        } else {
                            x.dflags &= !DFLAG_TIMEOUT_BYE;
                        }
                    }
                }
                None => dctx(ctx.msg).timeout_bye = Some(on),
            }
        }
        "timeout" => {
            let n = int_of(&v)?;
            if n <= 0 || n > i64::from(u32::MAX) {
                return Err(format!("$dlg_ctx(timeout): {n} is not a valid timeout"));
            }
            match key {
                Some(k) => {
                    crate::funcs::set_timeout(d, k, n as u32);
                }
                None => dctx(ctx.msg).timeout = Some(n as u32),
            }
        }
        "on" => {}
        other => return Err(format!("$dlg_ctx({other}) cannot be set")),
    }
    Ok(())
}

fn get_var(d: &Dlg, ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let var = name.inner.as_deref().unwrap_or("").trim();
    let Some(k) = track::current(d, ctx.msg) else {
        return Value::Null;
    };
    let t = d.table();
    t.get(k)
        .and_then(|x| x.vars.get(var))
        .map_or(Value::Null, |v| s(v))
}

fn set_var(d: &Dlg, ctx: &mut Ctx<'_>, name: &PvName, v: Value<'_>) -> Result<(), String> {
    let var = name.inner.as_deref().unwrap_or("").trim().to_string();
    let Some(k) = track::current(d, ctx.msg) else {
        return Err(format!("$dlg_var({var}): no dialog for this message"));
    };
    let mut t = d.table();
    let Some(x) = t.get_mut(k) else {
        return Err(format!("$dlg_var({var}): the dialog is gone"));
    };
    match v {
        Value::Null => {
            x.vars.remove(&var);
        }
        other => {
            x.vars.insert(var, other.as_str().into_owned());
        }
    }
    Ok(())
}

/// Adds the pseudo-variables to the module.
pub fn export(def: ModuleDef, d: &Arc<Dlg>) -> ModuleDef {
    let (d1, d2, d3, d4, d5) = (d.clone(), d.clone(), d.clone(), d.clone(), d.clone());
    def.pv("dlg", move |ctx, n| get_dlg(&d1, ctx, n))
        .pv_rw(
            "dlg_ctx",
            move |ctx, n| get_ctx(&d2, ctx, n),
            move |ctx, n, v| set_ctx(&d3, ctx, n, v),
        )
        .pv_rw(
            "dlg_var",
            move |ctx, n| get_var(&d4, ctx, n),
            move |ctx, n, v| set_var(&d5, ctx, n, v),
        )
}
