//! SQL text for the drivers of SQL databases: statements built the same
//! way for SQLite, MySQL and PostgreSQL, with each dialect's quoting,
//! parameter marks and column types. The values go as parameters, in the
//! order returned, for the driver to bind in its own types.

use super::schema::{ColType, TableDef};
use super::{Cond, DbError, DbOp, DbResult, DbValue, Order};

/// How parameters are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    /// `?` (MySQL).
    Question,
    /// `?1`, `?2`, ... (SQLite).
    QuestionN,
    /// `$1`, `$2`, ... (PostgreSQL).
    DollarN,
}

/// A dialect.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// The quote around identifiers (`"` or `` ` ``).
    pub quote: char,
    /// Parameter marks.
    pub marks: Marks,
    /// The column types.
    pub col_type: fn(ColType) -> String,
    /// Constraint and index names prefixed with the table's (SQLite and
    /// PostgreSQL share one namespace for them).
    pub prefix_names: bool,
}

impl Dialect {
    /// Appends a quoted identifier; only letters, digits, `_` and `.`.
    pub fn push_ident(&self, s: &mut String, name: &str) -> DbResult<()> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(DbError(format!("invalid identifier '{name}'")));
        }
        s.push(self.quote);
        s.push_str(name);
        s.push(self.quote);
        Ok(())
    }

    /// A quoted identifier.
    pub fn ident(&self, name: &str) -> DbResult<String> {
        let mut s = String::with_capacity(name.len() + 2);
        self.push_ident(&mut s, name)?;
        Ok(s)
    }

    /// Appends the mark of the `n`-th parameter (1-based).
    pub fn push_mark(&self, s: &mut String, n: usize) {
        match self.marks {
            Marks::Question => s.push('?'),
            Marks::QuestionN => {
                s.push('?');
                crate::sip_msg::text::push_dec(s, n as u64);
            }
            Marks::DollarN => {
                s.push('$');
                crate::sip_msg::text::push_dec(s, n as u64);
            }
        }
    }

    /// Appends ` WHERE a = ? AND ...` for `conds`, their values to `args`
    /// (`= NULL` becomes `IS NULL`, `!= NULL` `IS NOT NULL`).
    pub fn push_where<'v>(
        &self,
        s: &mut String,
        conds: &'v [Cond],
        args: &mut Vec<&'v DbValue>,
    ) -> DbResult<()> {
        for (i, c) in conds.iter().enumerate() {
            s.push_str(if i == 0 { " WHERE " } else { " AND " });
            self.push_ident(s, &c.col)?;
            match (&c.val, c.op) {
                (DbValue::Null, DbOp::Eq) => s.push_str(" IS NULL"),
                (DbValue::Null, DbOp::Ne) => s.push_str(" IS NOT NULL"),
                (v, op) => {
                    args.push(v);
                    s.push(' ');
                    s.push_str(op.sql());
                    s.push(' ');
                    self.push_mark(s, args.len());
                }
            }
        }
        Ok(())
    }

    /// `SELECT columns FROM table WHERE ... [ORDER BY ...]` (every column
    /// when `columns` is empty) and its parameters.
    pub fn select<'v>(
        &self,
        table: &str,
        conds: &'v [Cond],
        columns: &[&str],
        order: Option<&Order>,
    ) -> DbResult<(String, Vec<&'v DbValue>)> {
        let mut s = String::with_capacity(64 + columns.len() * 16);
        s.push_str("SELECT ");
        if columns.is_empty() {
            s.push('*');
        }
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            self.push_ident(&mut s, c)?;
        }
        s.push_str(" FROM ");
        self.push_ident(&mut s, table)?;
        let mut args = Vec::with_capacity(conds.len());
        self.push_where(&mut s, conds, &mut args)?;
        if let Some(o) = order {
            s.push_str(" ORDER BY ");
            self.push_ident(&mut s, &o.col)?;
            if o.desc {
                s.push_str(" DESC");
            }
        }
        Ok((s, args))
    }

    /// `VERB INTO table (cols) VALUES (marks)`: the values are the
    /// parameters, in order. `verb` is `INSERT`, `REPLACE`, ...
    pub fn insert(&self, verb: &str, table: &str, values: &[(&str, DbValue)]) -> DbResult<String> {
        if values.is_empty() {
            return Err(DbError(format!("{verb}: no values for table '{table}'")));
        }
        let mut s = String::with_capacity(64 + values.len() * 24);
        s.push_str(verb);
        s.push_str(" INTO ");
        self.push_ident(&mut s, table)?;
        s.push_str(" (");
        for (i, (c, _)) in values.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            self.push_ident(&mut s, c)?;
        }
        s.push_str(") VALUES (");
        for i in 1..=values.len() {
            if i > 1 {
                s.push(',');
            }
            self.push_mark(&mut s, i);
        }
        s.push(')');
        Ok(s)
    }

    /// `UPDATE table SET a = ?, ... WHERE ...` and its parameters.
    pub fn update<'v>(
        &self,
        table: &str,
        conds: &'v [Cond],
        values: &'v [(&str, DbValue)],
    ) -> DbResult<(String, Vec<&'v DbValue>)> {
        let mut args = Vec::with_capacity(values.len() + conds.len());
        let mut s = String::with_capacity(64 + values.len() * 24);
        s.push_str("UPDATE ");
        self.push_ident(&mut s, table)?;
        s.push_str(" SET ");
        for (i, (c, v)) in values.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            args.push(v);
            self.push_ident(&mut s, c)?;
            s.push('=');
            self.push_mark(&mut s, args.len());
        }
        self.push_where(&mut s, conds, &mut args)?;
        Ok((s, args))
    }

    /// `DELETE FROM table WHERE ...` and its parameters.
    pub fn delete<'v>(
        &self,
        table: &str,
        conds: &'v [Cond],
    ) -> DbResult<(String, Vec<&'v DbValue>)> {
        let mut s = String::with_capacity(64);
        s.push_str("DELETE FROM ");
        self.push_ident(&mut s, table)?;
        let mut args = Vec::with_capacity(conds.len());
        self.push_where(&mut s, conds, &mut args)?;
        Ok((s, args))
    }

    /// The statements creating a table and its indexes if missing.
    pub fn create_table(&self, def: &TableDef) -> DbResult<Vec<String>> {
        let name = |n: &str| {
            if self.prefix_names {
                format!("{}_{n}", def.name)
            } else {
                n.to_string()
            }
        };
        let list = |cols: &[&str]| -> DbResult<String> {
            Ok(cols
                .iter()
                .map(|c| self.ident(c))
                .collect::<DbResult<Vec<_>>>()?
                .join(", "))
        };
        let mut cols = Vec::new();
        for c in &def.columns {
            let mut s = format!("{} {}", self.ident(c.name)?, (self.col_type)(c.ty));
            if let Some(d) = c.default {
                s.push_str(" DEFAULT ");
                s.push_str(d);
            }
            if !c.nullable {
                s.push_str(" NOT NULL");
            }
            cols.push(s);
        }
        for (n, uc) in &def.unique {
            cols.push(format!(
                "CONSTRAINT {} UNIQUE ({})",
                self.ident(&name(n))?,
                list(uc)?
            ));
        }
        let mut out = vec![format!(
            "CREATE TABLE IF NOT EXISTS {} (\n    {}\n)",
            self.ident(def.name)?,
            cols.join(",\n    ")
        )];
        for (n, ic) in &def.indexes {
            out.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                self.ident(&name(n))?,
                self.ident(def.name)?,
                list(ic)?
            ));
        }
        Ok(out)
    }
}

