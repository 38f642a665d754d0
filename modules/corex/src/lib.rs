//! # corex: core extensions
//!
//! - `send_data(uri, data)`: sends raw bytes to a SIP URI (UDP, or TCP
//!   with `;transport=tcp`), outside any transaction;
//! - extended flags, 64 per message: `setxflag(n)`, `resetxflag(n)`,
//!   `isxflagset(n)` (0..63);
//! - `is_faked_msg()`: true for messages the server made up (RPC,
//!   timers), false for received ones;
//! - internal message flags by name: `msg_iflag_set(name)`,
//!   `msg_iflag_reset(name)`, `msg_iflag_is_set(name)`;
//! - RPCs `corex.debug [level]`, `corex.list_sockets`,
//!   `corex.list_aliases`.
//!
//! `append_branch()` / `append_branch(uri[, q])` are core actions in
//! siprouter already; corex does not define them again.
#![forbid(unsafe_code)]

pub mod rpcs;

use sr_sdk::prelude::*;
use std::sync::{Arc, OnceLock, Weak};

/// The internal flags of a message, by name (upper case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IFlags(pub Vec<String>);

/// Kamailio's internal message flag names.
pub const IFLAG_NAMES: [&str; 8] = [
    "USE_UAC_FROM",
    "USE_UAC_TO",
    "UAC_AUTH",
    "UA_CONTACT",
    "UAC_CSEQ",
    "UAC_TRACK",
    "FAKED",
    "KSR_ROUTING",
];

fn xbit(n: i64) -> Option<u64> {
    if (0..64).contains(&n) {
        Some(1u64 << n)
    } else {
        lm_err!("extended flag {n} out of range (0..63)");
        None
    }
}

fn iflag_fixup(_env: &dyn fixup::FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    let n = arg.text().trim().to_ascii_uppercase();
    if IFLAG_NAMES.contains(&n.as_str()) {
        Ok(Fixed::Str(n))
    } else {
        Err(format!(
            "unknown message flag '{}' (known: {})",
            arg.text(),
            IFLAG_NAMES.join(", ")
        ))
    }
}

fn iflag_is_set(msg: &SipMsg, name: &str) -> bool {
    (name == "FAKED" && msg.faked)
        || msg
            .ext
            .get::<IFlags>()
            .is_some_and(|f| f.0.iter().any(|x| x == name))
}

/// Sends `data` to `uri` (resolved as a SIP URI).
fn send_data(ctx: &mut Ctx<'_>, uri: &str, data: &str) -> i32 {
    let dest = match ctx.core.resolve(uri, None) {
        Ok(d) => d,
        Err(e) => {
            lm_err!("send_data: cannot resolve {uri}: {e}");
            return -1;
        }
    };
    match ctx.core.send(&dest, data.as_bytes()) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("send_data to {uri}: {e}");
            -1
        }
    }
}

/// `send_udp([host[:port]])` / `send_tcp(...)`: the message as it was
/// received (no Via added, no change made) to `host:port` (5060 by
/// default), or without a parameter to `$du`, else the Request-URI.
fn send_raw(ctx: &mut Ctx<'_>, target: Option<&str>, proto: Proto) -> i32 {
    let uri = match target.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => format!("sip:{t}"),
        None => ctx
            .msg
            .dst_uri
            .clone()
            .unwrap_or_else(|| ctx.msg.ruri().to_string()),
    };
    let Ok(u) = sr_sdk::sip_msg::Uri::parse(&uri) else {
        lm_err!("send_{}: bad destination '{uri}'", proto.as_str());
        return -1;
    };
    let target = format!(
        "sip:{}:{};transport={}",
        u.host_str,
        u.port.unwrap_or(5060),
        proto.as_str()
    );
    let dest = match ctx.core.resolve(&target, None) {
        Ok(d) => d,
        Err(e) => {
            lm_err!("send_{}: cannot resolve {target}: {e}", proto.as_str());
            return -1;
        }
    };
    let raw = ctx.msg.msg().raw().to_vec();
    match ctx.core.send(&dest, &raw) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("send_{} to {target}: {e}", proto.as_str());
            -1
        }
    }
}

/// `sendx(uri, socket, data)`: `data` to `uri` from the local `socket`
/// (`proto:ip:port`).
fn sendx(ctx: &mut Ctx<'_>, uri: &str, socket: &str, data: &str) -> i32 {
    let Some(local) = sr_sdk::socket_addr(socket) else {
        lm_err!("sendx: '{socket}' is not a socket (proto:ip:port)");
        return -1;
    };
    let mut dest = match ctx.core.resolve(uri, None) {
        Ok(d) => d,
        Err(e) => {
            lm_err!("sendx: cannot resolve {uri}: {e}");
            return -1;
        }
    };
    dest.send_socket = Some(local);
    match ctx.core.send(&dest, data.as_bytes()) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("sendx to {uri}: {e}");
            -1
        }
    }
}

