//! # sanity: SIP syntax checks
//!
//! Kamailio's `sanity` module. `sanity_check()`,
//! `sanity_check(msg_checks)` and `sanity_check(msg_checks, uri_checks)`
//! run the checks selected by the bit masks (Kamailio's numbers):
//!
//! | bit | check | reply on failure |
//! |---|---|---|
//! | 1 | Request-URI SIP version is 2.0 | 505 Version Not Supported (R-URI) |
//! | 2 | Request-URI scheme is sip, sips or tel | 416 Unsupported URI Scheme in Request URI (400 Bad Request URI when unparsable) |
//! | 4 | Via, From, To, Call-ID, CSeq present, From/To/Call-ID/CSeq not duplicated | none (as Kamailio: no reliable reply can be built) |
//! | 8, 16 | Via version / protocol: disabled in Kamailio, always pass | |
//! | 32 | CSeq method equals the request method | 400 CSeq method does not match request method |
//! | 64 | CSeq number is a valid 32-bit unsigned integer | 400 CSeq number is illegal |
//! | 128 | Content-Length equals the body size | 400 Content-Length mis-match |
//! | 256 | Expires is a valid unsigned integer | 400 Bad Expires Header (empty) / Expires value is illegal |
//! | 512 | every Proxy-Require tag is in the `proxy_require` parameter | 420 Bad Proxy Require Extension, with `Unsupported:` listing the unknown ones |
//! | 1024 | the URIs chosen by `uri_checks` parse | 400 Bad Request URI / Invalid From Header / Ivalid To Header (Kamailio's spelling) / Bad Contact Header / Bad Contact URI |
//! | 2048 | digest credentials complete (other schemes fail, as Kamailio) | 400 Bad Auth Header / Bad Auth Credentials / Auth Empty User / Auth Empty Nonce / Auth Empty Response |
//! | 4096 | at most one tag in From and in To | 400 Many From Tag Params / Many To Tag Params |
//! | 8192 | Authorization valid when digest (other schemes pass) | as 2048 |
//! | 16384 | the first Via parses and has a host | none |
//! | 65536 | size limits (`size_*` parameters) | none |
//!
//! Bit 32768 (RFC 3261 compliance in recent Kamailio) is accepted and
//! passes. `uri_checks`: 1 Request-URI, 2 From, 4 To, 8 Contact.
//!
//! On failure the module replies itself (statelessly) unless the message
//! is a reply or an ACK, or `noreply` is set (then `sanity_reply()` sends
//! it). With `autodrop=1` (the default) a failure stops the script (the
//! function returns 0, which is `exit`); with `autodrop=0` it returns -1.
//! Works in reply routes too: a failed check there drops the reply.
//!
//! Parameters: `default_checks` (3047), `uri_checks` (7), `proxy_require`
//! (comma list, empty), `autodrop` (1), `noreply` (0) and the size limits
//! `size_message` (16384), `size_method` (32), `size_ruri` (256),
//! `size_from_uri` (256), `size_to_uri` (256), `size_contact_uri` (256),
//! `size_route_uri` (256), `size_header` (2048), `size_headers` (8192),
//! `size_body` (8192), `size_checks` (0: run the size checks on every call).
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
use sr_sdk::sip_msg::params::Params;
use sr_sdk::sip_msg::{Scheme, Uri};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// Check bits of the first parameter.
pub mod checks {
    /// Request-URI SIP version.
    pub const RURI_SIP_VERSION: i64 = 1;
    /// Request-URI scheme.
    pub const RURI_SCHEME: i64 = 1 << 1;
    /// Required headers.
    pub const REQUIRED_HEADERS: i64 = 1 << 2;
    /// Via SIP version (disabled in Kamailio).
    pub const VIA_SIP_VERSION: i64 = 1 << 3;
    /// Via protocol (disabled in Kamailio).
    pub const VIA_PROTOCOL: i64 = 1 << 4;
    /// CSeq method.
    pub const CSEQ_METHOD: i64 = 1 << 5;
    /// CSeq value.
    pub const CSEQ_VALUE: i64 = 1 << 6;
    /// Content-Length.
    pub const CL: i64 = 1 << 7;
    /// Expires value.
    pub const EXPIRES_VALUE: i64 = 1 << 8;
    /// Proxy-Require.
    pub const PROXY_REQUIRE: i64 = 1 << 9;
    /// Parse URIs.
    pub const PARSE_URIS: i64 = 1 << 10;
    /// Digest credentials.
    pub const DIGEST: i64 = 1 << 11;
    /// Duplicated To/From tags.
    pub const DUPTAGS: i64 = 1 << 12;
    /// Authorization header.
    pub const AUTHORIZATION: i64 = 1 << 13;
    /// First Via.
    pub const VIA1: i64 = 1 << 14;
    /// RFC 3261 compliance (accepted, passes).
    pub const RFC3261: i64 = 1 << 15;
    /// Size checks.
    pub const SIZES: i64 = 1 << 16;
    /// One past the highest bit.
    pub const MAX: i64 = 1 << 17;
    /// `default_checks`: 1+2+4+32+64+128+256+512+2048.
    pub const DEFAULT: i64 = 3047;

