//! # tsilo: transactions waiting for their user to register
//!
//! Kamailio's `tsilo` module. `ts_store()` keeps the current transaction
//! (its `$T(id_index)`/`$T(id_label)`) under its Request-URI's user (the
//! whole URI with `use_domain`); when that user registers, `ts_append()`
//! looks up the new contacts and gives every kept transaction a branch
//! for each contact it has no branch for yet (tm's `t_append_branches`):
//! a call to a phone woken by a push notification rings it as soon as it
//! registers. Transactions that ended are forgotten.
#![forbid(unsafe_code)]

use sr_mod_registrar::{RegistrarApi, REGISTRAR_API};
use sr_mod_tm::{TmApi, TM_API};
use sr_mod_usrloc::{Domain, Usrloc, USRLOC_API};
use sr_sdk::prelude::*;
use sr_sdk::RpcError;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A kept transaction: `$T(id_index)` and `$T(id_label)`.
type Ids = (u64, u64);

/// The module's state.
struct Tsilo {
    hash_size: Arc<AtomicI64>,
    use_domain: Arc<AtomicI64>,
    /// Key (user, or whole URI) → its transactions, newest first.
    table: Mutex<BTreeMap<String, Vec<Ids>>>,
    tm: OnceLock<Arc<TmApi>>,
    reg: OnceLock<Arc<RegistrarApi>>,
    total_ruris: Stat,
    total_transactions: Stat,
    added_branches: Stat,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tsilo {
    fn tm(&self) -> Option<&Arc<TmApi>> {
        self.tm.get()
    }

    /// The table key of `uri`: its user, or the URI as written with
    /// `use_domain`; `None` when it does not parse.
    fn key(&self, uri: &str) -> Option<String> {
        let parsed = sr_sdk::sip_msg::Uri::parse(uri).ok()?;
        if params::get_int(&self.use_domain) != 0 {
            Some(uri.to_string())
        } else {
            Some(parsed.user.unwrap_or_default().to_string())
        }
    }

    /// Forgets transactions that ended (and keys left empty).
    fn purge(&self) {
        let Some(tm) = self.tm() else { return };
        lock(&self.table).retain(|_, ids| {
            ids.retain(|&(i, l)| {
                sr_mod_tm::suspend::join_id(i, l).is_some_and(|id| tm.cell_alive(id))
            });
            !ids.is_empty()
        });
    }

    /// `ts_store([uri])`.
    fn store(&self, ctx: &mut Ctx<'_>, uri: Option<String>) -> i32 {
        let uri = uri.unwrap_or_else(|| ctx.msg.ruri().to_string());
        let Some(key) = self.key(&uri) else {
            lm_err!("tsilo: bad uri [{uri}]");
            return -1;
        };
        let Some(tm) = self.tm() else { return -1 };
        let Some(ids) = tm.t_ids(ctx) else {
            lm_err!("tsilo: no transaction defined for {key}");
            return -1;
        };
        // The routes and timers armed so far go with branches added later.
        tm.commit_armed(ctx);
        self.purge();
        let mut t = lock(&self.table);
        let list = t.entry(key).or_insert_with(|| {
            self.total_ruris.inc();
            Vec::new()
        });
        if !list.contains(&ids) {
            list.insert(0, ids);
            self.total_transactions.inc();
        }
        1
    }

    /// `ts_append_to(tindex, tlabel, table[, uri])` with `only` the
    /// contact to add (`ts_append_by_contact`): the number of branches
    /// added; -1 no such transaction or none added, -2 cancelled, -3
    /// answered, -4 no contact to add.
    fn append_to(
        &self,
        core: &dyn Core,
        ids: Ids,
        dom: &Domain,
        uri: Option<&str>,
        only: Option<&str>,
    ) -> i32 {
        let (Some(tm), Some(reg)) = (self.tm(), self.reg.get()) else {
            return -1;
        };
        let Some(req) = tm.request_of(ids.0, ids.1) else {
            lm_err!("tsilo: transaction [{}:{}] not found", ids.0, ids.1);
            return -1;
        };
        let target = uri.map_or_else(|| req.ruri().to_string(), str::to_string);
        let method = req.msg().method().map(|m| m.as_str().to_string());
        let contacts = match reg.contact_branches(dom, &target, method.as_deref()) {
            Ok(c) => c,
            Err(rc) => {
                lm_err!(
                    "tsilo: transaction {}:{}: error updating dset ({rc})",
                    ids.0,
                    ids.1
                );
                return -4;
            }
        };
        let n = tm.append_branches(core, ids.0, ids.1, contacts, only);
        if n > 0 {
            self.added_branches.add(i64::from(n));
        }
        if n == 0 {
            -1
        } else {
            n
        }
    }

    /// `ts_append(table, ruri)` / `ts_append_by_contact`: 1 when the URI
    /// has kept transactions (each given its new branches), -2 when not,
    /// -1 for a URI that does not parse.
    fn append(&self, core: &dyn Core, dom: &Domain, ruri: &str, only: Option<&str>) -> i32 {
        let Some(key) = self.key(ruri) else {
            lm_err!("tsilo: failed to parse uri {ruri}");
            return -1;
        };
        if let Some(c) = only {
            if sr_sdk::sip_msg::Uri::parse(c).is_err() {
                lm_err!("tsilo: failed to parse contact {c}");
                return -1;
            }
        }
        self.purge();
        let Some(ids) = lock(&self.table).get(&key).cloned() else {
            return -2;
        };
        for i in ids {
            self.append_to(core, i, dom, Some(ruri), only);
        }
        1
    }
}

/// The first Contact URI of the request (`ts_append_by_contact` without
/// a contact).
fn first_contact(ctx: &Ctx<'_>) -> Option<String> {
    let m = ctx.msg.msg();
    m.contacts().find_map(|c| match c {
        Ok(sr_sdk::sip_msg::headers::ContactValue::Addr(n)) => Some(n.uri.raw.to_string()),
        _ => None,
    })
}

fn rpc_dump(t: &Tsilo, p: &[Json]) -> Json {
    t.purge();
    let brief = sr_sdk::rpc::param_opt_str(p, 0).as_deref() == Some("brief");
    let table = lock(&t.table);
    let size = hash_size(params::get_int(&t.hash_size));
    let mut slots: BTreeMap<u32, usize> = BTreeMap::new();
    let mut ntrans = 0;
    let mut ruris = Vec::new();
    for (k, ids) in table.iter() {
        let h = sr_sdk::hash::core_hash(k.as_bytes(), None, false);
        *slots.entry(h & (size - 1)).or_default() += 1;
        ntrans += ids.len();
        ruris.push(json!({
            "R-URI": k,
            "Hash": h,
            "Transactions": ids
                .iter()
                .map(|(i, l)| json!({"Transaction": {"Tindex": i, "Tlabel": l}}))
                .collect::<Vec<_>>(),
        }));
    }
    let mut out = json!({"Size": size});
    if !brief {
        // One R-URI: its members, as Kamailio's struct holds them; more:
        // one struct each (Kamailio repeats the members in one struct,
        // which JSON cannot hold).
        out["R-URIs"] = match ruris.len() {
            1 => ruris.remove(0),
            _ => Json::Array(ruris),
        };
    }
    out["Stats"] = json!({
        "RURIs": table.len(),
        "Max-Slots": slots.values().max().copied().unwrap_or(0),
        "Transactions": ntrans,
    });
    out
}

fn rpc_lookup(t: &Tsilo, p: &[Json]) -> Result<Json, RpcError> {
    let Some(ruri) = sr_sdk::rpc::param_opt_str(p, 0) else {
        return Err(RpcError::new(500, "No RURI to lookup specified"));
    };
    t.purge();
    let table = lock(&t.table);
    let ids = table
        .get(&ruri)
        .ok_or_else(|| RpcError::new(404, "RURI not found in tsilo table"))?;
    Ok(Json::Array(
        ids.iter()
            .map(|(i, l)| json!({"Transaction": {"Tindex": i, "Tlabel": l}}))
            .collect(),
    ))
}

/// `hash_size` rounded down to a power of two (at least 1).
fn hash_size(n: i64) -> u32 {
    let n = n.clamp(1, 1 << 20) as u32;
    1 << (31 - n.leading_zeros())
}

/// The usrloc table named by a constant parameter.
fn fixup_table(env: &dyn fixup::FixupEnv, a: &Arg) -> Result<Fixed, String> {
    let Arg::Str(name) = a else {
        return Err(format!("table name '{}' must be a constant", a.text()));
    };
    let ul = bind::<Usrloc>(env.core(), USRLOC_API)
        .ok_or("tsilo needs the usrloc and registrar modules (load them before tsilo)")?;
    Ok(Fixed::Custom(ul.register_domain(name)?))
}

fn domain(p: &Fixed) -> Option<Arc<Domain>> {
    match p {
        Fixed::Custom(c) => c.clone().downcast::<Domain>().ok(),
        _ => None,
    }
}

/// The `tsilo` module.
pub fn module() -> ModuleDef {
    let t = Arc::new(Tsilo {
        hash_size: params::int_cell(2048),
        use_domain: params::int_cell(0),
        table: Mutex::new(BTreeMap::new()),
        tm: OnceLock::new(),
        reg: OnceLock::new(),
        total_ruris: Stat::default(),
        total_transactions: Stat::default(),
        added_branches: Stat::default(),
    });
    let rf = RouteType::REQUEST | RouteType::FAILURE;
    let spve = Some(fixup::f(fixup::spve));
    // ts_append*(table, ruri[, contact]); ts_append_to(tindex, tlabel, table[, uri]).
    let table_first: fixup::FixupFn = Arc::new(|env, i, a| {
        if i == 0 {
            fixup_table(env, a)
        } else {
            fixup::spve(env, i, a)
        }
    });
    let table_third: fixup::FixupFn = Arc::new(|env, i, a| match i {
        0 | 1 => fixup::igp(env, i, a),
        2 => fixup_table(env, a),
        _ => fixup::spve(env, i, a),
    });
    let init = t.clone();
    let mut def = ModuleDef::new("tsilo")
        .param("hash_size", ParamKind::Int, params::int(&t.hash_size))
        .param("use_domain", ParamKind::Int, params::int(&t.use_domain))
        .on_init(move |core| {
            let tm = bind::<TmApi>(core, TM_API)
                .ok_or("tsilo needs the tm module (load tm before tsilo)")?;
            let _ = init.tm.set(tm);
            let reg = bind::<RegistrarApi>(core, REGISTRAR_API)
                .ok_or("tsilo needs the registrar module (load registrar before tsilo)")?;
            let _ = init.reg.set(reg);
            let me = init.clone();
            core.add_timer(
                "tsilo-purge",
                Duration::from_secs(5),
                Arc::new(move || me.purge()),
            );
            Ok(())
        });
    let (s0, s1) = (t.clone(), t.clone());
    def = def
        .cmd("ts_store", 0, rf, None, move |ctx, _| s0.store(ctx, None))
        .cmd("ts_store", 1, rf, spve, move |ctx, p| {
            let u = p[0].str(ctx).into_owned();
            s1.store(ctx, (!u.is_empty()).then_some(u))
        });
    let a = t.clone();
    def = def.cmd(
        "ts_append",
        2,
        rf,
        Some(table_first.clone()),
        move |ctx, p| {
            let Some(dom) = domain(&p[0]) else { return -1 };
            let ruri = p[1].str(ctx).into_owned();
            a.append(ctx.core, &dom, &ruri, None)
        },
    );
    for n in [2usize, 3] {
        let b = t.clone();
        def = def.cmd(
            "ts_append_by_contact",
            n,
            rf,
            Some(table_first.clone()),
            move |ctx, p| {
                let Some(dom) = domain(&p[0]) else { return -1 };
                let ruri = p[1].str(ctx).into_owned();
                let contact = match p.get(2) {
                    Some(c) => Some(c.str(ctx).into_owned()),
                    None => first_contact(ctx),
                };
                let Some(contact) = contact.filter(|c| !c.is_empty()) else {
                    lm_err!("tsilo: no contact to append for {ruri}");
                    return -1;
                };
                b.append(ctx.core, &dom, &ruri, Some(&contact))
            },
        );
    }
    for n in [3usize, 4] {
        let c = t.clone();
        def = def.cmd(
            "ts_append_to",
            n,
            rf,
            Some(table_third.clone()),
            move |ctx, p| {
                let (Ok(i), Ok(l)) = (u64::try_from(p[0].int(ctx)), u64::try_from(p[1].int(ctx)))
                else {
                    return -1;
                };
                let Some(dom) = domain(&p[2]) else { return -1 };
                let uri = p.get(3).map(|u| u.str(ctx).into_owned());
                let r = c.append_to(ctx.core, (i, l), &dom, uri.as_deref(), None);
                if r > 0 {
                    1
                } else {
                    r
                }
            },
        );
    }
    let (g1, g2) = (t.clone(), t.clone());
    let (d, l) = (t.clone(), t.clone());
    def.stat_fn("stored_ruris", move || {
        g1.purge();
        lock(&g1.table).len() as i64
    })
    .stat_fn("stored_transactions", move || {
        g2.purge();
        lock(&g2.table).values().map(Vec::len).sum::<usize>() as i64
    })
    .stat("total_ruris", t.total_ruris.clone())
    .stat("total_transactions", t.total_transactions.clone())
    .stat("added_branches", t.added_branches.clone())
    .rpc("ts.dump", "Dump tsilo transactions table", move |p| {
        Ok(rpc_dump(&d, p))
    })
    .rpc(
        "ts.lookup",
        "Lookup one R-URI in the tsilo transactions table",
        move |p| rpc_lookup(&l, p),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_sizes_round_down_to_powers_of_two() {
        assert_eq!(hash_size(2048), 2048);
        assert_eq!(hash_size(1000), 512);
        assert_eq!(hash_size(0), 1);
    }
}
