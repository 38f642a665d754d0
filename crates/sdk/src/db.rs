//! The database API, in the spirit of Kamailio's `srdb1`: a `db_url` whose
//! scheme picks the driver (`sqlite:///var/lib/siprouter/sr.db`), tables of
//! typed columns, and `query`/`insert`/`update`/`delete`/`replace` on them.
//! Every failure is a [`DbError`] value; nothing here panics.
//!
//! ## Drivers
//!
//! A driver module (such as `db_sqlite`) implements [`DbDriver`] and
//! publishes it in its `mod_init` with [`register_driver`], which is
//! [`Core::register_api`] under the name `db:<scheme>` (`db:sqlite`,
//! later `db:postgres`, `db:mysql`, `db:redis`). A module that needs a
//! database calls [`open`] (or builds a [`DbPool`]) with its `db_url`; it
//! never names a driver, so new drivers plug in without touching it. As
//! in Kamailio, the driver module must be loaded before the modules using
//! it.
//!
//! ## Connections and threads
//!
//! A [`DbConn`] is one connection, used by one thread at a time. A
//! [`DbPool`] keeps a few idle connections and opens more on demand, so
//! that workers, the timer and RPC threads can use the database at once.
//!
//! ## Schema
//!
//! [`schema`] holds Kamailio's table definitions (`version`, `location`,
//! `subscriber`, ...) with their version numbers; [`DbConn::create_table`]
//! creates one in a driver's dialect and [`check_version`] refuses a table
//! whose row in `version` is not the expected one.

pub mod avpops_tables;
pub mod drouting_tables;
pub mod lcr_tables;
pub mod msilo_tables;
pub mod mtree_tables;
pub mod pdt_tables;
pub mod pipelimit_tables;
pub mod prefix_route_tables;
pub mod presence_tables;
pub mod schema;
pub mod siptrace_tables;
pub mod sql;
pub mod topos_tables;
pub mod uri_tables;
pub mod userblocklist_tables;

use crate::core_api::Core;
use std::fmt;
use std::sync::{Arc, Mutex};

/// A database error: what failed, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError(pub String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

impl DbError {
    /// An error from any displayable cause.
    pub fn new(m: impl fmt::Display) -> DbError {
        DbError(m.to_string())
    }
}

/// Result of a database operation.
pub type DbResult<T> = Result<T, DbError>;

/// A typed column value (Kamailio's `db_val_t`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum DbValue {
    /// SQL NULL.
    #[default]
    Null,
    /// A 32-bit integer (`DB1_INT`).
    Int(i32),
    /// A 64-bit integer (`DB1_BIGINT`).
    BigInt(i64),
    /// A floating point number (`DB1_DOUBLE`).
    Double(f64),
    /// Text (`DB1_STR`/`DB1_STRING`).
    Str(String),
    /// A point in time as unix seconds (`DB1_DATETIME`).
    DateTime(i64),
    /// Bytes (`DB1_BLOB`).
    Blob(Vec<u8>),
}

impl DbValue {
    /// A text value.
    pub fn str(s: impl Into<String>) -> DbValue {
        DbValue::Str(s.into())
    }

    /// Text, or NULL for `None`.
    pub fn opt_str(s: Option<&str>) -> DbValue {
        s.map_or(DbValue::Null, DbValue::str)
    }

    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, DbValue::Null)
    }

    /// The integer meaning (doubles truncated, numeric text parsed,
    /// date-times as unix seconds); `None` for NULL, blobs and other text.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            DbValue::Int(i) => Some(*i as i64),
            DbValue::BigInt(i) | DbValue::DateTime(i) => Some(*i),
            DbValue::Double(d) if d.is_finite() => Some(*d as i64),
            DbValue::Str(s) => s.trim().parse().ok().or_else(|| parse_datetime(s)),
            _ => None,
        }
    }

    /// The floating point meaning.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            DbValue::Double(d) => Some(*d),
            DbValue::Int(i) => Some(*i as f64),
            DbValue::BigInt(i) | DbValue::DateTime(i) => Some(*i as f64),
            DbValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A date-time as unix seconds: from a date-time, an integer, or text
    /// in `YYYY-MM-DD HH:MM:SS` (UTC).
    pub fn as_time(&self) -> Option<i64> {
        match self {
            DbValue::Str(s) => parse_datetime(s).or_else(|| s.trim().parse().ok()),
            other => other.as_i64(),
        }
    }

    /// The text meaning: text as it is, numbers in decimal, date-times as
    /// `YYYY-MM-DD HH:MM:SS`; `None` for NULL.
    pub fn as_string(&self) -> Option<String> {
        match self {
            DbValue::Null => None,
            DbValue::Int(i) => Some(i.to_string()),
            DbValue::BigInt(i) => Some(i.to_string()),
            DbValue::Double(d) => Some(d.to_string()),
            DbValue::Str(s) => Some(s.clone()),
            DbValue::DateTime(t) => Some(format_datetime(*t)),
            DbValue::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        }
    }
}

