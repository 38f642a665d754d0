//! Time recurrences (RFC 2445 subset) in Kamailio's `|`-separated form:
//! `dtstart|duration|freq|until|interval|byday|bymday|byyday|byweekno|bymonth`,
//! parsed and matched as Kamailio's core `tmrec` code does, quirks
//! included (they decide which calls get routed where):
//!
//! - the interval field adds its digits (`12` is 3);
//! - a `byxxx` list that does not parse is ignored, not an error;
//! - a period that crosses midnight only matches until midnight;
//! - the first occurrence's end is inclusive, the others' exclusive;
//! - a positive day of the month equal to the month's length never
//!   matches;
//! - a positive day of the year n is the day after the n-th, and a
//!   month n the one after the n-th (`3` is April, `12` January; `-1`
//!   is December): Kamailio 5.6's arithmetic, fixed in its later core
//!   copy only;
//! - a week day's count (`-1FR`, `4FR`) is compared modulo the number of
//!   such days in the month (or year): `-1FR` is the one before the last
//!   Friday, and the last one (`4FR` in a month of four) never matches.
//!
//! Times are the server's local time (`localtime`, `mktime`).

use sr_sdk::localtime::{self, Tm};

const FREQ_NONE: u8 = 0;
const FREQ_YEARLY: u8 = 1;
const FREQ_MONTHLY: u8 = 2;
const FREQ_WEEKLY: u8 = 3;
const FREQ_DAILY: u8 = 4;

/// One `byxxx` list: each item's value and its sign (`byday`: the week
/// day and the signed count before it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByList {
    /// (value, sign or count) per item.
    pub items: Vec<(i32, i32)>,
}

/// Which of Kamailio's two copies of the recurrence code to follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    /// The core's (tmrec, and everything but drouting).
    #[default]
    Core,
    /// drouting's own copy: a duration needs no `P` before hours (`10H`)
    /// and takes no sign; a bad duration or until is 0 (no error); no
    /// duration means "from the start on, for ever"; a frequency under 5
    /// characters is none.
    Drouting,
}

/// A parsed recurrence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TmRec {
    /// The first period's start (Unix seconds); 0 when not given.
    pub dtstart: i64,
    /// `dtstart` broken down.
    pub ts: Option<Tm>,
    /// Seconds.
    pub duration: i64,
    /// The last occurrence's start bound (0: none).
    pub until: i64,
    freq: u8,
    interval: i32,
    byday: Option<ByList>,
    bymday: Option<ByList>,
    byyday: Option<ByList>,
    byweekno: Option<ByList>,
    bymonth: Option<ByList>,
    dialect: Dialect,
}

fn digit(b: u8) -> i32 {
    i32::from(b) - i32::from(b'0')
}

/// `YYYYMMDDTHHMMSS` (15 characters; digits are not checked, as in
/// Kamailio) in local time: `None` when it is not 15 long or gives 0.
fn parse_datetime(s: &str) -> Option<(i64, Tm)> {
    let b = s.as_bytes();
    if b.len() != 15 {
        return None;
    }
    let year = digit(b[0]) * 1000 + digit(b[1]) * 100 + digit(b[2]) * 10 + digit(b[3]);
    let mon = digit(b[4]) * 10 + digit(b[5]) - 1;
    let mday = digit(b[6]) * 10 + digit(b[7]);
    let hour = digit(b[9]) * 10 + digit(b[10]);
    let min = digit(b[11]) * 10 + digit(b[12]);
    let sec = digit(b[13]) * 10 + digit(b[14]);
    let t = localtime::mktime(year, mon, mday, hour, min, sec)?;
    (t != 0).then(|| (t, localtime::local(t)))
}

