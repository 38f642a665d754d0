//! # mtree: prefix trees in memory
//!
//! Kamailio's `mtree` module: trees of (prefix, value) rows loaded from
//! the database at start (`mtree` definitions, or every tree of one table
//! with `db_table`), matched from the script with `mt_match(tree, value,
//! mode)` (the longest prefix's value, every matching value, or for type
//! 1 trees the destination ids by weight), reloaded and inspected over RPC
//! (`mtree.reload`, `mtree.list`, `mtree.summary`, `mtree.match`).
//! A reload builds new trees and swaps them in whole: a match sees the old
//! or the new set, never half of one.
#![forbid(unsafe_code)]

pub mod spec;
pub mod tree;

use spec::TreeSpec;
use sr_sdk::db::{Cond, DbPool, DbValue, Order};
use sr_sdk::fixup::Assign;
use sr_sdk::prelude::*;
use sr_sdk::rpc::param_opt_str;
use sr_sdk::RpcError;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};
use tree::{Added, Chars, TValue, Tree};

/// The module's state.
struct Mtree {
    db_url: Arc<RwLock<String>>,
    db_table: Arc<RwLock<String>>,
    tname_column: Arc<RwLock<String>>,
    tprefix_column: Arc<RwLock<String>>,
    tvalue_column: Arc<RwLock<String>>,
    char_list: Arc<RwLock<String>>,
    pv_value: Arc<RwLock<String>>,
    pv_values: Arc<RwLock<String>>,
    pv_dstid: Arc<RwLock<String>>,
    pv_weight: Arc<RwLock<String>>,
    pv_count: Arc<RwLock<String>>,
    fetch_rows: Arc<AtomicI64>,
    tree_type: Arc<AtomicI64>,
    ignore_dup: Arc<AtomicI64>,
    allow_dup: Arc<AtomicI64>,
    specs: RwLock<Vec<TreeSpec>>,
    chars: OnceLock<Chars>,
    pool: OnceLock<DbPool>,
    /// The trees, sorted by name; replaced whole by a reload.
    trees: RwLock<Arc<Vec<Tree>>>,
    /// `pv_value`, compiled when `mt_match` is fixed up.
    value_pv: OnceLock<Arc<dyn Assign>>,
    /// `pv_count`, likewise (any writable pseudo-variable).
    count_pv: OnceLock<Arc<dyn Assign>>,
    /// One reload at a time (two could each put back what the other
    /// replaced).
    reloading: std::sync::Mutex<()>,
}

impl Mtree {
    fn chars(&self) -> Result<&Chars, String> {
        if let Some(c) = self.chars.get() {
            return Ok(c);
        }
        let c = Chars::new(&params::get_str(&self.char_list))?;
        Ok(self.chars.get_or_init(|| c))
    }

