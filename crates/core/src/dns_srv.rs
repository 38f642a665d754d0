//! DNS SRV lookups (RFC 2782) for RFC 3263 server location: a small UDP
//! client asking the resolvers of `/etc/resolv.conf` (or the one named by
//! the `SIPROUTER_DNS_SERVER` environment variable, `ip:port`), with the
//! answer parsed defensively (no panic on any packet).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Priority: lower is tried first.
    pub priority: u16,
    /// Weight among records of one priority.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host name.
    pub target: String,
    /// Time to live, seconds.
    pub ttl: u32,
}

/// The name servers to ask.
pub fn nameservers() -> Vec<SocketAddr> {
    if let Ok(s) = std::env::var("SIPROUTER_DNS_SERVER") {
        if let Ok(a) = s.parse() {
            return vec![a];
        }
    }
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Builds a query for `name` of record type `qtype` (33 = SRV).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    Some(q)
}

/// Reads a (possibly compressed) name at `pos`; returns it and the offset
/// after it in the original position.
fn read_name(p: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *p.get(pos)? as usize;
        if len == 0 {
            return Some((out, end.unwrap_or(pos + 1)));
        }
        if len & 0xc0 == 0xc0 {
            let off = ((len & 0x3f) << 8) | *p.get(pos + 1)? as usize;
            end.get_or_insert(pos + 2);
            jumps += 1;
            if jumps > 16 {
                return None;
            }
            pos = off;
            continue;
        }
        let label = p.get(pos + 1..pos + 1 + len)?;
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&String::from_utf8_lossy(label));
        pos += 1 + len;
    }
}

fn u16_at(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]))
}

fn u32_at(p: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *p.get(i)?,
        *p.get(i + 1)?,
        *p.get(i + 2)?,
        *p.get(i + 3)?,
    ]))
}

/// Parses the SRV answers of a response to query `id`.
pub fn parse_srv_answer(p: &[u8], id: u16) -> Option<Vec<Srv>> {
    if u16_at(p, 0)? != id || p.get(2)? & 0x80 == 0 {
        return None;
    }
    let qd = u16_at(p, 4)?;
    let an = u16_at(p, 6)?;
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(p, pos)?.1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        let (_, after) = read_name(p, pos)?;
        let rtype = u16_at(p, after)?;
        let ttl = u32_at(p, after + 4)?;
        let rdlen = u16_at(p, after + 8)? as usize;
        let rd = after + 10;
        if rtype == 33 && rdlen >= 7 {
            out.push(Srv {
                priority: u16_at(p, rd)?,
                weight: u16_at(p, rd + 2)?,
                port: u16_at(p, rd + 4)?,
                target: read_name(p, rd + 6)?.0,
                ttl,
            });
        }
        pos = rd + rdlen;
    }
    Some(out)
}

/// Asks the name servers for the SRV records of `name`, ordered by
/// priority, then weight (heaviest first). Empty when there are none or no
/// server answers.
pub fn lookup_srv(name: &str) -> Vec<Srv> {
    let id = (std::process::id() as u16) ^ (name.len() as u16).rotate_left(7) ^ 0x5a5a;
    let Some(q) = build_query(id, name, 33) else {
        return Vec::new();
    };
    for ns in nameservers() {
        let bind = if ns.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
        let Ok(s) = UdpSocket::bind(bind) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(1500)));
        if s.send_to(&q, ns).is_err() {
            continue;
        }
        let mut buf = [0u8; 1500];
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            if let Some(mut v) = parse_srv_answer(&buf[..n], id) {
                v.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
                return v;
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response with one SRV answer, name compressed to the question.
    pub fn srv_response(id: u16, name: &str, prio: u16, port: u16, target: &str) -> Vec<u8> {
        let q = build_query(id, name, 33).unwrap();
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
        let mut rd = Vec::new();
        rd.extend_from_slice(&prio.to_be_bytes());
        rd.extend_from_slice(&10u16.to_be_bytes());
        rd.extend_from_slice(&port.to_be_bytes());
        for l in target.split('.') {
            rd.push(l.len() as u8);
            rd.extend_from_slice(l.as_bytes());
        }
        rd.push(0);
        r.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        r.extend_from_slice(&rd);
        r
    }

    #[test]
    fn query_and_answer_round_trip() {
        let r = srv_response(7, "_sip._udp.example.com", 5, 5070, "sip1.example.com");
        let v = parse_srv_answer(&r, 7).unwrap();
        assert_eq!(
            v,
            vec![Srv {
                priority: 5,
                weight: 10,
                port: 5070,
                target: "sip1.example.com".into(),
                ttl: 60
            }]
        );
        assert!(parse_srv_answer(&r, 8).is_none());
        assert!(build_query(1, "a..b", 33).is_none());
    }

    #[test]
    fn garbage_never_panics() {
        let r = srv_response(7, "_sip._udp.example.com", 5, 5070, "t.example.com");
        for cut in 0..r.len() {
            let _ = parse_srv_answer(&r[..cut], 7);
        }
        let mut x = r.clone();
        for i in 12..x.len() {
            x[i] = 0xc0;
            let _ = parse_srv_answer(&x, 7);
        }
    }
}
