//! `save()`: processing a REGISTER per RFC 3261 section 10.3.

use crate::util::{aor_of, reply};
use crate::Registrar;
use sr_mod_usrloc::{
    contact::methods_mask, Contact, Domain, FL_MEM, FL_NAT, METHODS_ALL, Q_UNSPECIFIED,
};
use sr_sdk::db::now;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg;
use sr_sdk::sip_msg::headers::ContactValue;
use std::sync::atomic::Ordering;

/// `save()` flag: memory only.
pub const SAVE_MEMORY: i64 = 0x01;
/// `save()` flag: do not reply.
pub const SAVE_NOREPLY: i64 = 0x02;
/// `save()` flag: one contact per AoR, replacing the others.
pub const SAVE_REPLACE: i64 = 0x04;
/// `save()` flag: do not apply the expires range.
pub const SAVE_NO_RANGE: i64 = 0x08;

/// A failure: reply code, reason, extra headers and the return code.
struct Reject(u16, &'static str, String, i32);

impl Reject {
    fn bad(reason: &'static str) -> Reject {
        Reject(400, reason, String::new(), -1)
    }
}

/// What changed, for the return code: 1 inserted, 2 updated, 3 deleted,
/// 4 only queried.
#[derive(Default)]
struct Outcome {
    inserted: bool,
    updated: bool,
    deleted: bool,
}

impl Outcome {
    fn rc(&self) -> i32 {
        if self.inserted {
            1
        } else if self.updated {
            2
        } else if self.deleted {
            3
        } else {
            4
        }
    }
}

/// One Contact of the request, decoded.
struct NewContact {
    uri: String,
    expires: Option<u32>,
    q: i32,
    instance: Option<String>,
    reg_id: u32,
}

/// Facts from the request shared by its contacts.
struct Request {
    aor: String,
    star: bool,
    contacts: Vec<NewContact>,
    expires_hdr: Option<u32>,
    callid: String,
    cseq: u32,
    path: Option<String>,
    supports_path: bool,
    received: Option<String>,
    socket: String,
    ua: String,
    methods: u32,
    bflags: u32,
}

fn parse_request(ctx: &mut Ctx<'_>, reg: &Registrar, uri: Option<&str>) -> Result<Request, Reject> {
    let use_domain = reg.ul().use_domain();
    let m = ctx.msg.msg();
    let aor_uri = match uri {
        Some(u) => u.to_string(),
        None => m
            .to()
            .map_err(|_| Reject::bad("Bad To header"))?
            .uri_str
            .to_string(),
    };
    let aor = aor_of(&aor_uri, use_domain).ok_or(Reject::bad("Bad Address of Record"))?;
    let mut star = false;
    let mut contacts = Vec::new();
    for c in m.contacts() {
        match c.map_err(|_| Reject::bad("Bad Contact header"))? {
            ContactValue::Star => star = true,
            ContactValue::Addr(na) => contacts.push(NewContact {
                uri: na.uri_str.to_string(),
                expires: match na.param("expires") {
                    Some(Some(v)) => Some(
                        v.trim()
                            .parse()
                            .map_err(|_| Reject::bad("Bad Contact expires"))?,
                    ),
                    _ => None,
                },
                q: na.q().map_or(Q_UNSPECIFIED, i32::from),
                instance: na
                    .param("+sip.instance")
                    .flatten()
                    .map(|s| s.trim_matches('"').to_string()),
                reg_id: na
                    .param("reg-id")
                    .flatten()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            }),
        }
    }
    let expires_hdr = m.expires().map_err(|_| Reject::bad("Bad Expires header"))?;
    if star && (!contacts.is_empty() || expires_hdr != Some(0)) {
        return Err(Reject::bad(if contacts.is_empty() {
            "Invalid * Contact: Expires is not zero"
        } else {
            "Invalid * Contact: more than one Contact"
        }));
    }
    let callid = m
        .call_id()
        .map_err(|_| Reject::bad("Bad Call-ID header"))?
        .to_string();
    let cseq = m.cseq().map_err(|_| Reject::bad("Bad CSeq header"))?.seq;
    let use_path = reg.cfg.use_path.load(Ordering::Relaxed) != 0;
    let path = if use_path {
        let v: Vec<&str> = m.values(HeaderName::Path).map(str::trim).collect();
        (!v.is_empty()).then(|| v.join(","))
    } else {
        None
    };
    let supports_path = m.has_token(HeaderName::Supported, "path");
    let methods = if m.header(HeaderName::Allow).is_some() {
        methods_mask(m.tokens(HeaderName::Allow))
    } else {
        METHODS_ALL
    };
    // Kamailio keeps "n/a" for a missing, empty or too long User-Agent.
    let ua = match m.user_agent() {
        Some(u) if !u.is_empty() && u.len() < 255 => u.to_string(),
        _ => "n/a".to_string(),
    };
    let rcv = ctx.msg.rcv;
    let mut socket = String::with_capacity(32);
    socket.push_str(rcv.proto.as_str());
    socket.push(':');
    sip_msg::text::push_ip(&mut socket, rcv.dst.ip());
    socket.push(':');
    sip_msg::text::push_dec(&mut socket, u64::from(rcv.dst.port()));
    let received = reg.received_avp().and_then(|name| {
        let v = ctx.msg.avps.get(&name, 0)?.as_str().into_owned();
        (!v.is_empty()).then_some(v)
    });
    Ok(Request {
        aor,
        star,
        contacts,
        expires_hdr,
        callid,
        cseq,
        path,
        supports_path,
        received,
        socket,
        ua,
        methods,
        bflags: ctx.msg.bflags,
    })
}

/// Kamailio's `randomize_expires`: a value in `[expires - range%, expires]`
/// (in whole hundredths of the interval), `expires` itself for range 0.
fn spread(expires: i64, range: i64) -> i64 {
    if range <= 0 || expires <= 0 {
        return expires;
    }
    let min = (expires as f64 - range.min(100) as f64 / 100.0 * expires as f64) as i64;
    let step = (sr_sdk::hash::random_u64() % 100) as f64 / 100.0;
    min + (step * (expires - min) as f64) as i64
}

/// The expiry a contact asks for after the module's limits: `Ok(0)` to
/// remove it, `Err` when below `min_expires` with `min_expires_mode=1`.
fn effective_expires(
    reg: &Registrar,
    c: &NewContact,
    hdr: Option<u32>,
    flags: i64,
) -> Result<i64, Reject> {
    let cfg = &reg.cfg;
    // The expiry asked for (or the default), spread over its range as
    // Kamailio's expires_range (default_expires_range) says.
    let e = match c.expires.or(hdr) {
        Some(0) => 0,
        Some(e) => spread(i64::from(e), cfg.expires_range.load(Ordering::Relaxed)),
        None => spread(
            cfg.default_expires.load(Ordering::Relaxed),
            cfg.default_expires_range.load(Ordering::Relaxed),
        ),
    };
    if e == 0 || flags & SAVE_NO_RANGE != 0 {
        return Ok(e);
    }
    let min = cfg.min_expires.load(Ordering::Relaxed);
    let max = cfg.max_expires.load(Ordering::Relaxed);
    if min > 0 && e < min {
        if cfg.min_expires_mode.load(Ordering::Relaxed) == 1 {
            return Err(Reject(
                423,
                "Interval Too Brief",
                format!("Min-Expires: {min}\r\n"),
                -1,
            ));
        }
        return Ok(min);
    }
    if max > 0 && e > max {
        return Ok(max);
    }
    Ok(e)
}

fn apply(
    reg: &Registrar,
    dom: &Domain,
    r: &Request,
    flags: i64,
    t: i64,
) -> Result<(Outcome, Vec<Contact>), Reject> {
    let mut limits = Vec::with_capacity(r.contacts.len());
    for c in &r.contacts {
        limits.push(effective_expires(reg, c, r.expires_hdr, flags)?);
    }
    let max_contacts = reg.cfg.max_contacts.load(Ordering::Relaxed);
    let by_callid = reg.ul().matching_mode() == 1;
    let nat = reg
        .ul()
        .nat_bflag()
        .is_some_and(|b| r.bflags & (1 << b) != 0);
    let res = dom.with_record_lookup(&r.aor, t, |rec| {
        let mut out = Outcome::default();
        if r.star {
            out.deleted = rec.clear() > 0;
            return Ok(Ok(out));
        }
        for (c, &exp) in r.contacts.iter().zip(&limits) {
            let existing = rec
                .contacts()
                .iter()
                .find(|x| x.contact == c.uri && (!by_callid || x.callid == r.callid))
                .cloned();
            if let Some(old) = &existing {
                if old.callid == r.callid && r.cseq < old.cseq {
                    return Ok(Err(Reject::bad("Invalid CSeq number")));
                }
            }
            if exp == 0 {
                if let Some(old) = existing {
                    out.deleted |= rec.remove(&old.ruid);
                }
                continue;
            }
            let mut ct = match &existing {
                Some(old) => old.clone(),
                None => {
                    if max_contacts > 0 && rec.valid(t).count() as i64 >= max_contacts {
                        return Ok(Err(Reject(
                            503,
                            "Too many registered contacts",
                            String::new(),
                            -2,
                        )));
                    }
                    Contact::new(&r.aor, &c.uri)
                }
            };
            ct.expires = t + exp;
            ct.q = c.q;
            ct.callid = r.callid.clone();
            ct.cseq = r.cseq;
            ct.last_modified = t;
            ct.received = r.received.clone();
            ct.path = r.path.clone();
            ct.user_agent = r.ua.clone();
            ct.socket = Some(r.socket.clone());
            ct.methods = r.methods;
            ct.cflags = r.bflags;
            ct.flags = (ct.flags & !(FL_NAT | FL_MEM))
                | if nat { FL_NAT } else { 0 }
                | if flags & SAVE_MEMORY != 0 { FL_MEM } else { 0 };
            ct.instance = c.instance.clone();
            ct.reg_id = c.reg_id;
            if existing.is_some() {
                out.updated = true;
                rec.update(ct);
            } else {
                out.inserted = true;
                rec.insert(ct);
            }
        }
        if flags & SAVE_REPLACE != 0 {
            let keep: Vec<&str> = r.contacts.iter().map(|c| c.uri.as_str()).collect();
            let drop: Vec<String> = rec
                .contacts()
                .iter()
                .filter(|x| !keep.contains(&x.contact.as_str()))
                .map(|x| x.ruid.clone())
                .collect();
            for d in drop {
                out.deleted |= rec.remove(&d);
            }
        }
        Ok(Ok(out))
    });
    match res {
        Ok((Ok(o), now_contacts)) => Ok((o, now_contacts)),
        Ok((Err(rej), _)) => Err(rej),
        Err(e) => {
            lm_err!("registrar: save: {e}");
            Err(Reject(500, "Server Internal Error", String::new(), -1))
        }
    }
}

/// The 200 OK's header lines: every current contact with its expires,
/// and the Path when the mode says so.
fn contact_lines(reg: &Registrar, r: &Request, cs: &[Contact], t: i64) -> String {
    let mut s = String::with_capacity(
        cs.iter()
            .map(|c| c.contact.len() + c.received.as_ref().map_or(0, |r| r.len() + 12) + 40)
            .sum::<usize>()
            + r.path.as_ref().map_or(0, |p| p.len() + 8),
    );
    for c in cs {
        s.push_str("Contact: <");
        s.push_str(&c.contact);
        s.push_str(">;expires=");
        sip_msg::text::push_dec(&mut s, c.remaining(t).max(0) as u64);
        if let Some(q) = c.q_str() {
            s.push_str(";q=");
            s.push_str(&q);
        }
        if let Some(rcv) = &c.received {
            s.push_str(";received=\"");
            s.push_str(rcv);
            s.push('"');
        }
        s.push_str("\r\n");
    }
    let mode = reg.cfg.path_mode.load(Ordering::Relaxed);
    if let Some(p) = &r.path {
        if mode == 0 || r.supports_path {
            s.push_str("Path: ");
            s.push_str(p);
            s.push_str("\r\n");
        }
    }
    s
}

/// `save(table[, flags[, uri]])`.
pub fn save(
    ctx: &mut Ctx<'_>,
    reg: &Registrar,
    dom: &Domain,
    flags: i64,
    uri: Option<&str>,
) -> i32 {
    if ctx.msg.msg().method() != Some(Method::Register) {
        lm_err!("registrar: save() called for a request other than REGISTER");
        return -1;
    }
    let t = now();
    let result = parse_request(ctx, reg, uri).and_then(|r| {
        if r.path.is_some() && !r.supports_path && reg.cfg.path_mode.load(Ordering::Relaxed) == 2 {
            return Err(Reject(
                420,
                "Bad Extension",
                "Unsupported: path\r\n".into(),
                -1,
            ));
        }
        apply(reg, dom, &r, flags, t).map(|(o, cs)| (r, o, cs))
    });
    match result {
        Ok((r, out, cs)) => {
            reg.stats.accepted.inc();
            if flags & SAVE_NOREPLY == 0 {
                let lines = contact_lines(reg, &r, &cs, t);
                if !reply(&reg.replier, ctx, 200, "OK", &lines) {
                    return -1;
                }
            }
            out.rc()
        }
        Err(Reject(code, reason, mut extra, rc)) => {
            reg.stats.rejected.inc();
            if code == 503 {
                let ra = reg.cfg.retry_after.load(Ordering::Relaxed);
                if ra > 0 {
                    extra.push_str(&format!("Retry-After: {ra}\r\n"));
                }
            }
            ctx.msg.set_error(code, reason);
            if flags & SAVE_NOREPLY == 0 {
                reply(&reg.replier, ctx, code, reason, &extra);
            }
            rc
        }
    }
}

#[cfg(test)]
mod spread_tests {
    #[test]
    fn spread_stays_within_the_range() {
        assert_eq!(super::spread(3600, 0), 3600);
        assert_eq!(super::spread(0, 50), 0);
        let seen: std::collections::HashSet<i64> =
            (0..200).map(|_| super::spread(3600, 30)).collect();
        assert!(seen.iter().all(|e| (2520..=3600).contains(e)), "{seen:?}");
        assert!(seen.len() > 5, "spread: {seen:?}");
    }
}