    /// URI checks (second parameter): Request-URI.
    pub const URI_RURI: i64 = 1;
    /// From URI.
    pub const URI_FROM: i64 = 2;
    /// To URI.
    pub const URI_TO: i64 = 4;
    /// Contact URI.
    pub const URI_CONTACT: i64 = 8;
    /// One past the highest URI bit.
    pub const URI_MAX: i64 = 16;
    /// `uri_checks` default: R-URI, From, To.
    pub const URI_DEFAULT: i64 = 7;
}

/// Why a check failed: the reply to send (none when no reply can be
/// built reliably, as Kamailio's `FL_MSG_NOREPLY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Status and reason of the reply, if one is sent.
    pub reply: Option<(u16, &'static str)>,
    /// Headers to add to the reply (`Unsupported:` for 420).
    pub headers: Option<String>,
}

fn reply(code: u16, reason: &'static str) -> Fault {
    Fault {
        reply: Some((code, reason)),
        headers: None,
    }
}

fn silent() -> Fault {
    Fault {
        reply: None,
        headers: None,
    }
}

/// The size limits (`size_*` parameters); 0 disables one.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Whole message.
    pub message: i64,
    /// Method name.
    pub method: i64,
    /// Request-URI.
    pub ruri: i64,
    /// From URI.
    pub from_uri: i64,
    /// To URI.
    pub to_uri: i64,
    /// Each Contact URI.
    pub contact_uri: i64,
    /// Each Route / Record-Route URI.
    pub route_uri: i64,
    /// Each header line.
    pub header: i64,
    /// The whole header section.
    pub headers: i64,
    /// The body.
    pub body: i64,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            message: 16384,
            method: 32,
            ruri: 256,
            from_uri: 256,
            to_uri: 256,
            contact_uri: 256,
            route_uri: 256,
            header: 2048,
            headers: 8192,
            body: 8192,
        }
    }
}

/// The module configuration the checks need.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Extensions accepted in Proxy-Require.
    pub proxy_require: Vec<String>,
    /// Size limits.
    pub sizes: Sizes,
}

fn valid_uint(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 10
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok()
}

fn uri_scheme_ok(u: &Uri<'_>) -> bool {
    match u.scheme {
        Scheme::Sip | Scheme::Sips | Scheme::Tel => true,
        Scheme::Other => {
            let scheme = u.raw.split(':').next().unwrap_or("");
            scheme.eq_ignore_ascii_case("tels") || scheme.eq_ignore_ascii_case("urn")
        }
    }
}

