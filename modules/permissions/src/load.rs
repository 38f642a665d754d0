//! Reading the `address` table (or `address_file`) and the `trusted`
//! table, with Kamailio's columns, versions and checks.

use crate::address::{self, Row, Table};
use crate::trusted::{self, RawRow};
use crate::{int, text, Permissions};
use sr_sdk::db::{self, schema, Cond, DbConn, DbValue, Order};
use sr_sdk::prelude::*;

fn with_conn<T>(
    pm: &Permissions,
    f: impl FnOnce(&mut dyn DbConn) -> Result<T, String>,
) -> Result<T, String> {
    let pool = pm.pool.get().ok_or("no db_url")?;
    let mut out = Err(String::new());
    pool.with(|c| {
        out = f(c);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    out
}

/// The address table: from `address_file` when set, else the database;
/// `None` when there is neither (or `load_backends` leaves it out).
pub fn address(pm: &Permissions, _core: &dyn Core) -> Result<Option<Table>, String> {
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
    let cols: Vec<String> = pm.p.address_cols.iter().map(|c| text(c)).collect();
    with_conn(pm, |c| {
        db::check_version(c, &table, schema::ADDRESS_VERSION).map_err(|e| e.to_string())?;
        let names: Vec<&str> = cols.iter().map(String::as_str).collect();
        let rows = c
            .query(&table, &[], &names, None)
            .map_err(|e| format!("reading table {table}: {e}"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in 0..rows.len() {
            let bad = || format!("table {table}: invalid record {}", r + 1);
            let grp = rows
                .get(r, &cols[0])
                .as_i64()
                .filter(|&g| g > 0)
                .ok_or_else(bad)?;
            let addr = rows.get(r, &cols[1]).as_string().ok_or_else(bad)?;
            let mask = rows.get(r, &cols[2]).as_i64().ok_or_else(bad)?;
            let port = rows.get(r, &cols[3]).as_i64().ok_or_else(bad)?;
            out.push(Row {
                grp: u32::try_from(grp).map_err(|_| bad())?,
                addr,
                mask: u32::try_from(mask).map_err(|_| bad())?,
                port: u16::try_from(port).map_err(|_| bad())?,
                tag: rows.get(r, &cols[4]).as_string(),
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
    let mut cols: Vec<String> = pm.p.trusted_cols.iter().map(|c| text(c)).collect();
    cols.push(text(&pm.p.address_cols[4]));
    with_conn(pm, |c| {
        let names: Vec<&str> = cols.iter().map(String::as_str).collect();
        let rows = c
            .query(&table, conds, &names, order)
            .map_err(|e| format!("reading table {table}: {e}"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in 0..rows.len() {
            let bad = || format!("table {table}: invalid record {}", r + 1);
            out.push(RawRow {
                src_ip: rows.get(r, &cols[0]).as_string().ok_or_else(bad)?,
                proto: rows.get(r, &cols[1]).as_string().ok_or_else(bad)?,
                from_pattern: rows.get(r, &cols[2]).as_string(),
                ruri_pattern: rows.get(r, &cols[3]).as_string(),
                priority: rows.get(r, &cols[4]).as_i64().unwrap_or(0),
                tag: rows.get(r, &cols[5]).as_string(),
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
pub fn trusted(pm: &Permissions, _core: &dyn Core) -> Result<Option<Vec<trusted::Row>>, String> {
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
    let src = text(&pm.p.trusted_cols[0]);
    let order = Order {
        col: text(&pm.p.trusted_cols[4]),
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
