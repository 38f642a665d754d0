//! JSON paths as Kamailio's jansson module walks them: `a.b[0][1].c`,
//! `[2]`, a plain key. The path is cut the way its C code cuts it (at the
//! next `.` or `[`, or at `]` inside brackets), array indexes are read as
//! C's `strtol` with base 0 (`0x10`, `010`); setting creates the objects
//! missing on the way (not arrays) and sets, appends or merges at the end
//! with its rules for each case.

use crate::json::Json;

/// One cut of a path.
#[derive(Debug, Clone, PartialEq)]
enum Op<'a> {
    /// A key and the separator after it (`.` or `[`).
    Key(&'a str, u8),
    /// An array index as written.
    Index(&'a str),
}

/// The cuts of `path` and the text left after the last one (`None` when
/// the path ends with an index); `None` for a malformed path. `set` stops
/// at a last key without a separator (left as the rest) and refuses empty
/// keys; `get` reads that key too.
fn cut(path: &str, set: bool) -> Option<(Vec<Op<'_>>, Option<&str>)> {
    const DELIMS: &[u8] = b".[";
    const CLOSE: &[u8] = b"]";
    let b = path.as_bytes();
    let mut ops = Vec::new();
    let mut expect = DELIMS;
    let mut token = Some(0usize);
    let mut peek = 0usize;
    if b.first() == Some(&b'[') {
        expect = CLOSE;
        token = Some(1);
        peek = 0;
    }
    while peek < b.len() {
        let last = peek;
        let found = b[peek..]
            .iter()
            .position(|c| expect.contains(c))
            .map(|i| peek + i);
        let (end, delim) = match found {
            Some(pos) => {
                if token.is_none() && pos != last {
                    return None;
                }
                peek = pos + 1;
                (pos, b[pos])
            }
            None if set => {
                if expect == DELIMS {
                    break;
                }
                return None;
            }
            None => {
                if expect != DELIMS || token.is_none() {
                    return None;
                }
                peek = b.len();
                (b.len(), 0)
            }
        };
        if expect == DELIMS {
            if let Some(t) = token {
                let key = &path[t..end];
                if set && key.is_empty() {
                    return None;
                }
                ops.push(Op::Key(key, delim));
            }
            expect = if delim == b'[' { CLOSE } else { DELIMS };
            token = (found.is_some()).then_some(peek);
        } else {
            let t = token?;
            ops.push(Op::Index(&path[t..end]));
            token = None;
            expect = DELIMS;
        }
    }
    Some((ops, token.map(|t| &path[t.min(b.len())..])))
}

/// C's `strtol(s, &end, 0)` requiring `end` at the end of `s`: `None`
/// when it is not; the value as a `size_t` index (`None` inside for a
/// negative or too large one, which indexes nothing).
fn index(s: &str) -> Option<Option<usize>> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if t.is_empty() {
        // Nothing read: the end is the start, which is the end of an
        // empty text only.
        return s.is_empty().then_some(Some(0));
    }
    let (neg, t) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) if !h.is_empty() => (16, h),
        _ if t.len() > 1 && t.starts_with('0') => (8, &t[1..]),
        _ => (10, t),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = u64::from_str_radix(digits, radix).ok();
    Some(match v {
        Some(0) => Some(0),
        Some(v) if !neg => usize::try_from(v).ok(),
        _ => None,
    })
}

/// `json_path_get`: the value at `path` (the whole document for an empty
/// path), `None` when it is not there or the path is malformed.
pub fn get<'j>(json: &'j Json, path: &str) -> Option<&'j Json> {
    let (ops, _) = cut(path, false)?;
    let mut cursor = json;
    for op in ops {
        cursor = match op {
            Op::Key(k, _) => cursor.get(k)?,
            Op::Index(i) => {
                let i = index(i)??;
                match cursor {
                    Json::Arr(a) => a.get(i)?,
                    _ => return None,
                }
            }
        };
    }
    Some(cursor)
}

/// A step from a value to one inside it.
#[derive(Debug, Clone)]
enum Sel {
    Key(String),
    At(usize),
}

