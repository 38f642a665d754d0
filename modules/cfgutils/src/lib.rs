//! # cfgutils: script utilities
//!
//! Kamailio's `cfgutils` module, in part: only its sleep functions are
//! built so far.
//!
//! - `sleep(s)`: blocks the worker for `s` seconds (an integer or a
//!   pseudo-variable holding one); returns 1.
//! - `usleep(us)`: the same in microseconds.
//!
//! As in Kamailio, the worker handles nothing else meanwhile: the
//! functions are for tests and troubleshooting, not for pacing traffic.
//! A negative value is an error (-1). Kamailio's other cfgutils functions
//! (`rand_event`, `lock`, `check_route_exists`, ...) and its parameters are
//! not built.
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
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

/// The module definition.
pub fn module() -> ModuleDef {
    let int = Some(fixup::f(fixup::igp));
    ModuleDef::new("cfgutils")
        .cmd("sleep", 1, RouteType::ANY, int.clone(), |ctx, p| {
            pause("sleep", p[0].int(ctx), Duration::from_secs)
        })
        .cmd("usleep", 1, RouteType::ANY, int, |ctx, p| {
            pause("usleep", p[0].int(ctx), Duration::from_micros)
        })
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
}
