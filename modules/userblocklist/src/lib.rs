//! # userblocklist: blocked and allowed number prefixes
//!
//! Kamailio's `userblocklist` module: per-user prefix lists read from the
//! `userblocklist` table at each check (`check_user_blocklist`,
//! `check_user_allowlist`), and global lists (`globalblocklist` or any
//! table named in `check_blocklist(table)` / `check_allowlist(table)`)
//! kept in memory and reloaded over RPC. The longest matching prefix
//! decides; a number is the Request-URI's user unless given.
#![forbid(unsafe_code)]

pub mod trie;

use sr_sdk::db::{Cond, DbPool, DbValue};
use sr_sdk::prelude::*;
use sr_sdk::RpcError;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};
use trie::{match_key, Trie, MAX_NUMBER_LEN};

/// The module's state.
struct Ubl {
    db_url: Arc<RwLock<String>>,
    user_table: Arc<RwLock<String>>,
    user_username: Arc<RwLock<String>>,
    user_domain: Arc<RwLock<String>>,
    user_prefix: Arc<RwLock<String>>,
    user_allow: Arc<RwLock<String>>,
    global_table: Arc<RwLock<String>>,
    global_prefix: Arc<RwLock<String>>,
    global_allow: Arc<RwLock<String>>,
    use_domain: Arc<AtomicI64>,
    match_mode: Arc<AtomicI64>,
    pool: OnceLock<DbPool>,
    /// The in-memory lists, per table (the global one first once loaded).
    sources: RwLock<Vec<(String, Arc<Trie>)>>,
    /// One reload at a time (two could put back what the other replaced).
    reloading: std::sync::Mutex<()>,
}

/// A table name fixed up for `check_blocklist(table)`.
struct Table(String);

impl Ubl {
    fn branches(&self) -> u8 {
        if params::get_int(&self.match_mode) == 128 {
            128
        } else {
            10
        }
    }

    /// Reads (prefix, allow) rows into a new trie.
    fn build(&self, rows: &sr_sdk::db::Rows) -> Trie {
        let mut t = Trie::new(self.branches());
        for row in &rows.rows {
            let (Some(p), Some(a)) = (row.first(), row.get(1)) else {
                continue;
            };
            let allow = match a {
                DbValue::Int(i) => *i != 0,
                DbValue::BigInt(i) => *i != 0,
                DbValue::Null => continue,
                other => match other.as_string().and_then(|s| s.trim().parse::<i64>().ok()) {
                    Some(i) => i != 0,
                    None => {
                        lm_err!("userblocklist: got invalid result type from query");
                        continue;
                    }
                },
            };
            let Some(prefix) = p.as_string() else {
                continue;
            };
            if !t.insert(&prefix, allow) {
                lm_err!("userblocklist: could not insert values into trie ([{prefix}])");
            }
        }
        t
    }

    /// A global list from its table.
    fn load(&self, table: &str) -> Result<Trie, String> {
        let pool = self.pool.get().ok_or("no database connection")?;
        let (p, a) = (
            params::get_str(&self.global_prefix),
            params::get_str(&self.global_allow),
        );
        let rows = pool
            .with(|c| c.query(table, &[], &[p.as_str(), a.as_str()], None))
            .map_err(|e| format!("cannot load {table}: {e}"))?;
        Ok(self.build(&rows))
    }

    /// Adds `table` to the in-memory lists (loaded now) unless there.
    fn add_source(&self, table: &str) {
        if self.source(table).is_some() || self.pool.get().is_none() {
            return;
        }
        let t = self.load(table).unwrap_or_else(|e| {
            lm_err!("userblocklist: {e}");
            Trie::new(self.branches())
        });
        if let Ok(mut s) = self.sources.write() {
            if !s.iter().any(|(n, _)| n == table) {
                s.push((table.to_string(), Arc::new(t)));
            }
        }
    }

    fn source(&self, table: &str) -> Option<Arc<Trie>> {
        self.sources
            .read()
            .ok()?
            .iter()
            .find(|(n, _)| n == table)
            .map(|(_, t)| t.clone())
    }

