//! The AVP operations: `is_avp_set`, `avp_check`, `avp_copy`, `avp_op`,
//! `avp_delete`, `avp_pushto`, as Kamailio's avpops does them.

use sr_sdk::prelude::*;

/// An operand: a variable read at run time, an integer (`i:5`) or a
/// string (`s:x`, or text as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A pseudo-variable.
    Pv(String),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}

/// `op/value[/flags]` split: the operator, the operand and the flags
/// (letters of `flag_set` after a last `/`).
pub fn op_value(s: &str, flag_set: &str) -> Option<(String, Operand, String)> {
    let (op, rest) = s.split_once('/').map_or((s, ""), |(o, r)| (o, r));
    let (value, flags) = match rest.rsplit_once('/') {
        Some((v, f)) if !f.is_empty() && f.chars().all(|c| flag_set.contains(c)) => (v, f),
        _ => (rest, ""),
    };
    let operand = if value.starts_with('$') {
        Operand::Pv(value.to_string())
    } else if let Some(i) = value.strip_prefix("i:") {
        Operand::Int(i.trim().parse().ok()?)
    } else {
        Operand::Str(value.strip_prefix("s:").unwrap_or(value).to_string())
    };
    Some((op.trim().to_ascii_lowercase(), operand, flags.to_string()))
}

fn operand_value(ctx: &mut Ctx<'_>, o: &Operand) -> Value<'static> {
    match o {
        Operand::Pv(p) => ctx.core.pv_get(ctx.msg, p).unwrap_or(Value::Null),
        Operand::Int(i) => Value::Int(*i),
        Operand::Str(s) => Value::str(s.clone()),
    }
}

fn int_of(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Null => None,
    }
}

/// Whether `l op r` holds.
pub fn check(op: &str, l: &Value<'_>, r: &Value<'_>, nocase: bool) -> bool {
    if op == "re" {
        let pat = if nocase {
            format!("(?i){}", r.as_str())
        } else {
            r.as_str().into_owned()
        };
        return regex::Regex::new(&pat).is_ok_and(|re| re.is_match(&l.as_str()));
    }
    if matches!(op, "and" | "or" | "xor") {
        let (Some(a), Some(b)) = (int_of(l), int_of(r)) else {
            return false;
        };
        return match op {
            "and" => a & b != 0,
            "or" => a | b != 0,
            _ => a ^ b != 0,
        };
    }
    let ord = match (l, r) {
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        _ if nocase => l
            .as_str()
            .to_ascii_lowercase()
            .cmp(&r.as_str().to_ascii_lowercase()),
        _ => l.as_str().cmp(&r.as_str()),
    };
    use std::cmp::Ordering::*;
    match op {
        "eq" => ord == Equal,
        "ne" => ord != Equal,
        "lt" => ord == Less,
        "le" => ord != Greater,
        "gt" => ord == Greater,
        "ge" => ord != Less,
        _ => false,
    }
}

/// `avp_check(name, op/value[/flags])`.
pub fn avp_check(ctx: &mut Ctx<'_>, name: &str, spec: &str) -> i32 {
    let Some((op, operand, flags)) = op_value(spec, "gi") else {
        lm_err!("avp_check: bad operation '{spec}'");
        return -1;
    };
    let right = operand_value(ctx, &operand);
    let values: Vec<Value<'static>> = if flags.contains('g') {
        ctx.msg.avps.all(name).cloned().collect()
    } else {
        ctx.msg.avps.get(name, 0).cloned().into_iter().collect()
    };
    let nocase = flags.contains('i');
    if values.iter().any(|v| check(&op, v, &right, nocase)) {
        1
    } else {
        -1
    }
}

/// `is_avp_set(name[/e|/s|/n])`.
pub fn is_set(ctx: &mut Ctx<'_>, name: &str, flags: &str) -> i32 {
    let v = ctx.msg.avps.get(name, 0);
    let ok = match (v, flags) {
        (None, _) => false,
        (Some(v), f) if f.contains('s') => matches!(v, Value::Str(_)),
        (Some(v), f) if f.contains('n') => matches!(v, Value::Int(_)),
        (Some(_), _) => true,
    };
    if ok {
        1
    } else {
        -1
    }
}

/// `avp_copy(src, dst[/g][/d])`: the newest value (all with `g`, newest
/// first, so that their order turns round), the source deleted with `d`.
pub fn copy(ctx: &mut Ctx<'_>, src: &str, dst: &str, flags: &str) -> i32 {
    let mut values: Vec<Value<'static>> = if flags.contains('g') {
        ctx.msg.avps.all(src).cloned().collect()
    } else {
        ctx.msg.avps.get(src, 0).cloned().into_iter().collect()
    };
    if values.is_empty() {
        return -1;
    }
    // Newest first, each pushed on top (so that the oldest ends newest),
    // as Kamailio's.
    for v in values.drain(..) {
        ctx.msg.avps.push(dst, v);
    }
    if flags.contains('d') {
        if flags.contains('g') {
            ctx.msg.avps.remove_all(src);
        } else {
            ctx.msg.avps.remove_newest(src);
        }
    }
    1
}

