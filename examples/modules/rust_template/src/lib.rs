//! mymod: the seed's template module, completed, as a Rust `cdylib`.
//!
//! The module is ordinary SDK code (a [`ModuleDef`]); the last line,
//! [`sr_abi::declare_module!`], exports it over siprouter's C ABI so that
//! `loadmodule "/path/libmymod.so"` loads it at run time.
//!
//! Script functions (the same as the C template's):
//! - `mymod_check(prefix)`: 1 if the Request-URI user starts with
//!   `prefix`, -1 otherwise; counted in `mymod:checks`. Request and
//!   failure routes only.
//! - `mymod_greet(header)`: appends `header: <greeting>` to the request.
//! - `mymod_reply(code, reason)`: replies statelessly with an
//!   `X-Greeting` header and stops the script.
//! - `mymod_panic()`: panics on purpose, to show that a panic in a module
//!   becomes an error return (-1) and a log line, never a crash.
//!
//! Parameter `greeting` (string, default `hello`; empty fails `mod_init`).
//! Statistics `mymod:checks` and `mymod:ranks` (child_init calls seen,
//! computed on read).

use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// The prefix `mymod_check` compares with, prepared once at load time.
struct Prefix(String);

/// Prepares `mymod_check`'s parameter: a constant prefix.
fn prefix_fixup(_env: &dyn fixup::FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    match arg {
        Arg::Str(s) => Ok(Fixed::Custom(Arc::new(Prefix(s.clone())))),
        Arg::Int(n) => Ok(Fixed::Custom(Arc::new(Prefix(n.to_string())))),
        Arg::Expr(_, t) => Err(format!("'{t}' must be a constant prefix")),
    }
}

/// Prepares `mymod_reply`'s code: a number from 100 to 699.
fn code_fixup(env: &dyn fixup::FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 1 {
        return fixup::const_str(env, i, arg);
    }
    match fixup::const_int(env, i, arg)? {
        Fixed::Int(c) if (100..700).contains(&c) => Ok(Fixed::Int(c)),
        _ => Err(format!("reply code '{}' must be 100 to 699", arg.text())),
    }
}

/// Builds the module: what the seed's `struct module_exports` says in C.
pub fn module() -> ModuleDef {
    let greeting = Arc::new(RwLock::new(String::from("hello")));
    let checks = Stat::new();
    let ranks = Arc::new(AtomicI64::new(0));
    let (g_init, g_greet, g_reply) = (greeting.clone(), greeting.clone(), greeting.clone());
    let (c_check, r_child, r_stat) = (checks.clone(), ranks.clone(), ranks.clone());
    let read = |g: &RwLock<String>| g.read().map(|s| s.clone()).unwrap_or_default();
    ModuleDef::new("mymod")
        .cmd(
            "mymod_check",
            1,
            RouteType::REQUEST | RouteType::FAILURE,
            Some(fixup::f(prefix_fixup)),
            move |ctx, p| {
                c_check.inc();
                let Some(Prefix(prefix)) = p[0].custom::<Prefix>() else {
                    return -1;
                };
                let user = ctx
                    .msg
                    .msg()
                    .request_uri()
                    .and_then(|u| u.user)
                    .unwrap_or("");
                if user.starts_with(prefix.as_str()) {
                    1
                } else {
                    -1
                }
            },
        )
        .cmd(
            "mymod_greet",
            1,
            RouteType::REQUEST | RouteType::BRANCH,
            None,
            move |ctx, p| {
                let name = p[0].str(ctx).into_owned();
                let value = read(&g_greet);
                let m = ctx.msg.msg();
                let at = m.headers_end();
                ctx.msg
                    .edits
                    .insert(at, format!("{name}: {value}\r\n").as_bytes());
                1
            },
        )
        .cmd(
            "mymod_reply",
            2,
            RouteType::REQUEST,
            Some(fixup::f(code_fixup)),
            move |ctx, p| {
                let code = p[0].int(ctx) as u16;
                let reason = p[1].str(ctx).into_owned();
                ctx.msg
                    .reply_headers
                    .push_str(&format!("X-Greeting: {}\r\n", read(&g_reply)));
                match ctx.core.send_reply(ctx.msg, code, &reason) {
                    Ok(()) => 0,
                    Err(e) => {
                        lm_err!("mymod_reply: {e}");
                        -1
                    }
                }
            },
        )
        .cmd("mymod_panic", 0, RouteType::ANY, None, |_ctx, _p| {
            panic!("mymod_panic was called")
        })
        .param("greeting", ParamKind::Str, params::string(&greeting))
        .stat("checks", checks)
        .stat_fn("ranks", move || r_stat.load(Ordering::Relaxed))
        .on_init(move |_core| {
            let g = read(&g_init);
            if g.is_empty() {
                return Err("the greeting parameter must not be empty".into());
            }
            lm_info!("mymod ready, greeting '{g}'");
            Ok(())
        })
        .on_child_init(move |_core, rank| {
            r_child.fetch_add(1, Ordering::Relaxed);
            if rank == rank::PROC_SIPINIT {
                lm_dbg!("first SIP worker: one-time work goes here");
            }
            Ok(())
        })
        .on_destroy(|| lm_info!("mymod done"))
}

sr_abi::declare_module!(module);
