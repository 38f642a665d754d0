//! What topoh does to a message: on the way in, decode what it encoded
//! (Request-URI, Route, Refer-To, Via, Record-Route, Call-ID) and mark the
//! message with its direction (the `TH` cookie); on the way out, encode
//! Via, Record-Route, Contact and Call-ID toward the side that must not
//! see them. The rules and the cookie are Kamailio's topoh's, so a
//! message encoded by one server decodes on the other with the same key.
//!
//! The cookie's three letters: direction (`d` downstream, `u` upstream),
//! request kind (`i` initial, `c` in-dialog), where it was found (`h` the
//! `TH` header, `v` the Via parameter).

use crate::mask::Mask;
use crate::splice::{offset, Splice};
use sr_sdk::sip_msg::headers::{ContactValue, NameAddr, Via};
use sr_sdk::sip_msg::params::Params;
use sr_sdk::sip_msg::{HeaderName, Message, Method, Uri};
use sr_sdk::{Core, RouteId};
use std::sync::{OnceLock, Weak};

/// The cookie's name, as header and as Via parameter.
const COOKIE: &str = "TH";

/// The module's settings, fixed at start.
pub struct Th {
    /// The shuffled alphabet.
    pub mask: Mask,
    /// `mask_ip`.
    pub ip: String,
    /// `uparam_name`.
    pub uparam_name: String,
    /// `uparam_prefix`.
    pub uparam_prefix: String,
    /// `vparam_name`.
    pub vparam_name: String,
    /// `vparam_prefix`.
    pub vparam_prefix: String,
    /// `callid_prefix`.
    pub callid_prefix: String,
    /// `SIP/2.0/UDP <ip>;<vparam_name>=<vparam_prefix>`.
    pub via_prefix: String,
    /// `sip:<ip>;<uparam_name>=<uparam_prefix>`.
    pub uri_prefix: String,
    /// `mask_callid`.
    pub mask_callid: bool,
    /// `mask_mode` bit 1: 3xx replies keep their Contact.
    pub keep_3xx_contact: bool,
    /// `uri_prefix_checks`.
    pub uri_prefix_checks: bool,
    /// Whether `mask_ip` is one of this server's addresses.
    pub addr_myself: bool,
    /// The core, for `myself` and the event routes (none: nothing is
    /// this server's, no route runs).
    pub core: Option<Weak<dyn Core>>,
    /// `event_mode`: bit 1 runs `event_route[topoh:msg-outgoing]`, bit 2
    /// `event_route[topoh:msg-sending]`.
    pub event_mode: i64,
    /// Those routes, looked up once the script is compiled.
    pub routes: OnceLock<EventRoutes>,
}

/// topoh's event routes, when the script has them.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventRoutes {
    /// `event_route[topoh:msg-outgoing]`: runs on a faked message, before
    /// the outgoing message is read; `drop` leaves the message as it is.
    pub outgoing: Option<RouteId>,
    /// `event_route[topoh:msg-sending]`: runs on the outgoing message
    /// (its cookie read); `drop` leaves it as it is.
    pub sending: Option<RouteId>,
}

/// A message topoh can work on: parsed, with From, To, Call-ID, a Via
/// and a CSeq; not a REGISTER or PUBLISH (Kamailio's `th_prepare_msg`
/// and `th_skip_msg`).
fn usable<'a>(buf: &'a [u8]) -> Option<Message<'a>> {
    let m = Message::parse(buf).ok()?;
    if m.is_http() {
        return None;
    }
    m.from().ok()?;
    m.to().ok()?;
    m.top_via().ok()?;
    m.call_id().ok()?;
    let method = m.cseq().ok()?.method;
    if matches!(method, Method::Register | Method::Publish) {
        return None;
    }
    Some(m)
}

/// The via-parms of a message, topmost first (unparsable ones end it).
fn vias<'a>(m: &Message<'a>) -> Vec<Via<'a>> {
    m.vias().map_while(Result::ok).collect()
}

/// A parameter's value in a parameter list (`None` when absent).
fn param<'a>(params: &'a str, name: &str) -> Option<Option<&'a str>> {
    Params::new(params).get(name)
}

impl Th {
    fn is_myself(&self, host: &str, port: Option<u16>) -> bool {
        self.core
            .as_ref()
            .and_then(Weak::upgrade)
            .is_some_and(|c| c.is_myself(host.trim_matches(['[', ']']), port))
    }