/// Runs the selected checks on a message. `Ok(())` when all pass.
pub fn check(msg: &SipMsg, msg_checks: i64, uri_checks: i64, cfg: &Config) -> Result<(), Fault> {
    use checks::*;
    let m = msg.msg();
    let req = m.is_request();
    if msg_checks & SIZES != 0 {
        check_sizes(msg, &cfg.sizes)?;
    }
    if req && msg_checks & RURI_SIP_VERSION != 0 {
        // The parser takes only SIP/2.0 (other versions are answered with
        // 505 before the script runs); a rewritten message is checked here.
        let raw = m.raw();
        let skip = raw
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(0);
        let raw = &raw[skip..];
        let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
        let line = raw[..line_end].trim_ascii_end();
        let version = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
        if !version.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(reply(505, "Version Not Supported (R-URI)"));
        }
    }
    if req && msg_checks & RURI_SCHEME != 0 {
        match msg.ruri_parsed() {
            Err(_) => return Err(reply(400, "Bad Request URI")),
            // RFC 3261 8.2.2.1 / RFC 4475 3.3.9: 416 (Kamailio, whose
            // parser reads no other scheme, sends 400 here).
            Ok(u) if !uri_scheme_ok(&u) => {
                return Err(reply(416, "Unsupported URI Scheme in Request URI"))
            }
            Ok(_) => {}
        }
    }
    if msg_checks & REQUIRED_HEADERS != 0 {
        if m.check_mandatory().is_err() {
            return Err(silent());
        }
        for h in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            if m.headers_named(h).nth(1).is_some() {
                lm_dbg!("sanity: duplicated {} header", h.as_str());
                return Err(silent());
            }
        }
    }
    if msg_checks & VIA1 != 0 {
        match m.top_via() {
            Ok(v) if !v.host_str.is_empty() => {}
            _ => return Err(silent()),
        }
    }
    if req && msg_checks & CSEQ_METHOD != 0 {
        let Some(h) = m.header(HeaderName::CSeq) else {
            return Err(silent());
        };
        let mut parts = h.value.split_ascii_whitespace();
        let _num = parts.next();
        match parts.next() {
            None => return Err(reply(400, "Missing method in CSeq header")),
            Some(cm) => {
                let rm = m.method().map(|x| x.as_str()).unwrap_or("");
                if cm != rm {
                    return Err(reply(400, "CSeq method does not match request method"));
                }
            }
        }
    }
    if msg_checks & CSEQ_VALUE != 0 {
        let Some(h) = m.header(HeaderName::CSeq) else {
            return Err(silent());
        };
        match h.value.split_ascii_whitespace().next() {
            None => return Err(reply(400, "Missing number in CSeq header")),
            Some(n) if !valid_uint(n) => return Err(reply(400, "CSeq number is illegal")),
            Some(_) => {}
        }
    }
    if msg_checks & CL != 0 {
        if let Some(h) = m.header(HeaderName::ContentLength) {
            let Some(declared) = m.content_length() else {
                lm_dbg!("sanity: bad Content-Length '{}'", h.value);
                return Err(reply(400, "Content-Length Failure"));
            };
            // The received bytes past the head: what the datagram really
            // carried (the parser stops at Content-Length).
            let total = msg.bytes().len();
            let actual = total.saturating_sub(m.body_start() as usize);
            if actual != declared as usize {
                return Err(reply(400, "Content-Length mis-match"));
            }
        }
    }
    if msg_checks & EXPIRES_VALUE != 0 {
        if let Some(h) = m.header(HeaderName::Expires) {
            let v = h.value.trim();
            // Kamailio's reasons: an empty value is a bad header, a
            // value that is not a 32-bit number an illegal one.
            if v.is_empty() {
                return Err(reply(400, "Bad Expires Header"));
            }
            if !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(reply(400, "Expires value is illegal"));
            }
            if !valid_uint(v) {
                return Err(reply(400, "Expires value is illegal"));
            }
        }
    }
    if msg_checks & PROXY_REQUIRE != 0 {
        let unsupported: Vec<&str> = m
            .tokens(HeaderName::ProxyRequire)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .filter(|t| !cfg.proxy_require.iter().any(|s| s == t))
            .collect();
        // Every unknown option listed, as RFC 3261 8.2.2.3 asks (Kamailio
        // names the first only); Kamailio's reason text.
        if !unsupported.is_empty() {
            return Err(Fault {
                reply: Some((420, "Bad Proxy Require Extension")),
                headers: Some(format!("Unsupported: {}\r\n", unsupported.join(", "))),
            });
        }
    }
    if msg_checks & PARSE_URIS != 0 {
        check_uris(msg, uri_checks)?;
    }
    if msg_checks & DIGEST != 0 {
        check_digest(msg, true)?;
    }
    if msg_checks & AUTHORIZATION != 0 {
        check_digest(msg, false)?;
    }
    if msg_checks & DUPTAGS != 0 {
        for (h, fault) in [
            (HeaderName::From, "Many From Tag Params"),
            (HeaderName::To, "Many To Tag Params"),
        ] {
            let Some(Ok(na)) = from_or_to(m, h) else {
                return Err(silent());
            };
            let tags = Params::new(na.params)
                .filter(|p| p.name.eq_ignore_ascii_case("tag"))
                .count();
            if tags > 1 {
                return Err(reply(400, fault));
            }
        }
    }
    Ok(())
}

