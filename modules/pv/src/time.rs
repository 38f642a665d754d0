//! `$time(name)`, `$utime(name)`, `$timef(format)`, `$utimef(format)`:
//! the current time broken down in the server's zone (or UTC), as
//! Kamailio's pv module gives it.

use sr_sdk::localtime::{self, Tm};
use sr_sdk::prelude::*;
use sr_sdk::PvName;

/// The value of one `$time`/`$utime` field (`None` for an unknown name).
pub fn field(tm: &Tm, name: &str) -> Option<i64> {
    let v = match name {
        "sec" => tm.sec,
        "min" => tm.min,
        "hour" => tm.hour,
        "mday" => tm.mday,
        "mon" => tm.mon + 1,
        "year" => tm.year,
        "wday" => tm.wday + 1,
        "yday" => tm.yday + 1,
        "isdst" => i32::from(tm.isdst),
        _ => return None,
    };
    Some(i64::from(v))
}

fn now() -> i64 {
    sr_sdk::db::now()
}

/// `$time(name)` (`utc` false) or `$utime(name)`.
pub fn get(n: &PvName, utc: bool) -> Value<'static> {
    let t = now();
    let tm = if utc {
        localtime::utc(t)
    } else {
        localtime::local(t)
    };
    field(&tm, n.inner.as_deref().unwrap_or("").trim()).map_or(Value::Null, Value::Int)
}

/// `$timef(format)` (`utc` false) or `$utimef(format)`: `strftime`.
pub fn format(n: &PvName, utc: bool) -> Value<'static> {
    let fmt = n.inner.as_deref().unwrap_or("");
    localtime::strftime(fmt, now(), utc).map_or(Value::Null, |s| Value::Str(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_kamailios() {
        // 2024-02-29 23:59:58 UTC, a Thursday, day 60.
        let tm = localtime::utc(1_709_251_198);
        let got: Vec<_> = [
            "sec", "min", "hour", "mday", "mon", "year", "wday", "yday", "isdst",
        ]
        .iter()
        .map(|n| field(&tm, n).unwrap())
        .collect();
        assert_eq!(got, vec![58, 59, 23, 29, 2, 2024, 5, 60, 0]);
        assert_eq!(field(&tm, "week"), None);
    }
}
