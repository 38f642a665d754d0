//! Module `db_flatstore` (Kamailio's): a database driver for URLs
//! `flatstore:/dir` that can only insert — each row appended as a line to
//! `/dir/<table>_<n>.log`, one file per table and worker (`n` is the
//! worker's rank as Kamailio numbers its process files: `-rank` for the
//! main, timer and RPC ranks, `rank + 128` for SIP workers). Meant for
//! acc: `modparam("acc", "db_url", "flatstore:/var/log/siprouter")`.
//!
//! - params `flush` (1: each line flushed), `encode_delimiter` (1: a `|`
//!   inside a text value is written `%7C`), `field_delimiter` (the
//!   character encoded; the fields are separated by `|` whatever it is,
//!   as in Kamailio); `record_delimiter`, `escape_char`, `file_suffix`
//!   checked but used only by Kamailio's other database API, which
//!   nothing here uses;
//! - a table name must be letters, digits, `_`, `-` or `.` (it becomes
//!   part of a file name), else the row is refused;
//! - RPCs `flatstore.rotate` and `flatstore.k_rotate`: files are closed
//!   and opened again (by name) before the next row, for log rotation.
#![forbid(unsafe_code)]

pub mod line;

use sr_sdk::db::{self, schema, Cond, DbConn, DbDriver, DbError, DbResult, DbValue, Order, Rows};
use sr_sdk::prelude::*;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// An open file and the rotation it was opened in.
struct Open {
    file: BufWriter<File>,
    generation: u64,
}

/// One file's handle: its own lock, so that workers writing to different
/// files do not wait for each other.
type Handle = Arc<Mutex<Open>>;

/// At most this many files are kept open (tables times workers); past
/// it a file is closed after each row.
const MAX_OPEN: usize = 256;

/// The driver: its settings and the open files.
struct Flat {
    flush: Arc<AtomicI64>,
    encode: Arc<AtomicI64>,
    field_delimiter: Arc<RwLock<String>>,
    record_delimiter: Arc<RwLock<String>>,
    escape_char: Arc<RwLock<String>>,
    file_suffix: Arc<RwLock<String>>,
    /// Bumped by the rotate RPCs.
    generation: AtomicU64,
    /// The rotation every open file has been through.
    applied: AtomicU64,
    files: Mutex<HashMap<PathBuf, Handle>>,
}

/// Whether a table name can be part of a file name: letters, digits, `_`,
/// `-` and `.`, not starting with `.` (no `..`, no `/`).
pub fn valid_table(t: &str) -> bool {
    !t.is_empty()
        && !t.starts_with('.')
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn lock(h: &Handle) -> std::sync::MutexGuard<'_, Open> {
    h.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Flat {
    /// The file number of the calling thread (Kamailio's `km_flat_pid`).
    fn file_number() -> i32 {
        match sr_sdk::rank::current() {
            Some(r) if r <= 0 => -r,
            Some(r) => r - sr_sdk::rank::PROC_MIN,
            None => 0,
        }
    }

    /// Rotation (Kamailio's flat_rotate_logs): every open file is
    /// flushed, closed and opened again by name — a new, empty file where
    /// logrotate moved the old one away.
    fn rotate_all(&self, files: &HashMap<PathBuf, Handle>, generation: u64) {
        for (p, h) in files {
            let mut o = lock(h);
            if o.generation == generation {
                continue;
            }
            let _ = o.file.flush();
            match open_append(p) {
                Ok(file) => {
                    *o = Open {
                        file: BufWriter::new(file),
                        generation,
                    }
                }
                Err(e) => lm_err!("flatstore: {}: {e}", p.display()),
            }
        }
        self.applied.store(generation, Ordering::Relaxed);
    }

    fn insert(&self, dir: &str, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        if !valid_table(table) {
            return Err(DbError(format!(
                "flatstore: '{table}' is not a table name (letters, digits, _ - .)"
            )));
        }
        let path = PathBuf::from(format!("{dir}/{table}_{}.log", Self::file_number()));
        let f = line::Format {
            encode: (params::get_int(&self.encode) != 0)
                .then(|| params::get_str(&self.field_delimiter).bytes().next())
                .flatten(),
        };
        let text = line::line(values, f);
        let generation = self.generation.load(Ordering::Relaxed);
        let handle = {
            let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            if self.applied.load(Ordering::Relaxed) != generation {
                self.rotate_all(&files, generation);
            }
            match files.get(&path) {
                Some(h) => Some(h.clone()),
                None if files.len() < MAX_OPEN => {
                    let file = open_append(&path)
                        .map_err(|e| DbError(format!("flatstore: {}: {e}", path.display())))?;
                    let h: Handle = Arc::new(Mutex::new(Open {
                        file: BufWriter::new(file),
                        generation,
                    }));
                    files.insert(path.clone(), h.clone());
                    Some(h)
                }
                None => None,
            }
        };
        let flush = params::get_int(&self.flush) != 0;
        let r = match handle {
            Some(h) => {
                let mut o = lock(&h);
                o.file
                    .write_all(&text)
                    .and_then(|()| if flush { o.file.flush() } else { Ok(()) })
            }
            // Too many files open: this one for this row only.
            None => open_append(&path).and_then(|mut file| file.write_all(&text)),
        };
        r.map_err(|e| DbError(format!("flatstore: {}: {e}", path.display())))
    }

    fn flush_all(&self) {
        for h in self
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            let _ = lock(h).file.flush();
        }
    }
}

