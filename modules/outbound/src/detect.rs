//! When a request "uses outbound" (Kamailio's `use_outbound`), so that
//! rr and path put a flow token in what they add.
//!
//! - A REGISTER does when it came straight from the user agent (one Via)
//!   and its first Contact has a `reg-id` parameter (RFC 5626 §5.2: this
//!   proxy is the first hop of a registered flow).
//! - Another request does when its top Route is ours and has `;ob` (the
//!   Path or Record-Route entry we added): 2 when the token there names
//!   a flow other than the one the request came on (it is going back
//!   down that flow), else 1. A top Route that is someone else's, or a
//!   GRUU of ours, means no.
//! - Otherwise, it does when it came straight from the user agent (one
//!   Via), its first Contact URI has `;ob`, and it has no `Supported`
//!   header without `outbound` (no `Supported` header at all is not a
//!   no, as in Kamailio).

use crate::ObApi;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::headers::ContactValue;
use sr_sdk::sip_msg::HeaderName;

fn one_via(msg: &SipMsg) -> bool {
    msg.msg().vias().nth(1).is_none()
}

fn first_contact(msg: &SipMsg) -> Option<ContactValue<'_>> {
    msg.msg().contacts().next().and_then(Result::ok)
}

/// The decision for a request, without the forcing flags (see
/// [`ObApi::use_outbound`]).
pub fn use_outbound(api: &ObApi, core: &dyn Core, msg: &SipMsg) -> u8 {
    if !msg.is_request() {
        return 0;
    }
    let m = msg.msg();
    if m.method().is_some_and(|x| x.as_str() == "REGISTER") {
        let reg_id = match first_contact(msg) {
            Some(ContactValue::Addr(na)) => na.param("reg-id").is_some(),
            _ => false,
        };
        return u8::from(one_via(msg) && reg_id);
    }
    if let Some(Ok(top)) = m.routes().next() {
        let u = &top.uri;
        let port = u.port.unwrap_or(5060);
        if !core.is_myself(u.host_str, Some(port)) || u.param("gr").is_some() {
            return 0;
        }
        if u.param("ob").is_some() {
            let back_down = api
                .decode(u.user.unwrap_or(""))
                .is_ok_and(|f| f.src != msg.rcv.src);
            return if back_down { 2 } else { 1 };
        }
    }
    if m.value(HeaderName::Supported).is_some() && !m.has_token(HeaderName::Supported, "outbound") {
        return 0;
    }
    if !one_via(msg) {
        return 0;
    }
    match first_contact(msg) {
        Some(ContactValue::Addr(na)) => u8::from(na.uri.param("ob").is_some()),
        _ => 0,
    }
}
