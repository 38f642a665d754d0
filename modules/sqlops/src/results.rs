//! Result containers (`sqlres`, `sql_query`'s third parameter) and the
//! `$dbr(name=>key)` pseudo-variable. As in Kamailio, a container's rows
//! belong to the worker that ran the query and stay until the next query
//! into it or `sql_result_free`.

use sr_sdk::db::DbValue;
use sr_sdk::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// One container's contents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlResult {
    /// Column names.
    pub cols: Vec<String>,
    /// Rows of values.
    pub rows: Vec<Vec<Value<'static>>>,
}

thread_local! {
    /// (module instance, container name) → contents, per worker.
    static RESULTS: RefCell<HashMap<(usize, String), SqlResult>> = RefCell::new(HashMap::new());
}

/// Replaces container `name` of module instance `inst` in this worker.
pub fn store(inst: usize, name: &str, r: SqlResult) {
    RESULTS.with(|m| {
        m.borrow_mut().insert((inst, name.to_string()), r);
    });
}

/// Runs `f` on container `name` (empty when never filled).
pub fn with<T>(inst: usize, name: &str, f: impl FnOnce(&SqlResult) -> T) -> T {
    RESULTS.with(|m| {
        let m = m.borrow();
        match m.get(&(inst, name.to_string())) {
            Some(r) => f(r),
            None => f(&SqlResult::default()),
        }
    })
}

/// A database value as sqlops gives it to the script: integers (and
/// times) as integers, a BIGINT as its decimal text (as Kamailio), text
/// and bytes as text, a real as SQLite writes it.
pub fn to_value(v: &DbValue) -> Value<'static> {
    match v {
        DbValue::Null => Value::Null,
        DbValue::Int(i) => Value::Int(i64::from(*i)),
        DbValue::BigInt(i) => Value::Str(i.to_string().into()),
        DbValue::Double(d) => Value::Str(double_text(*d).into()),
        DbValue::Str(s) => Value::Str(s.clone().into()),
        DbValue::DateTime(t) => Value::Int(*t),
        DbValue::Blob(b) => Value::Str(String::from_utf8_lossy(b).into_owned().into()),
    }
}

/// A real as SQLite's text form writes it (`2.0`, `3.5`).
fn double_text(d: f64) -> String {
    if d.is_finite() && d == d.trunc() && d.abs() < 1e15 {
        format!("{d:.1}")
    } else {
        format!("{d}")
    }
}

/// What `$dbr(name=>key)` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// `rows`
    Rows,
    /// `cols`
    Cols,
    /// `[row,col]`, each a number or a pseudo-variable.
    Cell(Index, Index),
    /// `colname[n]`
    ColName(Index),
}

/// A row or column index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Index {
    /// A number.
    Num(i64),
    /// A pseudo-variable holding an integer.
    Pv(String),
}

fn index(s: &str) -> Result<Index, String> {
    let s = s.trim();
    if s.starts_with('$') {
        return Ok(Index::Pv(s.to_string()));
    }
    s.parse::<i64>()
        .map(Index::Num)
        .map_err(|_| format!("bad number '{s}' in $dbr"))
}

/// Reads `name=>key` as Kamailio does: white space around the name and
/// before `=>`, none after it; the key's trailing white space dropped.
pub fn parse_name(inner: &str) -> Result<(String, Key), String> {
    let (name, key) = inner
        .split_once("=>")
        .ok_or_else(|| format!("$dbr({inner}): no '=>'"))?;
    let name = name.trim().to_string();
    let key = key.trim_end();
    if key.len() < 2 {
        return Err(format!("$dbr({inner}): invalid key"));
    }
    let k = match key {
        "rows" => Key::Rows,
        "cols" => Key::Cols,
        k if k.starts_with('[') && k.ends_with(']') => {
            let (r, c) = k[1..k.len() - 1]
                .split_once(',')
                .ok_or_else(|| format!("$dbr({inner}): invalid key"))?;
            Key::Cell(index(r)?, index(c)?)
        }
        k if k.len() > 9 && k.starts_with("colname") => {
            let rest = k["colname".len()..].trim_start();
            let n = rest
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .ok_or_else(|| format!("$dbr({inner}): invalid key"))?;
            if n.starts_with(char::is_whitespace) {
                return Err(format!("$dbr({inner}): invalid key"));
            }
            Key::ColName(index(n)?)
        }
        _ => return Err(format!("$dbr({inner}): unknown key")),
    };
    Ok((name, k))
}

/// A row/column index's value (`None` when a pseudo-variable does not
/// hold an integer, or it is negative).
pub fn resolve(ix: &Index, pv: &mut dyn FnMut(&str) -> Option<Value<'static>>) -> Option<usize> {
    let n = match ix {
        Index::Num(n) => *n,
        Index::Pv(p) => match pv(p) {
            Some(Value::Int(i)) => i,
            // An unset variable counts as 0, a string is refused.
            Some(Value::Null) | None => 0,
            Some(Value::Str(_)) => return None,
        },
    };
    usize::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_kamailio_reads_them() {
        assert_eq!(parse_name(" ra =>rows").unwrap(), ("ra".into(), Key::Rows));
        assert_eq!(parse_name("ra=>cols ").unwrap().1, Key::Cols);
        assert_eq!(
            parse_name("ra=>[ 1 , $var(c) ]").unwrap().1,
            Key::Cell(Index::Num(1), Index::Pv("$var(c)".into()))
        );
        assert_eq!(
            parse_name("ra=>colname [2]").unwrap().1,
            Key::ColName(Index::Num(2))
        );
        assert!(parse_name("ra=>colname[ 1]").is_err());
        assert!(parse_name("ra=> rows").is_err());
        assert!(parse_name("ra=>x").is_err());
        assert!(parse_name("ra=>[a,1]").is_err());
        assert!(parse_name("ra").is_err());
    }

    #[test]
    fn values_convert_as_sqlops_converts_them() {
        assert_eq!(
            to_value(&DbValue::BigInt(5_000_000_000)),
            Value::Str("5000000000".into())
        );
        assert_eq!(to_value(&DbValue::Int(-3)), Value::Int(-3));
        assert_eq!(to_value(&DbValue::Double(2.0)), Value::Str("2.0".into()));
        assert_eq!(to_value(&DbValue::Null), Value::Null);
    }

    #[test]
    fn indexes_take_integers_only() {
        let mut pv = |p: &str| match p {
            "$var(i)" => Some(Value::Int(2)),
            "$var(s)" => Some(Value::Str("1".into())),
            _ => Some(Value::Null),
        };
        assert_eq!(resolve(&Index::Pv("$var(i)".into()), &mut pv), Some(2));
        assert_eq!(resolve(&Index::Pv("$var(s)".into()), &mut pv), None);
        assert_eq!(resolve(&Index::Pv("$var(u)".into()), &mut pv), Some(0));
        assert_eq!(resolve(&Index::Num(-1), &mut pv), None);
    }
}
