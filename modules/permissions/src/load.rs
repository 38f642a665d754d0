//! Reading the `address` table (or `address_file`) and the `trusted`
//! table, with Kamailio's columns, versions and checks.

use crate::address::{self, Row, Table};
use crate::trusted::{self, RawRow};
use crate::{int, text, Permissions};
use sr_sdk::db::{self, schema, Cond, DbConn, DbError, DbValue, Order};
use sr_sdk::prelude::*;

/// Runs `f` on a pooled connection, its faults as text.
fn with_conn<T>(
    pm: &Permissions,
    f: impl FnOnce(&mut dyn DbConn) -> Result<T, String>,
) -> Result<T, String> {
    let pool = pm.pool.get().ok_or("no db_url")?;
    pool.with(|c| f(c).map_err(DbError)).map_err(|e| e.0)
}

/// A fault in row `r` of `table`.
fn invalid(table: &str, r: usize) -> String {
    format!("table {table}: invalid record {}", r + 1)
}

/// The address table: from `address_file` when set, else the database;
/// `None` when there is neither (or `load_backends` leaves it out).
pub fn address(pm: &Permissions) -> Result<Option<Table>, String> {
    if !pm.uses(1) {
        return Ok(None);
    }
    let max = usize::try_from(int(&pm.p.max_subnets)).unwrap_or(512);
    let file = text(&pm.p.address_file);
    let rows = if !file.is_empty() {
        let body = std::fs::read_to_string(&file)
            .map_err(|e| format!("permissions: cannot read address_file {file}: {e}"))?;
        address::parse_file(&body).map_err(|e| format!("permissions: {file}: {e}"))?
    } else if pm.pool.get().is_some() {
        address_rows(pm)?
    } else {
        return Ok(None);
    };
    Table::build(&rows, max)
        .map(Some)
        .map_err(|e| format!("permissions: {e}"))
}

fn address_rows(pm: &Permissions) -> Result<Vec<Row>, String> {
    let table = text(&pm.p.address_table);
    let c = &pm.p.address_cols;
    let [grp, ip, mask, port, tag] =
        [&c.grp, &c.ip_addr, &c.mask, &c.port, &c.tag].map(|l| text(l));
    with_conn(pm, |conn| {
        db::check_version(conn, &table, schema::ADDRESS_VERSION).map_err(|e| e.to_string())?;
        let rows = conn
            .query(&table, &[], &[&grp, &ip, &mask, &port, &tag], None)
            .map_err(|e| format!("reading table {table}: {e}"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in 0..rows.len() {
            let bad = || invalid(&table, r);
            let int = |col: &str| rows.get(r, col).as_i64().ok_or_else(bad);
            out.push(Row {
                grp: u32::try_from(int(&grp)?)
                    .ok()
                    .filter(|&g| g > 0)
                    .ok_or_else(bad)?,
                addr: rows.get(r, &ip).as_string().ok_or_else(bad)?,
                mask: u32::try_from(int(&mask)?).map_err(|_| bad())?,
                port: u16::try_from(int(&port)?).map_err(|_| bad())?,
                tag: rows.get(r, &tag).as_string(),
            });
        }
        Ok(out)
    })
    .map_err(|e| format!("permissions: {e}"))
}

fn trusted_rows(
    pm: &Permissions,
    conds: &[Cond],
    order: Option<&Order>,
) -> Result<Vec<RawRow>, String> {
    let table = text(&pm.p.trusted_table);
    let c = &pm.p.trusted_cols;
    let [src, proto, from, ruri, prio] =
        [&c.source, &c.proto, &c.from, &c.ruri, &c.priority].map(|l| text(l));
    let tag = text(&pm.p.address_cols.tag);
    with_conn(pm, |conn| {
        let rows = conn
            .query(
                &table,
                conds,
                &[&src, &proto, &from, &ruri, &prio, &tag],
                order,
            )
            .map_err(|e| format!("reading table {table}: {e}"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in 0..rows.len() {
            let bad = || invalid(&table, r);
            out.push(RawRow {
                src_ip: rows.get(r, &src).as_string().ok_or_else(bad)?,
                proto: rows.get(r, &proto).as_string().ok_or_else(bad)?,
                from_pattern: rows.get(r, &from).as_string(),
                ruri_pattern: rows.get(r, &ruri).as_string(),
                priority: rows.get(r, &prio).as_i64().unwrap_or(0),
                tag: rows.get(r, &tag).as_string(),
            });
        }
        Ok(out)
    })
}

/// Checks the trusted table's version.
pub fn check_trusted(pm: &Permissions) -> Result<(), String> {
    let table = text(&pm.p.trusted_table);
    with_conn(pm, |c| {
        db::check_version(c, &table, schema::TRUSTED_VERSION).map_err(|e| e.to_string())
    })
    .map_err(|e| format!("permissions: {e}"))
}

/// The trusted table, cached (`db_mode=1`); `None` without a database.
pub fn trusted(pm: &Permissions) -> Result<Option<Vec<trusted::Row>>, String> {
    if !pm.uses(2) || pm.pool.get().is_none() {
        return Ok(None);
    }
    check_trusted(pm)?;
    let rows = trusted_rows(pm, &[], None).map_err(|e| format!("permissions: {e}"))?;
    trusted::prepare(&rows)
        .map(Some)
        .map_err(|e| format!("permissions: {e}"))
}

/// The rows for `ip`, read now (`db_mode=0`), in the database's priority
/// order.
pub fn trusted_for(pm: &Permissions, ip: &str) -> Result<Vec<trusted::Row>, String> {
    let src = text(&pm.p.trusted_cols.source);
    let order = Order {
        col: text(&pm.p.trusted_cols.priority),
        desc: false,
    };
    let raw = trusted_rows(pm, &[Cond::eq(&src, DbValue::str(ip))], Some(&order))?;
    let mut out = Vec::with_capacity(raw.len());
    for r in &raw {
        match trusted::Row::new(r, false) {
            Ok(Some(row)) => out.push(row),
            Ok(None) => {}
            Err(e) => lm_err!("permissions: {e}"),
        }
    }
    Ok(out)
}
