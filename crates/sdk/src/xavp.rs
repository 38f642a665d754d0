//! XAVPs: structured AVPs attached to a message (Kamailio's `$xavp`). The
//! root list holds named entries, newest first; an entry holds either a
//! single value or a list of named fields (also newest first), as in
//! `$xavp(root=>field)`.

use crate::value::Value;

/// What an XAVP entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XavpValue {
    /// A single value (`$xavp(root) = v`).
    Value(Value<'static>),
    /// Named fields, newest first (`$xavp(root=>field) = v`).
    Fields(Vec<(String, Value<'static>)>),
}

/// The XAVP list of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Xavps {
    items: Vec<(String, XavpValue)>,
}

impl Xavps {
    /// The `idx`-th newest entry named `root` (0 = newest).
    pub fn get(&self, root: &str, idx: usize) -> Option<&XavpValue> {
        self.items
            .iter()
            .filter(|(n, _)| n == root)
            .nth(idx)
            .map(|(_, v)| v)
    }

    fn get_mut(&mut self, root: &str, idx: usize) -> Option<&mut XavpValue> {
        self.items
            .iter_mut()
            .filter(|(n, _)| n == root)
            .nth(idx)
            .map(|(_, v)| v)
    }

    /// Number of entries named `root`.
    pub fn count(&self, root: &str) -> usize {
        self.items.iter().filter(|(n, _)| n == root).count()
    }

    /// The `fidx`-th newest value of `field` in the `ridx`-th entry `root`.
    pub fn field(
        &self,
        root: &str,
        ridx: usize,
        field: &str,
        fidx: usize,
    ) -> Option<&Value<'static>> {
        match self.get(root, ridx)? {
            XavpValue::Fields(f) => f
                .iter()
                .filter(|(n, _)| n == field)
                .nth(fidx)
                .map(|(_, v)| v),
            XavpValue::Value(_) => None,
        }
    }

    /// Adds a new entry named `root` at the head of the list.
    pub fn push(&mut self, root: &str, v: XavpValue) {
        self.items.insert(0, (root.to_string(), v));
    }

    /// Adds entries named `root` at the head of the list, the first of
    /// `vs` first (as many [`Xavps::push`] calls from the last to the
    /// first, in one move).
    pub fn push_all(&mut self, root: &str, vs: Vec<XavpValue>) {
        self.items
            .splice(0..0, vs.into_iter().map(|v| (root.to_string(), v)));
    }

    /// Adds a field value at the head of the `ridx`-th entry `root`'s
    /// fields. Returns false when there is no such entry or it holds a
    /// single value.
    pub fn add_field(&mut self, root: &str, ridx: usize, field: &str, v: Value<'static>) -> bool {
        match self.get_mut(root, ridx) {
            Some(XavpValue::Fields(f)) => {
                f.insert(0, (field.to_string(), v));
                true
            }
            _ => false,
        }
    }

    /// Replaces the `fidx`-th value of `field` in the `ridx`-th entry
    /// `root`. Returns false when it does not exist.
    pub fn set_field(
        &mut self,
        root: &str,
        ridx: usize,
        field: &str,
        fidx: usize,
        v: Value<'static>,
    ) -> bool {
        let Some(XavpValue::Fields(f)) = self.get_mut(root, ridx) else {
            return false;
        };
        match f.iter_mut().filter(|(n, _)| n == field).nth(fidx) {
            Some(slot) => {
                slot.1 = v;
                true
            }
            None => false,
        }
    }

    /// Removes the `fidx`-th value of `field` (every value with `None`)
    /// from the `ridx`-th entry `root`; returns how many were removed.
    pub fn remove_field(
        &mut self,
        root: &str,
        ridx: usize,
        field: &str,
        fidx: Option<usize>,
    ) -> usize {
        let Some(XavpValue::Fields(f)) = self.get_mut(root, ridx) else {
            return 0;
        };
        let before = f.len();
        match fidx {
            None => f.retain(|(n, _)| n != field),
            Some(k) => {
                if let Some(pos) = f
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| n == field)
                    .nth(k)
                    .map(|(i, _)| i)
                {
                    f.remove(pos);
                }
            }
        }
        before - f.len()
    }

    /// Removes the `idx`-th entry named `root` (every one with `None`);
    /// returns how many were removed.
    pub fn remove(&mut self, root: &str, idx: Option<usize>) -> usize {
        let before = self.items.len();
        match idx {
            None => self.items.retain(|(n, _)| n != root),
            Some(k) => {
                if let Some(pos) = self
                    .items
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| n == root)
                    .nth(k)
                    .map(|(i, _)| i)
                {
                    self.items.remove(pos);
                }
            }
        }
        before - self.items.len()
    }

    /// Adds an entry named `root` after the oldest one of that name (the
    /// end of its stack), or at the head when there is none.
    pub fn push_last(&mut self, root: &str, v: XavpValue) {
        match self.items.iter().rposition(|(n, _)| n == root) {
            Some(i) => self.items.insert(i + 1, (root.to_string(), v)),
            None => self.push(root, v),
        }
    }

    /// Replaces the `idx`-th entry named `root`; false when there is none.
    pub fn replace(&mut self, root: &str, idx: usize, v: XavpValue) -> bool {
        match self.get_mut(root, idx) {
            Some(slot) => {
                *slot = v;
                true
            }
            None => false,
        }
    }

    /// Names of the entries, newest first (repeated names repeated).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|(n, _)| n.as_str())
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_fields() {
        let mut x = Xavps::default();
        x.push("r", XavpValue::Fields(vec![("a".into(), Value::Int(1))]));
        assert!(x.add_field("r", 0, "b", Value::Int(2)));
        assert!(x.add_field("r", 0, "a", Value::Int(3)));
        assert_eq!(x.field("r", 0, "a", 0), Some(&Value::Int(3)));
        assert_eq!(x.field("r", 0, "a", 1), Some(&Value::Int(1)));
        x.push("r", XavpValue::Value(Value::Int(9)));
        assert_eq!(x.count("r"), 2);
        assert_eq!(x.get("r", 0), Some(&XavpValue::Value(Value::Int(9))));
        assert_eq!(x.field("r", 1, "b", 0), Some(&Value::Int(2)));
        assert!(x.set_field("r", 1, "b", 0, Value::Int(5)));
        assert_eq!(x.remove_field("r", 1, "a", None), 2);
        assert_eq!(x.remove("r", Some(0)), 1);
        assert_eq!(x.field("r", 0, "b", 0), Some(&Value::Int(5)));
        assert!(!x.add_field("nope", 0, "b", Value::Null));
        assert_eq!(x.remove("r", None), 1);
        assert!(x.is_empty());
    }
}
