//! # pv: pseudo-variable helpers
//!
//! The core implements the pseudo-variables themselves; this module adds
//! what Kamailio's `pv` module offers on top:
//!
//! - functions `pv_isset(pv)`, `pv_unset(pv)`, `is_int(pv)`,
//!   `typeof(pv, type)`, `not_empty(pv)`;
//! - parameters `shvset` (`"name=i:1"` or `"name=s:text"`, repeatable:
//!   initial `$shv` values) and `varset` (same syntax: initial `$var`
//!   values, set in every worker);
//! - RPC `pv.shvSet name type value` and `pv.shvGet [name]`;
//! - the pseudo-variable `$xavp(root=>field)` (see [`xavp`]);
//! - `$stat(name)`: a statistic's value by name (any group), `$null`
//!   for an unknown one;
//! - `$time(name)`, `$utime(name)`, `$timef(format)`, `$utimef(format)`
//!   (see [`time`]);
//! - message pseudo-variables the core does not give: `$rv`, `$rP`,
//!   `$bs`, `$mt`, `$mi`, `$ds`, `$su`, `$fs`, `$RAi`, `$RAp`, `$di`,
//!   `$dip`, `$dir`, `$re`, `$rt`, `$ai`, `$pu`, `$pU`, `$pd`, `$pn`
//!   (see [`msgpv`]).
#![forbid(unsafe_code)]

pub mod more;
pub mod msgpv;
pub mod sbranch;
pub mod server;
pub mod time;
pub mod var_funcs;
pub mod xavp;
pub mod xavp_funcs;

use sr_sdk::prelude::*;
use sr_sdk::rpc::param_str;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// A `name=i:1` / `name=s:text` initial value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitVal {
    /// Variable name.
    pub name: String,
    /// Its value.
    pub value: Value<'static>,
}

/// Parses `name=i:123` or `name=s:text` (Kamailio's `shvset`/`varset`).
pub fn parse_init(s: &str) -> Result<InitVal, String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected name=i:value or name=s:value"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("'{s}': empty name"));
    }
    let value = typed(rest.trim_start(), s)?;
    Ok(InitVal {
        name: name.to_string(),
        value,
    })
}

fn typed(rest: &str, whole: &str) -> Result<Value<'static>, String> {
    let (t, v) = rest
        .split_once(':')
        .ok_or_else(|| format!("'{whole}': expected i:value or s:value"))?;
    match t.trim() {
        "i" | "I" => v
            .trim()
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("'{whole}': '{v}' is not an integer")),
        "s" | "S" => Ok(Value::from(v.to_string())),
        other => Err(format!("'{whole}': unknown type '{other}' (i or s)")),
    }
}

#[derive(Default)]
struct State {
    shv: Mutex<Vec<InitVal>>,
    var: Mutex<Vec<InitVal>>,
    core: OnceLock<Weak<dyn Core>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn core(&self) -> Result<Arc<dyn Core>, RpcError> {
        self.core
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| RpcError::new(500, "server not running"))
    }
}

