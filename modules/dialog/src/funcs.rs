//! The script functions: `dlg_manage`, the profile functions, the dialog
//! flags, `is_known_dlg`, `dlg_bye`, `dlg_set_timeout`,
//! `dlg_set_property`/`dlg_reset_property` and `dlg_get`.

use crate::bye::Side;
use crate::dlg::DFLAG_NORESET;
use crate::profile::Link;
use crate::track::{self, dctx};
use crate::Dlg;
use sr_sdk::fixup::FixupFn;
use sr_sdk::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fixup for profile functions: parameter 0 a declared profile (else
/// the configuration is refused, as Kamailio's `profile <x> not defined`),
/// later ones strings with variables, the one at `out` a writable
/// variable.
fn profile_fixup(d: &Arc<Dlg>, out: Option<usize>) -> FixupFn {
    let d = d.clone();
    Arc::new(move |env, i, arg| {
        if Some(i) == out {
            return fixup::pvar(env, i, arg);
        }
        if i > 0 {
            return fixup::spve(env, i, arg);
        }
        let name = arg.text().trim().to_string();
        match d.p.profiles()?.get(&name) {
            None => Err(format!(
                "dialog: profile <{name}> not defined (profiles_with_value or profiles_no_value)"
            )),
            Some(_) => Ok(Fixed::Str(name)),
        }
    })
}

/// A profile fixup whose parameter `int_at` is an integer.
fn profile_fixup_int(d: &Arc<Dlg>, int_at: usize) -> FixupFn {
    let inner = profile_fixup(d, None);
    Arc::new(move |env, i, arg| {
        if i == int_at {
            fixup::igp(env, i, arg)
        } else {
            inner(env, i, arg)
        }
    })
}

/// 1 for true, -1 for false (the script's convention).
fn rc(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

fn text(ctx: &mut Ctx<'_>, a: &Fixed) -> String {
    a.str(ctx).into_owned()
}

/// The membership a profile function names: a profile with values needs
/// a non-empty one (`None` otherwise); one without values ignores it.
fn link_of(d: &Dlg, profile: &str, value: Option<String>) -> Option<(Link, bool)> {
    let with_value = d.profiles().get(profile)?;
    let value = if with_value {
        value.filter(|v| !v.is_empty())?
    } else {
        String::new()
    };
    Some((
        Link {
            profile: profile.to_string(),
            value,
        },
        with_value,
    ))
}

/// `set_dlg_profile`: the current dialog joins; in request_route before
/// the dialog is made, the membership waits for it.
fn set_profile(d: &Dlg, ctx: &mut Ctx<'_>, profile: &str, value: Option<String>) -> i32 {
    let Some((l, _)) = link_of(d, profile, value) else {
        return -1;
    };
    match track::current(d, ctx.msg) {
        Some(k) => rc(d.table().link(k, l)),
        None if ctx.route == RouteType::REQUEST && !ctx.msg.faked => {
            let c = dctx(ctx.msg);
            if !c.pending.contains(&l) {
                c.pending.push(l);
            }
            1
        }
        None => -1,
    }
}

/// `unset_dlg_profile`: -1 in request_route, as Kamailio 5.6's (which
/// lists the route but refuses it when called).
fn unset_profile(d: &Dlg, ctx: &mut Ctx<'_>, profile: &str, value: Option<String>) -> i32 {
    if ctx.route == RouteType::REQUEST {
        return -1;
    }
    let Some((l, with_value)) = link_of(d, profile, value) else {
        return -1;
    };
    let value = with_value.then_some(l.value.as_str());
    match track::current(d, ctx.msg) {
        Some(k) => rc(d.table().unlink(k, profile, value)),
        None => -1,
    }
}

/// `is_in_profile`: memberships waiting for the dialog do not count yet
/// (as Kamailio's).
fn in_profile(d: &Dlg, ctx: &mut Ctx<'_>, profile: &str, value: Option<String>) -> i32 {
    let Some((l, with_value)) = link_of(d, profile, value) else {
        return -1;
    };
    let hit = |x: &Link| x.profile == l.profile && (!with_value || x.value == l.value);
    match track::current(d, ctx.msg) {
        Some(k) => rc(d.table().get(k).is_some_and(|x| x.profiles.iter().any(hit))),
        None => -1,
    }
}

/// `get_profile_size`: without a value (or for a profile without values)
/// every member counts.
fn profile_size(
    d: &Dlg,
    ctx: &mut Ctx<'_>,
    profile: &str,
    value: Option<&str>,
    out: &Fixed,
) -> i32 {
    let with_value = d.profiles().get(profile) == Some(true);
    let value = value.filter(|_| with_value);
    let n = d.table().profile_size(profile, value, with_value) as i64;
    let Fixed::Pv(pv) = out else {
        return -1;
    };
    match pv.assign(ctx, Value::Int(n)) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("get_profile_size: {e}");
            -1
        }
    }
}

