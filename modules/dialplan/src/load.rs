//! The module's parameters and the loading of the `dialplan` table.

use crate::rules::{Env, Row, Rule, Table};
use sr_sdk::db::{self, schema, DbPool, DbValue, Order};
use sr_sdk::prelude::*;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};

/// The parameters (`modparam("dialplan", ...)`).
pub struct Settings {
    db_url: Arc<RwLock<String>>,
    table: Arc<RwLock<String>>,
    cols: [Arc<RwLock<String>>; 8],
    attrs_pvar: Arc<RwLock<String>>,
    fetch_rows: Arc<AtomicI64>,
    match_dynamic: Arc<AtomicI64>,
    append_branch: Arc<AtomicI64>,
    reload_delta: Arc<AtomicI64>,
    pool: OnceLock<DbPool>,
}

/// The column parameters and their defaults, in the order a row is read.
const COLS: [(&str, &str); 8] = [
    ("dpid_col", "dpid"),
    ("pr_col", "pr"),
    ("match_op_col", "match_op"),
    ("match_exp_col", "match_exp"),
    ("match_len_col", "match_len"),
    ("subst_exp_col", "subst_exp"),
    ("repl_exp_col", "repl_exp"),
    ("attrs_col", "attrs"),
];

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            db_url: params::str_cell("mysql://kamailioro:kamailioro@localhost/kamailio"),
            table: params::str_cell("dialplan"),
            cols: COLS.map(|(_, d)| params::str_cell(d)),
            attrs_pvar: params::str_cell(""),
            fetch_rows: params::int_cell(1000),
            match_dynamic: params::int_cell(0),
            append_branch: params::int_cell(1),
            reload_delta: params::int_cell(5),
            pool: OnceLock::new(),
        }
    }
}

/// Whether a pseudo-variable name is one `attrs_pvar` may name: an AVP,
/// an XAVP or a script variable.
pub fn attrs_pvar_ok(name: &str) -> bool {
    ["$avp(", "$(avp(", "$xavp(", "$(xavp(", "$var(", "$(var("]
        .iter()
        .any(|p| name.starts_with(p))
        && name.ends_with(')')
}

impl Settings {
    /// Declares the parameters.
    pub fn params(&self, mut def: ModuleDef) -> ModuleDef {
        def = def
            .param("db_url", ParamKind::Str, params::string(&self.db_url))
            .param("table_name", ParamKind::Str, params::string(&self.table))
            .param(
                "attrs_pvar",
                ParamKind::Str,
                params::string(&self.attrs_pvar),
            );
        for ((name, _), cell) in COLS.iter().zip(&self.cols) {
            def = def.param(name, ParamKind::Str, params::string(cell));
        }
        for (name, cell) in [
            ("fetch_rows", &self.fetch_rows),
            ("match_dynamic", &self.match_dynamic),
            ("append_branch", &self.append_branch),
            ("reload_delta", &self.reload_delta),
        ] {
            def = def.param(name, ParamKind::Int, params::int(cell));
        }
        def
    }

    /// Checks the parameters at start.
    pub fn check(&self) -> Result<(), String> {
        let pv = params::get_str(&self.attrs_pvar);
        if !pv.is_empty() && !attrs_pvar_ok(pv.trim()) {
            return Err(format!(
                "dialplan: attrs_pvar must be an AVP, an XAVP or a $var, not '{pv}'"
            ));
        }
        if params::get_str(&self.table).is_empty() {
            return Err("dialplan: invalid database table name".into());
        }
        Ok(())
    }

    /// `attrs_pvar`, when set.
    pub fn attrs_pvar(&self) -> Option<String> {
        Some(params::get_str(&self.attrs_pvar).trim().to_string()).filter(|s| !s.is_empty())
    }

    /// `append_branch`.
    pub fn append_branch(&self) -> bool {
        params::get_int(&self.append_branch) != 0
    }

    /// `reload_delta` in seconds (a negative value is 5, as in Kamailio).
    pub fn reload_delta(&self) -> u64 {
        u64::try_from(params::get_int(&self.reload_delta)).unwrap_or(5)
    }

    /// Reads every row in `pr` order and compiles it; one bad row fails
    /// the whole load, as in Kamailio.
    pub fn load(&self, core: &dyn Core) -> Result<Table, String> {
        let pool = match self.pool.get() {
            Some(p) => p,
            None => {
                let url = params::get_str(&self.db_url);
                let p = DbPool::open(core, &url).map_err(|e| format!("dialplan: {e}"))?;
                self.pool.get_or_init(|| p)
            }
        };
        let table = params::get_str(&self.table);
        let cols: Vec<String> = self.cols.iter().map(|c| params::get_str(c)).collect();
        let names: Vec<&str> = cols.iter().map(String::as_str).collect();
        let order = Order {
            col: cols[1].clone(),
            desc: false,
        };
        let rows = pool
            .with(|c| {
                db::check_version(c, &table, schema::DIALPLAN_VERSION)?;
                c.query(&table, &[], &names, Some(&order))
            })
            .map_err(|e| format!("dialplan: {e}"))?;
        let compile = |s: &str| core.compile_format(s);
        let env = Env {
            compile: &compile,
            dynamic: params::get_int(&self.match_dynamic) == 1,
        };
        let mut t = Table::default();
        for r in 0..rows.len() {
            let int = |i: usize| rows.get(r, &cols[i]).as_i64().unwrap_or(0);
            let text = |i: usize| -> Result<String, String> {
                match rows.get(r, &cols[i]) {
                    DbValue::Null => Err(format!(
                        "dialplan: column {} of row {} is NULL, which is not allowed",
                        cols[i],
                        r + 1
                    )),
                    v => Ok(v.as_string().unwrap_or_default()),
                }
            };
            let row = Row {
                dpid: int(0),
                pr: int(1),
                match_op: int(2),
                match_exp: text(3)?,
                match_len: int(4),
                subst_exp: text(5)?,
                repl_exp: text(6)?,
                attrs: text(7)?,
            };
            let rule =
                Rule::build(row, &env).map_err(|e| format!("dialplan: row {}: {e}", r + 1))?;
            t.add(rule);
        }
        Ok(t)
    }
}
