//! The RTPProxy instances (`rtpproxy_sock`), grouped in sets, how one is
//! picked for a call, and how a command is sent to it: over UDP with a
//! cookie, resent `rtpproxy_retr` times `rtpproxy_tout` seconds apart, or
//! over a UNIX stream socket, one connection per command. An instance that
//! does not answer is skipped for `rtpproxy_disable_tout` seconds, then
//! tested again (`V`, `VF`) before it is used.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `recheck` of an instance disabled until `rtpproxy.enable` (Kamailio
/// shows it as 4294967295).
pub const FOREVER: u64 = u32::MAX as u64;

/// Seconds since the module started (Kamailio's ticks).
pub fn ticks() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

/// Where an instance listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `udp:host:port` or `udp6:host:port`.
    Udp(SocketAddr),
    /// `unix:/path` (or a bare path).
    Unix(String),
}

/// What is known of an instance now.
#[derive(Debug, Clone, Copy, Default)]
pub struct State {
    /// Not to be used.
    pub disabled: bool,
    /// When (in [`ticks`]) a disabled instance may be tested again.
    pub recheck: u64,
    /// It repacketizes (`VF 20071116`).
    pub repacketize: bool,
    /// It takes payload lists and the stream commands (`VF 20081102`).
    pub payload_list: bool,
}

/// One RTPProxy instance.
#[derive(Debug)]
pub struct Node {
    /// The set it belongs to.
    pub setid: u32,
    /// As configured (with its scheme).
    pub url: String,
    /// Its number over all sets, from 0.
    pub index: usize,
    /// Its share of the calls of its set.
    pub weight: u32,
    /// Where it listens.
    pub target: Target,
    /// What is known of it.
    pub state: Mutex<State>,
}

impl Node {
    /// The current state.
    pub fn state(&self) -> State {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_state(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// How commands are sent.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Tries per command over UDP (`rtpproxy_retr`).
    pub retr: u32,
    /// Seconds to wait for each (`rtpproxy_tout`).
    pub tout: u64,
    /// Seconds an instance that failed is skipped (`rtpproxy_disable_tout`).
    pub disable_tout: i64,
}

/// Every set, in the order first configured.
#[derive(Debug, Default)]
pub struct Sets {
    /// (set id, its instances).
    pub sets: Vec<(u32, Vec<std::sync::Arc<Node>>)>,
}

/// Reads one `rtpproxy_sock` value into `sets` (`[id ==] url[=weight] ...`).
pub fn add_sock(sets: &mut Sets, value: &str) -> Result<(), String> {
    let v = value.trim_start();
    if v.is_empty() {
        return Ok(());
    }
    let (id, list) = match v.split_once("==") {
        Some((id, list)) => {
            let id = id.trim_end();
            let id: u32 = id
                .parse()
                .map_err(|_| format!("bad set id '{id}' in rtpproxy_sock"))?;
            if list.trim().is_empty() {
                return Err(format!("set {id} of rtpproxy_sock names no proxy"));
            }
            (id, list)
        }
        None => (0, v),
    };
    let first = sets.sets.iter().map(|s| s.1.len()).sum::<usize>();
    let pos = match sets.sets.iter().position(|s| s.0 == id) {
        Some(p) => p,
        None => {
            sets.sets.push((id, Vec::new()));
            sets.sets.len() - 1
        }
    };
    for (index, tok) in (first..).zip(list.split_whitespace()) {
        let (url, weight) = match tok.split_once('=') {
            Some((u, w)) => (
                u,
                crate::command::atoi(w).clamp(0, i64::from(u32::MAX)) as u32,
            ),
            None => (tok, 1),
        };
        let target = target_of(url)?;
        sets.sets[pos].1.push(std::sync::Arc::new(Node {
            setid: id,
            url: url.to_string(),
            index,
            weight,
            target,
            state: Mutex::new(State::default()),
        }));
    }
    Ok(())
}

/// The set ids the `rtpproxy_sock` values name (0 for a value without
/// `==`), without resolving anything.
pub fn set_ids(values: &[String]) -> Vec<i64> {
    values
        .iter()
        .filter(|v| !v.trim().is_empty())
        .map(|v| match v.split_once("==") {
            Some((id, _)) => id.trim().parse().unwrap_or(-1),
            None => 0,
        })
        .collect()
}

/// Where `url` listens: `udp:` and `udp6:` with the port after the last
/// colon (22222 when there is none), anything else a UNIX socket path.
fn target_of(url: &str) -> Result<Target, String> {
    let lower = url.to_ascii_lowercase();
    let (v6, rest) = if lower.starts_with("udp6:") {
        (true, &url[5..])
    } else if lower.starts_with("udp:") {
        (false, &url[4..])
    } else if lower.starts_with("unix:") {
        return Ok(Target::Unix(url[5..].to_string()));
    } else {
        return Ok(Target::Unix(url.to_string()));
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad port in rtpproxy_sock '{url}'"))?,
        ),
        Some((h, _)) => (h, 22222),
        None => (rest, 22222),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("rtpproxy_sock '{url}': {e}"))?
        .find(|a| a.is_ipv6() == v6)
        .map(Target::Udp)
        .ok_or_else(|| {
            format!(
                "rtpproxy_sock '{url}': no {} address",
                if v6 { "IPv6" } else { "IPv4" }
            )
        })
}

/// What went wrong with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No answer in time, or the socket failed: the instance is now
    /// disabled.
    Down(String),
}

