//! Writing `$branch(attr)` (Kamailio's `pv_set_branchx`): a field of
//! destination-set entry `[index]` (the first without one; negative counts
//! from the end). `uri` set to `$null` or "" drops the entry; `dst_uri`,
//! `path` and `send_socket` set to `$null` clear it, `q` and `flags` take
//! integers (`$null`: none, 0); `count`, `ruid` and `location_ua` take
//! nothing (the assignment is accepted and changes nothing).

use sr_sdk::{SipMsg, Value};

/// Kamailio's `MAX_URI_SIZE`: longer URIs are refused.
const MAX_URI: usize = 1024;

fn text(v: &Value<'_>, what: &str) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Str(s) if s.is_empty() => Ok(None),
        Value::Str(s) if s.len() > MAX_URI - 1 => Err(format!("too long {what}: {s}")),
        Value::Str(s) => Ok(Some(s.to_string())),
        Value::Int(_) => Err(format!("str value required to set branch {what}")),
    }
}

fn int(v: &Value<'_>, what: &str) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Int(i) => Ok(Some(*i)),
        Value::Str(_) => Err(format!("int value required to set branch {what}")),
    }
}

/// Sets `field` of the branch at `index`.
pub fn set(m: &mut SipMsg, field: &str, v: Value<'_>, index: Option<i64>) -> Result<(), String> {
    if index == Some(i64::MIN) {
        return Err("$branch: index [*] is not supported".into());
    }
    let n = m.branches.len() as i64;
    let i = match index.unwrap_or(0) {
        i if i < 0 && n + i >= 0 => n + i,
        i if i < 0 => return Err(format!("$branch: index too low: {i} ({n})")),
        i => i,
    };
    let Some(b) = usize::try_from(i).ok().and_then(|i| m.branches.get_mut(i)) else {
        return Err("$branch: no branch to operate on".into());
    };
    match field {
        "uri" => match text(&v, "uri")? {
            Some(u) => b.uri = u,
            None => {
                m.branches.remove(i as usize);
            }
        },
        "dst_uri" => b.dst_uri = text(&v, "dst uri")?,
        "path" => b.path = text(&v, "path")?,
        "q" => {
            b.q = match int(&v, "q")? {
                // Kamailio's q: thousandths, -1 (or none) unspecified.
                Some(q) if (0..=1000).contains(&q) => Some(q as u16),
                _ => None,
            }
        }
        "send_socket" => {
            let s = match &v {
                Value::Null => None,
                Value::Str(s) => Some(s.to_string()),
                Value::Int(_) => return Err("str value required to set branch send sock".into()),
            };
            if let Some(s) = &s {
                sr_sdk::socket_addr(s)
                    .ok_or_else(|| format!("$branch(send_socket): invalid socket '{s}'"))?;
            }
            b.socket = s;
        }
        "flags" => b.flags = int(&v, "flags")?.unwrap_or(0) as u32,
        // count, ruid, location_ua, instance: nothing to set.
        _ => {}
    }
    Ok(())
}
