//! The ng protocol's requests: the dictionary a command and Kamailio's
//! flag string make, and the cookie-prefixed datagram exchange with the
//! daemon (tried on each configured socket in turn, with retries).

use crate::bencode::Ben;
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Adds Kamailio's flag string (space-separated words) to a request:
/// `replace-X` → `replace: [X]`, `rtcp-mux-X` → `rtcp-mux: [X]`, `SDES-X`
/// → `SDES: [X]`, `direction=X` → `direction: [X]` (repeatable),
/// `RTP/AVP` and the other transport names → `transport-protocol`,
/// `address-family=X` → `address family`, `key=value` → that entry, any
/// other word → `flags: [word]`. `via-branch=...` is Kamailio's own and
/// skipped.
pub fn add_flags(d: &mut BTreeMap<Vec<u8>, Ben>, flags: &str) {
    fn push(d: &mut BTreeMap<Vec<u8>, Ben>, key: &str, v: &str) {
        let e = d
            .entry(key.as_bytes().to_vec())
            .or_insert_with(|| Ben::List(Vec::new()));
        if let Ben::List(l) = e {
            l.push(Ben::str(v));
        }
    }
    for w in flags.split_whitespace() {
        if let Some(x) = w.strip_prefix("replace-") {
            push(d, "replace", x);
        } else if let Some(x) = w.strip_prefix("rtcp-mux-") {
            push(d, "rtcp-mux", x);
        } else if let Some(x) = w.strip_prefix("SDES-") {
            push(d, "SDES", x);
        } else if let Some(x) = w.strip_prefix("direction=") {
            push(d, "direction", x);
        } else if matches!(
            w,
            "RTP/AVP"
                | "RTP/SAVP"
                | "RTP/AVPF"
                | "RTP/SAVPF"
                | "UDP/TLS/RTP/SAVP"
                | "UDP/TLS/RTP/SAVPF"
        ) {
            d.insert(b"transport-protocol".to_vec(), Ben::str(w));
        } else if let Some(x) = w.strip_prefix("address-family=") {
            d.insert(b"address family".to_vec(), Ben::str(x));
        } else if w.starts_with("via-branch=") {
        } else if let Some((k, v)) = w.split_once('=') {
            d.insert(k.as_bytes().to_vec(), Ben::str(v));
        } else {
            push(d, "flags", w);
        }
    }
}

/// A request: `command` with these string entries and the flags.
pub fn request(command: &str, entries: &[(&str, &str)], flags: &str) -> Ben {
    let mut d = BTreeMap::new();
    d.insert(b"command".to_vec(), Ben::str(command));
    for (k, v) in entries {
        d.insert(k.as_bytes().to_vec(), Ben::str(v));
    }
    add_flags(&mut d, flags);
    Ben::Dict(d)
}

static COOKIE: AtomicU64 = AtomicU64::new(1);

/// A prefix for this process's cookies: the daemon answers a cookie it
/// has seen from its cache, so two instances (containers often have the
/// same small pid) or a restart must not reuse one.
fn cookie_prefix() -> &'static str {
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{:x}{:x}", std::process::id(), t as u64)
    })
}

/// Sends `req` to the daemons in turn until one answers: `tries` tries
/// each, `timeout` per try (junk arriving meanwhile does not extend it).
/// The answer's dictionary, or why there is none and which daemons did
/// not answer.
pub fn exchange(
    daemons: &[SocketAddr],
    req: &Ben,
    timeout: Duration,
    tries: u32,
) -> Result<Ben, (String, Vec<SocketAddr>)> {
    let cookie = format!(
        "{}_{}",
        cookie_prefix(),
        COOKIE.fetch_add(1, Ordering::Relaxed)
    );
    let mut out = cookie.clone().into_bytes();
    out.push(b' ');
    req.encode(&mut out);
    let mut last = "no rtpengine_sock set".to_string();
    let mut dead = Vec::new();
    for d in daemons {
        match ask(*d, &cookie, &out, timeout, tries) {
            Ok(v) => return Ok(v),
            Err(e) => {
                last = e;
                dead.push(*d);
            }
        }
    }
    Err((last, dead))
}

/// One daemon: a connected socket (a closed port fails at once), `tries`
/// sends, each waiting until its own deadline.
fn ask(
    d: SocketAddr,
    cookie: &str,
    out: &[u8],
    timeout: Duration,
    tries: u32,
) -> Result<Ben, String> {
    let bind = if d.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    sock.connect(d).map_err(|e| format!("{d}: {e}"))?;
    let mut buf = vec![0u8; 65536];
    let mut last = format!("{d}: no answer");
    for _ in 0..tries.max(1) {
        sock.send(out).map_err(|e| format!("{d}: {e}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let b = &buf[..n];
                    // Only the answer to this request (a late answer to
                    // an earlier try has the same cookie: fine).
                    let Some(rest) = b.strip_prefix(cookie.as_bytes()) else {
                        continue;
                    };
                    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                    return Ben::decode(rest)
                        .map(|(v, _)| v)
                        .ok_or_else(|| format!("{d}: an answer that does not decode"));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    last = format!("{d}: no answer");
                    break;
                }
                // Nobody at the port (ICMP): no point in trying again.
                Err(e) => return Err(format!("{d}: {e}")),
            }
        }
    }
    Err(last)
}

/// Reads `udp:host:port` entries (space-separated, each optionally
/// `=weight`, which is ignored).
pub fn parse_socks(s: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let mut v = Vec::new();
    for w in s.split_whitespace() {
        let w = w.split('=').next().unwrap_or(w);
        let addr = w
            .strip_prefix("udp:")
            .or_else(|| w.strip_prefix("udp6:"))
            .ok_or_else(|| format!("rtpengine_sock '{w}': only udp: sockets are supported"))?;
        let a = addr
            .to_socket_addrs()
            .map_err(|e| format!("rtpengine_sock '{w}': {e}"))?
            .next()
            .ok_or_else(|| format!("rtpengine_sock '{w}': no address"))?;
        v.push(a);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kamailio_flag_strings() {
        let r = request(
            "offer",
            &[("call-id", "c1")],
            "replace-origin replace-session-connection trust-address ICE=remove RTP/AVP direction=internal direction=external via-branch=1 address-family=IP6",
        );
        let mut out = Vec::new();
        r.encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "d3:ICE6:remove14:address family3:IP67:call-id2:c17:command5:offer9:directionl8:internal8:externale5:flagsl13:trust-addresse7:replacel6:origin18:session-connectione18:transport-protocol7:RTP/AVPe"
        );
    }

    #[test]
    fn sockets() {
        let v = parse_socks("udp:127.0.0.1:2223 udp:127.0.0.1:2224=2").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].port(), 2224);
        assert!(parse_socks("unix:/run/rtpengine.sock").is_err());
    }

    #[test]
    fn an_absent_daemon_is_reported() {
        // A port nobody listens on: the error names it.
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        drop(s);
        let t = Instant::now();
        let (e, dead) = exchange(
            &[addr],
            &request("ping", &[], ""),
            Duration::from_millis(500),
            5,
        )
        .unwrap_err();
        assert!(e.contains(&addr.to_string()), "{e}");
        assert_eq!(dead, vec![addr]);
        // Connection refused ends it at once, not after 5 × 500 ms.
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
    }
}
