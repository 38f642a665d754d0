//! # sqlops: SQL from the routing script
//!
//! Kamailio's `sqlops` module: named connections (`sqlcon`), queries from
//! the script with their rows kept in result containers (`sql_query`,
//! read with `$dbr(name=>...)`), in XAVPs (`sql_xquery`) or in
//! pseudo-variables (`sql_pvquery`), and `$sqlrows(con)`. The `{sql.val}`
//! transformations are the core's.
//!
//! Return codes as Kamailio's: 1 rows came back (3 for `sql_query`
//! without a container), 2 none (or not a query), -1 the query failed, -2
//! no connection.
#![forbid(unsafe_code)]

pub mod results;

use results::{Key, SqlResult};
use sr_sdk::db::{self, DbDriver, RawResult};
use sr_sdk::fixup::Assign;
use sr_sdk::prelude::*;
use sr_sdk::xavp::XavpValue;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// One named connection: each worker opens its own (as each Kamailio
/// process has its own), so a script's statements run on one connection
/// (`BEGIN`/`COMMIT`, `last_insert_rowid()`).
struct Con {
    url: String,
    driver: Arc<dyn DbDriver>,
}

/// The module's state.
struct Sqlops {
    sqlcon: RwLock<Vec<String>>,
    sqlres: RwLock<Vec<String>>,
    connect_mode: Arc<AtomicI64>,
    results_maxsize: Arc<AtomicI64>,
    tr_buf_size: Arc<AtomicI64>,
    cons: OnceLock<HashMap<String, Con>>,
    /// Result container names known (for `results_maxsize`).
    containers: Mutex<Vec<String>>,
    /// This instance's number (see [`NEXT_ID`]).
    id: usize,
}

thread_local! {
    /// Rows changed by the last statement, per (module, connection), per
    /// worker (`$sqlrows`).
    static AFFECTED: RefCell<HashMap<(usize, String), u64>> = RefCell::new(HashMap::new());
    /// This worker's connections, per (module, connection name).
    static CONNS: RefCell<HashMap<(usize, String), Box<dyn db::DbConn>>> =
        RefCell::new(HashMap::new());
}

/// A number per module instance (its thread-local state is keyed by it).
static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// A container name, as the functions' fixups resolve it.
#[derive(Debug)]
struct Container(String);

/// A `sql_pvquery` target.
struct Target {
    pv: Arc<dyn Assign>,
    avp: bool,
}

/// `sql_pvquery`'s list, fixed up.
struct Targets(Vec<Target>);

/// Reads one `sqlcon` value, `name=>url`.
fn parse_sqlcon(s: &str) -> Result<(String, String), String> {
    let t = s.trim_start_matches([' ', '\t', '\r', '\n']);
    let end = t
        .find(|c: char| c == '=' || c.is_whitespace())
        .ok_or_else(|| format!("invalid sqlops parameter [{s}]"))?;
    let name = &t[..end];
    let rest = t[end..].trim_start_matches([' ', '\t', '\r', '\n']);
    let url = rest
        .strip_prefix("=>")
        .ok_or_else(|| format!("invalid sqlops parameter [{s}]"))?
        .trim_start_matches([' ', '\t', '\r', '\n']);
    Ok((name.to_string(), url.to_string()))
}

/// What a query gave, as the functions report it.
enum Outcome {
    /// No connection (-2).
    NoCon,
    /// The query failed (-1).
    Failed,
    /// It ran.
    Ran(RawResult),
}

impl Sqlops {
    fn inst(&self) -> usize {
        self.id
    }

    /// Declares a result container; an error past `results_maxsize`.
    fn container(&self, name: &str) -> Result<(), String> {
        let mut c = self.containers.lock().unwrap_or_else(|e| e.into_inner());
        if c.iter().any(|n| n == name) {
            return Ok(());
        }
        // Kamailio's check lets one more than the limit through.
        let max = params::get_int(&self.results_maxsize);
        if c.len() as i64 > max {
            return Err(format!("invalid result container [{name}]"));
        }
        c.push(name.to_string());
        Ok(())
    }

