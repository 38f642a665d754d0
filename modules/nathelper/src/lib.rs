//! # nathelper: SIP signalling through NAT
//!
//! Kamailio's `nathelper`, for the signalling: telling whether a user
//! agent is behind NAT (`nat_uac_test`), remembering where a registration
//! really came from (`fix_nated_register`, with the registrar's
//! `received_avp`), and making in-dialog requests reach a user agent
//! behind NAT (`set_contact_alias` / `add_contact_alias` on the way out,
//! `handle_ruri_alias` on the way back), as the stock configuration's
//! WITH_NAT does. Also `fix_nated_contact`, `add_rcv_param`,
//! `fix_nated_sdp` and `is_rfc1918`.
//!
//! With `natping_interval`, registered user agents behind NAT get
//! keepalives (see [`natping`]). Media relaying is the rtpengine module's
//! business.
#![forbid(unsafe_code)]

pub mod natping;
pub mod nets;

use nets::{address_uri, alias_value, host, is_private, parse_alias};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::headers::{ContactValue, NameAddr};
use sr_sdk::sip_msg::scan::offset_in;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// `nat_uac_test` flags, Kamailio's numbers.
pub mod test {
    /// The Contact URI's host is a private address.
    pub const CONTACT_PRIVATE: i64 = 1;
    /// The top Via's host is not the source address.
    pub const VIA_NOT_SOURCE: i64 = 2;
    /// The top Via's host is a private address.
    pub const VIA_PRIVATE: i64 = 4;
    /// An SDP connection address is private.
    pub const SDP_PRIVATE: i64 = 8;
    /// The source port is not the top Via's port.
    pub const VIA_PORT: i64 = 16;
    /// The source address is private.
    pub const SOURCE_PRIVATE: i64 = 32;
    /// The message came over WebSocket.
    pub const WEBSOCKET: i64 = 64;
    /// The Contact URI's port is not the source port.
    pub const CONTACT_PORT: i64 = 128;
    /// An SDP connection address is not the source address.
    pub const SDP_NOT_SOURCE: i64 = 256;
}

/// The addresses of the SDP body's `c=` lines.
fn sdp_addresses(body: &[u8]) -> Vec<IpAddr> {
    let text = String::from_utf8_lossy(body);
    text.lines()
        .filter_map(|l| l.trim_end().strip_prefix("c="))
        .filter_map(|c| c.split_whitespace().nth(2))
        .filter_map(|a| a.split('/').next()?.parse().ok())
        .collect()
}

/// The first Contact's name-addr and where its URI is in the message
/// (start and end byte offsets), when it is a SIP URI.
fn first_contact<'m>(m: &'m Message<'m>) -> Option<(NameAddr<'m>, u32, u32)> {
    let h = m.headers().iter().find(|h| h.name == HeaderName::Contact)?;
    let first = sr_sdk::sip_msg::scan::CommaSplit::new(h.value).next()?;
    let ContactValue::Addr(na) = ContactValue::parse(first).ok()? else {
        return None;
    };
    // Only SIP URIs have the host and port these functions change (a
    // `tel:` Contact has none).
    if !na.uri.is_sip() {
        return None;
    }
    let (off, end) = offset_in(h.value.as_bytes(), na.uri_str)?;
    let base = h.value_start;
    Some((
        na,
        base + u32::try_from(off).ok()?,
        base + u32::try_from(end).ok()?,
    ))
}

/// Whether an earlier function already put an alias or a received
/// parameter into this message's Contact.
fn edited(msg: &SipMsg, marker: &[u8]) -> bool {
    msg.edits
        .ops()
        .any(|(_, _, t)| t.windows(marker.len()).any(|w| w == marker))
}

/// Adds `param` (`;name=value`) to a Contact URI at `start..end`, putting
/// the URI in `<>` when it was not (so it is not taken for a Contact
/// parameter).
fn insert_uri_param(msg: &mut SipMsg, start: u32, end: u32, bracketed: bool, param: &str) {
    if bracketed {
        msg.edits.insert(end, param.as_bytes());
    } else {
        msg.edits.insert(start, b"<");
        msg.edits.insert(end, format!("{param}>").as_bytes());
    }
}

