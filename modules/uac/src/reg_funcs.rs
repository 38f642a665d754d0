//! The script functions and RPC methods of remote registrations
//! (Kamailio's `uac_reg_*` and `uac.reg_*`).

use crate::reg::{from_row, Account, DISABLED, ONGOING};
use crate::Uac;
use sr_sdk::db::{DbValue, Rows};
use sr_sdk::prelude::*;
use std::sync::Arc;

fn assign(ctx: &mut Ctx<'_>, out: &Fixed, v: Value<'_>) -> bool {
    match out {
        Fixed::Pv(pv) => pv.assign(ctx, v).is_ok(),
        _ => false,
    }
}

/// `uac_reg_lookup(uuid, dst)`: `sip:l_username@l_domain` of the account.
fn lookup(uac: &Uac, ctx: &mut Ctx<'_>, uuid: &str, out: &Fixed) -> i32 {
    let found = uac
        .accounts()
        .iter()
        .find(|a| a.l_uuid == uuid)
        .map(|a| format!("sip:{}@{}", a.l_username, a.l_domain));
    let ok = found.is_some_and(|v| assign(ctx, out, Value::Str(v.into())));
    if ok {
        1
    } else {
        -1
    }
}

/// `uac_reg_lookup_uri(uri, dst)`: the `l_uuid` of the account whose
/// l_username is the URI's user (and l_domain its host with
/// `reg_use_domain`); -2 for a URI that does not parse.
fn lookup_uri(uac: &Uac, ctx: &mut Ctx<'_>, uri: &str, out: &Fixed) -> i32 {
    let Ok(u) = sr_sdk::sip_msg::Uri::parse(uri) else {
        return -2;
    };
    let user = u.user.unwrap_or("");
    let host = u.host_str;
    let domain = params::get_int(&uac.reg.use_domain) != 0;
    let found = uac
        .accounts()
        .iter()
        .find(|a| a.l_username == user && (!domain || a.l_domain.eq_ignore_ascii_case(host)))
        .map(|a| a.l_uuid.clone());
    let ok = found.is_some_and(|v| assign(ctx, out, Value::Str(v.into())));
    if ok {
        1
    } else {
        -1
    }
}

/// `uac_reg_request_to(user, mode)`: the request goes to the account's
/// registrar (`$ru`, `$du`) with its credentials in the auth AVPs.
fn request_to(uac: &Uac, ctx: &mut Ctx<'_>, user: &str, mode: i64) -> i32 {
    if !(0..=3).contains(&mode) {
        return -1;
    }
    let acct = uac
        .accounts()
        .iter()
        .find(|a| {
            if mode & 1 == 0 {
                a.l_uuid == user
            } else {
                a.l_username == user
            }
        })
        .cloned();
    let Some(a) = acct else {
        return -1;
    };
    let p = &uac.p;
    let avps = [
        params::get_str(&p.auth_realm_avp),
        params::get_str(&p.auth_username_avp),
        params::get_str(&p.auth_password_avp),
    ];
    if avps.iter().any(String::is_empty) {
        lm_err!("uac_reg_request_to: set auth_realm_avp, auth_username_avp and auth_password_avp");
        return -1;
    }
    let password = if mode & 2 != 0 {
        &a.auth_ha1
    } else {
        &a.auth_password
    };
    let values = [a.realm.clone(), a.auth_username.clone(), password.clone()];
    for (name, v) in avps.iter().zip(values) {
        if let Err(e) = ctx.core.pv_set(ctx.msg, name, Value::Str(v.into())) {
            lm_err!("uac_reg_request_to: {name}: {e}");
            return -1;
        }
    }
    ctx.msg.new_uri = Some(format!("sip:{}@{}", a.r_username, a.r_domain));
    ctx.msg.dst_uri = Some(
        if a.auth_proxy.contains(':') && a.auth_proxy.starts_with("sip") {
            a.auth_proxy.clone()
        } else {
            format!("sip:{}", a.auth_proxy)
        },
    );
    1
}

fn text(ctx: &mut Ctx<'_>, a: &Fixed) -> String {
    a.str(ctx).into_owned()
}

fn str_param(p: &[Json], i: usize) -> Result<String, RpcError> {
    sr_sdk::rpc::param_opt_str(p, i).ok_or_else(|| RpcError::new(400, "Invalid Parameters"))
}

