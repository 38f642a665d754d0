//! # pdt: prefix-domain translation
//!
//! Kamailio's `pdt` module. The `pdt` table maps (source domain, prefix)
//! to a domain; `prefix2domain` and `pd_translate` find the longest
//! prefix of the Request-URI's user part (after the module's `prefix`)
//! for the source domain (`*` for any, or the From domain), strip it or
//! not, and put the domain in the Request-URI. The table is read at
//! start and on `pdt.reload` (swapped in whole).
#![forbid(unsafe_code)]

pub mod tree;

use sr_sdk::db::{DbPool, DbValue, Order};
use sr_sdk::prelude::*;
use sr_sdk::rpc::param_opt_str;
use sr_sdk::RpcError;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tree::Trees;

/// The module's state.
struct Pdt {
    db_url: Arc<RwLock<String>>,
    db_table: Arc<RwLock<String>>,
    sdomain_column: Arc<RwLock<String>>,
    prefix_column: Arc<RwLock<String>>,
    domain_column: Arc<RwLock<String>>,
    prefix: Arc<RwLock<String>>,
    char_list: Arc<RwLock<String>>,
    fetch_rows: Arc<AtomicI64>,
    check_domain: Arc<AtomicI64>,
    pool: OnceLock<DbPool>,
    trees: RwLock<Arc<Trees>>,
    reloading: Mutex<()>,
}