    fn trees(&self) -> Arc<Vec<Tree>> {
        self.trees
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn set_trees(&self, t: Vec<Tree>) {
        match self.trees.write() {
            Ok(mut g) => *g = Arc::new(t),
            Err(e) => *e.into_inner() = Arc::new(t),
        }
    }

    fn add(&self, t: &mut Tree, prefix: &str, value: &str) -> Result<(), String> {
        let r = t.add(
            self.chars()?,
            prefix,
            value,
            params::get_int(&self.ignore_dup) != 0,
            params::get_int(&self.allow_dup) != 0,
        )?;
        if r == Added::Ignored {
            lm_notice!("mtree: prefix already allocated [{prefix}/{value}]");
        }
        Ok(())
    }

    /// Loads one defined tree from its table.
    fn load_tree(&self, def: &Tree) -> Result<Tree, String> {
        let pool = self.pool.get().ok_or("no db connection")?;
        let cols: Vec<String> = if def.cols.is_empty() {
            vec![
                params::get_str(&self.tprefix_column),
                params::get_str(&self.tvalue_column),
            ]
        } else {
            def.cols.clone()
        };
        let names: Vec<&str> = cols.iter().map(String::as_str).collect();
        let conds = if def.multi {
            vec![Cond::eq(
                &params::get_str(&self.tname_column),
                DbValue::str(&def.name),
            )]
        } else {
            vec![]
        };
        let rows = pool
            .with(|c| c.query(&def.dbtable, &conds, &names, None))
            .map_err(|e| format!("cannot load [{}] from {}: {e}", def.name, def.dbtable))?;
        let mut t = def.emptied();
        for row in &rows.rows {
            let prefix = row.first().and_then(DbValue::as_string).unwrap_or_default();
            let value = if cols.len() > 2 {
                row.get(1..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|v| v.as_string().unwrap_or_else(|| "*".to_string()))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                row.get(1).and_then(DbValue::as_string).unwrap_or_default()
            };
            if prefix.is_empty() || value.is_empty() {
                lm_err!("mtree: bad record in db (prefix [{prefix}], value [{value}]) - skipped");
                continue;
            }
            self.add(&mut t, &prefix, &value)
                .map_err(|e| format!("tree [{}]: {e}", def.name))?;
        }
        t.reload_count += 1;
        t.reload_time = sr_sdk::db::now() as u64;
        Ok(t)
    }

    /// Every tree of `db_table` (`tname`, `tprefix`, `tvalue`).
    fn load_table(&self) -> Result<Vec<Tree>, String> {
        let pool = self.pool.get().ok_or("no db connection")?;
        let table = params::get_str(&self.db_table);
        let (n, p, v) = (
            params::get_str(&self.tname_column),
            params::get_str(&self.tprefix_column),
            params::get_str(&self.tvalue_column),
        );
        let order = Order {
            col: n.clone(),
            desc: false,
        };
        let rows = pool
            .with(|c| {
                c.query(
                    &table,
                    &[],
                    &[n.as_str(), p.as_str(), v.as_str()],
                    Some(&order),
                )
            })
            .map_err(|e| format!("cannot load trees from {table}: {e}"))?;
        let ty = params::get_int(&self.tree_type);
        let mut trees: Vec<Tree> = Vec::new();
        for row in &rows.rows {
            let get = |i: usize| row.get(i).and_then(DbValue::as_string);
            let (Some(name), Some(prefix), Some(value)) = (get(0), get(1), get(2)) else {
                lm_err!("mtree: null fields in db - skipped");
                continue;
            };
            if name.is_empty() || prefix.is_empty() || value.is_empty() {
                lm_err!("mtree: bad values in db - skipped");
                continue;
            }
            let at = match trees.binary_search_by(|t| t.name.as_str().cmp(&name)) {
                Ok(i) => i,
                Err(i) => {
                    let mut t = Tree::new(&name, &table, vec![], ty, false);
                    t.reload_time = sr_sdk::db::now() as u64;
                    trees.insert(i, t);
                    i
                }
            };
            self.add(&mut trees[at], &prefix, &value)
                .map_err(|e| format!("tree [{name}]: {e}"))?;
        }
        Ok(trees)
    }

    /// Loads everything: the defined trees, or the table's.
    fn load_all(&self) -> Result<Vec<Tree>, String> {
        let specs = self.specs.read().map_err(|_| "poisoned")?.clone();
        if specs.is_empty() && !params::get_str(&self.db_table).is_empty() {
            return self.load_table();
        }
        let mut defs: Vec<Tree> = specs
            .iter()
            .map(|s| Tree::new(&s.name, &s.dbtable, s.cols.clone(), s.ty, s.multi))
            .collect();
        defs.sort_by(|a, b| a.name.cmp(&b.name));
        defs.iter().map(|d| self.load_tree(d)).collect()
    }

    fn uses_table(&self) -> bool {
        self.specs.read().map(|s| s.is_empty()).unwrap_or(false)
            && !params::get_str(&self.db_table).is_empty()
    }
}

/// The mtree API name (`bind::<MtreeApi>(core, MTREE_API)`, Kamailio's
/// `load_mtree_api`), registered at `mod_init`.
pub const MTREE_API: &str = "mtree";

/// What mtree offers other modules (lcr's `mt_pv_values` rules).
pub struct MtreeApi {
    m: Arc<Mtree>,
}

impl MtreeApi {
    /// `mt_match(tree, value, 2)` without the AVPs: every value of every
    /// prefix of `value` in tree `name` (shortest prefix first) as text,
    /// and whether the match succeeded (Kamailio's 1: something matched
    /// and every character was in `char_list`). A type 1 tree, or none
    /// by that name: nothing.
    pub fn match_values(&self, name: &str, value: &str) -> (Vec<String>, bool) {
        let trees = self.m.trees();
        let (Ok(i), Ok(chars)) = (
            trees.binary_search_by(|t| t.name.as_str().cmp(name)),
            self.m.chars(),
        ) else {
            return (Vec::new(), false);
        };
        let t = &trees[i];
        if t.ty == 1 {
            return (Vec::new(), false);
        }
        let (all, ok) = t.all(chars, value);
        let texts: Vec<String> = all
            .into_iter()
            .map(|(_, v)| match v {
                TValue::Str(s) => s,
                TValue::Int(n) => n.to_string(),
            })
            .collect();
        let matched = ok && !texts.is_empty();
        (texts, matched)
    }
}

/// An AVP parameter's name (`$avp(s:x)` → `x`), or an error naming it.
fn avp_param(cell: &RwLock<String>, what: &str) -> Result<String, String> {
    let spec = params::get_str(cell);
    if !spec.trim_start().starts_with("$avp(") {
        return Err(format!("{what} must be an AVP: [{spec}]"));
    }
    sr_sdk::avp::spec_name(&spec).ok_or_else(|| format!("invalid {what} [{spec}]"))
}

fn tvalue_value(v: &TValue) -> Value<'static> {
    match v {
        TValue::Str(s) => Value::Str(s.clone().into()),
        TValue::Int(i) => Value::Int(i64::from(*i)),
    }
}

