//! # cfg_rpc: runtime configuration over RPC
//!
//! The core already answers `cfg.get`, `cfg.set`, `cfg.set_now_int` (and
//! `cfg.reload`); this module adds the rest of Kamailio's `cfg_rpc`
//! methods on top of them: `cfg.seti`, `cfg.set_now_string`, `cfg.sets`,
//! `cfg.list`, `cfg.help`, and the delayed changes `cfg.set_delayed_int`,
//! `cfg.set_delayed_string`, `cfg.diff`, `cfg.commit`, `cfg.rollback`.
//!
//! The runtime settings siprouter has are listed in [`VARS`].
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_str};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// The runtime settings: group, name, type, description.
pub const VARS: [(&str, &str, &str, &str); 1] = [(
    "core",
    "debug",
    "int",
    "Debug log level (-5 alert .. 3 debug)",
)];

fn var(
    group: &str,
    name: &str,
) -> Result<&'static (&'static str, &'static str, &'static str, &'static str), RpcError> {
    VARS.iter()
        .find(|v| v.0 == group && v.1 == name)
        .ok_or_else(|| RpcError::new(404, format!("no runtime setting {group}.{name}")))
}

#[derive(Default)]
struct State {
    core: OnceLock<Weak<dyn Core>>,
    /// Delayed changes: group, name, value.
    pending: Mutex<Vec<(String, String, Json)>>,
}

impl State {
    fn core(&self) -> Result<Arc<dyn Core>, RpcError> {
        self.core
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| RpcError::new(500, "server not running"))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(String, String, Json)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Checks a value against the setting's type; string input for an int
/// setting must be a number (as Kamailio converts it).
fn typed_value(group: &str, name: &str, p: &[Json], i: usize) -> Result<Json, RpcError> {
    let v = var(group, name)?;
    match v.2 {
        "int" => param_int(p, i, "value").map(|n| json!(n)),
        _ => param_str(p, i, "value").map(Json::String),
    }
}

fn set_now(st: &State, p: &[Json]) -> Result<Json, RpcError> {
    let core = st.core()?;
    let g = param_str(p, 0, "group")?;
    let n = param_str(p, 1, "name")?;
    let v = typed_value(&g, &n, p, 2)?;
    core.rpc_call("cfg.set", &[json!(g), json!(n), v])
}

fn set_delayed(st: &State, p: &[Json]) -> Result<Json, RpcError> {
    let g = param_str(p, 0, "group")?;
    let n = param_str(p, 1, "name")?;
    let v = typed_value(&g, &n, p, 2)?;
    let mut pend = st.pending();
    pend.retain(|(a, b, _)| !(a == &g && b == &n));
    pend.push((g, n, v));
    Ok(json!(0))
}

/// The `cfg_rpc` module.
pub fn module() -> ModuleDef {
    let st = Arc::new(State::default());
    let c = |s: &Arc<State>| s.clone();
    let (s0, s1, s2, s3, s4, s5, s6, s7, s8) = (
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
    );
    ModuleDef::new("cfg_rpc")
        .on_init(move |core| {
            if let Some(h) = core.handle() {
                let _ = s0.core.set(h);
            }
            Ok(())
        })
        .rpc("cfg.seti", "Same as cfg.set_now_int.", move |p| set_now(&s1, p))
        .rpc(
            "cfg.set_now_string",
            "Sets a runtime setting from a string: cfg.set_now_string group name value.",
            move |p| set_now(&s2, p),
        )
        .rpc("cfg.sets", "Same as cfg.set_now_string.", move |p| {
            set_now(&s3, p)
        })
        .rpc("cfg.list", "Lists the runtime settings as 'group: name'.", move |_| {
            let core = s4.core()?;
            Ok(Json::Array(
                VARS.iter()
                    .filter(|v| core.rpc_call("cfg.get", &[json!(v.0), json!(v.1)]).is_ok())
                    .map(|v| json!(format!("{}: {}", v.0, v.1)))
                    .collect(),
            ))
        })
        .rpc("cfg.help", "Describes a runtime setting: cfg.help group name.", |p| {
            let g = param_str(p, 0, "group")?;
            let n = param_str(p, 1, "name")?;
            let v = var(&g, &n)?;
            Ok(json!(format!("{} (parameter type is {})", v.3, v.2)))
        })
        .rpc(
            "cfg.set_delayed_int",
            "Prepares a change, applied by cfg.commit: cfg.set_delayed_int group name value.",
            move |p| set_delayed(&s5, p),
        )
        .rpc(
            "cfg.set_delayed_string",
            "Prepares a change from a string, applied by cfg.commit.",
            move |p| set_delayed(&s6, p),
        )
        .rpc("cfg.diff", "Lists the prepared changes.", move |_| {
            let core = s7.core()?;
            let pend = s7.pending().clone();
            Ok(Json::Array(
                pend.into_iter()
                    .map(|(g, n, v)| {
                        let old = core
                            .rpc_call("cfg.get", &[json!(g), json!(n)])
                            .unwrap_or(Json::Null);
                        json!({"group name": g, "variable name": n, "old value": old, "new value": v})
                    })
                    .collect(),
            ))
        })
        .rpc("cfg.commit", "Applies the prepared changes.", move |_| {
            let core = s8.core()?;
            let pend: Vec<_> = s8.pending().drain(..).collect();
            for (g, n, v) in pend {
                core.rpc_call("cfg.set", &[json!(g), json!(n), v])?;
            }
            Ok(json!(0))
        })
        .rpc("cfg.rollback", "Drops the prepared changes.", move |_| {
            st.pending().clear();
            Ok(json!(0))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed() {
        assert_eq!(typed_value("core", "debug", &[json!("3")], 0), Ok(json!(3)));
        assert!(typed_value("core", "debug", &[json!("x")], 0).is_err());
        assert_eq!(
            typed_value("core", "nope", &[json!(1)], 0).map_err(|e| e.code),
            Err(404)
        );
    }

    #[test]
    fn no_names_the_core_has() {
        let d = module();
        for n in ["cfg.get", "cfg.set", "cfg.set_now_int", "cfg.reload"] {
            assert!(!d.rpcs.iter().any(|r| r.name == n), "{n}");
        }
    }
}
