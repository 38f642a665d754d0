//! siputils' encodings of Contact URIs and the Request-URI:
//!
//! - `encode_contact(prefix, host)`: each Contact URI
//!   `sip:user:pw@ip:port;transport=proto` becomes
//!   `sip:prefix*user*pw*ip*port*proto@host` (`*` is the
//!   `contact_flds_separator`; the URI's other parameters are dropped, the
//!   header's kept); `decode_contact()` and `decode_contact_header()` undo
//!   it on the Request-URI and on the Contact URIs (parameters after the
//!   encoded URI's host are kept, after `transport`);
//! - `contact_param_encode(name, addr)`: each Contact URI becomes `addr`
//!   with `;name=` the original URI in base64url (no padding);
//!   `contact_param_decode(name)` and `contact_param_decode_ruri(name)`
//!   undo it; `contact_param_rm(name)` removes the parameter (its last
//!   occurrence in each URI, as Kamailio).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::scan::CommaSplit;
use sr_sdk::sip_msg::{HeaderName, Uri};

/// base64url, decoding with or without padding.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The offsets of every Contact URI of the message (`*` left out), or of
/// the first Contact header's only (`first_only`, what Kamailio's
/// `msg->contact` holds).
pub fn contact_uris(msg: &SipMsg, first_only: bool) -> Vec<(u32, u32)> {
    let m = msg.msg();
    let raw = m.raw();
    let mut out = Vec::new();
    let take = if first_only { 1 } else { usize::MAX };
    for h in m.headers_named(HeaderName::Contact).take(take) {
        for v in CommaSplit::new(h.value) {
            let base = v.as_ptr() as usize - raw.as_ptr() as usize;
            let (s, e) = match v.find('<') {
                Some(lt) => match v[lt..].find('>') {
                    Some(gt) => (lt + 1, lt + gt),
                    None => continue,
                },
                None => (0, v.find(';').unwrap_or(v.len())),
            };
            let uri = v[s..e].trim();
            if uri.is_empty() || uri == "*" {
                continue;
            }
            out.push(((base + s) as u32, (base + e) as u32));
        }
    }
    out
}

/// Replaces each Contact URI by `f(uri)` (`None`: left alone). 1 when
/// at least one Contact was there, -1 when none was.
fn map_contacts(msg: &mut SipMsg, f: impl Fn(&str) -> Option<String>) -> i32 {
    let spans = contact_uris(msg, false);
    if spans.is_empty() {
        return -1;
    }
    let raw = msg.msg().raw();
    let edits: Vec<(u32, u32, String)> = spans
        .iter()
        .filter_map(|&(s, e)| {
            let uri = std::str::from_utf8(&raw[s as usize..e as usize]).ok()?;
            f(uri).map(|n| (s, e, n))
        })
        .collect();
    for (s, e, t) in edits {
        msg.edits.replace(s, e, t.as_bytes());
    }
    1
}

/// The `transport` parameter of a URI's parameters.
fn transport(params: &str) -> &str {
    params
        .split(';')
        .find_map(|p| {
            let (n, v) = p.split_once('=')?;
            n.trim()
                .eq_ignore_ascii_case("transport")
                .then_some(v.trim())
        })
        .unwrap_or("")
}

/// `encode_contact`'s form of one URI.
pub fn encode_uri(uri: &str, prefix: &str, host: &str, sep: char) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    let scheme = &uri[..uri.find(':')?];
    let port = u.port.map(|p| p.to_string()).unwrap_or_default();
    Some(format!(
        "{scheme}:{prefix}{sep}{}{sep}{}{sep}{}{sep}{port}{sep}{}@{host}",
        u.user.unwrap_or(""),
        u.password.unwrap_or(""),
        u.host_str,
        transport(u.params),
    ))
}

/// Decodes `sip:prefix*user*pw*ip*port*proto@host[;params]`; `None` when
/// the URI is not in that form.
pub fn decode_uri(uri: &str, sep: char) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    let scheme = &uri[..uri.find(':')?];
    let fields: Vec<&str> = u.user?.split(sep).collect();
    let [_, user, pw, ip, port, proto] = fields[..] else {
        return None;
    };
    if ip.is_empty() {
        return None;
    }
    let mut out = format!("{scheme}:");
    if !user.is_empty() {
        out.push_str(user);
        if !pw.is_empty() {
            out.push(':');
            out.push_str(pw);
        }
        out.push('@');
    }
    out.push_str(ip);
    if !port.is_empty() {
        out.push(':');
        out.push_str(port);
    }
    if !proto.is_empty() {
        out.push_str(";transport=");
        out.push_str(proto);
    }
    let params = u.params.trim_start_matches(';');
    if !params.is_empty() {
        out.push(';');
        out.push_str(params);
    }
    Some(out)
}

