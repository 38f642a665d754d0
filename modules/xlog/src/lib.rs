//! # xlog: formatted logging from the script
//!
//! Kamailio's `xlog` module: `xlog([level,] fmt)`, `xlogl([level,] fmt)`
//! and the level-named shortcuts `xerr`, `xwarn`, `xnotice`, `xinfo`,
//! `xdbg`, `xalert`, `xcrit`, `xbug`. The format is a string with
//! pseudo-variables, formatted by the core (`$null` prints `<null>`);
//! nothing is formatted when the level is off. Every function returns 1.
//!
//! Levels are `L_ALERT`, `L_BUG`, `L_CRIT2`, `L_CRIT`, `L_ERR`, `L_WARN`,
//! `L_NOTICE`, `L_INFO`, `L_DBG` (also written without `L_`, or as their
//! numbers -5..3), or a pseudo-variable holding a number.
//!
//! Parameters: `buf_size` (default 4096: longer messages are cut),
//! `prefix` (default `<script>: `), `force_color`, `log_facility`,
//! `log_colors` (accepted; output goes through the core's log sink).
//!
//! Pseudo-variable `$C(fb)`: the terminal escape for foreground `f` and
//! background `b` (see [`color`]).
#![forbid(unsafe_code)]

pub mod color;
pub mod level;

use level::Level;
use sr_sdk::log;
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// The module's parameters.
#[derive(Debug)]
pub struct XlogCfg {
    /// `buf_size`: longest message, in bytes.
    pub buf_size: Arc<AtomicI64>,
    /// `prefix`.
    pub prefix: Arc<RwLock<String>>,
    /// `methods_filter`: the method ids (Kamailio's bits) `xlogm` skips.
    pub methods_filter: Arc<AtomicI64>,
}

impl Default for XlogCfg {
    fn default() -> Self {
        XlogCfg {
            buf_size: Arc::new(AtomicI64::new(4096)),
            prefix: Arc::new(RwLock::new("<script>: ".to_string())),
            methods_filter: Arc::new(AtomicI64::new(-1)),
        }
    }
}

/// Cuts `msg` to at most `max` bytes (at a character boundary) and drops
/// one trailing newline, as each log line gets its own.
pub fn finish(mut msg: String, max: usize) -> String {
    if msg.len() > max {
        let mut end = max;
        while end > 0 && !msg.is_char_boundary(end) {
            end -= 1;
        }
        msg.truncate(end);
    }
    if msg.ends_with('\n') {
        msg.pop();
        if msg.ends_with('\r') {
            msg.pop();
        }
    }
    msg
}

/// The sink target and the message text for a prefix: `"<script>: "`
/// becomes the target `<script>` (printed as `LEVEL: <script>: msg`);
/// a prefix not ending in `": "` is put before the message instead.
pub fn split_prefix(prefix: &str) -> (&str, &str) {
    match prefix.strip_suffix(": ") {
        Some(t) if !t.is_empty() && !t.contains("::") => (t, ""),
        _ => ("xlog", prefix),
    }
}

impl XlogCfg {
    /// Logs one message: nothing is formatted when `level` is off.
    pub fn log(&self, ctx: &mut Ctx<'_>, level: i32, fmt: &Fixed, location: bool) -> i32 {
        if !log::enabled(level) {
            return 1;
        }
        let body = fmt.str(ctx).into_owned();
        let max = usize::try_from(self.buf_size.load(Ordering::Relaxed)).unwrap_or(4096);
        let body = finish(body, max.max(1));
        let prefix = self.prefix.read().map(|p| p.clone()).unwrap_or_default();
        let (target, lead) = split_prefix(&prefix);
        if location {
            log::write(
                level,
                target,
                format_args!("{lead}[{}] {body}", ctx.route.name()),
            );
        } else {
            log::write(level, target, format_args!("{lead}{body}"));
        }
        1
    }
}

fn level_fixup(env: &dyn sr_sdk::fixup::FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 1 {
        return fixup::spve(env, i, arg);
    }
    match arg {
        Arg::Int(n) => Level::from_int(*n).map(|l| Fixed::Custom(Arc::new(l))),
        Arg::Str(s) if s.trim_start().starts_with('$') => env
            .compile_pv(s.trim())
            .map(|e| Fixed::Custom(Arc::new(Level::Dyn(e)))),
        Arg::Str(s) => Level::parse(s).map(|l| Fixed::Custom(Arc::new(l))),
        Arg::Expr(e, _) => Ok(Fixed::Custom(Arc::new(Level::Dyn(e.clone())))),
    }
}