/// The parts of a database server URL: `scheme://user:password@host[:port]/database`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// User name (may be empty).
    pub user: String,
    /// Password (may be empty).
    pub password: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (the driver's default when not given).
    pub port: u16,
    /// The database.
    pub database: String,
}

impl ServerUrl {
    /// Parses a URL of `scheme` (ASCII case ignored); the password may
    /// hold `@` and `:` (the last `@` ends it, as Kamailio reads it).
    pub fn parse(url: &str, scheme: &str, default_port: u16) -> DbResult<ServerUrl> {
        let bad = |why: &str| DbError(format!("invalid database URL '{}': {why}", redact(url)));
        let rest = url
            .split_once("://")
            .filter(|(s, _)| s.eq_ignore_ascii_case(scheme))
            .map(|(_, r)| r)
            .ok_or_else(|| {
                bad(&format!(
                    "expected {scheme}://user:password@host[:port]/database"
                ))
            })?;
        let (auth, hostpart) = match rest.rfind('@') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => ("", rest),
        };
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let (hostport, database) = hostpart
            .split_once('/')
            .ok_or_else(|| bad("no database after the host"))?;
        if database.is_empty() || database.contains('/') {
            return Err(bad("the database name is missing or has a '/'"));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (h, p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
        };
        Ok(ServerUrl {
            user: user.to_string(),
            password: password.to_string(),
            host: host.to_string(),
            port,
            database: database.to_string(),
        })
    }
}

