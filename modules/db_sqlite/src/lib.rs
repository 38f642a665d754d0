//! # db_sqlite: the embedded SQLite database driver
//!
//! Serves `db_url`s of the form `sqlite:///absolute/path.db` and
//! `sqlite://relative/path.db` (relative to the working directory) for
//! the database API of `sr_sdk::db`. Each connection opens the file in
//! WAL mode with a busy timeout, so that several worker threads, the
//! timer thread and command-line tools (`siprouter db ...`) can use the
//! same file at once.
//!
//! The module publishes the driver as `db:sqlite` in its `mod_init`, so
//! it must be loaded before the modules that use it (as in Kamailio).
//! Parameter: `busy_timeout` (milliseconds, default 5000).
#![forbid(unsafe_code)]

mod conn;
pub mod raw;

pub use conn::{path_of_url, SqliteConn};

use sr_sdk::db::{self, DbConn, DbDriver, DbResult};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The SQLite driver.
#[derive(Debug)]
pub struct SqliteDriver {
    busy_timeout_ms: Arc<AtomicI64>,
}

impl Default for SqliteDriver {
    fn default() -> Self {
        SqliteDriver {
            busy_timeout_ms: Arc::new(AtomicI64::new(5000)),
        }
    }
}

impl DbDriver for SqliteDriver {
    fn scheme(&self) -> &str {
        "sqlite"
    }

    fn open(&self, url: &str) -> DbResult<Box<dyn DbConn>> {
        let ms = self.busy_timeout_ms.load(Ordering::Relaxed).max(0) as u64;
        Ok(Box::new(SqliteConn::open(url, ms)?))
    }
}

/// A driver with the default settings (for tools that run without a
/// server, such as `siprouter db`).
pub fn driver() -> Arc<dyn DbDriver> {
    Arc::new(SqliteDriver::default())
}

/// The module definition.
pub fn module() -> ModuleDef {
    let drv = Arc::new(SqliteDriver::default());
    let d2 = drv.clone();
    ModuleDef::new("db_sqlite")
        .param(
            "busy_timeout",
            ParamKind::Int,
            params::int(&drv.busy_timeout_ms),
        )
        .on_init(move |core| {
            db::register_driver(core, d2.clone() as Arc<dyn DbDriver>);
            Ok(())
        })
}
