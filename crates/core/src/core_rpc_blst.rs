//! The `dst_blocklist.*` RPC commands: `view`, `debug`, `add`,
//! `delete_all` and `mem_info`, answering as Kamailio's (500 "dst
//! blocklist support disabled" when `use_dst_blocklist` is off).

use crate::core_module::rt_of;
use crate::runtime::Runtime;
use serde_json::json;
use sr_sdk::dst_blocklist::{DstBlocklist, Entry, IS_IPV6};
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_str};
use sr_sdk::RpcError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Weak;
use std::time::Instant;

/// `f` on the runtime's blocklist, or the error Kamailio answers without
/// one.
fn with_list<T>(
    w: &Weak<Runtime>,
    f: impl FnOnce(&DstBlocklist) -> Result<T, RpcError>,
) -> Result<T, RpcError> {
    let rt = rt_of(w)?;
    match &rt.dst_blocklist {
        Some(b) => f(b),
        None => Err(RpcError::new(500, "dst blocklist support disabled")),
    }
}

/// The transport of Kamailio's protocol number.
fn proto_of(n: i64) -> Option<Proto> {
    [
        Proto::Udp,
        Proto::Tcp,
        Proto::Tls,
        Proto::Sctp,
        Proto::Ws,
        Proto::Wss,
    ]
    .into_iter()
    .find(|p| i64::from(p.number()) == n)
}

/// `dst_blocklist.add ip port proto flags`: an IPv6 address when `flags`
/// has the IPv6 bit, else either kind.
fn add(b: &DstBlocklist, p: &[Json]) -> Result<Json, RpcError> {
    let ip = param_str(p, 0, "ip")?;
    let port = param_int(p, 1, "port")?;
    let proto = param_int(p, 2, "proto")?;
    let flags = param_int(p, 3, "flags")?;
    let flags = (flags & 0xff) as u8;
    let addr: Option<IpAddr> = if flags & IS_IPV6 != 0 {
        ip.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        ip.parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .or_else(|_| ip.parse::<Ipv6Addr>().map(IpAddr::V6))
            .ok()
    };
    let Some(addr) = addr else {
        return Err(RpcError::new(400, "Malformed ip address"));
    };
    let Some(proto) = proto_of(proto) else {
        return Err(RpcError::new(400, "Unknown protocol"));
    };
    let Ok(port) = u16::try_from(port) else {
        return Err(RpcError::new(400, "Invalid port"));
    };
    let dest = SocketAddr::new(addr, port);
    b.force_add(proto, dest, flags, None, Instant::now())
        .map_err(|_| RpcError::new(500, "Failed to add the entry"))?;
    Ok(Json::Null)
}

fn entries(b: &DstBlocklist) -> Vec<Entry> {
    let mut v = b.entries(Instant::now());
    v.sort_by_key(|x| (x.proto.number(), x.addr));
    v
}

/// Adds the commands to the core's module.
pub fn add_rpcs(def: ModuleDef, w: Weak<Runtime>) -> ModuleDef {
    let (w1, w2, w3, w4, w5) = (w.clone(), w.clone(), w.clone(), w.clone(), w);
    def.rpc(
        "dst_blocklist.view",
        "Displays the dst blocklist.",
        move |_| {
            with_list(&w1, |b| {
                Ok(Json::Array(
                    entries(b)
                        .into_iter()
                        .map(|e| {
                            json!({
                                "protocol": e.proto.as_str(),
                                "ip": e.addr.ip().to_string(),
                                "port": e.addr.port(),
                                "expires in (s)": e.expires_in,
                                "flags": e.flags,
                            })
                        })
                        .collect(),
                ))
            })
        },
    )
    .rpc(
        "dst_blocklist.debug",
        "dst blocklist debug info.",
        move |_| {
            with_list(&w2, |b| {
                let mut out = Vec::new();
                for e in entries(b) {
                    out.push(json!(e.proto.as_str()));
                    out.push(json!(e.addr.ip().to_string()));
                    out.push(json!(e.addr.port()));
                    out.push(json!(e.expires_in));
                    out.push(json!(e.flags));
                }
                Ok(Json::Array(out))
            })
        },
    )
    .rpc(
        "dst_blocklist.add",
        "Adds a new entry to the dst blocklist.",
        move |p| with_list(&w3, |b| add(b, p)),
    )
    .rpc(
        "dst_blocklist.delete_all",
        "Deletes all the entries from the dst blocklist except the permanent ones.",
        move |_| {
            with_list(&w4, |b| {
                b.clear();
                Ok(Json::Null)
            })
        },
    )
    .rpc(
        "dst_blocklist.mem_info",
        "dst blocklist memory usage info.",
        move |_| {
            with_list(&w5, |b| {
                Ok(json!([b.used_bytes(Instant::now()), b.config().max_bytes]))
            })
        },
    )
}
