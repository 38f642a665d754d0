//! A connection to a db_text folder: the database API over its tables in
//! memory, with Kamailio's db_text semantics (text compared without case,
//! NULL equal to NULL, rows added in front).

use crate::store::{Opts, Store};
use crate::table::{compare, compare_fields, to_db, to_field, Field, Table};
use sr_sdk::db::{schema, Cond, DbConn, DbError, DbOp, DbResult, DbValue, Order, Rows};
use std::cmp::Ordering;
use std::sync::Arc;

/// A connection.
pub struct TextConn {
    store: Arc<Store>,
    opts: Opts,
    /// Write changes back when the connection closes (for the command
    /// line, which has no shutdown to wait for).
    autoflush: bool,
}

impl TextConn {
    /// A connection to a folder's store.
    pub fn new(store: Arc<Store>, opts: Opts, autoflush: bool) -> TextConn {
        TextConn {
            store,
            opts,
            autoflush,
        }
    }
}

impl Drop for TextConn {
    fn drop(&mut self) {
        if self.autoflush {
            if let Err(e) = self.store.flush() {
                sr_sdk::lm_err!("db_text: {e}");
            }
        }
    }
}

fn err(e: String) -> DbError {
    DbError::new(e)
}

/// Column indexes of the conditions, checked.
fn cond_cols(t: &Table, conds: &[Cond]) -> Result<Vec<usize>, String> {
    conds
        .iter()
        .map(|c| {
            t.col(&c.col)
                .ok_or_else(|| format!("column <{}> not found", c.col))
        })
        .collect()
}

fn matches(row: &[Field], cols: &[usize], conds: &[Cond]) -> bool {
    cols.iter().zip(conds).all(|(&i, c)| {
        let o = compare(&row[i], &c.val);
        match c.op {
            DbOp::Eq => o == Ordering::Equal,
            DbOp::Ne => o != Ordering::Equal,
            DbOp::Lt => o == Ordering::Less,
            DbOp::Gt => o == Ordering::Greater,
            DbOp::Le => o != Ordering::Greater,
            DbOp::Ge => o != Ordering::Less,
        }
    })
}

/// The columns a `replace` matches rows on: the table's first unique key
/// in siprouter's schema whose columns are all given, else `id` when
/// given (Kamailio's callers name their key columns; the API here does
/// not).
fn replace_key(table: &str, values: &[(&str, DbValue)]) -> Vec<String> {
    let given = |c: &str| values.iter().any(|(n, _)| n.eq_ignore_ascii_case(c));
    let from_schema = schema::standard()
        .into_iter()
        .find(|d| d.name == table)
        .and_then(|d| {
            d.unique
                .iter()
                .find(|(_, cols)| cols.iter().all(|c| given(c)))
                .map(|(_, cols)| cols.iter().map(|c| c.to_string()).collect::<Vec<_>>())
        });
    match from_schema {
        Some(k) => k,
        None if given("id") => vec!["id".to_string()],
        None => Vec::new(),
    }
}

impl DbConn for TextConn {
    fn query(
        &mut self,
        table: &str,
        conds: &[Cond],
        columns: &[&str],
        order: Option<&Order>,
    ) -> DbResult<Rows> {
        let max = self.opts.max_rows;
        self.store
            .with(table, &self.opts, |t| -> Result<Rows, String> {
                let ccols = cond_cols(t, conds)?;
                let out_cols: Vec<usize> = if columns.is_empty() {
                    (0..t.cols.len()).collect()
                } else {
                    columns
                        .iter()
                        .map(|c| t.col(c).ok_or_else(|| format!("column <{c}> not found")))
                        .collect::<Result<_, _>>()?
                };
                let mut hits: Vec<&Vec<Field>> = t
                    .rows
                    .iter()
                    .filter(|r| matches(r, &ccols, conds))
                    .take(max)
                    .collect();
                if let Some(o) = order {
                    let oc = t
                        .col(&o.col)
                        .ok_or_else(|| format!("column <{}> not found", o.col))?;
                    hits.sort_by(|a, b| {
                        let x = compare_fields(&a[oc], &b[oc]);
                        if o.desc {
                            x.reverse()
                        } else {
                            x
                        }
                    });
                }
                Ok(Rows {
                    columns: out_cols.iter().map(|&i| t.cols[i].name.clone()).collect(),
                    rows: hits
                        .into_iter()
                        .map(|r| {
                            out_cols
                                .iter()
                                .map(|&i| to_db(t.cols[i].kind, &r[i]))
                                .collect()
                        })
                        .collect(),
                })
            })
            .and_then(|r| r)
            .map_err(err)
    }

