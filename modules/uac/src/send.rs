//! `$uac_req(key)` and `uac_req_send()` (Kamailio's uac `uac_send.c`):
//! the script fills a request per worker and sends it as a client
//! transaction of its own; a 401/407 is answered once with the `auser`/
//! `apasswd` credentials; with `evroute` 1, `event_route[uac:reply]` runs
//! for the final reply (`$uac_req(evcode)`, `evtype` 1) or its timeout
//! (`evtype` 2).

use crate::auth::{authorization, parse_challenge, Credential};
use crate::Uac;
use sr_mod_tm::local::Ended;
use sr_sdk::exports::PvName;
use sr_sdk::prelude::*;
use std::cell::RefCell;

/// The request being prepared (`$uac_req`), one per worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UacReq {
    /// Method.
    pub method: String,
    /// Request-URI.
    pub ruri: String,
    /// To URI (the Request-URI when empty).
    pub turi: String,
    /// From URI (the Request-URI when empty).
    pub furi: String,
    /// Outbound proxy: where it goes (the Request-URI when empty).
    pub ouri: String,
    /// Header lines, each ending in CRLF.
    pub hdrs: String,
    /// Body.
    pub body: String,
    /// Local socket (`proto:ip:port`).
    pub sock: String,
    /// Digest user for a 401/407.
    pub auser: String,
    /// Digest password (HA1 with flag 1).
    pub apasswd: String,
    /// Flags: 1 the password is HA1.
    pub flags: i64,
    /// Call-ID (made when empty).
    pub callid: String,
    /// 1: run `event_route[uac:reply]` for the final reply.
    pub evroute: i64,
    /// The reply's code, in the event route.
    pub evcode: i64,
    /// 1: a reply came; 2: none (timeout).
    pub evtype: i64,
    /// A value for the event route.
    pub evparam: String,
}

thread_local! {
    static REQ: RefCell<UacReq> = RefCell::new(UacReq::default());
}

/// What a request in flight carries.
#[derive(Debug, Clone)]
pub struct Sent {
    req: UacReq,
    cseq: u32,
    from_tag: String,
    callid: String,
    authed: bool,
}

fn s(v: &str) -> Value<'static> {
    if v.is_empty() {
        Value::Null
    } else {
        Value::Str(v.to_string().into())
    }
}

/// Reads `$uac_req(key)`.
pub fn get(_ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let key = name.inner.as_deref().unwrap_or("").trim().to_string();
    REQ.with(|r| {
        let r = r.borrow();
        match key.as_str() {
            "method" => s(&r.method),
            "ruri" => s(&r.ruri),
            "turi" => s(&r.turi),
            "furi" => s(&r.furi),
            "ouri" => s(&r.ouri),
            "hdrs" => s(&r.hdrs),
            "body" => s(&r.body),
            "sock" => s(&r.sock),
            "auser" => s(&r.auser),
            "apasswd" => s(&r.apasswd),
            "callid" => s(&r.callid),
            "evparam" => s(&r.evparam),
            "flags" | "all" => Value::Int(r.flags),
            "evroute" => Value::Int(r.evroute),
            "evcode" => Value::Int(r.evcode),
            "evtype" => Value::Int(r.evtype),
            _ => Value::Null,
        }
    })
}

