//! One MySQL/MariaDB connection implementing `DbConn`.

use mysql::consts::ColumnType;
use mysql::prelude::Queryable;
use mysql::{Column, Conn, OptsBuilder, Params, Value};
use sr_sdk::db::schema::{ColType, TableDef};
use sr_sdk::db::sql::{redact, Dialect, Marks, ServerUrl};
use sr_sdk::db::{
    format_datetime, parse_datetime, Cond, DbConn, DbError, DbResult, DbValue, Order, RawResult,
    Rows,
};
use std::time::Duration;

/// A connection to one database of a MySQL or MariaDB server.
pub struct MysqlConn {
    conn: Conn,
}

impl std::fmt::Debug for MysqlConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MysqlConn")
    }
}

fn err(e: mysql::Error) -> DbError {
    DbError(format!("mysql: {e}"))
}

fn to_sql(v: &DbValue) -> Value {
    match v {
        DbValue::Null => Value::NULL,
        DbValue::Int(i) => Value::Int(i64::from(*i)),
        DbValue::BigInt(i) => Value::Int(*i),
        DbValue::Double(d) => Value::Double(*d),
        DbValue::Str(s) => Value::Bytes(s.as_bytes().to_vec()),
        DbValue::DateTime(t) => Value::Bytes(format_datetime(*t).into_bytes()),
        DbValue::Blob(b) => Value::Bytes(b.clone()),
    }
}

/// The charset number MySQL gives binary columns.
const BINARY_CHARSET: u16 = 63;

fn is_int(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_YEAR
            | MYSQL_TYPE_BIT
    )
}

fn is_time(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_DATE
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP2
            | MYSQL_TYPE_NEWDATE
    )
}

fn is_real(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE | MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL
    )
}

fn is_blob(c: &Column) -> bool {
    use ColumnType::*;
    c.character_set() == BINARY_CHARSET
        && matches!(
            c.column_type(),
            MYSQL_TYPE_BLOB
                | MYSQL_TYPE_TINY_BLOB
                | MYSQL_TYPE_MEDIUM_BLOB
                | MYSQL_TYPE_LONG_BLOB
                | MYSQL_TYPE_VAR_STRING
                | MYSQL_TYPE_STRING
                | MYSQL_TYPE_VARCHAR
        )
}

/// An integer in the type Kamailio gives the column: BIGINT columns as
/// 64-bit, the others as 32-bit when the value fits.
fn int_value(i: i64, t: ColumnType) -> DbValue {
    if t == ColumnType::MYSQL_TYPE_LONGLONG {
        return DbValue::BigInt(i);
    }
    match i32::try_from(i) {
        Ok(n) => DbValue::Int(n),
        Err(_) => DbValue::BigInt(i),
    }
}

/// A value as read, typed by its column (both protocols: the binary one
/// gives numbers and dates, the text one bytes).
fn from_sql(v: Value, c: &Column) -> DbValue {
    let t = c.column_type();
    match v {
        Value::NULL => DbValue::Null,
        Value::Int(i) => int_value(i, t),
        Value::UInt(u) => int_value(i64::try_from(u).unwrap_or(i64::MAX), t),
        Value::Float(f) => DbValue::Double(f64::from(f)),
        Value::Double(d) => DbValue::Double(d),
        Value::Date(y, mo, d, h, mi, s, _) => {
            let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
            DbValue::DateTime(parse_datetime(&text).unwrap_or(0))
        }
        Value::Time(neg, days, h, mi, s, _) => {
            let secs =
                i64::from(days) * 86400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
            DbValue::BigInt(if neg { -secs } else { secs })
        }
        Value::Bytes(b) => {
            if is_blob(c) {
                return DbValue::Blob(b);
            }
            let s = String::from_utf8_lossy(&b).into_owned();
            if is_int(t) {
                return s
                    .trim()
                    .parse::<i64>()
                    .map(|i| int_value(i, t))
                    .unwrap_or(DbValue::Str(s));
            }
            if is_real(t) {
                return s
                    .trim()
                    .parse::<f64>()
                    .map(DbValue::Double)
                    .unwrap_or(DbValue::Str(s));
            }
            if is_time(t) {
                return DbValue::DateTime(parse_datetime(&s).unwrap_or(0));
            }
            DbValue::Str(s)
        }
    }
}

/// MySQL's SQL (index names are per table there).
const DIALECT: Dialect = Dialect {
    quote: '`',
    marks: Marks::Question,
    col_type: sql_type,
    prefix_names: false,
};

fn args(v: Vec<&DbValue>) -> Vec<Value> {
    v.into_iter().map(to_sql).collect()
}