/// `nat_uac_test(flags)`: whether any of the tests `flags` selects holds.
pub fn uac_test(msg: &SipMsg, flags: i64) -> bool {
    let m = msg.msg();
    let src = msg.rcv.src;
    let has = |f: i64| flags & f != 0;
    let contact = first_contact(m).map(|(na, _, _)| (na.uri.host.ip(), na.uri.port));
    if has(test::CONTACT_PRIVATE) && contact.is_some_and(|(ip, _)| ip.is_some_and(is_private)) {
        return true;
    }
    if has(test::CONTACT_PORT) && contact.is_some_and(|(_, p)| p.unwrap_or(5060) != src.port()) {
        return true;
    }
    if let Ok(v) = m.top_via() {
        let via_ip = v.host.ip();
        if has(test::VIA_NOT_SOURCE) && via_ip != Some(src.ip()) {
            return true;
        }
        if has(test::VIA_PRIVATE) && via_ip.is_some_and(is_private) {
            return true;
        }
        if has(test::VIA_PORT) && v.port.unwrap_or(v.default_port()) != src.port() {
            return true;
        }
    }
    if has(test::SOURCE_PRIVATE) && is_private(src.ip()) {
        return true;
    }
    if has(test::WEBSOCKET) && matches!(msg.rcv.proto, Proto::Ws | Proto::Wss) {
        return true;
    }
    if has(test::SDP_PRIVATE | test::SDP_NOT_SOURCE) {
        let addrs = sdp_addresses(m.body());
        if has(test::SDP_PRIVATE) && addrs.iter().any(|a| is_private(*a)) {
            return true;
        }
        if has(test::SDP_NOT_SOURCE) && addrs.iter().any(|a| *a != src.ip()) {
            return true;
        }
    }
    false
}

/// Adds `;alias=...` to the first Contact's URI (putting the URI in `<>`
/// when it was not): 1; 2 when it is not needed (the Contact is the
/// address already, or has an alias); -1 without a SIP Contact or when a
/// function already added one to this message.
fn add_alias(msg: &mut SipMsg, ip: IpAddr, port: u16, proto: Proto) -> i32 {
    if edited(msg, b";alias=") {
        return -1;
    }
    let (bracketed, start, end, hostport_end, same) = {
        let m = msg.msg();
        let Some((na, start, end)) = first_contact(m) else {
            // No Contact (a reply to BYE, MESSAGE, OPTIONS): nothing to
            // do, as in Kamailio (2), or `*`/unparsable: -1.
            return if m.header(sr_sdk::sip_msg::HeaderName::Contact).is_none() {
                2
            } else {
                -1
            };
        };
        let same = na.uri.host.ip() == Some(ip)
            && na.uri.port.unwrap_or(5060) == port
            && proto == Proto::Udp
            && na.uri.transport().is_none();
        let already = sr_sdk::sip_msg::params::Params::new(na.uri.params)
            .get("alias")
            .is_some();
        // Where the host and port end (the alias goes before the URI's
        // other parameters, as Kamailio puts it).
        let raw = na.uri.raw;
        let host_at = na.uri.host_str.as_ptr() as usize - raw.as_ptr() as usize;
        let mut hp = host_at + na.uri.host_str.len();
        if raw[hp..].starts_with(':') {
            hp += 1 + raw[hp + 1..].bytes().take_while(u8::is_ascii_digit).count();
        }
        let hostport_end = start + u32::try_from(hp).unwrap_or(0);
        (na.bracketed, start, end, hostport_end, same || already)
    };
    if same {
        // Already reachable at what it says (or aliased before).
        return 2;
    }
    let alias = format!(";alias={}", alias_value(ip, port, proto));
    if !bracketed {
        msg.edits.insert(start, b"<");
    }
    msg.edits.insert(hostport_end, alias.as_bytes());
    if !bracketed {
        msg.edits.insert(end, b">");
    }
    1
}

/// `handle_ruri_alias()`: 1 when the Request-URI had an alias (now `$du`
/// and removed), 2 when it had none, -1 when it was bad.
fn handle_alias(msg: &mut SipMsg) -> i32 {
    let ruri = msg.ruri().to_string();
    let Ok(u) = sr_sdk::sip_msg::Uri::parse(&ruri) else {
        return -1;
    };
    let Some(Some(value)) = sr_sdk::sip_msg::params::Params::new(u.params).get("alias") else {
        return 2;
    };
    let Some((ip, port, proto)) = parse_alias(value) else {
        lm_err!("handle_ruri_alias: bad alias '{value}'");
        return -1;
    };
    // Remove `;alias=value` from the URI's parameters (not from a user
    // part that happens to hold the same text).
    let needle = format!(";alias={value}");
    let Some((params_at, _)) = offset_in(ruri.as_bytes(), u.params) else {
        return -1;
    };
    // `u.params` starts after its first `;`.
    let from = params_at.saturating_sub(1);
    let Some(at) = ruri[from..].find(&needle).map(|i| from + i) else {
        return -1;
    };
    let mut new = ruri.clone();
    new.replace_range(at..at + needle.len(), "");
    msg.dst_uri = Some(address_uri(ip, port, proto));
    msg.new_uri = Some(new);
    1
}

