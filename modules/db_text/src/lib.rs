//! # db_text: Kamailio's text-file database
//!
//! Serves `db_url`s `text:///absolute/folder` and `text://relative/folder`
//! (relative to the working directory): a folder with one file per table
//! in Kamailio's db_text format ([`table`]). Tables are read on first use
//! and kept in memory, shared by every module and worker; changes are
//! written back at shutdown and by the `db_text.dump` RPC command (as
//! Kamailio's db_text, which never writes after each change). With
//! `db_mode` 1 a table whose file changed (and that has no unwritten
//! change) is read again.
#![forbid(unsafe_code)]

pub mod conn;
pub mod store;
pub mod table;

use conn::TextConn;
use sr_sdk::db::{self, DbConn, DbDriver, DbError, DbResult};
use sr_sdk::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};
use store::{Opts, Store};

/// The folder of a `text://` URL.
pub fn dir_of_url(url: &str) -> DbResult<PathBuf> {
    let rest = url
        .split_once("://")
        .filter(|(s, _)| s.eq_ignore_ascii_case("text"))
        .map(|(_, r)| r)
        .ok_or_else(|| DbError::new(format!("not a text:// URL: {url}")))?;
    if rest.is_empty() {
        return Err(DbError::new(format!("no folder in {url}")));
    }
    Ok(PathBuf::from(rest))
}

/// The driver.
pub struct TextDriver {
    db_mode: Arc<AtomicI64>,
    emptystring: Arc<AtomicI64>,
    max_result_rows: Arc<AtomicI64>,
    delim: Arc<RwLock<String>>,
    autoflush: bool,
}

impl TextDriver {
    fn new(autoflush: bool) -> TextDriver {
        TextDriver {
            db_mode: params::int_cell(0),
            emptystring: params::int_cell(0),
            max_result_rows: params::int_cell(100_000),
            delim: params::str_cell(":"),
            autoflush,
        }
    }

    fn opts(&self) -> Opts {
        Opts {
            delim: params::get_str(&self.delim).chars().next().unwrap_or(':'),
            emptystring: params::get_int(&self.emptystring) != 0,
            db_mode: params::get_int(&self.db_mode),
            max_rows: params::get_int(&self.max_result_rows).max(1) as usize,
        }
    }
}

impl DbDriver for TextDriver {
    fn scheme(&self) -> &str {
        "text"
    }

    fn open(&self, url: &str) -> DbResult<Box<dyn DbConn>> {
        let dir = dir_of_url(url)?;
        if !dir.is_dir() {
            return Err(DbError::new(format!(
                "db_text: {} is not a folder",
                dir.display()
            )));
        }
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        Ok(Box::new(TextConn::new(
            Store::of(&dir),
            self.opts(),
            self.autoflush,
        )))
    }
}

/// A driver for tools that run without a server (`siprouter db`): what a
/// connection changed is written back when it closes.
pub fn driver() -> Arc<dyn DbDriver> {
    Arc::new(TextDriver::new(true))
}

/// Writes every changed table of every folder: the number written; the
/// errors of those that could not be (the others are written all the
/// same).
pub fn flush_all() -> Result<usize, String> {
    let mut n = 0;
    let mut errors = Vec::new();
    for s in Store::all() {
        match s.flush() {
            Ok(k) => n += k,
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(n)
    } else {
        Err(errors.join("; "))
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let drv = Arc::new(TextDriver::new(false));
    let d2 = drv.clone();
    ModuleDef::new("db_text")
        .param("db_mode", ParamKind::Int, params::int(&drv.db_mode))
        .param("emptystring", ParamKind::Int, params::int(&drv.emptystring))
        .param(
            "max_result_rows",
            ParamKind::Int,
            params::int(&drv.max_result_rows),
        )
        .param("db_delim", ParamKind::Str, params::string(&drv.delim))
        // Kamailio's read buffer and its RPC query's connection: accepted.
        .param("file_buffer_size", ParamKind::Int, |_| Ok(()))
        .param("default_connection", ParamKind::Str, |_| Ok(()))
        .on_init(move |core| {
            let d = params::get_str(&d2.delim);
            // Not a character of the escapes or of numbers, nor a line end.
            let bad = |c: char| c.is_ascii_alphanumeric() || "\\\n\r -+.".contains(c);
            if d.chars().count() != 1 || d.chars().any(bad) {
                return Err(format!(
                    "db_text: db_delim must be one punctuation character, not '{d}'"
                ));
            }
            db::register_driver(core, d2.clone() as Arc<dyn DbDriver>);
            Ok(())
        })
        .on_destroy(|| {
            if let Err(e) = flush_all() {
                lm_err!("db_text: {e}");
            }
        })
        .rpc("db_text.dump", "Write back to disk modified tables", |_| {
            Ok(Json::String(
                match flush_all() {
                    Ok(_) => "Dump OK",
                    Err(e) => {
                        lm_err!("db_text: {e}");
                        "Dump failed"
                    }
                }
                .into(),
            ))
        })
}
