//! # htable: shared hash tables
//!
//! Kamailio's `htable` module: named tables of integers and strings shared
//! by all workers, items expiring `autoexpire` seconds after they were set,
//! read and written in the script through `$sht(table=>key)` (the key may
//! hold pseudo-variables: `$sht(ipban=>$si)`), managed over RPC.
//!
//! - Parameters: `htable` (repeatable: `name=>size=8;autoexpire=300;
//!   initval=0;updateexpire=1;dbtable=htable;dbmode=1`), `timer_interval`
//!   (20 s: how often expired items are removed; they never read after
//!   their time), `db_url` and the column parameters: tables loaded from a
//!   database at start and written back at shutdown ([`db`]). DMQ
//!   replication over DMQ (`enable_dmq`, `dmqreplicate`): see `dmq.rs`.
//! - Iterators and slot locks ([`iter`]); `event_route[htable:mod-init]`.
//! - Pseudo-variables: `$sht(t=>k)` (assign `$null` to remove),
//!   `$shtex(t=>k)` (seconds to expiry, 0 for never; assign to change),
//!   `$shtinc(t=>k)` / `$shtdec(t=>k)` (add or take one and read the new
//!   value, atomically), `$shtcn(t=>re)` / `$shtcv(t=>re)` (how many names
//!   / values match the regular expression).
//! - Functions: `sht_rm(t, k)`, `sht_rm_name_re("t=>re")`,
//!   `sht_rm_value_re("t=>re")`, `sht_rm_name(t, op, v)`,
//!   `sht_rm_value(t, op, v)` (op `re`, `sw` or `eq`), `sht_has_name(t, op,
//!   v)`, `sht_has_str_value(t, op, v)`, `sht_reset(t)`, `sht_setxi(t, k,
//!   n, exp)`, `sht_setxs(t, k, s, exp)`.
//! - RPC: `htable.get t k`, `htable.sets t k v`, `htable.seti t k n`,
//!   `htable.delete t k`, `htable.dump t`, `htable.flush t`,
//!   `htable.listTables`, `htable.reload t`, `htable.store t`,
//!   `htable.stats`.
#![forbid(unsafe_code)]

pub mod db;
mod dmq;
pub mod iter;
pub mod spec;
pub mod table;

use spec::{expand, lifetime, parse_def, split_name, Def};
use sr_sdk::prelude::*;
use sr_sdk::PvName;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use table::{Table, Val};

/// The module's state: the definitions given by `modparam`, the tables
/// made from them at `mod_init`.
#[derive(Default)]
pub struct Htable {
    defs: Mutex<Vec<Def>>,
    tables: RwLock<HashMap<String, Arc<Table>>>,
    timer_interval: Arc<AtomicI64>,
    dmq: Arc<AtomicI64>,
    dmq_init_sync: Arc<AtomicI64>,
    dmq_api: std::sync::OnceLock<sr_mod_dmq::DmqApi>,
    core: std::sync::OnceLock<std::sync::Weak<dyn Core>>,
    db_url: Arc<RwLock<String>>,
    cols: db::Cols,
    pool: std::sync::OnceLock<sr_sdk::db::DbPool>,
    /// Tables whose load gave rows (or were reloaded): written back at
    /// shutdown with `dbmode=1`, as Kamailio's `dbload` flag.
    dbload: Mutex<std::collections::HashSet<String>>,
    /// This instance's number (its workers' iterators are keyed by it).
    pub(crate) id: usize,
}

static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