    /// Loads every in-memory list again; an error when one cannot be.
    fn reload(&self) -> Result<(), String> {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let names: Vec<String> = self
            .sources
            .read()
            .map_err(|_| "poisoned")?
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        let mut fresh = Vec::new();
        for n in names {
            let t = self.load(&n)?;
            fresh.push((n, Arc::new(t)));
        }
        let mut s = self.sources.write().map_err(|_| "poisoned")?;
        // Tables added meanwhile (a first check of a new table) stay.
        for (n, t) in s.iter() {
            if !fresh.iter().any(|(f, _)| f == n) {
                fresh.push((n.clone(), t.clone()));
            }
        }
        *s = fresh;
        Ok(())
    }

    /// A user's list from `table`.
    fn user_trie(
        &self,
        table: &str,
        user: &str,
        domain: &str,
        use_domain: bool,
    ) -> Result<Trie, String> {
        let pool = self.pool.get().ok_or("no database connection")?;
        let mut conds = vec![Cond::eq(
            &params::get_str(&self.user_username),
            DbValue::str(user),
        )];
        if use_domain {
            conds.push(Cond::eq(
                &params::get_str(&self.user_domain),
                DbValue::str(domain),
            ));
        }
        let (p, a) = (
            params::get_str(&self.user_prefix),
            params::get_str(&self.user_allow),
        );
        let rows = pool
            .with(|c| c.query(table, &conds, &[p.as_str(), a.as_str()], None))
            .map_err(|e| format!("error while executing query on db table '{table}': {e}"))?;
        Ok(self.build(&rows))
    }
}

/// The Request-URI's user, as the number to check.
fn ruri_user(ctx: &mut Ctx<'_>) -> Option<String> {
    if !ctx.msg.is_request() {
        lm_err!("userblocklist: SIP msg is not a request");
        return None;
    }
    let uri = ctx.msg.ruri_parsed().ok()?;
    uri.user.map(str::to_string)
}

/// `check_user_blocklist` (allow = false) and `check_user_allowlist`.
fn check_user(u: &Ubl, ctx: &mut Ctx<'_>, p: &[Fixed], allowlist: bool) -> i32 {
    let user = p[0].str(ctx).into_owned();
    let domain = p[1].str(ctx).into_owned();
    let number = match p.get(2) {
        Some(f) => f.str(ctx).into_owned(),
        None => match ruri_user(ctx) {
            Some(n) => n,
            None => {
                lm_err!("userblocklist: cannot parse msg URI");
                return -1;
            }
        },
    };
    let table = p
        .get(3)
        .map(|f| f.str(ctx).into_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| params::get_str(&u.user_table));
    if number.len() > MAX_NUMBER_LEN {
        lm_err!("userblocklist: number too long");
        return -1;
    }
    let use_domain = params::get_int(&u.use_domain) != 0;
    let t = match u.user_trie(&table, &user, &domain, use_domain) {
        Ok(t) => t,
        Err(e) => {
            lm_err!("userblocklist: cannot build d-tree: {e}");
            return -1;
        }
    };
    match t.longest(match_key(&number, u.branches())) {
        Some(true) => 1,
        Some(false) => -1,
        None if allowlist => -1,
        None => 1,
    }
}

/// `check_blocklist` / `check_allowlist` on an in-memory list.
fn check_global(u: &Ubl, ctx: &mut Ctx<'_>, table: &str, allowlist: bool) -> i32 {
    let Some(number) = ruri_user(ctx).filter(|n| n.len() <= MAX_NUMBER_LEN) else {
        lm_err!("userblocklist: cannot parse msg URI");
        return -1;
    };
    u.add_source(table);
    let Some(t) = u.source(table) else {
        lm_err!("userblocklist: invalid table '{table}'");
        return -1;
    };
    match t.longest(match_key(&number, u.branches())) {
        Some(true) => 1,
        Some(false) => -1,
        None if allowlist => -1,
        None => 1,
    }
}

