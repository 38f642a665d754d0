//! `$xavp(root=>field)`: reading and writing the message's XAVPs
//! ([`sr_sdk::xavp::Xavps`]) with Kamailio's semantics.
//!
//! - `$xavp(r=>f) = v` adds a new root `r` holding field `f`;
//! - `$xavp(r[i]=>f) = v` adds field `f` to the i-th root `r` (a new root
//!   when `i` is 0 and there is none);
//! - `$xavp(r[i]=>f[j]) = v` replaces the j-th value of `f`;
//! - `$xavp(r) = v` adds a new root holding a single value;
//! - assigning `$null` removes (the field, or the root; `[*]` all).
//!
//! `$xavi(...)` is the same with names compared ignoring case, `$xavu(...)`
//! keeps one value per name (an assignment replaces; no indexes). Both
//! live in the message's XAVP list under names a script cannot write
//! (`\u{1}xavi:` / `\u{1}xavu:` and the name), so that whatever carries
//! XAVPs (tm's transactions) carries them too.

use sr_sdk::exports::PvName;
use sr_sdk::prelude::*;
use sr_sdk::xavp::XavpValue;

/// An index in a name: none, a position, or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idx {
    /// No index written.
    None,
    /// `[n]`.
    At(usize),
    /// `[*]`.
    All,
}

/// A parsed `$xavp` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XName {
    /// Root name.
    pub root: String,
    /// Root index.
    pub ridx: Idx,
    /// Field name and index.
    pub field: Option<(String, Idx)>,
}

fn name_idx(s: &str) -> Result<(String, Idx), String> {
    let s = s.trim();
    match s.find('[') {
        None => Ok((s.to_string(), Idx::None)),
        Some(i) => {
            let inner = s[i + 1..]
                .strip_suffix(']')
                .ok_or_else(|| format!("bad index in '{s}'"))?;
            let idx = match inner.trim() {
                "*" => Idx::All,
                n => Idx::At(
                    n.parse::<usize>()
                        .map_err(|_| format!("bad index '{n}' in '{s}'"))?,
                ),
            };
            Ok((s[..i].trim().to_string(), idx))
        }
    }
}

/// Parses `root[i]=>field[j]` (indexes optional).
pub fn parse(inner: &str) -> Result<XName, String> {
    let (r, f) = match inner.split_once("=>") {
        Some((r, f)) => (r, Some(f)),
        None => (inner, None),
    };
    let (root, ridx) = name_idx(r)?;
    if root.is_empty() {
        return Err("$xavp needs a name: $xavp(root=>field)".to_string());
    }
    let field = match f {
        Some(f) => {
            let (n, i) = name_idx(f)?;
            if n.is_empty() {
                return Err(format!("$xavp({inner}): empty field name"));
            }
            Some((n, i))
        }
        None => None,
    };
    Ok(XName { root, ridx, field })
}

fn at(i: Idx) -> usize {
    match i {
        Idx::At(n) => n,
        _ => 0,
    }
}

/// Which class: `$xavp`, `$xavi` (names ignoring case) or `$xavu` (one
/// value per name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `$xavp`.
    Xavp,
    /// `$xavi`.
    Xavi,
    /// `$xavu`.
    Xavu,
}

/// The name as stored for `flavor`.
fn stored(flavor: Flavor, mut x: XName) -> Result<XName, String> {
    match flavor {
        Flavor::Xavp => {}
        Flavor::Xavi => {
            x.root = format!("\u{1}xavi:{}", x.root.to_ascii_lowercase());
            if let Some((f, _)) = &mut x.field {
                *f = f.to_ascii_lowercase();
            }
        }
        Flavor::Xavu => {
            if x.ridx != Idx::None || x.field.as_ref().is_some_and(|(_, i)| *i != Idx::None) {
                return Err("$xavu takes no index".into());
            }
            x.root = format!("\u{1}xavu:{}", x.root);
        }
    }
    Ok(x)
}

/// Parses a name of `flavor` as stored.
pub fn parse_as(flavor: Flavor, inner: &str) -> Result<XName, String> {
    stored(flavor, parse(inner)?)
}

