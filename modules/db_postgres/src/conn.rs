//! One PostgreSQL connection implementing `DbConn`.

use bytes::BytesMut;
use postgres::types::{Format, IsNull, ToSql, Type};
use postgres::{Client, Column, NoTls, Row, Statement};
use sr_sdk::db::schema::{ColType, TableDef};
use sr_sdk::db::sql::{redact, Dialect, Marks, ServerUrl};
use sr_sdk::db::{
    format_datetime, Cond, DbConn, DbError, DbResult, DbValue, Order, RawResult, Rows,
};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A connection to one PostgreSQL database.
pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// Unique keys by table, for `replace` (read once from the catalog).
    unique_keys: HashMap<String, Vec<Vec<String>>>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgConn")
    }
}

fn err(e: postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(d) => DbError(format!("postgres: {}: {}", d.severity(), d.message())),
        None => DbError(format!("postgres: {e}")),
    }
}

/// A parameter sent as text, for the server to read as the column's
/// type (as Kamailio's db_postgres writes values into the SQL).
#[derive(Debug)]
struct Text(Option<String>);

impl ToSql for Text {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    postgres::types::to_sql_checked!();
}

fn to_text(v: &DbValue) -> Text {
    Text(match v {
        DbValue::Null => None,
        DbValue::Int(i) => Some(i.to_string()),
        DbValue::BigInt(i) => Some(i.to_string()),
        DbValue::Double(d) => Some(d.to_string()),
        DbValue::Str(s) => Some(s.clone()),
        DbValue::DateTime(t) => Some(format_datetime(*t)),
        DbValue::Blob(b) => {
            let mut s = String::with_capacity(2 + b.len() * 2);
            s.push_str("\\x");
            for x in b {
                s.push_str(&format!("{x:02x}"));
            }
            Some(s)
        }
    })
}

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// A column's value, typed as Kamailio's db_postgres types it.
fn cell(row: &Row, i: usize, c: &Column) -> DbValue {
    fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Option<T> {
        row.try_get::<_, Option<T>>(i).ok().flatten()
    }
    let t = c.type_();
    let v = if *t == Type::BOOL {
        get::<bool>(row, i).map(|b| DbValue::Int(i32::from(b)))
    } else if *t == Type::INT2 {
        get::<i16>(row, i).map(|n| DbValue::Int(i32::from(n)))
    } else if *t == Type::INT4 {
        get::<i32>(row, i).map(DbValue::Int)
    } else if *t == Type::INT8 {
        get::<i64>(row, i).map(DbValue::BigInt)
    } else if *t == Type::OID {
        get::<u32>(row, i).map(|n| DbValue::BigInt(i64::from(n)))
    } else if *t == Type::FLOAT4 {
        get::<f32>(row, i).map(|f| DbValue::Double(f64::from(f)))
    } else if *t == Type::FLOAT8 {
        get::<f64>(row, i).map(DbValue::Double)
    } else if *t == Type::TIMESTAMP || *t == Type::TIMESTAMPTZ {
        get::<SystemTime>(row, i).map(|s| DbValue::DateTime(secs(s)))
    } else if *t == Type::BYTEA {
        get::<Vec<u8>>(row, i).map(DbValue::Blob)
    } else {
        // TEXT, VARCHAR, CHAR, NAME and anything else that reads as text.
        match row.try_get::<_, Option<String>>(i) {
            Ok(v) => v.map(DbValue::Str),
            Err(e) => {
                sr_sdk::lm_err!("db_postgres: column {} ({t}) is not read: {e}", c.name());
                None
            }
        }
    };
    v.unwrap_or(DbValue::Null)
}

fn rows_of(result: &[Row], columns: &[Column]) -> Rows {
    Rows {
        columns: columns.iter().map(|c| c.name().to_string()).collect(),
        rows: result
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| cell(r, i, c))
                    .collect()
            })
            .collect(),
    }
}

/// PostgreSQL's SQL (constraint and index names share one namespace:
/// prefixed with the table's, as in Kamailio's schema).
const DIALECT: Dialect = Dialect {
    quote: '"',
    marks: Marks::DollarN,
    col_type: sql_type,
    prefix_names: true,
};

fn texts(v: Vec<&DbValue>) -> Vec<Text> {
    v.into_iter().map(to_text).collect()
}

/// Kamailio's PostgreSQL column types (its `postgres/*-create.sql`).
fn sql_type(t: ColType) -> String {
    match t {
        ColType::Id => "SERIAL PRIMARY KEY".into(),
        ColType::Int => "INTEGER".into(),
        ColType::BigInt => "BIGINT".into(),
        ColType::Double => "DOUBLE PRECISION".into(),
        ColType::Varchar(n) => format!("VARCHAR({n})"),
        ColType::Text => "TEXT".into(),
        ColType::DateTime => "TIMESTAMP WITHOUT TIME ZONE".into(),
        ColType::Blob => "BYTEA".into(),
    }
}

