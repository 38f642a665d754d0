//! The script functions: `allow_source_address`, `allow_address`, their
//! `*_group` forms, and `allow_trusted`.

use crate::address::parse_ip;
use crate::{files, int, text, trusted, Permissions};
use sr_sdk::prelude::*;
use std::sync::{Arc, Mutex};

/// The first matching row's group for an address (an IP, or a name) and
/// port, in group `grp` (any with `None`); its tag pushed when `tag`.
fn find(
    pm: &Permissions,
    ctx: &mut Ctx<'_>,
    grp: Option<u32>,
    addr: &str,
    port: u16,
    tag: bool,
) -> Option<u32> {
    let table = pm.address()?;
    let (g, t) = match parse_ip(addr) {
        Some(ip) => table.find(grp, ip, port).map(|e| (e.grp, e.tag.clone()))?,
        None => table
            .find_name(grp, addr, port)
            .map(|n| (n.grp, n.tag.clone()))?,
    };
    if tag {
        pm.push_tag(ctx.msg, t.as_deref());
    }
    Some(g)
}

/// The message's source address and port.
fn source(ctx: &Ctx<'_>) -> (String, u16) {
    let src = ctx.msg.rcv.src;
    (src.ip().to_string(), src.port())
}

fn truth(found: Option<u32>) -> i32 {
    if found.is_some() {
        1
    } else {
        -1
    }
}

fn group_arg(v: i64) -> Option<u32> {
    u32::try_from(v).ok().filter(|&g| g > 0)
}

fn port_arg(v: i64) -> u16 {
    u16::try_from(v).unwrap_or(0)
}

/// A fixup taking a string (with pseudo-variables) at parameter `at` and
/// integers (or pseudo-variables) elsewhere.
fn string_at(at: usize) -> fixup::FixupFn {
    Arc::new(move |env, i, arg| {
        if i == at {
            fixup::spve(env, i, arg)
        } else {
            fixup::igp(env, i, arg)
        }
    })
}

/// `allow_trusted` with the address, transport and From URI given (or
/// the message's). A SIP message whose From cannot be read is not
/// trusted, as in Kamailio; for any other (HTTP) the patterns are not
/// checked.
fn allow_trusted(
    pm: &Permissions,
    ctx: &mut Ctx<'_>,
    args: Option<(String, String, Option<String>)>,
) -> i32 {
    let m = ctx.msg.msg();
    let sip = !m.is_http();
    let from = if sip {
        match (&args, m.from()) {
            (Some((_, _, Some(f))), _) => Some(f.clone()),
            (_, Ok(f)) => Some(f.uri.raw.to_string()),
            (_, Err(e)) => {
                lm_err!("permissions: allow_trusted: no usable From: {e}");
                return -1;
            }
        }
    } else {
        None
    };
    let ruri = if sip {
        m.request_uri().map(|u| u.raw.to_string())
    } else {
        None
    };
    let (ip, proto) = match args {
        None => {
            let Some(proto) = trusted::of_transport(ctx.msg.rcv.proto) else {
                return -1;
            };
            (source(ctx).0, proto)
        }
        Some((ip, p, _)) => match trusted::parse_proto(&p) {
            Some(proto) => (ip, proto),
            None => {
                lm_err!("permissions: allow_trusted: unknown protocol '{p}'");
                return -1;
            }
        },
    };
    let tags = match pm.trusted_matches(&ip, proto, from.as_deref(), ruri.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            lm_err!("permissions: allow_trusted: {e}");
            return -1;
        }
    };
    let Some(first) = tags.first() else {
        return -1;
    };
    if int(&pm.p.peer_tag_mode) == 0 {
        pm.push_tag(ctx.msg, first.as_deref());
        return 1;
    }
    for t in &tags {
        pm.push_tag(ctx.msg, t.as_deref());
    }
    tags.len() as i32
}

