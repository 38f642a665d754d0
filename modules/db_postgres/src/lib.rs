//! # db_postgres: PostgreSQL servers
//!
//! Serves `db_url`s of the form `postgres://user:password@host[:port]/db`
//! (Kamailio's) for the database API of `sr_sdk::db`, on the tables
//! Kamailio's `kamdbctl create` makes for PostgreSQL (or `siprouter db -u
//! postgres://... init`). Values go to the server as text for it to read
//! as the column's type, as Kamailio's db_postgres writes them into SQL.
//! A connection that fails is dropped by the pool and a new one opened on
//! the next use.
//!
//! The module publishes the driver as `db:postgres` in its `mod_init`, so
//! it must be loaded before the modules that use it (as in Kamailio).
#![forbid(unsafe_code)]

mod conn;

pub use conn::PgConn;

use sr_sdk::db::{self, DbConn, DbDriver, DbResult};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The PostgreSQL driver; `timeout` is Kamailio's parameter of that name
/// (seconds to connect).
#[derive(Debug)]
pub struct PgDriver {
    timeout: Arc<AtomicI64>,
}

impl DbDriver for PgDriver {
    fn scheme(&self) -> &str {
        "postgres"
    }

    fn open(&self, url: &str) -> DbResult<Box<dyn DbConn>> {
        let secs = self.timeout.load(Ordering::Relaxed).max(1) as u64;
        Ok(Box::new(PgConn::open(url, Duration::from_secs(secs))?))
    }
}

/// A driver with the default settings (for tools such as `siprouter db`).
pub fn driver() -> Arc<dyn DbDriver> {
    Arc::new(PgDriver {
        timeout: params::int_cell(5),
    })
}

/// The module definition.
pub fn module() -> ModuleDef {
    let timeout = params::int_cell(5);
    let drv: Arc<dyn DbDriver> = Arc::new(PgDriver {
        timeout: timeout.clone(),
    });
    let mut def =
        ModuleDef::new("db_postgres").param("timeout", ParamKind::Int, params::int(&timeout));
    // Kamailio's other parameters, accepted: reconnection is always on.
    for name in ["retries", "tcp_keepalive", "bytea_output_escape"] {
        def = def.param(name, ParamKind::Int, |_| Ok(()));
    }
    def = def.param("con_param", ParamKind::Str, |_| Ok(()));
    def.on_init(move |core| {
        db::register_driver(core, drv.clone());
        Ok(())
    })
}