    /// The value of `uparam_name` in a URI, when it is there and not empty.
    fn line_value<'a>(&self, uri: &'a str) -> Option<&'a str> {
        let u = Uri::parse(uri).ok()?;
        param(u.params, &self.uparam_name)
            .flatten()
            .filter(|v| !v.is_empty())
    }

    fn has_uri_prefix(&self, uri: &str) -> bool {
        uri.len() >= self.uri_prefix.len()
            && uri.as_bytes()[..self.uri_prefix.len()]
                .eq_ignore_ascii_case(self.uri_prefix.as_bytes())
    }

    // ---- the way in -------------------------------------------------

    /// Decodes a received message; `None` when nothing changes.
    pub fn received(&self, buf: &[u8]) -> Option<Vec<u8>> {
        let m = usable(buf)?;
        let mut sp = Splice::default();
        let cookie: String;
        if m.is_request() {
            let dialog = m.to_tag().ok().flatten().is_some_and(|t| !t.is_empty());
            if dialog {
                let upstream = self.upstream(&m)?;
                cookie = if upstream { "uc" } else { "dc" }.into();
                self.unmask_ruri(&m, &mut sp);
                self.unmask_routes(&m, &mut sp);
                self.unmask_refer_to(&m, &mut sp);
                if upstream {
                    self.unmask_callid(&m, &mut sp);
                }
            } else {
                cookie = "di".into();
            }
        } else {
            let vs = vias(&m);
            let method = m.cseq().ok()?.method;
            if vs.len() < 2 && method != Method::Cancel {
                // A reply to a request of ours: nothing of it was hidden.
                return None;
            }
            let found = self.unmask_vias(buf, &vs, &mut sp);
            self.decode_record_routes(&m, &mut sp);
            if found.as_bytes().first() == Some(&b'u') {
                cookie = "dc".into();
            } else {
                cookie = "uc".into();
                self.unmask_callid(&m, &mut sp);
            }
        }
        // The cookie: a `TH` header last, a parameter on the top Via.
        sp.insert(
            m.headers_end() as usize,
            format!("{COOKIE}: {cookie}h\r\n").into_bytes(),
        );
        if let Ok(v) = m.top_via() {
            sp.insert(
                via_param_point(buf, &v),
                format!(";{COOKIE}={cookie}v").into_bytes(),
            );
        }
        Some(sp.apply(buf))
    }

    /// Kamailio's `th_route_direction` for an in-dialog request: upstream
    /// when the first Route's `ftag` is not the From tag. `None` without
    /// a From tag.
    fn upstream(&self, m: &Message<'_>) -> Option<bool> {
        let ftag = m.from_tag().ok().flatten().filter(|t| !t.is_empty())?;
        let Some(first) = m.routes().next() else {
            return Some(false);
        };
        let Ok(r) = first else {
            return None;
        };
        Some(match param(r.uri.params, "ftag") {
            Some(v) => v.unwrap_or("") != ftag,
            None => false,
        })
    }

    fn decode_line(&self, value: &str) -> Option<Vec<u8>> {
        self.mask.decode(value.as_bytes(), self.uparam_prefix.len())
    }

    fn unmask_ruri(&self, m: &Message<'_>, sp: &mut Splice) {
        let Some(u) = m.request_uri() else { return };
        let raw = u.raw;
        if self.uri_prefix_checks && !self.has_uri_prefix(raw) {
            return;
        }
        let Some(v) = self.line_value(raw) else {
            return;
        };
        if let Some(d) = self.decode_line(v) {
            let at = offset(m.raw(), raw);
            sp.replace(at, at + raw.len(), d);
        }
    }

    fn unmask_routes(&self, m: &Message<'_>, sp: &mut Splice) {
        for r in m.routes().map_while(Result::ok).skip(1) {
            if self.uri_prefix_checks && !self.has_uri_prefix(r.uri_str) {
                continue;
            }
            let Some(v) = self.line_value(r.uri_str) else {
                continue;
            };
            let Some(d) = self.decode_line(v) else { return };
            let at = offset(m.raw(), r.uri_str);
            sp.replace(at, at + r.uri_str.len(), d);
        }
    }

    fn unmask_refer_to(&self, m: &Message<'_>, sp: &mut Splice) {
        if m.cseq().map(|c| c.method) != Ok(Method::Refer) {
            return;
        }
        let Some(v) = m.value(HeaderName::ReferTo) else {
            return;
        };
        let Ok(na) = NameAddr::parse(v, "Refer-To") else {
            return;
        };
        let uri = na.uri_str;
        if self.uri_prefix_checks && !self.has_uri_prefix(uri) {
            return;
        }
        let Some(val) = self.line_value(uri) else {
            return;
        };
        let Some(d) = self.decode_line(val) else {
            return;
        };
        // The URI's headers (`?Replaces=...`) stay.
        let len = uri.find('?').unwrap_or(uri.len());
        let at = offset(m.raw(), uri);
        sp.replace(at, at + len, d);
    }

    fn unmask_callid(&self, m: &Message<'_>, sp: &mut Splice) {
        if !self.mask_callid {
            return;
        }
        let Ok(cid) = m.call_id() else { return };
        let p = self.callid_prefix.as_bytes();
        if cid.len() < p.len() || !cid.as_bytes()[..p.len()].eq_ignore_ascii_case(p) {
            return;
        }
        if let Some(d) = self.mask.decode(cid.as_bytes(), p.len()) {
            let at = offset(m.raw(), cid);
            sp.replace(at, at + cid.len(), d);
        }
    }

    /// Decodes the Vias below the top one; gives the cookie found in the
    /// second (`xx` when none).
    fn unmask_vias(&self, buf: &[u8], vs: &[Via<'_>], sp: &mut Splice) -> String {
        let mut cookie = "xx".to_string();
        for (i, v) in vs.iter().enumerate().skip(1) {
            if self.uri_prefix_checks && !v.host_str.eq_ignore_ascii_case(&self.ip) {
                continue;
            }
            let Some(value) = param(v.params, &self.vparam_name) else {
                return cookie;
            };
            let value = value.unwrap_or("");
            if !self.vparam_prefix.is_empty()
                && (value.len() <= self.vparam_prefix.len()
                    || !value.starts_with(self.vparam_prefix.as_str()))
            {
                continue;
            }
            let Some(d) = self.mask.decode(value.as_bytes(), self.vparam_prefix.len()) else {
                return cookie;
            };
            if i == 1 {
                let text = String::from_utf8_lossy(&d);
                let Some(c) = Via::parse(&text)
                    .ok()
                    .and_then(|dv| param(dv.params, COOKIE).map(|c| c.unwrap_or("").to_string()))
                else {
                    return cookie;
                };
                cookie = c;
            }
            let at = offset(buf, v.raw);
            sp.replace(at, at + trimmed_len(v.raw), d);
        }
        cookie
    }

    /// Record-Route on a received reply: the entries this server encoded
    /// are decoded (Kamailio's `th_flip_record_route` mode 0).
    fn decode_record_routes(&self, m: &Message<'_>, sp: &mut Splice) {
        for r in m.record_routes().map_while(Result::ok) {
            if let UriKind::Encoded(v) = self.uri_kind(&r) {
                let Some(d) = self.decode_line(v) else { return };
                let at = offset(m.raw(), r.uri_str);
                sp.replace(at, at + r.uri_str.len(), d);
            }
        }
    }

    /// Kamailio's `th_get_uri_type`.
    fn uri_kind<'a>(&self, r: &NameAddr<'a>) -> UriKind<'a> {
        let u = &r.uri;
        if u.host_str.eq_ignore_ascii_case(&self.ip) {
            if let Some(v) = param(u.params, &self.uparam_name) {
                return UriKind::Encoded(v.unwrap_or(""));
            }
            if !self.addr_myself {
                return UriKind::Mine { r2: false };
            }
        }
        if self.is_myself(u.host_str, u.port) {
            let r2 = param(u.params, "r2")
                .flatten()
                .is_some_and(|v| v.eq_ignore_ascii_case("on"));
            return UriKind::Mine { r2 };
        }
        UriKind::Other
    }

    // ---- the way out ------------------------------------------------

    /// Encodes a message about to be sent; `None` when nothing changes.
    pub fn sending(&self, buf: &[u8]) -> Option<Vec<u8>> {
        let routes = self.routes.get().copied().unwrap_or_default();
        if self.event_mode & 1 != 0 && self.dropped_by(routes.outgoing, None) {
            return None;
        }
        let m = usable(buf)?;
        let mut sp = Splice::default();
        let cookie = self.take_cookie(&m, &mut sp);
        if self.event_mode & 2 != 0 && self.dropped_by(routes.sending, Some(buf)) {
            return None;
        }
        let c = cookie.as_bytes();
        let vs = vias(&m);
        if m.is_request() {
            let upstream = c[0] == b'u';
            let dialog = m.to_tag().ok().flatten().is_some_and(|t| !t.is_empty());
            let local = if vs.len() < 2 {
                if !upstream && c.get(1) == Some(&b'l') {
                    2
                } else {
                    1
                }
            } else if c[0] != b'd' && c[0] != b'u' {
                1
            } else {
                0
            };
            if local > 0 {
                let method = m.cseq().ok()?.method;
                if matches!(method, Method::Ack | Method::Cancel) || local == 2 {
                    self.mask_callid(&m, &mut sp);
                    return Some(sp.apply(buf));
                }
                return None;
            }
            self.mask_vias(buf, &vs, &mut sp);
            self.mask_contact(&m, &mut sp);
            self.mask_record_routes(&m, &mut sp);
            if dialog {
                if !upstream {
                    self.mask_callid(&m, &mut sp);
                }
            } else {
                self.update_replaces(&m, &mut sp);
                self.mask_callid(&m, &mut sp);
            }
        } else {
            match c.last() {
                Some(b'x') | None => return None,
                Some(b'v') => {
                    // A reply of ours: the request said which way it goes.
                    if c[0] == b'u' {
                        self.mask_callid(&m, &mut sp);
                    }
                }
                _ => {
                    self.encode_record_routes(&m, &mut sp);
                    let code = m.status().unwrap_or(0);
                    if !(self.keep_3xx_contact && (300..=399).contains(&code)) {
                        self.mask_contact(&m, &mut sp);
                    }
                    if c[0] == b'd' {
                        self.mask_callid(&m, &mut sp);
                    }
                }
            }
        }
        if sp.is_empty() {
            return None;
        }
        Some(sp.apply(buf))
    }

    /// Runs one of topoh's event routes (on a faked message, or on `buf`
    /// parsed); whether it executed `drop`. While it runs, `$sndto(...)`
    /// names the destination (set by the core around the hooks).
    fn dropped_by(&self, route: Option<RouteId>, buf: Option<&[u8]>) -> bool {
        let (Some(id), Some(core)) = (route, self.core.as_ref().and_then(Weak::upgrade)) else {
            return false;
        };
        sr_sdk::core_api::event_route_drops(&*core, id, buf)
    }

    /// The cookie of an outgoing message (`TH` header, else the top Via's
    /// parameter, else `xxx`), its header and — on a reply — its Via
    /// parameter taken out.
    fn take_cookie(&self, m: &Message<'_>, sp: &mut Splice) -> String {
        let top = m.top_via().ok();
        let via_cookie = top.and_then(|v| via_param_span(m.raw(), &v, COOKIE));
        let header = m
            .headers()
            .iter()
            .find(|h| h.name_str.eq_ignore_ascii_case(COOKIE));
        let cookie = match (header, &via_cookie) {
            (Some(h), _) => h.value.to_string(),
            (None, Some((_, _, v))) => v.clone(),
            (None, None) => return "xxx".into(),
        };
        if cookie.is_empty() || cookie.starts_with('x') {
            return if cookie.is_empty() {
                "xxx".into()
            } else {
                cookie
            };
        }
        if let Some(h) = header {
            sp.replace(h.start as usize, h.end as usize, Vec::new());
        }
        if !m.is_request() {
            if let Some((start, end, _)) = via_cookie {
                sp.replace(start, end, Vec::new());
            }
        }
        cookie
    }

    fn mask_vias(&self, buf: &[u8], vs: &[Via<'_>], sp: &mut Splice) {
        for v in vs.iter().skip(1) {
            let len = trimmed_len(v.raw);
            let at = offset(buf, v.raw);
            sp.replace(
                at,
                at + len,
                self.mask.encode(&v.raw.as_bytes()[..len], &self.via_prefix),
            );
        }
    }

    fn mask_contact(&self, m: &Message<'_>, sp: &mut Splice) {
        let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
            return;
        };
        let uri = c.uri_str;
        let mut enc = self.mask.encode(uri.as_bytes(), &self.uri_prefix);
        if !c.bracketed {
            enc.insert(0, b'<');
            enc.push(b'>');
        }
        let at = offset(m.raw(), uri);
        sp.replace(at, at + uri.len(), enc);
    }

    fn encode_uri(&self, m: &Message<'_>, r: &NameAddr<'_>, sp: &mut Splice) {
        let at = offset(m.raw(), r.uri_str);
        sp.replace(
            at,
            at + r.uri_str.len(),
            self.mask.encode(r.uri_str.as_bytes(), &self.uri_prefix),
        );
    }

    /// Record-Route on a request going out: all but the first entry
    /// (this server's) encoded.
    fn mask_record_routes(&self, m: &Message<'_>, sp: &mut Splice) {
        for r in m.record_routes().map_while(Result::ok).skip(1) {
            self.encode_uri(m, &r, sp);
        }
    }

    /// Record-Route on a reply going out (Kamailio's
    /// `th_flip_record_route` mode 1): the entries before this server's
    /// are encoded; with two of this server's (`r2=on`), the first of the
    /// two too.
    fn encode_record_routes(&self, m: &Message<'_>, sp: &mut Splice) {
        let mut left = 2;
        for r in m.record_routes().map_while(Result::ok) {
            match self.uri_kind(&r) {
                UriKind::Mine { r2: true } => {
                    left -= 1;
                    if left == 0 {
                        return;
                    }
                    self.encode_uri(m, &r, sp);
                }
                UriKind::Mine { r2: false } => return,
                UriKind::Other => self.encode_uri(m, &r, sp),
                UriKind::Encoded(_) => {}
            }
        }
    }

    fn mask_callid(&self, m: &Message<'_>, sp: &mut Splice) {
        if !self.mask_callid {
            return;
        }
        let Ok(cid) = m.call_id() else { return };
        let at = offset(m.raw(), cid);
        sp.replace(
            at,
            at + cid.len(),
            self.mask.encode(cid.as_bytes(), &self.callid_prefix),
        );
    }

    /// The Call-ID in `Replaces` of an initial INVITE: decoded when it is
    /// encoded, else encoded.
    fn update_replaces(&self, m: &Message<'_>, sp: &mut Splice) {
        if !self.mask_callid || m.cseq().map(|c| c.method) != Ok(Method::Invite) {
            return;
        }
        let Some(h) = m
            .headers()
            .iter()
            .find(|h| h.name_str.eq_ignore_ascii_case("Replaces"))
        else {
            return;
        };
        let v = h.value.trim();
        let cid = &v[..v.find(';').unwrap_or(v.len())];
        let p = &self.callid_prefix;
        let new = if cid.len() > p.len() && cid.starts_with(p.as_str()) {
            match self.mask.decode(cid.as_bytes(), p.len()) {
                Some(d) => d,
                None => return,
            }
        } else {
            self.mask.encode(cid.as_bytes(), p)
        };
        let at = offset(m.raw(), cid);
        sp.replace(at, at + cid.len(), new);
    }
}

