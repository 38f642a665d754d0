//! Civil time in the server's time zone, as C's `localtime_r`, `mktime`
//! and `strftime` give it to Kamailio (`$time`, `$timef`, tmrec, drouting).
//!
//! The zone is the system's: `TZ` when set, else `/etc/localtime`, read
//! once.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use std::sync::OnceLock;

/// A moment broken down (C's `struct tm`, with a full year and months
/// counted from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tm {
    /// The year (e.g. 2026).
    pub year: i32,
    /// The month, 0 (January) to 11.
    pub mon: i32,
    /// The day of the month, 1 to 31.
    pub mday: i32,
    /// 0 to 23.
    pub hour: i32,
    /// 0 to 59.
    pub min: i32,
    /// 0 to 60.
    pub sec: i32,
    /// The day of the week, 0 (Sunday) to 6.
    pub wday: i32,
    /// The day of the year, 0 to 365.
    pub yday: i32,
    /// Whether daylight saving time is in effect.
    pub isdst: bool,
}

fn zone() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| TimeZone::try_system().unwrap_or(TimeZone::UTC))
}

fn broken(ts: i64, tz: &TimeZone) -> Tm {
    let t = Timestamp::from_second(ts).unwrap_or(Timestamp::UNIX_EPOCH);
    let z = t.to_zoned(tz.clone());
    Tm {
        year: i32::from(z.year()),
        mon: i32::from(z.month()) - 1,
        mday: i32::from(z.day()),
        hour: i32::from(z.hour()),
        min: i32::from(z.minute()),
        sec: i32::from(z.second()),
        wday: i32::from(z.weekday().to_sunday_zero_offset()),
        yday: i32::from(z.day_of_year()) - 1,
        isdst: tz.to_offset_info(t).dst().is_dst(),
    }
}

/// `ts` (Unix seconds) in the server's time zone (`localtime_r`).
pub fn local(ts: i64) -> Tm {
    broken(ts, zone())
}

/// `ts` (Unix seconds) in UTC (`gmtime_r`).
pub fn utc(ts: i64) -> Tm {
    broken(ts, &TimeZone::UTC)
}

/// The Unix time of a civil time in the server's zone (`mktime` with
/// `tm_isdst = -1`): fields out of range carry over (month 12 is January
/// of the next year, day 0 the last of the previous month); a time that a
/// clock change skips is moved forward by the change. `None` when the
/// result is out of range.
pub fn mktime(year: i32, mon: i32, mday: i32, hour: i32, min: i32, sec: i32) -> Option<i64> {
    let base = DateTime::new(i16::try_from(year).ok()?, 1, 1, 0, 0, 0, 0).ok()?;
    let dt = base
        .checked_add(i64::from(mon).months())
        .ok()?
        .checked_add((i64::from(mday) - 1).days())
        .ok()?
        .checked_add((i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec)).seconds())
        .ok()?;
    let z = dt.to_zoned(zone().clone()).ok()?;
    Some(z.timestamp().as_second())
}

/// `strftime(fmt)` of `ts`, in the server's zone (`utc` false) or in UTC;
/// `None` when the format has a conversion that is not supported.
pub fn strftime(fmt: &str, ts: i64, utc: bool) -> Option<String> {
    let t = Timestamp::from_second(ts).ok()?;
    let tz = if utc { TimeZone::UTC } else { zone().clone() };
    jiff::fmt::strtime::format(fmt, &t.to_zoned(tz)).ok()
}

/// Whether `year` is a leap year.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// `ts` as C's `ctime_r` writes it, without its newline
/// (`Thu Jan  1 00:00:00 1970`), in the server's time zone.
pub fn ctime(ts: i64) -> String {
    strftime("%a %b %e %H:%M:%S %Y", ts, false).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_breakdown_and_mktime_carry() {
        // 2026-11-27 12:34:56 UTC, a Friday, day 331 of the year.
        let t = utc(1_795_782_896);
        assert_eq!(
            (t.year, t.mon, t.mday, t.hour, t.min, t.sec, t.wday, t.yday),
            (2026, 10, 27, 12, 34, 56, 5, 330)
        );
        assert!(is_leap_year(2024) && !is_leap_year(2100) && is_leap_year(2000));
        let s = strftime("%Y-%m-%d %H:%M:%S %a", 1_795_782_896, true).unwrap();
        assert_eq!(s, "2026-11-27 12:34:56 Fri");
        // mktime carries out-of-range fields (in whatever zone runs this:
        // the difference of two results does not depend on it, away from
        // clock changes).
        let a = mktime(2026, 0, 31, 12, 0, 0).unwrap();
        let b = mktime(2026, 1, 0, 12, 0, 0).unwrap();
        assert_eq!(a, b, "February 0th is January 31st");
        let c = mktime(2025, 12, 31, 12, 0, 0).unwrap();
        assert_eq!(a, c, "month 12 of 2025 is January 2026");
        assert_eq!(mktime(2026, 0, 31, 13, 0, 0).unwrap() - a, 3600);
    }
}
