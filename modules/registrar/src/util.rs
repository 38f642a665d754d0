//! Helpers: address-of-record extraction and local replies with extra
//! headers.

use sr_sdk::prelude::*;
use sr_sdk::sip_msg;

pub use sr_sdk::text::unescape;

/// The address-of-record of a URI: `user@host` (host lower-cased) with
/// `use_domain`, else `user`. `None` when the URI does not parse or has
/// no user part.
pub fn aor_of(uri: &str, use_domain: bool) -> Option<String> {
    let u = sip_msg::Uri::parse(uri.trim().trim_start_matches('<').trim_end_matches('>')).ok()?;
    let user = unescape(u.user.filter(|x| !x.is_empty())?);
    if use_domain {
        Some(format!("{user}@{}", u.host_str.to_ascii_lowercase()))
    } else {
        Some(user)
    }
}

/// Sends a reply with `extra` header lines (each ending in CRLF),
/// statefully when `tm` has a transaction for the request, else
/// statelessly. As Kamailio's reply lumps, the lines stay on the
/// request's later replies too (an `sl_reply_error()` after a failed
/// `save()` repeats them).
pub fn reply(
    replier: &sr_mod_sl::Replier,
    ctx: &mut Ctx<'_>,
    code: u16,
    reason: &str,
    extra: &str,
) -> bool {
    ctx.msg.reply_headers.push_str(extra);
    replier.send(ctx, code, reason)
}

/// The first URI of a Path vector (`<sip:p1;lr>,<sip:p2;lr>` gives
/// `sip:p1;lr`).
pub fn first_path_uri(path: &str) -> Option<String> {
    let first = path.split(',').next()?.trim();
    let na = sip_msg::headers::NameAddr::parse(first, "Path").ok()?;
    Some(na.uri_str.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aors() {
        assert_eq!(
            aor_of("sip:alice@Example.COM;transport=udp", true).unwrap(),
            "alice@example.com"
        );
        assert_eq!(aor_of("<sip:al%69ce@h>", false).unwrap(), "alice");
        assert!(aor_of("sip:example.com", true).is_none());
        assert!(aor_of("junk", true).is_none());
        assert_eq!(unescape("a%2"), "a%2");
        assert_eq!(
            first_path_uri("<sip:p1.example.com;lr>, <sip:p2;lr>").unwrap(),
            "sip:p1.example.com;lr"
        );
    }
}