/// What a Record-Route entry is to this server.
enum UriKind<'a> {
    /// Encoded by topoh: the value to decode.
    Encoded(&'a str),
    /// This server's own (`r2=on` when it record-routed twice).
    Mine { r2: bool },
    /// Another hop's.
    Other,
}

/// A Via value's length without trailing white space and commas.
fn trimmed_len(raw: &str) -> usize {
    raw.trim_end_matches([' ', '\t', '\r', '\n', ',']).len()
}

/// Where a parameter goes first in a Via: before its first `;`, else
/// after the sent-by.
fn via_param_point(buf: &[u8], v: &Via<'_>) -> usize {
    let start = offset(buf, v.raw);
    match v.raw.find(';') {
        Some(i) => start + i,
        None => start + trimmed_len(v.raw),
    }
}

/// A Via parameter's span (from its `;` to the end of its value) and
/// value.
fn via_param_span(buf: &[u8], v: &Via<'_>, name: &str) -> Option<(usize, usize, String)> {
    for p in Params::new(v.params) {
        if p.name.eq_ignore_ascii_case(name) {
            let start = offset(buf, p.name);
            let end = match p.value {
                Some(val) => offset(buf, val) + val.len(),
                None => start + p.name.len(),
            };
            // The `;` before the name (white space allowed around it).
            let semi = buf[..start].iter().rposition(|&b| b == b';')?;
            return Some((semi, end, p.value.unwrap_or("").to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn th(mask_callid: bool) -> Th {
        let ip = "127.0.0.8".to_string();
        Th {
            mask: Mask::new(b"aL9.n8~Hm]Z").unwrap(),
            via_prefix: format!("SIP/2.0/UDP {ip};branch=z9hG4bKsr-"),
            uri_prefix: format!("sip:{ip};line=sr-"),
            ip,
            uparam_name: "line".into(),
            uparam_prefix: "sr-".into(),
            vparam_name: "branch".into(),
            vparam_prefix: "z9hG4bKsr-".into(),
            callid_prefix: "!!:".into(),
            mask_callid,
            keep_3xx_contact: false,
            uri_prefix_checks: false,
            addr_myself: false,
            core: None,
            event_mode: 3,
            routes: OnceLock::new(),
        }
    }

    const INVITE: &str = "INVITE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKp\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;TH=div;branch=z9hG4bKa\r\nRecord-Route: <sip:192.0.2.1;lr>\r\nRecord-Route: <sip:10.9.9.9;lr>\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: abc@10.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@10.0.0.1:5070>\r\nTH: dih\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn an_outgoing_request_hides_and_the_reply_comes_back_whole() {
        let t = th(true);
        let out = String::from_utf8(t.sending(INVITE.as_bytes()).unwrap()).unwrap();
        assert!(!out.contains("10.0.0.1"), "{out}");
        assert!(!out.contains("10.9.9.9"), "{out}");
        assert!(!out.contains("TH:"), "{out}");
        assert!(out.contains("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKp\r\n"));
        assert!(out.contains("Record-Route: <sip:192.0.2.1;lr>\r\n"));
        assert!(out.contains("Call-ID: !!:"));
        // The callee answers with what it got; on the way back in, all is
        // decoded and the cookie says the reply goes upstream.
        let m = Message::parse(out.as_bytes()).unwrap();
        let mut reply = String::from("SIP/2.0 200 OK\r\n");
        for h in m.headers() {
            if matches!(
                h.name,
                HeaderName::Via
                    | HeaderName::RecordRoute
                    | HeaderName::From
                    | HeaderName::CallId
                    | HeaderName::CSeq
            ) {
                reply.push_str(&format!("{}: {}\r\n", h.name_str, h.value));
            }
        }
        reply.push_str(
            "To: <sip:b@y>;tag=2\r\nContact: <sip:b@10.0.0.2>\r\nContent-Length: 0\r\n\r\n",
        );
        let back = String::from_utf8(t.received(reply.as_bytes()).unwrap()).unwrap();
        assert!(
            back.contains("Via: SIP/2.0/UDP 10.0.0.1:5070;TH=div;branch=z9hG4bKa\r\n"),
            "{back}"
        );
        assert!(
            back.contains("Record-Route: <sip:10.9.9.9;lr>\r\n"),
            "{back}"
        );
        assert!(back.contains("Call-ID: abc@10.0.0.1\r\n"), "{back}");
        assert!(back.contains("TH: uch\r\n\r\n"), "{back}");
        assert!(
            back.contains("Via: SIP/2.0/UDP 192.0.2.1:5060;TH=ucv;branch=z9hG4bKp"),
            "{back}"
        );
    }

    #[test]
    fn registrations_and_unparsable_messages_pass_untouched() {
        let t = th(true);
        let reg = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 REGISTER");
        assert_eq!(t.sending(reg.as_bytes()), None);
        assert_eq!(t.received(reg.as_bytes()), None);
        assert_eq!(t.sending(b"\r\n\r\n"), None);
        assert_eq!(t.received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
    }

    #[test]
    fn bad_encoded_values_are_left_as_they_are() {
        let t = th(true);
        let bye = "BYE sip:127.0.0.8;line=sr-!!bad SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb\r\nRoute: <sip:192.0.2.1;lr;ftag=1>, <sip:127.0.0.8;line=sr-*>\r\nFrom: <sip:b@y>;tag=2\r\nTo: <sip:a@x>;tag=1\r\nCall-ID: !!:@@@\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let out = String::from_utf8(t.received(bye.as_bytes()).unwrap()).unwrap();
        assert!(
            out.starts_with("BYE sip:127.0.0.8;line=sr-!!bad SIP/2.0"),
            "{out}"
        );
        assert!(out.contains("Call-ID: !!:@@@\r\n"), "{out}");
        assert!(out.contains("TH: uch\r\n"), "{out}");
    }

    #[test]
    fn mutated_messages_never_panic() {
        let t = th(true);
        let seed = INVITE.as_bytes();
        let enc = t.sending(seed).unwrap();
        let mut x: u32 = 7;
        for base in [seed, &enc[..]] {
            for _ in 0..3000 {
                let mut m = base.to_vec();
                for _ in 0..4 {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let i = (x as usize >> 8) % m.len();
                    match x % 3 {
                        0 => m[i] = (x >> 16) as u8,
                        1 => {
                            m.remove(i);
                        }
                        _ => m.insert(i, b";,<>*"[(x >> 20) as usize % 5]),
                    }
                }
                let _ = t.sending(&m);
                let _ = t.received(&m);
            }
        }
    }
}
