//! ipops' DNS part: whether a host name resolves to an address
//! (`dns_sys_match_ip`, `dns_int_match_ip`) and a host's addresses kept
//! in a named container (`dns_query`, read with `$dns(id=>key)`). Names
//! resolve through the system's resolver (`getaddrinfo`: /etc/hosts,
//! then DNS) — also for `dns_int_match_ip`, where Kamailio asks its own
//! DNS resolver (which does not read /etc/hosts). Containers are per
//! worker, as Kamailio's are per process.

use sr_sdk::prelude::*;
use sr_sdk::PvName;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};

thread_local! {
    static RESULTS: RefCell<HashMap<String, Vec<IpAddr>>> = RefCell::new(HashMap::new());
}

/// The addresses `host` resolves to, in the resolver's order, each once;
/// an address given as text is itself.
pub fn resolve(host: &str) -> Vec<IpAddr> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return vec![ip];
    }
    let mut out: Vec<IpAddr> = Vec::new();
    if let Ok(addrs) = (h, 0).to_socket_addrs() {
        for a in addrs {
            if !out.contains(&a.ip()) {
                out.push(a.ip());
            }
        }
    }
    out
}

/// `dns_sys_match_ip` / `dns_int_match_ip`: 1 when `host` resolves to
/// `ip`, -1 when it resolves to other addresses, -3 when `ip` is no
/// address, -4 when `host` does not resolve (Kamailio's codes).
pub fn match_ip(host: &str, ip: &str) -> i32 {
    let Ok(want) = ip
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        lm_err!("ipops: invalid ip address [{ip}]");
        return -3;
    };
    let addrs = resolve(host);
    if addrs.is_empty() {
        return -4;
    }
    if addrs.contains(&want) {
        1
    } else {
        -1
    }
}

/// `dns_query(host, id)`: the addresses into container `id`; 1 when any
/// were found, -4 when `host` does not resolve (the container is then
/// dropped: `$dns` reads `$null`).
pub fn query(host: &str, id: &str) -> i32 {
    let addrs = resolve(host);
    RESULTS.with(|r| {
        let mut r = r.borrow_mut();
        if addrs.is_empty() {
            r.remove(id);
        } else {
            r.insert(id.to_string(), addrs.clone());
        }
    });
    if addrs.is_empty() {
        -4
    } else {
        1
    }
}

/// `$dns(id=>key)`: `count`, `ipv4` / `ipv6` (1 when one of that family
/// was found), `addr[i]`, `type[i]` (4 or 6).
pub fn get(ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let inner = name.inner.as_deref().unwrap_or("");
    let Some((id, key)) = inner.split_once("=>") else {
        return Value::Null;
    };
    let (id, key) = (id.trim(), key.trim());
    let (field, index) = match key.split_once('[') {
        Some((f, rest)) => {
            let idx = rest.trim_end_matches(']').trim();
            let i = if idx.starts_with('$') {
                match ctx.core.pv_get(ctx.msg, idx) {
                    Some(Value::Int(i)) => i,
                    Some(Value::Str(s)) => s.trim().parse().unwrap_or(-1),
                    _ => -1,
                }
            } else {
                idx.parse().unwrap_or(-1)
            };
            (f.trim(), Some(i))
        }
        None => (key, None),
    };
    RESULTS.with(|r| {
        let r = r.borrow();
        let Some(addrs) = r.get(id) else {
            return Value::Null;
        };
        let at = |i: Option<i64>| {
            let i = i.unwrap_or(0);
            if i < 0 {
                None
            } else {
                addrs.get(i as usize)
            }
        };
        match field {
            "count" => Value::Int(addrs.len() as i64),
            "ipv4" => Value::Int(i64::from(addrs.iter().any(IpAddr::is_ipv4))),
            "ipv6" => Value::Int(i64::from(addrs.iter().any(IpAddr::is_ipv6))),
            "addr" => at(index).map_or(Value::Null, |a| Value::Str(a.to_string().into())),
            "type" => {
                at(index).map_or(Value::Null, |a| Value::Int(if a.is_ipv4() { 4 } else { 6 }))
            }
            _ => Value::Null,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_resolve() {
        assert_eq!(
            resolve("127.0.0.1"),
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(resolve("[::1]"), vec!["::1".parse::<IpAddr>().unwrap()]);
        assert!(resolve("localhost").contains(&"127.0.0.1".parse::<IpAddr>().unwrap()));
        assert_eq!(match_ip("localhost", "127.0.0.1"), 1);
        assert_eq!(match_ip("localhost", "10.9.9.9"), -1);
        assert_eq!(match_ip("localhost", "nope"), -3);
        assert_eq!(match_ip("no-such-host.invalid", "10.9.9.9"), -4);
        assert!(resolve("no-such-host.invalid").is_empty());
    }
}