/// `mt_match(tree, value, mode)`: 1 when something matched, -1 when not
/// (or no such tree).
fn mt_match(m: &Mtree, ctx: &mut Ctx<'_>, p: &[Fixed]) -> i32 {
    let name = p[0].str(ctx).into_owned();
    let tomatch = p[1].str(ctx).into_owned();
    let mode = p[2].int(ctx);
    let trees = m.trees();
    let Ok(i) = trees.binary_search_by(|t| t.name.as_str().cmp(&name)) else {
        return -1;
    };
    let t = &trees[i];
    let Ok(chars) = m.chars() else {
        return -1;
    };
    if t.ty == 0 || t.ty == 2 {
        if mode == 2 {
            let Ok(avp) = avp_param(&m.pv_values, "pv_values") else {
                return -1;
            };
            ctx.msg.avps.remove_all(&avp);
            let (all, ok) = t.all(chars, &tomatch);
            for (_, v) in &all {
                ctx.msg.avps.push(&avp, tvalue_value(v));
            }
            return if ok && !all.is_empty() { 1 } else { -1 };
        }
        let Some((v, _)) = t.longest(chars, &tomatch) else {
            return -1;
        };
        let Some(pv) = m.value_pv.get() else {
            return -1;
        };
        if let Err(e) = pv.assign(ctx, tvalue_value(&v)) {
            lm_err!("mtree: setting PV failed: {e}");
            return -2;
        }
        return 1;
    }
    let (Ok(dst), Ok(weight)) = (
        avp_param(&m.pv_dstid, "pv_dstid"),
        avp_param(&m.pv_weight, "pv_weight"),
    ) else {
        return -1;
    };
    let Some((list, _)) = t.dw(chars, &tomatch) else {
        return -1;
    };
    for (d, w) in &list {
        ctx.msg.avps.push(&weight, Value::Int(i64::from(*w as i32)));
        ctx.msg.avps.push(&dst, Value::Int(i64::from(*d as i32)));
    }
    if let Some(pv) = m.count_pv.get() {
        if let Err(e) = pv.assign(ctx, Value::Int(list.len() as i64)) {
            lm_err!("mtree: setting the count failed: {e}");
        }
    }
    1
}

fn tvalue_json(v: &TValue) -> Json {
    match v {
        TValue::Str(s) => json!(s),
        TValue::Int(i) => json!(i),
    }
}

/// Trees whose name starts with `filter` (all when `None` or `.`).
fn selected<'a>(trees: &'a [Tree], filter: Option<&'a str>) -> impl Iterator<Item = &'a Tree> + 'a {
    let f = filter.filter(|f| *f != ".");
    trees
        .iter()
        .filter(move |t| f.is_none_or(|f| t.name.starts_with(f)))
}

fn rpc_summary(m: &Mtree, params: &[Json]) -> Result<Json, RpcError> {
    let trees = m.trees();
    if trees.is_empty() {
        return Err(RpcError::new(500, "Empty tree list"));
    }
    let filter = param_opt_str(params, 0);
    let out: Vec<Json> = selected(&trees, filter.as_deref())
        .map(|t| {
            json!({
                "table": t.name,
                "item": {
                    "ttype": t.ty,
                    "memsize": t.memsize,
                    "nrnodes": t.nrnodes,
                    "nritems": t.nritems,
                    "reload_count": t.reload_count,
                    "reload_time": t.reload_time,
                }
            })
        })
        .collect();
    if out.is_empty() {
        return Err(RpcError::new(404, "Tree not found"));
    }
    Ok(Json::Array(out))
}

fn rpc_list(m: &Mtree, params: &[Json]) -> Result<Json, RpcError> {
    let trees = m.trees();
    if trees.is_empty() {
        return Err(RpcError::new(500, "Empty tree list."));
    }
    let chars = m.chars().map_err(|e| RpcError::new(500, e))?;
    let filter = param_opt_str(params, 0);
    let mut out = Vec::new();
    for t in selected(&trees, filter.as_deref()) {
        for (prefix, values) in t.entries(chars) {
            out.push(json!({
                "tname": t.name,
                "tprefix": prefix,
                "tvalue": values.iter().map(tvalue_json).collect::<Vec<_>>(),
            }));
        }
    }
    Ok(Json::Array(out))
}

