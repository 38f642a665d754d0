//! Differential test against Kamailio itself, for module stun: STUN
//! datagrams sent to the SIP UDP port (RFC 5389 and RFC 3489 Binding
//! requests, requests with USERNAME, SOFTWARE and FINGERPRINT, unknown
//! comprehension-required attributes, a wrong length, another message
//! type, a 4-byte keep-alive) and the answers compared attribute by
//! attribute, from the same client socket for both servers; only the
//! SOFTWARE text (the server's name) is written alike. SIP goes on
//! working beside it.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "stun"];

const BODY: &str = r#"request_route {
    sl_send_reply("200", "up");
}
"#;

fn request(ty: u16, cookie: bool, tid: u8, attrs: &[u8], len: Option<u16>) -> Vec<u8> {
    let mut v = ty.to_be_bytes().to_vec();
    v.extend_from_slice(&len.unwrap_or(attrs.len() as u16).to_be_bytes());
    if cookie {
        v.extend_from_slice(&0x2112_a442u32.to_be_bytes());
    } else {
        v.extend_from_slice(&[7, 7, 7, 7]);
    }
    v.extend_from_slice(&[tid; 12]);
    v.extend_from_slice(attrs);
    v
}

/// The answer as its header and attributes in hex, SOFTWARE's text left
/// out.
fn shown(b: &[u8]) -> String {
    if b.len() < 20 {
        return format!("short {b:02x?}");
    }
    let mut out = format!("type {:02x}{:02x} id {:02x?}", b[0], b[1], &b[4..20]);
    let mut at = 20;
    while at + 4 <= b.len() {
        let ty = u16::from_be_bytes([b[at], b[at + 1]]);
        let len = usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
        let padded = (len + 3) & !3;
        let end = (at + 4 + padded).min(b.len());
        if ty == 0x8022 {
            out.push_str(" | SOFTWARE");
        } else {
            out.push_str(&format!(" | {ty:04x} len {len} {:02x?}", &b[at + 4..end]));
        }
        at = end;
    }
    out
}

fn scenario(sock: &UdpSocket, srv: SocketAddr) -> Vec<String> {
    let uac = sr_testkit::UdpPeer::new();
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let username = [
        0x00, 0x06, 0x00, 0x05, b'a', b'l', b'i', b'c', b'e', 0, 0, 0,
    ];
    let mut with_fp = vec![0x80, 0x22, 0x00, 0x04, b't', b'e', b's', b't'];
    with_fp.extend_from_slice(&[0x80, 0x28, 0x00, 0x04, 1, 2, 3, 4]);
    let unknown = [
        0x00, 0x31, 0, 0, 0x00, 0x32, 0, 4, 1, 2, 3, 4, 0x00, 0x33, 0, 0, 0xc0, 0x57, 0, 0,
    ];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("binding", request(1, true, 1, &[], None)),
        ("rfc3489", request(1, false, 2, &[], None)),
        ("username", request(1, true, 3, &username, None)),
        ("fingerprint", request(1, true, 4, &with_fp, None)),
        ("unknown", request(1, true, 5, &unknown, None)),
        ("bad length", request(1, true, 6, &username, Some(40))),
        ("indication", request(0x0011, true, 7, &[], None)),
        ("response", request(0x0101, true, 8, &[], None)),
        ("keepalive", vec![0, 0, 0, 0]),
    ];
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    for (name, req) in cases {
        sock.send_to(&req, srv).unwrap();
        let got = match sock.recv_from(&mut buf) {
            Ok((n, _)) => shown(&buf[..n]),
            Err(_) => "no answer".to_string(),
        };
        out.push(format!("{name}: {got}"));
    }
    out.push(format!(
        "sip: {}",
        uac.final_header(
            srv,
            &kamailio::options("after", "").replace("__VIA__", &uac.addr().to_string()),
            "Via"
        )
        .replace(&uac.addr().to_string(), "UAC")
    ));
    out
}

#[test]
fn stun_answers_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("stun");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(&sock, srv)
    });
    assert!(want[0].starts_with("binding: type 0101"), "{want:#?}");
    // Kept difference: Kamailio 5.6 gives UNKNOWN-ATTRIBUTES a length
    // that counts the attribute's own header (10 for three types), which
    // breaks the message; ours gives 6 and pads with the first type.
    let (mut want, mut got) = (want, got);
    let at = want.iter().position(|l| l.starts_with("unknown:")).unwrap();
    assert!(want[at].contains("| 000a len 10 ["), "{want:#?}");
    assert!(
        got[at].ends_with("| 000a len 6 [00, 31, 00, 32, 00, 33, 00, 31] | SOFTWARE"),
        "{got:#?}"
    );
    want.remove(at);
    got.remove(at);
    kamailio::conclude(&dir, &want, &got, "stun");
}
