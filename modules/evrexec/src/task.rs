//! The `exec` parameter: `name=evrexec:NAME;wait=MICROSECONDS;workers=N`
//! or `name=...;sockaddr=udp:IP:PORT`, read as Kamailio reads it.

use std::net::{SocketAddr, ToSocketAddrs};

/// One `exec` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The event route's name (`evrexec:...`).
    pub name: String,
    /// Microseconds to wait before running it.
    pub wait_us: u64,
    /// How many threads run it (1 with a socket).
    pub workers: u32,
    /// The UDP socket whose datagrams each run the route (`udp:IP:PORT`).
    pub sockaddr: Option<String>,
}

/// Reads an `exec` value. As Kamailio's: attributes separated by `;` (a
/// trailing one allowed), names in any case, the first `wait` and
/// `workers` kept, any other attribute refused.
pub fn parse(text: &str) -> Result<Task, String> {
    let text = text.strip_suffix(';').unwrap_or(text);
    let mut name = None;
    let mut wait: Option<u64> = None;
    let mut workers: Option<u32> = None;
    let mut sockaddr = None;
    for part in text.split(';') {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (part.trim(), ""),
        };
        let num = |what: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n <= u64::from(u32::MAX))
                .ok_or_else(|| format!("evrexec: invalid {what}: {v}"))
        };
        if k.eq_ignore_ascii_case("name") {
            name = Some(v.to_string());
        } else if k.eq_ignore_ascii_case("wait") {
            if wait.is_none_or(|w| w == 0) {
                wait = Some(num("wait")?);
            }
        } else if k.eq_ignore_ascii_case("workers") {
            if workers.is_none_or(|w| w == 0) {
                workers = Some(num("workers")? as u32);
            }
        } else if k.eq_ignore_ascii_case("sockaddr") {
            sockaddr = Some(v.to_string());
        } else {
            return Err(format!("evrexec: invalid attribute: {k}={v}"));
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or("evrexec: missing or invalid name attribute")?;
    let sockaddr = sockaddr.filter(|s| !s.is_empty());
    if let Some(s) = &sockaddr {
        if s.len() < 6 {
            return Err(format!("evrexec: invalid sockaddr: {s}"));
        }
        if !s.starts_with("udp:") {
            return Err(format!("evrexec: unsupported sockaddr: {s}"));
        }
    }
    let workers = match (&sockaddr, workers.unwrap_or(0)) {
        (Some(_), _) => 1,
        (None, 0) => 1,
        (None, n) => n,
    };
    Ok(Task {
        name,
        wait_us: wait.unwrap_or(0),
        workers,
        sockaddr,
    })
}

/// The address of a `udp:HOST:PORT` socket (`udp:[v6]:PORT` too); the
/// host is resolved. A port of 0 is refused, as Kamailio refuses it.
pub fn socket_addr(spec: &str) -> Result<SocketAddr, String> {
    let rest = spec.strip_prefix("udp:").unwrap_or(spec);
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("evrexec: invalid local socket address: {spec}"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("evrexec: invalid local socket address: {spec}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("evrexec: failed to resolve local socket address: {spec}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_read_as_kamailio_reads_them() {
        let t = parse("name=evrexec:one;wait=2000;workers=3;").unwrap();
        assert_eq!(
            t,
            Task {
                name: "evrexec:one".into(),
                wait_us: 2000,
                workers: 3,
                sockaddr: None
            }
        );
        let t = parse("NAME=evrexec:two;Workers=0").unwrap();
        assert_eq!(t.workers, 1);
        let t = parse("name=evrexec:s;sockaddr=udp:127.0.0.1:5999;workers=4").unwrap();
        assert_eq!(t.workers, 1);
        assert_eq!(t.sockaddr.as_deref(), Some("udp:127.0.0.1:5999"));
        // The first wait is kept.
        assert_eq!(parse("name=a;wait=5;wait=9").unwrap().wait_us, 5);
        assert!(parse("wait=1").unwrap_err().contains("missing"));
        assert!(parse("name=a;colour=red")
            .unwrap_err()
            .contains("invalid attribute"));
        assert!(parse("name=a;wait=x").unwrap_err().contains("invalid wait"));
        assert!(parse("name=a;sockaddr=tcp:1.2.3.4:5")
            .unwrap_err()
            .contains("unsupported"));
        assert!(parse("name=a;sockaddr=udp:")
            .unwrap_err()
            .contains("invalid"));
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(
            socket_addr("udp:127.0.0.1:5999").unwrap(),
            "127.0.0.1:5999".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            socket_addr("udp:[::1]:5999").unwrap(),
            "[::1]:5999".parse::<SocketAddr>().unwrap()
        );
        assert!(socket_addr("udp:127.0.0.1:0").is_err());
        assert!(socket_addr("udp:127.0.0.1").is_err());
    }
}
