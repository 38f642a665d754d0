//! Per-file settings: Kamailio's `db_set_readonly`,
//! `db_set_journal_mode` and `db_set_busy_timeout`.

use crate::conn::OpenOptions;
use std::collections::HashMap;

/// The journal modes SQLite knows.
const JOURNAL_MODES: &[&str] = &["DELETE", "TRUNCATE", "PERSIST", "MEMORY", "WAL", "OFF"];

/// What the parameters set, per database file path (as written after
/// `sqlite://` in a `db_url`).
#[derive(Debug, Default)]
pub struct FileOpts {
    readonly: Vec<String>,
    journal: HashMap<String, String>,
    busy: HashMap<String, u64>,
    busy_all: Option<u64>,
}

/// A path as compared: `//var/x.db` (from `sqlite:////var/x.db`) is
/// `/var/x.db`.
fn norm(path: &str) -> String {
    let p = path.trim();
    match p.strip_prefix('/') {
        Some(rest) => format!("/{}", rest.trim_start_matches('/')),
        None => p.to_string(),
    }
}

/// Splits `path=value;path=value;` into its pairs.
fn pairs<'a>(param: &str, s: &'a str) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut out = Vec::new();
    for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        match item.rsplit_once('=') {
            Some((p, v)) if !p.trim().is_empty() => out.push((p.trim(), v.trim())),
            _ => {
                return Err(format!(
                    "{param}: '{item}' is not '<database file>=<value>'"
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(format!("{param}: no '<database file>=<value>' in '{s}'"));
    }
    Ok(out)
}

impl FileOpts {
    /// `db_set_readonly`: the file is opened read-only.
    pub fn set_readonly(&mut self, path: &str) -> Result<(), String> {
        let path = path.trim();
        if path.is_empty() {
            return Err("db_set_readonly: no database file given".into());
        }
        self.readonly.push(norm(path));
        Ok(())
    }

    /// `db_set_journal_mode`: `path=MODE` items, `;`-separated.
    pub fn set_journal_modes(&mut self, s: &str) -> Result<(), String> {
        for (path, mode) in pairs("db_set_journal_mode", s)? {
            let m = mode.to_ascii_uppercase();
            if !JOURNAL_MODES.contains(&m.as_str()) {
                return Err(format!(
                    "db_set_journal_mode: '{mode}' is not a journal mode (one of {})",
                    JOURNAL_MODES.join(", ")
                ));
            }
            self.journal.insert(norm(path), m);
        }
        Ok(())
    }

    /// `db_set_busy_timeout`: milliseconds for every file, or
    /// `path=ms` items, `;`-separated.
    pub fn set_busy_timeouts(&mut self, s: &str) -> Result<(), String> {
        if let Ok(ms) = s.trim().parse::<u64>() {
            self.busy_all = Some(ms);
            return Ok(());
        }
        for (path, ms) in pairs("db_set_busy_timeout", s)? {
            let ms = ms.parse::<u64>().map_err(|_| {
                format!("db_set_busy_timeout: '{ms}' is not a number of milliseconds")
            })?;
            self.busy.insert(norm(path), ms);
        }
        Ok(())
    }

    /// How to open `path`, `default_busy_ms` unless set.
    pub fn options(&self, path: &str, default_busy_ms: u64) -> OpenOptions {
        let path = norm(path);
        let path = path.as_str();
        let mut o = OpenOptions::new(
            self.busy
                .get(path)
                .copied()
                .or(self.busy_all)
                .unwrap_or(default_busy_ms),
        );
        o.readonly = self.readonly.iter().any(|p| p == path);
        if let Some(m) = self.journal.get(path) {
            o.journal_mode = m.clone();
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_apply_to_their_file_only() {
        let mut f = FileOpts::default();
        f.set_readonly("/var/ro.db").unwrap();
        f.set_journal_modes("/var/a.db=delete;/var/b.db=WAL;")
            .unwrap();
        f.set_busy_timeouts("/var/a.db=250").unwrap();
        let a = f.options("/var/a.db", 5000);
        assert_eq!(
            (a.readonly, a.journal_mode.as_str(), a.busy_timeout_ms),
            (false, "DELETE", 250)
        );
        let ro = f.options("/var/ro.db", 5000);
        assert_eq!(
            (ro.readonly, ro.journal_mode.as_str(), ro.busy_timeout_ms),
            (true, "WAL", 5000)
        );
        assert!(
            f.options("//var/ro.db", 5000).readonly,
            "sqlite:////var/ro.db"
        );
        f.set_busy_timeouts("900").unwrap();
        assert_eq!(f.options("/var/b.db", 5000).busy_timeout_ms, 900);
        assert_eq!(f.options("/var/a.db", 5000).busy_timeout_ms, 250);
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let mut f = FileOpts::default();
        let e = f.set_journal_modes("/var/a.db=FAST").unwrap_err();
        assert!(e.contains("'FAST' is not a journal mode"), "{e}");
        let e = f.set_journal_modes("WAL").unwrap_err();
        assert!(e.contains("is not '<database file>=<value>'"), "{e}");
        let e = f.set_busy_timeouts("/var/a.db=soon").unwrap_err();
        assert!(e.contains("'soon' is not a number"), "{e}");
        assert!(f.set_readonly(" ").is_err());
    }
}