impl Htable {
    /// A table by name.
    pub fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.tables.read().ok()?.get(name).cloned()
    }

    /// A table's definition.
    pub fn def(&self, name: &str) -> Option<Def> {
        self.defs
            .lock()
            .ok()?
            .iter()
            .find(|d| d.name == name)
            .cloned()
    }

    /// Loads table `d` from its database table (replacing what it holds);
    /// how many items.
    pub fn load_db(&self, d: &Def) -> Result<usize, String> {
        let pool = self.pool.get().ok_or("No htable db_url")?;
        let t = self.table(&d.name).ok_or("No such htable")?;
        let items = pool
            .with(|c| db::load(c, &self.cols, d, Instant::now()))
            .map_err(|e| format!("htable {}: {e}", d.name))?;
        let n = items.len();
        t.replace_all(items);
        Ok(n)
    }

    /// Writes table `d` back to its database table.
    pub fn store_db(&self, d: &Def) -> Result<usize, String> {
        let pool = self.pool.get().ok_or("No htable db_url")?;
        let t = self.table(&d.name).ok_or("No such htable")?;
        pool.with(|c| db::store(c, &self.cols, d, &t))
            .map_err(|e| format!("htable {}: {e}", d.name))
    }

    fn mark_loaded(&self, name: &str) {
        self.dbload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
    }

    /// At shutdown: the `dbmode=1` tables that were loaded, written back.
    fn destroy(&self) {
        let defs = self.defs.lock().map(|d| d.clone()).unwrap_or_default();
        let loaded = self.dbload.lock().map(|s| s.clone()).unwrap_or_default();
        for d in defs {
            if d.dbtable.is_some() && d.dbmode != 0 && d.cols.is_empty() && loaded.contains(&d.name)
            {
                if let Err(e) = self.store_db(&d) {
                    lm_err!("{e}");
                }
            }
        }
    }

    fn init(&self, core: &dyn Core) -> Result<(), String> {
        let defs = self.defs.lock().map_err(|_| "htable: lock")?.clone();
        let mut tables = self.tables.write().map_err(|_| "htable: lock")?;
        for d in defs {
            if tables.contains_key(&d.name) {
                return Err(format!("htable: table '{}' is defined twice", d.name));
            }
            let mut t = Table::new(&d.name, lifetime(d.autoexpire), d.initval.clone());
            t.updateexpire = d.updateexpire;
            t.size = d.size;
            t.dmqreplicate = d.dmqreplicate;
            let h = core.handle();
            let _ = t.stopping.set(table::Stopping(Arc::new(move || {
                h.as_ref()
                    .and_then(std::sync::Weak::upgrade)
                    .is_none_or(|c| c.shutting_down())
            })));
            tables.insert(d.name.clone(), Arc::new(t));
        }
        drop(tables);
        // Tables from a database (without db_url, dbtable is ignored, as
        // in Kamailio).
        let url = params::get_str(&self.db_url);
        let defs = self.defs.lock().map_err(|_| "htable: lock")?.clone();
        if !url.is_empty() && defs.iter().any(|d| d.dbtable.is_some()) {
            let pool = sr_sdk::db::DbPool::open(core, &url).map_err(|e| format!("htable: {e}"))?;
            let _ = self.pool.set(pool);
            for d in defs.iter().filter(|d| d.dbtable.is_some()) {
                if self.load_db(d)? > 0 {
                    self.mark_loaded(&d.name);
                }
            }
        }
        let all: Vec<Arc<Table>> = self
            .tables
            .read()
            .map_err(|_| "htable: lock")?
            .values()
            .cloned()
            .collect();
        let every = Duration::from_secs(
            // (0 or less is Kamailio's 20.)
            u64::try_from(self.timer_interval.load(Ordering::Relaxed))
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or(20),
        );
        core.add_timer(
            "htable-expire",
            every,
            Arc::new(move || {
                let now = Instant::now();
                for t in &all {
                    t.expire(now);
                }
            }),
        );
        Ok(())
    }
}

fn to_val(v: Value<'_>) -> Option<Val> {
    match v {
        Value::Null => None,
        Value::Int(i) => Some(Val::Int(i)),
        Value::Str(s) => Some(Val::Str(s.into_owned())),
    }
}

fn from_val(v: Val) -> Value<'static> {
    match v {
        Val::Int(i) => Value::Int(i),
        Val::Str(s) => Value::str(s),
    }
}