/// Writes `$uac_req(key)`; `$uac_req(all) = $null` clears all but
/// `auser`, `apasswd` and `sock` (as Kamailio's).
pub fn set(_ctx: &mut Ctx<'_>, name: &PvName, v: Value<'_>) -> Result<(), String> {
    let key = name.inner.as_deref().unwrap_or("").trim().to_string();
    let text = || match &v {
        Value::Null => String::new(),
        other => other.as_str().into_owned(),
    };
    let int = || match &v {
        Value::Null => Ok(0),
        Value::Int(i) => Ok(*i),
        Value::Str(t) => t
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("$uac_req({key}) takes an integer, not '{t}'")),
    };
    let limit = |val: String, max: usize| -> Result<String, String> {
        if val.len() >= max {
            Err(format!(
                "$uac_req({key}): value too long (at most {} bytes)",
                max - 1
            ))
        } else {
            Ok(val)
        }
    };
    REQ.with(|r| -> Result<(), String> {
        let mut r = r.borrow_mut();
        match key.as_str() {
            "all" => {
                if !v.is_null() {
                    return Err("$uac_req(all) can only be set to $null".into());
                }
                let keep = (
                    std::mem::take(&mut r.auser),
                    std::mem::take(&mut r.apasswd),
                    std::mem::take(&mut r.sock),
                );
                *r = UacReq {
                    auser: keep.0,
                    apasswd: keep.1,
                    sock: keep.2,
                    ..UacReq::default()
                };
            }
            "method" => r.method = limit(text(), 32)?,
            "ruri" => r.ruri = limit(text(), 1024)?,
            "turi" => r.turi = limit(text(), 1024)?,
            "furi" => r.furi = limit(text(), 1024)?,
            "ouri" => r.ouri = limit(text(), 1024)?,
            "sock" => r.sock = limit(text(), 1024)?,
            "hdrs" => r.hdrs = limit(text(), 2048)?,
            "body" => r.body = limit(text(), 32768)?,
            "callid" => r.callid = limit(text(), 128)?,
            "auser" => r.auser = limit(text(), 128)?,
            "apasswd" => r.apasswd = limit(text(), 64)?,
            "evparam" => r.evparam = limit(text(), 128)?,
            "flags" => r.flags = int()?,
            "evroute" => r.evroute = int()?,
            "evcode" => r.evcode = int()?,
            "evtype" => r.evtype = int()?,
            other => return Err(format!("$uac_req({other}): unknown key")),
        }
        Ok(())
    })
}

/// `n` random hex digits (auth's random bytes).
pub fn random_hex(n: usize) -> String {
    let mut h = sr_mod_auth::digest::hex(&sr_mod_auth::nonce::random_bytes(n.div_ceil(2)));
    h.truncate(n);
    h
}

/// The request's text, with `branch` and `local` in its Via.
fn build(
    x: &Sent,
    proto: Proto,
    local: &str,
    branch: &str,
    ua: Option<&str>,
    auth: Option<&str>,
) -> String {
    let r = &x.req;
    let to = if r.turi.is_empty() { &r.ruri } else { &r.turi };
    let from = if r.furi.is_empty() { &r.ruri } else { &r.furi };
    let mut t = format!(
        "{m} {ru} SIP/2.0\r\nVia: SIP/2.0/{v} {local};branch={branch}\r\nTo: <{to}>\r\nFrom: <{from}>;tag={tag}\r\nCSeq: {c} {m}\r\nCall-ID: {ci}\r\nMax-Forwards: 70\r\nContent-Length: {len}\r\n",
        m = r.method,
        ru = r.ruri,
        v = proto.via_name(),
        tag = x.from_tag,
        c = x.cseq,
        ci = x.callid,
        len = r.body.len(),
    );
    if let Some(ua) = ua {
        t.push_str(ua);
        t.push_str("\r\n");
    }
    // Each header line ends in CRLF; blank lines (which would end the
    // header section early) are left out.
    for line in r.hdrs.split('\n').map(|l| l.trim_end_matches('\r')) {
        if !line.trim().is_empty() {
            t.push_str(line);
            t.push_str("\r\n");
        }
    }
    if let Some(a) = auth {
        t.push_str(a);
        t.push_str("\r\n");
    }
    t.push_str("\r\n");
    t.push_str(&r.body);
    t
}

/// Sends `x` (a fresh transaction); false when it could not be.
fn transmit(uac: &Uac, core: &dyn Core, x: Sent, auth: Option<&str>) -> bool {
    let Some(tm) = uac.tm() else {
        return false;
    };
    let next = if x.req.ouri.is_empty() {
        x.req.ruri.clone()
    } else {
        x.req.ouri.clone()
    };
    let mut dest = match core.resolve(&next, None) {
        Ok(d) => d,
        Err(e) => {
            lm_err!("uac_req_send: {next}: {e}");
            return false;
        }
    };
    let sock = if x.req.sock.is_empty() {
        params::get_str(&uac.p.default_socket)
    } else {
        x.req.sock.clone()
    };
    if let Some(a) = crate::socket_addr(&sock) {
        dest.send_socket = Some(a);
    }
    let local = sr_mod_tm::local::via_host(core, &dest).unwrap_or_default();
    if local.is_empty() {
        lm_err!("uac_req_send: no local address to send to {next} from");
        return false;
    }
    let (n, branch) = uac.reqs.next_branch();
    let ua = core.user_agent_header();
    let text = build(&x, dest.proto, &local, &branch, ua.as_deref(), auth);
    if let Some(e) = uac
        .reqs
        .start(core, n, text.into_bytes(), dest, &tm.uac_timers(), x)
    {
        ended(uac, core, e, None);
    }
    true
}