fn flag_op(d: &Dlg, ctx: &mut Ctx<'_>, bit: i64, op: u8) -> i32 {
    if !(0..32).contains(&bit) {
        lm_err!("dialog: flag {bit} is out of range (0..31)");
        return -1;
    }
    let mask = 1u32 << bit;
    let apply = |flags: &mut u32| -> i32 {
        match op {
            b's' => {
                *flags |= mask;
                1
            }
            b'r' => {
                *flags &= !mask;
                1
            }
            _ => rc(*flags & mask != 0),
        }
    };
    match track::current(d, ctx.msg) {
        Some(k) => d.table().get_mut(k).map_or(-1, |x| apply(&mut x.sflags)),
        None if ctx.msg.is_request() && !ctx.msg.faked => apply(&mut dctx(ctx.msg).flags),
        None => -1,
    }
}

/// Changes the lifetime of a dialog: the deadline restarts from now when
/// it is running.
pub fn set_timeout(d: &Dlg, key: (u32, u32), secs: u32) -> bool {
    let mut t = d.table();
    let Some(x) = t.get_mut(key) else {
        return false;
    };
    x.lifetime = secs;
    if x.deadline.is_some() {
        x.deadline = Some(Instant::now() + Duration::from_secs(u64::from(secs)));
    }
    true
}

fn timeout_cmd(d: &Dlg, ctx: &mut Ctx<'_>, secs: i64, key: Option<(u32, u32)>) -> i32 {
    if secs <= 0 || secs > i64::from(u32::MAX) {
        lm_err!("dlg_set_timeout: {secs} is not a valid timeout");
        return -1;
    }
    let key = match key {
        Some(k) => Some(k),
        None => track::current(d, ctx.msg),
    };
    match key {
        Some(k) => rc(set_timeout(d, k, secs as u32)),
        None => -1,
    }
}

fn property(d: &Dlg, ctx: &mut Ctx<'_>, name: &str, on: bool) -> i32 {
    let bit = match name {
        "timeout-noreset" => DFLAG_NORESET,
        "ka-src" | "ka-dst" => {
            lm_err!("dlg_set_property: '{name}' (keepalives) is not supported");
            return -1;
        }
        _ => {
            lm_err!("dlg_set_property: unknown property '{name}'");
            return -1;
        }
    };
    let Some(k) = track::current(d, ctx.msg) else {
        return -1;
    };
    d.table().get_mut(k).map_or(-1, |x| {
        if on {
            x.dflags |= bit;
        } else {
            x.dflags &= !bit;
        }
        1
    })
}

/// `dlg_bye(side)`: the message's own dialog only (not one found by
/// Call-ID), answered, as Kamailio's.
fn bye_cmd(d: &Dlg, ctx: &mut Ctx<'_>, side: Side) -> i32 {
    let Some(k) = track::given(ctx.msg) else {
        return -1;
    };
    rc(track::terminate(d, ctx.core, k, Some((side, "")), false))
}

/// `dlg_bye`'s side: `all`, `caller` or `callee`, checked at load.
fn side_fixup(_env: &dyn fixup::FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    let text = arg.text();
    Side::parse(&text)
        .map(|s| Fixed::Custom(Arc::new(s)))
        .ok_or_else(|| format!("dlg_bye: '{text}' is not all, caller or callee"))
}

/// `dlg_set_timeout_by_profile(profile, [value,] seconds)`: every dialog
/// in the profile (with that value) gets the lifetime.
fn timeout_by_profile(d: &Dlg, profile: &str, value: Option<&str>, secs: i64) -> i32 {
    if secs <= 0 || secs > i64::from(u32::MAX) {
        return -1;
    }
    let keys: Vec<(u32, u32)> = {
        let t = d.table();
        t.all()
            .into_iter()
            .filter(|x| {
                x.profiles
                    .iter()
                    .any(|l| l.profile == profile && value.is_none_or(|v| v == l.value))
            })
            .map(|x| (x.h_entry, x.h_id))
            .collect()
    };
    for k in keys {
        set_timeout(d, k, secs as u32);
    }
    1
}