    /// Runs `sql` on connection `con`, connecting again first when the
    /// last attempt failed.
    fn run(&self, con: &str, sql: &str) -> Outcome {
        let Some(c) = self.cons.get().and_then(|m| m.get(con)) else {
            return Outcome::NoCon;
        };
        let key = (self.inst(), con.to_string());
        let r = CONNS.with(|m| {
            let mut m = m.borrow_mut();
            if !m.contains_key(&key) {
                match c.driver.open(&c.url) {
                    Ok(conn) => {
                        m.insert(key.clone(), conn);
                    }
                    Err(e) => {
                        lm_err!("sqlops: no connection to [{con}]: {e}");
                        return None;
                    }
                }
            }
            m.get_mut(&key).map(|conn| conn.raw(sql))
        });
        let Some(r) = r else {
            return Outcome::NoCon;
        };
        match r {
            Ok(r) => {
                AFFECTED.with(|a| {
                    a.borrow_mut()
                        .insert((self.inst(), con.to_string()), r.affected)
                });
                Outcome::Ran(r)
            }
            Err(e) => {
                lm_err!("sqlops: query [{sql}] on [{con}] failed: {e}");
                Outcome::Failed
            }
        }
    }
}

/// The connection-name fixup: a constant naming a configured connection.
fn con_fixup(s: &Arc<Sqlops>) -> fixup::FixupFn {
    let s = s.clone();
    Arc::new(move |env, i, arg| {
        let f = fixup::const_str(env, i, arg)?;
        let name = f.as_const_str().unwrap_or_default().to_string();
        let known = s
            .sqlcon
            .read()
            .map(|v| {
                v.iter()
                    .filter_map(|c| parse_sqlcon(c).ok())
                    .any(|(n, _)| n == name)
            })
            .unwrap_or(false);
        if !known {
            return Err(format!("invalid connection [{name}]"));
        }
        Ok(f)
    })
}

/// The container-name fixup: a constant, declared here.
fn res_fixup(s: &Arc<Sqlops>) -> fixup::FixupFn {
    let s = s.clone();
    Arc::new(move |env, i, arg| {
        let f = fixup::const_str(env, i, arg)?;
        let name = f.as_const_str().unwrap_or_default().to_string();
        s.container(&name)?;
        Ok(Fixed::Custom(Arc::new(Container(name))))
    })
}

/// The fixups of a function `(con, query, third)`.
fn fixups(s: &Arc<Sqlops>, third: Option<fixup::FixupFn>) -> fixup::FixupFn {
    let con = con_fixup(s);
    Arc::new(move |env, i, arg| match i {
        0 => con(env, i, arg),
        1 => fixup::spve(env, i, arg),
        _ => match &third {
            Some(f) => f(env, i, arg),
            None => fixup::spve(env, i, arg),
        },
    })
}

fn container_of(f: &Fixed) -> &str {
    f.custom::<Container>().map_or("", |c| c.0.as_str())
}

/// `sql_query(con, query[, result])`.
fn sql_query(s: &Sqlops, ctx: &mut Ctx<'_>, p: &[Fixed]) -> i32 {
    let con = p[0].str(ctx).into_owned();
    let sql = p[1].str(ctx).into_owned();
    let res = p.get(2).map(container_of);
    if s.cons.get().and_then(|m| m.get(&con)).is_none() {
        return -2;
    }
    if let Some(r) = res {
        results::store(s.inst(), r, SqlResult::default());
    }
    match s.run(&con, &sql) {
        Outcome::NoCon => -2,
        Outcome::Failed => -1,
        Outcome::Ran(r) if !r.has_rows || r.rows.rows.is_empty() => 2,
        Outcome::Ran(r) => match res {
            Some(name) => {
                let out = SqlResult {
                    cols: r.rows.columns.clone(),
                    rows: r
                        .rows
                        .rows
                        .iter()
                        .map(|row| row.iter().map(results::to_value).collect())
                        .collect(),
                };
                results::store(s.inst(), name, out);
                1
            }
            None => 3,
        },
    }
}

/// `sql_xquery(con, query, xavp)`: one XAVP per row, newest last, with a
/// field per column.
fn sql_xquery(s: &Sqlops, ctx: &mut Ctx<'_>, p: &[Fixed]) -> i32 {
    let con = p[0].str(ctx).into_owned();
    let sql = p[1].str(ctx).into_owned();
    let name = p[2].str(ctx).into_owned();
    match s.run(&con, &sql) {
        Outcome::NoCon => -2,
        Outcome::Failed => -1,
        Outcome::Ran(r) if !r.has_rows || r.rows.rows.is_empty() => 2,
        Outcome::Ran(r) => {
            if name.is_empty() {
                return 1;
            }
            let rows = r
                .rows
                .rows
                .iter()
                .map(|row| {
                    XavpValue::Fields(
                        r.rows
                            .columns
                            .iter()
                            .zip(row)
                            .map(|(c, v)| (c.clone(), results::to_value(v)))
                            .collect(),
                    )
                })
                .collect();
            // Row 0 first, before what was there.
            ctx.msg.xavps.push_all(&name, rows);
            1
        }
    }
}

