//! # cfgutils: script utilities
//!
//! Kamailio's `cfgutils` module: random events with a probability
//! (`rand_event`, `rand_set_prob`, `rand_reset_prob`, `rand_get_prob`,
//! `$RANDOM`), global flags (`set_gflag`, `reset_gflag`, `is_gflag`),
//! named locks (`lock`, `trylock`, `unlock`, in `2^lock_set_size` slots by
//! Kamailio's hash), `core_hash`, `check_route_exists`,
//! `route_if_exists`, `sleep`/`usleep`, `abort`, the memory reports, the
//! configuration file's hash, and the `cfgutils.*` RPC methods.
#![forbid(unsafe_code)]

pub mod state;

use sr_sdk::prelude::*;
use state::Utils;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn pause(name: &str, n: i64, unit: fn(u64) -> Duration) -> i32 {
    match u64::try_from(n) {
        Ok(n) => {
            std::thread::sleep(unit(n));
            1
        }
        Err(_) => {
            lm_err!("{name}: negative time {n}");
            -1
        }
    }
}

/// An integer or a pseudo-variable holding one (a string is refused, as
/// Kamailio's `igp` parameters at run time).
fn int_arg(ctx: &mut Ctx<'_>, p: &Fixed) -> Option<i64> {
    let v = match p {
        Fixed::Dyn(e) => e.eval(ctx),
        Fixed::Pv(e) => e.eval(ctx),
        other => Value::Int(other.int(ctx)),
    };
    match v {
        Value::Int(i) => Some(i),
        Value::Null => Some(0),
        Value::Str(_) => None,
    }
}

/// Kamailio's `str2int` as `rand_set_prob`'s fixup uses it: an optional
/// `+`, then digits up to the first other byte (nothing read is 0).
fn loose_int(s: &str) -> u64 {
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut v: u64 = 0;
    for b in s.bytes().take_while(u8::is_ascii_digit) {
        v = match v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
        {
            Some(v) => v,
            None => return u64::from(u32::MAX),
        };
    }
    v.min(u64::from(u32::MAX))
}

