//! Reply containers and `$redis(name=>key)`. As in Kamailio, where each
//! process keeps its own replies, each worker thread keeps its own: a
//! script reads the reply its own worker stored.
//!
//! Keys: `type`, `value`, `info`, `size`; `type[n]` and `value[n]` read
//! element `n` of an array reply (`n` an integer or a pseudo-variable),
//! and `value[n]=>key` reads `key` of that element (arrays in arrays, as
//! `EXEC` of a `MULTI` gives).

use crate::resp::Reply;
use sr_sdk::Value;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// This worker's containers, per (module instance, name): `None` once
    /// freed or after a command that got no reply.
    static REPLIES: RefCell<HashMap<(usize, String), Option<Reply>>> = RefCell::new(HashMap::new());
}

/// Stores `r` under `name`.
pub fn store(inst: usize, name: &str, r: Option<Reply>) {
    REPLIES.with(|m| {
        m.borrow_mut().insert((inst, name.to_string()), r);
    });
}

/// Frees the reply under `name`: false when there is no such container.
pub fn free(inst: usize, name: &str) -> bool {
    REPLIES.with(
        |m| match m.borrow_mut().get_mut(&(inst, name.to_string())) {
            Some(r) => {
                *r = None;
                true
            }
            None => false,
        },
    )
}

/// Runs `f` on the reply under `name`, if there is one.
pub fn with<T>(inst: usize, name: &str, f: impl FnOnce(&Reply) -> T) -> Option<T> {
    REPLIES.with(|m| {
        m.borrow()
            .get(&(inst, name.to_string()))
            .and_then(|r| r.as_ref())
            .map(f)
    })
}

/// An index: a number or a pseudo-variable read when the key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Index {
    /// A constant.
    Int(i64),
    /// A pseudo-variable's text (`$var(i)`).
    Pv(String),
}

/// What a key reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The reply's type number.
    Type,
    /// Its value (string or integer).
    Value,
    /// Its text (string, status or error line).
    Info,
    /// The number of elements of an array.
    Size,
}

/// A parsed `$redis` name: the container, the elements walked into, and
/// the last field with its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The container's name.
    pub name: String,
    /// `value[n]=>` steps, outermost first.
    pub path: Vec<Index>,
    /// The field read at the end.
    pub field: Field,
    /// Its index (`type[n]`, `value[n]`).
    pub index: Option<Index>,
}

/// Reads `name=>key` (Kamailio's syntax; `None` for what it refuses).
pub fn parse_spec(text: &str) -> Option<Spec> {
    let t = text.trim();
    let end = t.find(|c: char| c.is_whitespace() || c == '=')?;
    let name = &t[..end];
    if name.is_empty() {
        return None;
    }
    let rest = t[end..].trim_start().strip_prefix("=>")?.trim_start();
    let mut path = Vec::new();
    let mut key = rest;
    loop {
        let (field, after) = if let Some(a) = key.strip_prefix("value") {
            (Field::Value, a)
        } else if let Some(a) = key.strip_prefix("type") {
            (Field::Type, a)
        } else if key == "info" {
            (Field::Info, "")
        } else if key == "size" {
            (Field::Size, "")
        } else {
            return None;
        };
        if after.is_empty() {
            return Some(Spec {
                name: name.to_string(),
                path,
                field,
                index: None,
            });
        }
        let (index, after) = bracket(after)?;
        let after = after.trim_start();
        if after.is_empty() {
            return Some(Spec {
                name: name.to_string(),
                path,
                field,
                index: Some(index),
            });
        }
        // Only `value[n]` leads into an element.
        if field != Field::Value {
            return None;
        }
        key = after.strip_prefix("=>")?.trim_start();
        path.push(index);
    }
}

/// `[ n ]` at the start of `s` (spaces allowed inside).
fn bracket(s: &str) -> Option<(Index, &str)> {
    let s = s.trim_start().strip_prefix('[')?;
    let close = s.find(']')?;
    let inner = s[..close].trim();
    if inner.is_empty() || inner.contains(char::is_whitespace) {
        return None;
    }
    let idx = if inner.starts_with('$') {
        Index::Pv(inner.to_string())
    } else {
        Index::Int(inner.parse().ok()?)
    };
    Some((idx, &s[close + 1..]))
}

/// An element's value: strings and integers (as C's `int`), else null.
fn scalar(r: &Reply) -> Value<'static> {
    match r {
        Reply::Str(b) => Value::Str(String::from_utf8_lossy(b).into_owned().into()),
        Reply::Int(i) => Value::Int(i64::from(*i as i32)),
        _ => Value::Null,
    }
}

/// Element `i` of an array reply.
fn element(r: &Reply, i: i64) -> Option<&Reply> {
    match r {
        Reply::Array(v) if i >= 0 => v.get(i as usize),
        _ => None,
    }
}