/// `dlg_set_ruri()`: the Request-URI becomes the Contact of the side the
/// request goes to.
fn set_ruri(d: &Dlg, ctx: &mut Ctx<'_>) -> i32 {
    let Some(c) = ctx.msg.ext.get::<crate::DlgCtx>().cloned() else {
        return -1;
    };
    let Some(k) = c.key else {
        return -1;
    };
    let contact = d.table().get(k).map(|x| {
        if c.downstream {
            x.callee.contact.clone()
        } else {
            x.caller.contact.clone()
        }
    });
    match contact {
        Some(ct) if !ct.is_empty() => {
            ctx.msg.new_uri = Some(ct);
            1
        }
        _ => -1,
    }
}

fn get_cmd(d: &Dlg, ctx: &mut Ctx<'_>, callid: &str, ftag: &str, ttag: &str) -> i32 {
    match d.table().find(callid, ftag, ttag) {
        Some((k, down)) => {
            let c = dctx(ctx.msg);
            c.key = Some(k);
            c.downstream = down;
            c.dir = if down { 1 } else { 2 };
            1
        }
        None => -1,
    }
}

/// `dlg_remote_profile(cmd, profile, value, uid, expires)`: a profile
/// membership kept without a dialog (what another server counts), added
/// (`add`, `expires` in unix seconds, 0 for never) or removed (`rm`).
/// As Kamailio's: -1 for an empty command, profile or id, an unknown
/// profile or command, or no value for a profile with values; `rm`
/// answers 1 whether or not there was such a membership.
fn remote_profile(d: &Dlg, args: [String; 4], expires: i64) -> i32 {
    let [cmd, name, value, uid] = args;
    if cmd.is_empty() || name.is_empty() || uid.is_empty() {
        lm_err!("dialog: invalid parameters");
        return -1;
    }
    let Some(with_value) = d.profiles().get(&name) else {
        lm_err!("dialog: profile [{name}] not found");
        return -1;
    };
    if with_value && value.is_empty() {
        lm_err!("dialog: profile [{name}] requires a value");
        return -1;
    }
    let link = Link {
        profile: name,
        value: if with_value { value } else { String::new() },
    };
    match cmd.as_str() {
        "add" => {
            if d.table().add_remote(link, &uid, expires) {
                1
            } else {
                lm_err!("dialog: too many remote profile memberships - not added");
                -1
            }
        }
        "rm" => {
            d.table().remove_remote(&link, &uid);
            1
        }
        other => {
            lm_err!("dialog: unknown command [{other}]");
            -1
        }
    }
}