    fn insert(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        self.store
            .with(table, &self.opts, |t| -> Result<(), String> {
                let row = t.new_row(values)?;
                t.rows.push_front(row);
                t.modified = true;
                Ok(())
            })
            .and_then(|r| r)
            .map_err(err)
    }

    fn update(&mut self, table: &str, conds: &[Cond], values: &[(&str, DbValue)]) -> DbResult<u64> {
        self.store
            .with(table, &self.opts, |t| -> Result<u64, String> {
                let ccols = cond_cols(t, conds)?;
                let mut set: Vec<(usize, Field)> = Vec::with_capacity(values.len());
                for (name, v) in values {
                    let i = t
                        .col(name)
                        .ok_or_else(|| format!("column <{name}> not found"))?;
                    let f = to_field(t.cols[i].kind, v)?;
                    if f.is_none() && !t.cols[i].null {
                        return Err(format!("null value not allowed - column {name}"));
                    }
                    set.push((i, f));
                }
                let mut n = 0;
                for row in t.rows.iter_mut().filter(|r| matches(r, &ccols, conds)) {
                    for (i, f) in &set {
                        row[*i] = f.clone();
                    }
                    n += 1;
                }
                if n > 0 {
                    t.modified = true;
                }
                Ok(n)
            })
            .and_then(|r| r)
            .map_err(err)
    }

    fn delete(&mut self, table: &str, conds: &[Cond]) -> DbResult<u64> {
        self.store
            .with(table, &self.opts, |t| -> Result<u64, String> {
                let ccols = cond_cols(t, conds)?;
                let before = t.rows.len();
                t.rows.retain(|r| !matches(r, &ccols, conds));
                let n = (before - t.rows.len()) as u64;
                if n > 0 || conds.is_empty() {
                    t.modified = true;
                }
                Ok(n)
            })
            .and_then(|r| r)
            .map_err(err)
    }

    fn replace(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        let key = replace_key(table, values);
        let conds: Vec<Cond> = key
            .iter()
            .filter_map(|k| {
                values
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| Cond::eq(k, v.clone()))
            })
            .collect();
        // Found and changed, or added, under one lock: two replaces of one
        // key at once leave one row.
        self.store
            .with(table, &self.opts, |t| -> Result<(), String> {
                let ccols = cond_cols(t, &conds)?;
                let pos = if conds.is_empty() {
                    None
                } else {
                    t.rows.iter().position(|r| matches(r, &ccols, &conds))
                };
                let Some(pos) = pos else {
                    let row = t.new_row(values)?;
                    t.rows.push_front(row);
                    t.modified = true;
                    return Ok(());
                };
                let mut fields = Vec::with_capacity(values.len());
                for (name, v) in values {
                    let i = t
                        .col(name)
                        .ok_or_else(|| format!("column <{name}> not found"))?;
                    let f = to_field(t.cols[i].kind, v)?;
                    if f.is_none() && !t.cols[i].null {
                        return Err(format!("null value not allowed - column {name}"));
                    }
                    fields.push((i, f));
                }
                if let Some(row) = t.rows.get_mut(pos) {
                    for (i, f) in fields {
                        row[i] = f;
                    }
                }
                t.modified = true;
                Ok(())
            })
            .and_then(|r| r)
            .map_err(err)
    }

    fn create_table(&mut self, def: &schema::TableDef) -> DbResult<()> {
        if self.store.exists(def.name) {
            return Ok(());
        }
        let mut head = String::new();
        for (i, c) in def.columns.iter().enumerate() {
            if i > 0 {
                head.push(' ');
            }
            let (kind, auto) = match c.ty {
                schema::ColType::Id => ("int", true),
                schema::ColType::Int | schema::ColType::BigInt | schema::ColType::DateTime => {
                    ("int", false)
                }
                schema::ColType::Double => ("double", false),
                schema::ColType::Varchar(_) | schema::ColType::Text => ("string", false),
                schema::ColType::Blob => ("blob", false),
            };
            head.push_str(&format!(
                "{}({kind}{})",
                c.name,
                if auto {
                    ",auto"
                } else if c.nullable {
                    ",null"
                } else {
                    ""
                }
            ));
        }
        head.push('\n');
        let path = self.store.path(def.name);
        std::fs::write(&path, head)
            .map_err(|e| DbError::new(format!("cannot create {}: {e}", path.display())))
    }

    fn table_exists(&mut self, table: &str) -> DbResult<bool> {
        Ok(self.store.exists(table))
    }

    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn DbConn) -> DbResult<()>) -> DbResult<()> {
        f(self)
    }
}