/// `sql_pvquery(con, query, pvs)`: the columns into the pseudo-variables,
/// rows from the last to the first (so a plain variable ends with row
/// 0's value and an AVP has row 0 at index 0).
fn sql_pvquery(s: &Sqlops, ctx: &mut Ctx<'_>, p: &[Fixed]) -> i32 {
    let con = p[0].str(ctx).into_owned();
    let sql = p[1].str(ctx).into_owned();
    let Some(Targets(pvs)) = p[2].custom::<Targets>() else {
        return -1;
    };
    match s.run(&con, &sql) {
        Outcome::NoCon => -2,
        Outcome::Failed => -1,
        Outcome::Ran(r) if !r.has_rows || r.rows.rows.is_empty() => 2,
        Outcome::Ran(r) => {
            for row in r.rows.rows.iter().rev() {
                for (j, v) in row.iter().enumerate() {
                    let Some(t) = pvs.get(j) else {
                        lm_err!("sqlops: Missing pv spec for column {}", j + 1);
                        return -1;
                    };
                    let v = pv_value(v);
                    if v.is_null() && t.avp {
                        continue;
                    }
                    if let Err(e) = t.pv.assign(ctx, v) {
                        lm_err!("sqlops: cannot set column {}: {e}", j + 1);
                        return -1;
                    }
                }
            }
            1
        }
    }
}

/// A value for `sql_pvquery`: as [`results::to_value`], but a BIGINT
/// that fits 32 bits unsigned is an integer (as Kamailio's converter).
fn pv_value(v: &db::DbValue) -> Value<'static> {
    match v {
        db::DbValue::BigInt(i) if (0..1 << 32).contains(i) => Value::Int(i64::from(*i as i32)),
        other => results::to_value(other),
    }
}

