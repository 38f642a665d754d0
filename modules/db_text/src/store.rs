//! The tables of one db_text folder, shared by every connection to it
//! (Kamailio keeps them in shared memory): read from their files on first
//! use (again when a file changed, with `db_mode` 1), changed in memory,
//! written back by [`Store::flush`] (at shutdown and on `db_text.dump`).

use crate::table::Table;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// How a folder's files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opts {
    /// The field delimiter.
    pub delim: char,
    /// An empty text field is "" rather than NULL.
    pub emptystring: bool,
    /// 1: read a table again when its file changed (and it has no
    /// unwritten change).
    pub db_mode: i64,
    /// Most rows a query returns.
    pub max_rows: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            delim: ':',
            emptystring: false,
            db_mode: 0,
            max_rows: 100_000,
        }
    }
}

struct Loaded {
    table: Table,
    mtime: Option<SystemTime>,
    /// The delimiter it was read with (and is written with).
    delim: char,
}

/// One folder's tables.
pub struct Store {
    dir: PathBuf,
    tables: Mutex<HashMap<String, Loaded>>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Every store of the process, by folder.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Store>>> {
    static ALL: OnceLock<Mutex<HashMap<PathBuf, Arc<Store>>>> = OnceLock::new();
    ALL.get_or_init(Default::default)
}

impl Store {
    /// The store of `dir`: one per folder in the process.
    pub fn of(dir: &Path) -> Arc<Store> {
        let mut all = registry().lock().unwrap_or_else(|e| e.into_inner());
        all.entry(dir.to_path_buf())
            .or_insert_with(|| {
                Arc::new(Store {
                    dir: dir.to_path_buf(),
                    tables: Mutex::new(HashMap::new()),
                })
            })
            .clone()
    }

    /// Every store opened so far.
    pub fn all() -> Vec<Arc<Store>> {
        let all = registry().lock().unwrap_or_else(|e| e.into_inner());
        all.values().cloned().collect()
    }

    /// The file of a table.
    pub fn path(&self, table: &str) -> PathBuf {
        self.dir.join(table)
    }

    /// Runs `f` on a table, reading it first when needed (with `opts`).
    pub fn with<R>(
        &self,
        table: &str,
        opts: &Opts,
        f: impl FnOnce(&mut Table) -> R,
    ) -> Result<R, String> {
        if table.is_empty() || table.contains('/') || table == "." || table == ".." {
            return Err(format!("bad table name '{table}'"));
        }
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.path(table);
        let stale = match tables.get(table) {
            None => true,
            Some(l) => opts.db_mode == 1 && !l.table.modified && mtime(&path) > l.mtime,
        };
        if stale {
            // (Bytes that are not UTF-8, a Latin-1 name, read as U+FFFD.)
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("table {table} does not exist ({}: {e})", path.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            let t = Table::parse(&text, opts.delim, opts.emptystring)
                .map_err(|e| format!("table {table}: {e}"))?;
            tables.insert(
                table.to_string(),
                Loaded {
                    table: t,
                    mtime: mtime(&path),
                    delim: opts.delim,
                },
            );
        }
        let l = tables
            .get_mut(table)
            .ok_or_else(|| format!("table {table} does not exist"))?;
        Ok(f(&mut l.table))
    }

    /// Whether a table is known or has a file.
    pub fn exists(&self, table: &str) -> bool {
        let known = self
            .tables
            .lock()
            .map(|t| t.contains_key(table))
            .unwrap_or(false);
        known || self.path(table).is_file()
    }

    /// Writes every changed table to its file (through a temporary file,
    /// flushed to disk and renamed over it with the old file's
    /// permissions, so a crash never leaves half a table). A table that
    /// cannot be written stays changed in memory; the others are written
    /// all the same and the errors are returned together.
    pub fn flush(&self) -> Result<usize, String> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        let mut errors = Vec::new();
        for (name, l) in tables.iter_mut() {
            if !l.table.modified {
                continue;
            }
            let path = self.path(name);
            let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = self
                .dir
                .join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
            let written = write_file(&tmp, &path, l.table.print(l.delim).as_bytes());
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                errors.push(format!("cannot write {}: {e}", path.display()));
                continue;
            }
            l.table.modified = false;
            l.mtime = mtime(&path);
            n += 1;
        }
        if errors.is_empty() {
            Ok(n)
        } else {
            Err(errors.join("; "))
        }
    }
}

/// Writes `data` to `tmp`, syncs it, gives it `path`'s permissions (when
/// there is a file) and renames it over `path`.
fn write_file(tmp: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    if let Ok(m) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp, m.permissions())?;
    }
    std::fs::rename(tmp, path)
}
