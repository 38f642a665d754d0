//! `time_period_match`: Perl's `Time::Period` as Kamailio's tmrec module
//! ports it. A period is sub-periods separated by `,` (any may match);
//! a sub-period is scales (`wd {mon-fri} hr {9-17}`), all of which must
//! match; a scale lists values and ranges (ranges may wrap around:
//! `wd {fri-mon}`).

use sr_sdk::localtime;

/// What a period says of a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodMatch {
    /// The moment is in the period.
    Yes,
    /// It is not.
    No,
    /// The period does not parse.
    Invalid,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scale {
    Year,
    Month,
    Week,
    Mday,
    Wday,
    Yday,
    Hour,
    Minute,
    Second,
}

/// The scales in Kamailio's order, with their two names each.
const SCALES: [(Scale, &str, &str); 9] = [
    (Scale::Year, "year", "yr"),
    (Scale::Month, "month", "mo"),
    (Scale::Week, "week", "wk"),
    (Scale::Mday, "mday", "md"),
    (Scale::Wday, "wday", "wd"),
    (Scale::Yday, "yday", "yd"),
    (Scale::Hour, "hour", "hr"),
    (Scale::Minute, "minute", "min"),
    (Scale::Second, "second", "sec"),
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["su", "mo", "tu", "we", "th", "fr", "sa"];

/// The longest value text (Kamailio's buffer: 15 characters).
const MAX_VALUE: usize = 15;

fn time_vars(t: i64) -> [i64; 9] {
    let tm = localtime::local(t);
    let week = (tm.mday - 1 + (tm.wday - tm.mday + 1) % 7) / 7 + 1;
    [
        i64::from(tm.year),
        i64::from(tm.mon + 1),
        i64::from(week),
        i64::from(tm.mday),
        i64::from(tm.wday + 1),
        i64::from(tm.yday + 1),
        i64::from(tm.hour),
        i64::from(tm.min),
        i64::from(tm.sec),
    ]
}

/// C's `atol`: leading blanks, a sign, digits; 0 when none.
fn atol(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |a, c| {
            a.saturating_mul(10).saturating_add(i64::from(c - b'0'))
        });
    if neg {
        -v
    } else {
        v
    }
}

/// A value within `[min, max]`, a range wrapping around when `f > t`:
/// `Some(true/false)`, `None` for a value out of range.
fn generic(var: i64, f: i64, t: Option<i64>, min: i64, max: i64) -> Option<bool> {
    let t = t.unwrap_or(f);
    if !(min..=max).contains(&f) || !(min..=max).contains(&t) {
        return None;
    }
    Some(if f > t {
        f <= var || t >= var
    } else {
        f <= var && var <= t
    })
}

/// A number, else the first name whose first `n` letters begin the text.
fn named(s: &str, names: &[&str], n: usize) -> Option<i64> {
    let v = atol(s);
    if v != 0 {
        return Some(v);
    }
    let key: Vec<u8> = s.bytes().take(n).collect();
    names
        .iter()
        .position(|name| name.as_bytes()[..n.min(name.len())] == key[..])
        .map(|i| i as i64 + 1)
}

fn scale_match(scale: Scale, var: i64, from: &str, to: Option<&str>) -> Option<bool> {
    let num = |s: &str| atol(s);
    match scale {
        Scale::Year => {
            let c = var / 100;
            let widen = |y: i64| match y {
                y if y < 0 => None,
                0..=99 => Some(y + c),
                y if y < 1970 => None,
                y => Some(y),
            };
            let f = num(from);
            let t = to.map_or(f, num);
            let (f, t) = (widen(f)?, widen(t)?);
            Some(var >= f && var <= t)
        }
        Scale::Month | Scale::Wday => {
            let (names, n, max): (&[&str], usize, i64) = if scale == Scale::Month {
                (&MONTHS, 3, 12)
            } else {
                (&WEEKDAYS, 2, 7)
            };
            let f = named(from, names, n)?;
            let t = match to {
                Some(t) => named(t, names, n)?,
                None => f,
            };
            generic(var, f, Some(t), 1, max)
        }
        _ => {
            let (min, max) = match scale {
                Scale::Week => (1, 6),
                Scale::Mday => (1, 31),
                Scale::Yday => (1, 366),
                Scale::Hour => (0, 23),
                Scale::Minute => (0, 59),
                _ => (0, 60),
            };
            generic(var, num(from), to.map(num), min, max)
        }
    }
}

