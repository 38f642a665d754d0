//! `reg_fetch_contacts(table, uri, profile)`, `reg_free_contacts(profile)`
//! and `$ulc(profile=>attr)`.

use crate::util::aor_of;
use crate::Registrar;
use sr_mod_usrloc::{Contact, Domain};
use sr_sdk::db::now;
use sr_sdk::exports::PvName;
use sr_sdk::prelude::*;
use std::collections::HashMap;

/// The contacts fetched into named profiles, kept with the message.
#[derive(Debug, Default)]
pub struct Profiles(HashMap<String, Fetched>);

/// One profile.
#[derive(Debug, Clone)]
pub struct Fetched {
    aor: String,
    domain: String,
    contacts: Vec<Contact>,
}

/// `reg_fetch_contacts`: 1 when the AoR has contacts, -1 otherwise (the
/// profile is then empty).
pub fn fetch(ctx: &mut Ctx<'_>, reg: &Registrar, dom: &Domain, uri: &str, profile: &str) -> i32 {
    let Some(aor) = aor_of(uri, reg.ul().use_domain()) else {
        return -1;
    };
    let contacts = match dom.lookup(&aor, now()) {
        Ok(c) => c,
        Err(e) => {
            lm_err!("registrar: reg_fetch_contacts: {e}");
            return -1;
        }
    };
    let found = !contacts.is_empty();
    if ctx.msg.ext.get::<Profiles>().is_none() {
        ctx.msg.ext.insert(Profiles::default());
    }
    if let Some(p) = ctx.msg.ext.get_mut::<Profiles>() {
        p.0.insert(
            profile.to_string(),
            Fetched {
                aor,
                domain: dom.name().to_string(),
                contacts,
            },
        );
    }
    if found {
        1
    } else {
        -1
    }
}

/// `reg_free_contacts(profile)`.
pub fn free(ctx: &mut Ctx<'_>, profile: &str) -> i32 {
    if let Some(p) = ctx.msg.ext.get_mut::<Profiles>() {
        p.0.remove(profile);
    }
    1
}

fn opt(s: &Option<String>) -> Value<'static> {
    s.clone().map_or(Value::Null, Value::from)
}

/// `$ulc(profile=>attr)`, with `[i]` picking the i-th contact.
pub fn pv_get(ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let Some(inner) = name.inner.as_deref() else {
        return Value::Null;
    };
    let Some((profile, attr)) = inner.split_once("=>") else {
        return Value::Null;
    };
    let Some(f) = ctx
        .msg
        .ext
        .get::<Profiles>()
        .and_then(|p| p.0.get(profile.trim()))
    else {
        return Value::Null;
    };
    let attr = attr.trim();
    match attr {
        "aor" => return Value::from(f.aor.clone()),
        "domain" => return Value::from(f.domain.clone()),
        "count" => return Value::Int(f.contacts.len() as i64),
        _ => {}
    }
    let idx = name.index.filter(|i| *i >= 0).unwrap_or(0) as usize;
    let Some(c) = f.contacts.get(idx) else {
        return Value::Null;
    };
    let t = now();
    match attr {
        "addr" => Value::from(c.contact.clone()),
        "path" => opt(&c.path),
        "received" => opt(&c.received),
        "expires" => Value::Int(c.remaining(t)),
        "callid" => Value::from(c.callid.clone()),
        "q" => Value::Int(c.q as i64),
        "cseq" => Value::Int(c.cseq as i64),
        "flags" => Value::Int(c.flags as i64),
        "cflags" => Value::Int(c.cflags as i64),
        "user_agent" => Value::from(c.user_agent.clone()),
        "socket" => opt(&c.socket),
        "modified" => Value::Int(c.last_modified),
        "methods" => Value::Int(c.methods as i64),
        "ruid" => Value::from(c.ruid.clone()),
        "reg-id" | "regid" => Value::Int(c.reg_id as i64),
        "instance" => opt(&c.instance),
        _ => Value::Null,
    }
}
