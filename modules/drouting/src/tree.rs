//! The prefix tree of drouting's rules: one level per character of the
//! Request-URI's user (`0`-`9`, `*`, `#`, `+`), each slot holding the
//! rules of the prefix ending there, per group, best first.

use crate::rules::Rule;
use std::sync::Arc;

/// The characters a prefix may hold.
pub fn node_index(c: u8) -> Option<usize> {
    match c {
        b'0'..=b'9' => Some(usize::from(c - b'0')),
        b'*' => Some(10),
        b'#' => Some(11),
        b'+' => Some(12),
        _ => None,
    }
}

/// The rules of one group at one prefix, highest priority first (as
/// unsigned numbers: a negative priority ranks above every positive one,
/// as in Kamailio); equal priorities keep their load order.
#[derive(Debug, Default, Clone)]
pub struct GroupRules {
    /// (group id, rules).
    pub groups: Vec<(u32, Vec<Arc<Rule>>)>,
}

impl GroupRules {
    /// Adds a rule under `grp`.
    pub fn add(&mut self, grp: u32, rule: Arc<Rule>) {
        let list = match self.groups.iter().position(|(g, _)| *g == grp) {
            Some(i) => &mut self.groups[i].1,
            None => {
                self.groups.push((grp, Vec::new()));
                &mut self.groups.last_mut().expect("just pushed").1
            }
        };
        let at = list
            .iter()
            .position(|r| r.priority < rule.priority)
            .unwrap_or(list.len());
        list.insert(at, rule);
    }

    /// The first rule of `grp` whose time holds at `now`.
    pub fn active(&self, grp: u32, now: i64) -> Option<&Arc<Rule>> {
        self.groups
            .iter()
            .find(|(g, _)| *g == grp)?
            .1
            .iter()
            .find(|r| r.active(now))
    }
}

#[derive(Debug, Default, Clone)]
struct Slot {
    rules: Option<GroupRules>,
    next: Option<usize>,
}

#[derive(Debug, Clone)]
struct Level {
    slots: [Slot; 13],
}

impl Default for Level {
    fn default() -> Self {
        Level {
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }
}

/// The tree.
#[derive(Debug, Clone)]
pub struct PrefixTree {
    levels: Vec<Level>,
}

impl Default for PrefixTree {
    fn default() -> Self {
        PrefixTree {
            levels: vec![Level::default()],
        }
    }
}

impl PrefixTree {
    /// Adds a rule for a (non-empty) prefix; `Err` names a character the
    /// tree does not hold.
    pub fn add(&mut self, prefix: &str, grp: u32, rule: Arc<Rule>) -> Result<(), String> {
        let b = prefix.as_bytes();
        let mut level = 0usize;
        for (i, &c) in b.iter().enumerate() {
            let idx = node_index(c)
                .ok_or_else(|| format!("character '{}' not allowed in a prefix", c as char))?;
            if i == b.len() - 1 {
                self.levels[level].slots[idx]
                    .rules
                    .get_or_insert_with(GroupRules::default)
                    .add(grp, rule);
                return Ok(());
            }
            level = match self.levels[level].slots[idx].next {
                Some(n) => n,
                None => {
                    self.levels.push(Level::default());
                    let n = self.levels.len() - 1;
                    self.levels[level].slots[idx].next = Some(n);
                    n
                }
            };
        }
        Err("empty prefix".into())
    }

    /// The rule for `user` in `grp` at `now`: down the tree as far as the
    /// user's characters and the tree go, then back up, the longest
    /// prefix with an active rule first. `None` when none matches, or
    /// when a character the tree does not hold is met on the way down.
    pub fn lookup(&self, user: &str, grp: u32, now: i64) -> Option<Arc<Rule>> {
        let b = user.as_bytes();
        let mut path: Vec<(usize, usize)> = Vec::with_capacity(b.len());
        let mut level = 0usize;
        for (i, &c) in b.iter().enumerate() {
            let idx = node_index(c)?;
            path.push((level, idx));
            if i == b.len() - 1 {
                break;
            }
            match self.levels[level].slots[idx].next {
                Some(n) => level = n,
                None => break,
            }
        }
        path.iter().rev().find_map(|&(l, idx)| {
            self.levels[l].slots[idx]
                .rules
                .as_ref()?
                .active(grp, now)
                .cloned()
        })
    }
}
