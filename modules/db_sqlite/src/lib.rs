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
//! Parameters: `busy_timeout` (milliseconds, default 5000), and
//! Kamailio's per-file `db_set_readonly`, `db_set_journal_mode`,
//! `db_set_busy_timeout`.
#![forbid(unsafe_code)]

mod conn;
mod file_opts;
pub mod raw;

pub use conn::{path_of_url, OpenOptions, SqliteConn};
pub use file_opts::FileOpts;

use sr_sdk::db::{self, DbConn, DbDriver, DbResult};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// The SQLite driver.
#[derive(Debug)]
pub struct SqliteDriver {
    busy_timeout_ms: Arc<AtomicI64>,
    files: Arc<Mutex<FileOpts>>,
}

impl Default for SqliteDriver {
    fn default() -> Self {
        SqliteDriver {
            busy_timeout_ms: Arc::new(AtomicI64::new(5000)),
            files: Arc::new(Mutex::new(FileOpts::default())),
        }
    }
}

impl DbDriver for SqliteDriver {
    fn scheme(&self) -> &str {
        "sqlite"
    }

    fn open(&self, url: &str) -> DbResult<Box<dyn DbConn>> {
        let ms = self.busy_timeout_ms.load(Ordering::Relaxed).max(0) as u64;
        let path = path_of_url(url)?;
        let opts = match self.files.lock() {
            Ok(f) => f.options(&path, ms),
            Err(_) => OpenOptions::new(ms),
        };
        Ok(Box::new(SqliteConn::open_with(url, &opts)?))
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
        .param(
            "db_set_readonly",
            ParamKind::Str,
            file_setter(&drv, FileOpts::set_readonly),
        )
        .param(
            "db_set_journal_mode",
            ParamKind::Str,
            file_setter(&drv, FileOpts::set_journal_modes),
        )
        .param(
            "db_set_busy_timeout",
            ParamKind::Str,
            file_setter(&drv, FileOpts::set_busy_timeouts),
        )
        .on_init(move |core| {
            db::register_driver(core, d2.clone() as Arc<dyn DbDriver>);
            Ok(())
        })
}

/// A parameter setter handing the value to one of [`FileOpts`]' methods.
fn file_setter(
    drv: &Arc<SqliteDriver>,
    f: fn(&mut FileOpts, &str) -> Result<(), String>,
) -> impl Fn(ParamValue) -> Result<(), String> + Send + Sync {
    let files = drv.files.clone();
    move |v| {
        let s = match v {
            ParamValue::Str(s) => s,
            ParamValue::Int(i) => i.to_string(),
        };
        let mut g = files.lock().map_err(|_| "poisoned".to_string())?;
        f(&mut g, &s)
    }
}