/// `contact_param_encode`'s form of one URI.
pub fn param_encode(uri: &str, name: &str, addr: &str) -> String {
    format!("{addr};{name}={}", URL_SAFE_NO_PAD.encode(uri.as_bytes()))
}

/// The URI a `;name=` parameter of `uri` holds, base64url-decoded.
pub fn param_decode(uri: &str, name: &str) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    let v = u.params.split(';').find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })?;
    let bytes = B64_LENIENT.decode(v.as_bytes()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    // Only a URI goes into the message: no white space, control
    // characters or angle brackets (a header could be slipped in).
    let clean = !text
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b == b'<' || b == b'>');
    (clean && Uri::parse(&text).is_ok()).then_some(text)
}

/// `encode_contact(prefix, host)`.
pub fn encode_contact(msg: &mut SipMsg, prefix: &str, host: &str, sep: char) -> i32 {
    map_contacts(msg, |u| encode_uri(u, prefix, host, sep))
}

/// `decode_contact()`: the Request-URI decoded (becomes `$ru`); -26 (as
/// Kamailio) when it is not encoded.
pub fn decode_contact(msg: &mut SipMsg, sep: char) -> i32 {
    match decode_uri(msg.ruri(), sep) {
        Some(u) => {
            msg.new_uri = Some(u);
            1
        }
        None => {
            lm_err!("decode_contact: the Request-URI is not encoded");
            -26
        }
    }
}

/// `decode_contact_header()`.
pub fn decode_contact_header(msg: &mut SipMsg, sep: char) -> i32 {
    map_contacts(msg, |u| decode_uri(u, sep))
}

/// `contact_param_encode(name, addr)`.
pub fn contact_param_encode(msg: &mut SipMsg, name: &str, addr: &str) -> i32 {
    map_contacts(msg, |u| Some(param_encode(u, name, addr)))
}

/// `contact_param_decode(name)`: Contact URIs without the parameter stay.
pub fn contact_param_decode(msg: &mut SipMsg, name: &str) -> i32 {
    map_contacts(msg, |u| param_decode(u, name))
}

/// `contact_param_decode_ruri(name)`: -1 when the Request-URI has no such
/// parameter.
pub fn contact_param_decode_ruri(msg: &mut SipMsg, name: &str) -> i32 {
    match param_decode(msg.ruri(), name) {
        Some(u) => {
            msg.new_uri = Some(u);
            1
        }
        None => -1,
    }
}

/// `contact_param_rm(name)`.
pub fn contact_param_rm(msg: &mut SipMsg, name: &str) -> i32 {
    map_contacts(msg, |u| crate::uri_ops::without_last_param(u, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes() {
        let e = encode_uri(
            "sip:alice:pw@10.0.0.1:5070;transport=tcp;x=1",
            "nat",
            "1.2.3.4",
            '*',
        )
        .unwrap();
        assert_eq!(e, "sip:nat*alice*pw*10.0.0.1*5070*tcp@1.2.3.4");
        assert_eq!(
            decode_uri(&e, '*').unwrap(),
            "sip:alice:pw@10.0.0.1:5070;transport=tcp"
        );
        let e = encode_uri("sip:10.0.0.1", "nat", "h", '*').unwrap();
        assert_eq!(e, "sip:nat***10.0.0.1**@h");
        assert_eq!(decode_uri(&e, '*').unwrap(), "sip:10.0.0.1");
        assert_eq!(
            decode_uri("sip:n*a**10.0.0.1*5070*udp@h;lr", '*').unwrap(),
            "sip:a@10.0.0.1:5070;transport=udp;lr"
        );
        assert!(decode_uri("sip:alice@10.0.0.1", '*').is_none());
    }

    #[test]
    fn params_round_trip() {
        let e = param_encode(
            "sip:alice@10.0.0.1:5070;transport=tcp",
            "ksu",
            "sip:1.2.3.4",
        );
        assert_eq!(
            e,
            "sip:1.2.3.4;ksu=c2lwOmFsaWNlQDEwLjAuMC4xOjUwNzA7dHJhbnNwb3J0PXRjcA"
        );
        assert_eq!(
            param_decode(&e, "ksu").unwrap(),
            "sip:alice@10.0.0.1:5070;transport=tcp"
        );
        assert!(param_decode("sip:1.2.3.4", "ksu").is_none());
        // A value that is no URI, or would slip a header in, is refused.
        let evil = param_encode("sip:x@h\r\nEvil: y", "ksu", "sip:1.2.3.4");
        assert!(param_decode(&evil, "ksu").is_none());
        let text = param_encode("not a uri", "ksu", "sip:1.2.3.4");
        assert!(param_decode(&text, "ksu").is_none());
    }
}