/// `set_source_address("proto:ip:port")`: the message counts as sent from
/// there (`$si`, `$sp`, `$pr`, where replies go).
fn set_source_address(ctx: &mut Ctx<'_>, spec: &str) -> i32 {
    let (proto, rest) = match spec.split_once(':') {
        Some((p, r)) if Proto::parse(p).is_some() => (Proto::parse(p), r),
        _ => (None, spec),
    };
    let Ok(addr) = rest
        .parse::<std::net::SocketAddr>()
        .or_else(|_| format!("{rest}:5060").parse::<std::net::SocketAddr>())
    else {
        lm_err!("set_source_address: '{spec}' is not proto:ip:port");
        return -1;
    };
    ctx.msg.rcv.src = addr;
    if let Some(p) = proto {
        ctx.msg.rcv.proto = p;
    }
    1
}

/// A named listening socket as `proto:ip:port`.
fn named_socket(ctx: &Ctx<'_>, name: &str) -> Option<String> {
    ctx.core
        .socket_by_name(name)
        .map(|(p, a)| format!("{}:{a}", p.as_str()))
}

/// `set_recv_socket("proto:ip:port")`: handle the message as if it had
/// arrived on that local socket (which must be one of ours): replies,
/// Record-Route and `$Ri`/`$Rp` follow it.
fn set_recv_socket(ctx: &mut Ctx<'_>, spec: &str) -> i32 {
    let (proto, rest) = match spec.split_once(':') {
        Some((p, r)) if Proto::parse(p).is_some() => (Proto::parse(p), r),
        _ => (None, spec),
    };
    let addr = rest
        .parse::<std::net::SocketAddr>()
        .or_else(|_| format!("{rest}:5060").parse::<std::net::SocketAddr>());
    let Ok(addr) = addr else {
        lm_err!("set_recv_socket: '{spec}' is not proto:ip:port");
        return -1;
    };
    if !ctx
        .core
        .is_myself(&addr.ip().to_string(), Some(addr.port()))
    {
        lm_err!("set_recv_socket: {addr} is not a local socket");
        return -1;
    }
    ctx.msg.rcv.dst = addr;
    if let Some(p) = proto {
        ctx.msg.rcv.proto = p;
    }
    1
}