/// `avp_op(name, op/value[/flags])`: each value of the AVP, newest first,
/// gives a result pushed on it (as Kamailio's); with `d` the values
/// operated on go.
pub fn op(ctx: &mut Ctx<'_>, name: &str, spec: &str) -> i32 {
    let Some((op, operand, flags)) = op_value(spec, "gd") else {
        lm_err!("avp_op: bad operation '{spec}'");
        return -1;
    };
    let right = int_of(&operand_value(ctx, &operand));
    let values: Vec<Value<'static>> = ctx.msg.avps.all(name).cloned().collect();
    if values.is_empty() {
        return -1;
    }
    let mut results = Vec::new();
    for v in &values {
        let Some(a) = int_of(v) else {
            continue;
        };
        let b = right.unwrap_or(0);
        let r = match op.as_str() {
            "add" => a.wrapping_add(b),
            "sub" => a.wrapping_sub(b),
            "mul" => a.wrapping_mul(b),
            "div" if b != 0 => a / b,
            "mod" if b != 0 => a % b,
            "and" => a & b,
            "or" => a | b,
            "xor" => a ^ b,
            "not" => !a,
            "div" | "mod" => {
                lm_err!("avp_op: division by zero");
                return -1;
            }
            _ => {
                lm_err!("avp_op: unknown operation '{op}'");
                return -1;
            }
        };
        results.push(Value::Int(r));
    }
    if flags.contains('d') {
        ctx.msg.avps.remove_all(name);
    }
    for r in results {
        ctx.msg.avps.push(name, r);
    }
    1
}

/// `avp_delete(name[/g])`: the newest value, or all.
pub fn delete(ctx: &mut Ctx<'_>, name: &str, flags: &str) -> i32 {
    if ctx.msg.avps.get(name, 0).is_none() {
        return -1;
    }
    if flags.contains('g') {
        ctx.msg.avps.remove_all(name);
    } else {
        ctx.msg.avps.remove_newest(name);
    }
    1
}

/// `uri` with its user (or host) replaced.
fn replace_part(uri: &str, part: &str, value: &str) -> Option<String> {
    let u = sr_sdk::sip_msg::Uri::parse(uri).ok()?;
    let scheme_end = uri.find(':')? + 1;
    let rest = &uri[scheme_end..];
    let (userinfo, hostpart) = match rest.find('@') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => ("", rest),
    };
    let _ = u;
    let scheme = &uri[..scheme_end];
    Some(match part {
        "username" => {
            let pass = userinfo.split_once(':').map(|(_, p)| p);
            match (value.is_empty(), pass) {
                (true, _) => format!("{scheme}{hostpart}"),
                (false, Some(p)) => format!("{scheme}{value}:{p}@{hostpart}"),
                (false, None) => format!("{scheme}{value}@{hostpart}"),
            }
        }
        _ => {
            let host_end = hostpart
                .find([':', ';', '?', '>'])
                .unwrap_or(hostpart.len());
            let at = if userinfo.is_empty() { "" } else { "@" };
            format!("{scheme}{userinfo}{at}{value}{}", &hostpart[host_end..])
        }
    })
}

/// `avp_pushto(dest, name[/g])`: `$ru`, `$ru/username`, `$ru/domain`,
/// `$du`, or `$br` (a branch per value with `g`).
pub fn pushto(ctx: &mut Ctx<'_>, dest: &str, name: &str, flags: &str) -> i32 {
    let values: Vec<String> = if flags.contains('g') {
        ctx.msg
            .avps
            .all(name)
            .map(|v| v.as_str().into_owned())
            .collect()
    } else {
        ctx.msg
            .avps
            .get(name, 0)
            .map(|v| v.as_str().into_owned())
            .into_iter()
            .collect()
    };
    let Some(first) = values.first().cloned() else {
        return -1;
    };
    let dest = dest.trim();
    let set = |ctx: &mut Ctx<'_>, pv: &str, v: String| {
        ctx.core.pv_set(ctx.msg, pv, Value::str(v)).is_ok()
    };
    let ok = match dest {
        "$ru" => set(ctx, "$ru", first),
        "$du" => set(ctx, "$du", first),
        "$ru/username" | "$ru/domain" => {
            let part = if dest.ends_with("username") {
                "username"
            } else {
                "domain"
            };
            match replace_part(ctx.msg.ruri(), part, &first) {
                Some(u) => set(ctx, "$ru", u),
                None => false,
            }
        }
        "$br" => {
            for v in values.into_iter().rev() {
                ctx.msg.branches.push(sr_sdk::Branch {
                    uri: v,
                    ..Default::default()
                });
            }
            true
        }
        _ => {
            lm_err!("avp_pushto: unknown destination '{dest}'");
            false
        }
    };
    if ok {
        1
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse() {
        assert_eq!(
            op_value("eq/s:one/g", "gi"),
            Some(("eq".into(), Operand::Str("one".into()), "g".into()))
        );
        assert_eq!(
            op_value("re/^t.o$", "gi"),
            Some(("re".into(), Operand::Str("^t.o$".into()), String::new()))
        );
        assert_eq!(
            op_value("add/i:10", "gd"),
            Some(("add".into(), Operand::Int(10), String::new()))
        );
        assert_eq!(
            op_value("eq/$avp(y)", "gi"),
            Some(("eq".into(), Operand::Pv("$avp(y)".into()), String::new()))
        );
        assert!(check("gt", &Value::Int(4), &Value::Int(3), false));
        assert!(check("eq", &Value::str("two"), &Value::str("TWO"), true));
        assert!(!check("eq", &Value::str("two"), &Value::str("TWO"), false));
        assert!(check("re", &Value::str("two"), &Value::str("^t.o$"), false));
        assert_eq!(
            replace_part("sip:x@127.0.0.1;transport=udp", "username", "two").as_deref(),
            Some("sip:two@127.0.0.1;transport=udp")
        );
        assert_eq!(
            replace_part("sip:x@h:5060", "domain", "ex.test").as_deref(),
            Some("sip:x@ex.test:5060")
        );
    }
}
