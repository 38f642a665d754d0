//! `myself`: the addresses and names this server answers for (listen
//! sockets, advertised addresses and `alias=` entries).

use std::net::IpAddr;

/// One name or address that is "us", with an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// Host name or IP text (lower-case, IPv6 without brackets).
    pub host: String,
    /// The address, when the host is one (parsed once, when added).
    pub ip: Option<IpAddr>,
    /// Port, `None` for any.
    pub port: Option<u16>,
}

/// The set of local names and addresses.
#[derive(Debug, Clone, Default)]
pub struct Myself {
    entries: Vec<Alias>,
}

fn norm(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

impl Myself {
    /// Adds a name or address.
    pub fn add(&mut self, host: &str, port: Option<u16>) {
        let host = norm(host);
        let a = Alias {
            ip: host.parse().ok(),
            host,
            port,
        };
        if !self.entries.contains(&a) {
            self.entries.push(a);
        }
    }

    /// Whether `host` (and `port`, when given) is this server. A missing
    /// port matches any of our ports, as in Kamailio's `check_self` with
    /// port 0.
    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let h = host.trim_start_matches('[').trim_end_matches(']');
        let ip = h.parse::<IpAddr>().ok();
        self.entries.iter().any(|a| {
            let host_ok = match (ip, a.ip) {
                (Some(x), Some(y)) => x == y,
                (None, None) => a.host.eq_ignore_ascii_case(h),
                _ => false,
            };
            host_ok
                && match (port, a.port) {
                    (Some(p), Some(q)) => p == q,
                    _ => true,
                }
        })
    }

    /// All entries.
    pub fn entries(&self) -> &[Alias] {
        &self.entries
    }
}

/// Whether `ip` is inside `net/mask`.
pub fn in_net(ip: IpAddr, net: IpAddr, mask: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = if mask == 0 {
                0
            } else {
                u32::MAX << (32 - mask.min(32))
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = if mask == 0 {
                0
            } else {
                u128::MAX << (128 - mask.min(128))
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let mut m = Myself::default();
        m.add("127.0.0.1", Some(5060));
        m.add("Example.COM", None);
        m.add("[::1]", Some(5070));
        assert!(m.matches("127.0.0.1", None));
        assert!(m.matches("127.0.0.1", Some(5060)));
        assert!(!m.matches("127.0.0.1", Some(5061)));
        assert!(m.matches("example.com", Some(9)));
        assert!(m.matches("[0:0::1]", Some(5070)));
        assert!(!m.matches("10.0.0.1", None));
        assert!(in_net(
            "10.1.2.3".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert!(!in_net(
            "11.1.2.3".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert!(in_net("::1".parse().unwrap(), "::".parse().unwrap(), 0));
    }
}