/// The table and the expanded key a pseudo-variable's `table=>key` name
/// points at.
fn resolve(ht: &Htable, ctx: &mut Ctx<'_>, name: &PvName) -> Option<(Arc<Table>, String)> {
    let inner = name.inner.as_deref()?;
    let (t, k) = match split_name(inner) {
        Ok(x) => x,
        Err(e) => {
            lm_err!("htable: {e}");
            return None;
        }
    };
    let table = ht.table(t).or_else(|| {
        lm_err!("htable: no table '{t}'");
        None
    })?;
    Some((table, expand(ctx, k)))
}

/// How a name or value is matched (Kamailio's operators).
pub(crate) enum Matcher {
    Re(regex::Regex),
    Prefix(String),
    Suffix(String),
    Eq(String),
    Ne(String),
    All,
    /// `eqN` of `$shtcv`: integer values equal to N.
    IntEq(i64),
    /// An empty pattern.
    Nothing,
}

impl Matcher {
    /// `op`: `re` (regular expression, case-insensitive as Kamailio
    /// compiles them), `sw` (starts with), `eq`, `ne`.
    pub(crate) fn new(op: &str, v: &str) -> Result<Matcher, String> {
        Ok(match op {
            "re" => Matcher::Re(
                regex::RegexBuilder::new(v)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| format!("bad regular expression '{v}': {e}"))?,
            ),
            "sw" => Matcher::Prefix(v.to_string()),
            "eq" => Matcher::Eq(v.to_string()),
            "ne" => Matcher::Ne(v.to_string()),
            other => return Err(format!("unknown operator '{other}' (re, sw, eq, ne)")),
        })
    }

    /// The `$shtcn`/`$shtcv` forms, as Kamailio reads them: `**` (all),
    /// `~~re`, `~%suffix` (ends with), `%~prefix` (starts with), `==text`,
    /// `eqN` (an integer value equal to N; never a name), else a regular
    /// expression; an empty pattern after an operator matches nothing.
    fn counting(v: &str) -> Result<Matcher, String> {
        if v == "**" {
            Ok(Matcher::All)
        } else if let Some(r) = v
            .strip_prefix("~~")
            .or_else(|| v.strip_prefix("~%"))
            .or_else(|| v.strip_prefix("%~"))
            .filter(|r| r.is_empty())
        {
            let _ = r;
            Ok(Matcher::Nothing)
        } else if let Some(r) = v.strip_prefix("~~") {
            Matcher::new("re", r)
        } else if let Some(r) = v.strip_prefix("~%") {
            Ok(Matcher::Suffix(r.to_string()))
        } else if let Some(r) = v.strip_prefix("%~") {
            Ok(Matcher::Prefix(r.to_string()))
        } else if let Some(r) = v.strip_prefix("==") {
            Ok(Matcher::Eq(r.to_string()))
        } else if let Some(r) = v.strip_prefix("eq") {
            Ok(Matcher::IntEq(r.trim().parse().unwrap_or(0)))
        } else {
            Matcher::new("re", v)
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Re(r) => r.is_match(s),
            Matcher::Prefix(p) => s.starts_with(p.as_str()),
            Matcher::Suffix(p) => s.ends_with(p.as_str()),
            Matcher::Eq(p) => s == p,
            Matcher::Ne(p) => s != p,
            Matcher::All => true,
            Matcher::IntEq(_) | Matcher::Nothing => false,
        }
    }

    /// An item by its name, or by its value (only string values match a
    /// value test, as in Kamailio).
    pub(crate) fn item(&self, on_value: bool, name: &str, val: &Val) -> bool {
        if !on_value {
            return self.matches(name);
        }
        match (self, val) {
            (Matcher::IntEq(n), Val::Int(i)) => n == i,
            (_, Val::Str(s)) => self.matches(s),
            (_, Val::Int(_)) => matches!(self, Matcher::All),
        }
    }
}

