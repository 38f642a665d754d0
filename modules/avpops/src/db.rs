//! `avp_db_load`, `avp_db_store`, `avp_db_delete`: AVPs kept per user in
//! `usr_preferences` (uuid, username, domain, attribute, type, value),
//! found by a source as Kamailio's avpops finds them.

use crate::names::attribute;
use crate::Avpops;
use sr_sdk::db::{Cond, DbValue};
use sr_sdk::prelude::*;

/// How a source names the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SIP URI: its user, and its host with `use_domain`.
    Uri,
    /// Its user part alone.
    Username,
    /// Its host part alone.
    Domain,
    /// A UUID.
    Uuid,
}

/// Splits a source (`$fu`, `$ru/domain`, `$avp(uuid)`, `u1`) into what is
/// read and how it is taken: `/username`, `/domain`, `/uri`, `/uuid`, else
/// a UUID for an AVP or a constant and a URI for another variable.
pub fn source(s: &str) -> (String, Kind) {
    let s = s.trim();
    let (what, flag) = match s.rsplit_once('/') {
        Some((w, f)) if matches!(f, "username" | "domain" | "uri" | "uuid") => (w, Some(f)),
        _ => (s, None),
    };
    let kind = match flag {
        Some("username") => Kind::Username,
        Some("domain") => Kind::Domain,
        Some("uri") => Kind::Uri,
        Some(_) => Kind::Uuid,
        None if what.starts_with("$avp(") || !what.starts_with('$') => Kind::Uuid,
        None => Kind::Uri,
    };
    (what.to_string(), kind)
}

/// The conditions that select a user's rows (`None` when the source's
/// value cannot be read).
fn user_conds(a: &Avpops, ctx: &mut Ctx<'_>, src: &str) -> Option<(Kind, Vec<(String, DbValue)>)> {
    let (what, kind) = source(src);
    let value = if what.starts_with('$') {
        ctx.core.pv_get(ctx.msg, &what)?.as_str().into_owned()
    } else {
        what
    };
    if value.is_empty() {
        return None;
    }
    let c = &a.cols;
    let mut conds = Vec::new();
    if kind == Kind::Uuid {
        conds.push((c.uuid.clone(), DbValue::str(value)));
        return Some((kind, conds));
    }
    let uri =
        sr_sdk::sip_msg::Uri::parse(value.trim_start_matches('<').trim_end_matches('>')).ok()?;
    let user = uri.user.unwrap_or("").to_string();
    let host = uri.host_str.to_string();
    if matches!(kind, Kind::Uri | Kind::Username) {
        conds.push((c.username.clone(), DbValue::str(user)));
    }
    if kind == Kind::Domain || (kind == Kind::Uri && a.use_domain()) {
        conds.push((c.domain.clone(), DbValue::str(host)));
    }
    Some((kind, conds))
}

fn text_of(v: &DbValue) -> String {
    v.as_string().unwrap_or_default()
}

/// `avp_db_load(source, name)`: 1 when at least one AVP was loaded.
pub fn load(a: &Avpops, ctx: &mut Ctx<'_>, src: &str, name: Option<&str>) -> i32 {
    let Some(pool) = a.pool() else {
        return -1;
    };
    let Some((_, mut conds)) = user_conds(a, ctx, src) else {
        return -1;
    };
    let c = &a.cols;
    if let Some(n) = name {
        conds.push((c.attribute.clone(), DbValue::str(attribute(n).0)));
    }
    let conds: Vec<Cond> = conds.into_iter().map(|(k, v)| Cond::eq(&k, v)).collect();
    let cols = [c.attribute.as_str(), c.value.as_str(), c.typ.as_str()];
    let rows = match pool.with(|db| db.query(&a.table(), &conds, &cols, None)) {
        Ok(r) => r,
        Err(e) => {
            lm_err!("avp_db_load: {e}");
            return -1;
        }
    };
    let mut n = 0;
    for i in 0..rows.len() {
        let attr = text_of(rows.get(i, &c.attribute));
        let value = text_of(rows.get(i, &c.value));
        let ty = rows.get(i, &c.typ).as_i64().unwrap_or(0);
        let avp = match name {
            Some(n) => n.to_string(),
            None if ty & 2 != 0 => format!("i:{attr}"),
            None => attr,
        };
        let v = if ty & 1 != 0 {
            match value.trim().parse::<i64>() {
                Ok(x) => Value::Int(x),
                Err(_) => continue,
            }
        } else {
            Value::str(value)
        };
        ctx.msg.avps.push(&avp, v);
        n += 1;
    }
    if n > 0 {
        1
    } else {
        -1
    }
}