/// An RFC 2445 duration (`PT8H`, `P1D`, `+P1W`): seconds, 0 when invalid.
fn parse_duration(s: &str) -> i64 {
    let b = s.as_bytes();
    let rest = match b.first() {
        Some(b'P' | b'p') => &b[1..],
        Some(b'+' | b'-') if matches!(b.get(1), Some(b'P' | b'p')) => &b[2..],
        _ => return 0,
    };
    let (mut t, mut total, mut date_part) = (0i64, 0i64, true);
    for &c in rest {
        match c {
            b'0'..=b'9' => t = t.saturating_mul(10).saturating_add(i64::from(c - b'0')),
            b'w' | b'W' | b'd' | b'D' if date_part => {
                let unit = if c.eq_ignore_ascii_case(&b'w') {
                    7 * 86400
                } else {
                    86400
                };
                total = total.saturating_add(t.saturating_mul(unit));
                t = 0;
            }
            b'h' | b'H' | b'm' | b'M' | b's' | b'S' if !date_part => {
                let unit = match c.to_ascii_lowercase() {
                    b'h' => 3600,
                    b'm' => 60,
                    _ => 1,
                };
                total = total.saturating_add(t.saturating_mul(unit));
                t = 0;
            }
            b't' | b'T' if date_part => date_part = false,
            _ => return 0,
        }
    }
    total
}

/// drouting's duration: `P` starts the date part (weeks, days), its
/// absence or `T` the time part (hours, minutes, seconds); 0 when invalid
/// or shorter than 2 characters.
fn parse_duration_dr(s: &str) -> i64 {
    let b = s.as_bytes();
    if b.len() < 2 {
        return 0;
    }
    let (rest, mut date_part) = match b[0] {
        b'P' | b'p' => (&b[1..], true),
        _ => (b, false),
    };
    let (mut t, mut total) = (0i64, 0i64);
    for &c in rest {
        let unit = match c.to_ascii_lowercase() {
            d @ b'0'..=b'9' => {
                t = t.saturating_mul(10).saturating_add(i64::from(d - b'0'));
                continue;
            }
            b't' if date_part => {
                date_part = false;
                continue;
            }
            b'w' if date_part => 7 * 86400,
            b'd' if date_part => 86400,
            b'h' if !date_part => 3600,
            b'm' if !date_part => 60,
            b's' if !date_part => 1,
            _ => return 0,
        };
        total = total.saturating_add(t.saturating_mul(unit));
        t = 0;
    }
    total
}

fn parse_freq(s: &str) -> u8 {
    match s.to_ascii_lowercase().as_str() {
        "daily" => FREQ_DAILY,
        "weekly" => FREQ_WEEKLY,
        "monthly" => FREQ_MONTHLY,
        "yearly" => FREQ_YEARLY,
        _ => FREQ_NONE,
    }
}

/// The interval: Kamailio adds the leading digits instead of reading a
/// number (`12` gives 3).
fn parse_interval(s: &str) -> i32 {
    s.bytes()
        .take_while(u8::is_ascii_digit)
        .map(|c| i32::from(c - b'0'))
        .sum()
}

/// Items as many as the commas say (one more), each (0, 0) until set.
fn slots(s: &str) -> Vec<(i32, i32)> {
    vec![(0, 0); s.bytes().filter(|&c| c == b',').count() + 1]
}

/// A `byday` list (`MO,-1FR,2TU`); `None` when it does not parse.
fn parse_byday(s: &str) -> Option<ByList> {
    let mut items = slots(s);
    let b = s.as_bytes();
    let (mut nr, mut v, mut sign, mut i) = (0usize, 0i32, 1i32, 0usize);
    while i < b.len() && nr < items.len() {
        let next = b.get(i + 1).map(u8::to_ascii_lowercase);
        let day = match b[i].to_ascii_lowercase() {
            c @ b'0'..=b'9' => {
                v = v.saturating_mul(10).saturating_add(i32::from(c - b'0'));
                None
            }
            b's' => Some(match next? {
                b'a' => 6,
                b'u' => 0,
                _ => return None,
            }),
            b'm' if next == Some(b'o') => Some(1),
            b't' => Some(match next? {
                b'h' => 4,
                b'u' => 2,
                _ => return None,
            }),
            b'w' if next == Some(b'e') => Some(3),
            b'f' if next == Some(b'r') => Some(5),
            b'-' => {
                sign = -1;
                None
            }
            b'+' | b' ' | b'\t' => None,
            b',' => {
                nr += 1;
                None
            }
            _ => return None,
        };
        if let Some(d) = day {
            items[nr] = (d, sign * v);
            sign = 1;
            v = 0;
            i += 1;
        }
        i += 1;
    }
    Some(ByList { items })
}

