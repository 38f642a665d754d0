//! The core's own exports, registered like a module named `core`: the core
//! actions of the script (`forward`, `setflag`, `strip`, `force_rport`,
//! ...) and the core RPC methods (`system.listMethods`, `core.version`,
//! `stats.get_statistics`, `cfg.reload`, ...).

use crate::runtime::Runtime;
use crate::script::pv::{rewrite_ruri, CorePv};
use serde_json::{json, Value as Json};
use sr_sdk::fixup::{self, Fixed};
use sr_sdk::rpc::{param_int, param_str};
use sr_sdk::{lm_err, Branch, Core, Ctx, ModuleDef, RouteType, RpcError};
use std::sync::{Arc, Weak};

fn flag_bit(ctx: &mut Ctx<'_>, p: &Fixed) -> Option<u32> {
    let n = p.int(ctx);
    if (0..32).contains(&n) {
        Some(1u32 << n)
    } else {
        lm_err!("flag {n} out of range (0..31)");
        None
    }
}

fn set_ruri(ctx: &mut Ctx<'_>, new: String) -> i32 {
    ctx.msg.new_uri = Some(new);
    // Usable for forking again (Kamailio's rewrite actions).
    ctx.msg.renew_ruri();
    1
}

fn rewrite(ctx: &mut Ctx<'_>, part: CorePv, v: &str) -> i32 {
    let cur = ctx.msg.ruri().to_string();
    match rewrite_ruri(&cur, &part, v) {
        Ok(n) => set_ruri(ctx, n),
        Err(e) => {
            lm_err!("{e}");
            -1
        }
    }
}

fn user_edit(ctx: &mut Ctx<'_>, f: impl Fn(&str) -> String) -> i32 {
    let cur = ctx.msg.ruri().to_string();
    let user = sip_msg::Uri::parse(&cur)
        .ok()
        .and_then(|u| u.user.map(str::to_string))
        .unwrap_or_default();
    rewrite(ctx, CorePv::RUser, &f(&user))
}

const ANY: RouteType = RouteType::ANY;
const REQ: RouteType = RouteType(RouteType::REQUEST.0 | RouteType::FAILURE.0 | RouteType::BRANCH.0);

fn forward_to(ctx: &mut Ctx<'_>, target: Option<String>) -> i32 {
    let core = ctx.core;
    match core.forward(ctx.msg, target.as_deref()) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("forward failed: {e}");
            if ctx.msg.fwd_flags.flow {
                ctx.msg.set_error(430, "Flow Failed");
            } else {
                ctx.msg.set_error(500, "Forwarding failed");
            }
            -1
        }
    }
}

fn host_port(ctx: &mut Ctx<'_>, p: &[Fixed], proto: Option<&str>) -> String {
    let host = p[0].str(ctx).into_owned();
    let port = p.get(1).map(|x| x.str(ctx).into_owned());
    let hp = match port {
        Some(port) if !port.is_empty() => format!("{host}:{port}"),
        _ => host,
    };
    match proto {
        Some(pr) => format!("{pr}:{hp}"),
        None => hp,
    }
}