/// A comparison in a `WHERE` clause (Kamailio's `db_op_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DbOp {
    /// `=`
    #[default]
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
}

impl DbOp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            DbOp::Eq => "=",
            DbOp::Ne => "!=",
            DbOp::Lt => "<",
            DbOp::Gt => ">",
            DbOp::Le => "<=",
            DbOp::Ge => ">=",
        }
    }
}

/// One condition: `column op value`. Conditions of a call are joined with
/// AND. Comparing with NULL by `Eq`/`Ne` means `IS NULL`/`IS NOT NULL`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    /// Column name.
    pub col: String,
    /// Operator.
    pub op: DbOp,
    /// Value.
    pub val: DbValue,
}

impl Cond {
    /// `col = val`.
    pub fn eq(col: &str, val: DbValue) -> Cond {
        Cond {
            col: col.to_string(),
            op: DbOp::Eq,
            val,
        }
    }

    /// `col op val`.
    pub fn new(col: &str, op: DbOp, val: DbValue) -> Cond {
        Cond {
            col: col.to_string(),
            op,
            val,
        }
    }
}

/// Rows returned by a query, with the column names asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Column names, in the order of each row's values.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<DbValue>>,
}

impl Rows {
    /// Index of a column by name.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }

    /// The value of column `name` in row `row` (NULL when absent).
    pub fn get(&self, row: usize, name: &str) -> &DbValue {
        const NULL: DbValue = DbValue::Null;
        match (self.rows.get(row), self.col(name)) {
            (Some(r), Some(c)) => r.get(c).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Ordering of a query's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Column.
    pub col: String,
    /// Descending instead of ascending.
    pub desc: bool,
}

/// One open connection. Used by one thread at a time (`Send`, not
/// `Sync`); see [`DbPool`] for sharing.
pub trait DbConn: Send {
    /// `SELECT columns FROM table WHERE conds [ORDER BY order]`. An
    /// empty `columns` means every column (their names are in the result).
    fn query(
        &mut self,
        table: &str,
        conds: &[Cond],
        columns: &[&str],
        order: Option<&Order>,
    ) -> DbResult<Rows>;

    /// `INSERT INTO table (cols) VALUES (vals)`.
    fn insert(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()>;

    /// `UPDATE table SET values WHERE conds`; returns the rows changed.
    fn update(&mut self, table: &str, conds: &[Cond], values: &[(&str, DbValue)]) -> DbResult<u64>;

    /// `DELETE FROM table WHERE conds`; returns the rows removed. No
    /// condition deletes every row.
    fn delete(&mut self, table: &str, conds: &[Cond]) -> DbResult<u64>;

    /// Inserts, or replaces the row with the same unique key
    /// (`REPLACE`/upsert).
    fn replace(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()>;

    /// Creates a table (and its indexes) if it does not exist.
    fn create_table(&mut self, def: &schema::TableDef) -> DbResult<()>;

    /// Whether a table exists.
    fn table_exists(&mut self, table: &str) -> DbResult<bool>;

    /// Runs several operations atomically: `f` gets the connection inside
    /// a transaction that is committed when it returns `Ok`, rolled back
    /// otherwise. Drivers without transactions just run `f`.
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn DbConn) -> DbResult<()>) -> DbResult<()>;

    /// Runs one SQL statement as written (sqlops' `sql_query`): a query's
    /// rows, or for anything else no rows and the number of rows it
    /// changed. Drivers without raw SQL refuse it (the default).
    fn raw(&mut self, sql: &str) -> DbResult<RawResult> {
        let _ = sql;
        Err(DbError::new("this database driver does not run raw SQL"))
    }
}

/// What [`DbConn::raw`] gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawResult {
    /// The statement returns rows (a query), even none.
    pub has_rows: bool,
    /// The rows, with their column names.
    pub rows: Rows,
    /// Rows changed (inserted, updated, deleted), for other statements.
    pub affected: u64,
}

/// A database driver: opens connections for URLs of its scheme.
pub trait DbDriver: Send + Sync {
    /// The URL scheme it serves (`sqlite`).
    fn scheme(&self) -> &str;
    /// Opens a connection.
    fn open(&self, url: &str) -> DbResult<Box<dyn DbConn>>;
}

/// The API name a driver is published under: `db:<scheme>`.
pub fn api_name(scheme: &str) -> String {
    format!("db:{}", scheme.to_ascii_lowercase())
}

/// The scheme of a `db_url` (`sqlite` for `sqlite:///x.db`; `flatstore`
/// for `flatstore:/var/log/acc`, whose URLs, as Kamailio's, need no
/// `//`).
pub fn url_scheme(url: &str) -> DbResult<&str> {
    let scheme = match url.split_once("://") {
        Some((s, _)) => Some(s),
        None => url.split_once(':').map(|(s, _)| s),
    };
    match scheme {
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) => Ok(s),
        _ => Err(DbError(format!(
            "'{url}' is not a database URL (scheme://...)"
        ))),
    }
}

