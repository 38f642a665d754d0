//! pv's functions between script variables and XAVPs, and on formats:
//! `pv_var_to_xavp(name, xavp)` (`*` for every `$var`),
//! `pv_xavp_to_var(xavp)`, `pv_evalx(dst, fmt)` (the format's value read
//! as a format again) and `pv_xavp_print()`.

use crate::xavp::{self, Flavor};
use sr_sdk::prelude::*;
use sr_sdk::xavp::XavpValue;

/// `pv_var_to_xavp(name, xavp)`: the variable (every one the
/// configuration uses, with `*`) as fields of one new `xavp` record (the
/// XAVP emptied first). -1 when the configuration uses no such variable.
pub fn var_to_xavp(ctx: &mut Ctx<'_>, name: &str, xname: &str) -> i32 {
    let Ok(x) = xavp::parse_as(Flavor::Xavp, xname) else {
        lm_err!("pv_var_to_xavp: bad XAVP name '{xname}'");
        return -1;
    };
    let vars = if name == "*" {
        ctx.core.script_vars(None)
    } else {
        ctx.core.script_vars(Some(name))
    };
    if vars.is_empty() {
        lm_err!("pv_var_to_xavp: script var [{name}] not found");
        return -1;
    }
    // (Fields are kept newest first: the first variable ends up last, as
    // Kamailio adds each in front.)
    let fields: Vec<(String, Value<'static>)> = vars.into_iter().rev().collect();
    ctx.msg.xavps.remove(&x.root, None);
    ctx.msg.xavps.push(&x.root, XavpValue::Fields(fields));
    1
}

/// `pv_xavp_to_var(xavp)`: every field of every record of `xavp` becomes
/// `$var(field)`. -1 when there is no such XAVP.
pub fn xavp_to_var(ctx: &mut Ctx<'_>, xname: &str) -> i32 {
    let Ok(x) = xavp::parse_as(Flavor::Xavp, xname) else {
        lm_err!("pv_xavp_to_var: bad XAVP name '{xname}'");
        return -1;
    };
    let n = ctx.msg.xavps.count(&x.root);
    if n == 0 {
        lm_err!("pv_xavp_to_var: xavp [{xname}] not found");
        return -1;
    }
    let mut sets: Vec<(String, Value<'static>)> = Vec::new();
    for i in 0..n {
        if let Some(XavpValue::Fields(f)) = ctx.msg.xavps.get(&x.root, i) {
            sets.extend(f.iter().cloned());
        }
    }
    for (name, v) in sets {
        if let Err(e) = ctx.core.pv_set(ctx.msg, &format!("$var({name})"), v) {
            lm_err!("pv_xavp_to_var: $var({name}): {e}");
            return -1;
        }
    }
    1
}

/// `pv_evalx(dst, fmt)`: `fmt`'s value, read as a format again, into
/// `dst`.
pub fn evalx(ctx: &mut Ctx<'_>, dst: &Fixed, first: &str) -> i32 {
    let Fixed::Pv(out) = dst else {
        return -1;
    };
    let f = match ctx.core.compile_format(first) {
        Ok(f) => f,
        Err(e) => {
            lm_err!("pv_evalx: '{first}': {e}");
            return -1;
        }
    };
    let v = f.eval(ctx).as_str().into_owned();
    match out.assign(ctx, Value::from(v)) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("pv_evalx: {e}");
            -1
        }
    }
}

/// `pv_xavp_print()`, `pv_xavu_print()`, `pv_xavi_print()`: every record
/// of the message's XAVPs, XAVUs or XAVIs (the lists apart, as Kamailio
/// keeps them) written to the log at INFO, one line per record.
pub fn xavp_print(ctx: &mut Ctx<'_>, flavor: Flavor) -> i32 {
    let (kind, prefix) = match flavor {
        Flavor::Xavp => ("XAVP", ""),
        Flavor::Xavu => ("XAVU", "\u{1}xavu:"),
        Flavor::Xavi => ("XAVI", "\u{1}xavi:"),
    };
    let names: Vec<String> = ctx
        .msg
        .xavps
        .names()
        .filter(|n| {
            if prefix.is_empty() {
                !n.starts_with('\u{1}')
            } else {
                n.starts_with(prefix)
            }
        })
        .map(str::to_string)
        .collect();
    for name in names {
        let shown = &name[prefix.len()..];
        for i in 0..ctx.msg.xavps.count(&name) {
            match ctx.msg.xavps.get(&name, i) {
                Some(XavpValue::Fields(f)) => {
                    let fields: Vec<String> = f.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    lm_info!("{kind} {shown}[{i}]: {}", fields.join(", "));
                }
                Some(XavpValue::Value(v)) => lm_info!("{kind} {shown}[{i}] = {v}"),
                None => {}
            }
        }
    }
    1
}

/// Adds the functions.
pub fn add(def: ModuleDef) -> ModuleDef {
    let any = RouteType::ANY;
    let spve = Some(fixup::f(fixup::spve));
    let pv_first = Some(fixup::f(|env, i, a| {
        if i == 0 {
            fixup::pvar(env, i, a)
        } else {
            fixup::spve(env, i, a)
        }
    }));
    def.cmd("pv_var_to_xavp", 2, any, spve.clone(), |ctx, p| {
        let (n, x) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        var_to_xavp(ctx, n.trim(), x.trim())
    })
    .cmd("pv_xavp_to_var", 1, any, spve, |ctx, p| {
        let x = p[0].str(ctx).into_owned();
        xavp_to_var(ctx, x.trim())
    })
    .cmd("pv_evalx", 2, any, pv_first, |ctx, p| {
        let first = p[1].str(ctx).into_owned();
        evalx(ctx, &p[0], &first)
    })
    .cmd("pv_xavp_print", 0, any, None, |ctx, _| {
        xavp_print(ctx, Flavor::Xavp)
    })
    .cmd("pv_xavu_print", 0, any, None, |ctx, _| {
        xavp_print(ctx, Flavor::Xavu)
    })
    .cmd("pv_xavi_print", 0, any, None, |ctx, _| {
        xavp_print(ctx, Flavor::Xavi)
    })
}
