//! Tables loaded from a database (`dbtable`) and written back to it
//! (`dbmode=1`, at shutdown; `htable.store`), as Kamailio 5.6's htable
//! does: rows by key name, arrays as `name[i]` with `name::size`, integer
//! values read as C's `str2sint`, expiry from `expires` with
//! `db_expires`.

use crate::spec::Def;
use crate::table::{Table, Val};
use sr_sdk::db::{Cond, DbConn, DbError, DbResult, DbValue, Order};
use sr_sdk::exports::params;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The column parameters.
#[derive(Debug)]
pub struct Cols {
    /// `key_name_column`.
    pub key_name: Arc<RwLock<String>>,
    /// `key_type_column`.
    pub key_type: Arc<RwLock<String>>,
    /// `value_type_column`.
    pub value_type: Arc<RwLock<String>>,
    /// `key_value_column`.
    pub key_value: Arc<RwLock<String>>,
    /// `expires_column`.
    pub expires: Arc<RwLock<String>>,
    /// `array_size_suffix`.
    pub array_size_suffix: Arc<RwLock<String>>,
    /// `db_expires`.
    pub db_expires: Arc<AtomicI64>,
}

impl Default for Cols {
    fn default() -> Self {
        Cols {
            key_name: params::str_cell("key_name"),
            key_type: params::str_cell("key_type"),
            value_type: params::str_cell("value_type"),
            key_value: params::str_cell("key_value"),
            expires: params::str_cell("expires"),
            array_size_suffix: params::str_cell("::size"),
            db_expires: params::int_cell(0),
        }
    }
}