/// `fix_nated_contact()`: the first Contact's host and port become the
/// source address's.
fn fix_contact(msg: &mut SipMsg) -> i32 {
    let (from, to) = {
        let m = msg.msg();
        let Some((na, start, _)) = first_contact(m) else {
            return -1;
        };
        let Some((host_off, _)) = offset_in(na.uri_str.as_bytes(), na.uri.host_str) else {
            return -1;
        };
        let mut end = host_off + na.uri.host_str.len();
        let b = na.uri_str.as_bytes();
        if b.get(end) == Some(&b':') {
            end += 1;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        }
        (start + host_off as u32, start + end as u32)
    };
    let src = msg.rcv.src;
    let hostport = format!("{}:{}", host(src.ip()), src.port());
    msg.edits.replace(from, to, hostport.as_bytes());
    1
}

/// `add_rcv_param([flag])`: `;received="sip:ip:port"` as a Contact
/// parameter (flag 0) or a URI parameter (1).
fn add_rcv(msg: &mut SipMsg, in_uri: bool) -> i32 {
    if edited(msg, b";received=") {
        return -1;
    }
    let src = msg.rcv.src;
    let uri = address_uri(src.ip(), src.port(), msg.rcv.proto);
    let (bracketed, start, end, value_end) = {
        let m = msg.msg();
        let Some((na, start, end)) = first_contact(m) else {
            return -1;
        };
        let Some((uri_in_raw, _)) = offset_in(na.raw.as_bytes(), na.uri_str) else {
            return -1;
        };
        let Ok(tail) = u32::try_from(na.raw.len() - uri_in_raw) else {
            return -1;
        };
        (na.bracketed, start, end, start + tail)
    };
    if in_uri {
        insert_uri_param(msg, start, end, bracketed, &format!(";received={uri}"));
    } else {
        msg.edits
            .insert(value_end, format!(";received=\"{uri}\"").as_bytes());
    }
    1
}

/// `fix_nated_sdp(flags[, ip])`: 1 adds `a=direction:active`, 2 rewrites
/// the `c=` addresses (and with `oldmediaip`, Kamailio's
/// `append_sdp_oldmediaip`, adds `a=oldmediaip:` with the address it
/// replaced), 4 adds `a=nortpproxy:yes`, 8 rewrites the `o=` address; to
/// `ip` or the source address.
fn fix_sdp(msg: &mut SipMsg, flags: i64, ip: Option<IpAddr>, oldmediaip: bool) -> i32 {
    let body = msg.body().to_vec();
    if body.is_empty() {
        return -1;
    }
    let addr = ip.unwrap_or(msg.rcv.src.ip());
    let (fam, a) = match addr {
        IpAddr::V4(v4) => ("IP4", v4.to_string()),
        IpAddr::V6(v6) => ("IP6", v6.to_string()),
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let mut out = String::with_capacity(text.len() + 64);
    // The first address a `c=` line had that is not the new one.
    let mut replaced: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let (content, eol) = match line.strip_suffix("\r\n") {
            Some(c) => (c, "\r\n"),
            None => match line.strip_suffix('\n') {
                Some(c) => (c, "\n"),
                None => (line, ""),
            },
        };
        let rewrite_c = flags & 2 != 0 && content.starts_with("c=IN ");
        let rewrite_o = flags & 8 != 0 && content.starts_with("o=");
        if rewrite_c {
            if let Some(old) = content.split(' ').nth(2).filter(|o| *o != a) {
                replaced.get_or_insert_with(|| old.to_string());
            }
            out.push_str(&format!("c=IN {fam} {a}{eol}"));
        } else if rewrite_o {
            let mut f: Vec<&str> = content.split(' ').collect();
            if f.len() >= 6 {
                f[4] = fam;
                f[5] = &a;
                out.push_str(&f.join(" "));
            } else {
                out.push_str(content);
            }
            out.push_str(eol);
        } else {
            out.push_str(line);
        }
    }
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    if flags & 1 != 0 && !text.contains("a=direction:") {
        out.push_str(&format!("a=direction:active{eol}"));
    }
    if let Some(old) = replaced.filter(|_| oldmediaip && !text.contains("a=oldmediaip")) {
        let six = if old.contains(':') { "6" } else { "" };
        out.push_str(&format!("a=oldmediaip{six}:{old}{eol}"));
    }
    if flags & 4 != 0 && !text.contains("a=nortpproxy:") {
        out.push_str(&format!("a=nortpproxy:yes{eol}"));
    }
    msg.edits.set_body(out.as_bytes(), None);
    1
}