impl Pdt {
    fn trees(&self) -> Arc<Trees> {
        self.trees
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Reads the table into new trees and swaps them in.
    fn load(&self) -> Result<(), String> {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let pool = self.pool.get().ok_or("no db connection")?;
        let (table, s, p, d) = (
            params::get_str(&self.db_table),
            params::get_str(&self.sdomain_column),
            params::get_str(&self.prefix_column),
            params::get_str(&self.domain_column),
        );
        let order = Order {
            col: s.clone(),
            desc: false,
        };
        let rows = pool
            .with(|c| {
                c.query(
                    &table,
                    &[],
                    &[s.as_str(), p.as_str(), d.as_str()],
                    Some(&order),
                )
            })
            .map_err(|e| format!("Error while querying db: {e}"))?;
        let mut t = Trees::new(&params::get_str(&self.char_list));
        let check = params::get_int(&self.check_domain) != 0;
        for row in &rows.rows {
            let get = |i: usize| row.get(i).and_then(DbValue::as_string).unwrap_or_default();
            let (sd, pf, dm) = (get(0), get(1), get(2));
            if sd.is_empty() || pf.is_empty() || dm.is_empty() {
                lm_err!("pdt: Error - bad values in db");
                continue;
            }
            if check && t.has_prefix_or_domain(&sd, &pf, &dm) {
                lm_err!("pdt: sdomain [{sd}]: prefix [{pf}] or domain <{dm}> duplicated");
                continue;
            }
            t.add(&sd, &pf, &dm)
                .map_err(|e| format!("Error adding info to tree: {e}"))?;
        }
        match self.trees.write() {
            Ok(mut g) => *g = Arc::new(t),
            Err(e) => *e.into_inner() = Arc::new(t),
        }
        Ok(())
    }

    /// Translates the Request-URI for `sdomain` (`fallback`: also `*`);
    /// `mode` 0 strips the module prefix and the matched prefix, 1 the
    /// module prefix only, 2 nothing. 1 done, -1 not.
    fn translate(&self, ctx: &mut Ctx<'_>, sdomain: &str, mode: i64, fallback: bool) -> i32 {
        let (scheme_user, user, password) = match ctx.msg.ruri_parsed() {
            Ok(u) => (
                u.raw.split_once(':').map_or("sip", |x| x.0).to_string(),
                u.user.unwrap_or_default().to_string(),
                u.password.map(str::to_string),
            ),
            Err(_) => {
                lm_err!("pdt: failed to parse the R-URI");
                return -1;
            }
        };
        if user.is_empty() {
            return -1;
        }
        let pfx = params::get_str(&self.prefix);
        if !pfx.is_empty()
            && (user.len() <= pfx.len()
                || !user.as_bytes()[..pfx.len()].eq_ignore_ascii_case(pfx.as_bytes()))
        {
            return -1;
        }
        let code = &user[pfx.len()..];
        let trees = self.trees();
        let found = trees
            .tree(sdomain)
            .and_then(|t| trees.lookup(t, code))
            .or_else(|| {
                fallback
                    .then(|| trees.tree("*").and_then(|t| trees.lookup(t, code)))
                    .flatten()
            });
        let Some((domain, plen)) = found else {
            lm_info!("pdt: no prefix PDT prefix matched [{code}]");
            return -1;
        };
        let strip = match mode {
            0 => plen + pfx.len(),
            1 => pfx.len(),
            _ => 0,
        };
        let new_user = user.get(strip..).unwrap_or("");
        // Kamailio's "rewrite host and all the rest": the port, the
        // parameters and the headers go too.
        let mut uri = format!("{scheme_user}:{new_user}");
        if let Some(pw) = password {
            uri.push(':');
            uri.push_str(&pw);
        }
        // No user left (all of it was the prefix): no `@` either.
        if uri.len() > scheme_user.len() + 1 {
            uri.push('@');
        }
        uri.push_str(&domain);
        ctx.msg.new_uri = Some(uri);
        1
    }
}

/// `pdt.list` for one source domain: its records that pass the filters.
fn list_tree(trees: &Trees, t: &tree::Tree, prefix: Option<&str>, domain: Option<&str>) -> Json {
    let starts = |s: &str, f: &str, ci: bool| {
        s.len() >= f.len()
            && if ci {
                s.as_bytes()[..f.len()].eq_ignore_ascii_case(f.as_bytes())
            } else {
                s.starts_with(f)
            }
    };
    let records: Vec<Json> = trees
        .entries(t)
        .into_iter()
        .filter(|(p, d)| match (prefix, domain) {
            (None, None) => true,
            // As Kamailio: a domain alone must be the whole domain (any
            // case); with a prefix, its start.
            (None, Some(f)) => d.eq_ignore_ascii_case(f),
            (Some(pf), None) => starts(p, pf, false),
            (Some(pf), Some(f)) => starts(p, pf, false) && starts(d, f, true),
        })
        .map(|(p, d)| json!({"ENTRY": {"DOMAIN": d, "PREFIX": p}}))
        .collect();
    json!({"SDOMAIN": t.sdomain, "RECORDS": records})
}

fn rpc_list(m: &Pdt, p: &[Json]) -> Result<Json, RpcError> {
    let trees = m.trees();
    if trees.trees.is_empty() {
        return Err(RpcError::new(404, "No records"));
    }
    let arg = |i: usize| param_opt_str(p, i).filter(|s| !s.is_empty() && s != ".");
    let (sdomain, prefix, domain) = (arg(0), arg(1), arg(2));
    if let Some(pf) = &prefix {
        if pf.bytes().any(|c| !trees.chars.contains(&c)) {
            return Err(RpcError::new(400, "Bad Prefix"));
        }
    }
    let out: Vec<Json> = trees
        .trees
        .iter()
        .filter(|t| sdomain.as_deref().is_none_or(|s| t.sdomain.starts_with(s)))
        .map(|t| list_tree(&trees, t, prefix.as_deref(), domain.as_deref()))
        .collect();
    // Kamailio answers one struct holding every source domain's
    // SDOMAIN and RECORDS in turn; siprouter one struct per source
    // domain (JSON objects have no repeated keys), `{}` for none.
    Ok(match out.len() {
        0 => json!({}),
        1 => out.into_iter().next().unwrap_or_default(),
        _ => Json::Array(out),
    })
}

/// The `pdt` module.
pub fn module() -> ModuleDef {
    let m = Arc::new(Pdt {
        db_url: params::str_cell("mysql://kamailio:kamailiorw@localhost/kamailio"),
        db_table: params::str_cell("pdt"),
        sdomain_column: params::str_cell("sdomain"),
        prefix_column: params::str_cell("prefix"),
        domain_column: params::str_cell("domain"),
        prefix: params::str_cell(""),
        char_list: params::str_cell("0123456789"),
        fetch_rows: params::int_cell(1000),
        check_domain: params::int_cell(1),
        pool: OnceLock::new(),
        trees: RwLock::new(Arc::new(Trees::default())),
        reloading: Mutex::new(()),
    });
    let mut def = ModuleDef::new("pdt");
    for (name, cell) in [
        ("db_url", &m.db_url),
        ("db_table", &m.db_table),
        ("sdomain_column", &m.sdomain_column),
        ("prefix_column", &m.prefix_column),
        ("domain_column", &m.domain_column),
        ("prefix", &m.prefix),
        ("char_list", &m.char_list),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    def = def
        .param("fetch_rows", ParamKind::Int, params::int(&m.fetch_rows))
        .param("check_domain", ParamKind::Int, params::int(&m.check_domain));
    let init = m.clone();
    def = def.on_init(move |core| {
        let chars = params::get_str(&init.char_list);
        if chars.is_empty() || !chars.is_ascii() {
            return Err("pdt: invalid pdt char list (ASCII characters, at least one)".into());
        }
        let url = params::get_str(&init.db_url);
        let pool = DbPool::open(core, &url).map_err(|e| format!("pdt: {e}"))?;
        let _ = init.pool.set(pool);
        init.load()
            .map_err(|e| format!("pdt: cannot load info from database: {e}"))
    });
    let rf = RouteType::REQUEST | RouteType::FAILURE;
    let igp = Some(fixup::f(fixup::igp));
    let (a, b, c, d) = (m.clone(), m.clone(), m.clone(), m.clone());
    def = def
        .cmd("prefix2domain", 0, rf, None, move |ctx, _| {
            a.translate(ctx, "*", 0, false)
        })
        .cmd("prefix2domain", 1, rf, igp.clone(), move |ctx, p| {
            let mode = p[0].int(ctx);
            let mode = if mode == 1 || mode == 2 { mode } else { 0 };
            b.translate(ctx, "*", mode, false)
        })
        .cmd("prefix2domain", 2, rf, igp, move |ctx, p| {
            let mode = p[0].int(ctx);
            let mode = if mode == 1 || mode == 2 { mode } else { 0 };
            let sd = p[1].int(ctx);
            if sd == 1 || sd == 2 {
                let host = ctx
                    .msg
                    .msg()
                    .from()
                    .ok()
                    .map(|f| f.uri.host_str.to_string());
                let Some(host) = host else {
                    lm_err!("pdt: cannot parse FROM header URI");
                    return -1;
                };
                c.translate(ctx, &host, mode, sd == 2)
            } else {
                c.translate(ctx, "*", mode, false)
            }
        })
        .cmd(
            "pd_translate",
            2,
            rf | RouteType::BRANCH,
            Some(Arc::new(|env, i, arg| {
                if i == 0 {
                    fixup::spve(env, i, arg)
                } else {
                    fixup::igp(env, i, arg)
                }
            })),
            move |ctx, p| {
                let sd = p[0].str(ctx).into_owned();
                let mode = p[1].int(ctx);
                let mode = if mode == 1 || mode == 2 { mode } else { 0 };
                d.translate(ctx, &sd, mode, false)
            },
        );
    let (r, l) = (m.clone(), m);
    def.rpc("pdt.reload", "Reload PDT database records", move |_| {
        r.load().map_err(|e| {
            lm_err!("pdt: cannot re-load pdt records from database: {e}");
            RpcError::new(500, "Reload Failed")
        })?;
        Ok(Json::Null)
    })
    .rpc("pdt.list", "List PDT memory records", move |p| {
        rpc_list(&l, p)
    })
}