static SEQ: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static SOCKS: RefCell<HashMap<SocketAddr, UdpSocket>> = RefCell::new(HashMap::new());
}

fn udp_socket(to: SocketAddr) -> std::io::Result<UdpSocket> {
    SOCKS.with(|m| {
        let mut m = m.borrow_mut();
        if let Some(s) = m.get(&to) {
            return s.try_clone();
        }
        let bind = if to.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
        let s = UdpSocket::bind(bind)?;
        s.connect(to)?;
        let c = s.try_clone()?;
        m.insert(to, s);
        Ok(c)
    })
}

/// Sends `cmd` to `node` and returns its answer (after the cookie). A
/// failure disables the instance for `disable_tout` seconds.
pub fn send(node: &Node, cmd: &str, t: Timing) -> Result<String, SendError> {
    let r = match &node.target {
        Target::Udp(a) => send_udp(*a, cmd, t),
        Target::Unix(p) => send_unix(p, cmd, t),
    };
    r.map_err(|e| {
        sr_sdk::lm_err!(
            "rtpproxy: proxy {} does not respond ({e}), disable it",
            node.url
        );
        node.set_state(|s| {
            s.disabled = true;
            s.recheck = ticks().saturating_add_signed(t.disable_tout);
        });
        SendError::Down(e)
    })
}

