//! # domain: the domains this server serves
//!
//! Kamailio's `domain` module: the `domain` table (domain → did) and its
//! `domain_attrs` (attributes per did), loaded at start and on
//! `domain.reload`; `is_from_local()`, `is_uri_host_local()`,
//! `is_domain_local(domain)`, `lookup_domain(domain[, prefix])` (the did
//! and the attributes into AVPs); with `register_myself`, the domains
//! count as `myself`. RPC `domain.reload`, `domain.dump`. See
//! `docs/modules/domain.md`.
#![forbid(unsafe_code)]

use params::{get_int as int, get_str as text, int_cell, str_cell};
use sr_sdk::db::{self, schema, DbPool};
use sr_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};

/// An attribute of a did: an integer (`type` 0) or a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Value<'static>,
}

/// The loaded tables.
#[derive(Debug, Clone, Default)]
pub struct Domains {
    /// Domain (lower case) → did.
    pub dids: HashMap<String, String>,
    /// did (lower case) → attributes, in table order.
    pub attrs: HashMap<String, Vec<Attr>>,
    /// The domains (lower case) in table order.
    pub order: Vec<String>,
    /// The dids with attributes, in the order first seen.
    pub attr_dids: Vec<String>,
}

impl Domains {
    /// The did of a domain (compared without regard to case).
    pub fn did(&self, domain: &str) -> Option<&str> {
        self.dids
            .get(&domain.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Column and table names.
#[derive(Debug)]
pub struct Params {
    /// `db_url`.
    pub db_url: Arc<RwLock<String>>,
    /// `domain_table`.
    pub domain_table: Arc<RwLock<String>>,
    /// `domain_attrs_table`.
    pub attrs_table: Arc<RwLock<String>>,
    /// `did_col`.
    pub did_col: Arc<RwLock<String>>,
    /// `domain_col`.
    pub domain_col: Arc<RwLock<String>>,
    /// `name_col`.
    pub name_col: Arc<RwLock<String>>,
    /// `type_col`.
    pub type_col: Arc<RwLock<String>>,
    /// `value_col`.
    pub value_col: Arc<RwLock<String>>,
    /// `register_myself`.
    pub register_myself: Arc<AtomicI64>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            db_url: str_cell(""),
            domain_table: str_cell("domain"),
            attrs_table: str_cell("domain_attrs"),
            did_col: str_cell("did"),
            domain_col: str_cell("domain"),
            name_col: str_cell("name"),
            type_col: str_cell("type"),
            value_col: str_cell("value"),
            register_myself: int_cell(0),
        }
    }
}

/// The module's state.
#[derive(Default)]
pub struct Domain {
    /// Parameters.
    pub p: Params,
    tables: RwLock<Arc<Domains>>,
    pool: OnceLock<DbPool>,
}

impl Domain {
    /// The tables now.
    pub fn domains(&self) -> Arc<Domains> {
        self.tables.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Reads both tables and swaps them in.
    pub fn reload(&self) -> Result<(), String> {
        let pool = self.pool.get().ok_or("domain: db_url is not set")?;
        let p = &self.p;
        let [dt, at, did, dom, name, ty, val] = [
            &p.domain_table,
            &p.attrs_table,
            &p.did_col,
            &p.domain_col,
            &p.name_col,
            &p.type_col,
            &p.value_col,
        ]
        .map(|c| text(c));
        let t = pool
            .with(|c| {
                db::check_version(c, &dt, schema::DOMAIN_VERSION)?;
                db::check_version(c, &at, schema::DOMAIN_ATTRS_VERSION)?;
                let rows = c.query(&dt, &[], &[&dom, &did], None)?;
                let mut t = Domains::default();
                for r in 0..rows.len() {
                    let Some(d) = rows.get(r, &dom).as_string() else {
                        continue;
                    };
                    // A domain without a did is its own did.
                    let id = rows.get(r, &did).as_string().unwrap_or_else(|| d.clone());
                    let key = d.to_ascii_lowercase();
                    if t.dids.insert(key.clone(), id).is_none() {
                        t.order.push(key);
                    }
                }
                let rows = c.query(&at, &[], &[&did, &name, &ty, &val], None)?;
                for r in 0..rows.len() {
                    let (Some(id), Some(n), Some(v)) = (
                        rows.get(r, &did).as_string(),
                        rows.get(r, &name).as_string(),
                        rows.get(r, &val).as_string(),
                    ) else {
                        continue;
                    };
                    let value = if rows.get(r, &ty).as_i64() == Some(0) {
                        Value::Int(v.trim().parse().unwrap_or(0))
                    } else {
                        Value::str(v)
                    };
                    // dids compare without regard to case, as Kamailio's.
                    let key = id.to_ascii_lowercase();
                    if !t.attrs.contains_key(&key) {
                        t.attr_dids.push(id.clone());
                    }
                    t.attrs
                        .entry(key)
                        .or_default()
                        .push(Attr { name: n, value });
                }
                Ok(t)
            })
            .map_err(|e| format!("domain: {e}"))?;
        let mut cur = self.tables.write().map_err(|_| "domain: lock")?;
        *cur = Arc::new(t);
        Ok(())
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        let url = text(&self.p.db_url);
        if url.is_empty() {
            return Err("domain: db_url is not set".into());
        }
        let driver = db::driver_for(core, &url).map_err(|e| format!("domain: {e}"))?;
        let pool = DbPool::new(driver, &url).map_err(|e| format!("domain: {e}"))?;
        let _ = self.pool.set(pool);
        self.reload()?;
        if int(&self.p.register_myself) != 0 {
            let d = self.clone();
            core.add_myself_check(Arc::new(move |host: &str, _port| {
                let h = host.trim_start_matches('[').trim_end_matches(']');
                d.domains().did(h).is_some()
            }))?;
        }
        Ok(())
    }
}

fn truth(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

/// `lookup_domain`: the did into `$avp(<prefix>did)` and each attribute
/// into `$avp(<prefix><name>)`.
fn lookup(dm: &Domain, ctx: &mut Ctx<'_>, domain: &str, prefix: &str) -> i32 {
    let t = dm.domains();
    let Some(did) = t.did(domain) else {
        return -1;
    };
    ctx.msg
        .avps
        .push(&format!("{prefix}did"), Value::str(did.to_string()));
    for a in t.attrs.get(&did.to_ascii_lowercase()).into_iter().flatten() {
        ctx.msg
            .avps
            .push(&format!("{prefix}{}", a.name), a.value.clone());
    }
    1
}

/// The module definition.
pub fn module() -> ModuleDef {
    let dm = Arc::new(Domain::default());
    let p = &dm.p;
    let mut def = ModuleDef::new("domain");
    for (name, cell) in [
        ("db_url", &p.db_url),
        ("domain_table", &p.domain_table),
        ("domain_attrs_table", &p.attrs_table),
        ("did_col", &p.did_col),
        ("domain_col", &p.domain_col),
        ("name_col", &p.name_col),
        ("type_col", &p.type_col),
        ("value_col", &p.value_col),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    def = def.param(
        "register_myself",
        ParamKind::Int,
        params::int(&p.register_myself),
    );
    let d = dm.clone();
    def = def.on_init(move |core| d.init(core));
    let req = RouteType(RouteType::REQUEST.0 | RouteType::FAILURE.0 | RouteType::BRANCH.0);
    let d = dm.clone();
    def = def.cmd("is_from_local", 0, RouteType::ANY, None, move |ctx, _| {
        let host = ctx
            .msg
            .msg()
            .from()
            .ok()
            .map(|f| f.uri.host_str.to_string());
        truth(host.is_some_and(|h| d.domains().did(&h).is_some()))
    });
    let d = dm.clone();
    def = def.cmd("is_uri_host_local", 0, req, None, move |ctx, _| {
        let host = ctx.msg.ruri_parsed().ok().map(|u| u.host_str.to_string());
        truth(host.is_some_and(|h| d.domains().did(&h).is_some()))
    });
    let d = dm.clone();
    def = def.cmd(
        "is_domain_local",
        1,
        RouteType::ANY,
        Some(fixup::f(fixup::spve)),
        move |ctx, p| {
            let domain = p[0].str(ctx).into_owned();
            truth(d.domains().did(&domain).is_some())
        },
    );
    for n in [1, 2] {
        let d = dm.clone();
        def = def.cmd(
            "lookup_domain",
            n,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            move |ctx, p| {
                let domain = p[0].str(ctx).into_owned();
                let prefix = p
                    .get(1)
                    .map(|x| x.str(ctx).into_owned())
                    .unwrap_or_default();
                lookup(&d, ctx, &domain, &prefix)
            },
        );
    }
    let d = dm.clone();
    def = def.rpc("domain.reload", "Reloads the domain tables.", move |_| {
        d.reload().map_err(|e| {
            lm_err!("{e}");
            RpcError::new(500, "Domain table reload failed")
        })?;
        Ok(Json::Null)
    });
    let d = dm.clone();
    def.rpc(
        "domain.dump",
        "Lists the domains with their dids, and the names of each did's attributes.",
        move |_| Ok(dump(&d.domains())),
    )
}

/// Kamailio's domain hash table size.
const DOM_HASH_SIZE: u32 = 128;

/// `domain.dump` in Kamailio's shape and order: the domains by hash slot
/// (the last loaded first in one), and for each did with attributes the
/// attribute names, the last loaded first.
pub fn dump(t: &Domains) -> Json {
    let mut doms: Vec<(u32, usize, &String)> = t
        .order
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let slot = sr_sdk::hash::core_hash(d.as_bytes(), None, true) & (DOM_HASH_SIZE - 1);
            (slot, i, d)
        })
        .collect();
    doms.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let domains: Vec<Json> = doms
        .into_iter()
        .map(|(_, _, d)| json!({ "domain": d, "did": t.dids.get(d) }))
        .collect();
    let attributes: Vec<Json> = t
        .attr_dids
        .iter()
        .rev()
        .map(|did| {
            let names: Vec<&str> = t
                .attrs
                .get(&did.to_ascii_lowercase())
                .into_iter()
                .flatten()
                .rev()
                .map(|a| a.name.as_str())
                .collect();
            json!({ "did": did, "attrs": names })
        })
        .collect();
    json!({ "domains": domains, "attributes": attributes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dids_ignore_case() {
        let mut t = Domains::default();
        t.dids.insert("example.com".into(), "d1".into());
        assert_eq!(t.did("EXAMPLE.com"), Some("d1"));
        assert_eq!(t.did("other.com"), None);
    }
}
