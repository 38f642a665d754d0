//! The RPC methods: `dispatcher.list`, `dispatcher.reload`,
//! `dispatcher.set_state`, `dispatcher.ping_active`, `dispatcher.add`,
//! `dispatcher.remove`, `dispatcher.hash`, with Kamailio's parameters
//! and result shapes.

use crate::dest::{state_letters, Dest, Lists};
use crate::load::{self, Entry};
use crate::Dispatcher;
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_str};
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn dest_json(d: &Dest, full: bool, short: bool) -> Json {
    let mut o = JsonMap::new();
    o.insert("URI".into(), json!(d.uri));
    o.insert("FLAGS".into(), json!(state_letters(d.flags())));
    o.insert("PRIORITY".into(), json!(d.priority));
    if full {
        if let Ok(u) = sr_sdk::sip_msg::Uri::parse(&d.uri) {
            o.insert("HOST".into(), json!(u.host_str));
        }
        if let Some(a) = d.addr {
            o.insert("IPADDR".into(), json!(a.ip.to_string()));
            o.insert("PORT".into(), json!(a.port.unwrap_or(0)));
            o.insert("PROTOID".into(), json!(a.proto.map_or(0, proto_id)));
        }
    }
    if !short && !d.attrs.body.is_empty() {
        let a = &d.attrs;
        // Attributes not given are null, as Kamailio lists them.
        let text = |t: &str| if t.is_empty() { Json::Null } else { json!(t) };
        o.insert(
            "ATTRS".into(),
            json!({
                "BODY": a.body,
                "DUID": text(&a.duid),
                "MAXLOAD": a.maxload,
                "WEIGHT": a.weight,
                "RWEIGHT": a.rweight,
                "SOCKET": text(&a.socket),
                "SOCKNAME": text(&a.sockname),
                "OBPROXY": text(&a.obproxy),
            }),
        );
    }
    json!({ "DEST": Json::Object(o) })
}

/// Kamailio's protocol numbers (`PROTOID`).
fn proto_id(p: Proto) -> u8 {
    match p {
        Proto::Udp => 1,
        Proto::Tcp => 2,
        Proto::Tls => 3,
        Proto::Ws => 5,
        Proto::Wss => 6,
        _ => 0,
    }
}

/// `dispatcher.list`'s result (`mode`: `short`, `full`, any case), the
/// sets in Kamailio's order.
pub fn list(l: &Lists, mode: &str) -> Json {
    let full = mode.eq_ignore_ascii_case("full");
    let short = mode.eq_ignore_ascii_case("short");
    let records: Vec<Json> = l
        .walk()
        .map(|s| {
            let targets: Vec<Json> = s.dests.iter().map(|d| dest_json(d, full, short)).collect();
            json!({ "SET": { "ID": s.id, "TARGETS": targets } })
        })
        .collect();
    json!({ "NRSETS": l.sets.len(), "RECORDS": records })
}

fn fault(m: impl Into<String>) -> RpcError {
    RpcError::new(500, m)
}

fn core_of(ds: &Dispatcher) -> Result<Arc<dyn Core>, RpcError> {
    ds.core
        .get()
        .and_then(|w| w.upgrade())
        .ok_or_else(|| fault("the server is shutting down"))
}

/// Applies a change of the entries (add, remove), keeping the states.
fn change(
    ds: &Dispatcher,
    f: impl FnOnce(&mut Vec<Entry>) -> Result<(), RpcError>,
) -> Result<(), RpcError> {
    let core = core_of(ds)?;
    ds.rate_limit().map_err(fault)?;
    let cur = ds.lists();
    let mut entries = load::entries_of(&cur);
    f(&mut entries)?;
    ds.install(&*core, &entries, Some(&cur)).map_err(fault)
}

