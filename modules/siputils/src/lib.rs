//! # siputils: SIP utilities
//!
//! Kamailio's `siputils` module:
//!
//! - `has_totag()`, `is_request()`, `is_reply()`;
//! - `is_first_hop()`: a request with a single Via, a reply with exactly
//!   one Via (it reached the UAC);
//! - `uri_param(name[, value])` on the Request-URI, `add_uri_param(p)`;
//! - `is_uri_user_e164(uri)`, `is_e164(s)` (`+` and 2 to 15 digits),
//!   `is_tel_number(s)` (optional `+`, digits), `is_numeric(s)`;
//! - `is_user(name)`: the username of the first digest credentials;
//! - `is_uri(s)`: `s` parses as a URI;
//! - `cmp_uri(a, b)` (RFC 3261 19.1.4) and `cmp_aor(a, b)` (user, host
//!   and port only);
//! - `options_reply()`: answers an OPTIONS without a user part in the
//!   Request-URI with 200 and Allow, Accept, Accept-Encoding,
//!   Accept-Language and Supported headers (parameters `options_accept`,
//!   `options_accept_encoding`, `options_accept_language`,
//!   `options_support`, `options_allow`).
//!
//! - `uri_param_any(p)`, `uri_param_rm(p)`, `tel2sip(uri, host, out)`,
//!   `set_uri_user(pv, user)`, `set_uri_host(pv, host)`, `is_gruu([uri])`
//!   ([`uri_ops`]); `is_alphanum(s)`, `is_alphanumex(s, extra)`,
//!   `cmp_hdr_name(a, b)`, `is_supported(option)`, `hdr_date_check(s)`
//!   ([`text_checks`]).
//!
//! - the Contact and Request-URI encodings ([`contact_enc`]),
//!   `get_uri_param`, `append_rpid_hf`, `is_rpid_user_e164` and
//!   `sip_p_charging_vector` with `$pcv` ([`rpid`]).
#![forbid(unsafe_code)]

pub mod contact_enc;
pub mod ring;
pub mod rpid;
pub mod text_checks;
pub mod uri_ops;

use sr_sdk::fixup;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::{Scheme, Uri};
use std::sync::{Arc, RwLock};