/// Adds the functions to the module.
pub fn export(def: ModuleDef, d: &Arc<Dlg>) -> ModuleDef {
    let any = RouteType::ANY;
    let req = RouteType::REQUEST | RouteType::BRANCH;
    let set_routes =
        RouteType::REQUEST | RouteType::FAILURE | RouteType::ONREPLY | RouteType::BRANCH;
    let spve = Some(fixup::f(fixup::spve));
    let igp = Some(fixup::f(fixup::igp));
    let c = |d: &Arc<Dlg>| d.clone();
    let (d1, d2, d3, d4, d5, d6) = (c(d), c(d), c(d), c(d), c(d), c(d));
    let (d7, d8, d9, d10, d11, d12) = (c(d), c(d), c(d), c(d), c(d), c(d));
    let (d13, d14, d15, d16, d17, d18) = (c(d), c(d), c(d), c(d), c(d), c(d));
    let mut def = def
        .cmd("dlg_manage", 0, req, None, move |ctx, _| {
            if ctx.msg.msg().to_tag().ok().flatten().is_some() {
                track::manage_within(&d1, ctx)
            } else {
                track::create(&d1, ctx)
            }
        })
        .cmd(
            "set_dlg_profile",
            1,
            any,
            Some(profile_fixup(d, None)),
            move |ctx, a| {
                let p = text(ctx, &a[0]);
                set_profile(&d2, ctx, &p, None)
            },
        )
        .cmd(
            "set_dlg_profile",
            2,
            any,
            Some(profile_fixup(d, None)),
            move |ctx, a| {
                let (p, v) = (text(ctx, &a[0]), text(ctx, &a[1]));
                set_profile(&d3, ctx, &p, Some(v))
            },
        )
        .cmd(
            "unset_dlg_profile",
            1,
            set_routes,
            Some(profile_fixup(d, None)),
            move |ctx, a| {
                let p = text(ctx, &a[0]);
                unset_profile(&d4, ctx, &p, None)
            },
        )
        .cmd(
            "unset_dlg_profile",
            2,
            set_routes,
            Some(profile_fixup(d, None)),
            move |ctx, a| {
                let (p, v) = (text(ctx, &a[0]), text(ctx, &a[1]));
                unset_profile(&d5, ctx, &p, Some(v))
            },
        )
        .cmd(
            "is_in_profile",
            1,
            any,
            Some(profile_fixup(d, None)),
            move |ctx, a| {
                let p = text(ctx, &a[0]);
                in_profile(&d6, ctx, &p, None)
            },
        )
        .cmd(
            "is_in_profile",
            2,
            any,
            Some(profile_fixup(d, None)),
            move |ctx, a| {
                let (p, v) = (text(ctx, &a[0]), text(ctx, &a[1]));
                in_profile(&d7, ctx, &p, Some(v))
            },
        )
        .cmd(
            "get_profile_size",
            2,
            any,
            Some(profile_fixup(d, Some(1))),
            move |ctx, a| {
                let p = text(ctx, &a[0]);
                profile_size(&d8, ctx, &p, None, &a[1])
            },
        )
        .cmd(
            "get_profile_size",
            3,
            any,
            Some(profile_fixup(d, Some(2))),
            move |ctx, a| {
                let (p, v) = (text(ctx, &a[0]), text(ctx, &a[1]));
                profile_size(&d9, ctx, &p, Some(&v), &a[2])
            },
        )
        .cmd(
            "dlg_remote_profile",
            5,
            any,
            Some(Arc::new(|env, i, arg| {
                if i == 4 {
                    fixup::igp(env, i, arg)
                } else {
                    fixup::spve(env, i, arg)
                }
            })),
            {
                let d = d.clone();
                move |ctx, a| {
                    let args: [String; 4] = std::array::from_fn(|i| text(ctx, &a[i]));
                    let expires = a[4].int(ctx);
                    remote_profile(&d, args, expires)
                }
            },
        )
        .cmd("is_known_dlg", 0, any, None, move |ctx, _| {
            rc(track::current(&d10, ctx.msg).is_some())
        })
        .cmd(
            "dlg_bye",
            1,
            any,
            Some(fixup::f(side_fixup)),
            move |ctx, a| match a[0].custom::<Side>() {
                Some(s) => bye_cmd(&d11, ctx, *s),
                None => -1,
            },
        )
        .cmd("dlg_set_timeout", 1, any, igp.clone(), move |ctx, a| {
            let t = a[0].int(ctx);
            timeout_cmd(&d12, ctx, t, None)
        })
        .cmd("dlg_set_timeout", 3, any, igp.clone(), move |ctx, a| {
            let (t, e, i) = (a[0].int(ctx), a[1].int(ctx), a[2].int(ctx));
            let key = (
                u32::try_from(e).unwrap_or(u32::MAX),
                u32::try_from(i).unwrap_or(u32::MAX),
            );
            timeout_cmd(&d13, ctx, t, Some(key))
        })
        .cmd("dlg_set_property", 1, any, spve.clone(), move |ctx, a| {
            let p = text(ctx, &a[0]);
            property(&d14, ctx, &p, true)
        })
        .cmd("dlg_reset_property", 1, any, spve.clone(), move |ctx, a| {
            let p = text(ctx, &a[0]);
            property(&d15, ctx, &p, false)
        })
        .cmd("dlg_set_ruri", 0, any, None, {
            let d = c(d);
            move |ctx, _| set_ruri(&d, ctx)
        })
        .cmd(
            "dlg_set_timeout_by_profile",
            2,
            any,
            Some(profile_fixup_int(d, 1)),
            {
                let d = c(d);
                move |ctx, a| {
                    let p = text(ctx, &a[0]);
                    let t = a[1].int(ctx);
                    timeout_by_profile(&d, &p, None, t)
                }
            },
        )
        .cmd(
            "dlg_set_timeout_by_profile",
            3,
            any,
            Some(profile_fixup_int(d, 2)),
            {
                let d = c(d);
                move |ctx, a| {
                    let (p, v) = (text(ctx, &a[0]), text(ctx, &a[1]));
                    let t = a[2].int(ctx);
                    timeout_by_profile(&d, &p, Some(&v), t)
                }
            },
        )
        .cmd("dlg_get", 3, any, spve.clone(), move |ctx, a| {
            let (c, f, t) = (text(ctx, &a[0]), text(ctx, &a[1]), text(ctx, &a[2]));
            get_cmd(&d16, ctx, &c, &f, &t)
        });
    for (name, op, dd) in [
        ("dlg_setflag", b's', d17),
        ("dlg_resetflag", b'r', d18),
        ("dlg_isflagset", b'i', c(d)),
    ] {
        def = def.cmd(name, 1, any, igp.clone(), move |ctx, a| {
            let n = a[0].int(ctx);
            flag_op(&dd, ctx, n, op)
        });
    }
    def
}
