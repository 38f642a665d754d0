//! The module parameters, with Kamailio's names and defaults.

use crate::extra::{self, Extra};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// The settings as `modparam` left them.
#[derive(Debug)]
pub struct Params {
    /// `log_flag` (-1: not set).
    pub log_flag: Arc<AtomicI64>,
    /// `log_missed_flag`.
    pub log_missed_flag: Arc<AtomicI64>,
    /// `failed_transaction_flag`.
    pub failed_flag: Arc<AtomicI64>,
    /// `db_flag`.
    pub db_flag: Arc<AtomicI64>,
    /// `db_missed_flag`.
    pub db_missed_flag: Arc<AtomicI64>,
    /// `log_level` (Kamailio's levels; default 1, notice).
    pub log_level: Arc<AtomicI64>,
    /// `log_facility` (checked, see the docs).
    pub log_facility: Arc<RwLock<String>>,
    /// `log_extra`.
    pub log_extra: Arc<RwLock<String>>,
    /// `db_extra`.
    pub db_extra: Arc<RwLock<String>>,
    /// `db_url`.
    pub db_url: Arc<RwLock<String>>,
    /// `db_table_acc`.
    pub table_acc: Arc<RwLock<String>>,
    /// `db_table_missed_calls`.
    pub table_missed: Arc<RwLock<String>>,
    /// `early_media`.
    pub early_media: Arc<AtomicI64>,
    /// `report_ack` (accepted; see the docs).
    pub report_ack: Arc<AtomicI64>,
    /// `report_cancels`.
    pub report_cancels: Arc<AtomicI64>,
    /// `detect_direction`.
    pub detect_direction: Arc<AtomicI64>,
    /// `failed_filter`: codes not accounted as failed transactions.
    pub failed_filter: Arc<RwLock<String>>,
    /// Column names: method, from_tag, to_tag, callid, sip_code,
    /// sip_reason, time.
    pub columns: [Arc<RwLock<String>>; 7],
}

/// The `acc_*_column` parameters, in [`Params::columns`] order, with
/// their defaults.
pub const COLUMN_PARAMS: [(&str, &str); 7] = [
    ("acc_method_column", "method"),
    ("acc_from_tag_column", "from_tag"),
    ("acc_to_tag_column", "to_tag"),
    ("acc_callid_column", "callid"),
    ("acc_sip_code_column", "sip_code"),
    ("acc_sip_reason_column", "sip_reason"),
    ("acc_time_column", "time"),
];

fn s(v: &str) -> Arc<RwLock<String>> {
    Arc::new(RwLock::new(v.to_string()))
}

fn i(v: i64) -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(v))
}

impl Default for Params {
    fn default() -> Self {
        Params {
            log_flag: i(-1),
            log_missed_flag: i(-1),
            failed_flag: i(-1),
            db_flag: i(-1),
            db_missed_flag: i(-1),
            log_level: i(1),
            log_facility: s("LOG_DAEMON"),
            log_extra: s(""),
            db_extra: s(""),
            db_url: s(""),
            table_acc: s("acc"),
            table_missed: s("missed_calls"),
            early_media: i(0),
            report_ack: i(0),
            report_cancels: i(0),
            detect_direction: i(0),
            failed_filter: s(""),
            columns: COLUMN_PARAMS.map(|(_, d)| s(d)),
        }
    }
}

/// Reads a string parameter.
pub fn get(v: &RwLock<String>) -> String {
    v.read().map(|x| x.clone()).unwrap_or_default()
}

/// Reads an integer parameter.
pub fn int(v: &AtomicI64) -> i64 {
    v.load(Ordering::Relaxed)
}

/// The syslog facilities `log_facility` accepts.
const FACILITIES: [&str; 18] = [
    "LOG_AUTH",
    "LOG_AUTHPRIV",
    "LOG_CRON",
    "LOG_DAEMON",
    "LOG_FTP",
    "LOG_KERN",
    "LOG_LOCAL0",
    "LOG_LOCAL1",
    "LOG_LOCAL2",
    "LOG_LOCAL3",
    "LOG_LOCAL4",
    "LOG_LOCAL5",
    "LOG_LOCAL6",
    "LOG_LOCAL7",
    "LOG_LPR",
    "LOG_MAIL",
    "LOG_NEWS",
    "LOG_USER",
];

/// The settings checked and prepared at `mod_init`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Flags as bit masks (0: not set).
    pub log_flag: u32,
    /// `log_missed_flag` mask.
    pub log_missed: u32,
    /// `failed_transaction_flag` mask.
    pub failed: u32,
    /// `db_flag` mask.
    pub db_flag: u32,
    /// `db_missed_flag` mask.
    pub db_missed: u32,
    /// Log level.
    pub log_level: i32,
    /// Parsed `log_extra`.
    pub log_extra: Vec<Extra>,
    /// Parsed `db_extra`.
    pub db_extra: Vec<Extra>,
    /// `db_table_acc`.
    pub table_acc: String,
    /// `db_table_missed_calls`.
    pub table_missed: String,
    /// Column names (see [`COLUMN_PARAMS`]).
    pub columns: Vec<String>,
    /// `early_media`.
    pub early_media: bool,
    /// `report_cancels`.
    pub report_cancels: bool,
    /// `detect_direction`.
    pub detect_direction: bool,
    /// `failed_filter` codes.
    pub failed_filter: Vec<u16>,
}