fn rc(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

/// `+` followed by 2 to 15 digits.
pub fn is_e164(s: &str) -> bool {
    match s.strip_prefix('+') {
        Some(d) => (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Optional `+`, then one or more digits.
pub fn is_tel_number(s: &str) -> bool {
    // As Kamailio: an optional `+`, then a first digit 1-9, then digits.
    let d = s.strip_prefix('+').unwrap_or(s);
    matches!(d.as_bytes().first(), Some(b'1'..=b'9')) && d.bytes().all(|b| b.is_ascii_digit())
}

/// One or more digits.
pub fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Compares user, host and port of two SIP URIs, as Kamailio's cmp_aor
/// (the scheme ignored, an absent port 5060).
pub fn cmp_aor(a: &str, b: &str) -> Option<bool> {
    let (ua, ub) = (Uri::parse(a.trim()).ok()?, Uri::parse(b.trim()).ok()?);
    if !ua.is_sip() || !ub.is_sip() {
        return Some(ua.rfc_eq(&ub));
    }
    // As Kamailio's cmp_aor: the scheme does not count, and a missing
    // port is 5060 for sips: too.
    let port = |u: &Uri<'_>| u.port.unwrap_or(5060);
    Some(ua.user == ub.user && ua.host.eq_host(&ub.host) && port(&ua) == port(&ub))
}

/// A URI's parameters as (lower-case name, value).
fn uri_params(params: &str) -> Vec<(String, String)> {
    params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (p.to_ascii_lowercase(), String::new()),
        })
        .collect()
}

/// `cmp_uri`, as Kamailio compares: scheme, user and password exactly,
/// host ignoring case, port as written, and the parameters present in
/// both (ignoring case); a parameter only one has does not count.
/// `None` when one does not parse.
pub fn cmp_uri(a: &str, b: &str) -> Option<bool> {
    let (ua, ub) = (Uri::parse(a.trim()).ok()?, Uri::parse(b.trim()).ok()?);
    if !ua.is_sip() || !ub.is_sip() {
        return Some(ua.rfc_eq(&ub));
    }
    if ua.scheme != ub.scheme
        || ua.user != ub.user
        || ua.password != ub.password
        || !ua.host.eq_host(&ub.host)
        || ua.port != ub.port
    {
        return Some(false);
    }
    let pb = uri_params(ub.params);
    Some(uri_params(ua.params).iter().all(|(n, v)| {
        pb.iter()
            .find(|(m, _)| m == n)
            .is_none_or(|(_, w)| w.eq_ignore_ascii_case(v))
    }))
}

/// The Request-URI's parameters as Kamailio's parser gives them: with
/// `user=phone` the URI is a telephone number whose own parameters (in
/// the user part, after `;`) replace the URI's.
fn ruri_params(u: &Uri<'_>) -> Vec<(String, String)> {
    let all = uri_params(u.params);
    if all.iter().any(|(n, v)| n == "user" && v == "phone") {
        let own = u
            .user
            .and_then(|x| x.split_once(';'))
            .map_or("", |(_, p)| p);
        return uri_params(own);
    }
    all
}

/// Adds `;param` to a URI, before its headers if it has any.
pub fn add_param(uri: &str, param: &str) -> String {
    let param = param.trim_start_matches(';');
    match uri.find('?') {
        Some(q) => format!("{};{}{}", &uri[..q], param, &uri[q..]),
        None => format!("{uri};{param}"),
    }
}

struct OptionsParams {
    accept: RwLock<String>,
    encoding: RwLock<String>,
    language: RwLock<String>,
    support: RwLock<String>,
    allow: RwLock<String>,
}

fn options_reply(ctx: &mut Ctx<'_>, o: &OptionsParams) -> i32 {
    let m = ctx.msg.msg();
    if m.method() != Some(Method::Options) {
        lm_err!("options_reply: not an OPTIONS request");
        return -1;
    }
    match ctx.msg.ruri_parsed() {
        Ok(u) if u.user.is_none() => {}
        _ => {
            lm_err!("options_reply: the Request-URI has a user part");
            return -1;
        }
    }
    let get = |l: &RwLock<String>| l.read().map(|s| s.clone()).unwrap_or_default();
    let mut h = String::new();
    for (name, v) in [
        ("Allow", get(&o.allow)),
        ("Accept", get(&o.accept)),
        ("Accept-Encoding", get(&o.encoding)),
        ("Accept-Language", get(&o.language)),
        ("Supported", get(&o.support)),
    ] {
        h.push_str(name);
        h.push_str(": ");
        h.push_str(&v);
        h.push_str("\r\n");
    }
    ctx.msg.reply_headers.push_str(&h);
    let core = ctx.core;
    match core.send_reply(ctx.msg, 200, "OK") {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("options_reply: {e}");
            -1
        }
    }
}

/// `is_first_hop()`: a request with one Via came straight from its
/// sender; a reply came straight from the user agent when its first
/// Record-Route is ours (the proxy nearest the callee is the first to
/// appear), or it has none — as Kamailio 5.6.3 decides.
fn first_hop(ctx: &mut Ctx<'_>, mode: i64) -> bool {
    let m = ctx.msg.msg();
    if m.is_request() {
        return m.vias().count() == 1;
    }
    let Some(first) = m.values(HeaderName::RecordRoute).next() else {
        return true;
    };
    let first = sr_sdk::sip_msg::scan::CommaSplit::new(first)
        .next()
        .unwrap_or("");
    let Ok(na) = sr_sdk::sip_msg::headers::NameAddr::parse(first.trim(), "Record-Route") else {
        return false;
    };
    let u = &na.uri;
    // Mode 0: the top Record-Route must name an IP address, be ours, and
    // not be where the reply came from (a loop); other modes only ask
    // that it be ours (Kamailio's is_first_hop_mode).
    let ip = u
        .host_str
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .ok();
    if mode == 0 && ip.is_none() {
        return false;
    }
    if !ctx.core.is_myself(u.host_str, u.port) {
        return false;
    }
    if mode == 0 {
        let rcv = &ctx.msg.rcv;
        let transport = u.transport().map(str::to_ascii_lowercase);
        let same_port = match u.port {
            Some(p) => p == rcv.src.port(),
            None => rcv.src.port() == 5060,
        };
        let same_proto = match transport.as_deref() {
            Some(t) => t == rcv.proto.as_str(),
            None => rcv.proto == sr_sdk::Proto::Udp,
        };
        if ip == Some(rcv.src.ip()) && same_port && same_proto {
            return false;
        }
    }
    true
}

/// The module definition.
pub fn module() -> ModuleDef {
    let o = Arc::new(OptionsParams {
        accept: RwLock::new("*/*".into()),
        encoding: RwLock::new(String::new()),
        language: RwLock::new("en".into()),
        support: RwLock::new(String::new()),
        allow: RwLock::new(
            "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PUBLISH, MESSAGE, PRACK, UPDATE"
                .into(),
        ),
    });
    let str_param = |o: &Arc<OptionsParams>, f: fn(&OptionsParams) -> &RwLock<String>| {
        let o = o.clone();
        move |v: ParamValue| {
            let s = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            *f(&o).write().map_err(|_| "poisoned".to_string())? = s;
            Ok(())
        }
    };
    let any = RouteType::ANY;
    let req = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let o2 = o.clone();
    let def = ModuleDef::new("siputils")
        .param(
            "options_accept",
            ParamKind::Str,
            str_param(&o, |o| &o.accept),
        )
        .param(
            "options_accept_encoding",
            ParamKind::Str,
            str_param(&o, |o| &o.encoding),
        )
        .param(
            "options_accept_language",
            ParamKind::Str,
            str_param(&o, |o| &o.language),
        )
        .param(
            "options_support",
            ParamKind::Str,
            str_param(&o, |o| &o.support),
        )
        .param("options_allow", ParamKind::Str, str_param(&o, |o| &o.allow))
        .cmd("has_totag", 0, any, None, |ctx, _| {
            rc(matches!(ctx.msg.msg().to_tag(), Ok(Some(_))))
        })
        .cmd("is_request", 0, any, None, |ctx, _| {
            rc(ctx.msg.is_request())
        })
        .cmd("is_reply", 0, any, None, |ctx, _| rc(!ctx.msg.is_request()))
        .cmd("is_first_hop", 0, any, None, |ctx, _| rc(first_hop(ctx, 0)))
        .cmd(
            "is_first_hop_mode",
            1,
            any,
            Some(fixup::f(fixup::igp)),
            |ctx, p| {
                let mode = p[0].int(ctx);
                rc(first_hop(ctx, mode))
            },
        )
        .cmd("uri_param", 1, req, None, |ctx, p| {
            let name = p[0].str(ctx).into_owned();
            let Ok(u) = ctx.msg.ruri_parsed() else {
                return -1;
            };
            let name = name.to_ascii_lowercase();
            rc(ruri_params(&u).iter().any(|(n, _)| *n == name))
        })
        .cmd("uri_param", 2, req, None, |ctx, p| {
            let name = p[0].str(ctx).into_owned();
            let value = p[1].str(ctx).into_owned();
            let Ok(u) = ctx.msg.ruri_parsed() else {
                return -1;
            };
            let name = name.to_ascii_lowercase();
            rc(ruri_params(&u)
                .iter()
                .any(|(n, v)| *n == name && *v == value))
        })
        // The parameter is taken as written (Kamailio does not expand
        // pseudo-variables in it).
        .cmd(
            "add_uri_param",
            1,
            RouteType::REQUEST,
            Some(fixup::f(fixup::const_str)),
            |ctx, p| {
                let param = p[0].str(ctx).into_owned();
                if !ctx.msg.is_request() {
                    return -1;
                }
                let new = add_param(ctx.msg.ruri(), &param);
                ctx.msg.new_uri = Some(new);
                1
            },
        )
        .cmd("is_uri_user_e164", 1, any, None, |ctx, p| {
            let s = p[0].str(ctx).into_owned();
            match Uri::parse(s.trim()) {
                // The whole user part, its `;` parameters included (a
                // `+49...;user=phone` user is not a number), as Kamailio.
                Ok(u) if matches!(u.scheme, Scheme::Sips | Scheme::Sip) => {
                    let user = u.opaque.split_once('@').map(|(x, _)| x);
                    let user = user.map(|x| x.split(':').next().unwrap_or(x));
                    rc(user.is_some_and(is_e164))
                }
                // tel: URIs are not taken (Kamailio 5.6).
                _ => -1,
            }
        })
        .cmd("is_e164", 1, any, None, |ctx, p| {
            rc(is_e164(p[0].str(ctx).trim()))
        })
        // Kamailio answers -2 for "no" here.
        .cmd("is_tel_number", 1, any, None, |ctx, p| {
            if is_tel_number(p[0].str(ctx).trim()) {
                1
            } else {
                -2
            }
        })
        .cmd("is_numeric", 1, any, None, |ctx, p| {
            if is_numeric(&p[0].str(ctx)) {
                1
            } else {
                -2
            }
        })
        .cmd("is_uri", 1, any, None, |ctx, p| {
            rc(Uri::parse(p[0].str(ctx).trim()).is_ok())
        })
        .cmd("is_user", 1, req, None, |ctx, p| {
            let want = p[0].str(ctx).into_owned();
            let m = ctx.msg.msg();
            let user = [HeaderName::Authorization, HeaderName::ProxyAuthorization]
                .into_iter()
                .find_map(|h| m.auth_values(h).next())
                .and_then(|a| a.ok())
                .and_then(|a| a.get("username").map(|u| u.into_owned()));
            rc(user.as_deref() == Some(want.as_str()))
        })
        .cmd("cmp_uri", 2, any, None, |ctx, p| {
            let a = p[0].str(ctx).into_owned();
            let b = p[1].str(ctx).into_owned();
            match cmp_uri(&a, &b) {
                Some(true) => 1,
                Some(false) => -1,
                None => -2,
            }
        })
        .cmd("cmp_aor", 2, any, None, |ctx, p| {
            let a = p[0].str(ctx).into_owned();
            let b = p[1].str(ctx).into_owned();
            match cmp_aor(&a, &b) {
                Some(true) => 1,
                Some(false) => -1,
                None => -2,
            }
        })
        .cmd(
            "options_reply",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| options_reply(ctx, &o2),
        );
    ring::add(more(def))
}

/// A fixup taking parameter `pv_at` as a writable pseudo-variable and the
/// others as text with pseudo-variables.
fn pv_at(pv_at: usize) -> Option<sr_sdk::fixup::FixupFn> {
    Some(Arc::new(move |env, i, a| {
        if i == pv_at {
            fixup::pvar(env, i, a)
        } else {
            fixup::spve(env, i, a)
        }
    }))
}

/// The functions of [`uri_ops`] and [`text_checks`].
fn more(def: ModuleDef) -> ModuleDef {
    let any = RouteType::ANY;
    let req = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let tel = req | RouteType::ONREPLY;
    def.cmd(
        "uri_param_value",
        2,
        req,
        Some(fixup::f(|env, i, a| {
            if i == 0 {
                fixup::spve(env, i, a)
            } else {
                fixup::pvar(env, i, a)
            }
        })),
        |ctx, p| {
            let name = p[0].str(ctx).into_owned();
            let Some(v) = uri_ops::param_value(ctx.msg.ruri(), &name) else {
                return -1;
            };
            let Fixed::Pv(out) = &p[1] else {
                return -1;
            };
            rc(sr_sdk::fixup::Assign::assign(&**out, ctx, Value::Str(v.into())).is_ok())
        },
    )
    .cmd("uri_param_any", 1, req, None, |ctx, p| {
        let name = p[0].str(ctx).into_owned();
        rc(uri_ops::has_param(ctx.msg.ruri(), &name))
    })
    // 1 whether or not the parameter was there, as Kamailio.
    .cmd("uri_param_rm", 1, req, None, |ctx, p| {
        let name = p[0].str(ctx).into_owned();
        if let Some(new) = uri_ops::without_param(ctx.msg.ruri(), &name) {
            ctx.msg.new_uri = Some(new);
        }
        1
    })
    .cmd("tel2sip", 3, tel, pv_at(2), |ctx, p| {
        let uri = p[0].str(ctx).into_owned();
        let host = p[1].str(ctx).into_owned();
        let Some(sip) = uri_ops::tel2sip(&uri, &host) else {
            return 2;
        };
        let Fixed::Pv(out) = &p[2] else {
            return -1;
        };
        match out.assign(ctx, Value::from(sip)) {
            Ok(()) => 1,
            Err(e) => {
                lm_err!("tel2sip: cannot set the result: {e}");
                -1
            }
        }
    })
    .cmd("is_alphanum", 1, any, None, |ctx, p| {
        text_checks::alphanum(&p[0].str(ctx), "")
    })
    .cmd("is_alphanumex", 2, any, None, |ctx, p| {
        let extra = p[1].str(ctx).into_owned();
        text_checks::alphanum(&p[0].str(ctx), &extra)
    })
    .cmd("cmp_hdr_name", 2, any, None, |ctx, p| {
        let a = p[0].str(ctx).into_owned();
        text_checks::cmp_header_names(&a, &p[1].str(ctx))
    })
    // Both parameters pseudo-variables, as Kamailio's fixup wants them.
    .cmd(
        "set_uri_user",
        2,
        any,
        Some(fixup::f(fixup::pvar)),
        |ctx, p| set_uri_part(ctx, p, uri_ops::with_user),
    )
    .cmd(
        "set_uri_host",
        2,
        any,
        Some(fixup::f(fixup::pvar)),
        |ctx, p| set_uri_part(ctx, p, uri_ops::with_host),
    )
    .cmd("is_gruu", 0, any, None, |ctx, _| {
        uri_ops::gruu_kind(ctx.msg.ruri()).unwrap_or(-1)
    })
    .cmd("is_gruu", 1, any, None, |ctx, p| {
        uri_ops::gruu_kind(&p[0].str(ctx)).unwrap_or(-1)
    })
    .cmd(
        "is_supported",
        1,
        any,
        Some(Arc::new(|_env, _i, a| {
            let o = a.text().trim().to_ascii_lowercase();
            if text_checks::SUPPORTED_OPTIONS.contains(&o.as_str()) {
                Ok(Fixed::Str(o))
            } else {
                Err(format!("is_supported: unsupported option '{o}'"))
            }
        })),
        |ctx, p| {
            let want = p[0].str(ctx).into_owned();
            let m = ctx.msg.msg();
            let found = m
                .values(HeaderName::Supported)
                .any(|v| v.split(',').any(|o| o.trim().eq_ignore_ascii_case(&want)));
            rc(found)
        },
    )
    .cmd("hdr_date_check", 1, any, None, |ctx, p| {
        let tdiff = p[0].int(ctx);
        let m = ctx.msg.msg();
        let Some(date) = m.values(HeaderName::Date).next() else {
            lm_err!("hdr_date_check: failed parsing Date header");
            return -1;
        };
        let Some(t) = sr_sdk::db::parse_rfc1123(date) else {
            lm_err!("hdr_date_check: failed parsing Date header");
            return -1;
        };
        if sr_sdk::db::now() > t + tdiff {
            lm_err!("hdr_date_check: outdated date header value");
            return -4;
        }
        1
    })
    .pipe(encodings)
}

/// The Contact and Request-URI encodings, `get_uri_param`, the
/// Remote-Party-ID functions and `sip_p_charging_vector`, with their
/// parameters.
fn encodings(def: ModuleDef) -> ModuleDef {
    let any = RouteType::ANY;
    let req_reply = RouteType::REQUEST | RouteType::ONREPLY;
    let req = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let sep = Arc::new(RwLock::new('*'));
    let rp = Arc::new(rpid::RpidParams::default());
    let strp = |f: fn(&rpid::RpidParams) -> &RwLock<String>, rp: &Arc<rpid::RpidParams>| {
        let rp = rp.clone();
        move |v: ParamValue| {
            let s = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            *f(&rp).write().map_err(|_| "poisoned".to_string())? = s;
            Ok(())
        }
    };
    let sep_of = |s: &Arc<RwLock<char>>| s.read().map_or('*', |c| *c);
    let (s0, s1, s2, s3) = (sep.clone(), sep.clone(), sep.clone(), sep.clone());
    let (r1, r2, r3) = (rp.clone(), rp.clone(), rp.clone());
    // (Kamailio takes encode_contact's parameters as written.)
    let consts = Some(fixup::f(fixup::const_str));
    let spve = Some(fixup::f(fixup::spve));
    def.param("contact_flds_separator", ParamKind::Str, move |v| {
        let s = match v {
            ParamValue::Str(s) => s,
            ParamValue::Int(i) => i.to_string(),
        };
        let mut c = s.chars();
        match (c.next(), c.next()) {
            (Some(ch), None) => {
                *s0.write().map_err(|_| "poisoned".to_string())? = ch;
                Ok(())
            }
            _ => Err(format!(
                "contact_flds_separator must be one character, not '{s}'"
            )),
        }
    })
    .param("rpid_prefix", ParamKind::Str, strp(|r| &r.prefix, &rp))
    .param("rpid_suffix", ParamKind::Str, strp(|r| &r.suffix, &rp))
    .param("rpid_avp", ParamKind::Str, strp(|r| &r.avp, &rp))
    .cmd("encode_contact", 2, req_reply, consts, move |ctx, p| {
        let (pre, host) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        contact_enc::encode_contact(ctx.msg, &pre, &host, sep_of(&s1))
    })
    .cmd(
        "decode_contact",
        0,
        RouteType::REQUEST,
        None,
        move |ctx, _| contact_enc::decode_contact(ctx.msg, sep_of(&s2)),
    )
    .cmd(
        "decode_contact_header",
        0,
        req_reply,
        None,
        move |ctx, _| contact_enc::decode_contact_header(ctx.msg, sep_of(&s3)),
    )
    .cmd(
        "contact_param_encode",
        2,
        req_reply,
        spve.clone(),
        |ctx, p| {
            let (n, a) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            contact_enc::contact_param_encode(ctx.msg, &n, &a)
        },
    )
    .cmd(
        "contact_param_decode",
        1,
        req_reply,
        spve.clone(),
        |ctx, p| {
            let n = p[0].str(ctx).into_owned();
            contact_enc::contact_param_decode(ctx.msg, &n)
        },
    )
    .pipe(|d| {
        let mut d = d;
        // (The manual calls it contact_param_decode_uri, the code
        // contact_param_decode_ruri: both names work.)
        for name in ["contact_param_decode_ruri", "contact_param_decode_uri"] {
            d = d.cmd(name, 1, RouteType::REQUEST, spve.clone(), |ctx, p| {
                let n = p[0].str(ctx).into_owned();
                contact_enc::contact_param_decode_ruri(ctx.msg, &n)
            });
        }
        d
    })
    .cmd("contact_param_rm", 1, req_reply, spve.clone(), |ctx, p| {
        let n = p[0].str(ctx).into_owned();
        contact_enc::contact_param_rm(ctx.msg, &n)
    })
    .cmd(
        "get_uri_param",
        2,
        RouteType::REQUEST,
        Some(fixup::f(|env, i, a| {
            if i == 1 {
                fixup::pvar(env, i, a)
            } else {
                fixup::spve(env, i, a)
            }
        })),
        |ctx, p| {
            let n = p[0].str(ctx).into_owned();
            let Some(v) = rpid::uri_param_value(ctx.msg, &n) else {
                return -1;
            };
            let Fixed::Pv(dst) = &p[1] else {
                return -1;
            };
            match dst.assign(ctx, Value::from(v)) {
                Ok(()) => 1,
                Err(e) => {
                    lm_err!("get_uri_param: {e}");
                    -1
                }
            }
        },
    )
    .cmd("append_rpid_hf", 0, req, None, move |ctx, _| {
        r1.append(ctx.msg, None)
    })
    .cmd("append_rpid_hf", 2, req, spve.clone(), move |ctx, p| {
        let (pre, suf) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        r2.append(ctx.msg, Some((&pre, &suf)))
    })
    .cmd(
        "is_rpid_user_e164",
        0,
        RouteType::REQUEST,
        None,
        move |ctx, _| rc(r3.user_is_e164(ctx.msg)),
    )
    .cmd("sip_p_charging_vector", 1, any, spve, |ctx, p| {
        let f = p[0].str(ctx).into_owned();
        rpid::charging_vector(ctx, &f)
    })
    .pv("pcv", |ctx, n| {
        rpid::pcv_value(ctx.msg, n.inner.as_deref().unwrap_or("all"))
    })
}

/// `set_uri_user`/`set_uri_host`: the URI in the pseudo-variable changed.
fn set_uri_part(ctx: &mut Ctx<'_>, p: &[Fixed], f: fn(&str, &str) -> Option<String>) -> i32 {
    let Fixed::Pv(pv) = &p[0] else {
        return -1;
    };
    let uri = pv.eval(ctx).as_str().into_owned();
    let part = p[1].str(ctx).into_owned();
    let Some(new) = f(&uri, &part) else {
        lm_err!("set_uri_user/host: '{uri}' is not a SIP URI");
        return -1;
    };
    match pv.assign(ctx, Value::from(new)) {
        Ok(()) => 1,
        Err(_) => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert!(is_e164("+4912345"));
        assert!(!is_e164("4912345"));
        assert!(!is_e164("+1"));
        assert!(!is_e164("+1234567890123456"));
        assert!(is_tel_number("+123") && is_tel_number("123"));
        assert!(!is_tel_number("+") && !is_tel_number("12a"));
        assert!(is_numeric("007") && !is_numeric("") && !is_numeric("-1"));
    }

    #[test]
    fn uri_comparisons() {
        assert_eq!(
            cmp_uri(
                "sip:alice@EXAMPLE.com;transport=udp",
                "sip:alice@example.com;transport=UDP"
            ),
            Some(true)
        );
        assert_eq!(
            cmp_uri("sip:alice@example.com", "sip:Alice@example.com"),
            Some(false)
        );
        assert_eq!(cmp_uri("sip:alice@example.com", "x"), None);
        assert_eq!(
            cmp_aor(
                "sip:alice@example.com;transport=tcp",
                "sip:alice@example.com:5060"
            ),
            Some(true)
        );
        assert_eq!(
            cmp_aor("sip:alice@example.com", "sip:bob@example.com"),
            Some(false)
        );
    }

    #[test]
    fn adds_params_before_headers() {
        assert_eq!(add_param("sip:a@b", "x=1"), "sip:a@b;x=1");
        assert_eq!(add_param("sip:a@b?h=v", ";x"), "sip:a@b;x?h=v");
    }
}