fn send_udp(to: SocketAddr, cmd: &str, t: Timing) -> Result<String, String> {
    let sock = udp_socket(to).map_err(|e| e.to_string())?;
    // Answers to earlier commands that came too late.
    let mut buf = [0u8; 2048];
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    while sock.recv(&mut buf).is_ok() {}
    sock.set_nonblocking(false).map_err(|e| e.to_string())?;
    let cookie = format!(
        "{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let out = format!("{cookie} {cmd}");
    let wait = Duration::from_secs(t.tout.clamp(1, 3600));
    for _ in 0..t.retr {
        sock.send(out.as_bytes()).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + wait;
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
                    if let Some(rest) = b.strip_prefix(cookie.as_bytes()) {
                        let rest = if rest.is_empty() { rest } else { &rest[1..] };
                        return Ok(String::from_utf8_lossy(rest).into_owned());
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Err("timeout waiting reply from a RTP proxy".into())
}

fn send_unix(path: &str, cmd: &str, t: Timing) -> Result<String, String> {
    let mut s = UnixStream::connect(path).map_err(|e| format!("{path}: {e}"))?;
    let wait = Some(Duration::from_secs(t.tout.clamp(1, 3600)));
    s.set_read_timeout(wait).map_err(|e| e.to_string())?;
    s.set_write_timeout(wait).map_err(|e| e.to_string())?;
    s.write_all(cmd.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 255];
    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Tests an instance (`V`, then the capabilities) and records the result;
/// whether it may be used.
pub fn test(node: &Node, t: Timing, forced: bool) -> bool {
    let st = node.state();
    if st.recheck == FOREVER {
        return false;
    }
    let due = st.disabled && st.recheck <= ticks();
    if !(forced || due) {
        return !st.disabled;
    }
    let ok = (|| {
        let v = send(node, "V", t).ok()?;
        if crate::command::atoi(&v) != 20040107 {
            sr_sdk::lm_warn!("rtpproxy: {} answers V with '{}'", node.url, v.trim());
            return None;
        }
        let f = send(node, "VF 20050322", t).ok()?;
        if f.starts_with('E') || crate::command::atoi(&f) != 1 {
            sr_sdk::lm_warn!(
                "rtpproxy: {} doesn't support required protocol version",
                node.url
            );
            return None;
        }
        let cap = |v: &str| {
            send(node, &format!("VF {v}"), t)
                .map(|a| !a.starts_with('E') && crate::command::atoi(&a) == 1)
                .unwrap_or(false)
        };
        Some((cap("20071116"), cap("20081102")))
    })();
    match ok {
        Some((rep, ptl)) => {
            sr_sdk::lm_info!(
                "rtpproxy: rtp proxy {} found, support for it enabled",
                node.url
            );
            node.set_state(|s| {
                *s = State {
                    disabled: false,
                    recheck: 0,
                    repacketize: rep,
                    payload_list: ptl,
                }
            });
            true
        }
        None => {
            sr_sdk::lm_warn!(
                "rtpproxy: support for RTP proxy {} has been disabled",
                node.url
            );
            node.set_state(|s| {
                s.disabled = true;
                if t.disable_tout >= 0 && s.recheck != FOREVER {
                    s.recheck = ticks().saturating_add_signed(t.disable_tout);
                }
            });
            false
        }
    }
}

/// The sum of the Call-ID's bytes as C's signed `char`s, kept to 8 bits.
pub fn call_id_hash(call_id: &[u8]) -> u32 {
    let sum = call_id
        .iter()
        .fold(0i32, |acc, &b| acc.wrapping_add(i32::from(b as i8)));
    (sum & 0xff) as u32
}

/// The instance of `set` for a call, as Kamailio picks it: the Call-ID's
/// byte sum over the weights of the enabled instances, retesting those
/// whose time has come, and all of them once when none is enabled.
pub fn select(
    set: &[std::sync::Arc<Node>],
    call_id: &[u8],
    t: Timing,
) -> Option<std::sync::Arc<Node>> {
    if set.len() == 1 {
        let n = &set[0];
        return test(n, t, false).then(|| n.clone());
    }
    let sum = call_id_hash(call_id);
    let mut forced = false;
    loop {
        let mut weight_sum = 0u64;
        for n in set {
            let st = n.state();
            let up = if st.disabled && st.recheck <= ticks() {
                test(n, t, false)
            } else {
                !st.disabled
            };
            if up {
                weight_sum += u64::from(n.weight);
            }
        }
        if weight_sum == 0 {
            if forced {
                return None;
            }
            forced = true;
            for n in set {
                test(n, t, true);
            }
            continue;
        }
        let mut cut = u64::from(sum) % weight_sum;
        for n in set {
            if n.state().disabled {
                continue;
            }
            if cut < u64::from(n.weight) {
                return Some(n.clone());
            }
            cut -= u64::from(n.weight);
        }
        return None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_read_as_kamailio_reads_them() {
        let mut s = Sets::default();
        add_sock(
            &mut s,
            "udp:127.0.0.1:7722 udp:127.0.0.1=3 unix:/run/rtpp.sock",
        )
        .unwrap();
        add_sock(&mut s, " 2 == udp:127.0.0.1:9000=0").unwrap();
        add_sock(&mut s, "udp:127.0.0.1:7723").unwrap();
        add_sock(&mut s, "").unwrap();
        assert_eq!(s.sets.len(), 2);
        let d = &s.sets[0].1;
        assert_eq!(d.len(), 4, "a repeated set id adds to the set");
        assert_eq!(d[0].target, Target::Udp("127.0.0.1:7722".parse().unwrap()));
        assert_eq!(d[1].target, Target::Udp("127.0.0.1:22222".parse().unwrap()));
        assert_eq!(d[1].weight, 3);
        assert_eq!(d[2].target, Target::Unix("/run/rtpp.sock".into()));
        assert_eq!(d[3].index, 4, "indexes run over all sets");
        assert_eq!(s.sets[1].0, 2);
        assert_eq!(s.sets[1].1[0].weight, 0);
        assert_eq!(s.sets[1].1[0].url, "udp:127.0.0.1:9000");
        assert!(add_sock(&mut s, "x == udp:1.2.3.4").is_err());
        assert!(add_sock(&mut s, "3 ==  ").is_err());
        let mut s = Sets::default();
        add_sock(&mut s, "udp6:::1:7000 /tmp/bare").unwrap();
        assert_eq!(
            s.sets[0].1[0].target,
            Target::Udp("[::1]:7000".parse().unwrap())
        );
        assert_eq!(s.sets[0].1[1].target, Target::Unix("/tmp/bare".into()));
    }

    #[test]
    fn the_call_id_hash_sums_signed_bytes() {
        assert_eq!(call_id_hash(b"a"), 97);
        assert_eq!(call_id_hash(b"abc"), (97 + 98 + 99) & 0xff);
        // 0xff is -1 as a signed char.
        assert_eq!(call_id_hash(&[0xff, 2]), 1);
    }

    #[test]
    fn a_silent_proxy_is_disabled_and_skipped() {
        // A UDP port nobody answers on.
        let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut s = Sets::default();
        add_sock(&mut s, &format!("udp:{}", quiet.local_addr().unwrap())).unwrap();
        let t = Timing {
            retr: 1,
            tout: 1,
            disable_tout: 60,
        };
        let n = s.sets[0].1[0].clone();
        assert!(send(&n, "V", t).is_err());
        assert!(n.state().disabled);
        assert!(n.state().recheck >= 59);
        // Disabled and not yet due: not tested, not chosen.
        assert!(select(&s.sets[0].1, b"x", t).is_none());
    }
}
