//! Best-response selection (Kamailio's `t_pick_branch` priorities) and
//! the aggregation of 401/407 challenges from several branches.

use bytes::Bytes;
use sr_sdk::sip_msg::edit::{ApplyOptions, Edits};
use sr_sdk::sip_msg::{HeaderName, Message};

/// The priority of a final status code: the lowest wins. 2xx beat
/// everything, then 6xx, 3xx, 4xx (with 401, 407, 415, 420 and 484 ahead
/// of the other 4xx because the caller can act on them), then 5xx.
pub fn priority(code: u16) -> u32 {
    let xx = u32::from(code % 100);
    match code / 100 {
        2 => 0,
        6 => 1000 + xx,
        3 => 3000 + xx,
        4 => match code {
            401 | 407 | 415 | 420 | 484 => 4000 + xx,
            _ => 4000 + 100 + xx,
        },
        5 => 5000 + xx,
        _ => 10_000 + u32::from(code),
    }
}

/// Index of the best candidate `(index, code, faked)`: lowest priority, a
/// local (faked) reply losing ties to a received one, then the earliest
/// branch.
pub fn best(cands: impl Iterator<Item = (usize, u16, bool)>) -> Option<usize> {
    cands
        .min_by_key(|(i, code, faked)| (priority(*code), *faked, *i))
        .map(|(i, _, _)| i)
}

/// A local reply (`local`) with the `WWW-Authenticate` and
/// `Proxy-Authenticate` headers of every challenge in `all`, in order:
/// what the caller gets when several branches asked for credentials
/// (`aggregate_challenges`), as Kamailio builds it. `None` when `local`
/// does not parse.
pub fn with_challenges(local: &Bytes, all: &[&Bytes], stream: bool) -> Option<Bytes> {
    let l = Message::parse(local).ok()?;
    let mut extra = String::new();
    for o in all {
        let Ok(m) = Message::parse(o) else { continue };
        for name in [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate] {
            for h in m.headers_named(name) {
                extra.push_str(name.as_str());
                extra.push_str(": ");
                extra.push_str(h.value);
                extra.push_str("\r\n");
            }
        }
    }
    let mut e = Edits::new();
    e.append_raw(&l, &extra);
    Some(Bytes::from(e.apply(
        &l,
        ApplyOptions {
            ensure_content_length: stream,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kamailio_priorities() {
        assert!(priority(200) < priority(603));
        assert!(priority(603) < priority(302));
        assert!(priority(302) < priority(401));
        assert!(priority(401) < priority(486));
        assert!(priority(407) < priority(404));
        assert!(priority(484) < priority(408));
        assert!(priority(486) < priority(500));
        assert!(priority(503) < priority(900));
    }

    #[test]
    fn ties_prefer_received_then_first() {
        let c = [(0, 408, true), (1, 408, false), (2, 486, false)];
        assert_eq!(best(c.into_iter()), Some(1));
        let c = [(0, 486, false), (1, 486, false)];
        assert_eq!(best(c.into_iter()), Some(0));
        assert_eq!(best(std::iter::empty()), None);
    }

    #[test]
    fn challenges_are_merged() {
        let a = Bytes::from_static(b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nWWW-Authenticate: Digest realm=\"a\", nonce=\"1\"\r\nContent-Length: 0\r\n\r\n");
        let b = Bytes::from_static(b"SIP/2.0 407 Proxy Auth\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=3\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nProxy-Authenticate: Digest realm=\"b\", nonce=\"2\"\r\nContent-Length: 0\r\n\r\n");
        let local = Bytes::from_static(b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=ours\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
        let out = with_challenges(&local, &[&a, &b], false).unwrap();
        let m = Message::parse(&out).unwrap();
        assert_eq!(m.status(), Some(401));
        assert_eq!(m.to_tag().ok().flatten(), Some("ours"));
        assert_eq!(m.headers_named(HeaderName::WwwAuthenticate).count(), 1);
        assert_eq!(m.headers_named(HeaderName::ProxyAuthenticate).count(), 1);
    }
}