/// The module definition.
pub fn module() -> ModuleDef {
    let received_avp = Arc::new(RwLock::new(String::new()));
    let natping = Arc::new(AtomicI64::new(0));
    let nated_only = Arc::new(AtomicI64::new(0));
    let sipping_bflag = Arc::new(AtomicI64::new(-1));
    let sipping_from = Arc::new(RwLock::new(String::from("sip:pinger@localhost")));
    let sipping_method = Arc::new(RwLock::new(String::from("OPTIONS")));
    let keepalive_timeout = Arc::new(AtomicI64::new(0));
    // `append_sdp_oldmediaip` (1, as Kamailio).
    let oldmediaip = Arc::new(AtomicI64::new(1));
    let (om1, om2) = (oldmediaip.clone(), oldmediaip.clone());
    let answers = Arc::new(natping::Answers::default());
    let int = Some(fixup::f(fixup::igp));
    let spve = Some(fixup::f(fixup::spve));
    let (avp, ping) = (received_avp.clone(), natping.clone());
    let (only, bflag, from, method, kt, ans) = (
        nated_only.clone(),
        sipping_bflag.clone(),
        sipping_from.clone(),
        sipping_method.clone(),
        keepalive_timeout.clone(),
        answers.clone(),
    );
    let mut def = ModuleDef::new("nathelper")
        .param(
            "received_avp",
            ParamKind::Str,
            params::string(&received_avp),
        )
        .param("natping_interval", ParamKind::Int, params::int(&natping))
        .param("ping_nated_only", ParamKind::Int, params::int(&nated_only))
        .param("sipping_bflag", ParamKind::Int, params::int(&sipping_bflag))
        .param(
            "sipping_from",
            ParamKind::Str,
            params::string(&sipping_from),
        )
        .param(
            "sipping_method",
            ParamKind::Str,
            params::string(&sipping_method),
        )
        .on_init(move |core| {
            let every = ping.load(Ordering::Relaxed);
            if every <= 0 {
                return Ok(());
            }
            let read = |l: &RwLock<String>| l.read().map(|s| s.clone()).unwrap_or_default();
            let b = bflag.load(Ordering::Relaxed);
            let p = natping::Pinger {
                nated_only: only.load(Ordering::Relaxed) != 0,
                sipping_bflag: (0..32).contains(&b).then_some(b as u32),
                sipping_from: read(&from),
                sipping_method: read(&method),
                keepalive_timeout: kt.load(Ordering::Relaxed),
                answers: ans.clone(),
            };
            natping::start(
                core,
                std::time::Duration::from_secs(every.unsigned_abs()),
                p,
            )
        })
        .param(
            "keepalive_timeout",
            ParamKind::Int,
            params::int(&keepalive_timeout),
        )
        .on_response(move |ctx| {
            // Replies to our SIP pings end here.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            ctx.msg
                .msg()
                .call_id()
                .is_ok_and(|id| answers.answer(id, now))
        });
    for p in [
        "natping_processes",
        "natping_socket",
        "udpping_from_path",
        "force_socket",
        "nortpproxy_str",
        "filter_server_id",
        "natping_disable_bflag",
        "nat_addr_mode",
        "alias_name",
    ] {
        def = def.param(p, ParamKind::Any, |_| Ok(()));
    }
    def = def.param(
        "append_sdp_oldmediaip",
        ParamKind::Int,
        params::int(&oldmediaip),
    );
    def.cmd("nat_uac_test", 1, RouteType::ANY, int.clone(), |ctx, p| {
        let flags = p[0].int(ctx);
        if uac_test(ctx.msg, flags) {
            1
        } else {
            -1
        }
    })
    .cmd(
        "fix_nated_register",
        0,
        RouteType::REQUEST,
        None,
        move |ctx, _| {
            let Some(name) = avp.read().ok().and_then(|s| sr_sdk::avp::spec_name(&s)) else {
                lm_err!("fix_nated_register: the received_avp parameter is not set");
                return -1;
            };
            let src = ctx.msg.rcv.src;
            let uri = address_uri(src.ip(), src.port(), ctx.msg.rcv.proto);
            ctx.msg.avps.push(&name, Value::str(uri));
            1
        },
    )
    .cmd("fix_nated_contact", 0, RouteType::ANY, None, |ctx, _| {
        fix_contact(ctx.msg)
    })
    .cmd("set_contact_alias", 0, RouteType::ANY, None, |ctx, _| {
        let (src, proto) = (ctx.msg.rcv.src, ctx.msg.rcv.proto);
        add_alias(ctx.msg, src.ip(), src.port(), proto)
    })
    .cmd("add_contact_alias", 0, RouteType::ANY, None, |ctx, _| {
        let (src, proto) = (ctx.msg.rcv.src, ctx.msg.rcv.proto);
        add_alias(ctx.msg, src.ip(), src.port(), proto)
    })
    .cmd(
        "add_contact_alias",
        3,
        RouteType::ANY,
        spve.clone(),
        |ctx, p| {
            let ip = p[0].str(ctx).trim().parse::<IpAddr>();
            let port = p[1].str(ctx).trim().parse::<u16>();
            let proto = Proto::parse(&p[2].str(ctx).trim().to_ascii_lowercase());
            match (ip, port, proto) {
                (Ok(ip), Ok(port), Some(proto)) => add_alias(ctx.msg, ip, port, proto),
                _ => {
                    lm_err!("add_contact_alias: bad address, port or transport");
                    -1
                }
            }
        },
    )
    .cmd(
        "set_alias_to_pv",
        1,
        RouteType::REQUEST | RouteType::ONREPLY | RouteType::BRANCH | RouteType::FAILURE,
        Some(fixup::f(fixup::pvar)),
        |ctx, p| {
            // The first Contact's `;alias=ip~port~proto` as
            // `sip:ip:port;transport=proto` (the transport always written,
            // as Kamailio).
            let alias = {
                let m = ctx.msg.msg();
                first_contact(m).and_then(|(na, _, _)| {
                    let v = sr_sdk::sip_msg::params::Params::new(na.uri.params).get("alias")??;
                    nets::parse_alias(v)
                })
            };
            let Some((ip, port, proto)) = alias else {
                lm_err!("set_alias_to_pv: no alias in the Contact");
                return -1;
            };
            let uri = format!("sip:{}:{port};transport={}", nets::host(ip), proto.as_str());
            let Fixed::Pv(dst) = &p[0] else {
                return -1;
            };
            match dst.assign(ctx, Value::from(uri)) {
                Ok(()) => 1,
                Err(e) => {
                    lm_err!("set_alias_to_pv: {e}");
                    -1
                }
            }
        },
    )
    // $rr_count: the Record-Route entries of the message as received;
    // $rr_top_count: 2 when the top one is half of a double Record-Route
    // (`r2=on`), 1 otherwise, 0 without any.
    .pv("rr_count", |ctx, _| {
        let m = ctx.msg.msg();
        let n: usize = m
            .headers_named(HeaderName::RecordRoute)
            .map(|h| sr_sdk::sip_msg::scan::CommaSplit::new(h.value).count())
            .sum();
        Value::Int(n as i64)
    })
    .pv("rr_top_count", |ctx, _| {
        let m = ctx.msg.msg();
        let Some(h) = m.headers_named(HeaderName::RecordRoute).next() else {
            return Value::Int(0);
        };
        let first = sr_sdk::sip_msg::scan::CommaSplit::new(h.value)
            .next()
            .unwrap_or("");
        let double = sr_sdk::sip_msg::headers::NameAddr::parse(first.trim(), "Record-Route")
            .ok()
            .and_then(|na| {
                sr_sdk::sip_msg::params::Params::new(na.uri.params)
                    .get("r2")
                    .flatten()
                    .map(|v| v.eq_ignore_ascii_case("on"))
            })
            .unwrap_or(false);
        Value::Int(if double { 2 } else { 1 })
    })
    .cmd("handle_ruri_alias", 0, RouteType::ANY, None, |ctx, _| {
        handle_alias(ctx.msg)
    })
    .cmd("add_rcv_param", 0, RouteType::ANY, None, |ctx, _| {
        add_rcv(ctx.msg, false)
    })
    .cmd("add_rcv_param", 1, RouteType::ANY, int.clone(), |ctx, p| {
        let in_uri = p[0].int(ctx) != 0;
        add_rcv(ctx.msg, in_uri)
    })
    .cmd(
        "fix_nated_sdp",
        1,
        RouteType::ANY,
        int.clone(),
        move |ctx, p| {
            let flags = p[0].int(ctx);
            fix_sdp(ctx.msg, flags, None, om1.load(Ordering::Relaxed) != 0)
        },
    )
    .cmd(
        "fix_nated_sdp",
        2,
        RouteType::ANY,
        spve.clone(),
        move |ctx, p| {
            let flags = sr_sdk::value::str_to_int(&p[0].str(ctx));
            match p[1].str(ctx).trim().parse::<IpAddr>() {
                Ok(ip) => fix_sdp(ctx.msg, flags, Some(ip), om2.load(Ordering::Relaxed) != 0),
                Err(_) => {
                    lm_err!("fix_nated_sdp: '{}' is not an address", p[1].str(ctx));
                    -1
                }
            }
        },
    )
    .cmd("is_rfc1918", 1, RouteType::ANY, spve, |ctx, p| {
        match p[0].str(ctx).trim().parse::<IpAddr>() {
            Ok(ip) if is_private(ip) => 1,
            _ => -1,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_connection_addresses() {
        let b = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 10.0.0.2\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 224.2.1.1/127\r\n";
        assert_eq!(
            sdp_addresses(b),
            vec![
                "10.0.0.2".parse::<IpAddr>().unwrap(),
                "224.2.1.1".parse().unwrap()
            ]
        );
    }

    fn msg(text: &str) -> SipMsg {
        let owned = sr_sdk::sip_msg::OwnedMessage::parse(bytes_of(text)).unwrap();
        SipMsg::from_owned(owned, sr_sdk::RecvInfo::loopback(), 1)
    }

    fn bytes_of(text: &str) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(text.replace('\n', "\r\n").as_bytes())
    }

    fn sent(m: &SipMsg) -> String {
        let out = m.edits.apply(m.msg(), Default::default());
        String::from_utf8(out).unwrap()
    }

    const REQ: &str = "INVITE sip:b@example.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:b@example.com>\nCall-ID: c\nCSeq: 1 INVITE\nCONTACT_LINE\nContent-Length: 0\n\n";

    #[test]
    fn a_tel_contact_is_left_alone() {
        let mut m = msg(&REQ.replace("CONTACT_LINE", "Contact: <tel:+15551234>"));
        assert_eq!(fix_contact(&mut m), -1);
        assert_eq!(
            add_alias(&mut m, "192.0.2.1".parse().unwrap(), 5060, Proto::Udp),
            -1
        );
        assert_eq!(add_rcv(&mut m, false), -1);
        assert!(m.edits.is_empty());
    }

    #[test]
    fn an_alias_is_added_once_and_brackets_a_bare_uri() {
        let mut m = msg(&REQ.replace("CONTACT_LINE", "Contact: sip:a@10.0.0.1:5060;expires=60"));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(add_alias(&mut m, ip, 5062, Proto::Udp), 1);
        assert_eq!(add_alias(&mut m, ip, 5062, Proto::Udp), -1, "a second call");
        assert!(
            sent(&m)
                .contains("Contact: <sip:a@10.0.0.1:5060;alias=192.0.2.1~5062~1>;expires=60\r\n"),
            "{}",
            sent(&m)
        );
        // Not needed when the Contact is the address already.
        let mut m = msg(&REQ.replace("CONTACT_LINE", "Contact: <sip:a@192.0.2.1:5062>"));
        assert_eq!(add_alias(&mut m, ip, 5062, Proto::Udp), 2);
    }

    #[test]
    fn the_alias_is_taken_from_the_uri_parameters_only() {
        let mut m = msg("BYE sip:a;alias=192.0.2.9~1~1@10.0.0.1:5060;alias=192.0.2.1~5062~2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\nFrom: <sip:b@x>;tag=2\nTo: <sip:a@x>;tag=1\nCall-ID: c\nCSeq: 2 BYE\nContent-Length: 0\n\n");
        assert_eq!(handle_alias(&mut m), 1);
        assert_eq!(
            m.dst_uri.as_deref(),
            Some("sip:192.0.2.1:5062;transport=tcp")
        );
        assert_eq!(
            m.new_uri.as_deref(),
            Some("sip:a;alias=192.0.2.9~1~1@10.0.0.1:5060")
        );
        assert_eq!(handle_alias(&mut m), 2, "no alias left");
    }
}