fn param_text(params: &[Json], i: usize) -> Option<String> {
    match params.get(i)? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn truth(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// `userblocklist.check_blocklist` / `check_allowlist` (the global list).
fn rpc_check(u: &Ubl, params: &[Json], allowlist: bool) -> Result<Json, RpcError> {
    let prefix = param_text(params, 0)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| RpcError::new(500, "Check failed: 1 argument needed (\"prefix\")"))?;
    let table = params::get_str(&u.global_table);
    let t = u
        .source(&table)
        .ok_or_else(|| RpcError::new(500, "Check failed"))?;
    let key: String = prefix.chars().take(MAX_NUMBER_LEN).collect();
    let m = t.longest(match_key(&key, u.branches()));
    Ok(if allowlist {
        json!({"prefix": prefix, "allowlisted": truth(m == Some(true))})
    } else {
        json!({"prefix": prefix, "blocklisted": truth(m == Some(false))})
    })
}

/// `userblocklist.check_userblocklist` / `check_userallowlist`.
fn rpc_check_user(u: &Ubl, params: &[Json], allowlist: bool) -> Result<Json, RpcError> {
    let bad = || {
        RpcError::new(
            500,
            "Check failed: 2 or 3 arguments needed (\"prefix\" \"user\" \"domain\"(optional))",
        )
    };
    let prefix = param_text(params, 0)
        .filter(|p| !p.is_empty())
        .ok_or_else(bad)?;
    let user = param_text(params, 1)
        .filter(|p| !p.is_empty())
        .ok_or_else(bad)?;
    let domain = param_text(params, 2).unwrap_or_default();
    let table = params::get_str(&u.user_table);
    let t = u
        .user_trie(&table, &user, &domain, !domain.is_empty())
        .map_err(|e| {
            lm_err!("userblocklist: cannot build d-tree: {e}");
            RpcError::new(500, "Check failed")
        })?;
    let key: String = prefix.chars().take(MAX_NUMBER_LEN).collect();
    let m = t.longest(match_key(&key, u.branches()));
    Ok(if allowlist {
        json!({"prefix": prefix, "user": user, "domain": domain, "allowlisted": truth(m == Some(true))})
    } else {
        json!({"prefix": prefix, "user": user, "domain": domain, "blocklisted": truth(m == Some(false))})
    })
}

/// The module definition.
pub fn module() -> ModuleDef {
    let u = Arc::new(Ubl {
        db_url: params::str_cell("mysql://kamailioro:kamailioro@localhost/kamailio"),
        user_table: params::str_cell("userblocklist"),
        user_username: params::str_cell("username"),
        user_domain: params::str_cell("domain"),
        user_prefix: params::str_cell("prefix"),
        user_allow: params::str_cell("allowlist"),
        global_table: params::str_cell("globalblocklist"),
        global_prefix: params::str_cell("prefix"),
        global_allow: params::str_cell("allowlist"),
        use_domain: params::int_cell(0),
        match_mode: params::int_cell(10),
        pool: OnceLock::new(),
        sources: RwLock::new(Vec::new()),
        reloading: std::sync::Mutex::new(()),
    });
    let mut def = ModuleDef::new("userblocklist");
    let unused = params::str_cell("");
    for (name, cell) in [
        ("db_url", &u.db_url),
        ("userblocklist_table", &u.user_table),
        ("userblocklist_username_col", &u.user_username),
        ("userblocklist_domain_col", &u.user_domain),
        ("userblocklist_prefix_col", &u.user_prefix),
        ("userblocklist_allowlist_col", &u.user_allow),
        ("globalblocklist_table", &u.global_table),
        ("globalblocklist_prefix_col", &u.global_prefix),
        ("globalblocklist_allowlist_col", &u.global_allow),
        // Not read by the checks (as in Kamailio), accepted.
        ("userblocklist_id_col", &unused),
        ("globalblocklist_id_col", &unused),
        ("globalblocklist_description_col", &unused),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    def = def
        .param("use_domain", ParamKind::Int, params::int(&u.use_domain))
        .param("match_mode", ParamKind::Int, params::int(&u.match_mode));
    let init = u.clone();
    def = def.on_init(move |core| {
        let mode = params::get_int(&init.match_mode);
        if mode != 10 && mode != 128 {
            return Err(format!(
                "userblocklist: match_mode must be 10 or 128, not {mode}"
            ));
        }
        let pool = DbPool::open(core, &params::get_str(&init.db_url))
            .map_err(|e| format!("userblocklist: {e}"))?;
        let _ = init.pool.set(pool);
        // The global list is always kept (Kamailio loads it in every
        // worker at start).
        init.add_source(&params::get_str(&init.global_table));
        Ok(())
    });
    let user_fixup: fixup::FixupFn = Arc::new(|env, i, arg| {
        if i < 3 && arg.text().is_empty() {
            return Err(format!("no parameter {}", i + 1));
        }
        fixup::spve(env, i, arg)
    });
    for (name, allow) in [
        ("check_user_blocklist", false),
        ("check_user_allowlist", true),
    ] {
        for nargs in 2..=4usize {
            let c = u.clone();
            def = def.cmd(
                name,
                nargs,
                RouteType::REQUEST | RouteType::FAILURE,
                Some(user_fixup.clone()),
                move |ctx, p| check_user(&c, ctx, p, allow),
            );
        }
    }
    for (name, allow) in [("check_blocklist", false), ("check_allowlist", true)] {
        let fx = u.clone();
        let table_fixup: fixup::FixupFn = Arc::new(move |env, i, arg| {
            let f = fixup::const_str(env, i, arg)?;
            let t = f.as_const_str().unwrap_or_default().to_string();
            if t.is_empty() {
                return Err("no table name".into());
            }
            fx.add_source(&t);
            Ok(Fixed::Custom(Arc::new(Table(t))))
        });
        let c = u.clone();
        def = def.cmd(
            name,
            1,
            RouteType::REQUEST | RouteType::FAILURE,
            Some(table_fixup),
            move |ctx, p| {
                let t = p[0]
                    .custom::<Table>()
                    .map_or("", |t| t.0.as_str())
                    .to_string();
                check_global(&c, ctx, &t, allow)
            },
        );
    }
    let c = u.clone();
    def = def.cmd(
        "check_blocklist",
        0,
        RouteType::REQUEST | RouteType::FAILURE,
        None,
        move |ctx, _p| {
            let t = params::get_str(&c.global_table);
            check_global(&c, ctx, &t, false)
        },
    );
    let r = u.clone();
    def = def.rpc(
        "userblocklist.reload_blocklist",
        "Reload user blocklist records.",
        move |_| {
            r.reload().map_err(|e| {
                lm_err!("userblocklist: {e}");
                RpcError::new(500, "Reload failed")
            })?;
            Ok(json!("200 ok"))
        },
    );
    let r = u.clone();
    def = def.rpc(
        "userblocklist.dump_blocklist",
        "Dump user blocklist records.",
        move |_| {
            let t = r
                .source(&params::get_str(&r.global_table))
                .ok_or_else(|| RpcError::new(500, "Dump blocklist failed"))?;
            let col = params::get_str(&r.user_allow);
            let out: Vec<Json> = t
                .dump()
                .into_iter()
                .map(|(p, allow)| {
                    let mut m = JsonMap::new();
                    m.insert("prefix".into(), json!(p));
                    m.insert(col.clone(), json!(if allow { "1" } else { "0" }));
                    Json::Object(m)
                })
                .collect();
            Ok(Json::Array(out))
        },
    );
    for (name, doc, allow) in [
        (
            "userblocklist.check_blocklist",
            "Check blocklist records.",
            false,
        ),
        (
            "userblocklist.check_allowlist",
            "Check allowlist records.",
            true,
        ),
    ] {
        let r = u.clone();
        def = def.rpc(name, doc, move |p| rpc_check(&r, p, allow));
    }
    for (name, doc, allow) in [
        (
            "userblocklist.check_userblocklist",
            "Check user blocklist records.",
            false,
        ),
        (
            "userblocklist.check_userallowlist",
            "Check user allowlist records.",
            true,
        ),
    ] {
        let r = u.clone();
        def = def.rpc(name, doc, move |p| rpc_check_user(&r, p, allow));
    }
    def
}
