//! # db_mysql: MySQL and MariaDB servers
//!
//! Serves `db_url`s of the form `mysql://user:password@host[:port]/db`
//! (Kamailio's, as in the stock configuration's `DBURL`) for the database
//! API of `sr_sdk::db`, on the tables Kamailio's `kamdbctl create` makes
//! (or `siprouter db -u mysql://... init`). Each worker thread uses its
//! own connections from the pool; a connection that fails is dropped and
//! a new one opened on the next use (Kamailio's `auto_reconnect`).
//!
//! The module publishes the driver as `db:mysql` in its `mod_init`, so
//! it must be loaded before the modules that use it (as in Kamailio).
#![forbid(unsafe_code)]

mod conn;

pub use conn::MysqlConn;

use sr_sdk::db::{self, DbConn, DbDriver, DbResult};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The MySQL driver.
#[derive(Debug)]
pub struct MysqlDriver {
    timeout_s: Arc<AtomicI64>,
}

impl Default for MysqlDriver {
    fn default() -> Self {
        MysqlDriver {
            timeout_s: Arc::new(AtomicI64::new(2)),
        }
    }
}

impl DbDriver for MysqlDriver {
    fn scheme(&self) -> &str {
        "mysql"
    }

    fn open(&self, url: &str) -> DbResult<Box<dyn DbConn>> {
        let secs = self.timeout_s.load(Ordering::Relaxed).max(1) as u64;
        Ok(Box::new(MysqlConn::open(url, Duration::from_secs(secs))?))
    }
}

/// A driver with the default settings (for tools such as `siprouter db`).
pub fn driver() -> Arc<dyn DbDriver> {
    Arc::new(MysqlDriver::default())
}

/// The module definition.
pub fn module() -> ModuleDef {
    let drv = Arc::new(MysqlDriver::default());
    let d2 = drv.clone();
    let mut def = ModuleDef::new("db_mysql").param(
        "timeout_interval",
        ParamKind::Int,
        params::int(&drv.timeout_s),
    );
    // Kamailio's other parameters, accepted: reconnection is always on and
    // the rest tunes libmysqlclient.
    for name in [
        "ping_interval",
        "auto_reconnect",
        "insert_delayed",
        "update_affected_found",
        "opt_ssl_mode",
        "server_timezone",
    ] {
        def = def.param(name, ParamKind::Int, |_| Ok(()));
    }
    def.on_init(move |core| {
        db::register_driver(core, d2.clone() as Arc<dyn DbDriver>);
        Ok(())
    })
}
