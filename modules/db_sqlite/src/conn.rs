//! One SQLite connection implementing `DbConn`.

use rusqlite::types::{ToSql, ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{params_from_iter, Connection, OpenFlags};
use sr_sdk::db::schema::{ColType, TableDef};
use sr_sdk::db::sql::{Dialect, Marks};
use sr_sdk::db::{
    format_datetime, parse_datetime, Cond, DbConn, DbError, DbResult, DbValue, Order, Rows,
};
use std::time::Duration;

/// A connection to one SQLite file.
pub struct SqliteConn {
    conn: Connection,
}

impl std::fmt::Debug for SqliteConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteConn")
    }
}

/// The file path of a `sqlite://` URL: `sqlite:///abs.db` is `/abs.db`,
/// `sqlite://rel.db` is `rel.db`.
pub fn path_of_url(url: &str) -> DbResult<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("SQLITE://"))
        .ok_or_else(|| DbError(format!("'{url}' is not a sqlite:// URL")))?;
    let path = rest.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        return Err(DbError(format!("'{url}' names no database file")));
    }
    Ok(path.to_string())
}

fn err(e: rusqlite::Error) -> DbError {
    DbError(format!("sqlite: {e}"))
}

/// A value bound as a statement parameter by reference: text and blobs
/// are not copied into a `rusqlite` value first.
struct Bind<'a>(&'a DbValue);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            DbValue::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            DbValue::Int(i) => ToSqlOutput::Owned(SqlValue::Integer(*i as i64)),
            DbValue::BigInt(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            DbValue::Double(d) => ToSqlOutput::Owned(SqlValue::Real(*d)),
            DbValue::Str(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            DbValue::DateTime(t) => ToSqlOutput::Owned(SqlValue::Text(format_datetime(*t))),
            DbValue::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// Whether a column's declared type holds date-times (`TIMESTAMP`,
/// `DATETIME` anywhere in it, or exactly `DATE`; any case).
fn is_time_decl(decl: &str) -> bool {
    let has = |word: &str| {
        decl.as_bytes()
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    };
    has("TIMESTAMP") || has("DATETIME") || decl.eq_ignore_ascii_case("DATE")
}

fn from_sql(v: ValueRef<'_>, is_time: bool) -> DbValue {
    match v {
        ValueRef::Null => DbValue::Null,
        ValueRef::Integer(i) if is_time => DbValue::DateTime(i),
        ValueRef::Integer(i) => match i32::try_from(i) {
            Ok(n) => DbValue::Int(n),
            Err(_) => DbValue::BigInt(i),
        },
        // Kamailio's db_sqlite writes a DATETIME as a Julian day number.
        ValueRef::Real(jd) if is_time => {
            DbValue::DateTime((86400.0 * (jd - 2440587.5)).round() as i64)
        }
        ValueRef::Real(d) => DbValue::Double(d),
        ValueRef::Text(t) => {
            let s = String::from_utf8_lossy(t).into_owned();
            match is_time.then(|| parse_datetime(&s)).flatten() {
                Some(t) => DbValue::DateTime(t),
                None => DbValue::Str(s),
            }
        }
        ValueRef::Blob(b) => DbValue::Blob(b.to_vec()),
    }
}

/// SQLite's SQL.
const DIALECT: Dialect = Dialect {
    quote: '"',
    marks: Marks::QuestionN,
    col_type: sql_type,
    prefix_names: true,
};

fn sql_type(t: ColType) -> String {
    match t {
        ColType::Id => "INTEGER PRIMARY KEY".into(),
        ColType::Int => "INTEGER".into(),
        ColType::BigInt => "BIGINT".into(),
        ColType::Double => "REAL".into(),
        ColType::Varchar(n) => format!("VARCHAR({n})"),
        ColType::Text => "TEXT".into(),
        ColType::DateTime => "TIMESTAMP WITHOUT TIME ZONE".into(),
        ColType::Blob => "BLOB".into(),
    }
}

/// How one database file is opened: Kamailio's `db_set_readonly`,
/// `db_set_journal_mode` and `db_set_busy_timeout` per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Milliseconds to wait for a lock held by another connection.
    pub busy_timeout_ms: u64,
    /// Open read-only: nothing is created or written.
    pub readonly: bool,
    /// The journal mode (`WAL` unless set).
    pub journal_mode: String,
}

impl OpenOptions {
    /// Read-write, WAL, with the given busy timeout.
    pub fn new(busy_timeout_ms: u64) -> OpenOptions {
        OpenOptions {
            busy_timeout_ms,
            readonly: false,
            journal_mode: "WAL".into(),
        }
    }
}

impl SqliteConn {
    /// Opens (creating if needed) the file of a `sqlite://` URL, in WAL
    /// mode with the given busy timeout.
    ///
    /// A database file that does not exist yet is created with Kamailio's
    /// standard tables (as `siprouter db init` makes them), so a server on
    /// a fresh machine needs no setup step.
    pub fn open(url: &str, busy_timeout_ms: u64) -> DbResult<SqliteConn> {
        SqliteConn::open_with(url, &OpenOptions::new(busy_timeout_ms))
    }

    /// Opens the file of a `sqlite://` URL as `opts` say. A read-only
    /// database must exist; a read-write one is created (with the
    /// standard tables) when missing.
    pub fn open_with(url: &str, opts: &OpenOptions) -> DbResult<SqliteConn> {
        let path = path_of_url(url)?;
        let fresh =
            !opts.readonly && !path.starts_with("file:") && !std::path::Path::new(&path).exists();
        if fresh {
            if let Some(dir) = std::path::Path::new(&path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| DbError(format!("cannot create the folder of '{path}': {e}")))?;
            }
        }
        let mode = if opts.readonly {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        };
        let flags = mode | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| DbError(format!("cannot open sqlite database '{path}': {e}")))?;
        conn.busy_timeout(Duration::from_millis(opts.busy_timeout_ms))
            .map_err(err)?;
        if !opts.readonly {
            conn.pragma_update(None, "journal_mode", &opts.journal_mode)
                .map_err(err)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(err)?;
        }
        let mut c = SqliteConn { conn };
        if fresh {
            sr_sdk::db::init_standard_tables(&mut c)?;
        }
        Ok(c)
    }

    /// Runs SQL text with no result (for tools).
    pub fn execute_batch(&mut self, sql: &str) -> DbResult<()> {
        self.conn.execute_batch(sql).map_err(err)
    }

    fn run_cached(&mut self, sql: &str) -> DbResult<()> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute([]))
            .map(|_| ())
            .map_err(err)
    }

    fn write(&mut self, verb: &str, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        let sql = DIALECT.insert(verb, table, values)?;
        self.exec(&sql, values.iter().map(|(_, v)| v)).map(|_| ())
    }

    fn exec<'v>(&mut self, sql: &str, args: impl Iterator<Item = &'v DbValue>) -> DbResult<u64> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute(params_from_iter(args.map(Bind))))
            .map(|n| n as u64)
            .map_err(err)
    }
}