fn walk<'j>(json: &'j mut Json, sels: &[Sel]) -> Option<&'j mut Json> {
    let mut c = json;
    for s in sels {
        c = match (s, c) {
            (Sel::Key(k), c) => c.get_mut(k)?,
            (Sel::At(i), Json::Arr(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(c)
}

/// `json_path_set`: puts `value` at `path` in `json` (`append`: adds to
/// the array there, or merges an object into the object there); `Err`
/// with the reason when Kamailio's walk fails.
pub fn set(json: &mut Json, path: &str, value: Json, append: bool) -> Result<(), String> {
    let (ops, token) = cut(path, true).ok_or("invalid JSON path")?;
    let mut cursor: Vec<Sel> = Vec::new();
    let mut parent: Vec<Sel> = Vec::new();
    let mut index_saved: Option<usize> = None;
    for op in ops {
        parent = cursor.clone();
        let here = walk(json, &cursor).ok_or("invalid JSON path")?;
        match op {
            Op::Key(k, delim) => {
                if here.get(k).is_none() {
                    if !matches!(here, Json::Obj(_)) {
                        return Err("object expected".into());
                    }
                    if delim != b'.' {
                        return Err("new array is not allowed".into());
                    }
                    here.set(k, Json::Obj(Vec::new()));
                }
                cursor.push(Sel::Key(k.to_string()));
            }
            Op::Index(i) => {
                let Json::Arr(a) = here else {
                    return Err("array expected".into());
                };
                let i = index(i).ok_or("invalid array index")?;
                let i = i
                    .filter(|i| *i < a.len())
                    .ok_or("array index out of bound")?;
                cursor.push(Sel::At(i));
                index_saved = Some(i);
            }
        }
    }
    let here = walk(json, &cursor).ok_or("invalid JSON path")?;
    match token {
        Some(t) if append => {
            let target = if t.is_empty() {
                here
            } else {
                here.get_mut(t).ok_or("JSON array or object expected")?
            };
            match (target, value) {
                (Json::Arr(a), v) => {
                    a.push(v);
                    Ok(())
                }
                (o @ Json::Obj(_), Json::Obj(m)) => {
                    for (k, v) in m {
                        o.set(&k, v);
                    }
                    Ok(())
                }
                _ => Err("JSON array or object expected".into()),
            }
        }
        Some(t) if !t.is_empty() => {
            if here.set(t, value) {
                Ok(())
            } else {
                Err("JSON object expected".into())
            }
        }
        _ => match (index_saved, walk(json, &parent)) {
            (Some(i), Some(Json::Arr(a))) if i < a.len() => {
                a[i] = value;
                Ok(())
            }
            _ => Err("invalid JSON path".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn paths_reach_what_kamailio_reaches() {
        let j = parse(r#"{"inner":{"deep":{"list":[0,1,2,{"x":[5,6]}]}},"a.b":1,"":7}"#).unwrap();
        let g = |p: &str| get(&j, p).map(Json::dump);
        assert_eq!(g("inner.deep.list[3].x[1]").as_deref(), Some("6"));
        assert_eq!(g("inner.deep.list[0x1]").as_deref(), Some("1"));
        assert_eq!(g("inner.deep.list[02]").as_deref(), Some("2"));
        assert_eq!(g("").as_deref(), Some(j.dump().as_str()));
        for none in [
            "inner.deep.list[9]",
            "inner.deep.list[-1]",
            "inner.deep.list[0]x",
            "a.b",
            "nope",
            "inner[0]",
            "inner.deep.list[1",
            "inner.deep.list[z]",
        ] {
            assert_eq!(g(none), None, "{none}");
        }
        let arr = parse("[[1,2],[3]]").unwrap();
        assert_eq!(get(&arr, "[1][0]").map(Json::dump).as_deref(), Some("3"));
    }

    #[test]
    fn setting_creates_objects_and_appending_merges() {
        let mut j = parse("{}").unwrap();
        set(&mut j, "mystr", Json::Str("s".into()), false).unwrap();
        set(&mut j, "a.b.c", Json::Int(1), false).unwrap();
        assert!(set(&mut j, "x[0]", Json::Int(1), false).is_err());
        set(&mut j, "list", parse("[0]").unwrap(), false).unwrap();
        set(&mut j, "list", Json::Int(1), true).unwrap();
        set(&mut j, "list[0]", Json::Int(9), false).unwrap();
        set(&mut j, "a", parse(r#"{"z":2}"#).unwrap(), true).unwrap();
        set(&mut j, "mystr", Json::Int(3), false).unwrap();
        assert_eq!(
            j.dump(),
            r#"{"mystr":3,"a":{"b":{"c":1},"z":2},"list":[9,1]}"#
        );
        assert!(set(&mut j, "a.", Json::Int(0), false).is_err());
        assert!(set(&mut j, "mystr", Json::Int(0), true).is_err());
        let mut arr = parse("[]").unwrap();
        set(&mut arr, "", Json::Int(0), true).unwrap();
        assert!(set(&mut arr, "", Json::Int(0), false).is_err());
        set(&mut arr, "[0]", Json::Int(5), false).unwrap();
        assert_eq!(arr.dump(), "[5]");
    }
}
