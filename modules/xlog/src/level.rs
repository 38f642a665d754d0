//! Log levels as the script writes them: `L_INFO`, `INFO`, `2`, or a
//! pseudo-variable holding the number.

use sr_sdk::fixup::Eval;
use sr_sdk::log;
use sr_sdk::Ctx;
use std::sync::Arc;

/// A level fixed at load time or read per call.
#[derive(Debug, Clone)]
pub enum Level {
    /// A constant level.
    Const(i32),
    /// Read from a pseudo-variable (clamped to the known levels).
    Dyn(Arc<dyn Eval>),
}

impl Level {
    /// Parses `L_INFO`, `INFO` (any case) or a number.
    pub fn parse(s: &str) -> Result<Level, String> {
        let t = s.trim();
        if let Ok(n) = t.parse::<i64>() {
            return Level::from_int(n);
        }
        let up = t.to_ascii_uppercase();
        let name = up.strip_prefix("L_").unwrap_or(&up);
        Ok(Level::Const(match name {
            "ALERT" => log::L_ALERT,
            "BUG" => log::L_BUG,
            "CRIT2" => log::L_CRIT2,
            "CRIT" => log::L_CRIT,
            "ERR" => log::L_ERR,
            "WARN" => log::L_WARN,
            "NOTICE" => log::L_NOTICE,
            "INFO" => log::L_INFO,
            "DBG" | "DEBUG" => log::L_DBG,
            _ => return Err(format!("unknown log level '{s}' (L_ALERT .. L_DBG)")),
        }))
    }

    /// A numeric level, -5 (alert) to 3 (debug).
    pub fn from_int(n: i64) -> Result<Level, String> {
        if (log::L_ALERT as i64..=log::L_DBG as i64).contains(&n) {
            Ok(Level::Const(n as i32))
        } else {
            Err(format!(
                "log level {n} out of range ({}..{})",
                log::L_ALERT,
                log::L_DBG
            ))
        }
    }

    /// The level for this call.
    pub fn get(&self, ctx: &mut Ctx<'_>) -> i32 {
        match self {
            Level::Const(l) => *l,
            Level::Dyn(e) => e
                .eval(ctx)
                .as_int()
                .clamp(log::L_ALERT as i64, log::L_DBG as i64) as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<i32> {
        match Level::parse(s) {
            Ok(Level::Const(l)) => Some(l),
            _ => None,
        }
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(c("L_INFO"), Some(2));
        assert_eq!(c("l_dbg"), Some(3));
        assert_eq!(c("ERR"), Some(-1));
        assert_eq!(c("L_ALERT"), Some(-5));
        assert_eq!(c("1"), Some(1));
        assert_eq!(c("-4"), Some(-4));
        assert_eq!(c("9"), None);
        assert_eq!(c("L_LOUD"), None);
    }
}
