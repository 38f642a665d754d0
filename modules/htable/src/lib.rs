//! # htable: shared hash tables
//!
//! Kamailio's `htable` module: named tables of integers and strings shared
//! by all workers, items expiring `autoexpire` seconds after they were set,
//! read and written in the script through `$sht(table=>key)` (the key may
//! hold pseudo-variables: `$sht(ipban=>$si)`), managed over RPC.
//!
//! - Parameters: `htable` (repeatable: `name=>size=8;autoexpire=300;
//!   initval=0;updateexpire=1`), `timer_interval` (20 s: how often expired
//!   items are removed; they never read after their time). Loading tables
//!   from a database (`dbtable`) and DMQ replication are not built: a
//!   `dbtable` or `enable_dmq=1` is refused at start; the other database
//!   parameters are accepted with no effect.
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
//!   `htable.listTables`.
#![forbid(unsafe_code)]

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
}

impl Htable {
    /// A table by name.
    pub fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.tables.read().ok()?.get(name).cloned()
    }

    fn init(&self, core: &dyn Core) -> Result<(), String> {
        if self.dmq.load(Ordering::Relaxed) != 0 {
            return Err("htable: enable_dmq (replication) is not supported by siprouter".into());
        }
        let defs = self.defs.lock().map_err(|_| "htable: lock")?.clone();
        let mut tables = self.tables.write().map_err(|_| "htable: lock")?;
        for d in defs {
            if tables.contains_key(&d.name) {
                return Err(format!("htable: table '{}' is defined twice", d.name));
            }
            let mut t = Table::new(&d.name, lifetime(d.autoexpire), d.initval.clone());
            t.updateexpire = d.updateexpire;
            t.size = d.size;
            tables.insert(d.name.clone(), Arc::new(t));
        }
        let all: Vec<Arc<Table>> = tables.values().cloned().collect();
        let every = Duration::from_secs(
            u64::try_from(self.timer_interval.load(Ordering::Relaxed))
                .unwrap_or(20)
                .max(1),
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
enum Matcher {
    Re(regex::Regex),
    Prefix(String),
    Suffix(String),
    Eq(String),
    Ne(String),
    All,
}

impl Matcher {
    /// `op`: `re` (regular expression, case-insensitive as Kamailio
    /// compiles them), `sw` (starts with), `eq`, `ne`.
    fn new(op: &str, v: &str) -> Result<Matcher, String> {
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

    /// The `$shtcn`/`$shtcv` forms: `**` (all), `~~re`, `~%prefix`,
    /// `%~suffix`, `==text`, `eqtext`, else a regular expression.
    fn counting(v: &str) -> Result<Matcher, String> {
        if v == "**" {
            Ok(Matcher::All)
        } else if let Some(r) = v.strip_prefix("~~") {
            Matcher::new("re", r)
        } else if let Some(r) = v.strip_prefix("~%") {
            Ok(Matcher::Prefix(r.to_string()))
        } else if let Some(r) = v.strip_prefix("%~") {
            Ok(Matcher::Suffix(r.to_string()))
        } else if let Some(r) = v.strip_prefix("==").or_else(|| v.strip_prefix("eq")) {
            Ok(Matcher::Eq(r.to_string()))
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
        }
    }

    /// An item by its name, or by its value (only string values match a
    /// value test, as in Kamailio).
    fn item(&self, on_value: bool, name: &str, val: &Val) -> bool {
        if !on_value {
            return self.matches(name);
        }
        match val {
            Val::Str(s) => self.matches(s),
            Val::Int(_) => matches!(self, Matcher::All),
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
    table.remove_where(now, |n, val| m.item(on_value, n, val));
    1
}

fn split_re(s: &str) -> Option<(&str, &str)> {
    split_name(s).ok()
}

/// The module definition.
pub fn module() -> ModuleDef {
    let ht = Arc::new(Htable::default());
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
        .on_init(move |core| h_init.init(core));
    for p in [
        "db_url",
        "key_name_column",
        "key_type_column",
        "value_type_column",
        "key_value_column",
        "expires_column",
        "array_size_suffix",
        "fetch_rows",
        "timer_procs",
        "event_callback",
        "event_callback_mode",
        "db_expires",
        "dmq_init_sync",
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
                        t.remove(&k, now);
                    }
                    Some(val) => t.set(&k, val, None, now),
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
                t.set_expire(&k, u64::try_from(v.as_int()).unwrap_or(0), Instant::now());
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
            t.add(&k, delta, Instant::now())
                .map_or(Value::Null, Value::Int)
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
                    let e = (exp > 0).then(|| Duration::from_secs(exp));
                    table.set(&k, val, e, Instant::now());
                    1
                }
                None => -1,
            }
        });
    }
    rpc::add(def, ht)
}

mod rpc;