/// The `core` module: script actions and core RPCs.
pub fn module(rt: &Arc<Runtime>) -> ModuleDef {
    let w: Weak<Runtime> = Arc::downgrade(rt);
    let int = Some(fixup::f(fixup::igp));
    let mut def = ModuleDef::new("core")
        .cmd("forward", 0, REQ, None, |ctx, _| forward_to(ctx, None))
        .cmd("forward", 1, REQ, None, |ctx, p| {
            let t = p[0].str(ctx).into_owned();
            forward_to(ctx, Some(t))
        })
        .cmd("forward", 2, REQ, None, |ctx, p| {
            let t = host_port(ctx, p, None);
            forward_to(ctx, Some(t))
        })
        .cmd("forward_udp", 2, REQ, None, |ctx, p| {
            let t = host_port(ctx, p, Some("udp"));
            forward_to(ctx, Some(t))
        })
        .cmd("forward_tcp", 2, REQ, None, |ctx, p| {
            let t = host_port(ctx, p, Some("tcp"));
            forward_to(ctx, Some(t))
        })
        .cmd("setflag", 1, ANY, int.clone(), |ctx, p| {
            flag_bit(ctx, &p[0]).map_or(-1, |b| {
                ctx.msg.flags |= b;
                1
            })
        })
        .cmd("resetflag", 1, ANY, int.clone(), |ctx, p| {
            flag_bit(ctx, &p[0]).map_or(-1, |b| {
                ctx.msg.flags &= !b;
                1
            })
        })
        .cmd("isflagset", 1, ANY, int.clone(), |ctx, p| {
            flag_bit(ctx, &p[0]).map_or(-1, |b| if ctx.msg.flags & b != 0 { 1 } else { -1 })
        })
        .cmd("force_rport", 0, REQ, None, |ctx, _| {
            ctx.msg.force_rport = true;
            1
        })
        .cmd("add_rport", 0, REQ, None, |ctx, _| {
            ctx.msg.force_rport = true;
            1
        })
        .cmd("add_local_rport", 0, REQ, None, |ctx, _| {
            ctx.msg.local_rport = true;
            1
        })
        .cmd("strip", 1, REQ, int.clone(), |ctx, p| {
            let n = p[0].int(ctx).max(0) as usize;
            user_edit(ctx, |u| u.get(n..).unwrap_or("").to_string())
        })
        .cmd("strip_tail", 1, REQ, int.clone(), |ctx, p| {
            let n = p[0].int(ctx).max(0) as usize;
            user_edit(ctx, |u| {
                u.get(..u.len().saturating_sub(n)).unwrap_or("").to_string()
            })
        })
        .cmd("prefix", 1, REQ, None, |ctx, p| {
            let pre = p[0].str(ctx).into_owned();
            user_edit(ctx, |u| format!("{pre}{u}"))
        })
        .cmd("rewriteuser", 1, REQ, None, |ctx, p| {
            let v = p[0].str(ctx).into_owned();
            rewrite(ctx, CorePv::RUser, &v)
        })
        .cmd("rewritehost", 1, REQ, None, |ctx, p| {
            let v = p[0].str(ctx).into_owned();
            rewrite(ctx, CorePv::RDomain, &v)
        })
        .cmd("rewriteport", 1, REQ, None, |ctx, p| {
            let v = p[0].str(ctx).into_owned();
            rewrite(ctx, CorePv::RPort, &v)
        })
        .cmd("rewritehostport", 1, REQ, None, |ctx, p| {
            let v = p[0].str(ctx).into_owned();
            let (h, port) = match v.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                    (h.to_string(), port.to_string())
                }
                _ => (v.clone(), String::new()),
            };
            if rewrite(ctx, CorePv::RDomain, &h) < 0 {
                return -1;
            }
            rewrite(ctx, CorePv::RPort, &port)
        })
        .cmd("rewriteuri", 1, REQ, None, |ctx, p| {
            let v = p[0].str(ctx).into_owned();
            set_ruri(ctx, v)
        })
        .cmd("revert_uri", 0, REQ, None, |ctx, _| {
            ctx.msg.new_uri = None;
            1
        })
        .cmd("setdsturi", 1, REQ, None, |ctx, p| {
            ctx.msg.dst_uri = Some(p[0].str(ctx).into_owned());
            ctx.msg.renew_ruri();
            1
        })
        .cmd("resetdsturi", 0, REQ, None, |ctx, _| {
            ctx.msg.dst_uri = None;
            1
        })
        .cmd("isdsturiset", 0, REQ, None, |ctx, _| {
            if ctx.msg.dst_uri.is_some() {
                1
            } else {
                -1
            }
        })
        .cmd("append_branch", 0, REQ, None, |ctx, _| {
            // The Request-URI's branch as it is (Kamailio passes `$du`,
            // the path, the branch flags and the forced socket), and, as
            // Kamailio, the Request-URI counts as used: no second branch.
            let b = ctx.msg.ruri_branch();
            ctx.msg.branches.push(b);
            ctx.msg.consume_ruri();
            1
        })
        .cmd("append_branch", 1, REQ, None, |ctx, p| {
            let uri = p[0].str(ctx).into_owned();
            ctx.msg.branches.push(Branch {
                uri,
                ..Default::default()
            });
            1
        })
        .cmd("append_branch", 2, REQ, None, |ctx, p| {
            let uri = p[0].str(ctx).into_owned();
            let q = sip_msg::headers::parse_qvalue(&p[1].str(ctx));
            ctx.msg.branches.push(Branch {
                uri,
                q,
                ..Default::default()
            });
            1
        })
        .cmd("clear_branches", 0, REQ, None, |ctx, _| {
            ctx.msg.branches.clear();
            1
        })
        .cmd("remove_branch", 1, REQ, int.clone(), |ctx, p| {
            let i = p[0].int(ctx);
            if i >= 0 && (i as usize) < ctx.msg.branches.len() {
                ctx.msg.branches.remove(i as usize);
                1
            } else {
                -1
            }
        })
        .cmd("set_advertised_address", 1, REQ, None, |ctx, p| {
            let a = p[0].str(ctx).into_owned();
            let port = ctx.msg.advertised.as_ref().and_then(|x| x.1);
            ctx.msg.advertised = Some((a, port));
            1
        })
        .cmd("set_advertised_port", 1, REQ, int.clone(), |ctx, p| {
            let port = p[0].int(ctx) as u16;
            let a = ctx
                .msg
                .advertised
                .as_ref()
                .map(|x| x.0.clone())
                .unwrap_or_default();
            ctx.msg.advertised = Some((a, Some(port)));
            1
        })
        .cmd("force_send_socket", 1, REQ, None, |ctx, p| {
            ctx.msg.force_send_socket = Some(p[0].str(ctx).into_owned());
            1
        })
        .cmd("set_forward_no_connect", 0, REQ, None, |ctx, _| {
            ctx.msg.fwd_flags.no_connect = true;
            1
        })
        .cmd("set_reply_no_connect", 0, REQ, None, |ctx, _| {
            ctx.msg.reply_flags.no_connect = true;
            1
        })
        .cmd("set_forward_close", 0, REQ, None, |ctx, _| {
            ctx.msg.fwd_flags.close = true;
            1
        })
        .cmd("set_reply_close", 0, REQ, None, |ctx, _| {
            ctx.msg.reply_flags.close = true;
            1
        })
        .cmd("log", 1, ANY, None, |ctx, p| {
            let m = p[0].str(ctx).into_owned();
            sr_sdk::log::write(
                sr_sdk::log::L_WARN,
                "script",
                format_args!("{}", m.trim_end()),
            );
            1
        })
        .cmd("log", 2, ANY, None, |ctx, p| {
            let lvl = p[0].int(ctx) as i32;
            let m = p[1].str(ctx).into_owned();
            if sr_sdk::log::enabled(lvl) {
                sr_sdk::log::write(lvl, "script", format_args!("{}", m.trim_end()));
            }
            1
        });
    for name in ["sethost", "seturi", "setuser", "setport", "sethostport"] {
        let target = match name {
            "sethost" => "rewritehost",
            "seturi" => "rewriteuri",
            "setuser" => "rewriteuser",
            "setport" => "rewriteport",
            _ => "rewritehostport",
        };
        if let Some(c) = def.cmds.iter().find(|c| c.name == target).cloned() {
            def.cmds.push(sr_sdk::CmdExport {
                name: name.to_string(),
                ..c
            });
        }
    }
    rpcs(def, w)
}

