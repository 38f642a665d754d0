//! The one registry of everything modules export: functions, parameters,
//! statistics, RPC methods and pseudo-variables. The script compiler, the
//! RPC server, the statistics output and the docs all read from here.

use sr_sdk::exports::{CmdExport, ModuleDef, PvExport};
use sr_sdk::rpc::RpcExport;
use sr_sdk::stats::{StatExport, StatSource};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A loaded module.
#[derive(Debug)]
pub struct LoadedModule {
    /// Its exports.
    pub def: ModuleDef,
    /// Where it came from: `in-tree` or the shared library path.
    pub origin: String,
}

/// Why a function could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// No module exports this name.
    Unknown,
    /// The name exists with other parameter counts.
    Arity(Vec<usize>),
}

/// One group of statistics (a module, or `core`).
#[derive(Debug, Clone)]
pub struct StatGroup {
    /// Group name.
    pub name: String,
    /// Its statistics in registration order.
    pub stats: Vec<StatExport>,
}

/// Everything exported, by name.
#[derive(Debug, Default)]
pub struct Registry {
    /// Modules in load order.
    pub modules: Vec<LoadedModule>,
    cmds: HashMap<String, Vec<(usize, CmdExport)>>,
    /// Pseudo-variable classes.
    pub pvs: HashMap<String, Arc<PvExport>>,
    /// RPC methods, sorted by name.
    pub rpcs: BTreeMap<String, RpcExport>,
    /// Statistics groups in registration order.
    pub stats: Vec<StatGroup>,
}

impl Registry {
    /// Adds a module's exports. Duplicate RPC or PV names are errors.
    pub fn add(&mut self, def: ModuleDef, origin: &str) -> Result<(), String> {
        let idx = self.modules.len();
        for c in &def.cmds {
            self.cmds
                .entry(c.name.clone())
                .or_default()
                .push((idx, c.clone()));
        }
        for r in &def.rpcs {
            if self.rpcs.contains_key(&r.name) {
                return Err(format!(
                    "module {}: RPC method '{}' is already exported by another module",
                    def.name, r.name
                ));
            }
            self.rpcs.insert(r.name.clone(), r.clone());
        }
        for p in &def.pvs {
            if self.pvs.contains_key(&p.name) {
                return Err(format!(
                    "module {}: pseudo-variable ${} is already exported",
                    def.name, p.name
                ));
            }
            self.pvs.insert(p.name.clone(), Arc::new(p.clone()));
        }
        if !def.stats.is_empty() {
            self.add_stats(&def.name, def.stats.clone());
        }
        self.modules.push(LoadedModule {
            def,
            origin: origin.to_string(),
        });
        Ok(())
    }

    /// Adds statistics to a group (created if new).
    pub fn add_stats(&mut self, group: &str, stats: Vec<StatExport>) {
        match self.stats.iter_mut().find(|g| g.name == group) {
            Some(g) => g.stats.extend(stats),
            None => self.stats.push(StatGroup {
                name: group.to_string(),
                stats,
            }),
        }
    }

    /// Whether a module of this name is loaded.
    pub fn has_module(&self, name: &str) -> bool {
        self.modules.iter().any(|m| m.def.name == name)
    }

    /// Names of the loaded modules, in load order.
    pub fn module_names(&self) -> Vec<&str> {
        self.modules.iter().map(|m| m.def.name.as_str()).collect()
    }

    /// Resolves a function by name and parameter count; the most recently
    /// loaded module wins, as in Kamailio.
    pub fn find_cmd(&self, name: &str, nargs: usize) -> Result<(&str, &CmdExport), LookupError> {
        let list = self.cmds.get(name).ok_or(LookupError::Unknown)?;
        list.iter()
            .rev()
            .find(|(_, c)| c.params == nargs)
            .map(|(m, c)| (self.modules[*m].def.name.as_str(), c))
            .ok_or_else(|| {
                let mut n: Vec<usize> = list.iter().map(|(_, c)| c.params).collect();
                n.sort_unstable();
                n.dedup();
                LookupError::Arity(n)
            })
    }

    /// Reads every statistic as `(group, name, value)`.
    pub fn read_stats(&self) -> Vec<(String, String, i64)> {
        let mut out = Vec::new();
        for g in &self.stats {
            for s in &g.stats {
                out.push((g.name.clone(), s.name.clone(), s.source.read()));
            }
        }
        out
    }

    /// Resets resettable statistics (all, a group `grp:`, or one name).
    pub fn reset_stats(&self, which: &str) -> usize {
        let mut n = 0;
        for g in &self.stats {
            for s in &g.stats {
                let hit = which == "all"
                    || which.strip_suffix(':') == Some(g.name.as_str())
                    || which == s.name
                    || which == format!("{}:{}", g.name, s.name);
                if hit && !s.no_reset {
                    if let StatSource::Value(v) = &s.source {
                        v.reset();
                        n += 1;
                    }
                }
            }
        }
        n
    }
}
