//! The session-timer headers of RFC 4028, read without I/O:
//! `Session-Expires` (compact `x`: delta-seconds and a `refresher`),
//! `Min-SE` and whether `Supported` (compact `k`) names `timer`.

use sr_sdk::sip_msg::{HeaderName, Message};

/// Who refreshes the session (`refresher` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// `refresher=uac`.
    Uac,
    /// `refresher=uas`.
    Uas,
}

/// A `Session-Expires` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// The session interval, seconds.
    pub interval: u32,
    /// The refresher, when given.
    pub refresher: Option<Refresher>,
}

/// Parses a `Session-Expires` value: `delta-seconds *(;se-params)`;
/// `refresher` must be `uac` or `uas` (any case), other parameters are
/// skipped.
pub fn parse_session_expires(v: &str) -> Result<SessionExpires, String> {
    let mut parts = v.split(';');
    let interval = delta(parts.next().unwrap_or(""))?;
    let mut refresher = None;
    for p in parts {
        let (k, val) = p.split_once('=').unwrap_or((p, ""));
        if k.trim().eq_ignore_ascii_case("refresher") {
            refresher = Some(match val.trim().to_ascii_lowercase().as_str() {
                "uac" => Refresher::Uac,
                "uas" => Refresher::Uas,
                other => return Err(format!("unknown refresher '{other}'")),
            });
        }
    }
    Ok(SessionExpires {
        interval,
        refresher,
    })
}

/// Parses a `Min-SE` value: `delta-seconds *(;generic-param)`.
pub fn parse_min_se(v: &str) -> Result<u32, String> {
    delta(v.split(';').next().unwrap_or(""))
}

fn delta(s: &str) -> Result<u32, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a number of seconds"));
    }
    s.parse::<u32>()
        .map_err(|_| format!("'{s}' is out of range"))
}

/// The first `Session-Expires` header, parsed (`None` without one).
pub fn session_expires(m: &Message<'_>) -> Option<Result<SessionExpires, String>> {
    m.value(HeaderName::SessionExpires)
        .map(parse_session_expires)
}

/// The first `Min-SE` header, parsed (`None` without one).
pub fn min_se(m: &Message<'_>) -> Option<Result<u32, String>> {
    min_se_headers(m).next().map(|h| parse_min_se(h.value))
}

/// Every `Min-SE` header.
pub fn min_se_headers<'m, 'a>(
    m: &'m Message<'a>,
) -> impl Iterator<Item = &'m sr_sdk::sip_msg::Header<'a>> + 'm {
    m.headers_named(HeaderName::MinSe)
}

/// Whether a `Supported` header names the `timer` option tag.
pub fn supports_timer(m: &Message<'_>) -> bool {
    m.headers_named(HeaderName::Supported).any(|h| {
        h.value
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("timer"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires_values() {
        assert_eq!(
            parse_session_expires("1800"),
            Ok(SessionExpires {
                interval: 1800,
                refresher: None
            })
        );
        assert_eq!(
            parse_session_expires(" 90 ; refresher = UAS;x=1"),
            Ok(SessionExpires {
                interval: 90,
                refresher: Some(Refresher::Uas)
            })
        );
        assert!(parse_session_expires("90;refresher=proxy").is_err());
        assert!(parse_session_expires("abc").is_err());
        assert!(parse_session_expires("").is_err());
        assert!(parse_session_expires("-5").is_err());
        assert!(parse_session_expires("99999999999").is_err());
        assert_eq!(parse_min_se("120;foo"), Ok(120));
        assert!(parse_min_se("x").is_err());
    }

    #[test]
    fn headers_of_a_message() {
        let raw = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nx: 300;refresher=uac\r\nMin-SE: 60\r\nk: 100rel, Timer\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(raw.as_bytes()).expect("parses");
        assert_eq!(
            session_expires(&m),
            Some(Ok(SessionExpires {
                interval: 300,
                refresher: Some(Refresher::Uac)
            }))
        );
        assert_eq!(min_se(&m), Some(Ok(60)));
        assert!(supports_timer(&m));
    }
}
