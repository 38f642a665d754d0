//! AVPs: named value stacks attached to a message (and, through tm, to its
//! transaction). `$avp(x) = v` pushes a value; `$avp(x)` reads the newest;
//! `$(avp(x)[n])` the n-th newest.

use crate::value::Value;

/// The AVP list of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Avps {
    items: Vec<(String, Value<'static>)>,
}

/// The AVP name a module parameter such as `received_avp` names:
/// `$avp(NAME)`, `$avp(s:NAME)`, `$avp(i:N)` or the bare name; `None`
/// when empty.
pub fn spec_name(spec: &str) -> Option<String> {
    let s = spec.trim();
    if s.is_empty() {
        return None;
    }
    let inner = s
        .strip_prefix("$avp(")
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(s);
    let inner = inner
        .strip_prefix("s:")
        .or_else(|| inner.strip_prefix("i:"))
        .unwrap_or(inner);
    Some(inner.to_string())
}

impl Avps {
    /// Pushes a value on top of the named stack.
    pub fn push(&mut self, name: &str, v: Value<'static>) {
        self.items.push((name.to_string(), v));
    }

    /// The `idx`-th newest value of `name` (0 = newest).
    pub fn get(&self, name: &str, idx: usize) -> Option<&Value<'static>> {
        self.items
            .iter()
            .rev()
            .filter(|(n, _)| n == name)
            .nth(idx)
            .map(|(_, v)| v)
    }

    /// The names that have values, each once, the most recently pushed
    /// first.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (n, _) in self.items.iter().rev() {
            if !out.contains(&n.as_str()) {
                out.push(n);
            }
        }
        out
    }

    /// All values of `name`, newest first.
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Value<'static>> + 's {
        self.items
            .iter()
            .rev()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Removes the newest value of `name`.
    pub fn remove_newest(&mut self, name: &str) {
        if let Some(i) = self.items.iter().rposition(|(n, _)| n == name) {
            self.items.remove(i);
        }
    }

    /// Removes every value of `name`.
    pub fn remove_all(&mut self, name: &str) {
        self.items.retain(|(n, _)| n != name);
    }

    /// Every AVP, newest first: name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'static>)> {
        self.items.iter().rev().map(|(n, v)| (n.as_str(), v))
    }

    /// Number of values stored (all names).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no AVP is stored.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_semantics() {
        let mut a = Avps::default();
        a.push("x", Value::Int(1));
        a.push("y", Value::Int(9));
        a.push("x", Value::Int(2));
        assert_eq!(a.get("x", 0), Some(&Value::Int(2)));
        assert_eq!(a.get("x", 1), Some(&Value::Int(1)));
        assert_eq!(a.all("x").count(), 2);
        a.remove_newest("x");
        assert_eq!(a.get("x", 0), Some(&Value::Int(1)));
        a.remove_all("x");
        assert!(a.get("x", 0).is_none());
        assert_eq!(a.len(), 1);
    }
}

#[cfg(test)]
mod spec_tests {
    use super::spec_name;

    #[test]
    fn avp_specs() {
        assert_eq!(spec_name("$avp(RECEIVED)").as_deref(), Some("RECEIVED"));
        assert_eq!(spec_name("$avp(s:rcv)").as_deref(), Some("rcv"));
        assert_eq!(spec_name("$avp(i:42)").as_deref(), Some("42"));
        assert_eq!(spec_name("plain").as_deref(), Some("plain"));
        assert_eq!(spec_name("  "), None);
    }
}
