//! Property tests of the SDP code on arbitrary input (it reads bodies from
//! the network): parsing never panics, every range it gives lies in the
//! body, and every rewrite the module makes with those ranges applies.

use proptest::prelude::*;
use sr_mod_rtpproxy::command::{offer_flags, parse_allocated};
use sr_mod_rtpproxy::sdp::{has_marker, marker_at, parse, payload_list, Rewrite};

/// SDP-like lines, some valid, some broken, joined by CRLF, LF or CR.
fn sdp_like() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just("v=0".to_string()),
        "o=[- a-z0-9]{0,12} IN IP[46x] [0-9a-f.:]{0,20}",
        "c=IN IP[46] [0-9a-f.:/]{0,24}",
        "c=[A-Z ]{0,6}",
        "m=[a-z]{0,6} [0-9/]{0,7} [A-Za-z/]{0,12}[ 0-9a-z]{0,12}",
        "a=rtcp:[0-9 A-Z.]{0,20}",
        "a=candidate:[0-9a-z .]{0,40}",
        "a=nortpproxy:yes[a-z]{0,3}",
        "[a-z]=?[ -~]{0,20}",
        Just(String::new()),
    ];
    let sep = prop_oneof![Just("\r\n"), Just("\n"), Just("\r")];
    (
        prop::collection::vec((line, sep), 0..14),
        any::<Vec<u8>>(),
        any::<bool>(),
    )
        .prop_map(|(lines, junk, valid_head)| {
        // Half of them start as a real SDP does, so that parsing succeeds
        // and the rewrites run.
        let mut b = Vec::new();
        if valid_head {
            b.extend_from_slice(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n");
        }
        for (l, s) in lines {
            b.extend_from_slice(l.as_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        if junk.len() % 3 == 0 {
            b.extend_from_slice(&junk);
        }
        b
    })
}

fn exercise(body: &[u8]) {
    let _ = has_marker(body, b"a=nortpproxy:yes");
    let Ok(sdp) = parse(body) else { return };
    let mut rw = Rewrite::default();
    for sess in &sdp.sessions {
        if let Some(o) = &sess.origin {
            assert!(o.addr.end <= body.len() && o.family_digit < o.addr.end);
            rw.set_addr(body, o, "2001:db8::1", true);
        }
        if let Some(c) = &sess.conn {
            rw.set_addr(body, c, "192.0.2.1", false);
        }
        for st in &sess.streams {
            assert!(st.port.end <= body.len() && st.formats.end <= body.len());
            let _ = payload_list(&body[st.formats.clone()]);
            rw.replace(st.port.clone(), b"40000");
            if let Some(r) = &st.rtcp {
                assert!(r.end <= body.len());
                rw.replace(r.clone(), b"40001");
            }
            if let Some(at) = st.last_candidate {
                rw.replace(at..at, b"a=candidate:x\r\n");
            }
            if let Some(c) = &st.conn {
                rw.set_addr(body, c, "192.0.2.1", false);
            }
        }
    }
    let at = marker_at(body);
    rw.replace(at..at, b"\r\na=nortpproxy:yes");
    let out = rw.apply(body);
    // The marker is never lost to an overlapping change.
    assert!(has_marker(&out, b"a=nortpproxy:yes"));
}

proptest! {
    #[test]
    fn sdp_like_bodies_never_break_the_parser_or_the_rewrite(body in sdp_like()) {
        exercise(&body);
    }

    #[test]
    fn a_valid_head_parses_whatever_follows_in_streams(tail in "(a=[ -~]{0,20}\r\n){0,5}") {
        let body = format!("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n{tail}");
        prop_assert!(parse(body.as_bytes()).is_ok());
        exercise(body.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_break_the_parser(body in any::<Vec<u8>>()) {
        exercise(&body);
    }

    #[test]
    fn proxy_answers_and_flags_never_panic(s in "[ -~\u{80}-\u{10ffff}]{0,40}") {
        let _ = parse_allocated(&s);
        let _ = offer_flags(&s);
        let _ = sr_mod_rtpproxy::command::destroy_flags(&s);
    }
}
