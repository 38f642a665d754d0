//! Module `jansson` (Kamailio's): JSON documents held in script variables.
//! `jansson_get` reads a value at a JSON path, `jansson_set` and
//! `jansson_append` change a document, `jansson_array_size` counts an
//! array. Values come out as Kamailio gives them: strings bare, integers
//! as integers (text beyond 32 bits), reals as `%.15g` text, booleans as
//! 1 and 0, objects and arrays as compact JSON.
#![forbid(unsafe_code)]

pub mod json;
pub mod path;

use json::Json;
use sr_sdk::fixup::{Arg, FixupEnv, FixupFn};
use sr_sdk::prelude::*;
use std::sync::Arc;

/// The script value of a JSON value (Kamailio's `jansson_to_val`).
pub fn to_value(v: &Json) -> Value<'static> {
    match v {
        Json::Obj(_) | Json::Arr(_) => Value::Str(v.dump().into()),
        Json::Str(s) => Value::Str(s.clone().into()),
        Json::Bool(b) => Value::Int(i64::from(*b)),
        Json::Real(r) => Value::Str(json::format_g(*r, 15).into()),
        Json::Int(i) if i32::try_from(*i).is_ok() => Value::Int(*i),
        Json::Int(i) => Value::Str(i.to_string().into()),
        Json::Null => Value::Null,
    }
}

/// Parameters `0..n-1` as strings (with variables), the last a writable
/// variable.
fn last_is_pvar(n: usize) -> Option<FixupFn> {
    Some(Arc::new(move |env: &dyn FixupEnv, i: usize, arg: &Arg| {
        if i + 1 == n {
            sr_sdk::fixup::pvar(env, i, arg)
        } else {
            sr_sdk::fixup::spve(env, i, arg)
        }
    }))
}

fn assign(ctx: &mut Ctx<'_>, dst: &Fixed, v: Value<'_>) -> bool {
    match dst {
        Fixed::Pv(p) => match p.assign(ctx, v) {
            Ok(()) => true,
            Err(e) => {
                lm_err!("jansson: cannot set the result: {e}");
                false
            }
        },
        _ => false,
    }
}

fn load(src: &str) -> Option<Json> {
    match json::parse(src) {
        Ok(j) => Some(j),
        Err(e) => {
            lm_err!("jansson: failed to parse: {src}: {e}");
            None
        }
    }
}

/// `jansson_get(path, src, dst)` and `jansson_pv_get`; with `swapped`,
/// Kamailio 5.6's `jansson_get_field(src, path, dst)` (a path too).
fn get(ctx: &mut Ctx<'_>, a: &[Fixed], swapped: bool) -> i32 {
    let (pi, si) = if swapped { (1, 0) } else { (0, 1) };
    let p = a[pi].str(ctx).into_owned();
    let src = a[si].str(ctx).into_owned();
    let Some(j) = load(&src) else { return -1 };
    let Some(v) = path::get(&j, &p) else {
        return -1;
    };
    if assign(ctx, &a[2], to_value(v)) {
        1
    } else {
        -1
    }
}

/// The value `jansson_set` inserts, from its type name and text.
fn typed(kind: &str, text: &str) -> Result<Json, String> {
    match kind {
        "object" | "obj" => match json::parse(text) {
            Ok(v @ Json::Obj(_)) => Ok(v),
            Ok(_) => Err("value to add is not an object".into()),
            Err(e) => Err(format!("parsing failed for \"{text}\": {e}")),
        },
        "array" => match json::parse(text) {
            Ok(v @ Json::Arr(_)) => Ok(v),
            Ok(_) => Err("value to add is not an array".into()),
            Err(e) => Err(format!("parsing failed for \"{text}\": {e}")),
        },
        "string" | "str" => Ok(Json::Str(text.to_string())),
        "integer" | "int" => c_strtoll(text)
            .map(Json::Int)
            .ok_or_else(|| format!("parsing int failed for \"{text}\"")),
        "real" => c_strtod(text)
            .map(Json::Real)
            .ok_or_else(|| format!("parsing real failed for \"{text}\"")),
        "true" => Ok(Json::Bool(true)),
        "false" => Ok(Json::Bool(false)),
        "null" => Ok(Json::Null),
        _ => Err("unrecognized input type".into()),
    }
}