fn find_by(list: &[Account], attr: &str, value: &str) -> Result<Option<usize>, RpcError> {
    let pick = |a: &Account| match attr {
        "l_uuid" => Ok(a.l_uuid == value),
        "l_username" => Ok(a.l_username == value),
        "r_username" => Ok(a.r_username == value),
        "auth_username" => Ok(a.auth_username == value),
        _ => Err(RpcError::new(400, "Unsupported filter attribute")),
    };
    for (i, a) in list.iter().enumerate() {
        if pick(a)? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn enabled(uac: &Uac) -> Result<(), RpcError> {
    if uac.reg_on() {
        Ok(())
    } else {
        Err(RpcError::new(500, "Not enabled"))
    }
}

/// `uac.reg_add l_uuid l_username l_domain r_username r_domain realm
/// auth_username auth_password auth_ha1 auth_proxy expires flags reg_delay
/// socket contact_addr` (`.` for an empty password or HA1, and for the
/// default contact address).
fn reg_add(uac: &Uac, p: &[Json]) -> Result<Json, RpcError> {
    const COLS: [&str; 15] = [
        "l_uuid",
        "l_username",
        "l_domain",
        "r_username",
        "r_domain",
        "realm",
        "auth_username",
        "auth_password",
        "auth_ha1",
        "auth_proxy",
        "expires",
        "flags",
        "reg_delay",
        "socket",
        "contact_addr",
    ];
    if p.len() < COLS.len() {
        return Err(RpcError::new(400, "Invalid Parameters"));
    }
    let mut row = Vec::new();
    for (i, c) in COLS.iter().enumerate() {
        let mut v = str_param(p, i)?;
        if v == "." && matches!(*c, "auth_password" | "auth_ha1" | "contact_addr") {
            v.clear();
        }
        row.push(DbValue::str(v));
    }
    let rows = Rows {
        columns: COLS.iter().map(|c| c.to_string()).collect(),
        rows: vec![row],
    };
    let a = from_row(&rows, 0, sr_sdk::db::now()).map_err(|e| RpcError::new(400, e))?;
    let mut list = uac.accounts();
    if list.iter().any(|x| x.l_uuid == a.l_uuid) {
        return Err(RpcError::new(409, "uuid already exists"));
    }
    if a.flags & DISABLED != 0 {
        uac.reg_stats.disabled.inc();
    }
    list.push(a);
    uac.reg_stats.total.inc();
    Ok(Json::Null)
}

/// Adds the functions and RPC methods to the module.
pub fn export(def: ModuleDef, u: &Arc<Uac>) -> ModuleDef {
    let any = RouteType::ANY;
    let spve = fixup::f(fixup::spve);
    let pv_out = |i: usize| -> sr_sdk::fixup::FixupFn {
        Arc::new(move |env, j, arg| {
            if j == i {
                fixup::pvar(env, j, arg)
            } else {
                fixup::spve(env, j, arg)
            }
        })
    };
    let c = |u: &Arc<Uac>| u.clone();
    let (u1, u2, u3, u4, u5, u6, u7) = (c(u), c(u), c(u), c(u), c(u), c(u), c(u));
    let mut def = def
        .cmd("uac_reg_lookup", 2, any, Some(pv_out(1)), move |ctx, a| {
            let uuid = text(ctx, &a[0]);
            lookup(&u1, ctx, &uuid, &a[1])
        })
        .cmd(
            "uac_reg_lookup_uri",
            2,
            any,
            Some(pv_out(1)),
            move |ctx, a| {
                let uri = text(ctx, &a[0]);
                lookup_uri(&u2, ctx, &uri, &a[1])
            },
        )
        .cmd(
            "uac_reg_status",
            1,
            any,
            Some(spve.clone()),
            move |ctx, a| {
                let uuid = text(ctx, &a[0]);
                u3.reg_status(&uuid)
            },
        )
        .cmd(
            "uac_reg_request_to",
            2,
            RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH,
            Some(Arc::new(|env, j, arg| {
                if j == 1 {
                    fixup::igp(env, j, arg)
                } else {
                    fixup::spve(env, j, arg)
                }
            })),
            move |ctx, a| {
                let user = text(ctx, &a[0]);
                let mode = a[1].int(ctx);
                request_to(&u4, ctx, &user, mode)
            },
        )
        .cmd(
            "uac_reg_enable",
            2,
            any,
            Some(spve.clone()),
            move |ctx, a| {
                let (attr, v) = (text(ctx, &a[0]), text(ctx, &a[1]));
                u5.reg_set_enabled(&attr, &v, true)
            },
        )
        .cmd(
            "uac_reg_disable",
            2,
            any,
            Some(spve.clone()),
            move |ctx, a| {
                let (attr, v) = (text(ctx, &a[0]), text(ctx, &a[1]));
                u6.reg_set_enabled(&attr, &v, false)
            },
        )
        .cmd("uac_reg_refresh", 1, any, Some(spve), move |ctx, a| {
            let uuid = text(ctx, &a[0]);
            match u7.reg_refresh(&uuid) {
                Ok(true) => 1,
                Ok(false) => -1,
                Err(e) => {
                    lm_err!("uac_reg_refresh: {e}");
                    -1
                }
            }
        });
    type Handler = fn(&Uac, &[Json]) -> Result<Json, RpcError>;
    let methods: [(&str, &str, Handler); 10] = [
        ("uac.reg_dump", "The remote registrations.", |u, _| {
            enabled(u)?;
            Ok(Json::Array(
                u.accounts().iter().map(Uac::account_json).collect(),
            ))
        }),
        (
            "uac.reg_info",
            "One remote registration: attribute value.",
            |u, p| {
                enabled(u)?;
                let (attr, v) = (str_param(p, 0)?, str_param(p, 1)?);
                let list = u.accounts();
                let i = find_by(&list, &attr, &v)?
                    .ok_or_else(|| RpcError::new(404, "Record not found"))?;
                Ok(Uac::account_json(&list[i]))
            },
        ),
        (
            "uac.reg_enable",
            "Enables a remote registration: attribute value.",
            |u, p| {
                enabled(u)?;
                let (attr, v) = (str_param(p, 0)?, str_param(p, 1)?);
                match u.reg_set_enabled(&attr, &v, true) {
                    1 => Ok(Json::Null),
                    -3 => Err(RpcError::new(400, "Unsupported filter attribute")),
                    _ => Err(RpcError::new(404, "Record not found")),
                }
            },
        ),
        (
            "uac.reg_disable",
            "Disables a remote registration: attribute value.",
            |u, p| {
                enabled(u)?;
                let (attr, v) = (str_param(p, 0)?, str_param(p, 1)?);
                match u.reg_set_enabled(&attr, &v, false) {
                    1 => Ok(Json::Null),
                    -3 => Err(RpcError::new(400, "Unsupported filter attribute")),
                    _ => Err(RpcError::new(404, "Record not found")),
                }
            },
        ),
        ("uac.reg_reload", "Loads the uacreg table again.", |u, _| {
            enabled(u)?;
            let pool = u
                .reg_pool
                .get()
                .ok_or_else(|| RpcError::new(500, "Not enabled"))?;
            u.reg_load(pool).map_err(|e| RpcError::new(500, e))?;
            Ok(Json::Null)
        }),
        (
            "uac.reg_refresh",
            "Reads one account again from the table: l_uuid.",
            |u, p| {
                enabled(u)?;
                match u.reg_refresh(&str_param(p, 0)?) {
                    Ok(true) => Ok(Json::Null),
                    Ok(false) => Err(RpcError::new(404, "Record not found")),
                    Err(e) => Err(RpcError::new(500, e)),
                }
            },
        ),
        (
            "uac.reg_remove",
            "Forgets a remote registration: l_uuid.",
            |u, p| {
                enabled(u)?;
                let uuid = str_param(p, 0)?;
                let mut list = u.accounts();
                let i = list
                    .iter()
                    .position(|a| a.l_uuid == uuid)
                    .ok_or_else(|| RpcError::new(404, "Record not found"))?;
                let a = list.remove(i);
                u.reg_stats.total.dec();
                if a.flags & DISABLED != 0 {
                    u.reg_stats.disabled.dec();
                }
                Ok(Json::Null)
            },
        ),
        (
            "uac.reg_add",
            "Adds a remote registration (the uacreg columns).",
            |u, p| {
                enabled(u)?;
                reg_add(u, p)
            },
        ),
        (
            "uac.reg_active",
            "Turns remote registrations on or off: 0|1.",
            |u, p| {
                enabled(u)?;
                let n: i64 = str_param(p, 0)?
                    .trim()
                    .parse()
                    .map_err(|_| RpcError::new(400, "Invalid Parameters"))?;
                let old = params::get_int(&u.reg.active);
                u.reg.active.store(n, std::sync::atomic::Ordering::Relaxed);
                Ok(json!({ "omode": old, "nmode": n }))
            },
        ),
        (
            "uac.reg_unregister",
            "Unregisters an account now: attribute value.",
            |u, p| {
                enabled(u)?;
                let (attr, v) = (str_param(p, 0)?, str_param(p, 1)?);
                let uuid = {
                    let mut list = u.accounts();
                    let i = find_by(&list, &attr, &v)?
                        .ok_or_else(|| RpcError::new(404, "Record not found"))?;
                    let a = &mut list[i];
                    a.expires = 0;
                    a.flags &= !ONGOING;
                    a.l_uuid.clone()
                };
                let core = u
                    .core_ref()
                    .ok_or_else(|| RpcError::new(500, "server is stopping"))?;
                u.reg_send(&*core, &uuid, None);
                Ok(Json::Null)
            },
        ),
    ];
    for (name, doc, f) in methods {
        let u = u.clone();
        def = def.rpc(name, doc, move |p| f(&u, p));
    }
    def
}
