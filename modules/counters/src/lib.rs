//! # counters: script counters
//!
//! Kamailio's `counters` module: counters declared with the parameter
//! `script_counter` (repeatable: `"name"`, `"name description"` or
//! `"name: description"`) in the group `script_cnt_grp_name` (default
//! `script`), changed from the script with `cnt_inc(name)`,
//! `cnt_add(name, n)` and `cnt_reset(name)` (`name` or `group.name`),
//! and shown with every other statistic (`stats.get_statistics`).
//!
//! RPCs, for every statistic of the server: `cnt.get group name`,
//! `cnt.reset group name`, `cnt.grps_list`, `cnt.var_list group`,
//! `cnt.grp_get_all group`, `cnt.help group name`.
#![forbid(unsafe_code)]

pub mod rpcs;

use sr_sdk::prelude::*;
use sr_sdk::stats::{StatExport, StatSource};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

/// A declared script counter.
#[derive(Debug, Clone)]
pub struct Counter {
    /// Its value.
    pub stat: Stat,
    /// Its description (`cnt.help`).
    pub desc: String,
}

/// The module's state.
#[derive(Default)]
pub struct Counters {
    decl: Mutex<Vec<(String, String)>>,
    group: Arc<RwLock<String>>,
    /// Registered counters by `(group, name)`.
    pub map: RwLock<BTreeMap<(String, String), Counter>>,
    core: OnceLock<Weak<dyn Core>>,
}

/// Splits a `script_counter` value into name and description.
pub fn parse_decl(s: &str) -> Result<(String, String), String> {
    let t = s.trim();
    let (name, desc) = match t
        .char_indices()
        .find(|(_, c)| *c == ':' || c.is_whitespace())
    {
        Some((i, c)) => (&t[..i], t[i + c.len_utf8()..].trim()),
        None => (t, ""),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(format!("script_counter '{s}': bad counter name"));
    }
    Ok((name.to_string(), desc.to_string()))
}

impl Counters {
    fn default_group(&self) -> String {
        self.group
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|_| "script".into())
    }

    /// Splits `group.name` (or `name`, in the script group).
    pub fn key(&self, s: &str) -> (String, String) {
        match s.split_once('.') {
            Some((g, n)) => (g.to_string(), n.to_string()),
            None => (self.default_group(), s.to_string()),
        }
    }

    /// The counter named `s`.
    pub fn find(&self, s: &str) -> Option<Stat> {
        let k = self.key(s.trim());
        self.map.read().ok()?.get(&k).map(|c| c.stat.clone())
    }

    fn register(&self, core: &dyn Core) -> Result<(), String> {
        let decl = self.decl.lock().map_err(|_| "poisoned")?.clone();
        let mut by_group: BTreeMap<String, Vec<StatExport>> = BTreeMap::new();
        let mut map = self.map.write().map_err(|_| "poisoned")?;
        for (name, desc) in decl {
            let key = self.key(&name);
            if map.contains_key(&key) {
                return Err(format!("script counter {}.{} declared twice", key.0, key.1));
            }
            let stat = Stat::new();
            by_group.entry(key.0.clone()).or_default().push(StatExport {
                name: key.1.clone(),
                no_reset: false,
                source: StatSource::Value(stat.clone()),
            });
            map.insert(key, Counter { stat, desc });
        }
        for (g, stats) in by_group {
            core.register_stats(&g, stats)?;
        }
        Ok(())
    }
}

enum Target {
    Fixed(Stat),
    Dyn(Fixed),
}

fn lookup(cnt: &Counters, ctx: &mut Ctx<'_>, p: &Fixed) -> Option<Stat> {
    match p.custom::<Target>() {
        Some(Target::Fixed(s)) => Some(s.clone()),
        Some(Target::Dyn(f)) => {
            let name = f.str(ctx).into_owned();
            let s = cnt.find(&name);
            if s.is_none() {
                lm_err!("counter '{name}' not found");
            }
            s
        }
        None => None,
    }
}

fn name_fixup(cnt: Arc<Counters>) -> fixup::FixupFn {
    Arc::new(move |env, i, arg| {
        if i == 1 {
            return fixup::igp(env, i, arg);
        }
        match fixup::spve(env, i, arg)? {
            Fixed::Str(s) => cnt
                .find(&s)
                .map(|st| Fixed::Custom(Arc::new(Target::Fixed(st))))
                .ok_or_else(|| format!("counter '{s}' is not declared (modparam script_counter)")),
            dynamic => Ok(Fixed::Custom(Arc::new(Target::Dyn(dynamic)))),
        }
    })
}

/// The `counters` module.
pub fn module() -> ModuleDef {
    let cnt = Arc::new(Counters {
        group: Arc::new(RwLock::new("script".into())),
        ..Default::default()
    });
    let any = RouteType::ANY;
    let fx = Some(name_fixup(cnt.clone()));
    let (c1, c2, c3, c4, c5) = (
        cnt.clone(),
        cnt.clone(),
        cnt.clone(),
        cnt.clone(),
        cnt.clone(),
    );
    let def = ModuleDef::new("counters")
        .param("script_counter", ParamKind::Str, move |v| {
            let s = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            c1.decl
                .lock()
                .map_err(|_| "poisoned".to_string())?
                .push(parse_decl(&s)?);
            Ok(())
        })
        .param(
            "script_cnt_grp_name",
            ParamKind::Str,
            params::string(&cnt.group),
        )
        .cmd("cnt_inc", 1, any, fx.clone(), move |ctx, p| {
            lookup(&c2, ctx, &p[0]).map_or(-1, |s| {
                s.inc();
                1
            })
        })
        .cmd("cnt_add", 2, any, fx.clone(), move |ctx, p| {
            let n = p[1].int(ctx);
            lookup(&c3, ctx, &p[0]).map_or(-1, |s| {
                s.add(n);
                1
            })
        })
        .cmd("cnt_reset", 1, any, fx, move |ctx, p| {
            lookup(&c4, ctx, &p[0]).map_or(-1, |s| {
                s.reset();
                1
            })
        })
        .on_init(move |core| {
            if let Some(h) = core.handle() {
                let _ = c5.core.set(h);
            }
            c5.register(core)
        });
    rpcs::add(def, cnt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations() {
        assert_eq!(parse_decl("foo"), Ok(("foo".into(), String::new())));
        assert_eq!(
            parse_decl("foo: Foo counter"),
            Ok(("foo".into(), "Foo counter".into()))
        );
        assert_eq!(
            parse_decl("grp.bar the bar"),
            Ok(("grp.bar".into(), "the bar".into()))
        );
        assert!(parse_decl("").is_err());
        assert!(parse_decl("a/b").is_err());
        assert_eq!(parse_decl("x\u{3000}wide"), Ok(("x".into(), "wide".into())));
    }
}
