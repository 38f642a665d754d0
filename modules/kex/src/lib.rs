//! # kex: Kamailio core extensions
//!
//! - branch flags: `setbflag(flag[, branch])`, `resetbflag(flag[,
//!   branch])`, `isbflagset(flag[, branch])` (branch 0 is the request's
//!   own branch, `$bf`; branch n>0 the n-th added branch);
//! - script flags, per worker and kept between messages:
//!   `setsflag(flag)`, `resetsflag(flag)`, `issflagset(flag)`;
//! - `pv_printf(pv, format)`, `km_append_branch([uri])`;
//! - RPC `core.memory` (what siprouter can report about its memory, from
//!   `/proc/self/status`).
//!
//! `setdsturi`, `resetdsturi`, `isdsturiset` are core actions in
//! siprouter already; kex does not define them again.
#![forbid(unsafe_code)]

pub mod memory;

use sr_sdk::prelude::*;
use std::cell::Cell;

thread_local! {
    static SFLAGS: Cell<u32> = const { Cell::new(0) };
}

/// The script flags of this worker (`$sf`).
pub fn sflags() -> u32 {
    SFLAGS.with(Cell::get)
}

fn bit(n: i64) -> Option<u32> {
    if (0..32).contains(&n) {
        Some(1u32 << n)
    } else {
        lm_err!("flag {n} out of range (0..31)");
        None
    }
}

/// The flags word of a branch: 0 is the request's own (`$bf`), n > 0 the
/// n-th appended branch.
fn bflags_of(msg: &mut SipMsg, branch: i64) -> Option<&mut u32> {
    match branch {
        0 => Some(&mut msg.bflags),
        n if n > 0 => msg.branches.get_mut((n - 1) as usize).map(|b| &mut b.flags),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Op {
    Set,
    Reset,
    Test,
}

fn bflag(ctx: &mut Ctx<'_>, p: &[Fixed], op: Op) -> i32 {
    let Some(b) = bit(p[0].int(ctx)) else {
        return -1;
    };
    let branch = p.get(1).map_or(0, |x| x.int(ctx));
    let Some(f) = bflags_of(ctx.msg, branch) else {
        lm_err!("branch {branch} does not exist");
        return -1;
    };
    match op {
        Op::Set => *f |= b,
        Op::Reset => *f &= !b,
        Op::Test => return if *f & b != 0 { 1 } else { -1 },
    }
    1
}

fn sflag(ctx: &mut Ctx<'_>, p: &[Fixed], op: Op) -> i32 {
    let Some(b) = bit(p[0].int(ctx)) else {
        return -1;
    };
    SFLAGS.with(|f| match op {
        Op::Set => {
            f.set(f.get() | b);
            1
        }
        Op::Reset => {
            f.set(f.get() & !b);
            1
        }
        Op::Test => {
            if f.get() & b != 0 {
                1
            } else {
                -1
            }
        }
    })
}

fn printf_fixup(env: &dyn fixup::FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 0 {
        fixup::pvar(env, i, arg)
    } else {
        fixup::spve(env, i, arg)
    }
}

/// The `kex` module.
pub fn module() -> ModuleDef {
    let any = RouteType::ANY;
    let req = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let int = Some(fixup::f(fixup::igp));
    let mut def = ModuleDef::new("kex");
    for params in [1usize, 2] {
        def = def
            .cmd("setbflag", params, any, int.clone(), |ctx, p| {
                bflag(ctx, p, Op::Set)
            })
            .cmd("resetbflag", params, any, int.clone(), |ctx, p| {
                bflag(ctx, p, Op::Reset)
            })
            .cmd("isbflagset", params, any, int.clone(), |ctx, p| {
                bflag(ctx, p, Op::Test)
            });
    }
    def.pv("sf", |_, _| Value::Int(i64::from(sflags())))
        .cmd("setsflag", 1, any, int.clone(), |ctx, p| {
        sflag(ctx, p, Op::Set)
    })
    .cmd("resetsflag", 1, any, int.clone(), |ctx, p| {
        sflag(ctx, p, Op::Reset)
    })
    .cmd("issflagset", 1, any, int, |ctx, p| sflag(ctx, p, Op::Test))
    .cmd(
        "pv_printf",
        2,
        any,
        Some(fixup::f(printf_fixup)),
        |ctx, p| {
            let s = p[1].str(ctx).into_owned();
            match &p[0] {
                Fixed::Pv(pv) => match pv.assign(ctx, Value::from(s)) {
                    Ok(()) => 1,
                    Err(e) => {
                        lm_err!("pv_printf: {e}");
                        -1
                    }
                },
                _ => -1,
            }
        },
    )
    .cmd("setdebug", 1, any, None, |ctx, p| {
        let Some(level) = p[0].int_strict(ctx).or_else(|| {
            let t = p[0].str(ctx);
            t.trim().parse::<i64>().ok()
        }) else {
            lm_err!("setdebug: invalid level");
            return -1;
        };
        sr_sdk::log::set_thread_level(Some(i32::try_from(level).unwrap_or(i32::MAX)));
        1
    })
    .cmd("resetdebug", 0, any, None, |_, _| {
        sr_sdk::log::set_thread_level(None);
        1
    })
    .cmd("is_myself", 1, any, None, |ctx, p| {
        let text = p[0].str(ctx).into_owned();
        let t = text.trim();
        // A URI (its host and port, a missing port matching any), or a
        // bare IP address.
        let found = match sr_sdk::sip_msg::Uri::parse(t) {
            Ok(u) => ctx.core.is_myself(u.host_str, u.port),
            Err(_) => t.parse::<std::net::IpAddr>().is_ok() && ctx.core.is_myself(t, None),
        };
        if found {
            1
        } else {
            -1
        }
    })
    .cmd("km_append_branch", 0, req, None, |ctx, _| {
        // As the core's append_branch(): the Request-URI's branch, and the
        // Request-URI counts as used.
        let b = ctx.msg.ruri_branch();
        ctx.msg.branches.push(b);
        ctx.msg.consume_ruri();
        1
    })
    .cmd("km_append_branch", 1, req, None, |ctx, p| {
        let uri = p[0].str(ctx).into_owned();
        if uri.is_empty() {
            return -1;
        }
        ctx.msg.branches.push(Branch {
            uri,
            ..Default::default()
        });
        1
    })
    .rpc(
        "core.memory",
        "Memory of the process from /proc/self/status (siprouter has no Kamailio shm/pkg pools).",
        |_| memory::report().map_err(|e| RpcError::new(500, e)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_bits() {
        assert_eq!(bit(0), Some(1));
        assert_eq!(bit(31), Some(1 << 31));
        assert_eq!(bit(32), None);
        assert_eq!(bit(-1), None);
    }
}