/// Removes (or, with `only_test`, looks for) the items whose name or
/// value matches; the function's return code.
fn by_match(ht: &Htable, t: &str, op: &str, v: &str, on_value: bool, only_test: bool) -> i32 {
    let Some(table) = ht.table(t) else {
        lm_err!("htable: no table '{t}'");
        return -1;
    };
    // Kamailio removes by `re` and `sw` only.
    if !only_test && !matches!(op, "re" | "sw") {
        lm_err!("htable: unsupported match operator '{op}' (re or sw)");
        return -1;
    }
    let m = match Matcher::new(op, v) {
        Ok(m) => m,
        Err(e) => {
            lm_err!("htable: {e}");
            return -1;
        }
    };
    let now = Instant::now();
    if only_test {
        return if table.any(now, |n, val| m.item(on_value, n, val)) {
            1
        } else {
            -1
        };
    }
    ht.rep_remove(&table, op, v, on_value);
    table.remove_where(now, |n, val| m.item(on_value, n, val));
    1
}

fn split_re(s: &str) -> Option<(&str, &str)> {
    split_name(s).ok()
}

/// The module definition.
pub fn module() -> ModuleDef {
    let ht = Arc::new(Htable {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        ..Htable::default()
    });
    ht.timer_interval.store(20, Ordering::Relaxed);
    let spve = Some(fixup::f(fixup::spve));
    let (h_def, h_init) = (ht.clone(), ht.clone());
    let mut def = ModuleDef::new("htable")
        .param("htable", ParamKind::Str, move |v| {
            let ParamValue::Str(s) = v else {
                return Err("htable: a definition is a string".into());
            };
            let d = parse_def(&s)?;
            h_def.defs.lock().map_err(|_| "htable: lock")?.push(d);
            Ok(())
        })
        .param(
            "timer_interval",
            ParamKind::Int,
            params::int(&ht.timer_interval),
        )
        .param("enable_dmq", ParamKind::Int, params::int(&ht.dmq))
        .param(
            "dmq_init_sync",
            ParamKind::Int,
            params::int(&ht.dmq_init_sync),
        )
        .param("db_url", ParamKind::Str, params::string(&ht.db_url))
        .param(
            "key_name_column",
            ParamKind::Str,
            params::string(&ht.cols.key_name),
        )
        .param(
            "key_type_column",
            ParamKind::Str,
            params::string(&ht.cols.key_type),
        )
        .param(
            "value_type_column",
            ParamKind::Str,
            params::string(&ht.cols.value_type),
        )
        .param(
            "key_value_column",
            ParamKind::Str,
            params::string(&ht.cols.key_value),
        )
        .param(
            "expires_column",
            ParamKind::Str,
            params::string(&ht.cols.expires),
        )
        .param(
            "array_size_suffix",
            ParamKind::Str,
            params::string(&ht.cols.array_size_suffix),
        )
        .param(
            "db_expires",
            ParamKind::Int,
            params::int(&ht.cols.db_expires),
        )
        .on_init(move |core| h_init.init(core));
    let h_destroy = ht.clone();
    def = def.on_destroy(move || h_destroy.destroy());
    // event_route[htable:mod-init]: once, before the workers take
    // messages.
    let h_dmq = ht.clone();
    def = def.on_child_init(move |core, rank| {
        if rank == sr_sdk::rank::PROC_INIT {
            h_dmq.dmq_start(core)?;
            if let Some(id) = core.route_id(RouteType::EVENT, "htable:mod-init") {
                let mut msg = SipMsg::faked();
                core.run_route(id, RouteType::EVENT, &mut msg);
            }
        }
        Ok(())
    });
    for p in [
        "fetch_rows",
        "timer_procs",
        "event_callback",
        "event_callback_mode",
    ] {
        def = def.param(p, ParamKind::Any, |_| Ok(()));
    }
    let h = ht.clone();
    def = def.pv_rw(
        "sht",
        move |ctx, n| {
            let Some((t, k)) = resolve(&h, ctx, n) else {
                return Value::Null;
            };
            let now = Instant::now();
            t.get(&k, now)
                .or_else(|| t.initval.clone())
                .map_or(Value::Null, from_val)
        },
        {
            let h = ht.clone();
            move |ctx, n, v| {
                let (t, k) = resolve(&h, ctx, n).ok_or("htable: no such table")?;
                let now = Instant::now();
                match to_val(v) {
                    None => {
                        h.rep_delete(&t, &k);
                        t.remove(&k, now);
                    }
                    Some(val) => {
                        h.rep_set(&t, &k, &val);
                        t.set(&k, val, None, now);
                    }
                }
                Ok(())
            }
        },
    );
    let h = ht.clone();
    def = def.pv_rw(
        "shtex",
        move |ctx, n| {
            let Some((t, k)) = resolve(&h, ctx, n) else {
                return Value::Null;
            };
            // 0 for a missing item too, as Kamailio.
            Value::Int(t.expires_in(&k, Instant::now()).unwrap_or(0) as i64)
        },
        {
            let h = ht.clone();
            move |ctx, n, v| {
                let (t, k) = resolve(&h, ctx, n).ok_or("htable: no such table")?;
                let secs = u64::try_from(v.as_int()).unwrap_or(0);
                h.rep_expire(&t, &k, secs);
                t.set_expire(&k, secs, Instant::now());
                Ok(())
            }
        },
    );
    for (name, delta) in [("shtinc", 1i64), ("shtdec", -1)] {
        let h = ht.clone();
        def = def.pv(name, move |ctx, n| {
            let Some((t, k)) = resolve(&h, ctx, n) else {
                return Value::Null;
            };
            match t.add(&k, delta, Instant::now()) {
                Some(n) => {
                    h.rep_set(&t, &k, &Val::Int(n));
                    Value::Int(n)
                }
                None => Value::Null,
            }
        });
    }
    for (name, on_value) in [("shtcn", false), ("shtcv", true)] {
        let h = ht.clone();
        def = def.pv(name, move |ctx, n| {
            let Some((t, re)) = resolve(&h, ctx, n) else {
                return Value::Null;
            };
            let m = match Matcher::counting(&re) {
                Ok(m) => m,
                Err(e) => {
                    lm_err!("htable: {e}");
                    return Value::Null;
                }
            };
            let n = t.count(Instant::now(), |k, v| m.item(on_value, k, v));
            Value::Int(n as i64)
        });
    }
    let h = ht.clone();
    def = def.cmd("sht_rm", 2, RouteType::ANY, spve.clone(), move |ctx, p| {
        let (t, k) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        match h.table(&t) {
            Some(table) => {
                h.rep_delete(&table, &k);
                table.remove(&k, Instant::now());
                1
            }
            None => -1,
        }
    });
    for (name, on_value) in [("sht_rm_name_re", false), ("sht_rm_value_re", true)] {
        let h = ht.clone();
        def = def.cmd(name, 1, RouteType::ANY, spve.clone(), move |ctx, p| {
            let s = p[0].str(ctx).into_owned();
            match split_re(&s) {
                Some((t, re)) => by_match(&h, t, "re", re, on_value, false),
                None => {
                    lm_err!("htable: '{s}': expected table=>regexp");
                    -1
                }
            }
        });
    }
    for (name, on_value, only_test) in [
        ("sht_rm_name", false, false),
        ("sht_rm_value", true, false),
        ("sht_has_name", false, true),
        ("sht_has_str_value", true, true),
        // The names Kamailio 5.6 documents for the same checks.
        ("sht_match_name", false, true),
        ("sht_match_str_value", true, true),
    ] {
        let h = ht.clone();
        def = def.cmd(name, 3, RouteType::ANY, spve.clone(), move |ctx, p| {
            let (t, op, v) = (
                p[0].str(ctx).into_owned(),
                p[1].str(ctx).into_owned(),
                p[2].str(ctx).into_owned(),
            );
            by_match(&h, &t, &op, &v, on_value, only_test)
        });
    }
    let h = ht.clone();
    def = def.cmd(
        "sht_reset",
        1,
        RouteType::ANY,
        spve.clone(),
        move |ctx, p| match h.table(&p[0].str(ctx)) {
            Some(t) => {
                t.clear();
                1
            }
            None => -1,
        },
    );
    for (name, int) in [("sht_setxi", true), ("sht_setxs", false)] {
        let h = ht.clone();
        def = def.cmd(name, 4, RouteType::ANY, spve.clone(), move |ctx, p| {
            let (t, k) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            let val = if int {
                Val::Int(p[2].int(ctx))
            } else {
                Val::Str(p[2].str(ctx).into_owned())
            };
            // 0 or less: the table's autoexpire, as in Kamailio.
            let exp = u64::try_from(p[3].int(ctx)).unwrap_or(0);
            match h.table(&t) {
                Some(table) => {
                    h.rep_set(&table, &k, &val);
                    h.rep_expire(&table, &k, exp);
                    let e = (exp > 0).then(|| Duration::from_secs(exp));
                    table.set(&k, val, e, Instant::now());
                    1
                }
                None => -1,
            }
        });
    }
    def = iter_functions(&ht, def, &spve);
    rpc::add(def, ht)
}