/// Adds the RPC methods to the module.
pub fn export(ds: &Arc<Dispatcher>, def: ModuleDef) -> ModuleDef {
    let d = ds.clone();
    let def = def.rpc(
        "dispatcher.list",
        "Lists the destination sets with their states ([short|full]).",
        move |p| {
            let mode = param_str(p, 0, "mode").unwrap_or_default();
            let l = d.lists();
            if l.sets.is_empty() {
                return Err(fault("No Destination Sets"));
            }
            Ok(list(&l, &mode))
        },
    );
    let d = ds.clone();
    let def = def.rpc(
        "dispatcher.reload",
        "Loads the destination sets again.",
        move |_| {
            let core = core_of(&d)?;
            d.reload(&*core).map_err(fault)?;
            Ok(Json::Null)
        },
    );
    let d = ds.clone();
    let def = def.rpc(
        "dispatcher.set_state",
        "Sets the state of a destination: STATE (a, i, d, t, with p for probing) GROUP ADDRESS|all.",
        move |p| {
            let st = param_str(p, 0, "state")?;
            let group = param_int(p, 1, "group")?;
            let addr = param_str(p, 2, "address")?;
            let new = crate::state::from_rpc(&st).ok_or_else(|| fault("Unknown State Value"))?;
            let l = d.lists();
            let mut hit = false;
            if let Some(set) = i32::try_from(group).ok().and_then(|g| l.set(g)) {
                let all = addr.eq_ignore_ascii_case("all");
                for x in set
                    .dests
                    .iter()
                    .filter(|x| all || x.uri.eq_ignore_ascii_case(&addr))
                {
                    crate::probe::set_direct(x, new);
                    hit = true;
                }
            }
            if hit {
                Ok(json!("Ok. Dispatcher state updated."))
            } else {
                Err(fault("State Update Failed"))
            }
        },
    );
    let d = ds.clone();
    let def = def.rpc(
        "dispatcher.ping_active",
        "Reads, or sets with 0 or 1, whether destinations are pinged.",
        move |p| {
            let old = i64::from(d.ping_active.load(Ordering::Relaxed));
            match p.first() {
                None => Ok(json!({ "OldPingState": old })),
                Some(_) => {
                    let v = param_int(p, 0, "state")? != 0;
                    d.ping_active.store(v, Ordering::Relaxed);
                    Ok(json!({ "NewPingState": i64::from(v), "OldPingState": old }))
                }
            }
        },
    );
    let d = ds.clone();
    let def = def.rpc(
        "dispatcher.add",
        "Adds a destination: GROUP ADDRESS [FLAGS [PRIORITY [ATTRS]]].",
        move |p| {
            let group = param_int(p, 0, "group")?;
            let uri = crate::dest::with_scheme(&param_str(p, 1, "address")?);
            let flags = if p.len() > 2 {
                param_int(p, 2, "flags")?
            } else {
                0
            };
            let priority = if p.len() > 3 {
                param_int(p, 3, "priority")?
            } else {
                0
            };
            let attrs = if p.len() > 4 {
                param_str(p, 4, "attrs")?
            } else {
                String::new()
            };
            if sr_sdk::sip_msg::Uri::parse(&uri).is_err() {
                return Err(RpcError::invalid_params(format!(
                    "'{uri}' is not a SIP URI"
                )));
            }
            change(&d, |e| {
                e.push(Entry {
                    setid: i32::try_from(group)
                        .map_err(|_| RpcError::invalid_params("bad group"))?,
                    uri,
                    flags: u32::try_from(flags).unwrap_or(0),
                    priority: i32::try_from(priority).unwrap_or(0),
                    attrs,
                });
                Ok(())
            })?;
            Ok(json!("Ok. Dispatcher destination added."))
        },
    );
    let d = ds.clone();
    let def = def.rpc(
        "dispatcher.remove",
        "Removes a destination: GROUP ADDRESS.",
        move |p| {
            let group = param_int(p, 0, "group")?;
            // Exact (case-sensitive) match, as Kamailio; nothing to
            // remove is no fault.
            let uri = crate::dest::with_scheme(&param_str(p, 1, "address")?);
            change(&d, |e| {
                e.retain(|x| !(i64::from(x.setid) == group && x.uri == uri));
                Ok(())
            })?;
            Ok(json!("Ok. Dispatcher destination removed."))
        },
    );
    def.rpc(
        "dispatcher.hash",
        "The dispatcher hash of one or two values, and its slot: NSLOTS VALUE [VALUE].",
        |p| {
            let slots = param_int(p, 0, "nslots")?;
            let v1 = param_str(p, 1, "value")?;
            let v2 = if p.len() > 2 {
                Some(param_str(p, 2, "value")?)
            } else {
                None
            };
            if v1.is_empty() {
                return Err(RpcError::invalid_params("empty value"));
            }
            let h = crate::hash::ds_hash(v1.as_bytes(), v2.as_deref().map(str::as_bytes));
            let slot = if slots > 0 { i64::from(h) % slots } else { 0 };
            Ok(json!({ "hashid": h as i32, "slot": slot }))
        },
    )
}