/// `avp_db_store(source, name)`: every value of the AVP as a row; 1 when
/// all were written.
pub fn store(a: &Avpops, ctx: &mut Ctx<'_>, src: &str, name: &str) -> i32 {
    let Some(pool) = a.pool() else {
        return -1;
    };
    let values: Vec<Value<'static>> = ctx.msg.avps.all(name).cloned().collect();
    if values.is_empty() {
        return -1;
    }
    let Some((kind, conds)) = user_conds(a, ctx, src) else {
        return -1;
    };
    let c = &a.cols;
    let (attr, int_name) = attribute(name);
    let mut ok = true;
    // Newest first, as Kamailio's (a load then turns their order round).
    for v in values.iter() {
        // The columns Kamailio's avpops writes: a URI's user and domain
        // (NULL without use_domain, which a NOT NULL column refuses, as
        // there), or the one column the source names.
        let mut row: Vec<(&str, DbValue)> = conds
            .iter()
            .map(|(k, val)| (k.as_str(), val.clone()))
            .collect();
        if kind == Kind::Uri && !a.use_domain() {
            row.push((c.domain.as_str(), DbValue::Null));
        }
        let int_value = matches!(v, Value::Int(_));
        let ty = i32::from(int_name) * 2 + i32::from(int_value);
        row.push((c.attribute.as_str(), DbValue::str(attr)));
        row.push((c.typ.as_str(), DbValue::Int(ty)));
        row.push((c.value.as_str(), DbValue::str(v.as_str().into_owned())));
        if let Err(e) = pool.with(|db| db.insert(&a.table(), &row)) {
            lm_err!("avp_db_store: {e}");
            ok = false;
        }
    }
    if ok {
        1
    } else {
        -1
    }
}

/// `avp_db_delete(source, name)`: the user's rows of that attribute.
pub fn delete(a: &Avpops, ctx: &mut Ctx<'_>, src: &str, name: Option<&str>) -> i32 {
    let Some(pool) = a.pool() else {
        return -1;
    };
    let Some((_, mut conds)) = user_conds(a, ctx, src) else {
        return -1;
    };
    if let Some(n) = name {
        conds.push((a.cols.attribute.clone(), DbValue::str(attribute(n).0)));
    }
    let conds: Vec<Cond> = conds.into_iter().map(|(k, v)| Cond::eq(&k, v)).collect();
    match pool.with(|db| db.delete(&a.table(), &conds)) {
        Ok(_) => 1,
        Err(e) => {
            lm_err!("avp_db_delete: {e}");
            -1
        }
    }
}

/// `avp_db_query(query[, avps])`: each row's columns into the AVPs named
/// (`$avp(a);$avp(b)`, else `$avp(i:1)`, `$avp(i:2)`, ...), integers as
/// integers; the rows pushed last first, so that the first row's values
/// are the newest (as Kamailio's). 1 with rows, -2 without, -1 on error.
pub fn query(a: &Avpops, ctx: &mut Ctx<'_>, sql: &str, names: Option<&str>) -> i32 {
    let Some(pool) = a.pool() else {
        return -1;
    };
    let res = match pool.with(|db| db.raw(sql)) {
        Ok(r) => r,
        Err(e) => {
            lm_err!("avp_db_query: {e}");
            return -1;
        }
    };
    let names: Vec<String> = match names {
        Some(list) => list
            .split([';', ','])
            .filter_map(|x| crate::names::spec(x).map(|(n, _)| n))
            .collect(),
        None => (1..=res.rows.columns.len())
            .map(|i| format!("i:{i}"))
            .collect(),
    };
    if res.rows.is_empty() {
        return -2;
    }
    for r in (0..res.rows.len()).rev() {
        for (c, name) in res.rows.columns.iter().zip(&names) {
            let v = match res.rows.get(r, c) {
                DbValue::Null => continue,
                DbValue::Int(i) => Value::Int(i64::from(*i)),
                DbValue::BigInt(i) => Value::Int(*i),
                other => Value::str(other.as_string().unwrap_or_default()),
            };
            ctx.msg.avps.push(name, v);
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(source("$fu"), ("$fu".into(), Kind::Uri));
        assert_eq!(source("$ru/domain"), ("$ru".into(), Kind::Domain));
        assert_eq!(source("$tu/username"), ("$tu".into(), Kind::Username));
        assert_eq!(source("$avp(uuid)"), ("$avp(uuid)".into(), Kind::Uuid));
        assert_eq!(source("u1"), ("u1".into(), Kind::Uuid));
        assert_eq!(source("$avp(u)/uri"), ("$avp(u)".into(), Kind::Uri));
    }
}