impl DbConn for SqliteConn {
    fn query(
        &mut self,
        table: &str,
        conds: &[Cond],
        columns: &[&str],
        order: Option<&Order>,
    ) -> DbResult<Rows> {
        let (sql, args) = DIALECT.select(table, conds, columns, order)?;
        let mut st = self.conn.prepare_cached(&sql).map_err(err)?;
        let (names, is_time): (Vec<String>, Vec<bool>) = st
            .columns()
            .iter()
            .map(|c| {
                (
                    c.name().to_string(),
                    c.decl_type().is_some_and(is_time_decl),
                )
            })
            .unzip();
        let mut rows = st
            .query(params_from_iter(args.into_iter().map(Bind)))
            .map_err(err)?;
        let mut out = Rows {
            columns: names,
            rows: Vec::new(),
        };
        while let Some(r) = rows.next().map_err(err)? {
            let mut row = Vec::with_capacity(is_time.len());
            for (i, t) in is_time.iter().enumerate() {
                row.push(from_sql(r.get_ref(i).map_err(err)?, *t));
            }
            out.rows.push(row);
        }
        Ok(out)
    }

    fn insert(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        self.write("INSERT", table, values)
    }

    fn update(&mut self, table: &str, conds: &[Cond], values: &[(&str, DbValue)]) -> DbResult<u64> {
        if values.is_empty() {
            return Ok(0);
        }
        let (sql, args) = DIALECT.update(table, conds, values)?;
        self.exec(&sql, args.into_iter())
    }

    fn delete(&mut self, table: &str, conds: &[Cond]) -> DbResult<u64> {
        let (sql, args) = DIALECT.delete(table, conds)?;
        self.exec(&sql, args.into_iter())
    }

    fn replace(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        self.write("INSERT OR REPLACE", table, values)
    }

    fn create_table(&mut self, def: &TableDef) -> DbResult<()> {
        for st in DIALECT.create_table(def)? {
            self.conn.execute_batch(&st).map_err(err)?;
        }
        Ok(())
    }