/// C's `str2sint` as htable uses it (errors ignored): an optional sign,
/// then digits up to the first other byte; clamped to 32 bits.
pub fn str2sint(s: &str) -> i64 {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut v: i64 = 0;
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    let v = if neg { -v } else { v };
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

fn text_of(v: &DbValue) -> Option<String> {
    match v {
        DbValue::Null => None,
        DbValue::Int(i) => Some(i.to_string()),
        DbValue::BigInt(i) => Some(i.to_string()),
        other => other.as_string(),
    }
}

/// Whether expiry comes from and goes to the database for this table.
fn uses_expires(c: &Cols, d: &Def) -> bool {
    params::get_int(&c.db_expires) != 0 && d.autoexpire > 0
}

/// The items of `d`'s database table: (key, value, expiry).
pub fn load(
    conn: &mut dyn DbConn,
    c: &Cols,
    d: &Def,
    now: Instant,
) -> DbResult<Vec<(String, Val, Option<Instant>)>> {
    let Some(table) = d.dbtable.as_deref() else {
        return Ok(Vec::new());
    };
    if !d.cols.is_empty() {
        return load_cols(conn, d, table);
    }
    let (kn, kt, vt, kv, ex) = (
        params::get_str(&c.key_name),
        params::get_str(&c.key_type),
        params::get_str(&c.value_type),
        params::get_str(&c.key_value),
        params::get_str(&c.expires),
    );
    let with_expires = uses_expires(c, d);
    let mut cols = vec![kn.as_str(), kt.as_str(), vt.as_str(), kv.as_str()];
    if with_expires {
        cols.push(ex.as_str());
    }
    let order = Order {
        col: kn.clone(),
        desc: false,
    };
    let rows = conn.query(table, &[], &cols, Some(&order))?;
    let mut suffix = params::get_str(&c.array_size_suffix);
    if suffix.is_empty() {
        suffix = "::size".into();
    }
    let auto = (d.autoexpire > 0).then(|| Duration::from_secs(d.autoexpire));
    // What an item gets without a time of its own (the `::size` items
    // too, as Kamailio sets them like any other).
    let auto_at = auto.and_then(|a| now.checked_add(a));
    let unix = sr_sdk::db::now();
    let mut out: Vec<(String, Val, Option<Instant>)> = Vec::new();
    // Kamailio's array walk: a counter and the previous row's name and
    // type (the counter is not reset after a plain row of the same name).
    let mut n: i64 = 0;
    let mut prev: Option<(String, i64)> = None;
    for row in &rows.rows {
        let name = row
            .first()
            .and_then(text_of)
            .ok_or_else(|| DbError::new(format!("htable {}: a row without a key name", d.name)))?;
        let expires_at = if with_expires {
            row.get(4).and_then(DbValue::as_i64).unwrap_or(0)
        } else {
            0
        };
        if expires_at > 0 && expires_at < unix {
            continue;
        }
        let ktype = row.get(1).and_then(DbValue::as_i64).unwrap_or(0);
        let vtype = row.get(2).and_then(DbValue::as_i64).unwrap_or(0);
        let value = row
            .get(3)
            .and_then(text_of)
            .ok_or_else(|| DbError::new(format!("htable {}: {name} has no value", d.name)))?;
        if let Some((pname, 1)) = &prev {
            if *pname != name {
                out.push((format!("{pname}{suffix}"), Val::Int(n), auto_at));
                n = 0;
            }
        }
        let key = if ktype == 1 {
            let k = format!("{name}[{n}]");
            n += 1;
            k
        } else {
            name.clone()
        };
        let val = if vtype == 1 {
            match row.get(3) {
                Some(DbValue::Int(i)) => Val::Int(i64::from(*i)),
                Some(DbValue::BigInt(i)) => Val::Int(i64::from(*i as i32)),
                _ => Val::Int(str2sint(&value)),
            }
        } else {
            Val::Str(value)
        };
        let expiry = if expires_at > unix {
            now.checked_add(Duration::from_secs((expires_at - unix) as u64))
        } else if expires_at == unix && with_expires {
            None
        } else {
            auto_at
        };
        out.push((key, val, expiry));
        prev = Some((name, ktype));
    }
    if let Some((pname, 1)) = prev {
        out.push((format!("{pname}{suffix}"), Val::Int(n), auto_at));
    }
    Ok(out)
}

/// `cols`: the first column the key, the others joined by commas (NULL
/// as `*`).
fn load_cols(
    conn: &mut dyn DbConn,
    d: &Def,
    table: &str,
) -> DbResult<Vec<(String, Val, Option<Instant>)>> {
    let cols: Vec<&str> = d.cols.iter().map(String::as_str).collect();
    let order = Order {
        col: d.cols[0].clone(),
        desc: false,
    };
    let rows = conn.query(table, &[], &cols, Some(&order))?;
    let auto = (d.autoexpire > 0)
        .then(|| Instant::now().checked_add(Duration::from_secs(d.autoexpire)))
        .flatten();
    let mut out = Vec::new();
    for row in &rows.rows {
        let key = row
            .first()
            .and_then(text_of)
            .ok_or_else(|| DbError::new(format!("htable {}: a row without a key", d.name)))?;
        let val = row[1..]
            .iter()
            .map(|v| text_of(v).unwrap_or_else(|| "*".into()))
            .collect::<Vec<_>>()
            .join(",");
        out.push((key, Val::Str(val), auto));
    }
    Ok(out)
}

/// Writes `t` to `d`'s database table: every row deleted, then one per
/// live item (`key_type` 0), as Kamailio's write-back. Tables loaded with
/// `cols` are not written (their rows are still deleted, as Kamailio's
/// `htable.store` does).
pub fn store(conn: &mut dyn DbConn, c: &Cols, d: &Def, t: &Table) -> DbResult<usize> {
    let Some(table) = d.dbtable.as_deref() else {
        return Ok(0);
    };
    let no_conds: [Cond; 0] = [];
    conn.delete(table, &no_conds)?;
    if !d.cols.is_empty() {
        return Ok(0);
    }
    let now = Instant::now();
    let unix = sr_sdk::db::now();
    let with_expires = uses_expires(c, d);
    let (kn, kt, vt, kv, ex) = (
        params::get_str(&c.key_name),
        params::get_str(&c.key_type),
        params::get_str(&c.value_type),
        params::get_str(&c.key_value),
        params::get_str(&c.expires),
    );
    let mut n = 0;
    for (_, key, val, expires) in t.entries(now) {
        // An auto-expiring table keeps only what has a time to come.
        if d.autoexpire > 0 && expires.is_none() {
            continue;
        }
        let (vtype, text) = match &val {
            Val::Int(i) => (1, i.to_string()),
            Val::Str(s) => (0, s.clone()),
        };
        let mut values = vec![
            (kn.as_str(), DbValue::str(key)),
            (kt.as_str(), DbValue::Int(0)),
            (vt.as_str(), DbValue::Int(vtype)),
            (kv.as_str(), DbValue::str(text)),
        ];
        if with_expires {
            let at = expires.map_or(0, |e| {
                unix + e.saturating_duration_since(now).as_secs() as i64
            });
            values.push((ex.as_str(), DbValue::BigInt(at)));
        }
        match conn.insert(table, &values) {
            Ok(()) => n += 1,
            Err(e) => sr_sdk::lm_err!("htable {}: cannot store an item: {e}", d.name),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_str2sint() {
        assert_eq!(str2sint("12abc"), 12);
        assert_eq!(str2sint("abc"), 0);
        assert_eq!(str2sint(" 5"), 0);
        assert_eq!(str2sint("-7"), -7);
        assert_eq!(str2sint("99999999999"), 2147483647);
    }
}