fn level_of(ctx: &mut Ctx<'_>, p: &Fixed) -> i32 {
    p.custom::<Level>().map_or(log::L_ERR, |l| l.get(ctx))
}

/// The `xlog` module.
pub fn module() -> ModuleDef {
    let cfg = Arc::new(XlogCfg::default());
    let any = RouteType::ANY;
    let lf = Some(Arc::new(level_fixup) as sr_sdk::fixup::FixupFn);
    let spve = Some(fixup::f(fixup::spve));
    let mut def = ModuleDef::new("xlog")
        .param("buf_size", ParamKind::Int, params::int(&cfg.buf_size))
        .param("prefix", ParamKind::Str, params::string(&cfg.prefix))
        .param("force_color", ParamKind::Int, |_| Ok(()))
        .param("long_format", ParamKind::Int, |_| Ok(()))
        .param("log_facility", ParamKind::Str, |_| Ok(()))
        .param("log_colors", ParamKind::Str, |_| Ok(()))
        .param(
            "methods_filter",
            ParamKind::Int,
            params::int(&cfg.methods_filter),
        )
        .pv_checked("C", color::check, |_, n| color::get(n));
    for (name, location) in [("xlog", false), ("xlogl", true)] {
        let (c1, c2) = (cfg.clone(), cfg.clone());
        def = def
            .cmd(name, 1, any, spve.clone(), move |ctx, p| {
                c1.log(ctx, log::L_ERR, &p[0], location)
            })
            .cmd(name, 2, any, lf.clone(), move |ctx, p| {
                let l = level_of(ctx, &p[0]);
                c2.log(ctx, l, &p[1], location)
            });
    }
    // xlogm: as xlog, but not for the methods in `methods_filter`.
    let c3 = cfg.clone();
    def = def.cmd("xlogm", 2, any, lf.clone(), move |ctx, p| {
        let method = match ctx.msg.msg().txn_method() {
            Ok(m) => sr_sdk::msg::method_id(m.as_str()),
            Err(_) => 0,
        };
        let filter = c3.methods_filter.load(std::sync::atomic::Ordering::Relaxed);
        if (filter as u64 as u32) & method != 0 {
            return 1;
        }
        let l = level_of(ctx, &p[0]);
        c3.log(ctx, l, &p[1], false)
    });
    let c4 = cfg.clone();
    def = def.cmd("xdbgl", 1, any, spve.clone(), move |ctx, p| {
        c4.log(ctx, log::L_DBG, &p[0], true)
    });
    for (name, l) in [
        ("xerr", log::L_ERR),
        ("xwarn", log::L_WARN),
        ("xnotice", log::L_NOTICE),
        ("xinfo", log::L_INFO),
        ("xdbg", log::L_DBG),
        ("xalert", log::L_ALERT),
        ("xcrit", log::L_CRIT),
        ("xbug", log::L_BUG),
    ] {
        let c = cfg.clone();
        def = def.cmd(name, 1, any, spve.clone(), move |ctx, p| {
            c.log(ctx, l, &p[0], false)
        });
    }
    def
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_shaping() {
        assert_eq!(finish("hello\n".into(), 100), "hello");
        assert_eq!(finish("hello\r\n".into(), 100), "hello");
        assert_eq!(finish("héllo".into(), 2), "h");
        assert_eq!(finish("abc".into(), 2), "ab");
        assert_eq!(split_prefix("<script>: "), ("<script>", ""));
        assert_eq!(split_prefix("XLOG "), ("xlog", "XLOG "));
        assert_eq!(split_prefix(""), ("xlog", ""));
    }

    #[test]
    fn exports() {
        let d = module();
        for n in ["xlog", "xlogl", "xerr", "xdbg", "xbug"] {
            assert!(d.cmds.iter().any(|c| c.name == n), "{n}");
        }
        assert_eq!(d.cmds.iter().filter(|c| c.name == "xlog").count(), 2);
    }
}