/// A numeric `byxxx` list (`1,-1,15`); `None` when it does not parse.
fn parse_byxxx(s: &str) -> Option<ByList> {
    let mut items = slots(s);
    let (mut nr, mut v, mut sign) = (0usize, 0i32, 1i32);
    for c in s.bytes() {
        if nr >= items.len() {
            break;
        }
        match c {
            b'0'..=b'9' => v = v.saturating_mul(10).saturating_add(i32::from(c - b'0')),
            b'-' => sign = -1,
            b'+' | b' ' | b'\t' => {}
            b',' => {
                items[nr] = (v, sign);
                sign = 1;
                v = 0;
                nr += 1;
            }
            _ => return None,
        }
    }
    if nr < items.len() {
        items[nr] = (v, sign);
    }
    Some(ByList { items })
}

impl TmRec {
    /// Parses a recurrence with `sep` between the fields; `Err` names the
    /// field that Kamailio would also refuse (a date-time not 15
    /// characters long, a duration that does not parse or is 0).
    pub fn parse(s: &str, sep: char) -> Result<TmRec, String> {
        if s.is_empty() {
            return Err("empty time recurrence".into());
        }
        TmRec::parse_as(s, sep, Dialect::Core)
    }

    /// Parses a `timerec` of drouting's `dr_rules` (`|` between the
    /// fields): only a start that does not parse is an error; an empty
    /// text is always active.
    pub fn parse_drouting(s: &str) -> Result<TmRec, String> {
        TmRec::parse_as(s, '|', Dialect::Drouting)
    }

    fn parse_as(s: &str, sep: char, dialect: Dialect) -> Result<TmRec, String> {
        let dr = dialect == Dialect::Drouting;
        let mut r = TmRec {
            dialect,
            ..TmRec::default()
        };
        for (i, f) in s.split(sep).enumerate() {
            if f.is_empty() {
                continue;
            }
            match i {
                0 => {
                    let (t, tm) = parse_datetime(f)
                        .ok_or_else(|| format!("bad start date-time '{f}' (YYYYMMDDTHHMMSS)"))?;
                    r.dtstart = t;
                    r.ts = Some(tm);
                }
                1 if dr => r.duration = parse_duration_dr(f),
                1 => {
                    r.duration = parse_duration(f);
                    if r.duration == 0 {
                        return Err(format!("bad duration '{f}' (RFC 2445, e.g. PT8H)"));
                    }
                }
                2 if dr && f.len() < 5 => r.freq = FREQ_NONE,
                2 => r.freq = parse_freq(f),
                3 if dr => r.until = parse_datetime(f).map_or(0, |(t, _)| t),
                3 => {
                    r.until = parse_datetime(f)
                        .ok_or_else(|| format!("bad until date-time '{f}' (YYYYMMDDTHHMMSS)"))?
                        .0
                }
                4 => r.interval = parse_interval(f),
                5 => r.byday = parse_byday(f),
                6 => r.bymday = parse_byxxx(f),
                7 => r.byyday = parse_byxxx(f),
                8 => r.byweekno = parse_byxxx(f),
                9 => r.bymonth = parse_byxxx(f),
                _ => {}
            }
        }
        Ok(r)
    }

    /// Whether the recurrence holds at `now` (Unix seconds): always when
    /// no start is given; never without a duration.
    pub fn matches(&self, now: i64) -> bool {
        let Some(ts) = self.ts else {
            return true;
        };
        if now < self.dtstart {
            return false;
        }
        if self.duration <= 0 {
            return self.dialect == Dialect::Drouting;
        }
        if now <= self.dtstart + self.duration {
            return true;
        }
        if self.until > 0 && now >= self.until + self.duration {
            return false;
        }
        let at = localtime::local(now);
        self.freq_interval(&ts, &at) && self.min_unit(&ts, &at) && self.byxxx(&at)
    }