impl PgConn {
    /// Connects to the server of a `postgres://` URL; `timeout` bounds the
    /// connection.
    pub fn open(u: &str, timeout: Duration) -> DbResult<PgConn> {
        let p = ServerUrl::parse(u, "postgres", 5432)?;
        let mut cfg = postgres::Config::new();
        cfg.host(&p.host)
            .port(p.port)
            .dbname(&p.database)
            .connect_timeout(timeout);
        if !p.user.is_empty() {
            cfg.user(&p.user);
        }
        if !p.password.is_empty() {
            cfg.password(&p.password);
        }
        let client = cfg.connect(NoTls).map_err(|e| {
            DbError(format!(
                "postgres: cannot connect to {}: {}",
                redact(u),
                err(e).0.trim_start_matches("postgres: ")
            ))
        })?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
            unique_keys: HashMap::new(),
        })
    }

    /// Runs SQL text with no result (for tools and tests).
    pub fn execute(&mut self, sql: &str) -> DbResult<()> {
        self.client.batch_execute(sql).map_err(err)
    }

    fn statement(&mut self, sql: &str) -> DbResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let st = self.client.prepare(sql).map_err(err)?;
        if self.statements.len() >= 64 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    fn run(&mut self, sql: &str, args: &[Text]) -> DbResult<u64> {
        let st = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        self.client.execute(&st, &params).map_err(err)
    }

    fn select(&mut self, sql: &str, args: &[Text]) -> DbResult<Rows> {
        let st = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        let rows = self.client.query(&st, &params).map_err(err)?;
        Ok(rows_of(&rows, st.columns()))
    }

    /// The table's unique keys (constraints and unique indexes), by column.
    fn keys(&mut self, table: &str) -> DbResult<Vec<Vec<String>>> {
        if let Some(k) = self.unique_keys.get(table) {
            return Ok(k.clone());
        }
        let rows = self
            .client
            .query(
                "SELECT array_agg(a.attname::text ORDER BY k.ord) \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE c.relname = $1 AND i.indisunique AND NOT i.indisprimary \
                 GROUP BY i.indexrelid",
                &[&table],
            )
            .map_err(err)?;
        let keys: Vec<Vec<String>> = rows
            .iter()
            .filter_map(|r| r.try_get::<_, Vec<String>>(0).ok())
            .collect();
        self.unique_keys.insert(table.to_string(), keys.clone());
        Ok(keys)
    }
}

impl DbConn for PgConn {
    fn query(
        &mut self,
        table: &str,
        conds: &[Cond],
        columns: &[&str],
        order: Option<&Order>,
    ) -> DbResult<Rows> {
        let (sql, a) = DIALECT.select(table, conds, columns, order)?;
        self.select(&sql, &texts(a))
    }

    fn insert(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        let sql = DIALECT.insert("INSERT", table, values)?;
        let args: Vec<Text> = values.iter().map(|(_, v)| to_text(v)).collect();
        self.run(&sql, &args).map(|_| ())
    }

    fn update(&mut self, table: &str, conds: &[Cond], values: &[(&str, DbValue)]) -> DbResult<u64> {
        if values.is_empty() {
            return Ok(0);
        }
        let (sql, a) = DIALECT.update(table, conds, values)?;
        self.run(&sql, &texts(a))
    }

    fn delete(&mut self, table: &str, conds: &[Cond]) -> DbResult<u64> {
        let (sql, a) = DIALECT.delete(table, conds)?;
        self.run(&sql, &texts(a))
    }

    /// PostgreSQL has no REPLACE: an insert that updates the row with the
    /// same unique key (the first unique key all given columns cover).
    fn replace(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        let mut sql = DIALECT.insert("INSERT", table, values)?;
        let given: Vec<&str> = values.iter().map(|(c, _)| *c).collect();
        let key = self
            .keys(table)?
            .into_iter()
            .find(|k| k.iter().all(|c| given.contains(&c.as_str())));
        if let Some(k) = key {
            let cols = k
                .iter()
                .map(|c| DIALECT.ident(c))
                .collect::<DbResult<Vec<_>>>()?;
            sql.push_str(&format!(" ON CONFLICT ({}) DO ", cols.join(",")));
            let rest: Vec<&str> = given
                .iter()
                .copied()
                .filter(|c| !k.iter().any(|x| x == c))
                .collect();
            if rest.is_empty() {
                sql.push_str("NOTHING");
            } else {
                sql.push_str("UPDATE SET ");
                for (i, c) in rest.iter().enumerate() {
                    if i > 0 {
                        sql.push(',');
                    }
                    let q = DIALECT.ident(c)?;
                    sql.push_str(&format!("{q}=EXCLUDED.{q}"));
                }
            }
        }
        let args: Vec<Text> = values.iter().map(|(_, v)| to_text(v)).collect();
        self.run(&sql, &args).map(|_| ())
    }

    fn create_table(&mut self, def: &TableDef) -> DbResult<()> {
        self.unique_keys.remove(def.name);
        for st in DIALECT.create_table(def)? {
            self.execute(&st)?;
        }
        Ok(())
    }

    fn table_exists(&mut self, table: &str) -> DbResult<bool> {
        let rows = self
            .client
            .query(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
                &[&table],
            )
            .map_err(err)?;
        Ok(!rows.is_empty())
    }

    fn raw(&mut self, sql: &str) -> DbResult<RawResult> {
        let st = self.client.prepare(sql).map_err(err)?;
        if st.columns().is_empty() {
            let affected = self.client.execute(&st, &[]).map_err(err)?;
            return Ok(RawResult {
                has_rows: false,
                rows: Rows::default(),
                affected,
            });
        }
        let rows = self.client.query(&st, &[]).map_err(err)?;
        Ok(RawResult {
            has_rows: true,
            rows: rows_of(&rows, st.columns()),
            affected: 0,
        })
    }

    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn DbConn) -> DbResult<()>) -> DbResult<()> {
        self.execute("BEGIN")?;
        match f(self) {
            Ok(()) => self.execute("COMMIT"),
            Err(e) => {
                let _ = self.execute("ROLLBACK");
                Err(e)
            }
        }
    }
}