fn open_append(path: &std::path::Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// The driver as the core sees it.
struct FlatDriver(Arc<Flat>);

impl DbDriver for FlatDriver {
    fn scheme(&self) -> &str {
        "flatstore"
    }

    fn open(&self, url: &str) -> DbResult<Box<dyn DbConn>> {
        let dir = url
            .split_once(':')
            .map(|(_, p)| p.to_string())
            .ok_or_else(|| DbError(format!("flatstore: bad URL '{url}'")))?;
        Ok(Box::new(FlatConn {
            flat: self.0.clone(),
            dir,
        }))
    }
}

/// A connection: the folder.
struct FlatConn {
    flat: Arc<Flat>,
    dir: String,
}

fn unsupported<T>(what: &str) -> DbResult<T> {
    Err(DbError(format!(
        "flatstore: {what} is not supported (the flatstore driver only inserts)"
    )))
}

impl DbConn for FlatConn {
    fn query(&mut self, _: &str, _: &[Cond], _: &[&str], _: Option<&Order>) -> DbResult<Rows> {
        unsupported("query")
    }

    fn insert(&mut self, table: &str, values: &[(&str, DbValue)]) -> DbResult<()> {
        self.flat.insert(&self.dir, table, values)
    }

    fn update(&mut self, _: &str, _: &[Cond], _: &[(&str, DbValue)]) -> DbResult<u64> {
        unsupported("update")
    }

    fn delete(&mut self, _: &str, _: &[Cond]) -> DbResult<u64> {
        unsupported("delete")
    }

    fn replace(&mut self, _: &str, _: &[(&str, DbValue)]) -> DbResult<()> {
        unsupported("replace")
    }

    fn create_table(&mut self, _: &schema::TableDef) -> DbResult<()> {
        unsupported("create table")
    }

    /// Every table exists: its files are made by the first row.
    fn table_exists(&mut self, _: &str) -> DbResult<bool> {
        Ok(true)
    }

    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn DbConn) -> DbResult<()>) -> DbResult<()> {
        f(self)
    }
}

/// Checks a one-character parameter.
fn one_char(cell: &RwLock<String>, name: &str) -> Result<(), String> {
    if params::get_str(cell).len() == 1 {
        Ok(())
    } else {
        Err(format!(
            "flatstore: Parameter '{name}' must be exactly one character long."
        ))
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let flat = Arc::new(Flat {
        flush: params::int_cell(1),
        encode: params::int_cell(1),
        field_delimiter: params::str_cell("|"),
        record_delimiter: params::str_cell("\n"),
        escape_char: params::str_cell("\\"),
        file_suffix: params::str_cell(".log"),
        generation: AtomicU64::new(0),
        applied: AtomicU64::new(0),
        files: Mutex::new(HashMap::new()),
    });
    let (init, destroy, r1, r2) = (flat.clone(), flat.clone(), flat.clone(), flat.clone());
    let rotate = |f: &Arc<Flat>| {
        f.flush_all();
        f.generation.fetch_add(1, Ordering::Relaxed);
        Ok(Json::Null)
    };
    ModuleDef::new("db_flatstore")
        .param("flush", ParamKind::Int, params::int(&flat.flush))
        .param(
            "encode_delimiter",
            ParamKind::Int,
            params::int(&flat.encode),
        )
        .param(
            "field_delimiter",
            ParamKind::Str,
            params::string(&flat.field_delimiter),
        )
        .param(
            "record_delimiter",
            ParamKind::Str,
            params::string(&flat.record_delimiter),
        )
        .param(
            "escape_char",
            ParamKind::Str,
            params::string(&flat.escape_char),
        )
        .param(
            "file_suffix",
            ParamKind::Str,
            params::string(&flat.file_suffix),
        )
        .on_init(move |core| {
            one_char(&init.field_delimiter, "field_delimiter")?;
            one_char(&init.record_delimiter, "record_delimiter")?;
            one_char(&init.escape_char, "escape_char")?;
            db::register_driver(
                core,
                Arc::new(FlatDriver(init.clone())) as Arc<dyn DbDriver>,
            );
            Ok(())
        })
        .on_destroy(move || destroy.flush_all())
        .rpc(
            "flatstore.rotate",
            "Close and reopen flatrotate files during log rotation.",
            move |_| rotate(&r1),
        )
        .rpc(
            "flatstore.k_rotate",
            "Close and reopen flatrotate files during log rotation.",
            move |_| rotate(&r2),
        )
}

#[cfg(test)]
mod tests {
    use super::valid_table;

    #[test]
    fn table_names_cannot_leave_the_folder() {
        assert!(valid_table("acc"));
        assert!(valid_table("missed_calls"));
        assert!(valid_table("cdr-2026.v1"));
        assert!(!valid_table(""));
        assert!(!valid_table("../../tmp/x"));
        assert!(!valid_table("a/b"));
        assert!(!valid_table(".hidden"));
        assert!(!valid_table("a b"));
        assert!(!valid_table(&"x".repeat(65)));
    }
}