/// From or To (decoded once per message); `None` when the header is
/// missing.
fn from_or_to<'a>(
    m: &sr_sdk::sip_msg::Message<'a>,
    h: HeaderName,
) -> Option<Result<sr_sdk::sip_msg::headers::NameAddr<'a>, sr_sdk::sip_msg::ParseError>> {
    m.value(h)?;
    Some(if h == HeaderName::From {
        m.from()
    } else {
        m.to()
    })
}

/// Whether the first Contact value is `<...>` (so a parse error is the
/// URI's, not the header's).
fn contact_bracketed(m: &sr_sdk::sip_msg::Message<'_>) -> bool {
    m.header(HeaderName::Contact).is_some_and(|h| {
        let v = h.value.trim();
        v.find('<').is_some_and(|lt| v[lt..].contains('>'))
    })
}

fn check_uris(msg: &SipMsg, uri_checks: i64) -> Result<(), Fault> {
    use checks::*;
    let m = msg.msg();
    if m.is_request() && uri_checks & URI_RURI != 0 {
        match msg.ruri_parsed() {
            Ok(u) if uri_scheme_ok(&u) => {}
            _ => return Err(reply(400, "Bad Request URI")),
        }
    }
    for (bit, h, reason) in [
        (URI_FROM, HeaderName::From, "Invalid From Header"),
        // (Kamailio's reason phrase, spelling included.)
        (URI_TO, HeaderName::To, "Ivalid To Header"),
    ] {
        if uri_checks & bit == 0 {
            continue;
        }
        let Some(na) = from_or_to(m, h) else {
            return Err(silent());
        };
        match na {
            Ok(na) if uri_scheme_ok(&na.uri) => {}
            _ => return Err(reply(400, reason)),
        }
    }
    if uri_checks & URI_CONTACT != 0 {
        use sr_sdk::sip_msg::headers::ContactValue;
        let mut first = true;
        for c in m.contacts() {
            match c {
                // Brackets that hold an unreadable URI: Kamailio's header
                // parser passes them and its URI check fails.
                Err(_) if contact_bracketed(m) => return Err(reply(400, "Bad Contact URI")),
                Err(_) => return Err(reply(400, "Bad Contact Header")),
                Ok(ContactValue::Star) => {}
                Ok(ContactValue::Addr(na)) => {
                    if first && !uri_scheme_ok(&na.uri) {
                        return Err(reply(400, "Bad Contact URI"));
                    }
                }
            }
            first = false;
        }
    }
    Ok(())
}

/// Digest credentials in Authorization and Proxy-Authorization. With
/// `strict` (bit 2048) another scheme fails without a reply, as
/// Kamailio's; without it (bit 8192) another scheme passes.
fn check_digest(msg: &SipMsg, strict: bool) -> Result<(), Fault> {
    let m = msg.msg();
    for name in [HeaderName::Authorization, HeaderName::ProxyAuthorization] {
        for v in m.auth_values(name) {
            let Ok(a) = v else {
                return Err(reply(400, "Bad Auth Header"));
            };
            let digest = a.is_digest();
            let a = a.split();
            if !digest {
                return if strict { Err(silent()) } else { Ok(()) };
            }
            let present = |p: &str| a.get_raw(p).is_some();
            let mut complete = ["username", "realm", "nonce", "uri", "response"]
                .iter()
                .all(|p| present(p));
            if present("qop") && !(present("nc") && present("cnonce")) {
                complete = false;
            }
            if !complete {
                return Err(reply(400, "Bad Auth Credentials"));
            }
            let empty = |p: &str| a.get(p).is_none_or(|s| s.is_empty());
            if empty("username") {
                return Err(reply(400, "Auth Empty User"));
            }
            if empty("nonce") {
                return Err(reply(400, "Auth Empty Nonce"));
            }
            if empty("response") {
                return Err(reply(400, "Auth Empty Response"));
            }
        }
    }
    Ok(())
}