/// `$dbr(name=>key)`.
fn dbr(s: &Sqlops, ctx: &mut Ctx<'_>, name: &sr_sdk::PvName) -> Value<'static> {
    let inner = name.inner.clone().unwrap_or_default();
    let Ok((res, key)) = results::parse_name(&inner) else {
        return Value::Null;
    };
    let mut pv = |p: &str| ctx.core.pv_get(ctx.msg, p);
    let key = match key {
        Key::Cell(r, c) => {
            let (Some(r), Some(c)) = (results::resolve(&r, &mut pv), results::resolve(&c, &mut pv))
            else {
                return Value::Null;
            };
            return results::with(s.inst(), &res, |t| {
                t.rows
                    .get(r)
                    .and_then(|row| row.get(c))
                    .cloned()
                    .unwrap_or(Value::Null)
            });
        }
        Key::ColName(n) => {
            let Some(n) = results::resolve(&n, &mut pv) else {
                return Value::Null;
            };
            return results::with(s.inst(), &res, |t| {
                t.cols
                    .get(n)
                    .map_or(Value::Null, |c| Value::Str(c.clone().into()))
            });
        }
        k => k,
    };
    results::with(s.inst(), &res, |t| match key {
        Key::Rows => Value::Int(t.rows.len() as i64),
        _ => Value::Int(t.cols.len() as i64),
    })
}

/// The module definition.
pub fn module() -> ModuleDef {
    let s = Arc::new(Sqlops {
        sqlcon: RwLock::new(Vec::new()),
        sqlres: RwLock::new(Vec::new()),
        connect_mode: params::int_cell(0),
        results_maxsize: params::int_cell(32),
        tr_buf_size: params::int_cell(2048),
        cons: OnceLock::new(),
        containers: Mutex::new(Vec::new()),
        id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    });
    let (c1, c2, init) = (s.clone(), s.clone(), s.clone());
    let mut def = ModuleDef::new("sqlops")
        .param("sqlcon", ParamKind::Str, move |v| {
            let v = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            let (name, _) = parse_sqlcon(&v)?;
            let mut all = c1.sqlcon.write().map_err(|_| "poisoned".to_string())?;
            if all
                .iter()
                .filter_map(|c| parse_sqlcon(c).ok())
                .any(|(n, _)| n == name)
            {
                return Err(format!("duplicate connection name [{name}]"));
            }
            all.push(v);
            Ok(())
        })
        .param("sqlres", ParamKind::Str, move |v| {
            let v = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            c2.container(&v)?;
            c2.sqlres
                .write()
                .map_err(|_| "poisoned".to_string())?
                .push(v);
            Ok(())
        })
        .param("connect_mode", ParamKind::Int, params::int(&s.connect_mode))
        .param(
            "results_maxsize",
            ParamKind::Int,
            params::int(&s.results_maxsize),
        )
        .param("tr_buf_size", ParamKind::Int, params::int(&s.tr_buf_size))
        .on_init(move |core| {
            if params::get_int(&init.tr_buf_size) <= 0 {
                return Err("sqlops: invalid buffer size".into());
            }
            let lazy = params::get_int(&init.connect_mode) == 1;
            let mut cons = HashMap::new();
            for c in init.sqlcon.read().map_err(|_| "poisoned")?.iter() {
                let (name, url) = parse_sqlcon(c)?;
                let driver =
                    db::driver_for(core, &url).map_err(|e| format!("sqlops: [{name}]: {e}"))?;
                // A first connection now, so that a bad database stops
                // the start (each worker then opens its own).
                match driver.open(&url) {
                    Ok(_) => {}
                    Err(e) if lazy => {
                        lm_info!("sqlops: failed to connect [{name}]: {e} - trying later")
                    }
                    Err(e) => return Err(format!("sqlops: failed to connect [{name}]: {e}")),
                }
                cons.insert(name, Con { url, driver });
            }
            let _ = init.cons.set(cons);
            Ok(())
        });
    for nargs in [2usize, 3] {
        let r = s.clone();
        let third = (nargs == 3).then(|| res_fixup(&s));
        def = def.cmd(
            "sql_query",
            nargs,
            RouteType::ANY,
            Some(fixups(&s, third)),
            move |ctx, p| sql_query(&r, ctx, p),
        );
    }
    let r = s.clone();
    def = def.cmd(
        "sql_xquery",
        3,
        RouteType::ANY,
        Some(fixups(&s, None)),
        move |ctx, p| sql_xquery(&r, ctx, p),
    );
    let r = s.clone();
    let pvlist: fixup::FixupFn = Arc::new(|env, _i, arg| {
        let text = arg.text().into_owned();
        let mut out = Vec::new();
        for spec in text
            .split([' ', '\t', ',', ';', '\n', '\r'])
            .filter(|x| !x.is_empty())
        {
            let pv = env
                .compile_lvalue(spec)
                .map_err(|e| format!("result variable [{spec}] is read-only: {e}"))?;
            out.push(Target {
                pv,
                avp: spec.starts_with("$avp(") || spec.starts_with("$(avp("),
            });
        }
        Ok(Fixed::Custom(Arc::new(Targets(out))))
    });
    def = def.cmd(
        "sql_pvquery",
        3,
        RouteType::ANY,
        Some(fixups(&s, Some(pvlist))),
        move |ctx, p| sql_pvquery(&r, ctx, p),
    );
    let r = s.clone();
    def = def.cmd(
        "sql_result_free",
        1,
        RouteType::ANY,
        Some(res_fixup(&s)),
        move |_ctx, p| {
            results::store(r.inst(), container_of(&p[0]), SqlResult::default());
            1
        },
    );
    def = def.cmd(
        "sql_query_async",
        2,
        RouteType::ANY,
        Some(fixups(&s, None)),
        |_ctx, _p| {
            lm_err!("sqlops: the db driver module doesn't support async query");
            -1
        },
    );
    let r = s.clone();
    def = def.pv("dbr", move |ctx, name| dbr(&r, ctx, name));
    let r = s.clone();
    def.pv("sqlrows", move |_ctx, name| {
        let con = name.inner.clone().unwrap_or_default();
        AFFECTED.with(|a| {
            a.borrow()
                .get(&(r.inst(), con))
                .map_or(Value::Null, |n| Value::Int(*n as i64))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlcon_reads_as_kamailio_reads_it() {
        assert_eq!(
            parse_sqlcon(" ca => sqlite:////tmp/x.db").unwrap(),
            ("ca".into(), "sqlite:////tmp/x.db".into())
        );
        assert_eq!(parse_sqlcon("=>sqlite:///x").unwrap().0, "");
        assert!(parse_sqlcon("bad").is_err());
        assert!(parse_sqlcon("n2=sqlite:x").is_err());
    }
}