/// The `corex` module.
pub fn module() -> ModuleDef {
    let any = RouteType::ANY;
    let int = Some(fixup::f(fixup::igp));
    let ifl = Some(fixup::f(iflag_fixup));
    let core: Arc<OnceLock<Weak<dyn Core>>> = Arc::new(OnceLock::new());
    let c1 = core.clone();
    let def = ModuleDef::new("corex")
        .cmd(
            "file_read",
            2,
            any,
            Some(Arc::new(|env, i, a| {
                if i == 1 {
                    fixup::pvar(env, i, a)
                } else {
                    fixup::spve(env, i, a)
                }
            })),
            |ctx, p| {
                let path = p[0].str(ctx).into_owned();
                let text = match std::fs::read(&path) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => {
                        lm_err!("file_read: cannot read '{path}': {e}");
                        return -1;
                    }
                };
                let Fixed::Pv(out) = &p[1] else { return -1 };
                match out.assign(ctx, Value::from(text)) {
                    Ok(()) => 1,
                    Err(_) => -1,
                }
            },
        )
        .cmd("file_write", 2, any, None, |ctx, p| {
            let path = p[0].str(ctx).into_owned();
            let text = p[1].str(ctx).into_owned();
            match std::fs::write(&path, text.as_bytes()) {
                Ok(()) => 1,
                Err(e) => {
                    lm_err!("file_write: cannot write '{path}': {e}");
                    -1
                }
            }
        })
        .cmd("send_data", 2, any, None, |ctx, p| {
            let uri = p[0].str(ctx).into_owned();
            let data = p[1].str(ctx).into_owned();
            send_data(ctx, &uri, &data)
        })
        .cmd(
            "set_recv_socket",
            1,
            RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH,
            None,
            |ctx, p| {
                let spec = p[0].str(ctx).into_owned();
                set_recv_socket(ctx, &spec)
            },
        )
        .cmd("set_recv_socket_name", 1, any, None, |ctx, p| {
            let name = p[0].str(ctx).into_owned();
            // (Kamailio 5.6 answers 1 also for a name no socket has.)
            match named_socket(ctx, &name) {
                Some(spec) => set_recv_socket(ctx, &spec).max(1),
                None => 1,
            }
        })
        .cmd("set_send_socket", 1, any, None, |ctx, p| {
            let spec = p[0].str(ctx).into_owned();
            if sr_sdk::socket_addr(&spec).is_none() {
                lm_err!("set_send_socket: '{spec}' is not a socket (proto:ip:port)");
                return -1;
            }
            ctx.msg.force_send_socket = Some(spec);
            1
        })
        .cmd("set_send_socket_name", 1, any, None, |ctx, p| {
            let name = p[0].str(ctx).into_owned();
            // (Kamailio 5.6 answers 1 also for a name no socket has.)
            if let Some(spec) = named_socket(ctx, &name) {
                ctx.msg.force_send_socket = Some(spec);
            }
            1
        })
        .cmd("via_add_srvid", 1, any, int.clone(), |ctx, p| {
            ctx.msg.via_srvid = p[0].int(ctx) != 0;
            1
        })
        .cmd("via_add_xavp_params", 1, any, int.clone(), |ctx, p| {
            ctx.msg.via_xavp_params = p[0].int(ctx) != 0;
            1
        })
        .cmd("via_use_xavp_fields", 1, any, int.clone(), |ctx, p| {
            ctx.msg.via_xavp_fields = p[0].int(ctx) != 0;
            1
        })
        .cmd("is_socket_name", 1, any, None, |ctx, p| {
            let name = p[0].str(ctx).into_owned();
            if ctx.core.socket_by_name(&name).is_some() {
                1
            } else {
                -1
            }
        })
        .cmd("set_source_address", 1, any, None, |ctx, p| {
            let spec = p[0].str(ctx).into_owned();
            set_source_address(ctx, &spec)
        })
        .cmd("sendx", 3, any, None, |ctx, p| {
            let (u, so, d) = (
                p[0].str(ctx).into_owned(),
                p[1].str(ctx).into_owned(),
                p[2].str(ctx).into_owned(),
            );
            sendx(ctx, &u, &so, &d)
        })
        .pipe(|d| {
            let mut d = d;
            let rt = RouteType::REQUEST | RouteType::FAILURE;
            for (name, proto) in [("send_udp", Proto::Udp), ("send_tcp", Proto::Tcp)] {
                d = d
                    .cmd(name, 0, rt, None, move |ctx, _| send_raw(ctx, None, proto))
                    .cmd(name, 1, rt, None, move |ctx, p| {
                        let t = p[0].str(ctx).into_owned();
                        send_raw(ctx, Some(&t), proto)
                    });
            }
            d
        })
        .cmd("setxflag", 1, any, int.clone(), |ctx, p| {
            xbit(p[0].int(ctx)).map_or(-1, |b| {
                ctx.msg.xflags |= b;
                1
            })
        })
        .cmd("resetxflag", 1, any, int.clone(), |ctx, p| {
            xbit(p[0].int(ctx)).map_or(-1, |b| {
                ctx.msg.xflags &= !b;
                1
            })
        })
        .cmd("isxflagset", 1, any, int, |ctx, p| {
            xbit(p[0].int(ctx)).map_or(-1, |b| {
                let set = ctx.msg.xflags & b != 0;
                if set {
                    1
                } else {
                    -1
                }
            })
        })
        .cmd("is_faked_msg", 0, any, None, |ctx, _| {
            if ctx.msg.faked {
                1
            } else {
                -1
            }
        })
        .cmd("msg_iflag_set", 1, any, ifl.clone(), |ctx, p| {
            let n = p[0].str(ctx).into_owned();
            if ctx.msg.ext.get::<IFlags>().is_none() {
                ctx.msg.ext.insert(IFlags::default());
            }
            if let Some(f) = ctx.msg.ext.get_mut::<IFlags>() {
                if !f.0.contains(&n) {
                    f.0.push(n);
                }
            }
            1
        })
        .cmd("msg_iflag_reset", 1, any, ifl.clone(), |ctx, p| {
            let n = p[0].str(ctx).into_owned();
            if let Some(f) = ctx.msg.ext.get_mut::<IFlags>() {
                f.0.retain(|x| *x != n);
            }
            1
        })
        .cmd("msg_iflag_is_set", 1, any, ifl, |ctx, p| {
            let n = p[0].str(ctx).into_owned();
            if iflag_is_set(ctx.msg, &n) {
                1
            } else {
                -1
            }
        })
        .on_init(move |c| {
            if let Some(h) = c.handle() {
                let _ = c1.set(h);
            }
            Ok(())
        });
    rpcs::add(def, core)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_on_a_message() {
        let m = SipMsg::faked();
        assert_eq!(xbit(63), Some(1 << 63));
        assert_eq!(xbit(64), None);
        assert!(iflag_is_set(&m, "FAKED"));
        assert!(!iflag_is_set(&m, "UAC_AUTH"));
    }
}
