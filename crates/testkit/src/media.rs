//! Media for the media-relay tests (rtpengine, rtpproxy): an SDP offering
//! audio, reading back its port and address, and RTP sent until it comes
//! out at the other end.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// An SDP offering PCMU audio at 127.0.0.1:`port`.
pub fn sdp(port: u16) -> String {
    format!("v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}

/// The `c=` address and `m=audio` port of an SDP body.
pub fn media(body: &[u8]) -> (String, u16) {
    let t = String::from_utf8_lossy(body);
    let c = t
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .unwrap_or("")
        .trim()
        .to_string();
    let port = t
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    (c, port)
}

/// Sends RTP packets (PCMU, 160 bytes of payload, sequence numbers from
/// one) from `from` to 127.0.0.1:`port` until one reaches `to` (15
/// tries, 200 ms each): its size and where it came from.
pub fn relay_rtp(from: &UdpSocket, to: &UdpSocket, port: u16) -> Option<(usize, SocketAddr)> {
    let mut rtp = vec![
        0x80u8, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78,
    ];
    rtp.extend_from_slice(&[0xffu8; 160]);
    to.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    let mut buf = [0u8; 2048];
    for i in 0..15u8 {
        rtp[3] = i + 1;
        from.send_to(&rtp, ("127.0.0.1", port)).ok()?;
        if let Ok((n, src)) = to.recv_from(&mut buf) {
            return Some((n, src));
        }
    }
    None
}

/// The size of the packets [`relay_rtp`] sends.
pub const RTP_LEN: usize = 172;