/// Kamailio's MySQL column types (its `*-create.sql` files).
fn sql_type(t: ColType) -> String {
    match t {
        ColType::Id => "INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY".into(),
        ColType::Int => "INT(11)".into(),
        ColType::BigInt => "BIGINT(20)".into(),
        ColType::Double => "DOUBLE".into(),
        ColType::Varchar(n) => format!("VARCHAR({n})"),
        ColType::Text => "TEXT".into(),
        ColType::DateTime => "DATETIME".into(),
        ColType::Blob => "BLOB".into(),
    }
}

impl MysqlConn {
    /// Connects to the server of a `mysql://` URL; `timeout` bounds the
    /// connect and each read and write.
    pub fn open(u: &str, timeout: Duration) -> DbResult<MysqlConn> {
        let p = ServerUrl::parse(u, "mysql", 3306)?;
        let opts = OptsBuilder::new()
            .ip_or_hostname(Some(p.host.clone()))
            .tcp_port(p.port)
            .user(Some(p.user.clone()).filter(|s| !s.is_empty()))
            .pass(Some(p.password.clone()).filter(|s| !s.is_empty()))
            .db_name(Some(p.database.clone()))
            .tcp_connect_timeout(Some(timeout))
            .read_timeout(Some(timeout))
            .write_timeout(Some(timeout));
        let conn = Conn::new(opts)
            .map_err(|e| DbError(format!("mysql: cannot connect to {}: {e}", redact(u))))?;
        Ok(MysqlConn { conn })
    }

    /// Runs SQL text with no result (for tools and tests).
    pub fn execute(&mut self, sql: &str) -> DbResult<()> {
        self.conn.query_drop(sql).map_err(err)
    }

    fn exec(&mut self, sql: &str, args: Vec<Value>) -> DbResult<u64> {
        let params = if args.is_empty() {
            Params::Empty
        } else {
            Params::Positional(args)
        };
        self.conn.exec_drop(sql, params).map_err(err)?;
        Ok(self.conn.affected_rows())
    }

    fn write(&mut self, verb: &str, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        let sql = DIALECT.insert(verb, table, values)?;
        let args = values.iter().map(|(_, v)| to_sql(v)).collect();
        self.exec(&sql, args).map(|_| ())
    }

    /// Rows of a statement, typed by their columns.
    fn rows(&mut self, sql: &str, params: Params) -> DbResult<Rows> {
        let mut result = self.conn.exec_iter(sql, params).map_err(err)?;
        let cols: Vec<Column> = result.columns().as_ref().to_vec();
        let mut out = Rows {
            columns: cols.iter().map(|c| c.name_str().into_owned()).collect(),
            rows: Vec::new(),
        };
        for row in result.by_ref() {
            let row = row.map_err(err)?.unwrap();
            out.rows.push(
                row.into_iter()
                    .zip(&cols)
                    .map(|(v, c)| from_sql(v, c))
                    .collect(),
            );
        }
        Ok(out)
    }
}

impl DbConn for MysqlConn {
    fn query(
        &mut self,
        table: &str,
        conds: &[Cond],
        columns: &[&str],
        order: Option<&Order>,
    ) -> DbResult<Rows> {
        let (sql, a) = DIALECT.select(table, conds, columns, order)?;
        let params = if a.is_empty() {
            Params::Empty
        } else {
            Params::Positional(args(a))
        };
        self.rows(&sql, params)
    }

    fn insert(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        self.write("INSERT", table, values)
    }

    fn update(&mut self, table: &str, conds: &[Cond], values: &[(&str, DbValue)]) -> DbResult<u64> {
        if values.is_empty() {
            return Ok(0);
        }
        let (sql, a) = DIALECT.update(table, conds, values)?;
        self.exec(&sql, args(a))
    }

    fn delete(&mut self, table: &str, conds: &[Cond]) -> DbResult<u64> {
        let (sql, a) = DIALECT.delete(table, conds)?;
        self.exec(&sql, args(a))
    }

    fn replace(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        self.write("REPLACE", table, values)
    }

    fn create_table(&mut self, def: &TableDef) -> DbResult<()> {
        for st in DIALECT.create_table(def)? {
            self.execute(&st)?;
        }
        Ok(())
    }

    fn table_exists(&mut self, table: &str) -> DbResult<bool> {
        let n: Option<i64> = self
            .conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
                (table,),
            )
            .map_err(err)?;
        Ok(n.unwrap_or(0) > 0)
    }

    fn raw(&mut self, sql: &str) -> DbResult<RawResult> {
        let rows = self.rows(sql, Params::Empty)?;
        Ok(RawResult {
            has_rows: !rows.columns.is_empty(),
            rows,
            affected: self.conn.affected_rows(),
        })
    }

    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn DbConn) -> DbResult<()>) -> DbResult<()> {
        self.execute("START TRANSACTION")?;
        match f(self) {
            Ok(()) => self.execute("COMMIT"),
            Err(e) => {
                let _ = self.execute("ROLLBACK");
                Err(e)
            }
        }
    }
}