mod rpc;

/// The iterator and lock functions and `$shtitkey`/`$shtitval`.
fn iter_functions(
    ht: &Arc<Htable>,
    mut def: ModuleDef,
    spve: &Option<fixup::FixupFn>,
) -> ModuleDef {
    let h = ht.clone();
    def = def.cmd(
        "sht_iterator_start",
        2,
        RouteType::ANY,
        spve.clone(),
        move |ctx, p| {
            let (n, t) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            iter::start(&h, &n, &t)
        },
    );
    type One = fn(&Htable, &str) -> i32;
    for (name, f) in [
        ("sht_iterator_next", iter::next as One),
        ("sht_iterator_end", iter::end as One),
        ("sht_iterator_rm", iter::rm as One),
    ] {
        let h = ht.clone();
        def = def.cmd(name, 1, RouteType::ANY, spve.clone(), move |ctx, p| {
            let n = p[0].str(ctx).into_owned();
            f(&h, &n)
        });
    }
    for name in [
        "sht_iterator_sets",
        "sht_iterator_seti",
        "sht_iterator_setex",
    ] {
        let h = ht.clone();
        def = def.cmd(name, 2, RouteType::ANY, spve.clone(), move |ctx, p| {
            let n = p[0].str(ctx).into_owned();
            let what = match name {
                "sht_iterator_sets" => iter::Set::Val(Val::Str(p[1].str(ctx).into_owned())),
                "sht_iterator_seti" => iter::Set::Val(Val::Int(p[1].int(ctx))),
                _ => iter::Set::Expire(u64::try_from(p[1].int(ctx)).unwrap_or(0)),
            };
            iter::set(&h, &n, what)
        });
    }
    for (name, lock) in [("sht_lock", true), ("sht_unlock", false)] {
        let h = ht.clone();
        def = def.cmd(
            name,
            1,
            RouteType::ANY,
            Some(fixup::f(fixup::const_str)),
            move |ctx, p| {
                let spec = p[0].as_const_str().unwrap_or_default().to_string();
                iter::lock(&h, ctx, &spec, lock)
            },
        );
    }
    let h = ht.clone();
    def = def.pv("shtitkey", move |_ctx, n| {
        iter::key(&h, n.inner.as_deref().unwrap_or(""))
    });
    let h = ht.clone();
    def.pv("shtitval", move |_ctx, n| {
        iter::val(&h, n.inner.as_deref().unwrap_or(""))
    })
}
