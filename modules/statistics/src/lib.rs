//! # statistics: statistics from the script
//!
//! Kamailio's `statistics` module: `modparam("statistics", "variable",
//! "name[/no_reset]")` (repeatable) declares a statistic in the group
//! `script`; `update_stat(name, value)` adds to it (`"+3"`, `"-1"`, `"5"`
//! or a pseudo-variable holding one), `reset_stat(name)` sets it to 0
//! unless it is `no_reset`. A name starting with `$` is a pseudo-variable
//! read for each call. The values are read with `$stat(name)`,
//! `stats.get_statistics script:` and the Prometheus metrics.
#![forbid(unsafe_code)]

use sr_sdk::fixup::FixupEnv;
use sr_sdk::prelude::*;
use sr_sdk::stats::{StatExport, StatSource};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// The group the statistics are shown in.
pub const GROUP: &str = "script";

/// A declared statistic.
#[derive(Debug, Clone)]
struct Declared {
    stat: Stat,
    no_reset: bool,
}

/// The module's state.
#[derive(Default)]
struct Statistics {
    /// Declared by `variable`, in order.
    decl: Mutex<Vec<(String, bool)>>,
    /// By name, once registered.
    map: RwLock<HashMap<String, Declared>>,
}

/// Parses a `variable` value: `name` or `name/no_reset`.
pub fn parse_variable(v: &str) -> Result<(String, bool), String> {
    if v.is_empty() {
        return Err("statistics: empty variable".into());
    }
    let (name, no_reset) = match v.split_once('/') {
        None => (v, false),
        Some((n, f)) if f.eq_ignore_ascii_case("no_reset") => (n, true),
        Some((_, f)) => return Err(format!("statistics: unsupported flag <{f}>")),
    };
    Ok((name.to_string(), no_reset))
}

/// An update value as Kamailio reads it (`str2s`): an optional sign,
/// then digits only; `None` for anything else.
pub fn parse_update(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(if neg { -n } else { n })
}

/// A statistic named in the script: declared (checked at start) or
/// read from a pseudo-variable for each call.
enum Name {
    Fixed(String),
    Dyn(Fixed),
}

/// The update value: a constant, or a pseudo-variable.
enum Amount {
    Fixed(i64),
    Dyn(Fixed),
}

impl Statistics {
    fn declared(&self, name: &str) -> bool {
        self.decl
            .lock()
            .map(|d| d.iter().any(|(n, _)| n == name))
            .unwrap_or(false)
    }

    fn find(&self, name: &str) -> Option<Declared> {
        self.map.read().ok()?.get(name).cloned()
    }

    fn resolve(&self, ctx: &mut Ctx<'_>, p: &Fixed) -> Option<Declared> {
        let name = match p.custom::<Name>()? {
            Name::Fixed(n) => n.clone(),
            Name::Dyn(f) => f.str(ctx).into_owned(),
        };
        let d = self.find(&name);
        if d.is_none() {
            lm_err!("statistics: variable <{name}> not defined");
        }
        d
    }

    fn register(&self, core: &dyn Core) -> Result<(), String> {
        let decl = self.decl.lock().map_err(|_| "poisoned")?.clone();
        let mut map = self.map.write().map_err(|_| "poisoned")?;
        let mut exports = Vec::new();
        for (name, no_reset) in decl {
            if map.contains_key(&name) {
                return Err(format!("statistics: variable <{name}> declared twice"));
            }
            let stat = Stat::new();
            exports.push(StatExport {
                name: name.clone(),
                no_reset,
                source: StatSource::Value(stat.clone()),
            });
            map.insert(name, Declared { stat, no_reset });
        }
        if exports.is_empty() {
            return Ok(());
        }
        core.register_stats(GROUP, exports)
            .map_err(|e| format!("statistics: {e}"))
    }
}

fn name_fixup(st: Arc<Statistics>) -> fixup::FixupFn {
    Arc::new(move |env: &dyn FixupEnv, i, arg: &Arg| {
        let text = arg.text().trim().to_string();
        if i == 1 {
            if text.starts_with('$') {
                return Ok(Fixed::Custom(Arc::new(Amount::Dyn(fixup::spve(
                    env, i, arg,
                )?))));
            }
            return match parse_update(&text) {
                Some(0) => Err("update_stat: update with 0 has no sense".into()),
                Some(n) => Ok(Fixed::Custom(Arc::new(Amount::Fixed(n)))),
                None => Err(format!("update_stat: bad update number <{text}>")),
            };
        }
        if text.starts_with('$') {
            return Ok(Fixed::Custom(Arc::new(Name::Dyn(
                env.compile_pv(&text).map(Fixed::Dyn)?,
            ))));
        }
        if !st.declared(&text) {
            return Err(format!(
                "statistics: variable <{text}> not defined (modparam(\"statistics\", \"variable\", \"{text}\"))"
            ));
        }
        Ok(Fixed::Custom(Arc::new(Name::Fixed(text))))
    })
}

/// The module definition.
pub fn module() -> ModuleDef {
    let st = Arc::new(Statistics::default());
    let s = st.clone();
    let mut def = ModuleDef::new("statistics").param("variable", ParamKind::Str, move |v| {
        let text = match v {
            ParamValue::Str(s) => s,
            ParamValue::Int(i) => i.to_string(),
        };
        let d = parse_variable(&text)?;
        s.decl.lock().map_err(|_| "poisoned".to_string())?.push(d);
        Ok(())
    });
    let s = st.clone();
    def = def.on_init(move |core| s.register(core));
    let s = st.clone();
    def = def.cmd(
        "update_stat",
        2,
        RouteType::ANY,
        Some(name_fixup(st.clone())),
        move |ctx, p| {
            let n = match p[1].custom::<Amount>() {
                Some(Amount::Fixed(n)) => *n,
                Some(Amount::Dyn(f)) => {
                    let v = match f {
                        Fixed::Dyn(e) => e.eval(ctx),
                        other => Value::str(other.str(ctx).into_owned()),
                    };
                    if v.is_null() {
                        lm_err!("update_stat: failed to get the value");
                        return -1;
                    }
                    // As Kamailio: a value that does not read adds 0.
                    parse_update(&v.as_str()).unwrap_or(0)
                }
                None => return -1,
            };
            match s.resolve(ctx, &p[0]) {
                Some(d) => {
                    d.stat.add(n);
                    1
                }
                None => -1,
            }
        },
    );
    let s = st.clone();
    let rt = RouteType(
        RouteType::REQUEST.0
            | RouteType::BRANCH.0
            | RouteType::FAILURE.0
            | RouteType::ONREPLY.0
            | RouteType::LOCAL.0,
    );
    def.cmd(
        "reset_stat",
        1,
        rt,
        Some(name_fixup(st)),
        move |ctx, p| match s.resolve(ctx, &p[0]) {
            Some(d) => {
                if !d.no_reset {
                    d.stat.reset();
                }
                1
            }
            None => -1,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_and_flags() {
        assert_eq!(parse_variable("calls").unwrap(), ("calls".into(), false));
        assert_eq!(
            parse_variable("calls/NO_RESET").unwrap(),
            ("calls".into(), true)
        );
        assert!(parse_variable("calls/other").is_err());
        assert!(parse_variable("").is_err());
    }

    #[test]
    fn update_values() {
        assert_eq!(parse_update("+3"), Some(3));
        assert_eq!(parse_update("-2"), Some(-2));
        assert_eq!(parse_update("5"), Some(5));
        assert_eq!(parse_update("x"), None);
        assert_eq!(parse_update("+"), None);
        assert_eq!(parse_update("1.5"), None);
    }
}
