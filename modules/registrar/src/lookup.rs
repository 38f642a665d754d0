//! `lookup()`, `lookup_branches()`, `registered()`, `unregister()`.

use crate::util::{aor_of, first_path_uri};
use crate::Registrar;
use sr_mod_usrloc::contact::method_bit;
use sr_mod_usrloc::{Contact, Domain};
use sr_sdk::db::now;
use sr_sdk::prelude::*;
use std::sync::atomic::Ordering;

/// `lookup` return codes (Kamailio's).
pub mod rc {
    /// Found.
    pub const FOUND: i32 = 1;
    /// Not found.
    pub const NOT_FOUND: i32 = -1;
    /// Found, but no contact allows the method.
    pub const METHOD_NOT_ALLOWED: i32 = -2;
    /// Error.
    pub const ERROR: i32 = -3;
}

/// The valid contacts of `uri`'s AoR that accept the request's method,
/// best first.
fn contacts_for(
    ctx: &mut Ctx<'_>,
    reg: &Registrar,
    dom: &Domain,
    uri: &str,
) -> Result<Vec<Contact>, i32> {
    let method = ctx.msg.msg().method().map(|m| m.as_str().to_string());
    contacts_of(reg, dom, uri, method.as_deref())
}

/// The valid contacts of `uri`'s AoR that accept `method` (any when
/// `None`), best first.
fn contacts_of(
    reg: &Registrar,
    dom: &Domain,
    uri: &str,
    method: Option<&str>,
) -> Result<Vec<Contact>, i32> {
    let aor = aor_of(uri, reg.ul().use_domain()).ok_or(rc::ERROR)?;
    let mut cs = dom.lookup(&aor, now()).map_err(|e| {
        lm_err!("registrar: lookup: {e}");
        rc::ERROR
    })?;
    if cs.is_empty() {
        return Err(rc::NOT_FOUND);
    }
    if reg.cfg.method_filtering.load(Ordering::Relaxed) != 0 {
        if let Some(m) = method {
            let bit = method_bit(m);
            cs.retain(|c| c.methods & bit != 0);
            if cs.is_empty() {
                return Err(rc::METHOD_NOT_ALLOWED);
            }
        }
    }
    Ok(cs)
}

/// Where to send for a contact: the first Path hop, else received.
fn dst_of(c: &Contact) -> Option<String> {
    c.path
        .as_deref()
        .and_then(first_path_uri)
        .or_else(|| c.received.clone())
}

fn branch_of(c: &Contact) -> Branch {
    Branch {
        uri: c.contact.clone(),
        dst_uri: dst_of(c),
        path: c.path.clone(),
        q: u16::try_from(c.q).ok(),
        flags: c.cflags,
        socket: c.socket.clone(),
        ruid: Some(c.ruid.clone()),
        instance: c.instance.clone(),
        location_ua: (!c.user_agent.is_empty()).then(|| c.user_agent.clone()),
    }
}

/// Kamailio's `lookup_to_dset`: every contact of `uri`'s AoR that
/// accepts `method`, as branches, best first; the `lookup` codes when
/// there is none.
pub fn contact_branches(
    reg: &Registrar,
    dom: &Domain,
    uri: &str,
    method: Option<&str>,
) -> Result<Vec<Branch>, i32> {
    Ok(contacts_of(reg, dom, uri, method)?
        .iter()
        .map(branch_of)
        .collect())
}

/// Makes the best contact the Request-URI (with `$du`, Path, branch
/// flags and socket) and, with `append_branches`, the others branches.
fn set_targets(ctx: &mut Ctx<'_>, reg: &Registrar, cs: &[Contact]) {
    let Some(first) = cs.first() else { return };
    let m = &mut *ctx.msg;
    m.new_uri = Some(first.contact.clone());
    m.dst_uri = dst_of(first);
    m.path = first.path.clone();
    m.bflags = first.cflags;
    if first.socket.is_some() {
        m.force_send_socket = first.socket.clone();
    }
    m.ruri_location = Some(Box::new(sr_sdk::RuriLocation {
        ruid: Some(first.ruid.clone()),
        instance: first.instance.clone(),
        location_ua: (!first.user_agent.is_empty()).then(|| first.user_agent.clone()),
    }));
    if reg.cfg.append_branches.load(Ordering::Relaxed) != 0 {
        m.branches.extend(cs[1..].iter().map(branch_of));
    }
}

