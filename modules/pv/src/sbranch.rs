//! The static branch (`$sbranch(attr)`, `sbranch_set_ruri()`,
//! `sbranch_append()`, `sbranch_reset()`): one branch a worker builds
//! field by field and then makes the Request-URI or adds to the
//! destination set.
//!
//! As Kamailio's, it belongs to the worker, not to the message: it keeps
//! its fields from one message to the next until `sbranch_reset()`.
//! Kamailio 5.6 drops what the script writes to `ruid` and `location_ua`
//! (they read `$null`); siprouter keeps them.

use sr_sdk::prelude::*;
use sr_sdk::PvName;
use std::cell::RefCell;

/// The attributes `$sbranch` has (Kamailio's `$branch` names).
const ATTRS: &[&str] = &[
    "uri",
    "dst_uri",
    "path",
    "q",
    "send_socket",
    "count",
    "flags",
    "ruid",
    "location_ua",
];

/// The static branch: `uri` empty while unset; `q` and `flags` 0 until
/// written (as Kamailio's zeroed structure).
#[derive(Default, Clone)]
struct Static {
    uri: String,
    dst_uri: Option<String>,
    path: Option<String>,
    q: i64,
    socket: Option<String>,
    flags: u32,
    ruid: Option<String>,
    location_ua: Option<String>,
}

thread_local! {
    static SB: RefCell<Static> = RefCell::new(Static::default());
}

/// Refuses an unknown attribute when the script is loaded.
pub fn check(n: &PvName) -> Result<(), String> {
    let a = n.inner.as_deref().unwrap_or("").trim();
    if ATTRS.contains(&a) {
        Ok(())
    } else {
        Err(format!("unknown branch attribute '{a}'"))
    }
}

fn opt(v: &Option<String>) -> Value<'static> {
    v.clone().map_or(Value::Null, |x| Value::Str(x.into()))
}

/// Reads `$sbranch(attr)`: everything but `count` is `$null` while no
/// URI is set.
pub fn get(ctx: &mut Ctx<'_>, n: &PvName) -> Value<'static> {
    let a = n.inner.as_deref().unwrap_or("").trim();
    if a == "count" {
        return Value::Int(ctx.msg.branches.len() as i64);
    }
    SB.with(|sb| {
        let sb = sb.borrow();
        if sb.uri.is_empty() {
            return Value::Null;
        }
        match a {
            "uri" => Value::Str(sb.uri.clone().into()),
            "dst_uri" => opt(&sb.dst_uri),
            "path" => opt(&sb.path),
            "q" => Value::Int(sb.q),
            "send_socket" => opt(&sb.socket),
            "flags" => Value::Int(i64::from(sb.flags)),
            "ruid" => opt(&sb.ruid),
            "location_ua" => opt(&sb.location_ua),
            _ => Value::Null,
        }
    })
}

fn text(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Null => None,
        other => Some(other.as_str().into_owned()).filter(|s| !s.is_empty()),
    }
}

/// Writes `$sbranch(attr)`; `$null` clears the field (for `uri`, the
/// whole branch). `q` and `flags` take integers only, as in Kamailio.
pub fn set(_ctx: &mut Ctx<'_>, n: &PvName, v: Value<'_>) -> Result<(), String> {
    let a = n.inner.as_deref().unwrap_or("").trim();
    SB.with(|sb| {
        let mut sb = sb.borrow_mut();
        match a {
            "uri" => match text(&v) {
                Some(u) => sb.uri = u,
                None => *sb = Static::default(),
            },
            "dst_uri" => sb.dst_uri = text(&v),
            "path" => sb.path = text(&v),
            "send_socket" => sb.socket = text(&v),
            "ruid" => sb.ruid = text(&v),
            "location_ua" => sb.location_ua = text(&v),
            "q" | "flags" => {
                let i = match v {
                    Value::Int(i) => i,
                    Value::Null => 0,
                    _ => return Err(format!("an integer is needed to set the branch's {a}")),
                };
                if a == "q" {
                    sb.q = i;
                } else {
                    sb.flags = i as u32;
                }
            }
            "count" => return Err("the branch count cannot be set".into()),
            other => return Err(format!("unknown branch attribute '{other}'")),
        }
        Ok(())
    })
}

fn current() -> Option<Static> {
    SB.with(|sb| {
        let sb = sb.borrow();
        (!sb.uri.is_empty()).then(|| sb.clone())
    })
}

/// `sbranch_set_ruri()`: the static branch becomes the Request-URI with
/// its `$du` (cleared when it has none), path, socket; its flags are
/// added to the branch flags. -1 while it has no URI.
pub fn set_ruri(ctx: &mut Ctx<'_>) -> i32 {
    let Some(sb) = current() else { return -1 };
    let m = &mut *ctx.msg;
    m.new_uri = Some(sb.uri);
    m.dst_uri = sb.dst_uri;
    m.path = sb.path;
    if sb.socket.is_some() {
        m.force_send_socket = sb.socket;
    }
    m.bflags |= sb.flags;
    1
}

/// `sbranch_append()`: adds the static branch to the destination set;
/// -1 while it has no URI.
pub fn append(ctx: &mut Ctx<'_>) -> i32 {
    let Some(sb) = current() else { return -1 };
    ctx.msg.branches.push(Branch {
        uri: sb.uri,
        dst_uri: sb.dst_uri,
        path: sb.path,
        q: u16::try_from(sb.q).ok(),
        flags: sb.flags,
        socket: sb.socket,
        ruid: sb.ruid,
        instance: None,
        location_ua: sb.location_ua,
    });
    1
}

/// `sbranch_reset()`: empties the static branch.
pub fn reset() -> i32 {
    SB.with(|sb| *sb.borrow_mut() = Static::default());
    1
}
