//! # tmrec: time recurrences and periods
//!
//! Kamailio's tmrec module: `tmrec_match(timerec[, timestamp])` (RFC 2445
//! recurrences in Kamailio's `|`-separated form, see [`rec`]),
//! `time_period_match(period[, timestamp])` (Perl's `Time::Period`, see
//! [`period`]) and `is_leap_year([year])`. Parameter `separator` (the
//! first character of the value; default `|`). The recurrence code is
//! public: drouting's rules use it.
#![forbid(unsafe_code)]

pub mod period;
pub mod rec;

pub use period::{in_period, PeriodMatch};
pub use rec::TmRec;

use sr_sdk::fixup::{self, Arg, Fixed};
use sr_sdk::localtime;
use sr_sdk::prelude::*;

fn now() -> i64 {
    sr_sdk::db::now()
}

/// The first parameter a string with pseudo-variables, the second an
/// integer or a pseudo-variable (Kamailio's `fixup_spve` / `fixup_igp`).
fn str_then_int(env: &dyn fixup::FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 0 {
        fixup::spve(env, i, arg)
    } else {
        fixup::igp(env, i, arg)
    }
}

/// The timestamp argument, or now; `None` when it is not an integer.
fn when(ctx: &mut Ctx<'_>, p: &[Fixed]) -> Option<i64> {
    match p.get(1) {
        Some(f) => f.int_strict(ctx),
        None => Some(now()),
    }
}

fn tmrec_match(ctx: &mut Ctx<'_>, p: &[Fixed], sep: char) -> i32 {
    let rec = p[0].str(ctx).into_owned();
    let Some(t) = when(ctx, p) else {
        sr_sdk::lm_err!("invalid time stamp parameter value");
        return -1;
    };
    match TmRec::parse(&rec, sep) {
        Ok(r) if r.matches(t) => 1,
        Ok(_) => -1,
        Err(e) => {
            sr_sdk::lm_err!("failed to parse time recurrence [{rec}]: {e}");
            -1
        }
    }
}

fn time_period_match(ctx: &mut Ctx<'_>, p: &[Fixed]) -> i32 {
    let period = p[0].str(ctx).into_owned();
    let Some(t) = when(ctx, p) else {
        sr_sdk::lm_err!("invalid time stamp parameter value");
        return -4;
    };
    match in_period(t, &period) {
        PeriodMatch::Yes => 1,
        PeriodMatch::No => -1,
        // Kamailio 5.6 takes its parser's error code for a match: so does
        // siprouter, saying so in the log.
        PeriodMatch::Invalid => {
            sr_sdk::lm_err!("invalid time period [{period}]: taken as a match, as Kamailio does");
            1
        }
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let sep = params::str_cell("|");
    let any = RouteType::ANY;
    let fix = || Some(fixup::f(str_then_int));
    let mut def = ModuleDef::new("tmrec")
        .param("separator", ParamKind::Str, params::string(&sep))
        .param("wday", ParamKind::Int, |_| Ok(()));
    for n in 1..=2 {
        let sep = sep.clone();
        def = def
            .cmd("tmrec_match", n, any, fix(), move |ctx, p| {
                let c = params::get_str(&sep).chars().next().unwrap_or('|');
                tmrec_match(ctx, p, c)
            })
            .cmd("time_period_match", n, any, fix(), time_period_match);
    }
    def.cmd("is_leap_year", 0, any, None, |_, _| {
        b(localtime::is_leap_year(i64::from(
            localtime::local(now()).year,
        )))
    })
    .cmd(
        "is_leap_year",
        1,
        any,
        Some(fixup::f(fixup::igp)),
        |ctx, p| match p[0].int_strict(ctx) {
            Some(y) => b(localtime::is_leap_year(y)),
            None => {
                sr_sdk::lm_err!("invalid time parameter value");
                -1
            }
        },
    )
}

fn b(x: bool) -> i32 {
    if x {
        1
    } else {
        -1
    }
}