/// Reads `spec` from `r`, with each pseudo-variable index resolved by
/// `pv` (`None` when it is no integer: the result is null).
pub fn get(r: &Reply, spec: &Spec, pv: &mut dyn FnMut(&str) -> Option<i64>) -> Value<'static> {
    let mut resolve = |i: &Index| match i {
        Index::Int(n) => Some(*n),
        Index::Pv(p) => pv(p),
    };
    let mut node = r;
    for step in &spec.path {
        let Some(i) = resolve(step) else {
            return Value::Null;
        };
        let Some(e) = element(node, i) else {
            return Value::Null;
        };
        node = e;
    }
    // -1 is Kamailio's "no index": `value[-1]` reads as `value`.
    let index = match &spec.index {
        Some(i) => match resolve(i) {
            Some(-1) => None,
            Some(n) => Some(n),
            None => return Value::Null,
        },
        None => None,
    };
    match (spec.field, index) {
        (Field::Type, None) => Value::Int(node.type_code()),
        (Field::Type, Some(i)) => {
            element(node, i).map_or(Value::Null, |e| Value::Int(e.type_code()))
        }
        (Field::Value, None) => scalar(node),
        (Field::Value, Some(i)) => element(node, i).map_or(Value::Null, scalar),
        (Field::Info, _) => node.text().map_or(Value::Null, |t| Value::Str(t.into())),
        (Field::Size, _) => match node {
            Reply::Array(v) => Value::Int(v.len() as i64),
            _ => Value::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> Spec {
        parse_spec(s).unwrap_or_else(|| panic!("{s}"))
    }

    #[test]
    fn names_read_as_kamailio_reads_them() {
        let s = spec(" r => value ");
        assert_eq!(
            (s.name.as_str(), s.field, s.index),
            ("r", Field::Value, None)
        );
        let s = spec("r=>type[ 2 ]");
        assert_eq!(s.index, Some(Index::Int(2)));
        let s = spec("r=>value[$var(i)]");
        assert_eq!(s.index, Some(Index::Pv("$var(i)".into())));
        let s = spec("r=>value[0]=>value[1]");
        assert_eq!(s.path, vec![Index::Int(0)]);
        assert_eq!(s.index, Some(Index::Int(1)));
        let s = spec("r=>value[0]=>size");
        assert_eq!((s.path.len(), s.field), (1, Field::Size));
        for bad in [
            "r",
            "=>value",
            "r=>",
            "r=>values",
            "r=>size[1]",
            "r=>info[0]",
            "r=>type[0]=>size",
            "r=>value[]",
            "r=>value[x]",
            "r=>value[1",
        ] {
            assert_eq!(parse_spec(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_read_the_reply() {
        let r = Reply::Array(vec![
            Reply::Str(b"a".to_vec()),
            Reply::Int(1 << 33 | 5),
            Reply::Array(vec![Reply::Str(b"x".to_vec()), Reply::Nil]),
            Reply::Nil,
        ]);
        let mut none = |_: &str| None;
        let g = |s: &str, pv: &mut dyn FnMut(&str) -> Option<i64>| get(&r, &spec(s), pv);
        assert_eq!(g("r=>type", &mut none), Value::Int(2));
        assert_eq!(g("r=>size", &mut none), Value::Int(4));
        assert_eq!(g("r=>value", &mut none), Value::Null);
        assert_eq!(g("r=>value[0]", &mut none), Value::str("a"));
        assert_eq!(g("r=>value[1]", &mut none), Value::Int(5));
        assert_eq!(g("r=>value[2]", &mut none), Value::Null);
        assert_eq!(g("r=>type[3]", &mut none), Value::Int(4));
        assert_eq!(g("r=>type[4]", &mut none), Value::Null);
        assert_eq!(g("r=>value[-2]", &mut none), Value::Null);
        assert_eq!(g("r=>type[-1]", &mut none), Value::Int(2));
        assert_eq!(g("r=>value[2]=>size", &mut none), Value::Int(2));
        assert_eq!(g("r=>value[2]=>value[0]", &mut none), Value::str("x"));
        assert_eq!(g("r=>value[2]=>type[1]", &mut none), Value::Int(4));
        assert_eq!(g("r=>value[0]=>value[0]", &mut none), Value::Null);
        assert_eq!(g("r=>value[$i]", &mut |_| Some(0)), Value::str("a"));
        assert_eq!(g("r=>value[$i]", &mut none), Value::Null);
        let e = Reply::Error("ERR x".into());
        assert_eq!(get(&e, &spec("r=>info"), &mut none), Value::str("ERR x"));
        assert_eq!(get(&e, &spec("r=>value"), &mut none), Value::Null);
    }
}