fn rpc_reload(m: &Mtree, params: &[Json]) -> Result<Json, RpcError> {
    let _one = m.reloading.lock().unwrap_or_else(|e| e.into_inner());
    if m.uses_table() {
        let t = m.load_table().map_err(|e| {
            lm_err!("mtree: RPC failed: cannot reload mtrees from database: {e}");
            RpcError::new(500, "Can not reload Mtrees from database.")
        })?;
        m.set_trees(t);
        return Ok(json!("Ok. Mtrees reloaded."));
    }
    let trees = m.trees();
    if trees.is_empty() {
        return Err(RpcError::new(500, "No Mtrees defined."));
    }
    let filter = param_opt_str(params, 0);
    let mut new: Vec<Tree> = trees.iter().cloned().collect();
    let mut any = false;
    for t in new.iter_mut() {
        if selected(std::slice::from_ref(t), filter.as_deref())
            .next()
            .is_none()
        {
            continue;
        }
        *t = m.load_tree(t).map_err(|e| {
            lm_err!("mtree: RPC failed: cannot reload mtrees from database: {e}");
            RpcError::new(500, "Mtree Reload Failed")
        })?;
        any = true;
    }
    if !any {
        return Err(RpcError::new(500, "Can not find specified Mtree"));
    }
    m.set_trees(new);
    Ok(json!("Ok. Mtree reloaded."))
}

fn rpc_match(m: &Mtree, params: &[Json]) -> Result<Json, RpcError> {
    let trees = m.trees();
    if trees.is_empty() {
        return Err(RpcError::new(500, "Empty tree list."));
    }
    let (Some(name), Some(tomatch), Some(mode)) = (
        param_opt_str(params, 0),
        param_opt_str(params, 1),
        params.get(2).and_then(|v| match v {
            Json::Number(n) => n.as_i64(),
            Json::String(s) => s.trim().parse().ok(),
            _ => None,
        }),
    ) else {
        return Err(RpcError::new(500, "Invalid Parameters"));
    };
    if mode != 0 && mode != 2 {
        return Err(RpcError::new(500, "Invalid parameter 'mode'"));
    }
    let Ok(i) = trees.binary_search_by(|t| t.name.as_str().cmp(&name)) else {
        return Err(RpcError::new(404, "Tree not found"));
    };
    let t = &trees[i];
    let chars = m.chars().map_err(|e| RpcError::new(500, e))?;
    let not_found = || RpcError::new(404, "Prefix not found");
    let prefix = |n: usize| {
        tomatch
            .get(..n.min(tomatch.len()))
            .unwrap_or(&tomatch)
            .to_string()
    };
    let mut out = vec![json!(t.name)];
    if t.ty == 0 || t.ty == 2 {
        if mode == 2 {
            let (all, ok) = t.all(chars, &tomatch);
            if !ok || all.is_empty() {
                return Err(not_found());
            }
            for (l, v) in all {
                out.push(json!({"PREFIX": prefix(l), "TVALUE": tvalue_json(&v)}));
            }
        } else {
            let (v, l) = t.longest(chars, &tomatch).ok_or_else(not_found)?;
            out.push(json!({"PREFIX": prefix(l), "TVALUE": tvalue_json(&v)}));
        }
    } else {
        let (list, l) = t.dw(chars, &tomatch).ok_or_else(not_found)?;
        for (d, w) in list {
            out.push(json!({"PREFIX": prefix(l), "WEIGHT": w, "DSTID": d}));
        }
    }
    Ok(Json::Array(out))
}