/// The one contact a GRUU (RFC 5627) names: a public one
/// (`sip:aor;gr=urn:...`) the AoR's most preferred contact with that
/// instance, a temporary one (`sip:ruid@host;gr`) the contact with that
/// record id. `None` when `uri` is no GRUU.
fn gruu_contact(reg: &Registrar, dom: &Domain, uri: &str) -> Option<Result<Contact, i32>> {
    let u = sr_sdk::sip_msg::Uri::parse(uri).ok()?;
    let gr = u.param("gr")?;
    if reg.cfg.gruu_enabled.load(Ordering::Relaxed) == 0 {
        return None;
    }
    Some(match gr {
        Some(instance) => contacts_of(reg, dom, uri, None).and_then(|cs| {
            cs.into_iter()
                .find(|c| {
                    c.instance.as_deref().is_some_and(|i| {
                        i.trim_start_matches('<').trim_end_matches('>') == instance
                    })
                })
                .ok_or(rc::NOT_FOUND)
        }),
        None => {
            let ruid = u.user.unwrap_or_default();
            match dom.by_ruid(ruid, now()) {
                Ok(Some(c)) => Ok(c),
                Ok(None) => Err(rc::NOT_FOUND),
                Err(e) => {
                    lm_err!("registrar: lookup: {e}");
                    Err(rc::ERROR)
                }
            }
        }
    })
}

/// `lookup(table[, uri])`.
pub fn lookup(ctx: &mut Ctx<'_>, reg: &Registrar, dom: &Domain, uri: Option<&str>) -> i32 {
    let uri = uri.map_or_else(|| ctx.msg.ruri().to_string(), str::to_string);
    if let Some(found) = gruu_contact(reg, dom, &uri) {
        return match found {
            Ok(c) => {
                set_targets(ctx, reg, std::slice::from_ref(&c));
                rc::FOUND
            }
            Err(code) => code,
        };
    }
    match contacts_for(ctx, reg, dom, &uri) {
        Ok(cs) => {
            set_targets(ctx, reg, &cs);
            rc::FOUND
        }
        Err(code) => code,
    }
}

/// `lookup_to_dset(table[, uri])`: as `lookup`, but every contact becomes
/// a branch and the Request-URI stays.
pub fn lookup_to_dset(ctx: &mut Ctx<'_>, reg: &Registrar, dom: &Domain, uri: Option<&str>) -> i32 {
    let uri = uri.map_or_else(|| ctx.msg.ruri().to_string(), str::to_string);
    let found = match gruu_contact(reg, dom, &uri) {
        Some(r) => r.map(|c| vec![c]),
        None => contacts_for(ctx, reg, dom, &uri),
    };
    match found {
        Ok(cs) => {
            ctx.msg.branches.extend(cs.iter().map(branch_of));
            rc::FOUND
        }
        Err(code) => code,
    }
}

/// `lookup_branches(table)`: the Request-URI and every branch whose URI
/// is a registered AoR is replaced by that AoR's contacts.
pub fn lookup_branches(ctx: &mut Ctx<'_>, reg: &Registrar, dom: &Domain) -> i32 {
    let old = std::mem::take(&mut ctx.msg.branches);
    let mut found = false;
    let ruri = ctx.msg.ruri().to_string();
    match contacts_for(ctx, reg, dom, &ruri) {
        Ok(cs) => {
            found = true;
            set_targets(ctx, reg, &cs);
        }
        Err(rc::ERROR) => {}
        Err(_) => {}
    }
    for b in old {
        match contacts_for(ctx, reg, dom, &b.uri) {
            Ok(cs) => {
                found = true;
                ctx.msg.branches.extend(cs.iter().map(|c| Branch {
                    flags: c.cflags | b.flags,
                    ..branch_of(c)
                }));
            }
            Err(_) => ctx.msg.branches.push(b),
        }
    }
    if found {
        rc::FOUND
    } else {
        rc::NOT_FOUND
    }
}

/// `registered(table[, uri])`: 1 when the AoR has a valid contact.
pub fn registered(ctx: &mut Ctx<'_>, reg: &Registrar, dom: &Domain, uri: Option<&str>) -> i32 {
    let uri = uri.map_or_else(|| ctx.msg.ruri().to_string(), str::to_string);
    let Some(aor) = aor_of(&uri, reg.ul().use_domain()) else {
        return -1;
    };
    match dom.lookup(&aor, now()) {
        Ok(cs) if !cs.is_empty() => 1,
        Ok(_) => -1,
        Err(e) => {
            lm_err!("registrar: registered: {e}");
            -1
        }
    }
}

/// `unregister(table, uri[, ruid])`: removes every contact of the AoR, or
/// the one with this ruid.
pub fn unregister(reg: &Registrar, dom: &Domain, uri: &str, ruid: Option<&str>) -> i32 {
    let Some(aor) = aor_of(uri, reg.ul().use_domain()) else {
        lm_err!("registrar: unregister: bad URI '{uri}'");
        return -1;
    };
    // An empty ruid given (an unset `$T_reply_ruid`) removes nothing, as
    // in Kamailio: not every contact of the AoR.
    if ruid.is_some_and(|r| r.is_empty()) {
        lm_err!("registrar: unregister: invalid ruid parameter");
        return -1;
    }
    let r = dom.with_record(&aor, now(), |rec| {
        Ok(match ruid {
            Some(r) => usize::from(rec.remove(r)),
            None => rec.clear(),
        })
    });
    match r {
        Ok(n) if n > 0 => 1,
        Ok(_) => -1,
        Err(e) => {
            lm_err!("registrar: unregister: {e}");
            -1
        }
    }
}