/// Adds the functions to the module.
pub fn export(pm: &Arc<Permissions>, mut def: ModuleDef) -> ModuleDef {
    let any = RouteType::ANY;
    for n in [0, 1] {
        let d = pm.clone();
        let fx = (n == 1).then(|| fixup::f(fixup::igp));
        def = def.cmd("allow_source_address", n, any, fx, move |ctx, p| {
            let grp = match p.first() {
                Some(g) => group_arg(g.int(ctx)),
                None => Some(1),
            };
            let Some(grp) = grp else { return -1 };
            let (ip, port) = source(ctx);
            truth(find(&d, ctx, Some(grp), &ip, port, true))
        });
    }
    let d = pm.clone();
    def = def.cmd("allow_source_address_group", 0, any, None, move |ctx, _| {
        let (ip, port) = source(ctx);
        find(&d, ctx, None, &ip, port, true).map_or(-1, |g| g as i32)
    });
    let d = pm.clone();
    def = def.cmd(
        "allow_address",
        3,
        any,
        Some(string_at(1)),
        move |ctx, p| {
            let Some(grp) = group_arg(p[0].int(ctx)) else {
                return -1;
            };
            let addr = p[1].str(ctx).into_owned();
            let port = port_arg(p[2].int(ctx));
            truth(find(&d, ctx, Some(grp), &addr, port, true))
        },
    );
    let d = pm.clone();
    def = def.cmd(
        "allow_address_group",
        2,
        any,
        Some(string_at(0)),
        move |ctx, p| {
            let addr = p[0].str(ctx).into_owned();
            let port = port_arg(p[1].int(ctx));
            // A name's group comes without its tag, as in Kamailio.
            let tag = parse_ip(&addr).is_some();
            find(&d, ctx, None, &addr, port, tag).map_or(-1, |g| g as i32)
        },
    );
    let d = pm.clone();
    def = def.cmd("allow_trusted", 0, any, None, move |ctx, _| {
        allow_trusted(&d, ctx, None)
    });
    for n in [2, 3] {
        let d = pm.clone();
        def = def.cmd(
            "allow_trusted",
            n,
            any,
            Some(fixup::f(fixup::spve)),
            move |ctx, p| {
                let ip = p[0].str(ctx).into_owned();
                let proto = p[1].str(ctx).into_owned();
                let from = p.get(2).map(|f| f.str(ctx).into_owned());
                allow_trusted(&d, ctx, Some((ip, proto, from)))
            },
        );
    }
    export_rule_files(pm, def)
}

/// The pair of rule files a call site names, read by its fixup.
#[derive(Debug)]
struct PairRef(Arc<files::Pair>);

/// The fixup of a rule-file function's names: `basename` (its
/// `allow_suffix`/`deny_suffix` files, `names` 1) or `allow, deny`
/// (`names` 2). The files are read here, at load, as Kamailio reads them.
fn rule_fixup(pm: &Arc<Permissions>, names: usize) -> fixup::FixupFn {
    let d = pm.clone();
    let first: Mutex<Option<String>> = Mutex::new(None);
    Arc::new(move |env, i, arg| {
        let f = fixup::const_str(env, i, arg)?;
        let name = f.as_const_str().unwrap_or_default().to_string();
        let dir = files::config_dir(env.core());
        let (allow, deny) = match (names, i) {
            (2, 0) => {
                *first.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
                return Ok(f);
            }
            (2, _) => {
                let allow = first
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .unwrap_or_default();
                (allow, name)
            }
            _ => (
                format!("{name}{}", text(&d.rule_params.allow_suffix)),
                format!("{name}{}", text(&d.rule_params.deny_suffix)),
            ),
        };
        let pair = files::pair(
            &d,
            files::resolve(dir.as_deref(), &allow),
            files::resolve(dir.as_deref(), &deny),
        );
        Ok(Fixed::Custom(Arc::new(PairRef(pair))))
    })
}

/// The pair a call's fixup read.
fn pair_of(p: &[Fixed]) -> Arc<files::Pair> {
    p.iter()
        .find_map(|f| f.custom::<PairRef>())
        .map_or_else(|| Arc::new(files::Pair::empty()), |r| r.0.clone())
}

fn export_rule_files(pm: &Arc<Permissions>, mut def: ModuleDef) -> ModuleDef {
    let d = pm.clone();
    def = def.cmd("allow_routing", 0, RouteType::ANY, None, move |ctx, _| {
        let pair = d
            .default_rules
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::new(files::Pair::empty()));
        files::routing(&d, &pair, ctx)
    });
    let req = RouteType::REQUEST | RouteType::FAILURE;
    for (name, n, rt) in [
        ("allow_routing", 1usize, RouteType::ANY),
        ("allow_routing", 2, RouteType::ANY),
        ("allow_register", 1, req),
        ("allow_register", 2, req),
    ] {
        let d = pm.clone();
        let register = name == "allow_register";
        def = def.cmd(name, n, rt, Some(rule_fixup(pm, n)), move |ctx, p| {
            let pair = pair_of(p);
            if register {
                files::register(&d, &pair, ctx)
            } else {
                files::routing(&d, &pair, ctx)
            }
        });
    }
    let base = rule_fixup(pm, 1);
    let fix: fixup::FixupFn = Arc::new(move |env, i, arg| {
        if i == 0 {
            base(env, i, arg)
        } else {
            fixup::pvar(env, i, arg).or_else(|_| fixup::spve(env, i, arg))
        }
    });
    def.cmd("allow_uri", 2, req, Some(fix), move |ctx, p| {
        let pair = pair_of(&p[..1]);
        let v = match &p[1] {
            Fixed::Pv(e) => e.eval(ctx),
            Fixed::Dyn(e) => e.eval(ctx),
            other => Value::Str(other.str(ctx).into_owned().into()),
        };
        files::uri(&pair, ctx, v)
    })
}
