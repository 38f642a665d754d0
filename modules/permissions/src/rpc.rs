//! The RPC methods: `permissions.addressReload`, `addressDump`,
//! `subnetDump`, `domainDump`, `trustedReload`, `trustedDump`, with
//! Kamailio's names, answers and errors.

use crate::trusted::proto_number;
use crate::Permissions;
use sr_sdk::prelude::*;
use std::sync::Arc;

fn fault(m: &str) -> RpcError {
    RpcError::new(500, m)
}

/// A tag as Kamailio shows it: `"NULL"` when there is none (an empty
/// one was loaded as none).
fn or_null(s: &Option<String>) -> Json {
    json!(s.as_deref().filter(|t| !t.is_empty()).unwrap_or("NULL"))
}

/// The slot of Kamailio's address hash table (128 slots, the address's
/// bytes hashed) an address is listed under.
fn addr_slot(ip: &std::net::IpAddr) -> u32 {
    let bytes = match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    };
    sr_sdk::hash::core_hash(&bytes, None, false) & 127
}

/// Adds the RPC methods to the module.
pub fn export(pm: &Arc<Permissions>, def: ModuleDef) -> ModuleDef {
    let d = pm.clone();
    let def = {
        let mut def = def;
        for name in ["permissions.testUri", "permissions.allowUri"] {
            let d = d.clone();
            def = def.rpc(
                name,
                "Tests a URI and a contact against a basename's rule files: Allowed or Denied.",
                move |p| {
                    if p.len() < 3 {
                        return Err(RpcError::new(
                            500,
                            "Not enough parameters (basename, URI and contact)",
                        ));
                    }
                    let base = sr_sdk::rpc::param_str(p, 0, "basename")?;
                    let uri = sr_sdk::rpc::param_str(p, 1, "uri")?;
                    let contact = sr_sdk::rpc::param_str(p, 2, "contact")?;
                    if contact.len() > 1024 {
                        return Err(RpcError::new(500, "Contact is too long"));
                    }
                    Ok(json!(crate::files::test_uri(&d, &base, &uri, &contact)))
                },
            );
        }
        def
    };
    let d = pm.clone();
    let def = def.rpc(
        "permissions.addressReload",
        "Reloads the address table.",
        move |_| {
            d.rate_limit().map_err(|e| fault(&e))?;
            d.load_address().map_err(|e| {
                lm_err!("{e}");
                fault("Reload failed.")
            })?;
            Ok(json!("Reload OK"))
        },
    );
    let d = pm.clone();
    let def = def.rpc(
        "permissions.trustedReload",
        "Reloads the trusted table.",
        move |_| {
            if d.trusted().is_none() {
                return Err(fault("Reload failed."));
            }
            d.rate_limit().map_err(|e| fault(&e))?;
            d.load_trusted().map_err(|e| {
                lm_err!("{e}");
                fault("Reload failed.")
            })?;
            Ok(json!("Reload OK"))
        },
    );
    let d = pm.clone();
    let def = def.rpc("permissions.addressDump", "Lists the addresses of the address table.", move |_| {
        let t = d.address().ok_or_else(|| fault("No address table"))?;
        // In Kamailio's order: by hash slot, the last loaded first in one.
        let mut hosts: Vec<(u32, usize, _)> = t
            .hosts
            .iter()
            .enumerate()
            .map(|(i, e)| (addr_slot(&e.ip), i, e))
            .collect();
        hosts.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        Ok(Json::Array(
            hosts
                .into_iter()
                .map(|(slot, _, e)| {
                    json!({ "table": slot, "group": e.grp, "item": { "ip": e.ip.to_string(), "port": e.port, "tag": or_null(&e.tag) } })
                })
                .collect(),
        ))
    });
    let d = pm.clone();
    let def = def.rpc("permissions.subnetDump", "Lists the subnets of the address table.", move |_| {
        let t = d.address().ok_or_else(|| fault("No subnet table"))?;
        Ok(Json::Array(
            t.subnets
                .iter()
                .enumerate()
                .map(|(k, e)| {
                    json!({ "id": k, "group": e.grp, "item": { "ip": e.ip.to_string(), "mask": e.mask, "port": e.port, "tag": e.tag.as_deref().unwrap_or("") } })
                })
                .collect(),
        ))
    });
    let d = pm.clone();
    let def = def.rpc("permissions.domainDump", "Lists the names of the address table.", move |_| {
        let t = d.address().ok_or_else(|| fault("No domain list table"))?;
        Ok(Json::Array(
            t.names
                .iter()
                .map(|n| {
                    json!({ "group": n.grp, "item": { "domain_name": n.name, "port": n.port, "tag": or_null(&n.tag) } })
                })
                .collect(),
        ))
    });
    let d = pm.clone();
    def.rpc(
        "permissions.trustedDump",
        "Lists the trusted table (db_mode=1).",
        move |_| {
            let cache = d.trusted().ok_or_else(|| fault("No trusted table"))?;
            let rows = &cache.rows;
            Ok(Json::Array(
                rows.iter()
                    .map(|r| {
                        // The patterns as stored.
                        let pat = |p: &Option<crate::trusted::Pattern>| {
                            p.as_ref().map_or(json!("NULL"), |p| json!(p.text))
                        };
                        json!({ "item": {
                        "ip": r.src_ip,
                        "proto": proto_number(r.proto),
                        "pattern": pat(&r.from),
                        "ruri_pattern": pat(&r.ruri),
                        "tag": or_null(&r.tag),
                        "priority": r.priority,
                    } })
                    })
                    .collect(),
            ))
        },
    )
}