/// A global flag's number (0..31), as written: strictly digits.
fn flag_number(s: &str) -> Result<u32, String> {
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad number <{s}>"));
    }
    let n: u64 = t.parse().map_err(|_| format!("bad number <{s}>"))?;
    if n > 31 {
        return Err(format!("flag <{n}> out of range [0..31]"));
    }
    Ok(n as u32)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let u = Arc::new(Utils::default());
    let int = Some(fixup::f(fixup::igp));
    let spve = Some(fixup::f(fixup::spve));
    let init = u.clone();
    let mut def = ModuleDef::new("cfgutils")
        .param(
            "initial_probability",
            ParamKind::Int,
            params::int(&u.initial_probability),
        )
        .param(
            "initial_gflags",
            ParamKind::Int,
            params::int(&u.initial_gflags),
        )
        .param("hash_file", ParamKind::Str, params::string(&u.hash_file))
        .param(
            "lock_set_size",
            ParamKind::Int,
            params::int(&u.lock_set_size),
        )
        .on_init(move |core| init.init(Some(core)))
        .cmd(
            "sleep",
            1,
            RouteType::ANY,
            int.clone(),
            |ctx, p| match int_arg(ctx, &p[0]) {
                Some(n) => pause("sleep", n, Duration::from_secs),
                None => {
                    lm_err!("sleep: cannot get time interval value");
                    -1
                }
            },
        )
        .cmd(
            "usleep",
            1,
            RouteType::ANY,
            int.clone(),
            |ctx, p| match int_arg(ctx, &p[0]) {
                Some(n) => pause("usleep", n, Duration::from_micros),
                None => {
                    lm_err!("usleep: cannot get time interval value");
                    -1
                }
            },
        );
    // Probability.
    let r = u.clone();
    def = def.cmd("rand_event", 0, RouteType::ANY, None, move |_, _| {
        r.rand_event()
    });
    let prob_fix: fixup::FixupFn = Arc::new(|_env, _i, arg| {
        let n = loose_int(&arg.text());
        if n > 100 {
            return Err(format!("invalid probability <{}>", n as u32 as i32));
        }
        Ok(Fixed::Int(n as i64))
    });
    let r = u.clone();
    def = def.cmd(
        "rand_set_prob",
        1,
        RouteType::ANY,
        Some(prob_fix),
        move |ctx, p| {
            r.prob.store(p[0].int(ctx), Ordering::Relaxed);
            1
        },
    );
    let r = u.clone();
    def = def.cmd("rand_reset_prob", 0, RouteType::ANY, None, move |_, _| {
        r.prob
            .store(params::get_int(&r.initial_probability), Ordering::Relaxed);
        1
    });
    let r = u.clone();
    def = def.cmd("rand_get_prob", 0, RouteType::ANY, None, move |_, _| {
        // As Kamailio: the probability is the return code.
        i32::try_from(r.prob.load(Ordering::Relaxed)).unwrap_or(-1)
    });
    // Global flags.
    let flag_fix: fixup::FixupFn =
        Arc::new(|_env, _i, arg| flag_number(&arg.text()).map(|n| Fixed::Int(1i64 << n)));
    for name in ["set_gflag", "reset_gflag", "is_gflag"] {
        let r = u.clone();
        def = def.cmd(
            name,
            1,
            RouteType::ANY,
            Some(flag_fix.clone()),
            move |ctx, p| {
                let mask = p[0].int(ctx) as u32;
                match name {
                    "set_gflag" => {
                        r.gflags.fetch_or(mask, Ordering::AcqRel);
                        1
                    }
                    "reset_gflag" => {
                        r.gflags.fetch_and(!mask, Ordering::AcqRel);
                        1
                    }
                    _ => {
                        if r.gflags.load(Ordering::Acquire) & mask != 0 {
                            1
                        } else {
                            -1
                        }
                    }
                }
            },
        );
    }
    // Locks.
    for (name, op) in [("lock", 0), ("unlock", 1), ("trylock", 2)] {
        let r = u.clone();
        def = def.cmd(name, 1, RouteType::ANY, spve.clone(), move |ctx, p| {
            let key = p[0].str(ctx).into_owned();
            r.lock_op(&key, op)
        });
    }
    // core_hash, routes.
    let fix3: fixup::FixupFn = Arc::new(|env, i, arg| {
        if i < 2 {
            fixup::spve(env, i, arg)
        } else {
            fixup::igp(env, i, arg)
        }
    });
    def = def.cmd("core_hash", 3, RouteType::ANY, Some(fix3), |ctx, p| {
        let s1 = p[0].str(ctx).into_owned();
        let s2 = p[1].str(ctx).into_owned();
        // A size that is not an integer is an error, as Kamailio's.
        let Some(size) = int_arg(ctx, &p[2]) else {
            lm_err!("core_hash: invalid size parameter");
            return -1;
        };
        state::core_hash_value(&s1, &s2, size)
    });
    def = def.cmd(
        "check_route_exists",
        1,
        RouteType::ANY,
        spve.clone(),
        |ctx, p| {
            let name = p[0].str(ctx).into_owned();
            if name == "0" || ctx.core.route_id(RouteType::REQUEST, &name).is_some() {
                1
            } else {
                -1
            }
        },
    );
    def = def.cmd("route_if_exists", 1, RouteType::ANY, spve, |ctx, p| {
        let name = p[0].str(ctx).into_owned();
        let Some(id) = ctx.core.route_id(RouteType::REQUEST, &name) else {
            return -1;
        };
        let kind = ctx.route;
        ctx.core.run_route(id, kind, ctx.msg).code
    });
    // Debugging.
    def = def.cmd("abort", 0, RouteType::ANY, None, |_, _| {
        lm_err!("cfgutils: abort called");
        std::process::abort()
    });
    for name in ["pkg_status", "shm_status", "pkg_summary", "shm_summary"] {
        def = def.cmd(name, 0, RouteType::ANY, None, move |_, _| {
            state::memory_report(name);
            1
        });
    }
    let r = u.clone();
    def = def.pv("RANDOM", move |_, _| Value::Int(r.random()));
    state::rpc(&u, def)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_blocks_for_its_time_and_a_negative_one_is_an_error() {
        let t = std::time::Instant::now();
        assert_eq!(pause("usleep", 20_000, Duration::from_micros), 1);
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert_eq!(pause("sleep", -1, Duration::from_secs), -1);
    }

    #[test]
    fn literals_read_as_kamailio_reads_them() {
        assert_eq!(loose_int("abc"), 0);
        assert_eq!(loose_int("12x"), 12);
        assert_eq!(loose_int("+7"), 7);
        assert_eq!(loose_int("-1"), 0);
        assert_eq!(flag_number("31"), Ok(31));
        assert!(flag_number("32").unwrap_err().contains("out of range"));
        assert!(flag_number(" 3").unwrap_err().contains("bad number"));
        assert!(flag_number("$var(x)").is_err());
    }
}
