//! `save()`: processing a REGISTER per RFC 3261 section 10.3.

use crate::util::{aor_of, reply};
use crate::Registrar;
use sr_mod_usrloc::{
    contact::methods_mask, Contact, ContactRef, Domain, FL_MEM, FL_NAT, FL_RPL, METHODS_ALL,
    Q_UNSPECIFIED,
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
/// The headers end with Kamailio's `P-Registrar-Error` line.
struct Reject(u16, &'static str, String, i32);

impl Reject {
    /// A failure Kamailio answers `code` with its usual reason, and
    /// `why` (Kamailio's registrar error text) in `P-Registrar-Error`,
    /// after the `extra` header lines.
    fn rerr(code: u16, why: &str, extra: String, rc: i32) -> Reject {
        let reason = match code {
            400 => "Bad Request",
            420 => "Bad Extension",
            421 => "Extension Required",
            439 => "First Hop Lacks Outbound Support",
            423 => "Interval Too Brief",
            503 => "Service Unavailable",
            _ => "Server Internal Error",
        };
        Reject(
            code,
            reason,
            format!("{extra}P-Registrar-Error: {why}\r\n"),
            rc,
        )
    }

    /// A bad request (400).
    fn bad(why: &str) -> Reject {
        Reject::rerr(400, why, String::new(), -1)
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
    /// An `expires` parameter that is not a number: the default expiry
    /// (not the Expires header), as Kamailio's registrar.
    bad_expires: bool,
    q: i32,
    instance: Option<String>,
    reg_id: u32,
    /// A `reg-id` with an instance that is not a number other than 0.
    bad_reg_id: bool,
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
    /// With `gruu_enabled` and `Supported: gruu`: the AoR's URI and host
    /// (see [`Gruu`]).
    gruu: Option<(String, String)>,
    /// The request's Supported or Require has `outbound` (RFC 5626).
    wants_outbound: bool,
}

fn parse_request(ctx: &mut Ctx<'_>, reg: &Registrar, uri: Option<&str>) -> Result<Request, Reject> {
    let use_domain = reg.ul().use_domain();
    let m = ctx.msg.msg();
    let aor_uri = match uri {
        Some(u) => u.to_string(),
        None => m
            .to()
            .map_err(|_| Reject::bad("To header not found"))?
            .uri_str
            .to_string(),
    };
    let aor = aor_of(&aor_uri, use_domain).ok_or(Reject::bad("Error while parsing AOR"))?;
    let gruu = (reg.cfg.gruu_enabled.load(Ordering::Relaxed) != 0
        && m.has_token(HeaderName::Supported, "gruu"))
    .then(|| gruu_base(&aor_uri))
    .flatten();
    let mut star = false;
    let mut contacts = Vec::new();
    for c in m.contacts() {
        match c.map_err(|_| Reject::bad("Contact parse error"))? {
            ContactValue::Star => star = true,
            ContactValue::Addr(na) => {
                let instance = na.param("+sip.instance");
                let expires = na.param("expires");
                // A reg-id counts with an instance only (as Kamailio).
                let reg_id = match (instance, na.param("reg-id")) {
                    (Some(_), Some(Some(v))) => Some(v.trim()),
                    _ => None,
                };
                contacts.push(NewContact {
                    uri: na.uri_str.to_string(),
                    expires: expires.flatten().and_then(|v| v.trim().parse().ok()),
                    bad_expires: expires
                        .is_some_and(|v| v.and_then(|v| v.trim().parse::<u32>().ok()).is_none()),
                    q: na.q().map_or(Q_UNSPECIFIED, i32::from),
                    instance: instance.flatten().map(|s| s.trim_matches('"').to_string()),
                    reg_id: reg_id.and_then(|v| v.parse().ok()).unwrap_or(0),
                    // Not a number other than 0: refused when reg-ids are used
                    // (an empty one is ignored, as by Kamailio).
                    bad_reg_id: reg_id.is_some_and(|v| {
                        !v.is_empty() && v.parse::<u32>().map_or(true, |n| n == 0)
                    }),
                });
            }
        }
    }
    let expires_hdr = m
        .expires()
        .map_err(|_| Reject::bad("Expires parse error"))?;
    if star && (!contacts.is_empty() || expires_hdr != Some(0)) {
        return Err(Reject::bad(if contacts.is_empty() {
            "* used in contact and expires is not zero"
        } else {
            "* used in contact and more than 1 contact"
        }));
    }
    let callid = m
        .call_id()
        .map_err(|_| Reject::bad("Call-ID header not found"))?
        .to_string();
    let cseq = m
        .cseq()
        .map_err(|_| Reject::bad("CSeq header not found"))?
        .seq;
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
        gruu,
        wants_outbound: m.has_token(HeaderName::Supported, "outbound")
            || m.has_token(HeaderName::Require, "outbound"),
    })
}

/// Kamailio's outbound checks of a REGISTER (RFC 5626 §6), with
/// `outbound_mode` 0 (not supported), 1 (supported) or 2 (required):
/// the refusals, and whether its reg-ids are used (they are not when it
/// came through an edge proxy that did not mark its Path with `;ob`).
fn outbound_checks(reg: &Registrar, m: &sip_msg::Message<'_>) -> Result<bool, Reject> {
    let mode = reg.cfg.outbound_mode.load(Ordering::Relaxed);
    let supported = m.header(HeaderName::Supported).is_some();
    if mode == 2 && supported && !m.has_token(HeaderName::Supported, "outbound") {
        return Err(Reject::rerr(
            421,
            "No support for Outbound indicated",
            "Require: outbound\r\nSupported: outbound\r\n".into(),
            -1,
        ));
    }
    if mode == 0 && m.has_token(HeaderName::Require, "outbound") {
        return Err(Reject::rerr(
            420,
            "No support for Outbound on server",
            "Unsupported: outbound\r\n".into(),
            -1,
        ));
    }
    if mode == 0 || m.vias().nth(1).is_none() {
        return Ok(true);
    }
    // Not the first hop: the edge proxy must have said it does outbound
    // (`;ob` in the first Path URI).
    let ob = m
        .paths()
        .next()
        .and_then(Result::ok)
        .is_some_and(|p| p.uri.param("ob").is_some());
    if ob || reg.cfg.regid_mode.load(Ordering::Relaxed) == 1 {
        return Ok(true);
    }
    let first_reg_id = matches!(
        m.contacts().next(),
        Some(Ok(ContactValue::Addr(na))) if na.param("reg-id").is_some()
    );
    if m.has_token(HeaderName::Supported, "outbound") && first_reg_id {
        return Err(Reject::rerr(
            439,
            "No support for Outbound on edge proxy",
            String::new(),
            -1,
        ));
    }
    Ok(false)
}

/// The outbound header lines of a 200 (`outbound_mode` 1: `Supported`,
/// and `Require` with the flow timer when the request asked for
/// outbound; 2: all of them).
fn outbound_lines(reg: &Registrar, r: &Request) -> String {
    let mode = reg.cfg.outbound_mode.load(Ordering::Relaxed);
    let ft = reg.cfg.flow_timer.load(Ordering::Relaxed);
    let mut s = String::new();
    if mode == 2 || (mode == 1 && r.wants_outbound) {
        s.push_str("Require: outbound\r\n");
    }
    if mode != 0 {
        s.push_str("Supported: outbound\r\n");
    }
    if ft > 0 && (mode == 2 || (mode == 1 && r.wants_outbound)) {
        s.push_str(&format!("Flow-Timer: {ft}\r\n"));
    }
    s
}

/// `sip:user@host` of an AoR's URI, and its host.
fn gruu_base(uri: &str) -> Option<(String, String)> {
    let u = sip_msg::Uri::parse(uri.trim().trim_start_matches('<').trim_end_matches('>')).ok()?;
    let user = u.user.filter(|x| !x.is_empty())?;
    let scheme = if u.scheme == sip_msg::Scheme::Sips {
        "sips"
    } else {
        "sip"
    };
    Some((
        format!("{scheme}:{user}@{}", u.host_str),
        u.host_str.to_string(),
    ))
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
    let asked = if c.bad_expires {
        None
    } else {
        c.expires.or(hdr)
    };
    let e = match asked {
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
            return Err(Reject::rerr(
                423,
                "Interval too brief",
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
) -> Result<(Outcome, String), Reject> {
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
    let gruu = r
        .gruu
        .as_ref()
        .map(|(aor_uri, host)| Gruu { aor_uri, host });
    let header = |cs: &[ContactRef<'_>]| contact_header(cs, t, gruu.as_ref());
    let res = dom.with_record_view(
        &r.aor,
        t,
        |rec| {
            let mut out = Outcome::default();
            if r.star {
                out.deleted = rec.clear() > 0;
                return Ok(Ok(out));
            }
            if max_contacts > 0 && flags & SAVE_REPLACE == 0 {
                // As Kamailio: counted before anything changes, so that a
                // refused request changes nothing (not in replace mode, where
                // the request's contacts are all there will be).
                let mut n = rec.valid(t).count() as i64;
                for (c, &exp) in r.contacts.iter().zip(&limits) {
                    let exists = rec.valid(t).any(|x| same_binding(&x, c, r, by_callid));
                    match (exists, exp) {
                        (true, 0) => n -= 1,
                        (false, e) if e > 0 => n += 1,
                        _ => {}
                    }
                }
                if n > max_contacts {
                    let now: Vec<ContactRef<'_>> = rec.valid(t).collect();
                    let mut extra = contact_header(&now, t, gruu.as_ref());
                    let ra = reg.cfg.retry_after.load(Ordering::Relaxed);
                    if ra > 0 {
                        extra.push_str(&format!("Retry-After: {ra}\r\n"));
                    }
                    return Ok(Err(Reject::rerr(
                        503,
                        "Too many registered contacts",
                        extra,
                        -2,
                    )));
                }
            }
            for (c, &exp) in r.contacts.iter().zip(&limits) {
                let existing = rec.find(|x| same_binding(x, c, r, by_callid));
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
                let refresh = existing.is_some();
                let mut ct = existing.unwrap_or_else(|| Contact::new(&r.aor, &c.uri));
                // (A flow matched by instance and reg-id may come with a new
                // URI: the new one is kept.)
                ct.contact = c.uri.clone();
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
                // A local REGISTER makes a replicated contact this node's own
                // again (dmq_usrloc sends its refreshes on).
                ct.flags = (ct.flags & !(FL_NAT | FL_MEM | FL_RPL))
                    | if nat { FL_NAT } else { 0 }
                    | if flags & SAVE_MEMORY != 0 { FL_MEM } else { 0 };
                ct.instance = c.instance.clone();
                ct.reg_id = c.reg_id;
                if refresh {
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
                    .iter()
                    .filter(|x| !keep.contains(&x.contact()))
                    .map(|x| x.ruid().to_string())
                    .collect();
                for d in drop {
                    out.deleted |= rec.remove(&d);
                }
            }
            Ok(Ok(out))
        },
        header,
    );
    match res {
        Ok((Ok(o), header)) => Ok((o, header)),
        Ok((Err(rej), _)) => Err(rej),
        Err(e) => {
            lm_err!("registrar: save: {e}");
            Err(Reject::rerr(
                500,
                "usrloc_record_insert failed",
                String::new(),
                -1,
            ))
        }
    }
}

/// Whether stored contact `x` is the binding `c` refreshes: with a
/// `+sip.instance`, the same instance (angle brackets aside) and reg-id
/// (RFC 5626 §6: a flow replaces the one of the same instance and
/// reg-id, whatever its URI); else the same URI (and Call-ID with usrloc's
/// `matching_mode` 1).
fn same_binding(x: &ContactRef<'_>, c: &NewContact, r: &Request, by_callid: bool) -> bool {
    match &c.instance {
        Some(inst) => {
            x.reg_id() == c.reg_id && x.instance().is_some_and(|y| sr_sdk::same_instance(y, inst))
        }
        None => x.contact() == c.uri && (!by_callid || x.callid() == r.callid),
    }
}

/// A q value as Kamailio writes it: `1`, `0`, or `0.` and the digits
/// that matter (`0.5`, `0.123`).
fn q_text(q: i32) -> String {
    if q >= 1000 {
        return "1".into();
    }
    if q <= 0 {
        return "0".into();
    }
    let mut s = format!("0.{q:03}");
    while s.ends_with('0') {
        s.pop();
    }
    s
}

/// The GRUUs of a registration (RFC 5627): the AoR's URI, for
/// `pub-gruu`, and its host, for `temp-gruu`.
pub struct Gruu<'a> {
    /// `sip:user@host` of the To URI.
    pub aor_uri: &'a str,
    /// Its host.
    pub host: &'a str,
}

/// The `Contact` header of a reply listing `cs` (nothing when empty), as
/// Kamailio writes it: one header, each binding with its q, expires,
/// received, GRUUs (when asked for), instance and reg-id.
fn contact_header(cs: &[ContactRef<'_>], t: i64, gruu: Option<&Gruu<'_>>) -> String {
    if cs.is_empty() {
        return String::new();
    }
    let mut s =
        String::with_capacity(cs.iter().map(|c| c.contact().len() + 48).sum::<usize>() + 11);
    s.push_str("Contact: ");
    for (n, c) in cs.iter().enumerate() {
        if n > 0 {
            s.push_str(", ");
        }
        s.push('<');
        s.push_str(c.contact());
        s.push('>');
        if c.q() != Q_UNSPECIFIED {
            s.push_str(";q=");
            s.push_str(&q_text(c.q()));
        }
        s.push_str(";expires=");
        sip_msg::text::push_dec(&mut s, c.remaining(t).max(0) as u64);
        if let Some(rcv) = c.received() {
            s.push_str(";received=\"");
            s.push_str(rcv);
            s.push('"');
        }
        if let Some(inst) = c.instance() {
            if let Some(g) = gruu {
                let bare = inst.trim_start_matches('<').trim_end_matches('>');
                s.push_str(&format!(
                    ";pub-gruu=\"{};gr={bare}\";temp-gruu=\"sip:{}@{};gr\"",
                    g.aor_uri,
                    c.ruid(),
                    g.host
                ));
            }
            s.push_str(";+sip.instance=\"");
            s.push_str(inst);
            s.push('"');
            if c.reg_id() > 0 {
                s.push_str(";reg-id=");
                sip_msg::text::push_dec(&mut s, u64::from(c.reg_id()));
            }
        }
    }
    s.push_str("\r\n");
    s
}

/// The 200 OK's header lines: every current contact with its expires,
/// and the Path when the mode says so.
fn contact_lines(reg: &Registrar, r: &Request, contact_header: String) -> String {
    let mut s = contact_header;
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
    let result = parse_request(ctx, reg, uri).and_then(|mut r| {
        if outbound_checks(reg, ctx.msg.msg())? {
            if r.contacts.iter().any(|c| c.bad_reg_id) {
                return Err(Reject::bad("Invalid Reg-Id number"));
            }
        } else {
            for c in &mut r.contacts {
                c.reg_id = 0;
            }
        }
        if r.path.is_some() && !r.supports_path && reg.cfg.path_mode.load(Ordering::Relaxed) == 2 {
            return Err(Reject::rerr(
                420,
                "No support for found Path indicated",
                "Unsupported: path\r\n".into(),
                -1,
            ));
        }
        apply(reg, dom, &r, flags, t).map(|(o, header)| (r, o, header))
    });
    match result {
        Ok((r, out, header)) => {
            reg.stats.accepted.inc();
            let mut lines = contact_lines(reg, &r, header);
            lines.push_str(&outbound_lines(reg, &r));
            if flags & SAVE_NOREPLY == 0 {
                if !reply(&reg.replier, ctx, 200, "OK", &lines) {
                    return -1;
                }
            } else {
                ctx.msg.ext.insert(HeldReply(200, "OK".into(), lines));
            }
            out.rc()
        }
        Err(Reject(code, reason, extra, rc)) => {
            reg.stats.rejected.inc();
            // (No error for sl_reply_error: Kamailio's registrar sets
            // none, its headers stay on the request's replies.)
            if flags & SAVE_NOREPLY == 0 {
                reply(&reg.replier, ctx, code, reason, &extra);
            } else {
                ctx.msg
                    .ext
                    .insert(HeldReply(code, reason.to_string(), extra));
            }
            rc
        }
    }
}

/// The reply `save(..., 0x02)` did not send, for `reg_send_reply()`.
#[derive(Debug, Clone)]
pub struct HeldReply(u16, String, String);

/// `reg_send_reply()`: sends what `save(..., 0x02)` held back; -1 when
/// there is nothing held (no such `save` before).
pub fn send_held(ctx: &mut Ctx<'_>, reg: &Registrar) -> i32 {
    let Some(HeldReply(code, reason, lines)) = ctx.msg.ext.remove::<HeldReply>() else {
        lm_err!("reg_send_reply: no reply held by save(..., \"0x2\")");
        return -1;
    };
    if reply(&reg.replier, ctx, code, &reason, &lines) {
        1
    } else {
        -1
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
