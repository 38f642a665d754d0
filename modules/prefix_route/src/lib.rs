//! # prefix_route: a route block chosen by a prefix
//!
//! Kamailio's `prefix_route` module. The `prefix_route` table maps
//! prefixes of digits to names of `route` blocks; `prefix_route()` finds
//! the longest prefix of the Request-URI's user (or of its parameter) and
//! runs that block, then stops the script (`exit` parameter). The table
//! is read at start and on `prefix_route.reload` (swapped in whole, kept
//! when the new one has an error).
#![forbid(unsafe_code)]

pub mod tree;

use sr_sdk::db::{DbPool, DbValue};
use sr_sdk::prelude::*;
use sr_sdk::{RouteId, RpcError};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use tree::{Node, Target};

/// The most digits a prefix may have.
const MAX_DIGITS: usize = 256;

/// The module's state.
struct PrefixRoute {
    db_url: Arc<RwLock<String>>,
    db_table: Arc<RwLock<String>>,
    exit: Arc<AtomicI64>,
    pool: OnceLock<DbPool>,
    core: OnceLock<Weak<dyn Core>>,
    tree: RwLock<Arc<Node>>,
    reloading: Mutex<()>,
}

impl PrefixRoute {
    fn tree(&self) -> Arc<Node> {
        self.tree
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Reads the table into a new tree and swaps it in; an error keeps
    /// the tree in use.
    fn load(&self, core: &dyn Core) -> Result<usize, String> {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let pool = self.pool.get().ok_or("no db connection")?;
        let table = params::get_str(&self.db_table);
        let rows = pool
            .with(|c| c.query(&table, &[], &["prefix", "route", "comment"], None))
            .map_err(|e| format!("cannot read table {table}: {e}"))?;
        let mut root = Node::default();
        for row in &rows.rows {
            let get = |i: usize| row.get(i).and_then(DbValue::as_string);
            let (Some(prefix), Some(route)) = (get(0), get(1)) else {
                lm_err!(
                    "prefix_route: bad record in table {table} (NULL prefix or route), skipping"
                );
                continue;
            };
            // (The tree has a level per digit: a prefix is at most 64
            // characters in Kamailio's table, longer ones are refused.)
            if prefix.bytes().filter(u8::is_ascii_digit).count() > MAX_DIGITS {
                return Err(format!(
                    "prefix {prefix:.20}... has more than {MAX_DIGITS} digits"
                ));
            }
            let id = route_of(core, &route)
                .ok_or_else(|| format!("route name '{route}' is not defined"))?;
            let target = Target {
                id,
                name: route.chars().take(15).collect(),
            };
            if let Some(old) = root.add(&prefix, target) {
                lm_err!("prefix_route: prefix {prefix} already set to {}", old.name);
            }
        }
        lm_notice!(
            "prefix_route: Total prefix routes loaded: {}",
            rows.rows.len()
        );
        match self.tree.write() {
            Ok(mut g) => *g = Arc::new(root),
            Err(e) => *e.into_inner() = Arc::new(root),
        }
        Ok(rows.rows.len())
    }

    /// Runs the route of `user`'s longest prefix: 0 (the script stops,
    /// `exit` on) or 1 after it ran, -1 when no prefix matches or the
    /// route failed.
    fn route(&self, ctx: &mut Ctx<'_>, user: &str) -> i32 {
        let tree = self.tree();
        let Some(t) = tree.get(user) else {
            return -1;
        };
        let r = ctx.core.run_route(t.id, ctx.route, ctx.msg);
        if r.code < 0 {
            lm_err!("prefix_route: run_actions failed ({})", r.code);
            return -1;
        }
        if params::get_int(&self.exit) != 0 {
            0
        } else {
            1
        }
    }

    fn dump(&self) -> Json {
        let mut text = String::from("Prefix route tree:\n reference count: 1\n");
        self.tree().print(&mut text, 0);
        // Kamailio reads its dump back line by line and cuts each line's
        // last character (the newline; of the last line, a space).
        let lines: Vec<Json> = text
            .split_inclusive('\n')
            .map(|l| {
                let mut l = l.to_string();
                l.pop();
                Json::String(l)
            })
            .collect();
        Json::Array(lines)
    }
}

/// A `route[name]` block of the script.
fn route_of(core: &dyn Core, name: &str) -> Option<RouteId> {
    core.route_id(RouteType::REQUEST, name)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let m = Arc::new(PrefixRoute {
        db_url: params::str_cell("mysql://kamailio:kamailiorw@localhost/kamailio"),
        db_table: params::str_cell("prefix_route"),
        exit: params::int_cell(1),
        pool: OnceLock::new(),
        core: OnceLock::new(),
        tree: RwLock::new(Arc::new(Node::default())),
        reloading: Mutex::new(()),
    });
    let mut def = ModuleDef::new("prefix_route")
        .param("db_url", ParamKind::Str, params::string(&m.db_url))
        .param("db_table", ParamKind::Str, params::string(&m.db_table))
        .param("exit", ParamKind::Int, params::int(&m.exit));
    let init = m.clone();
    def = def.on_init(move |core| {
        let url = params::get_str(&init.db_url);
        let pool = DbPool::open(core, &url).map_err(|e| format!("prefix_route: {e}"))?;
        let _ = init.pool.set(pool);
        if let Some(h) = core.handle() {
            let _ = init.core.set(h);
        }
        Ok(())
    });
    // The route blocks are known once the script is compiled, after
    // mod_init: the table is read before the workers start.
    let ci = m.clone();
    def = def.on_child_init(move |core, rank| {
        if rank != sr_sdk::rank::PROC_INIT {
            return Ok(());
        }
        ci.load(core)
            .map(|_| ())
            .map_err(|e| format!("prefix_route: db_load() failed: {e}"))
    });
    let (a, b) = (m.clone(), m.clone());
    def = def
        .cmd(
            "prefix_route",
            0,
            RouteType::REQUEST | RouteType::BRANCH | RouteType::FAILURE,
            None,
            move |ctx, _| {
                let user = match ctx.msg.ruri_parsed() {
                    Ok(u) => u.user.map(str::to_string),
                    Err(_) => {
                        lm_err!("prefix_route: could not get username in Request URI (-1)");
                        return -1;
                    }
                };
                match user {
                    Some(u) => a.route(ctx, &u),
                    None => {
                        lm_err!("prefix_route: could not get username in Request URI (-2)");
                        -2
                    }
                }
            },
        )
        .cmd(
            "prefix_route",
            1,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            move |ctx, p| {
                let user = p[0].str(ctx).into_owned();
                b.route(ctx, &user)
            },
        );
    let (r, d) = (m.clone(), m);
    def.rpc(
        "prefix_route.reload",
        "Reload prefix routes from DB",
        move |_| {
            let core = r.core.get().and_then(Weak::upgrade);
            let Some(core) = core else {
                return Err(RpcError::new(400, "failed to reload prefix routes"));
            };
            match r.load(&*core) {
                Ok(_) => Ok(Json::String("Prefix routes reloaded successfully".into())),
                Err(e) => {
                    lm_err!("prefix_route: db load failed: {e}");
                    Err(RpcError::new(400, "failed to reload prefix routes"))
                }
            }
        },
    )
    .rpc(
        "prefix_route.dump",
        "Dump the prefix route tree",
        move |_| Ok(d.dump()),
    )
}
