//! debugger's dumps to the log: `dbg_sip_msg([level[, facility]])` (the
//! message as it would be sent now, with the script's changes applied)
//! and `dbg_pv_dump([mask[, level]])` (the message's AVPs, the worker's
//! script variables and the message's XAVPs as one JSON object).

use sr_sdk::log;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::edit::ApplyOptions;
use sr_sdk::xavp::XavpValue;

/// A level given by name (`L_ERR`, ...) or number; `default` otherwise.
pub fn level(text: Option<&str>, default: i32) -> i32 {
    let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return default;
    };
    match t.to_ascii_uppercase().as_str() {
        "L_ALERT" => log::L_ALERT,
        "L_BUG" => log::L_BUG,
        "L_CRIT" => log::L_CRIT,
        "L_ERR" => log::L_ERR,
        "L_WARN" => log::L_WARN,
        "L_NOTICE" => log::L_NOTICE,
        "L_INFO" => log::L_INFO,
        "L_DBG" => log::L_DBG,
        n => n.parse().unwrap_or(default),
    }
}

/// `dbg_sip_msg`: the message with the edits made so far, between two
/// marker lines. 1.
pub fn sip_msg(ctx: &mut Ctx<'_>, level: i32) -> i32 {
    let m = ctx.msg.msg();
    let out = ctx.msg.edits.apply(m, ApplyOptions::default());
    let text = String::from_utf8_lossy(&out);
    log::write(
        level,
        "debugger",
        format_args!(
            "\n------------------------- START OF SIP message debug --------------------------\n{}\n-------------------------- END OF SIP message debug ---------------------------",
            text.trim_end()
        ),
    );
    1
}

fn json_of(v: &Value<'_>) -> Json {
    match v {
        Value::Int(i) => json!(i),
        Value::Null => Json::Null,
        other => json!(other.as_str()),
    }
}

/// `dbg_pv_dump`: AVPs (mask 2), script variables (4) and XAVPs (8) as
/// one JSON object, written at `level`; `$null` values only with mask 1.
/// 1.
pub fn pv_dump(ctx: &mut Ctx<'_>, mask: i64, level: i32) -> i32 {
    let mut out = JsonMap::new();
    let keep_null = mask & 1 != 0;
    if mask & 2 != 0 {
        let names: Vec<String> = ctx
            .msg
            .avps
            .names()
            .into_iter()
            .map(str::to_string)
            .collect();
        for n in names {
            let vals: Vec<Json> = ctx.msg.avps.all(&n).map(json_of).collect();
            out.insert(format!("$avp({n})"), Json::Array(vals));
        }
    }
    if mask & 4 != 0 {
        for (n, v) in ctx.core.script_vars(None) {
            if keep_null || !matches!(v, Value::Null) {
                out.insert(format!("$var({n})"), json_of(&v));
            }
        }
    }
    if mask & 8 != 0 {
        // (XAVUs and XAVIs, kept among the XAVPs under names a script
        // cannot write, are not XAVPs.)
        let names: Vec<String> = ctx
            .msg
            .xavps
            .names()
            .filter(|n| !n.starts_with('\u{1}'))
            .map(str::to_string)
            .collect();
        for n in names {
            let mut recs = Vec::new();
            for i in 0..ctx.msg.xavps.count(&n) {
                match ctx.msg.xavps.get(&n, i) {
                    Some(XavpValue::Fields(f)) => {
                        let mut o = JsonMap::new();
                        // (A field set several times: its values, newest
                        // first.)
                        for (k, v) in f {
                            match o.get_mut(k) {
                                Some(Json::Array(a)) => a.push(json_of(v)),
                                Some(prev) => *prev = json!([prev.take(), json_of(v)]),
                                None => {
                                    o.insert(k.clone(), json_of(v));
                                }
                            }
                        }
                        recs.push(Json::Object(o));
                    }
                    Some(XavpValue::Value(v)) => recs.push(json_of(v)),
                    None => {}
                }
            }
            out.insert(format!("$xavp({n})"), Json::Array(recs));
        }
    }
    log::write(level, "debugger", format_args!("{}", Json::Object(out)));
    1
}

#[cfg(test)]
mod tests {
    use super::level;
    use sr_sdk::log;

    #[test]
    fn levels() {
        assert_eq!(level(Some("L_INFO"), log::L_ERR), log::L_INFO);
        assert_eq!(level(Some("l_dbg"), log::L_ERR), log::L_DBG);
        assert_eq!(level(Some("1"), log::L_ERR), 1);
        assert_eq!(level(None, log::L_ERR), log::L_ERR);
        assert_eq!(level(Some("nonsense"), log::L_ERR), log::L_ERR);
    }
}