/// The runtime, while it runs.
pub(crate) fn rt_of(w: &Weak<Runtime>) -> Result<Arc<Runtime>, RpcError> {
    w.upgrade()
        .ok_or_else(|| RpcError::new(500, "shutting down"))
}

fn stat_matches(filter: &str, group: &str, name: &str) -> bool {
    filter == "all"
        || filter.strip_suffix(':') == Some(group)
        || filter == name
        || filter == format!("{group}:{name}")
}

fn rpcs(def: ModuleDef, w: Weak<Runtime>) -> ModuleDef {
    let (w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11) = (
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
        w.clone(),
    );
    def.rpc("system.listMethods", "Lists the RPC methods.", move |_| {
        let rt = rt_of(&w1)?;
        let reg = rt.registry.read().map_err(|_| RpcError::new(500, "busy"))?;
        Ok(Json::Array(reg.rpcs.keys().map(|k| json!(k)).collect()))
    })
    .rpc("system.methodHelp", "Shows the help of a method.", move |p| {
        let rt = rt_of(&w2)?;
        let m = param_str(p, 0, "method name")?;
        let reg = rt.registry.read().map_err(|_| RpcError::new(500, "busy"))?;
        reg.rpcs
            .get(&m)
            .map(|r| json!(r.doc))
            .ok_or_else(|| RpcError::new(404, format!("no such method: {m}")))
    })
    .rpc("core.version", "The server version.", move |_| {
        let rt = rt_of(&w3)?;
        Ok(json!(rt.version()))
    })
    .rpc("core.uptime", "Start time and uptime in seconds.", move |_| {
        let rt = rt_of(&w4)?;
        let up = rt.uptime().as_secs();
        // As Kamailio's: both times as C's ctime() writes them.
        let ctime = sr_sdk::localtime::ctime;
        Ok(json!({"now": ctime(crate::script::state::now_secs()), "up_since": ctime(crate::script::state::start_time()), "uptime": up}))
    })
    .rpc("core.psx", "The threads (Kamailio's processes).", move |_| {
        let rt = rt_of(&w5)?;
        let s = &rt.settings;
        let mut out = vec![json!({"IDX": 0, "PID": std::process::id(), "DSC": "main thread - attendant"})];
        let mut i = 1;
        for l in s.listen.iter().filter(|l| l.proto == sr_sdk::Proto::Udp) {
            for c in 0..s.children {
                out.push(json!({"IDX": i, "PID": std::process::id(), "DSC": format!("udp receiver child={c} sock={}", l.addr)}));
                i += 1;
            }
        }
        out.push(json!({"IDX": i, "PID": std::process::id(), "DSC": "timer"}));
        Ok(Json::Array(out))
    })
    .rpc("core.ps", "The threads: id and description of each, in turn.", move |p| {
        let rt = rt_of(&w6)?;
        // Kamailio's core.ps: a flat list of pid, description, pid, ...
        let x = rt.rpc_call("core.psx", p)?;
        let flat = x
            .as_array()
            .map(|a| a.iter().flat_map(|t| [t["PID"].clone(), t["DSC"].clone()]).collect())
            .unwrap_or_default();
        Ok(Json::Array(flat))
    })
    .rpc("core.modules", "Loaded modules.", move |_| {
        let rt = rt_of(&w7)?;
        let reg = rt.registry.read().map_err(|_| RpcError::new(500, "busy"))?;
        Ok(Json::Array(
            reg.modules
                .iter()
                .filter(|m| m.def.name != "core")
                .map(|m| json!({"name": m.def.name, "origin": m.origin}))
                .collect(),
        ))
    })
    .rpc("core.sockets_list", "Listening sockets.", move |_| {
        let rt = rt_of(&w8)?;
        let b = rt.bound.lock().map_err(|_| RpcError::new(500, "busy"))?;
        // Kamailio's members; the advertised address and the name only
        // when set. One socket is Kamailio's shape exactly; several
        // (Kamailio repeats `socket`, which JSON cannot) are a list.
        let socks: Vec<Json> = b
            .iter()
            .map(|l| {
                let mut m = serde_json::Map::new();
                m.insert("proto".into(), json!(l.proto.as_str()));
                m.insert("address".into(), json!(l.addr.ip().to_string()));
                m.insert("port".into(), json!(l.addr.port()));
                m.insert("mcast".into(), json!("no"));
                m.insert("mhomed".into(), json!("no"));
                m.insert("virtual".into(), json!("no"));
                if let Some((h, p)) = &l.advertise {
                    m.insert("advertise".into(), json!(h));
                    if let Some(p) = p {
                        m.insert("advertise_port".into(), json!(p));
                    }
                }
                if let Some(n) = &l.name {
                    m.insert("sockname".into(), json!(n));
                }
                Json::Object(m)
            })
            .collect();
        Ok(match socks.len() {
            1 => json!({ "socket": socks[0] }),
            _ => json!({ "socket": socks }),
        })
    })
    .rpc(
        "stats.get_statistics",
        "Statistics as 'group:name = value' (all, group: or name).",
        move |p| {
            let rt = rt_of(&w9)?;
            let filters: Vec<String> = if p.is_empty() {
                vec!["all".into()]
            } else {
                (0..p.len()).map(|i| param_str(p, i, "statistic")).collect::<Result<_, _>>()?
            };
            let mut all = rt.statistics();
            // Kamailio lists them by group, then name.
            all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            let lines: Vec<Json> = all
                .into_iter()
                .filter(|(g, n, _)| filters.iter().any(|f| stat_matches(f, g, n)))
                .map(|(g, n, v)| json!(format!("{g}:{n} = {v}")))
                .collect();
            Ok(Json::Array(lines))
        },
    )
    .rpc("stats.fetch", "Statistics as a map of group.name to value.", move |p| {
        let rt = rt_of(&w10)?;
        let filter = if p.is_empty() { "all".to_string() } else { param_str(p, 0, "statistic")? };
        // In the order of their names, as Kamailio lists them.
        let mut all: Vec<(String, i64)> = rt
            .statistics()
            .into_iter()
            .filter(|(g, n, _)| stat_matches(&filter, g, n))
            .map(|(g, n, v)| (format!("{g}.{n}"), v))
            .collect();
        all.sort();
        let mut m = serde_json::Map::new();
        for (k, v) in all {
            m.insert(k, json!(v.to_string()));
        }
        Ok(Json::Object(m))
    })
    .rpc("stats.reset_statistics", "Resets statistics (all, group: or name).", move |p| {
        let rt = rt_of(&w11)?;
        let which = if p.is_empty() { "all".to_string() } else { param_str(p, 0, "statistic")? };
        rt.registry.read().map_err(|_| RpcError::new(500, "busy"))?.reset_stats(&which);
        // Kamailio answers nothing.
        Ok(Json::Null)
    })
    .pipe(|d| more_rpcs(d, w.clone()))
    .pipe(|d| crate::core_rpc_blst::add_rpcs(d, w.clone()))
    .pipe(|d| crate::core_rpc_info::add(d, w))
}