/// `uac_req_send()`: 1 sent, -1 not (no method or Request-URI, an INVITE,
/// an address that does not resolve).
pub fn uac_req_send(uac: &Uac, ctx: &mut Ctx<'_>) -> i32 {
    let req = REQ.with(|r| r.borrow().clone());
    if req.method.is_empty() || req.ruri.is_empty() {
        lm_err!("uac_req_send: $uac_req(method) and $uac_req(ruri) are needed");
        return -1;
    }
    if !(0..=1).contains(&req.evroute) {
        lm_err!(
            "uac_req_send: evroute {} is not supported (0 or 1)",
            req.evroute
        );
        return -1;
    }
    if ["INVITE", "ACK", "CANCEL"]
        .iter()
        .any(|m| req.method.eq_ignore_ascii_case(m))
    {
        lm_err!(
            "uac_req_send: {} is not supported (requests without a dialog only)",
            req.method
        );
        return -1;
    }
    let callid = if req.callid.is_empty() {
        format!("{}-{}@uac", random_hex(16), std::process::id())
    } else {
        req.callid.clone()
    };
    let x = Sent {
        from_tag: random_hex(32),
        callid,
        cseq: 10,
        authed: false,
        req,
    };
    if transmit(uac, ctx.core, x, None) {
        1
    } else {
        -1
    }
}

/// A request ended: a 401/407 answered once with credentials, then the
/// event route when asked for, with the reply (`rpl`) as its message.
pub fn ended(uac: &Uac, core: &dyn Core, e: Ended<Sent>, rpl: Option<&mut SipMsg>) {
    let x = e.tag;
    let mut rpl = rpl;
    if x.req.evroute == 1 {
        let mut ev = x.req.clone();
        ev.evcode = i64::from(e.code);
        ev.evtype = if e.replied { 1 } else { 2 };
        if let Some(id) = core.route_id(RouteType::EVENT, "uac:reply") {
            let before = REQ.with(|r| std::mem::replace(&mut *r.borrow_mut(), ev));
            // Run as a request route, as Kamailio's.
            match rpl.as_deref_mut() {
                Some(m) => {
                    core.run_route(id, RouteType::REQUEST, m);
                }
                None => {
                    let mut m = SipMsg::faked();
                    core.run_route(id, RouteType::REQUEST, &mut m);
                }
            }
            REQ.with(|r| *r.borrow_mut() = before);
        }
    }
    let challenged = matches!(e.code, 401 | 407) && e.replied;
    if !challenged || x.authed || x.req.auser.is_empty() || x.req.apasswd.is_empty() {
        return;
    }
    let Some(m) = rpl else {
        return;
    };
    let (hdr, out) = if e.code == 401 {
        (HeaderName::WwwAuthenticate, "Authorization")
    } else {
        (HeaderName::ProxyAuthenticate, "Proxy-Authorization")
    };
    let Some(ch) = m.msg().value(hdr).and_then(|v| parse_challenge(v).ok()) else {
        lm_err!("uac_req_send: no usable challenge in the {}", e.code);
        return;
    };
    let cseq = m.msg().cseq().map_or(x.cseq, |c| c.seq).wrapping_add(1);
    let cred = Credential {
        user: x.req.auser.clone(),
        realm: ch.realm.clone(),
        password: x.req.apasswd.clone(),
    };
    let value = authorization(&ch, &cred, x.req.flags & 1 != 0, &x.req.method, &x.req.ruri);
    let again = Sent {
        cseq,
        authed: true,
        ..x
    };
    transmit(uac, core, again, Some(&format!("{out}: {value}")));
}
