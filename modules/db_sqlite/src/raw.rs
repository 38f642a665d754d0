//! Raw SQL (sqlops' `sql_query`) with Kamailio's db_sqlite typing: each
//! column's type is decided once, from its declared type (`INT`,
//! `VARCHAR`, `DATETIME`, ... read as Kamailio reads them) or, for an
//! expression, from the first row's value, and every row's value is
//! converted to it.

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use sr_sdk::db::{parse_datetime, DbError, DbResult, DbValue, RawResult, Rows};

/// The type a column's values are read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// 32-bit integer (`DB1_INT`).
    Int,
    /// 64-bit integer (`DB1_BIGINT`).
    BigInt,
    /// Text (`DB1_STR`/`DB1_STRING`).
    Text,
    /// Floating point (`DB1_DOUBLE`).
    Double,
    /// Bytes (`DB1_BLOB`).
    Blob,
    /// A point in time (`DB1_DATETIME`).
    DateTime,
}

/// A declared type as Kamailio's db_sqlite reads it: scanning left to
/// right, the first place where the text so far ends in `INT` (or `SERI`,
/// `BIGI`, `CHAR`, `CLOB`, `TEXT`, `REAL`, `FLOA`, `DOUB`, `BLOB`, `TIME`,
/// `DATE`) decides; anything else is an integer.
pub fn kind_of_decl(decl: &str) -> ColKind {
    let d = decl.to_ascii_uppercase();
    let b = d.as_bytes();
    for end in 1..=b.len() {
        let s = &b[..end];
        if s.ends_with(b"INT") {
            return ColKind::Int;
        }
        if s.len() >= 4 {
            let last = &s[s.len() - 4..];
            match last {
                b"SERI" => return ColKind::Int,
                b"BIGI" => return ColKind::BigInt,
                b"CHAR" | b"CLOB" | b"TEXT" => return ColKind::Text,
                b"REAL" | b"FLOA" | b"DOUB" => return ColKind::Double,
                b"BLOB" => return ColKind::Blob,
                b"TIME" | b"DATE" => return ColKind::DateTime,
                _ => {}
            }
        }
    }
    ColKind::Int
}

/// The type of an expression column, from its first value.
fn kind_of_value(v: ValueRef<'_>) -> ColKind {
    match v {
        ValueRef::Integer(_) => ColKind::Int,
        ValueRef::Real(_) => ColKind::Double,
        ValueRef::Blob(_) => ColKind::Blob,
        ValueRef::Text(_) | ValueRef::Null => ColKind::Text,
    }
}

/// SQLite's numeric reading of a text: its leading number, 0 without one.
fn text_number(t: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(t);
    let s = s.trim_start();
    let mut end = 0;
    let b = s.as_bytes();
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut seen_e = false;
    while end < b.len() {
        let c = b[end];
        let ok = c.is_ascii_digit()
            || (c == b'.' && !seen_dot && !seen_e)
            || ((c == b'-' || c == b'+') && (end == 0 || matches!(b[end - 1], b'e' | b'E')))
            || ((c == b'e' || c == b'E') && seen_digit && !seen_e);
        if !ok {
            break;
        }
        seen_digit |= c.is_ascii_digit();
        seen_dot |= c == b'.';
        seen_e |= c == b'e' || c == b'E';
        end += 1;
    }
    let mut num = &s[..end];
    // A trailing exponent marker without digits is not part of it.
    while num.ends_with(['e', 'E', '+', '-']) {
        num = &num[..num.len() - 1];
    }
    num.parse().unwrap_or(0.0)
}

/// `sqlite3_column_int64` of a value.
fn as_i64(v: ValueRef<'_>) -> i64 {
    match v {
        ValueRef::Integer(i) => i,
        ValueRef::Real(r) => r as i64,
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let f = text_number(t);
            // An integer text keeps its full precision.
            let s = String::from_utf8_lossy(t);
            let digits: String = s
                .trim_start()
                .chars()
                .enumerate()
                .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
                .map(|(_, c)| c)
                .collect();
            digits.parse().unwrap_or(f as i64)
        }
        ValueRef::Null => 0,
    }
}

/// `sqlite3_column_text` of a value (SQLite's text form of numbers).
fn as_text(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => real_text(r),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Null => String::new(),
    }
}

/// How SQLite writes a real: 15 significant digits, `.0` for a whole
/// number.
pub fn real_text(r: f64) -> String {
    if r.is_finite() && r == r.trunc() && r.abs() < 1e15 {
        return format!("{r:.1}");
    }
    let s = format!("{r:.15e}");
    // Back to plain notation when it is short, as SQLite's %!.15g does.
    let v: f64 = s.parse().unwrap_or(r);
    let plain = format!("{v}");
    if plain.len() <= 20 {
        plain
    } else {
        s
    }
}