fn more_rpcs(def: ModuleDef, w: Weak<Runtime>) -> ModuleDef {
    let (w1, w2, w3, w4) = (w.clone(), w.clone(), w.clone(), w.clone());
    def.rpc(
        "stats.clear_statistics",
        "Same as stats.reset_statistics.",
        move |p| {
            let rt = rt_of(&w1)?;
            rt.rpc_call("stats.reset_statistics", p)
        },
    )
    .rpc(
        "cfg.reload",
        "Re-reads the config and swaps in its routes if they compile.",
        move |_| {
            let rt = rt_of(&w2)?;
            match rt.reload_routes() {
                Ok(n) => Ok(json!({"reloaded": true, "routes": n})),
                Err(errs) => Err(RpcError::new(
                    500,
                    format!("reload refused, old routes kept: {}", errs.join("; ")),
                )),
            }
        },
    )
    .rpc(
        "cfg.get",
        "Reads a runtime setting: cfg.get core debug.",
        move |p| {
            let group = param_str(p, 0, "group")?;
            let name = param_str(p, 1, "name")?;
            if (group.as_str(), name.as_str()) == ("core", "debug") {
                return Ok(json!(sr_sdk::log::level()));
            }
            let rt = rt_of(&w3)?;
            let key = format!("{group}.{name}");
            let v = rt.cfg_vars.read().ok().and_then(|m| m.get(&key).cloned());
            match v {
                Some(sr_sdk::Value::Int(i)) => Ok(json!(i)),
                Some(v) => Ok(json!(v.as_str())),
                None => Err(RpcError::new(
                    404,
                    format!("no runtime setting {group}.{name}"),
                )),
            }
        },
    )
    .rpc(
        "cfg.set",
        "Changes a runtime setting: cfg.set core debug 3.",
        move |p| {
            let rt = rt_of(&w4)?;
            let group = param_str(p, 0, "group")?;
            let name = param_str(p, 1, "name")?;
            if (group.as_str(), name.as_str()) == ("core", "debug") {
                let v = param_int(p, 2, "value")?;
                sr_sdk::log::set_level(v as i32);
                return Ok(json!(0));
            }
            // A custom config variable keeps the type it was declared with.
            let key = format!("{group}.{name}");
            let mut m = rt
                .cfg_vars
                .write()
                .map_err(|_| RpcError::new(500, "busy"))?;
            let new = match m.get(&key) {
                Some(sr_sdk::Value::Int(_)) => sr_sdk::Value::Int(param_int(p, 2, "value")?),
                Some(_) => sr_sdk::Value::Str(param_str(p, 2, "value")?.into()),
                None => {
                    return Err(RpcError::new(
                        404,
                        format!("no runtime setting {group}.{name}"),
                    ))
                }
            };
            m.insert(key, new);
            Ok(json!(0))
        },
    )
    .pipe(|d| {
        let w5 = w.clone();
        d.rpc("cfg.set_now_int", "Same as cfg.set.", move |p| {
            let rt = rt_of(&w5)?;
            rt.rpc_call("cfg.set", p)
        })
    })
}