    fn freq_interval(&self, ts: &Tm, at: &Tm) -> bool {
        if self.freq == FREQ_NONE {
            return false;
        }
        if self.interval <= 0 || self.interval == 1 {
            return true;
        }
        let iv = i64::from(self.interval);
        match self.freq {
            FREQ_DAILY | FREQ_WEEKLY => {
                let d0 = days(ts.year, ts.mon, ts.mday);
                let d1 = days(at.year, at.mon, at.mday);
                if self.freq == FREQ_DAILY {
                    return (d1 - d0) % iv == 0;
                }
                let w0 = d0 - i64::from((ts.wday + 6) % 7);
                let w1 = d1 - i64::from((at.wday + 6) % 7);
                ((w1 - w0) / 7) % iv == 0
            }
            FREQ_MONTHLY => {
                let m = 12 * i64::from(at.year - ts.year) + i64::from(at.mon - ts.mon);
                m % iv == 0
            }
            _ => i64::from(at.year - ts.year) % iv == 0,
        }
    }

    fn min_unit(&self, ts: &Tm, at: &Tm) -> bool {
        let daily = self.freq == FREQ_DAILY
            || self.byday.is_some()
            || self.bymday.is_some()
            || self.byyday.is_some();
        let ok = if daily {
            true
        } else if self.freq == FREQ_WEEKLY || self.byweekno.is_some() {
            ts.wday == at.wday
        } else if self.freq == FREQ_MONTHLY || self.bymonth.is_some() {
            ts.mday == at.mday
        } else if self.freq == FREQ_YEARLY {
            ts.mon == at.mon && ts.mday == at.mday
        } else {
            false
        };
        let v0 = i64::from(ts.hour * 3600 + ts.min * 60 + ts.sec);
        let v1 = i64::from(at.hour * 3600 + at.min * 60 + at.sec);
        ok && v1 >= v0 && v1 < v0 + self.duration
    }

    fn byxxx(&self, at: &Tm) -> bool {
        if self.byday.is_none()
            && self.bymday.is_none()
            && self.byyday.is_none()
            && self.bymonth.is_none()
            && self.byweekno.is_none()
        {
            return true;
        }
        let mv = MaxVals::of(at);
        let any = |l: &Option<ByList>, f: &dyn Fn(i32, i32) -> bool| {
            l.as_ref()
                .is_none_or(|l| l.items.iter().any(|&(x, r)| f(x, r)))
        };
        any(&self.bymonth, &|x, r| at.mon == rem(x * r + 12, 12))
            && (self.freq != FREQ_YEARLY
                || any(&self.byweekno, &|x, r| {
                    week_of_year(at) == rem(x * r + mv.yweek, mv.yweek)
                }))
            && any(&self.byyday, &|x, r| {
                at.yday == rem(x * r + mv.yday, mv.yday)
            })
            && any(&self.bymday, &|x, r| {
                at.mday == rem(x * r + mv.mday, mv.mday) + i32::from(r < 0)
            })
            && any(&self.byday, &|x, r| {
                at.wday == x
                    && match self.freq {
                        FREQ_YEARLY => at.yday / 7 + 1 == rem(r + mv.ywday, mv.ywday),
                        FREQ_MONTHLY => (at.mday - 1) / 7 + 1 == rem(r + mv.mwday, mv.mwday),
                        _ => true,
                    }
            })
    }
}

/// C's `%` (the sign of the dividend), 0 for a zero divisor.
fn rem(a: i32, b: i32) -> i32 {
    if b == 0 {
        0
    } else {
        a % b
    }
}