/// Publishes a driver (call from the driver module's `mod_init`).
pub fn register_driver(core: &dyn Core, driver: Arc<dyn DbDriver>) {
    let name = api_name(driver.scheme());
    core.register_api(&name, Arc::new(driver));
}

/// Finds the driver for a URL's scheme.
pub fn driver_for(core: &dyn Core, url: &str) -> DbResult<Arc<dyn DbDriver>> {
    let scheme = url_scheme(url)?;
    crate::core_api::bind::<Arc<dyn DbDriver>>(core, &api_name(scheme))
        .map(|d| (*d).clone())
        .ok_or_else(|| {
            DbError(format!(
                "no database driver for '{scheme}://' (load the db_{scheme} module first)"
            ))
        })
}

/// Opens a connection to `url` with the driver its scheme names.
pub fn open(core: &dyn Core, url: &str) -> DbResult<Box<dyn DbConn>> {
    driver_for(core, url)?.open(url)
}

/// Connections shared by threads: idle ones are kept (up to `max_idle`),
/// more are opened on demand.
pub struct DbPool {
    driver: Arc<dyn DbDriver>,
    url: String,
    idle: Mutex<Vec<Box<dyn DbConn>>>,
    max_idle: usize,
}

impl fmt::Debug for DbPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbPool({})", self.url)
    }
}

impl DbPool {
    /// A pool for `url` using `driver`; one connection is opened at once
    /// so that a bad URL is reported at startup.
    pub fn new(driver: Arc<dyn DbDriver>, url: &str) -> DbResult<DbPool> {
        let first = driver.open(url)?;
        Ok(DbPool {
            driver,
            url: url.to_string(),
            idle: Mutex::new(vec![first]),
            max_idle: 8,
        })
    }

    /// A pool for `url` with the driver registered for its scheme.
    pub fn open(core: &dyn Core, url: &str) -> DbResult<DbPool> {
        DbPool::new(driver_for(core, url)?, url)
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `f` with a connection of the pool.
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn DbConn) -> DbResult<T>) -> DbResult<T> {
        let conn = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut conn = match conn {
            Some(c) => c,
            None => self.driver.open(&self.url)?,
        };
        let r = f(conn.as_mut());
        // A connection that failed is not kept: the next call opens a new
        // one (the server may have restarted).
        if r.is_ok() {
            if let Ok(mut v) = self.idle.lock() {
                if v.len() < self.max_idle {
                    v.push(conn);
                }
            }
        }
        r
    }
}

/// Creates every standard Kamailio table that is missing (`version`,
/// `location`, `location_attrs`, `subscriber`, `acc`, `missed_calls`,
/// `dispatcher`, `address`, `trusted`, `domain`, `domain_attrs`)
/// with its `version` row;
/// returns the names of the tables created.
pub fn init_standard_tables(conn: &mut dyn DbConn) -> DbResult<Vec<String>> {
    let mut created = Vec::new();
    for t in schema::standard() {
        if conn.table_exists(t.name)? {
            continue;
        }
        conn.create_table(&t)?;
        if table_version(conn, t.name)?.is_none() {
            conn.insert(
                "version",
                &[
                    ("table_name", DbValue::str(t.name)),
                    ("table_version", DbValue::Int(t.version as i32)),
                ],
            )?;
        }
        created.push(t.name.to_string());
    }
    Ok(created)
}