fn flag(name: &str, v: i64) -> Result<u32, String> {
    match v {
        -1 => Ok(0),
        0..=31 => Ok(1 << v),
        _ => Err(format!(
            "acc: {name} {v} is not a flag (0..31, or -1 for none)"
        )),
    }
}

impl Params {
    /// Adds the parameters to the module.
    pub fn export(&self, def: ModuleDef) -> ModuleDef {
        let mut def = def;
        for (name, cell) in [
            ("log_flag", &self.log_flag),
            ("log_missed_flag", &self.log_missed_flag),
            ("failed_transaction_flag", &self.failed_flag),
            ("db_flag", &self.db_flag),
            ("db_missed_flag", &self.db_missed_flag),
            ("log_level", &self.log_level),
            ("early_media", &self.early_media),
            ("report_ack", &self.report_ack),
            ("report_cancels", &self.report_cancels),
            ("detect_direction", &self.detect_direction),
        ] {
            def = def.param(name, ParamKind::Int, params::int(cell));
        }
        for (name, cell) in [
            ("log_facility", &self.log_facility),
            ("log_extra", &self.log_extra),
            ("db_extra", &self.db_extra),
            ("db_url", &self.db_url),
            ("db_table_acc", &self.table_acc),
            ("db_table_missed_calls", &self.table_missed),
            ("failed_filter", &self.failed_filter),
        ] {
            def = def.param(name, ParamKind::Str, params::string(cell));
        }
        for ((name, _), cell) in COLUMN_PARAMS.iter().zip(self.columns.iter()) {
            def = def.param(name, ParamKind::Str, params::string(cell));
        }
        def
    }

    /// Checks the values and prepares them.
    pub fn settings(&self) -> Result<Settings, String> {
        let facility = get(&self.log_facility);
        if !FACILITIES.contains(&facility.trim()) {
            return Err(format!(
                "acc: log_facility '{facility}' is not a syslog facility"
            ));
        }
        let level = int(&self.log_level);
        if !(-5..=3).contains(&level) {
            return Err(format!("acc: log_level {level} is not a log level (-5..3)"));
        }
        let mut failed_filter = Vec::new();
        for c in get(&self.failed_filter)
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            match c.parse::<u16>() {
                Ok(n) if (300..700).contains(&n) => failed_filter.push(n),
                _ => return Err(format!("acc: failed_filter: '{c}' is not a failure code")),
            }
        }
        let columns: Vec<String> = self.columns.iter().map(|c| get(c)).collect();
        if columns.iter().any(|c| c.trim().is_empty()) {
            return Err("acc: a column name parameter is empty".into());
        }
        Ok(Settings {
            log_flag: flag("log_flag", int(&self.log_flag))?,
            log_missed: flag("log_missed_flag", int(&self.log_missed_flag))?,
            failed: flag("failed_transaction_flag", int(&self.failed_flag))?,
            db_flag: flag("db_flag", int(&self.db_flag))?,
            db_missed: flag("db_missed_flag", int(&self.db_missed_flag))?,
            log_level: level as i32,
            log_extra: extra::parse(&get(&self.log_extra))
                .map_err(|e| format!("acc: log_extra: {e}"))?,
            db_extra: extra::parse(&get(&self.db_extra))
                .map_err(|e| format!("acc: db_extra: {e}"))?,
            table_acc: get(&self.table_acc),
            table_missed: get(&self.table_missed),
            columns,
            early_media: int(&self.early_media) != 0,
            report_cancels: int(&self.report_cancels) != 0,
            detect_direction: int(&self.detect_direction) != 0,
            failed_filter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let p = Params::default();
        let s = p.settings().unwrap();
        assert_eq!((s.log_flag, s.log_level), (0, 1));
        assert_eq!(s.columns[6], "time");
        p.log_flag.store(1, Ordering::Relaxed);
        p.failed_flag.store(3, Ordering::Relaxed);
        let s = p.settings().unwrap();
        assert_eq!((s.log_flag, s.failed), (2, 8));
        p.db_flag.store(32, Ordering::Relaxed);
        assert!(p.settings().is_err());
        p.db_flag.store(-1, Ordering::Relaxed);
        *p.failed_filter.write().unwrap() = "404, 486".into();
        assert_eq!(p.settings().unwrap().failed_filter, vec![404, 486]);
        *p.failed_filter.write().unwrap() = "200".into();
        assert!(p.settings().is_err());
        *p.failed_filter.write().unwrap() = String::new();
        *p.log_facility.write().unwrap() = "LOG_NOPE".into();
        assert!(p.settings().is_err());
    }
}