    fn table_exists(&mut self, table: &str) -> DbResult<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1")
            .and_then(|mut st| st.exists([table]))
            .map_err(err)
    }

    fn raw(&mut self, sql: &str) -> DbResult<sr_sdk::db::RawResult> {
        crate::raw::run(&self.conn, sql)
    }

    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn DbConn) -> DbResult<()>) -> DbResult<()> {
        // Prepared once and cached, as the other statements: parsing the
        // text again cost as much as the write it wraps.
        self.run_cached("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(()) => self.run_cached("COMMIT"),
            Err(e) => {
                let _ = self.run_cached("ROLLBACK");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sr_sdk::db::{check_version, schema, DbOp};

    fn temp_url(name: &str) -> (String, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "sr-sqlite-{}-{name}-{}",
            std::process::id(),
            sr_sdk::db::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.db");
        (format!("sqlite://{}", p.display()), dir)
    }

    #[test]
    fn urls() {
        assert_eq!(path_of_url("sqlite:///var/x.db").unwrap(), "/var/x.db");
        assert_eq!(path_of_url("sqlite://x.db").unwrap(), "x.db");
        assert!(path_of_url("sqlite://").is_err());
        assert!(path_of_url("mysql://a/b").is_err());
    }

    #[test]
    fn readonly_and_journal_mode_are_honoured() {
        let (url, dir) = temp_url("ro");
        // A read-only database is not created when missing.
        let ro = OpenOptions {
            readonly: true,
            ..OpenOptions::new(100)
        };
        let e = SqliteConn::open_with(&url, &ro).unwrap_err();
        assert!(e.0.contains("cannot open"), "{e}");
        let delete = OpenOptions {
            journal_mode: "DELETE".into(),
            ..OpenOptions::new(100)
        };
        let c = SqliteConn::open_with(&url, &delete).unwrap();
        let mode: String = c
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        drop(c);
        let mut c = SqliteConn::open_with(&url, &ro).unwrap();
        assert!(c.table_exists("location").unwrap(), "read works");
        let e = c
            .insert(
                "version",
                &[
                    ("table_name", DbValue::str("x")),
                    ("table_version", DbValue::Int(1)),
                ],
            )
            .unwrap_err();
        assert!(e.0.contains("readonly"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn crud_and_versions() {
        let (url, dir) = temp_url("crud");
        // A new file comes with Kamailio's standard tables and versions.
        let mut c = SqliteConn::open(&url, 1000).unwrap();
        for t in schema::standard() {
            assert!(c.table_exists(t.name).unwrap(), "{} created", t.name);
        }
        // Opening an existing file creates nothing.
        c.execute_batch("DROP TABLE location_attrs").unwrap();
        drop(c);
        let mut c = SqliteConn::open(&url, 1000).unwrap();
        assert!(!c.table_exists("location_attrs").unwrap());
        assert!(c.table_exists("location").unwrap());
        check_version(&mut c, "location", 9).unwrap();
        let e = check_version(&mut c, "subscriber", 6).unwrap_err();
        assert!(e.0.contains("expected 6"), "{e}");
        assert!(check_version(&mut c, "nope", 1)
            .unwrap_err()
            .0
            .contains("db init"));
        c.insert(
            "location",
            &[
                ("ruid", DbValue::str("r1")),
                ("username", DbValue::str("alice")),
                ("contact", DbValue::str("sip:a@1.2.3.4")),
                ("expires", DbValue::DateTime(2_000_000_000)),
                ("q", DbValue::Double(0.5)),
                ("methods", DbValue::Null),
            ],
        )
        .unwrap();
        let r = c
            .query(
                "location",
                &[Cond::new("expires", DbOp::Gt, DbValue::DateTime(1_000))],
                &["ruid", "expires", "q", "methods", "domain"],
                None,
            )
            .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r.get(0, "expires"), &DbValue::DateTime(2_000_000_000));
        // As Kamailio's db_sqlite writes it: a Julian day number.
        assert_eq!(
            from_sql(ValueRef::Real(2_440_588.5), true),
            DbValue::DateTime(86_400)
        );
        for (decl, time) in [
            ("TIMESTAMP WITHOUT TIME ZONE", true),
            ("datetime", true),
            ("Date", true),
            ("DATE2", false),
            ("VARCHAR(64)", false),
            ("TIMESTAM", false),
            ("", false),
        ] {
            assert_eq!(is_time_decl(decl), time, "{decl}");
        }
        assert_eq!(r.get(0, "q"), &DbValue::Double(0.5));
        assert!(r.get(0, "methods").is_null());
        let n = c
            .update(
                "location",
                &[Cond::eq("ruid", DbValue::str("r1"))],
                &[("cseq", DbValue::Int(7))],
            )
            .unwrap();
        assert_eq!(n, 1);
        c.replace(
            "location",
            &[
                ("ruid", DbValue::str("r1")),
                ("username", DbValue::str("bob")),
            ],
        )
        .unwrap();
        let r = c.query("location", &[], &[], None).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r.get(0, "username"), &DbValue::str("bob"));
        assert_eq!(
            c.delete("location", &[Cond::eq("domain", DbValue::Null)])
                .unwrap(),
            1
        );
        assert!(c.query("bad name", &[], &[], None).is_err());
        assert!(c.query("missing", &[], &[], None).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
