//! Contact filters (Kamailio's `rd_filter.c`): accept filters are tried
//! first, then, unless the default rule is deny, the deny filters; the
//! default rule decides the rest. The module's own filters (parameters)
//! sit in slot 0 of each list; the script adds up to five more per
//! message and may drop the default ones or those added before.

use regex::Regex;

/// The most filters per type, the module's default one included.
pub const MAX_FILTERS: usize = 6;

/// Accept or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `set_accept_filter` / `accept_filter`.
    Accept,
    /// `set_deny_filter` / `deny_filter`.
    Deny,
}

/// What to drop before adding a filter (`set_*_filter`'s second
/// parameter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reset {
    /// Filters added before by the script (`reset_added`).
    pub added: bool,
    /// The module's default filter (`reset_default`).
    pub default: bool,
}

impl Reset {
    /// Parses `""`, `reset_all`, `reset_default` or `reset_added`.
    pub fn parse(s: &str) -> Result<Reset, String> {
        let s = s.trim();
        Ok(match s.to_ascii_lowercase().as_str() {
            "" => Reset::default(),
            "reset_all" => Reset {
                added: true,
                default: true,
            },
            "reset_default" => Reset {
                added: false,
                default: true,
            },
            "reset_added" => Reset {
                added: true,
                default: false,
            },
            _ => return Err(format!("unknown reset type <{s}>")),
        })
    }
}

/// One list: slot 0 the default filter, then those the script added.
#[derive(Debug, Clone)]
struct List {
    slots: Vec<Option<Regex>>,
    start: usize,
}

impl List {
    fn new(default: Option<Regex>) -> List {
        List {
            slots: vec![default],
            start: 0,
        }
    }

    fn any_match(&self, s: &str) -> bool {
        self.slots[self.start..]
            .iter()
            .flatten()
            .any(|r| r.is_match(s))
    }
}

/// The filters in force for one message.
#[derive(Debug, Clone)]
pub struct Filters {
    accept: List,
    deny: List,
    default_accept: bool,
}

impl Filters {
    /// The module's defaults.
    pub fn new(accept: Option<Regex>, deny: Option<Regex>, default_accept: bool) -> Filters {
        Filters {
            accept: List::new(accept),
            deny: List::new(deny),
            default_accept,
        }
    }

    /// Adds a filter; false when the list is full.
    pub fn add(&mut self, kind: Kind, re: Option<Regex>, reset: Reset) -> bool {
        let list = match kind {
            Kind::Accept => &mut self.accept,
            Kind::Deny => &mut self.deny,
        };
        if list.slots.len() == MAX_FILTERS {
            return false;
        }
        if reset.added {
            list.slots.truncate(1);
        }
        if reset.default {
            list.start = 1;
        }
        list.slots.push(re);
        true
    }

    /// Whether a contact URI passes.
    pub fn allows(&self, uri: &str) -> bool {
        if self.accept.any_match(uri) {
            return true;
        }
        if self.default_accept && self.deny.any_match(uri) {
            return false;
        }
        self.default_accept
    }
}

/// Compiles a filter as Kamailio does (POSIX extended, case ignored);
/// an empty one is no filter.
pub fn compile(re: &str) -> Result<Option<Regex>, String> {
    if re.is_empty() {
        return Ok(None);
    }
    regex::RegexBuilder::new(re)
        .case_insensitive(true)
        .build()
        .map(Some)
        .map_err(|e| format!("bad regexp <{re}>: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(s: &str) -> Option<Regex> {
        compile(s).unwrap()
    }

    #[test]
    fn accept_goes_before_deny_and_default_decides() {
        let f = Filters::new(None, re("blocked"), true);
        assert!(f.allows("sip:a@x"));
        assert!(!f.allows("sip:BLOCKED@x"));
        let mut f2 = f.clone();
        assert!(f2.add(Kind::Accept, re("blocked-ok"), Reset::default()));
        assert!(f2.allows("sip:blocked-ok@x"));
        assert!(!f2.allows("sip:blocked@x"));
        // Dropping the default deny filter.
        let mut f3 = f.clone();
        f3.add(
            Kind::Deny,
            re("other"),
            Reset::parse("reset_default").unwrap(),
        );
        assert!(f3.allows("sip:blocked@x"));
        assert!(!f3.allows("sip:other@x"));
    }

    #[test]
    fn default_deny_ignores_deny_filters() {
        let mut f = Filters::new(None, None, false);
        assert!(!f.allows("sip:a@x"));
        f.add(Kind::Accept, re("^sip:a@"), Reset::default());
        assert!(f.allows("sip:a@x"));
        assert!(!f.allows("sip:b@x"));
    }

    #[test]
    fn lists_hold_six() {
        let mut f = Filters::new(None, None, true);
        for _ in 1..MAX_FILTERS {
            assert!(f.add(Kind::Deny, re("x"), Reset::default()));
        }
        assert!(!f.add(Kind::Deny, re("x"), Reset::default()));
        assert!(Reset::parse("bogus").is_err());
    }
}
