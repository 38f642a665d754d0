//! Module `mangler` (Kamailio's): rewriting for NAT by hand.
//!
//! - `sdp_mangle_ip(net, newip)`: each `c=IN IP4` address of the body in
//!   `net` (`ip/len` or `ip/mask`) becomes `newip`;
//! - `sdp_mangle_port(offset)`: each `m=` line's port moves by a signed
//!   offset (`+10`, `-2`) or is set (`4000`);
//! - `encode_contact(prefix, public_ip)`: the URIs of the first Contact
//!   header encoded with where the request came from (see [`contact`]);
//!   `decode_contact()` decodes the Request-URI (and sets the destination
//!   URI to the encoded source), `decode_contact_header()` the Contact.
//!
//! The parameters are taken as written (Kamailio's functions have no
//! fixups: a `$var` there is text). The SDP functions return the number
//! of changes plus one (1 when nothing matched), or Kamailio's error
//! codes (-2 no or zero Content-Length; -3, -13 a bad offset; -5, -6 a bad
//! network).
#![forbid(unsafe_code)]

pub mod contact;
pub mod sdp;

use contact::Received;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::HeaderName;
use std::sync::{Arc, RwLock};

/// The body's Content-Length, when the header is there.
fn content_length(msg: &SipMsg) -> Option<i64> {
    let m = msg.msg();
    let h = m.headers_named(HeaderName::ContentLength).next()?;
    h.value.trim().parse().ok()
}

/// Applies SDP changes found by `f` on the body: the count plus one, or
/// the error.
fn mangle_sdp(ctx: &mut Ctx<'_>, f: impl FnOnce(&[u8]) -> Result<Vec<sdp::Change>, i32>) -> i32 {
    if content_length(ctx.msg).is_none_or(|n| n <= 0) {
        lm_err!("mangler: bad or missing Content-Length");
        return -2;
    }
    let m = ctx.msg.msg();
    let start = m.body_start() as usize;
    let changes = match f(m.body()) {
        Ok(c) => c,
        Err(e) => {
            lm_err!("mangler: invalid parameter (code {e})");
            return e;
        }
    };
    let n = changes.len() as i32;
    for (s, e, t) in changes {
        ctx.msg
            .edits
            .replace((start + s) as u32, (start + e) as u32, t.as_bytes());
    }
    n + 1
}

/// Where the request came from, as the encoding writes it.
fn received(msg: &SipMsg) -> Received {
    let src = msg.rcv.src;
    Received {
        ip: src.ip().to_string(),
        port: if src.port() == 5060 {
            String::new()
        } else {
            src.port().to_string()
        },
        proto: match msg.rcv.proto {
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
            Proto::Sctp => "sctp",
            _ => "",
        }
        .to_string(),
    }
}

/// Rewrites each URI of the first Contact header with `f`: URIs it
/// refuses are left, but with `first_fatal` an error of the first URI is
/// returned (as Kamailio's `encode_contact`; its decoding skips them all);
/// -1 without Contact.
fn map_first_contact(
    ctx: &mut Ctx<'_>,
    first_fatal: bool,
    f: impl Fn(&str) -> Result<String, i32>,
) -> i32 {
    let spans = sr_mod_siputils::contact_enc::contact_uris(ctx.msg, true);
    if ctx
        .msg
        .msg()
        .headers_named(HeaderName::Contact)
        .next()
        .is_none()
    {
        lm_err!("mangler: no Contact header present");
        return -1;
    }
    let raw = ctx.msg.msg().raw();
    let mut edits = Vec::new();
    for (i, &(s, e)) in spans.iter().enumerate() {
        let Ok(uri) = std::str::from_utf8(&raw[s as usize..e as usize]) else {
            continue;
        };
        match f(uri.trim()) {
            Ok(new) => edits.push((s, e, new)),
            Err(code) if i == 0 && first_fatal => {
                lm_err!("mangler: failed with the Contact URI [{uri}], code {code}");
                return code;
            }
            Err(_) => {}
        }
    }
    for (s, e, t) in edits {
        ctx.msg.edits.replace(s, e, t.as_bytes());
    }
    1
}

fn separator(cell: &RwLock<String>) -> char {
    params::get_str(cell).chars().next().unwrap_or('*')
}

/// The module definition.
pub fn module() -> ModuleDef {
    let sep: Arc<RwLock<String>> = params::str_cell("*");
    let (s1, s2, s3) = (sep.clone(), sep.clone(), sep.clone());
    let consts = Some(fixup::f(fixup::const_str));
    let req_reply = RouteType::REQUEST | RouteType::ONREPLY;
    let text = |p: &Fixed| p.as_const_str().unwrap_or_default().to_string();
    ModuleDef::new("mangler")
        .param(
            "contact_flds_separator",
            ParamKind::Str,
            params::string(&sep),
        )
        .cmd(
            "sdp_mangle_ip",
            2,
            req_reply,
            consts.clone(),
            move |ctx, p| {
                let (net, ip) = (text(&p[0]), text(&p[1]));
                mangle_sdp(ctx, |b| sdp::mangle_ip(b, &net, &ip))
            },
        )
        .cmd(
            "sdp_mangle_port",
            1,
            req_reply,
            consts.clone(),
            move |ctx, p| {
                let off = text(&p[0]);
                mangle_sdp(ctx, |b| sdp::mangle_port(b, &off))
            },
        )
        .cmd("encode_contact", 2, req_reply, consts, move |ctx, p| {
            let (prefix, public) = (text(&p[0]), text(&p[1]));
            let (rcv, sep) = (received(ctx.msg), separator(&s1));
            map_first_contact(ctx, true, |u| {
                contact::encode_uri(u, &prefix, &public, sep, &rcv)
            })
        })
        .cmd(
            "decode_contact",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| {
                let uri = ctx.msg.ruri().to_string();
                match contact::decode_uri(&uri, separator(&s2)) {
                    Ok(d) => {
                        ctx.msg.new_uri = Some(d.uri);
                        // (Kamailio sets it, empty when the encoding had no
                        // source.)
                        ctx.msg.dst_uri = d.dst;
                        1
                    }
                    Err(code) => {
                        lm_err!("mangler: decode_contact: failed decoding contact, code {code}");
                        code
                    }
                }
            },
        )
        .cmd(
            "decode_contact_header",
            0,
            req_reply,
            None,
            move |ctx, _| {
                let sep = separator(&s3);
                // (URIs that do not decode are left, as Kamailio's.)
                map_first_contact(ctx, false, |u| contact::decode_uri(u, sep).map(|d| d.uri))
            },
        )
}
