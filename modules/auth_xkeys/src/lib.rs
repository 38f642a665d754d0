//! Module `auth_xkeys` (Kamailio's): trusted nodes sharing secret keys
//! put a digest of chosen request data in a header, and check it.
//!
//! - param `xkey` (repeatable): `id=..;name=..;value=..[;expires=secs]`;
//!   keys with the same id form a chain (the newest first);
//! - `auth_xkeys_add(hdr, id, alg, data)`: appends `hdr: <hex digest of
//!   value:data>` with the chain's newest key; `alg` is `sha256`,
//!   `sha384` or `sha512`;
//! - `auth_xkeys_check(hdr, id, alg, data)`: 1 when the first `hdr`
//!   header holds that digest under any key of the chain;
//! - RPCs `auth_xkeys_.list` and `auth_xkeys_.set` (Kamailio's names,
//!   underscore included).
//!
//! A key's `expires` is listed, not enforced, as Kamailio's.
#![forbid(unsafe_code)]

pub mod keys;

use keys::{Key, Keys};
use sr_sdk::db::now;
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_str};
use std::sync::{Arc, PoisonError, RwLock};

type Store = Arc<RwLock<Keys>>;

fn add(store: &Store, ctx: &mut Ctx<'_>, hdr: &str, id: &str, alg: &str, data: &str) -> i32 {
    let k = store.read().unwrap_or_else(PoisonError::into_inner);
    if k.chains.is_empty() {
        lm_err!("auth_xkeys_add: no stored keys");
        return -1;
    }
    let Some(key) = k.chain(id).and_then(|c| c.keys.first()) else {
        return -1;
    };
    let Some(a) = keys::algorithm(alg) else {
        lm_err!("auth_xkeys_add: unknown algorithm [{alg}]");
        return -1;
    };
    let line = format!("{hdr}: {}\r\n", keys::digest_hex(a, &key.value, data));
    drop(k);
    let at = ctx.msg.msg().headers_end();
    ctx.msg.edits.insert(at, line.as_bytes());
    1
}

fn check(store: &Store, ctx: &mut Ctx<'_>, hdr: &str, id: &str, alg: &str, data: &str) -> i32 {
    let k = store.read().unwrap_or_else(PoisonError::into_inner);
    if k.chains.is_empty() {
        lm_err!("auth_xkeys_check: no stored keys");
        return -1;
    }
    let body = match ctx.msg.msg().headers_by_name(hdr).next() {
        Some(h) if !h.value.trim().is_empty() => h.value.to_string(),
        _ => return -1,
    };
    let Some(chain) = k.chain(id) else {
        return -1;
    };
    let Some(a) = keys::algorithm(alg) else {
        // (Kamailio tells an unknown algorithm only once a key is tried.)
        if [64, 96, 128].contains(&body.trim().len()) {
            lm_err!("auth_xkeys_check: unknown algorithm [{alg}]");
        }
        return -1;
    };
    if keys::matches(chain, a, data, &body) {
        1
    } else {
        -1
    }
}

fn rpc_list(store: &Store) -> Result<Json, RpcError> {
    let k = store.read().unwrap_or_else(PoisonError::into_inner);
    if k.chains.is_empty() {
        return Err(RpcError::new(500, "No keys"));
    }
    let mut out: Vec<Json> = k
        .chains
        .iter()
        .map(|c| {
            let keys: Vec<Json> = c
                .keys
                .iter()
                .map(|x| {
                    serde_json::json!({"KEY": {
                        "NAME": x.name, "VALUE": x.value, "EXPIRES": x.expires
                    }})
                })
                .collect();
            serde_json::json!({"KID": c.id, "KEYS": keys})
        })
        .collect();
    // One chain: Kamailio's object itself; more: one object each (where
    // Kamailio repeats the KID and KEYS members in one object).
    Ok(if out.len() == 1 {
        out.remove(0)
    } else {
        Json::Array(out)
    })
}

fn rpc_set(store: &Store, p: &[Json]) -> Result<Json, RpcError> {
    let bad = |_| RpcError::new(500, "Invalid Parameters");
    let id = param_str(p, 0, "id").map_err(bad)?;
    let name = param_str(p, 1, "name").map_err(bad)?;
    let value = param_str(p, 2, "value").map_err(bad)?;
    let expires = param_int(p, 3, "expires").map_err(bad)?;
    let mut k = store.write().unwrap_or_else(PoisonError::into_inner);
    match k.chain_mut(&id) {
        // As Kamailio's: an existing id gets only its newest key's
        // expiry set (name and value unused); a new id is added with the
        // number as given.
        Some(c) => {
            if let Some(first) = c.keys.first_mut() {
                first.expires = now().saturating_add(expires);
            }
        }
        None => k.insert(
            &id,
            Key {
                name,
                value,
                expires,
            },
        ),
    }
    Ok(Json::Null)
}

use sr_sdk::serde_json;

/// The module definition.
pub fn module() -> ModuleDef {
    let store: Store = Arc::new(RwLock::new(Keys::default()));
    let (s0, s1, s2, s3, s4) = (
        store.clone(),
        store.clone(),
        store.clone(),
        store.clone(),
        store,
    );
    let spve = Some(fixup::f(fixup::spve));
    let args = |ctx: &mut Ctx<'_>, p: &[Fixed]| -> [String; 4] {
        std::array::from_fn(|i| p[i].str(ctx).into_owned())
    };
    ModuleDef::new("auth_xkeys")
        .param("xkey", ParamKind::Str, move |v| {
            let text = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(n) => n.to_string(),
            };
            let (id, key) = keys::parse_param(&text, now())?;
            s0.write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(&id, key);
            Ok(())
        })
        .cmd(
            "auth_xkeys_add",
            4,
            RouteType::ANY,
            spve.clone(),
            move |ctx, p| {
                let [h, id, alg, data] = args(ctx, p);
                add(&s1, ctx, &h, &id, &alg, &data)
            },
        )
        .cmd(
            "auth_xkeys_check",
            4,
            RouteType::ANY,
            spve,
            move |ctx, p| {
                let [h, id, alg, data] = args(ctx, p);
                check(&s2, ctx, &h, &id, &alg, &data)
            },
        )
        .rpc("auth_xkeys_.list", "List existing keys", move |_| {
            rpc_list(&s3)
        })
        .rpc(
            "auth_xkeys_.set",
            "Set expires of existing key or add a new key",
            move |p| rpc_set(&s4, p),
        )
}