/// C's `strtoll(s, &end, 10)` with `end` required at the end (an empty
/// text reads as 0, as in C); saturating like C on overflow.
fn c_strtoll(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if t.is_empty() {
        return s.is_empty().then_some(0);
    }
    let (neg, digits) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i128 = 0;
    for b in digits.bytes() {
        v = (v * 10 + i128::from(b - b'0')).min(i128::from(i64::MAX) + 1);
    }
    let v = if neg { -v } else { v };
    Some(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// C's `strtod` with the end required at the end of the text.
fn c_strtod(s: &str) -> Option<f64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if t.is_empty() {
        return s.is_empty().then_some(0.0);
    }
    match t.to_ascii_lowercase().trim_start_matches(['+', '-']) {
        "inf" | "infinity" | "nan" => return None,
        _ => {}
    }
    t.parse::<f64>().ok()
}

/// `jansson_set(type, path, value, result)` and `jansson_append`.
fn set(ctx: &mut Ctx<'_>, a: &[Fixed], append: bool) -> i32 {
    let kind = a[0].str(ctx).into_owned();
    let p = a[1].str(ctx).into_owned();
    let text = a[2].str(ctx).into_owned();
    let value = match typed(&kind, &text) {
        Ok(v) => v,
        Err(e) => {
            lm_err!("jansson: {e}");
            return -1;
        }
    };
    let Fixed::Pv(pv) = &a[3] else { return -1 };
    // The document: the variable's text, `{}` when it holds none.
    let doc = match pv.eval(ctx) {
        Value::Str(s) => s.into_owned(),
        _ => "{}".to_string(),
    };
    let Some(mut j) = load(&doc) else { return -1 };
    if let Err(e) = path::set(&mut j, &p, value, append) {
        lm_err!("jansson: {e} (path '{p}')");
        return -1;
    }
    if assign(ctx, &a[3], Value::Str(j.dump().into())) {
        1
    } else {
        -1
    }
}

/// `jansson_array_size(path, src, dst)`.
fn array_size(ctx: &mut Ctx<'_>, a: &[Fixed]) -> i32 {
    let p = a[0].str(ctx).into_owned();
    let src = a[1].str(ctx).into_owned();
    let Some(j) = load(&src) else { return -1 };
    match path::get(&j, &p) {
        Some(Json::Arr(v)) => {
            if assign(ctx, &a[2], Value::Int(v.len() as i64)) {
                1
            } else {
                -1
            }
        }
        Some(_) => {
            lm_err!("jansson: value at {p} is not an array");
            -1
        }
        None => {
            lm_err!("jansson: failed to find {p} in json");
            -1
        }
    }
}

/// `jansson_xdecode(json, xavp)`: each object (the document, or each
/// item of a top-level array) becomes an entry of the XAVP, its members
/// fields (newest first, as Kamailio adds them); nested objects and
/// arrays as JSON text.
fn xdecode(ctx: &mut Ctx<'_>, a: &[Fixed]) -> i32 {
    let src = a[0].str(ctx).into_owned();
    let name = a[1].str(ctx).into_owned();
    let Some(j) = load(&src) else { return -1 };
    let row = |v: &Json| {
        let mut fields: Vec<(String, Value<'static>)> = Vec::new();
        if let Json::Obj(m) = v {
            for (k, x) in m {
                fields.insert(0, (k.clone(), to_value(x)));
            }
        }
        sr_sdk::xavp::XavpValue::Fields(fields)
    };
    match &j {
        Json::Obj(_) => ctx.msg.xavps.push(&name, row(&j)),
        Json::Arr(items) => {
            for it in items {
                ctx.msg.xavps.push(&name, row(it));
            }
        }
        _ => return -1,
    }
    1
}

/// `jansson_xencode(xavp, pv)`: the newest entry of the XAVP as a JSON
/// object, its fields in their order (newest first), written as
/// `json_dumps(..., 0)` writes it.
fn xencode(ctx: &mut Ctx<'_>, a: &[Fixed]) -> i32 {
    let name = a[0].str(ctx).into_owned();
    let obj = match ctx.msg.xavps.get(&name, 0) {
        Some(sr_sdk::xavp::XavpValue::Fields(f)) => {
            let mut o = Json::Obj(Vec::new());
            for (k, v) in f {
                let jv = match v {
                    Value::Null => Json::Null,
                    Value::Int(i) => Json::Int(*i),
                    Value::Str(s) => Json::Str(s.to_string()),
                };
                o.set(k, jv);
            }
            o
        }
        _ => return -1,
    };
    if assign(ctx, &a[1], Value::Str(obj.dump_spaced().into())) {
        1
    } else {
        -1
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    ModuleDef::new("jansson")
        .cmd("jansson_get", 3, RouteType::ANY, last_is_pvar(3), |c, a| {
            get(c, a, false)
        })
        .cmd(
            "jansson_pv_get",
            3,
            RouteType::ANY,
            last_is_pvar(3),
            |c, a| get(c, a, false),
        )
        .cmd(
            "jansson_get_field",
            3,
            RouteType::ANY,
            last_is_pvar(3),
            |c, a| get(c, a, true),
        )
        .cmd("jansson_set", 4, RouteType::ANY, last_is_pvar(4), |c, a| {
            set(c, a, false)
        })
        .cmd(
            "jansson_append",
            4,
            RouteType::ANY,
            last_is_pvar(4),
            |c, a| set(c, a, true),
        )
        .cmd(
            "jansson_array_size",
            3,
            RouteType::ANY,
            last_is_pvar(3),
            array_size,
        )
        .cmd(
            "jansson_xdecode",
            2,
            RouteType::ANY,
            Some(sr_sdk::fixup::f(sr_sdk::fixup::spve)),
            xdecode,
        )
        .cmd(
            "jansson_xencode",
            2,
            RouteType::ANY,
            last_is_pvar(2),
            xencode,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_out_as_kamailio_gives_them() {
        let j = json::parse(
            r#"{"s":"x","t":true,"f":false,"r":2.5,"i":7,"big":5000000000,"n":null,"o":{"a":[1]}}"#,
        )
        .unwrap();
        let v = |k: &str| to_value(j.get(k).unwrap());
        assert_eq!(v("s"), Value::Str("x".into()));
        assert_eq!(v("t"), Value::Int(1));
        assert_eq!(v("f"), Value::Int(0));
        assert_eq!(v("r"), Value::Str("2.5".into()));
        assert_eq!(v("i"), Value::Int(7));
        assert_eq!(v("big"), Value::Str("5000000000".into()));
        assert_eq!(v("n"), Value::Null);
        assert_eq!(v("o"), Value::Str("{\"a\":[1]}".into()));
    }

    #[test]
    fn typed_values_follow_the_c_conversions() {
        assert_eq!(typed("int", "42"), Ok(Json::Int(42)));
        assert_eq!(typed("int", ""), Ok(Json::Int(0)));
        assert!(typed("int", "4x").is_err());
        assert_eq!(
            typed("int", "99999999999999999999"),
            Ok(Json::Int(i64::MAX))
        );
        assert_eq!(typed("real", "2.5"), Ok(Json::Real(2.5)));
        assert!(typed("real", "pi").is_err());
        assert!(typed("obj", "[1]").is_err());
        assert!(typed("array", "{}").is_err());
        assert!(typed("boolean", "1").is_err());
        assert_eq!(typed("null", "ignored"), Ok(Json::Null));
    }
}
