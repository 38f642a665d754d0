//! The local Via from XAVPs (corex's `via_add_xavp_params` and
//! `via_use_xavp_fields`, the core's `xavp_via_params` and
//! `xavp_via_fields`).

use sr_sdk::SipMsg;

/// A value of the Via XAVPs as text, or `None` when it could break the
/// header (white space, `;`, `,`, quotes, angle brackets or control
/// characters).
fn via_token(v: &sr_sdk::Value<'_>) -> Option<String> {
    let t = v.as_str().into_owned();
    let bad = |b: u8| b <= b' ' || b == 0x7f || b";,\"<>".contains(&b);
    (!t.bytes().any(bad)).then_some(t)
}

/// `address` and `port` of the `xavp_via_fields` XAVP (its newest
/// entry); values that could break the header are left out.
pub(crate) fn fields(msg: &SipMsg, name: &str) -> (Option<String>, Option<u16>) {
    if name.is_empty() {
        return (None, None);
    }
    let host = msg
        .xavps
        .field(name, 0, "address", 0)
        .and_then(via_token)
        .filter(|h| !h.is_empty());
    let port = msg
        .xavps
        .field(name, 0, "port", 0)
        .and_then(|v| v.as_str().trim().parse::<u16>().ok())
        .filter(|p| *p != 0);
    (host, port)
}

/// The fields of the `xavp_via_params` XAVP (its newest entry) as
/// `;name=value` (`;name` for an empty value), newest field first.
pub(crate) fn push_params(msg: &SipMsg, name: &str, via: &mut String) {
    let Some(sr_sdk::xavp::XavpValue::Fields(fields)) = msg.xavps.get(name, 0) else {
        return;
    };
    for (k, v) in fields {
        let Some(val) = via_token(v) else {
            continue;
        };
        if k.is_empty()
            || k.bytes()
                .any(|b| !(b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b)))
        {
            continue;
        }
        via.push(';');
        via.push_str(k);
        if !val.is_empty() {
            via.push('=');
            via.push_str(&val);
        }
    }
}