/// Whether `t` (Unix seconds, local time) is in `period`.
pub fn in_period(t: i64, period: &str) -> PeriodMatch {
    let b = period.as_bytes();
    let mut p = 0usize;
    let skip = |p: &mut usize| {
        while b.get(*p) == Some(&b' ') {
            *p += 1;
        }
    };
    skip(&mut p);
    if p >= b.len() {
        return PeriodMatch::Yes;
    }
    let rest = &period[p..];
    if rest.eq_ignore_ascii_case("none") || rest.eq_ignore_ascii_case("never") {
        return PeriodMatch::No;
    }
    let vars = time_vars(t);
    loop {
        // One sub-period: None = scale not given, Some(matched).
        let mut results: [Option<bool>; 9] = [None; 9];
        loop {
            let Some((si, len)) = SCALES.iter().enumerate().find_map(|(i, (_, a, bb))| {
                [*a, *bb].into_iter().find_map(|name| {
                    let n = name.len();
                    let head = b.get(p..p + n)?;
                    let next = b.get(p + n).copied();
                    (head.eq_ignore_ascii_case(name.as_bytes())
                        && matches!(next, Some(b' ' | b'{')))
                    .then_some((i, n))
                })
            }) else {
                return PeriodMatch::Invalid;
            };
            p += len;
            skip(&mut p);
            if b.get(p) != Some(&b'{') {
                return PeriodMatch::Invalid;
            }
            p += 1;
            skip(&mut p);
            if results[si] == Some(true) {
                // Already matched: skip to the brace.
                while p < b.len() && b[p] != b'}' {
                    p += 1;
                }
                if p >= b.len() {
                    return PeriodMatch::Invalid;
                }
            } else {
                if results[si].is_none() {
                    results[si] = Some(false);
                }
                // Values and ranges up to the closing brace.
                loop {
                    let mut from = String::new();
                    let mut to = String::new();
                    let mut in_to = false;
                    loop {
                        match b.get(p) {
                            None => return PeriodMatch::Invalid,
                            Some(b' ') => {
                                skip(&mut p);
                                if b.get(p) == Some(&b'-') {
                                    if from.is_empty() || !to.is_empty() {
                                        return PeriodMatch::Invalid;
                                    }
                                    in_to = true;
                                    p += 1;
                                    skip(&mut p);
                                    continue;
                                }
                                break;
                            }
                            Some(b'-') => {
                                if from.is_empty() || !to.is_empty() {
                                    return PeriodMatch::Invalid;
                                }
                                in_to = true;
                                p += 1;
                                skip(&mut p);
                            }
                            Some(b'}') => break,
                            Some(&c) => {
                                let cur = if in_to { &mut to } else { &mut from };
                                if cur.len() >= MAX_VALUE {
                                    return PeriodMatch::Invalid;
                                }
                                cur.push(char::from(c | 0x20));
                                p += 1;
                            }
                        }
                    }
                    if from.is_empty() {
                        if b.get(p) == Some(&b'}') {
                            break;
                        }
                        continue;
                    }
                    let to = (!to.is_empty()).then_some(to.as_str());
                    match scale_match(SCALES[si].0, vars[si], &from, to) {
                        None => return PeriodMatch::Invalid,
                        Some(true) => results[si] = Some(true),
                        Some(false) => {}
                    }
                }
            }
            // The closing brace.
            p += 1;
            skip(&mut p);
            if p >= b.len() || b[p] == b',' {
                if results.iter().all(|r| *r != Some(false)) {
                    return PeriodMatch::Yes;
                }
                if p < b.len() {
                    p += 1;
                    skip(&mut p);
                    break;
                }
                return PeriodMatch::No;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-27 (a Friday) 16:45:30 UTC; the tests run in UTC.
    const T: i64 = 1_795_797_930;

    fn p(s: &str) -> PeriodMatch {
        in_period(T, s)
    }

    #[test]
    fn scales_values_and_ranges() {
        if localtime::local(T) != localtime::utc(T) {
            return; // the expected values are UTC's
        }
        use PeriodMatch::*;
        assert_eq!(p(""), Yes);
        assert_eq!(p("  "), Yes);
        assert_eq!(p("never"), No);
        assert_eq!(p("wd {fri}"), Yes);
        assert_eq!(p("wd{2-6} hr{8-16}"), Yes);
        assert_eq!(p("wd{2-5} hr{8-16}"), No);
        assert_eq!(p("wd{mo-th}, hr{16} min{40-50}"), Yes);
        assert_eq!(p("wd { sat - mon }"), No);
        assert_eq!(p("wd {thu-sun}"), Yes);
        assert_eq!(p("wd {sat-fri}"), Yes, "wraps around");
        assert_eq!(p("month {november}"), Yes);
        assert_eq!(p("mo {jan-oct}"), No);
        assert_eq!(p("md {27} yd {331}"), Yes);
        assert_eq!(p("wk {4}"), Yes, "week 4 of the month");
        assert_eq!(p("sec {30} min {45}"), Yes);
        assert_eq!(p("year {2026}"), Yes);
        assert_eq!(p("year {2025}"), No);
        assert_eq!(p("hr {24}"), Invalid, "out of range");
        assert_eq!(p("weekday {fri}"), Invalid, "unknown scale");
        assert_eq!(p("hr {1-2-3}"), Invalid);
        assert_eq!(p("hr {-3}"), Invalid);
        assert_eq!(p("hr {3"), Invalid);
        assert_eq!(p("hr {16} hr {1}"), Yes, "a scale given twice: either");
    }
}