/// Days since the epoch of a civil date (month from 0; carried over).
fn days(year: i32, mon: i32, mday: i32) -> i64 {
    let y = i64::from(year) + i64::from(mon.div_euclid(12));
    let m = i64::from(mon.rem_euclid(12)) + 1;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(mday) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The week of the year, weeks starting on Monday (`%W`).
fn week_of_year(t: &Tm) -> i32 {
    (t.yday + 7 - if t.wday > 0 { t.wday - 1 } else { 6 }) / 7
}

/// The largest values of the moment's year and month (Kamailio's
/// `ac_get_maxval`).
struct MaxVals {
    yday: i32,
    mday: i32,
    ywday: i32,
    yweek: i32,
    mwday: i32,
}

impl MaxVals {
    fn of(at: &Tm) -> MaxVals {
        let yday = 365 + i32::from(localtime::is_leap_year(i64::from(at.year)));
        let mday = match at.mon {
            1 if yday == 366 => 29,
            1 => 28,
            3 | 5 | 8 | 10 => 30,
            _ => 31,
        };
        // December 31st of the year.
        let dec31_days = days(at.year, 11, 31);
        let dec31 = Tm {
            yday: yday - 1,
            wday: (dec31_days + 4).rem_euclid(7) as i32,
            ..*at
        };
        let v = if at.wday > dec31.wday {
            at.wday - dec31.wday + 1
        } else {
            dec31.wday - at.wday
        };
        MaxVals {
            yday,
            mday,
            ywday: (dec31.yday - v) / 7 + 1,
            yweek: week_of_year(&dec31) + 1,
            mwday: (mday - 1 - (mday - at.mday) % 7) / 7 + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        parse_datetime(s).unwrap().0
    }

    fn m(rec: &str, when: &str) -> bool {
        TmRec::parse(rec, '|').unwrap().matches(at(when))
    }

    #[test]
    fn fields_parse_as_kamailio_reads_them() {
        assert_eq!(parse_duration("PT8H"), 8 * 3600);
        assert_eq!(parse_duration("P1DT2H3M4S"), 86400 + 7384);
        assert_eq!(parse_duration("-P1W"), 7 * 86400, "the sign is ignored");
        assert_eq!(parse_duration("PT1D"), 0, "days after T");
        assert_eq!(parse_duration("P8H"), 0, "hours before T");
        assert_eq!(parse_interval("12"), 3, "digits added");
        assert_eq!(
            parse_byday("MO,-1fr, 2TU").unwrap().items,
            vec![(1, 0), (5, -1), (2, 2)]
        );
        assert_eq!(parse_byday("MO,").unwrap().items, vec![(1, 0), (0, 0)]);
        assert!(parse_byday("XX").is_none());
        assert_eq!(
            parse_byxxx("1,-2,+3").unwrap().items,
            vec![(1, 1), (2, -1), (3, 1)]
        );
        assert!(parse_byxxx("1;2").is_none());
        assert!(TmRec::parse("2012", '|').is_err());
        assert!(TmRec::parse("20120101T000000|PT0S", '|').is_err());
        // A byxxx list that does not parse is dropped.
        let r = TmRec::parse("20120101T000000|PT1H|weekly|||XX", '|').unwrap();
        assert!(r.byday.is_none());
        assert!(TmRec::parse("", '|').is_err());
        assert!(
            TmRec::parse("|PT1H", '|').unwrap().matches(0),
            "no start: always"
        );
    }

    #[test]
    fn drouting_reads_its_own_way() {
        let d = |rec: &str, when: &str| TmRec::parse_drouting(rec).unwrap().matches(at(when));
        assert_eq!(parse_duration_dr("10H"), 36000);
        assert_eq!(parse_duration_dr("PT8H30M"), 8 * 3600 + 1800);
        assert_eq!(parse_duration_dr("P1W2DT3H"), 9 * 86400 + 3 * 3600);
        assert_eq!(parse_duration_dr("+PT1H"), 0);
        assert_eq!(parse_duration_dr("H"), 0);
        assert!(d("", "20261127T120000"), "empty: always");
        assert!(d(
            "20040101T083000|10H|weekly|||MO,TU,WE,TH,FR",
            "20261127T182959"
        ));
        assert!(!d(
            "20040101T083000|10H|weekly|||MO,TU,WE,TH,FR",
            "20261128T100000"
        ));
        // No (or a bad) duration: from the start on, for ever.
        assert!(d("20261127T100000", "20301127T100000"));
        assert!(d("20261127T100000|bad|daily", "20301127T100000"));
        assert!(!d("20261127T100000", "20261127T095959"));
        // A bad until is no bound; a short frequency is none.
        assert!(d("20261102T090000|PT1H|daily|2026", "20271102T093000"));
        assert!(!d("20261102T090000|PT1H|dai", "20261103T093000"));
        assert!(TmRec::parse_drouting("2026").is_err());
    }

    #[test]
    fn working_hours_and_weekends() {
        let work = "20120101T083000|PT10H|weekly|||MO,TU,WE,TH,FR";
        // 2026-11-27 is a Friday.
        assert!(m(work, "20261127T083000"));
        assert!(m(work, "20261127T182959"));
        assert!(!m(work, "20261127T183000"), "the end is exclusive");
        assert!(!m(work, "20261127T082959"));
        assert!(!m(work, "20261128T100000"), "Saturday");
        let weekend = "20120101T000000|PT24H|weekly|||SA,SU";
        assert!(m(weekend, "20261128T100000"));
        assert!(!m(weekend, "20261127T100000"));
        // The first occurrence's end is inclusive.
        assert!(m("20261127T100000|PT1H", "20261127T110000"));
        assert!(!m("20261127T100000|PT1H", "20261127T110001"));
        assert!(!m("20261127T100000|PT1H", "20261127T095959"));
    }

    #[test]
    fn intervals_until_and_by_lists() {
        // Every other day from Monday 2026-11-02, 09:00 for an hour.
        let r = "20261102T090000|PT1H|daily||2";
        assert!(m(r, "20261104T093000"));
        assert!(!m(r, "20261105T093000"));
        // Weekly every 3 weeks (interval "111": 1+1+1).
        let r = "20261102T090000|PT1H|weekly||111";
        assert!(m(r, "20261123T090000"));
        assert!(!m(r, "20261116T090000"));
        // Until bounds the occurrences.
        let r = "20261102T090000|PT1H|daily|20261105T090000";
        assert!(m(r, "20261105T095959"));
        assert!(!m(r, "20261106T090000"));
        // -1FR: in Kamailio's arithmetic ((n + max) % max against the
        // occurrence) the one before the last Friday; 1MO the first Monday.
        let r = "20260101T000000|PT24H|monthly|||-1FR,1MO";
        assert!(!m(r, "20261127T120000"), "the last Friday of November 2026");
        assert!(m(r, "20261120T120000"));
        assert!(m(r, "20261102T120000"), "first Monday");
        assert!(!m(r, "20261109T120000"));
        // bymonth: 3 is April (5.6's arithmetic), -1 December.
        let r = "20260101T000000|PT24H|daily|||||||3,-1";
        assert!(m(r, "20270415T120000"));
        assert!(!m(r, "20270315T120000"));
        assert!(m(r, "20261215T120000"));
        assert!(!m(r, "20261115T120000"));
        // bymonthday: the last day matches through -1, not through 30.
        let r = "20260101T000000|PT24H|monthly||||-1";
        assert!(m(r, "20261130T120000"));
        let r = "20260101T000000|PT24H|monthly||||30";
        assert!(!m(r, "20261130T120000"), "Kamailio's modulo quirk");
        assert!(m(r, "20261230T120000"));
        // byyearday: Kamailio compares with the day counted from 0, so a
        // positive n is the day after the n-th.
        let r = "20260101T000000|PT24H|yearly|||||1,-1";
        assert!(m(r, "20270102T120000"));
        assert!(!m(r, "20270101T120000"));
        assert!(m(r, "20261231T120000"));
        assert!(!m(r, "20261230T120000"));
        // A period crossing midnight ends at midnight.
        let r = "20261102T220000|PT4H|daily";
        assert!(m(r, "20261110T233000"));
        assert!(!m(r, "20261111T003000"));
    }
}
