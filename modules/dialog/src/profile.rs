//! Dialog profiles (Kamailio's `profiles_with_value`/`profiles_no_value`):
//! named sets of dialogs, with a value per membership in the profiles
//! declared with values. The counts answer `get_profile_size` and the
//! `dlg.profile_*` RPC methods; the memberships live in each dialog
//! ([`crate::dlg::Dialog::profiles`]), so that a dialog leaves its profiles
//! when it is removed.

use std::collections::HashMap;

/// The declared profiles: name → whether it takes values.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    by_name: HashMap<String, bool>,
}

impl Profiles {
    /// Adds the profiles of a `profiles_with_value` (`with_value`) or
    /// `profiles_no_value` parameter: names separated by `;`, blanks
    /// around them ignored, each of letters, digits and `_` only (as
    /// Kamailio's). A name declared twice is an error, as in Kamailio.
    pub fn declare(&mut self, list: &str, with_value: bool) -> Result<(), String> {
        for name in list.split(';').map(str::trim).filter(|n| !n.is_empty()) {
            if let Some(c) = name
                .chars()
                .find(|c| !c.is_ascii_alphanumeric() && *c != '_')
            {
                return Err(format!(
                    "dialog: bad profile name <{name}>, char {c} - use only alphanumerical characters or '_'"
                ));
            }
            if self.by_name.insert(name.to_string(), with_value).is_some() {
                return Err(format!("dialog: duplicate dialog profile <{name}>"));
            }
        }
        Ok(())
    }

    /// Whether `name` is declared, and whether it has values.
    pub fn get(&self, name: &str) -> Option<bool> {
        self.by_name.get(name).copied()
    }

    /// The declared names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_name.keys().cloned().collect();
        v.sort();
        v
    }
}

/// One membership of a dialog: the profile and, for a profile with
/// values, the value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// The profile.
    pub profile: String,
    /// The value (empty for a profile without values).
    pub value: String,
}

/// Counts of the memberships of all dialogs: profile → value → count.
#[derive(Debug, Default)]
pub struct Counts {
    map: HashMap<String, HashMap<String, usize>>,
}

impl Counts {
    /// One more membership.
    pub fn add(&mut self, l: &Link) {
        *self
            .map
            .entry(l.profile.clone())
            .or_default()
            .entry(l.value.clone())
            .or_default() += 1;
    }

    /// One membership less.
    pub fn remove(&mut self, l: &Link) {
        if let Some(vals) = self.map.get_mut(&l.profile) {
            if let Some(n) = vals.get_mut(&l.value) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    vals.remove(&l.value);
                }
            }
        }
    }

    /// The size of a profile: the memberships with `value`, or all of
    /// them when `value` is `None`.
    pub fn size(&self, profile: &str, value: Option<&str>) -> usize {
        let Some(vals) = self.map.get(profile) else {
            return 0;
        };
        match value {
            Some(v) => vals.get(v).copied().unwrap_or(0),
            None => vals.values().sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations() {
        let mut p = Profiles::default();
        p.declare(" caller ; callee;", true).unwrap();
        p.declare("total", false).unwrap();
        assert_eq!(p.get("caller"), Some(true));
        assert_eq!(p.get("total"), Some(false));
        assert_eq!(p.get("other"), None);
        assert!(p.declare("total", true).unwrap_err().contains("duplicate"));
        assert!(p
            .declare("x/s", true)
            .unwrap_err()
            .contains("bad profile name <x/s>, char /"));
        assert_eq!(p.names(), ["callee", "caller", "total"]);
    }

    #[test]
    fn counting() {
        let mut c = Counts::default();
        let l = |p: &str, v: &str| Link {
            profile: p.into(),
            value: v.into(),
        };
        c.add(&l("caller", "a"));
        c.add(&l("caller", "a"));
        c.add(&l("caller", "b"));
        assert_eq!(c.size("caller", Some("a")), 2);
        assert_eq!(c.size("caller", None), 3);
        c.remove(&l("caller", "a"));
        c.remove(&l("caller", "zz"));
        assert_eq!(c.size("caller", Some("a")), 1);
        assert_eq!(c.size("caller", None), 2);
        assert_eq!(c.size("none", None), 0);
    }
}