fn check_sizes(msg: &SipMsg, s: &Sizes) -> Result<(), Fault> {
    let m = msg.msg();
    let over = |limit: i64, len: usize| limit > 0 && len as i64 > limit;
    if over(s.message, m.raw().len()) {
        return Err(silent());
    }
    if m.is_request() && over(s.ruri, msg.ruri().len()) {
        return Err(silent());
    }
    let method_len = match m.method() {
        Some(x) => x.as_str().len(),
        None => m.cseq().map_or(0, |c| c.method.as_str().len()),
    };
    if over(s.method, method_len) {
        return Err(silent());
    }
    if m.headers()
        .iter()
        .any(|h| over(s.header, (h.end - h.start) as usize))
    {
        return Err(silent());
    }
    if over(s.from_uri, m.from().map_err(|_| silent())?.uri_str.len())
        || over(s.to_uri, m.to().map_err(|_| silent())?.uri_str.len())
    {
        return Err(silent());
    }
    if over(s.body, m.body().len()) {
        return Err(silent());
    }
    if over(s.headers, (m.headers_end() - m.headers_start()) as usize) {
        return Err(silent());
    }
    for c in m.contacts() {
        match c {
            Err(_) => return Err(silent()),
            Ok(sr_sdk::sip_msg::headers::ContactValue::Addr(na)) => {
                if over(s.contact_uri, na.uri_str.len()) {
                    return Err(silent());
                }
            }
            Ok(_) => {}
        }
    }
    for r in m.routes().chain(m.record_routes()) {
        match r {
            Err(_) => return Err(silent()),
            Ok(na) if over(s.route_uri, na.uri_str.len()) => return Err(silent()),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The reply a failed check asked for, kept for `sanity_reply()` when
/// `noreply` is set.
#[derive(Debug, Clone)]
struct PendingReply(u16, &'static str);

struct Params_ {
    default_checks: Arc<AtomicI64>,
    uri_checks: Arc<AtomicI64>,
    autodrop: Arc<AtomicI64>,
    noreply: Arc<AtomicI64>,
    size_checks: Arc<AtomicI64>,
    proxy_require: Arc<RwLock<String>>,
    sizes: [Arc<AtomicI64>; 10],
}

impl Params_ {
    fn config(&self) -> Config {
        let pr = self
            .proxy_require
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        let g = |i: usize| self.sizes[i].load(Ordering::Relaxed);
        Config {
            proxy_require: pr
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            sizes: Sizes {
                message: g(0),
                method: g(1),
                ruri: g(2),
                from_uri: g(3),
                to_uri: g(4),
                contact_uri: g(5),
                route_uri: g(6),
                header: g(7),
                headers: g(8),
                body: g(9),
            },
        }
    }
}

fn run(ctx: &mut Ctx<'_>, p: &Params_, cfg: &Config, mc: Option<i64>, uc: Option<i64>) -> i32 {
    let mut msg_checks = mc.unwrap_or_else(|| p.default_checks.load(Ordering::Relaxed));
    let uri_checks = uc.unwrap_or_else(|| p.uri_checks.load(Ordering::Relaxed));
    if !(1..checks::MAX).contains(&msg_checks) {
        lm_err!(
            "sanity_check: checks {msg_checks} outside of 1-{}",
            checks::MAX - 1
        );
        return -1;
    }
    if !(1..checks::URI_MAX).contains(&uri_checks) {
        lm_err!(
            "sanity_check: uri checks {uri_checks} outside of 1-{}",
            checks::URI_MAX - 1
        );
        return -1;
    }
    if p.size_checks.load(Ordering::Relaxed) != 0 {
        msg_checks |= checks::SIZES;
    }
    let fault = match check(ctx.msg, msg_checks, uri_checks, cfg) {
        Ok(()) => return 1,
        Err(f) => f,
    };
    lm_dbg!("sanity_check failed: {:?}", fault.reply);
    let can_reply = ctx.msg.is_request() && ctx.msg.msg().method() != Some(Method::Ack);
    if let (true, Some((code, reason))) = (can_reply, fault.reply) {
        if let Some(h) = &fault.headers {
            ctx.msg.reply_headers.push_str(h);
        }
        if p.noreply.load(Ordering::Relaxed) != 0 {
            ctx.msg.ext.insert(PendingReply(code, reason));
        } else {
            let core = ctx.core;
            if let Err(e) = core.send_reply(ctx.msg, code, reason) {
                lm_warn!("sanity_check: failed to send {code} reply: {e}");
            }
        }
    }
    if p.autodrop.load(Ordering::Relaxed) != 0 {
        0
    } else {
        -1
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let int = |v: i64| Arc::new(AtomicI64::new(v));
    let sz = Sizes::default();
    let p = Arc::new(Params_ {
        default_checks: int(checks::DEFAULT),
        uri_checks: int(checks::URI_DEFAULT),
        autodrop: int(1),
        noreply: int(0),
        size_checks: int(0),
        proxy_require: Arc::new(RwLock::new(String::new())),
        sizes: [
            int(sz.message),
            int(sz.method),
            int(sz.ruri),
            int(sz.from_uri),
            int(sz.to_uri),
            int(sz.contact_uri),
            int(sz.route_uri),
            int(sz.header),
            int(sz.headers),
            int(sz.body),
        ],
    });
    // The configuration is read once, after every modparam.
    let cfg: Arc<RwLock<Config>> = Arc::new(RwLock::new(Config::default()));
    let rt = RouteType::REQUEST | RouteType::ONREPLY | RouteType::FAILURE | RouteType::BRANCH;
    let igp = Some(fixup::f(fixup::igp));
    let mut def = ModuleDef::new("sanity")
        .param(
            "default_checks",
            ParamKind::Int,
            params::int(&p.default_checks),
        )
        .param("uri_checks", ParamKind::Int, params::int(&p.uri_checks))
        .param("autodrop", ParamKind::Int, params::int(&p.autodrop))
        .param("noreply", ParamKind::Int, params::int(&p.noreply))
        .param("size_checks", ParamKind::Int, params::int(&p.size_checks))
        .param(
            "proxy_require",
            ParamKind::Str,
            params::string(&p.proxy_require),
        );
    let names = [
        "size_message",
        "size_method",
        "size_ruri",
        "size_from_uri",
        "size_to_uri",
        "size_contact_uri",
        "size_route_uri",
        "size_header",
        "size_headers",
        "size_body",
    ];
    for (i, n) in names.iter().enumerate() {
        def = def.param(n, ParamKind::Int, params::int(&p.sizes[i]));
    }
    let (p0, c0) = (p.clone(), cfg.clone());
    let (p1, c1) = (p.clone(), cfg.clone());
    let (p2, c2) = (p.clone(), cfg.clone());
    let (p3, c3) = (p.clone(), cfg.clone());
    let read = |c: &RwLock<Config>| c.read().map(|c| c.clone()).unwrap_or_default();
    def.on_init(move |_core| {
        let c = p0.config();
        *c0.write().map_err(|_| "poisoned".to_string())? = c;
        Ok(())
    })
    .cmd("sanity_check", 0, rt, None, move |ctx, _| {
        let cfg = read(&c1);
        run(ctx, &p1, &cfg, None, None)
    })
    .cmd("sanity_check", 1, rt, igp.clone(), move |ctx, a| {
        let mc = a[0].int(ctx);
        let cfg = read(&c2);
        run(ctx, &p2, &cfg, Some(mc), None)
    })
    .cmd("sanity_check", 2, rt, igp, move |ctx, a| {
        let mc = a[0].int(ctx);
        let uc = a[1].int(ctx);
        let cfg = read(&c3);
        run(ctx, &p3, &cfg, Some(mc), Some(uc))
    })
    .cmd("sanity_reply", 0, rt, None, |ctx, _| {
        if !ctx.msg.is_request() || ctx.msg.msg().method() == Some(Method::Ack) {
            return 1;
        }
        let Some(PendingReply(code, reason)) = ctx.msg.ext.remove::<PendingReply>() else {
            return 1;
        };
        let core = ctx.core;
        match core.send_reply(ctx.msg, code, reason) {
            Ok(()) => 1,
            Err(e) => {
                lm_warn!("sanity_reply: {e}");
                -1
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sr_sdk::RecvInfo;

    fn msg(text: &str) -> SipMsg {
        SipMsg::parse(
            bytes::Bytes::from(text.to_string()),
            RecvInfo::loopback(),
            1,
        )
        .unwrap()
    }

    fn req(extra: &str, body: &str) -> String {
        format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn fails(text: &str, checks: i64) -> Option<(u16, &'static str)> {
        let cfg = Config {
            proxy_require: vec!["foo".into()],
            ..Config::default()
        };
        check(&msg(text), checks, 7, &cfg)
            .err()
            .map(|f| f.reply.unwrap_or((0, "")))
    }

    #[test]
    fn good_message_passes_everything() {
        assert_eq!(fails(&req("", "v=0\r\n"), checks::MAX - 1), None);
    }

    #[test]
    fn each_fault_names_itself() {
        let t = req("", "").replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        assert_eq!(
            fails(&t, 32),
            Some((400, "CSeq method does not match request method"))
        );
        assert_eq!(
            fails(&req("Expires: soon\r\n", ""), 256),
            Some((400, "Expires value is illegal"))
        );
        assert_eq!(
            fails(&req("Expires: 99999999999\r\n", ""), 256),
            Some((400, "Expires value is illegal"))
        );
        assert_eq!(
            fails(&req("Proxy-Require: foo, bar\r\n", ""), 512),
            Some((420, "Bad Proxy Require Extension"))
        );
        assert_eq!(fails(&req("Proxy-Require: foo\r\n", ""), 512), None);
        let t = req("", "").replace("sip:bob@example.com SIP", "http://x SIP");
        assert_eq!(
            fails(&t, 2),
            Some((416, "Unsupported URI Scheme in Request URI"))
        );
        let t = req("", "").replace("tag=1", "tag=1;tag=2");
        assert_eq!(fails(&t, 4096), Some((400, "Many From Tag Params")));
        let t = req("Authorization: Digest username=\"\", realm=\"r\", nonce=\"n\", uri=\"sip:b\", response=\"x\"\r\n", "");
        assert_eq!(fails(&t, 2048), Some((400, "Auth Empty User")));
        let t = req("Authorization: Digest username=\"u\", realm=\"r\"\r\n", "");
        assert_eq!(fails(&t, 2048), Some((400, "Bad Auth Credentials")));
        let t = req("Authorization: Basic Zm9vOmJhcg==\r\n", "");
        assert_eq!(fails(&t, 2048), Some((0, "")), "no reply, as Kamailio");
        assert_eq!(fails(&t, 8192), None);
        let t = req("", "").replace("To: <sip:bob@example.com>", "To: <mailto:bob@example.com>");
        assert_eq!(fails(&t, 1024), Some((400, "Ivalid To Header")));
    }

    #[test]
    fn content_length_against_the_datagram() {
        let t = format!("{}extra", req("", "abc"));
        assert_eq!(fails(&t, 128), Some((400, "Content-Length mis-match")));
        assert_eq!(fails(&req("", "abc"), 128), None);
    }

    #[test]
    fn leading_empty_lines_are_not_a_version_fault() {
        let t = format!("\r\n{}", req("", ""));
        assert_eq!(fails(&t, 1), None);
    }

    #[test]
    fn duplicated_headers_fail_silently() {
        let t = req("Call-ID: c2\r\n", "");
        assert_eq!(fails(&t, 4), Some((0, "")));
    }
}