/// The version a table has in the `version` table, if it has a row.
pub fn table_version(conn: &mut dyn DbConn, table: &str) -> DbResult<Option<i64>> {
    let rows = conn.query(
        "version",
        &[Cond::eq("table_name", DbValue::str(table))],
        &["table_version"],
        None,
    )?;
    Ok(rows
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_i64()))
}

/// Refuses a table whose `version` row is missing or not `want`, with a
/// message saying what to do (Kamailio's `db_check_table_version`).
pub fn check_version(conn: &mut dyn DbConn, table: &str, want: i64) -> DbResult<()> {
    match table_version(conn, table) {
        Ok(Some(v)) if v == want => Ok(()),
        Ok(Some(v)) => Err(DbError(format!(
            "table '{table}' has version {v} in table 'version', expected {want}: \
             upgrade the table (its columns differ) and set its version row"
        ))),
        Ok(None) => Err(DbError(format!(
            "table '{table}' has no row in table 'version' (expected version {want}): \
             create the tables with 'siprouter db init'"
        ))),
        Err(e) => Err(DbError(format!(
            "cannot read the version of table '{table}': {e} \
             (create the tables with 'siprouter db init')"
        ))),
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC), as Kamailio's SQL
/// drivers write DATETIME columns.
pub fn format_datetime(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Unix seconds as an RFC 1123 date in GMT, as SIP's Date header writes
/// it: `Sat, 13 Nov 2010 23:29:00 GMT`.
pub fn format_rfc1123(t: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses an RFC 1123 date (`Sat, 13 Nov 2010 23:29:00 GMT`, the weekday
/// optional) as Unix seconds.
pub fn parse_rfc1123(text: &str) -> Option<i64> {
    let t = text.trim();
    let rest = t.split_once(',').map_or(t, |(_, r)| r).trim();
    let mut it = rest.split_whitespace();
    let d: i64 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(mon))? as i64 + 1;
    let y: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let se: i64 = hms.next()?.parse().ok()?;
    if !it.next()?.eq_ignore_ascii_case("GMT") {
        return None;
    }
    if !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// Parses `YYYY-MM-DD HH:MM:SS` (or with a `T`, optional fraction) as UTC.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, se) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {

    #[test]
    fn rfc1123_dates_both_ways() {
        assert_eq!(format_rfc1123(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format_rfc1123(1_289_690_940),
            "Sat, 13 Nov 2010 23:29:00 GMT"
        );
        assert_eq!(
            format_rfc1123(1_795_840_203),
            "Sat, 28 Nov 2026 04:30:03 GMT"
        );
        assert_eq!(
            parse_rfc1123("Sat, 13 Nov 2010 23:29:00 GMT"),
            Some(1_289_690_940)
        );
        assert_eq!(parse_rfc1123("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_rfc1123("yesterday"), None);
    }

    use super::*;

    #[test]
    fn datetimes_round_trip() {
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(format_datetime(951782400), "2000-02-29 00:00:00");
        assert_eq!(parse_datetime("2030-05-28 21:32:15"), Some(1906234335));
        for t in [0, 1, 86399, 951782400, 1906234335, 4102444800] {
            assert_eq!(parse_datetime(&format_datetime(t)), Some(t));
        }
        assert_eq!(parse_datetime("2030-13-28 21:32:15"), None);
        assert_eq!(parse_datetime("junk"), None);
        assert_eq!(DbValue::str("1970-01-01 00:01:00").as_time(), Some(60));
        assert_eq!(DbValue::BigInt(5).as_time(), Some(5));
    }

    #[test]
    fn urls_and_versions() {
        assert_eq!(url_scheme("sqlite:///a.db"), Ok("sqlite"));
        assert!(url_scheme("/a.db").is_err());
        assert_eq!(url_scheme("flatstore:/var/log/acc"), Ok("flatstore"));
        assert!(url_scheme("a b:/x").is_err());
        assert_eq!(api_name("SQLite"), "db:sqlite");
        let rows = Rows {
            columns: vec!["a".into(), "b".into()],
            rows: vec![vec![DbValue::Int(1), DbValue::str("x")]],
        };
        assert_eq!(rows.get(0, "B"), &DbValue::str("x"));
        assert_eq!(rows.get(1, "a"), &DbValue::Null);
    }
}