fn type_name(v: &Value<'_>) -> &'static str {
    match v {
        Value::Int(_) => "int",
        Value::Str(_) => "str",
        Value::Null => "null",
    }
}

fn shv_json(name: &str, v: &Value<'_>) -> Json {
    let value = match v {
        Value::Int(i) => json!(i),
        Value::Str(s) => json!(s),
        Value::Null => Json::Null,
    };
    json!({"name": name, "type": type_name(v), "value": value})
}

fn read_pv(env: &dyn fixup::FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    match arg {
        Arg::Str(s) => env.compile_pv(s.trim()).map(Fixed::Dyn),
        Arg::Expr(e, _) => Ok(Fixed::Dyn(e.clone())),
        Arg::Int(i) => Err(format!("'{i}' is not a pseudo-variable")),
    }
}

fn value_of(ctx: &mut Ctx<'_>, p: &Fixed) -> Value<'static> {
    match p {
        Fixed::Dyn(e) => e.eval(ctx),
        Fixed::Pv(p) => p.eval(ctx),
        _ => Value::Null,
    }
}

fn is_int(v: &Value<'_>) -> bool {
    match v {
        Value::Int(_) => true,
        Value::Str(s) => s.trim().parse::<i64>().is_ok(),
        Value::Null => false,
    }
}

fn typeof_fixup(env: &dyn fixup::FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 0 {
        return read_pv(env, i, arg);
    }
    let t = arg.text().trim().to_ascii_lowercase();
    match t.as_str() {
        "int" | "str" | "null" => Ok(Fixed::Str(t)),
        other => Err(format!("typeof: unknown type '{other}' (int, str or null)")),
    }
}

fn b(x: bool) -> i32 {
    if x {
        1
    } else {
        -1
    }
}

/// The XAVP functions ([`xavp_funcs`]).
fn xavp_cmds(mut def: ModuleDef) -> ModuleDef {
    use xavp::Flavor;
    use xavp_funcs as xf;
    let any = RouteType::ANY;
    let out_pv: Option<sr_sdk::fixup::FixupFn> = Some(Arc::new(|env, i, a| {
        if i == 1 {
            fixup::pvar(env, i, a)
        } else {
            fixup::spve(env, i, a)
        }
    }));
    for (prefix, flavor) in [("xavp", Flavor::Xavp), ("xavu", Flavor::Xavu)] {
        def = def
            .cmd(
                &format!("{prefix}_params_explode"),
                2,
                any,
                None,
                move |ctx, p| {
                    let text = p[0].str(ctx).into_owned();
                    let name = p[1].str(ctx).into_owned();
                    xf::params_explode(ctx, flavor, &text, &name)
                },
            )
            .cmd(
                &format!("{prefix}_params_implode"),
                2,
                any,
                out_pv.clone(),
                move |ctx, p| {
                    let name = p[0].str(ctx).into_owned();
                    xf::params_implode(ctx, flavor, &name, &p[1])
                },
            );
    }
    for (prefix, flavor) in [("xavp", Flavor::Xavp), ("xavi", Flavor::Xavi)] {
        def = def
            .cmd(
                &format!("{prefix}_child_seti"),
                3,
                any,
                None,
                move |ctx, p| {
                    let r = p[0].str(ctx).into_owned();
                    let c = p[1].str(ctx).into_owned();
                    let v = p[2].int(ctx);
                    xf::child_set(ctx, flavor, &r, &c, Value::Int(v))
                },
            )
            .cmd(
                &format!("{prefix}_child_sets"),
                3,
                any,
                None,
                move |ctx, p| {
                    let r = p[0].str(ctx).into_owned();
                    let c = p[1].str(ctx).into_owned();
                    let v = p[2].str(ctx).into_owned();
                    xf::child_set(ctx, flavor, &r, &c, Value::from(v))
                },
            )
            .cmd(&format!("{prefix}_rm"), 1, any, None, move |ctx, p| {
                let r = p[0].str(ctx).into_owned();
                xf::remove(ctx, flavor, &r, None)
            })
            .cmd(
                &format!("{prefix}_child_rm"),
                2,
                any,
                None,
                move |ctx, p| {
                    let r = p[0].str(ctx).into_owned();
                    let c = p[1].str(ctx).into_owned();
                    xf::remove(ctx, flavor, &r, Some(&c))
                },
            );
    }
    def.cmd("xavp_slist_explode", 4, any, None, |ctx, p| {
        let list = p[0].str(ctx).into_owned();
        let seps = p[1].str(ctx).into_owned();
        let mode = p[2].str(ctx).into_owned();
        let name = p[3].str(ctx).into_owned();
        xf::slist_explode(ctx, &list, &seps, &mode, &name)
    })
    .cmd("xavp_copy", 3, any, None, |ctx, p| {
        let src = p[0].str(ctx).into_owned();
        let i = p[1].int(ctx);
        let dst = p[2].str(ctx).into_owned();
        xf::copy(ctx, &src, i, &dst, None)
    })
    .cmd("xavp_copy", 4, any, None, |ctx, p| {
        let src = p[0].str(ctx).into_owned();
        let i = p[1].int(ctx);
        let dst = p[2].str(ctx).into_owned();
        let d = p[3].int(ctx);
        xf::copy(ctx, &src, i, &dst, Some(d))
    })
}

/// The `pv` module.
pub fn module() -> ModuleDef {
    let st = Arc::new(State::default());
    let any = RouteType::ANY;
    let rd = Some(fixup::f(read_pv));
    let (s1, s2, s3, s4, s5, s6) = (
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st,
    );
    let mut def = ModuleDef::new("pv");
    for &name in msgpv::NAMES {
        def = def.pv(name, move |ctx, n| msgpv::get(name, ctx, n));
    }
    for &name in more::NAMES {
        def = def.pv(name, move |ctx, n| more::get(name, ctx, n));
    }
    for &name in server::NAMES {
        def = def.pv(name, move |ctx, n| server::get(name, ctx, n));
    }
    def = def
        .pv_checked("version", server::version_check, |_, n| server::version(n))
        .pv_checked("msgbuf", server::msgbuf_check, |ctx, n| {
            server::get("msgbuf", ctx, n)
        })
        .pv_rw_checked("sbranch", sbranch::check, sbranch::get, sbranch::set)
        .cmd("sbranch_set_ruri", 0, any, None, |ctx, _| {
            sbranch::set_ruri(ctx)
        })
        .cmd("sbranch_append", 0, any, None, |ctx, _| {
            sbranch::append(ctx)
        })
        .cmd("sbranch_reset", 0, any, None, |_, _| sbranch::reset());
    def = xavp_cmds(def);
    def = var_funcs::add(def);
    def.cmd("pv_isset", 1, any, rd.clone(), |ctx, p| {
        b(!value_of(ctx, &p[0]).is_null())
    })
    .cmd(
        "pv_unset",
        1,
        any,
        Some(fixup::f(fixup::pvar)),
        |ctx, p| match &p[0] {
            Fixed::Pv(pv) => match pv.assign(ctx, Value::Null) {
                Ok(()) => 1,
                Err(e) => {
                    lm_err!("pv_unset: {e}");
                    -1
                }
            },
            _ => -1,
        },
    )
    .cmd("is_int", 1, any, rd.clone(), |ctx, p| {
        b(is_int(&value_of(ctx, &p[0])))
    })
    .cmd("not_empty", 1, any, rd, |ctx, p| {
        b(matches!(value_of(ctx, &p[0]), Value::Str(s) if !s.is_empty()))
    })
    .cmd("typeof", 2, any, Some(fixup::f(typeof_fixup)), |ctx, p| {
        let v = value_of(ctx, &p[0]);
        b(p[1].as_const_str() == Some(type_name(&v)))
    })
    .param("shvset", ParamKind::Str, move |v| {
        let s = match v {
            ParamValue::Str(s) => s,
            ParamValue::Int(i) => i.to_string(),
        };
        lock(&s1.shv).push(parse_init(&s)?);
        Ok(())
    })
    .param("varset", ParamKind::Str, move |v| {
        let s = match v {
            ParamValue::Str(s) => s,
            ParamValue::Int(i) => i.to_string(),
        };
        lock(&s2.var).push(parse_init(&s)?);
        Ok(())
    })
    .pv_rw("xavp", xavp::get, xavp::set)
    .pv_rw(
        "xavi",
        |ctx, n| xavp::get_flavor(xavp::Flavor::Xavi, ctx, n),
        |ctx, n, v| xavp::set_flavor(xavp::Flavor::Xavi, ctx, n, v),
    )
    .pv_rw(
        "xavu",
        |ctx, n| xavp::get_flavor(xavp::Flavor::Xavu, ctx, n),
        |ctx, n, v| xavp::set_flavor(xavp::Flavor::Xavu, ctx, n, v),
    )
    .pv("time", |_, n| time::get(n, false))
    .pv("utime", |_, n| time::get(n, true))
    .pv("timef", |_, n| time::format(n, false))
    .pv("utimef", |_, n| time::format(n, true))
    .pv("stat", |ctx, n| {
        let name = n.inner.as_deref().unwrap_or("").trim();
        ctx.core
            .statistics()
            .into_iter()
            .find(|(_, s, _)| s == name)
            .map_or(Value::Null, |(_, _, v)| Value::Int(v))
    })
    .on_init(move |core| {
        more::start_time();
        if let Some(h) = core.handle() {
            let _ = s3.core.set(h);
        }
        let mut fake = SipMsg::faked();
        for iv in lock(&s3.shv).iter() {
            core.pv_set(&mut fake, &format!("$shv({})", iv.name), iv.value.clone())
                .map_err(|e| format!("shvset {}: {e}", iv.name))?;
        }
        Ok(())
    })
    .on_child_init(move |core, _rank| {
        // $var is per thread: every thread that may run script code
        // starts with the configured values.
        let vars = lock(&s4.var).clone();
        if vars.is_empty() {
            return Ok(());
        }
        let mut fake = SipMsg::faked();
        for iv in vars {
            core.pv_set(&mut fake, &format!("$var({})", iv.name), iv.value)
                .map_err(|e| format!("varset {}: {e}", iv.name))?;
        }
        Ok(())
    })
    .rpc(
        "pv.shvSet",
        "Sets a shared variable: pv.shvSet name int|str value.",
        move |p| {
            let core = s5.core()?;
            let name = param_str(p, 0, "name")?;
            let ty = param_str(p, 1, "type")?;
            let raw = param_str(p, 2, "value")?;
            let t = match ty.as_str() {
                "int" | "i" => "i",
                "str" | "s" => "s",
                _ => {
                    return Err(RpcError::invalid_params(format!(
                        "type '{ty}': expected int or str"
                    )))
                }
            };
            let v = typed(&format!("{t}:{raw}"), &raw).map_err(RpcError::invalid_params)?;
            let mut fake = SipMsg::faked();
            core.pv_set(&mut fake, &format!("$shv({name})"), v)
                .map_err(|e| RpcError::new(500, e))?;
            Ok(json!(0))
        },
    )
    .rpc(
        "pv.shvGet",
        "Shows a shared variable (or all): pv.shvGet [name].",
        move |p| {
            let core = s6.core()?;
            if p.is_empty() {
                return Ok(Json::Array(
                    core.shared_vars()
                        .iter()
                        .map(|(n, v)| shv_json(n, v))
                        .collect(),
                ));
            }
            let name = param_str(p, 0, "name")?;
            core.shared_vars()
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(n, v)| shv_json(n, v))
                .ok_or_else(|| RpcError::new(404, format!("shared variable {name} not found")))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_values() {
        assert_eq!(
            parse_init("maint=i:1"),
            Ok(InitVal {
                name: "maint".into(),
                value: Value::Int(1)
            })
        );
        assert_eq!(
            parse_init("gw=s:sip:10.0.0.1").map(|v| v.value),
            Ok(Value::from("sip:10.0.0.1"))
        );
        assert!(parse_init("x=i:abc").is_err());
        assert!(parse_init("x=q:1").is_err());
        assert!(parse_init("x").is_err());
        assert!(parse_init("=i:1").is_err());
    }

    #[test]
    fn ints() {
        assert!(is_int(&Value::Int(3)));
        assert!(is_int(&Value::from("-12")));
        assert!(!is_int(&Value::from("12a")));
        assert!(!is_int(&Value::Null));
    }
}