/// The URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((u, _)) => format!("{}{u}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(t: ColType) -> String {
        format!("{t:?}")
    }

    const PG: Dialect = Dialect {
        quote: '"',
        marks: Marks::DollarN,
        col_type: types,
        prefix_names: true,
    };
    const MY: Dialect = Dialect {
        quote: '`',
        marks: Marks::Question,
        col_type: types,
        prefix_names: false,
    };

    #[test]
    fn statements_and_parameters() {
        let conds = [
            Cond::eq("a", DbValue::Int(1)),
            Cond::eq("b", DbValue::Null),
            Cond::new("c", DbOp::Gt, DbValue::str("x")),
        ];
        let order = Order {
            col: "c".into(),
            desc: true,
        };
        let (s, args) = PG.select("t", &conds, &["a", "c"], Some(&order)).unwrap();
        assert_eq!(
            s,
            r#"SELECT "a","c" FROM "t" WHERE "a" = $1 AND "b" IS NULL AND "c" > $2 ORDER BY "c" DESC"#
        );
        assert_eq!(args, [&DbValue::Int(1), &DbValue::str("x")]);
        let vals = [("a", DbValue::Int(2))];
        let (s, args) = MY.update("t", &conds[..1], &vals).unwrap();
        assert_eq!(s, "UPDATE `t` SET `a`=? WHERE `a` = ?");
        assert_eq!(args.len(), 2);
        assert_eq!(
            MY.insert("REPLACE", "t", &vals).unwrap(),
            "REPLACE INTO `t` (`a`) VALUES (?)"
        );
        assert!(MY.select("bad name", &[], &[], None).is_err());
        assert!(MY.insert("INSERT", "t", &[]).is_err());
    }

    #[test]
    fn server_urls() {
        let u = ServerUrl::parse(
            "mysql://kamailio:kamailiorw@localhost/kamailio",
            "mysql",
            3306,
        )
        .unwrap();
        assert_eq!(
            (
                u.user.as_str(),
                u.password.as_str(),
                u.host.as_str(),
                u.port
            ),
            ("kamailio", "kamailiorw", "localhost", 3306)
        );
        let u = ServerUrl::parse("postgres://u:p@ss:w@[::1]:5433/db", "postgres", 5432).unwrap();
        assert_eq!(
            (u.password.as_str(), u.host.as_str(), u.port),
            ("p@ss:w", "::1", 5433)
        );
        assert!(ServerUrl::parse("mysql://u:p@host", "mysql", 1).is_err());
        assert!(ServerUrl::parse("mysql://u:p@host:x/db", "mysql", 1).is_err());
        assert!(ServerUrl::parse("sqlite:///x.db", "mysql", 1).is_err());
        assert_eq!(
            redact("mysql://kamailio:secret@h/db"),
            "mysql://kamailio:***@h/db"
        );
    }
}