/// The module definition.
pub fn module() -> ModuleDef {
    let m = Arc::new(Mtree {
        db_url: params::str_cell("mysql://kamailio:kamailiorw@localhost/kamailio"),
        db_table: params::str_cell(""),
        tname_column: params::str_cell("tname"),
        tprefix_column: params::str_cell("tprefix"),
        tvalue_column: params::str_cell("tvalue"),
        char_list: params::str_cell("0123456789"),
        pv_value: params::str_cell("$avp(s:tvalue)"),
        pv_values: params::str_cell("$avp(s:tvalues)"),
        pv_dstid: params::str_cell("$avp(tdstid)"),
        pv_weight: params::str_cell("$avp(tweight)"),
        pv_count: params::str_cell("$avp(tcount)"),
        fetch_rows: params::int_cell(1000),
        tree_type: params::int_cell(0),
        ignore_dup: params::int_cell(0),
        allow_dup: params::int_cell(0),
        specs: RwLock::new(Vec::new()),
        chars: OnceLock::new(),
        pool: OnceLock::new(),
        trees: RwLock::new(Arc::new(Vec::new())),
        value_pv: OnceLock::new(),
        count_pv: OnceLock::new(),
        reloading: std::sync::Mutex::new(()),
    });
    let (sp, init) = (m.clone(), m.clone());
    let mut def = ModuleDef::new("mtree").param("mtree", ParamKind::Str, move |v| {
        let v = match v {
            ParamValue::Str(s) => s,
            ParamValue::Int(i) => i.to_string(),
        };
        let s = spec::parse(&v)?;
        let mut all = sp.specs.write().map_err(|_| "poisoned".to_string())?;
        if all.iter().any(|x| x.name == s.name) {
            return Err(format!("duplicate tree with name [{}]", s.name));
        }
        all.push(s);
        Ok(())
    });
    for (name, cell) in [
        ("db_url", &m.db_url),
        ("db_table", &m.db_table),
        ("tname_column", &m.tname_column),
        ("tprefix_column", &m.tprefix_column),
        ("tvalue_column", &m.tvalue_column),
        ("char_list", &m.char_list),
        ("pv_value", &m.pv_value),
        ("pv_values", &m.pv_values),
        ("pv_dstid", &m.pv_dstid),
        ("pv_weight", &m.pv_weight),
        ("pv_count", &m.pv_count),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    for (name, cell) in [
        ("fetch_rows", &m.fetch_rows),
        ("mt_tree_type", &m.tree_type),
        ("mt_ignore_duplicates", &m.ignore_dup),
        ("mt_allow_duplicates", &m.allow_dup),
    ] {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    def = def.on_init(move |core| {
        init.chars().map_err(|e| format!("mtree: {e}"))?;
        for (cell, what) in [
            (&init.pv_values, "pv_values"),
            (&init.pv_dstid, "pv_dstid"),
            (&init.pv_weight, "pv_weight"),
        ] {
            avp_param(cell, what).map_err(|e| format!("mtree: {e}"))?;
        }
        let ty = params::get_int(&init.tree_type);
        if !(0..=2).contains(&ty) {
            return Err(format!("mtree: unknown mt_tree_type <{ty}> (0, 1 or 2)"));
        }
        if init.specs.read().map_err(|_| "poisoned")?.is_empty()
            && params::get_str(&init.db_table).is_empty()
        {
            return Err("mtree: no mtree defined (set the mtree or db_table parameter)".into());
        }
        let url = params::get_str(&init.db_url);
        let pool = DbPool::open(core, &url).map_err(|e| format!("mtree: {e}"))?;
        let _ = init.pool.set(pool);
        let trees = init
            .load_all()
            .map_err(|e| format!("mtree: cannot load info from database: {e}"))?;
        init.set_trees(trees);
        core.register_api(MTREE_API, Arc::new(MtreeApi { m: init.clone() }));
        Ok(())
    });
    let (fx, c) = (m.clone(), m.clone());
    let fixups: fixup::FixupFn = Arc::new(move |env, i, arg| {
        if i == 0 && fx.value_pv.get().is_none() {
            for (cell, slot, what) in [
                (&fx.pv_value, &fx.value_pv, "pv_value"),
                (&fx.pv_count, &fx.count_pv, "pv_count"),
            ] {
                let spec = params::get_str(cell);
                let pv = env
                    .compile_lvalue(&spec)
                    .map_err(|e| format!("{what} [{spec}] is not writable: {e}"))?;
                let _ = slot.set(pv);
            }
        }
        match i {
            2 => fixup::igp(env, i, arg),
            _ => fixup::spve(env, i, arg),
        }
    });
    def = def.cmd(
        "mt_match",
        3,
        RouteType::ANY,
        Some(fixups),
        move |ctx, p| mt_match(&c, ctx, p),
    );
    let r = m.clone();
    def = def.rpc(
        "mtree.summary",
        "Print summary of loaded mtree tables",
        move |p| rpc_summary(&r, p),
    );
    let r = m.clone();
    def = def.rpc(
        "mtree.reload",
        "Reload mtrees from database to memory",
        move |p| rpc_reload(&r, p),
    );
    let r = m.clone();
    def = def.rpc(
        "mtree.match",
        "Match prefix value against mtree",
        move |p| rpc_match(&r, p),
    );
    let r = m.clone();
    def.rpc(
        "mtree.list",
        "List the content of one or all trees",
        move |p| rpc_list(&r, p),
    )
}