/// A value of column kind `k`.
fn convert(v: ValueRef<'_>, k: ColKind) -> DbValue {
    if matches!(v, ValueRef::Null) {
        return DbValue::Null;
    }
    match k {
        // Kamailio reads an INT column with sqlite3_column_int: the low
        // 32 bits.
        ColKind::Int => DbValue::Int(as_i64(v) as i32),
        ColKind::BigInt => DbValue::BigInt(as_i64(v)),
        ColKind::Text => DbValue::Str(as_text(v)),
        ColKind::Blob => match v {
            ValueRef::Blob(b) | ValueRef::Text(b) => DbValue::Blob(b.to_vec()),
            other => DbValue::Blob(as_text(other).into_bytes()),
        },
        ColKind::Double => DbValue::Double(match v {
            ValueRef::Integer(i) => i as f64,
            ValueRef::Real(r) => r,
            ValueRef::Text(t) | ValueRef::Blob(t) => text_number(t),
            ValueRef::Null => 0.0,
        }),
        // A time as siprouter writes it (text), as Kamailio does (a
        // Julian day number), or as unix seconds.
        ColKind::DateTime => match v {
            ValueRef::Real(jd) => DbValue::DateTime((86400.0 * (jd - 2440587.5) + 0.5) as i64),
            ValueRef::Integer(i) => DbValue::DateTime(i),
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                let s = String::from_utf8_lossy(t);
                match parse_datetime(&s) {
                    Some(t) => DbValue::DateTime(t),
                    None => DbValue::DateTime(as_i64(v)),
                }
            }
            ValueRef::Null => DbValue::Null,
        },
    }
}

/// Runs the first statement of `sql` (as Kamailio: the rest is ignored).
pub fn run(conn: &Connection, sql: &str) -> DbResult<RawResult> {
    let err = |e: rusqlite::Error| DbError(format!("sqlite: {e}"));
    if sql.trim().is_empty() {
        return Err(DbError::new("sqlite: an empty query"));
    }
    let mut st = conn.prepare(sql).map_err(err)?;
    let ncols = st.column_count();
    if ncols == 0 {
        let n = st.execute([]).map_err(err)?;
        return Ok(RawResult {
            has_rows: false,
            rows: Rows::default(),
            affected: n as u64,
        });
    }
    let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
    let decls: Vec<Option<ColKind>> = st
        .columns()
        .iter()
        .map(|c| c.decl_type().map(kind_of_decl))
        .collect();
    let mut kinds: Option<Vec<ColKind>> = None;
    let mut out = Rows {
        columns: names,
        rows: Vec::new(),
    };
    let mut rows = st.query([]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let k = kinds.get_or_insert_with(|| {
            decls
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    d.unwrap_or_else(|| r.get_ref(i).map_or(ColKind::Text, kind_of_value))
                })
                .collect()
        });
        let mut row = Vec::with_capacity(ncols);
        for (i, kind) in k.iter().enumerate() {
            row.push(convert(r.get_ref(i).map_err(err)?, *kind));
        }
        out.rows.push(row);
    }
    // As MySQL counts a query: the rows it returned.
    let n = out.rows.len() as u64;
    Ok(RawResult {
        has_rows: true,
        rows: out,
        affected: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_read_as_kamailio_reads_them() {
        for (d, k) in [
            ("INTEGER", ColKind::Int),
            ("int(11)", ColKind::Int),
            ("UNSIGNED BIG INT", ColKind::Int),
            ("BIGINT", ColKind::BigInt),
            ("VARCHAR(64)", ColKind::Text),
            ("TEXT", ColKind::Text),
            ("CLOB", ColKind::Text),
            ("REAL", ColKind::Double),
            ("DOUBLE PRECISION", ColKind::Double),
            ("BLOB", ColKind::Blob),
            ("DATETIME", ColKind::DateTime),
            ("TIMESTAMP", ColKind::DateTime),
            ("NUMERIC", ColKind::Int),
            ("STRING", ColKind::Int),
            ("POINT", ColKind::Int),
        ] {
            assert_eq!(kind_of_decl(d), k, "{d}");
        }
    }

    #[test]
    fn values_convert_to_their_column_type() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t(i INT, s VARCHAR(10), b BIGINT, x);
             INSERT INTO t VALUES (5000000000, 12, 7, 'first');
             INSERT INTO t VALUES ('12abc', 'txt', NULL, 3);",
        )
        .unwrap();
        let r = run(&c, "SELECT i, s, b, x, count(*) OVER () AS n FROM t").unwrap();
        assert_eq!(r.rows.columns, ["i", "s", "b", "x", "n"]);
        assert_eq!(r.rows.rows[0][0], DbValue::Int(705032704), "low 32 bits");
        assert_eq!(r.rows.rows[0][1], DbValue::Str("12".into()));
        assert_eq!(r.rows.rows[0][2], DbValue::BigInt(7));
        assert_eq!(r.rows.rows[1][0], DbValue::Int(12));
        assert_eq!(r.rows.rows[1][2], DbValue::Null);
        // An untyped column takes the first row's type (text).
        assert_eq!(r.rows.rows[1][3], DbValue::Str("3".into()));
        let r = run(&c, "UPDATE t SET s = 'y'").unwrap();
        assert!(!r.has_rows);
        assert_eq!(r.affected, 2);
        assert!(run(&c, "  ").is_err());
        assert!(run(&c, "SELEKT").is_err());
        // Only the first statement runs.
        let r = run(&c, "SELECT 1; DELETE FROM t").unwrap();
        assert_eq!(r.rows.rows, vec![vec![DbValue::Int(1)]]);
        assert_eq!(
            run(&c, "SELECT count(*) FROM t").unwrap().rows.rows[0][0],
            DbValue::Int(2)
        );
    }

    #[test]
    fn reals_print_as_sqlite_prints_them() {
        assert_eq!(real_text(2.0), "2.0");
        assert_eq!(real_text(3.5), "3.5");
        assert_eq!(real_text(0.1), "0.1");
    }
}