/// The name with each index written as a pseudo-variable
/// (`r[$var(i)]=>f`) replaced by its value, as Kamailio reads such an
/// index at run time; `None` when one is not a number of 0 or more.
fn pv_indexes<'a>(ctx: &mut Ctx<'_>, inner: &'a str) -> Option<std::borrow::Cow<'a, str>> {
    if !inner.contains("[$") {
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(i) = rest.find("[$") {
        let end = i + rest[i..].find(']')?;
        let v = ctx.core.pv_get(ctx.msg, &rest[i + 1..end])?;
        let n = match v {
            Value::Int(n) => n,
            other => other.as_str().trim().parse::<i64>().ok()?,
        };
        if n < 0 {
            return None;
        }
        out.push_str(&rest[..=i]);
        out.push_str(&n.to_string());
        rest = &rest[end..];
    }
    out.push_str(rest);
    Some(std::borrow::Cow::Owned(out))
}

/// Reads `$xavi(...)` / `$xavu(...)`.
pub fn get_flavor(flavor: Flavor, ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let Some(inner) = name.inner.as_deref().and_then(|i| pv_indexes(ctx, i)) else {
        return Value::Null;
    };
    match parse_as(flavor, &inner) {
        Ok(x) => read(ctx, &x),
        _ => Value::Null,
    }
}

/// Writes `$xavi(...)` / `$xavu(...)`.
pub fn set_flavor(
    flavor: Flavor,
    ctx: &mut Ctx<'_>,
    name: &PvName,
    v: Value<'_>,
) -> Result<(), String> {
    let inner = pv_indexes(ctx, name.inner.as_deref().unwrap_or(""))
        .ok_or("$xavp: the index is not a number")?;
    let x = parse_as(flavor, &inner)?;
    if flavor != Flavor::Xavu {
        return write(ctx, &x, v);
    }
    // One value per name: the old one goes first.
    let xs = &mut ctx.msg.xavps;
    let v = v.into_owned();
    match &x.field {
        None => {
            xs.remove(&x.root, None);
            if !v.is_null() {
                xs.push(&x.root, XavpValue::Value(v));
            }
        }
        Some((f, _)) => {
            if !matches!(xs.get(&x.root, 0), Some(XavpValue::Fields(_))) {
                xs.remove(&x.root, None);
                if !v.is_null() {
                    xs.push(&x.root, XavpValue::Fields(vec![(f.clone(), v)]));
                }
                return Ok(());
            }
            xs.remove_field(&x.root, 0, f, None);
            if !v.is_null() {
                xs.add_field(&x.root, 0, f, v);
            }
        }
    }
    Ok(())
}

/// Reads `$xavp(...)`. A root holding fields reads as `<<xavp>>`.
pub fn get(ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let Some(inner) = name.inner.as_deref().and_then(|i| pv_indexes(ctx, i)) else {
        return Value::Null;
    };
    let Ok(x) = parse(&inner) else {
        return Value::Null;
    };
    read(ctx, &x)
}

fn read(ctx: &mut Ctx<'_>, x: &XName) -> Value<'static> {
    let xs = &ctx.msg.xavps;
    match &x.field {
        Some((f, fi)) => xs
            .field(&x.root, at(x.ridx), f, at(*fi))
            .cloned()
            .unwrap_or(Value::Null),
        None => match xs.get(&x.root, at(x.ridx)) {
            Some(XavpValue::Value(v)) => v.clone(),
            Some(XavpValue::Fields(_)) => Value::from("<<xavp>>"),
            None => Value::Null,
        },
    }
}

/// Writes `$xavp(...)`.
pub fn set(ctx: &mut Ctx<'_>, name: &PvName, v: Value<'_>) -> Result<(), String> {
    let inner = pv_indexes(ctx, name.inner.as_deref().unwrap_or(""))
        .ok_or("$xavp: the index is not a number")?;
    let x = parse(&inner)?;
    write(ctx, &x, v)
}

fn write(ctx: &mut Ctx<'_>, x: &XName, v: Value<'_>) -> Result<(), String> {
    let xs = &mut ctx.msg.xavps;
    let v = v.into_owned();
    match (&x.field, v) {
        (None, Value::Null) => {
            let which = match x.ridx {
                Idx::All => None,
                i => Some(at(i)),
            };
            xs.remove(&x.root, which);
        }
        (None, v) => xs.push(&x.root, XavpValue::Value(v)),
        (Some((f, fi)), Value::Null) => {
            let which = match fi {
                Idx::All | Idx::None => None,
                i => Some(at(*i)),
            };
            xs.remove_field(&x.root, at(x.ridx), f, which);
        }
        (Some((f, Idx::None)), v) if x.ridx == Idx::None => {
            xs.push(&x.root, XavpValue::Fields(vec![(f.clone(), v)]));
        }
        (Some((f, Idx::None)), v) => {
            let r = at(x.ridx);
            if !xs.add_field(&x.root, r, f, v.clone()) {
                if r == 0 && xs.count(&x.root) == 0 {
                    xs.push(&x.root, XavpValue::Fields(vec![(f.clone(), v)]));
                } else {
                    return Err(format!("$xavp({}[{r}]) does not exist", x.root));
                }
            }
        }
        (Some((f, fi)), v) => {
            if !xs.set_field(&x.root, at(x.ridx), f, at(*fi), v) {
                return Err(format!(
                    "$xavp({}[{}]=>{f}[{}]) does not exist",
                    x.root,
                    at(x.ridx),
                    at(*fi)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse("r[1]=>f[*]"),
            Ok(XName {
                root: "r".into(),
                ridx: Idx::At(1),
                field: Some(("f".into(), Idx::All))
            })
        );
        assert_eq!(parse("r").map(|x| x.field), Ok(None));
        assert!(parse("=>f").is_err());
        assert!(parse("r[x]").is_err());
        assert!(parse("r=>").is_err());
    }
}
