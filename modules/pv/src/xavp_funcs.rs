//! pv's functions on XAVPs: `xavp_params_explode`/`_implode` (and the
//! `xavu_` ones), `xavp_slist_explode`, `xavp_child_seti`/`_sets`,
//! `xavp_rm`, `xavp_child_rm` (and the `xavi_` ones), `xavp_copy`, with
//! Kamailio's order of fields and return codes.

use crate::xavp::{self, Flavor};
use sr_sdk::exports::PvName;
use sr_sdk::prelude::*;
use sr_sdk::xavp::XavpValue;

/// Where a flavor keeps root `name` (see [`crate::xavp`]).
fn root_of(flavor: Flavor, name: &str) -> Option<String> {
    xavp::parse_as(flavor, name).ok().map(|x| x.root)
}

/// `name=value;...` split as SIP header parameters: names and values
/// trimmed, a parameter without `=` an empty value, empty ones skipped.
pub fn params(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|p| {
            let p = p.trim();
            if p.is_empty() {
                return None;
            }
            Some(match p.split_once('=') {
                Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
                None => (p.to_string(), String::new()),
            })
        })
        .collect()
}

/// `xavp_params_explode(params, name)`: a new root holding each parameter
/// as a field (added in order, so the last one is read first).
pub fn params_explode(ctx: &mut Ctx<'_>, flavor: Flavor, text: &str, name: &str) -> i32 {
    let Some(root) = root_of(flavor, name) else {
        return -1;
    };
    let ps = params(text);
    if ps.is_empty() {
        return -1;
    }
    if flavor == Flavor::Xavu {
        // One value per name: each parameter set in the existing root.
        let xs = &mut ctx.msg.xavps;
        if !matches!(xs.get(&root, 0), Some(XavpValue::Fields(_))) {
            xs.remove(&root, None);
            xs.push(&root, XavpValue::Fields(Vec::new()));
        }
        for (n, v) in ps {
            xs.remove_field(&root, 0, &n, None);
            xs.add_field(&root, 0, &n, Value::from(v));
        }
        return 1;
    }
    // Read in the order written (the first parameter is the newest).
    let fields: Vec<(String, Value<'static>)> =
        ps.into_iter().map(|(n, v)| (n, Value::from(v))).collect();
    ctx.msg.xavps.push(&root, XavpValue::Fields(fields));
    1
}

/// `xavp_params_implode(name, pv)`: the first root's fields as
/// `name=value;...` (integers unsigned), written to `pv`.
pub fn params_implode(ctx: &mut Ctx<'_>, flavor: Flavor, name: &str, out: &Fixed) -> i32 {
    let Some(root) = root_of(flavor, name) else {
        return -1;
    };
    let Some(XavpValue::Fields(fs)) = ctx.msg.xavps.get(&root, 0) else {
        return -1;
    };
    let mut s = String::new();
    for (n, v) in fs {
        match v {
            Value::Str(t) => s.push_str(&format!("{n}={t};")),
            Value::Int(i) => s.push_str(&format!("{n}={};", *i as u32)),
            Value::Null => {}
        }
    }
    let Fixed::Pv(pv) = out else {
        return -1;
    };
    match pv.assign(ctx, Value::from(s)) {
        Ok(()) => 1,
        Err(_) => -1,
    }
}

/// `xavp_slist_explode(list, separators, mode, name)`: the tokens between
/// any of `separators` (trimmed with mode `t`; empty ones skipped) as the
/// values of field `v` of a new root, the first token at index 0.
pub fn slist_explode(ctx: &mut Ctx<'_>, list: &str, seps: &str, mode: &str, name: &str) -> i32 {
    let trim = mode.contains('t');
    // Fields are kept newest first: the first token is `v[0]`.
    let fields: Vec<(String, Value<'static>)> = list
        .split(|c: char| seps.contains(c))
        .map(|t| if trim { t.trim() } else { t })
        .filter(|t| !t.is_empty())
        .map(|t| ("v".to_string(), Value::from(t.to_string())))
        .collect();
    if fields.is_empty() {
        return -1;
    }
    ctx.msg.xavps.push(name, XavpValue::Fields(fields));
    1
}

/// `xavp_child_seti`/`_sets(root, child, value)`: the first value of
/// `$xavp(root=>child)` replaced, or added (to a new root when there is
/// none); -1 when the root holds a single value.
pub fn child_set(
    ctx: &mut Ctx<'_>,
    flavor: Flavor,
    rname: &str,
    cname: &str,
    v: Value<'static>,
) -> i32 {
    let Some(root) = root_of(flavor, rname) else {
        return -1;
    };
    let cname = if flavor == Flavor::Xavi {
        cname.to_ascii_lowercase()
    } else {
        cname.to_string()
    };
    let xs = &mut ctx.msg.xavps;
    match xs.get(&root, 0) {
        None => {
            xs.push(&root, XavpValue::Fields(vec![(cname, v)]));
            1
        }
        Some(XavpValue::Fields(_)) => {
            if !xs.set_field(&root, 0, &cname, 0, v.clone()) {
                xs.add_field(&root, 0, &cname, v);
            }
            1
        }
        // A root holding a single value: a new root takes the field
        // (Kamailio answers 1 here too).
        Some(XavpValue::Value(_)) => {
            xs.push(&root, XavpValue::Fields(vec![(cname, v)]));
            1
        }
    }
}

/// `xavp_rm(root)` / `xavp_child_rm(root, child)`: as assigning `$null`
/// to `$xavp(root)` / `$xavp(root=>child)`.
pub fn remove(ctx: &mut Ctx<'_>, flavor: Flavor, rname: &str, cname: Option<&str>) -> i32 {
    let inner = match cname {
        Some(c) => format!("{rname}=>{c}"),
        None => rname.to_string(),
    };
    let name = PvName {
        inner: Some(inner),
        index: None,
    };
    let r = match flavor {
        Flavor::Xavp => xavp::set(ctx, &name, Value::Null),
        f => xavp::set_flavor(f, ctx, &name, Value::Null),
    };
    if r.is_ok() {
        1
    } else {
        -1
    }
}

/// `xavp_copy(src, index, dst[, dst_index])`: the `index`-th root `src`
/// copied to the end of the `dst` stack, or in place of its
/// `dst_index`-th entry (-1 when there is none).
pub fn copy(ctx: &mut Ctx<'_>, src: &str, sidx: i64, dst: &str, didx: Option<i64>) -> i32 {
    let Ok(sidx) = usize::try_from(sidx) else {
        return -1;
    };
    let Some(v) = ctx.msg.xavps.get(src, sidx).cloned() else {
        return -1;
    };
    let xs = &mut ctx.msg.xavps;
    match didx {
        // Appended: after the oldest `dst` (the end of its stack).
        None => {
            xs.push_last(dst, v);
            1
        }
        Some(d) => {
            let Ok(d) = usize::try_from(d) else {
                return -1;
            };
            if xs.get(dst, d).is_none() {
                return -1;
            }
            xs.replace(dst, d, v);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::params;

    #[test]
    fn parameters_split_as_sip_parameters() {
        assert_eq!(
            params("a=b; c = d;;e"),
            vec![
                ("a".to_string(), "b".to_string()),
                ("c".to_string(), "d".to_string()),
                ("e".to_string(), String::new())
            ]
        );
    }
}
