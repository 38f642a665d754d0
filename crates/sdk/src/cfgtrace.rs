//! Tracing of the routing script (Kamailio's debugger `cfgtrace`): a
//! module publishes a [`CfgTrace`] under [`CFG_TRACE_API`] at `mod_init`;
//! the core then compiles each script action with its place, and logs
//! every action it runs while tracing is on.

use crate::log;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::RwLock;

/// The name under which the tracing switch is published.
pub const CFG_TRACE_API: &str = "cfgtrace";

/// The tracing switch and how trace lines are written.
#[derive(Debug)]
pub struct CfgTrace {
    /// Whether actions are logged.
    pub on: AtomicBool,
    /// The level lines are logged at.
    pub level: AtomicI32,
    /// Written in place of the level's name (`log_level_name`), when set.
    pub label: RwLock<String>,
    /// The text each line starts with (`log_prefix`).
    pub prefix: RwLock<String>,
}

impl Default for CfgTrace {
    fn default() -> Self {
        CfgTrace {
            on: AtomicBool::new(false),
            level: AtomicI32::new(log::L_ERR),
            label: RwLock::new(String::new()),
            prefix: RwLock::new("*** cfgtrace:".into()),
        }
    }
}

impl CfgTrace {
    /// Logs one action: the route type and block it runs in, the file and
    /// line it was written at, Kamailio's action type number `a` and its
    /// name (`assign`, `if`, `route`, a function's name, ...).
    #[allow(clippy::too_many_arguments)] // one per field of Kamailio's line
    pub fn action(&self, route: &str, block: &str, file: &str, line: u32, a: u32, name: &str) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let level = self.level.load(Ordering::Relaxed);
        if !log::enabled(level) {
            return;
        }
        let label = self.label.read().map(|l| l.clone()).unwrap_or_default();
        let prefix = self.prefix.read().map(|p| p.clone()).unwrap_or_default();
        let target = if label.is_empty() {
            "debugger".to_string()
        } else {
            format!("{}{label}", log::LABEL_MARK)
        };
        log::write(
            level,
            &target,
            format_args!(
                "{prefix}dbg_cfg_trace(): {route}=[{block}] c=[{file}] l={line} a={a} n={name}"
            ),
        );
    }
}
