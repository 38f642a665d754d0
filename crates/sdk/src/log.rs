//! Logging with Kamailio's levels. The core installs the sink (stderr or
//! syslog) and sets the level from `debug=`; modules log through the
//! `lm_*!` macros, which format nothing when the level is off.

use std::fmt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

/// Alert.
pub const L_ALERT: i32 = -5;
/// Bug.
pub const L_BUG: i32 = -4;
/// Critical (no prefix).
pub const L_CRIT2: i32 = -3;
/// Critical.
pub const L_CRIT: i32 = -2;
/// Error.
pub const L_ERR: i32 = -1;
/// Warning (the default level).
pub const L_WARN: i32 = 0;
/// Notice.
pub const L_NOTICE: i32 = 1;
/// Info.
pub const L_INFO: i32 = 2;
/// Debug.
pub const L_DBG: i32 = 3;

static LEVEL: AtomicI32 = AtomicI32::new(L_WARN);

/// A target starting with this names the label a sink writes in place of
/// the level's name and the target (Kamailio's `log_level_name`, as the
/// debugger's `exec:`).
pub const LABEL_MARK: char = '@';

/// What a sink writes before the message: `LEVEL: target` or, for a
/// target marked with [`LABEL_MARK`], the label alone.
pub fn head(level: i32, target: &str) -> String {
    match target.strip_prefix(LABEL_MARK) {
        Some(label) => label.to_string(),
        None => {
            let t = target.rsplit("::").next().unwrap_or(target);
            format!("{}: {t}", level_name(level))
        }
    }
}

/// A log sink: level, module or target name, message.
pub type Sink = Box<dyn Fn(i32, &str, fmt::Arguments<'_>) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sets the level (`debug=`); messages above it are not formatted.
pub fn set_level(level: i32) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// The current level.
pub fn level() -> i32 {
    LEVEL.load(Ordering::Relaxed)
}

/// No level of this thread's own (see [`set_thread_level`]).
const NO_THREAD_LEVEL: i32 = i32::MIN;

thread_local! {
    /// This thread's own level (kex's `setdebug`), else [`NO_THREAD_LEVEL`].
    static THREAD_LEVEL: std::cell::Cell<i32> = const { std::cell::Cell::new(NO_THREAD_LEVEL) };
}

/// Gives this thread a level of its own (`Some`, kex's `setdebug`, as
/// Kamailio's per-process level), or takes it back to the global one
/// (`None`, `resetdebug`).
pub fn set_thread_level(level: Option<i32>) {
    if level.is_some() {
        ANY_THREAD_LEVEL.store(true, Ordering::Relaxed);
    }
    THREAD_LEVEL.with(|c| c.set(level.unwrap_or(NO_THREAD_LEVEL)));
}

/// Whether any thread was ever given a level of its own: until then
/// [`enabled`] reads the global level alone.
static ANY_THREAD_LEVEL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a message at `level` would be written.
pub fn enabled(level: i32) -> bool {
    if ANY_THREAD_LEVEL.load(Ordering::Relaxed) {
        let own = THREAD_LEVEL.with(|c| c.get());
        if own != NO_THREAD_LEVEL {
            return level <= own;
        }
    }
    level <= LEVEL.load(Ordering::Relaxed)
}

/// Installs the sink (once; later calls are ignored). Without one,
/// messages go to stderr.
pub fn set_sink(sink: Sink) {
    let _ = SINK.set(sink);
}

/// The name of a level as Kamailio prints it.
pub fn level_name(level: i32) -> &'static str {
    match level {
        L_ALERT => "ALERT",
        L_BUG => "BUG",
        L_CRIT2 | L_CRIT => "CRITICAL",
        L_ERR => "ERROR",
        L_WARN => "WARNING",
        L_NOTICE => "NOTICE",
        L_INFO => "INFO",
        _ => "DEBUG",
    }
}

/// Writes a message (use the macros instead).
pub fn write(level: i32, target: &str, args: fmt::Arguments<'_>) {
    match SINK.get() {
        Some(s) => s(level, target, args),
        None => eprintln!("{}: {args}", head(level, target)),
    }
}

/// Logs at a level: `sr_log!(L_INFO, "x={}", x)`.
#[macro_export]
macro_rules! sr_log {
    ($lvl:expr, $($arg:tt)+) => {
        if $crate::log::enabled($lvl) {
            $crate::log::write($lvl, module_path!(), format_args!($($arg)+));
        }
    };
}

/// Logs an error (Kamailio's `LM_ERR`).
#[macro_export]
macro_rules! lm_err { ($($arg:tt)+) => { $crate::sr_log!($crate::log::L_ERR, $($arg)+) }; }
/// Logs a warning (`LM_WARN`).
#[macro_export]
macro_rules! lm_warn { ($($arg:tt)+) => { $crate::sr_log!($crate::log::L_WARN, $($arg)+) }; }
/// Logs a notice (`LM_NOTICE`).
#[macro_export]
macro_rules! lm_notice { ($($arg:tt)+) => { $crate::sr_log!($crate::log::L_NOTICE, $($arg)+) }; }
/// Logs info (`LM_INFO`).
#[macro_export]
macro_rules! lm_info { ($($arg:tt)+) => { $crate::sr_log!($crate::log::L_INFO, $($arg)+) }; }
/// Logs debug output (`LM_DBG`).
#[macro_export]
macro_rules! lm_dbg { ($($arg:tt)+) => { $crate::sr_log!($crate::log::L_DBG, $($arg)+) }; }
