//! More of Kamailio's pv module: the destination URI's and the original
//! Request-URI's parts (`$dd`, `$dp`, `$dP`, `$od`, `$op`, `$oP`, `$oU`),
//! the next hop (`$nh(key)`), the receiving socket and the source as
//! URIs (`$Ru`, `$Rut`, `$sut`), header field lists split at commas
//! (`$hfl`, `$hflc`), the top Vias (`$via0`, `$via1`, `$viaZ`), the
//! method's id (`$rmid`), Contact expiry bounds (`$expires`), constants
//! (`$K`), the host's names (`$HN`) and times (`$TF`, `$Tb`).

use sr_sdk::prelude::*;
use sr_sdk::sip_msg::Uri;
use sr_sdk::PvName;
use std::sync::OnceLock;

/// The classes this file serves.
pub const NAMES: &[&str] = &[
    "dd", "dp", "dP", "od", "op", "oP", "oU", "nh", "Ru", "Rut", "sut", "hfl", "hflc", "via0",
    "via1", "viaZ", "rmid", "expires", "K", "HN", "TF", "Tb",
];

fn s(v: impl Into<String>) -> Value<'static> {
    Value::Str(v.into().into())
}

/// A URI's part as Kamailio's `$dd`/`$dp`/`$dP` family reads it: the
/// port 5060 when none is written (also for `sips`, as Kamailio), the
/// transport as written, `UDP` when none is given.
fn uri_part(uri: &Uri<'_>, key: &str) -> Value<'static> {
    match key {
        "u" => s(uri.raw),
        "U" => uri.user.map_or(Value::Null, s),
        "d" => s(uri.host_str),
        "p" => Value::Int(i64::from(uri.port.unwrap_or(5060))),
        "P" => match uri.param("transport") {
            Some(Some(t)) => s(t),
            _ => s("UDP"),
        },
        _ => Value::Null,
    }
}

fn text_uri_part(text: Option<&str>, key: &str) -> Value<'static> {
    match text.and_then(|t| Uri::parse(t).ok()) {
        Some(u) => uri_part(&u, key),
        None => Value::Null,
    }
}

/// The headers whose lines may hold several values that `$hfl` splits.
const SPLIT: &[&str] = &["Via", "v", "Route", "Record-Route", "Contact", "m"];

/// The values of header `name`, every header of that name in order; for
/// [`SPLIT`] headers each line split at commas (outside quotes and angle
/// brackets).
fn field_list(ctx: &Ctx<'_>, name: &str) -> Vec<String> {
    let split = SPLIT.iter().any(|h| h.eq_ignore_ascii_case(name));
    let mut out = Vec::new();
    for h in ctx.msg.msg().headers() {
        if !h.name_str.eq_ignore_ascii_case(name) {
            continue;
        }
        let v = h.value;
        if !split {
            out.push(v.trim().to_string());
            continue;
        }
        let (mut quoted, mut angle, mut start) = (false, false, 0);
        for (i, c) in v.char_indices() {
            match c {
                '"' => quoted = !quoted,
                '<' if !quoted => angle = true,
                '>' if !quoted => angle = false,
                ',' if !quoted && !angle => {
                    out.push(v[start..i].trim().to_string());
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(v[start..].trim().to_string());
    }
    out
}

/// Element `index` (`None` the first; a negative index gives null, as
/// in Kamailio).
fn pick(list: &[String], index: Option<i64>) -> Value<'static> {
    let i = match index {
        None => 0,
        Some(i) if i >= 0 => i as usize,
        Some(_) => return Value::Null,
    };
    list.get(i).map_or(Value::Null, |v| s(v.clone()))
}

fn via_attr(ctx: &Ctx<'_>, which: &str, key: &str) -> Value<'static> {
    let vias: Vec<_> = ctx.msg.msg().vias().filter_map(Result::ok).collect();
    let via = match which {
        "via0" => vias.first(),
        "via1" => vias.get(1),
        _ => vias.last(),
    };
    let Some(v) = via else {
        return Value::Null;
    };
    let param = |n: &str| {
        v.params.split(';').map(str::trim).find_map(|p| {
            let (k, val) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(n)
                .then(|| val.trim().to_string())
        })
    };
    match key {
        "host" => s(v.host_str),
        "port" => Value::Int(i64::from(v.port.unwrap_or(0))),
        "proto" => s(v.transport),
        "protoid" => Value::Int(match v.transport.to_ascii_uppercase().as_str() {
            "UDP" => 1,
            "TCP" => 2,
            "TLS" => 3,
            "SCTP" => 4,
            "WS" => 5,
            "WSS" => 6,
            _ => 0,
        }),
        "branch" | "received" | "rport" | "i" | "alias" => param(key).map_or(Value::Null, s),
        _ => Value::Null,
    }
}

/// Kamailio's method id of `m` (`METHOD_OTHER` for another).
fn method_id(m: &str) -> i64 {
    i64::from(sr_sdk::msg::method_id(m))
}

/// The least and greatest expiry of the Contacts (their `expires`
/// parameter, else the Expires header).
fn expires(ctx: &Ctx<'_>, key: &str) -> Value<'static> {
    let msg = ctx.msg.msg();
    let header: Option<i64> = msg
        .headers()
        .iter()
        .find(|h| h.name_str.eq_ignore_ascii_case("Expires"))
        .and_then(|h| h.value.trim().parse().ok());
    let mut all: Vec<i64> = Vec::new();
    for c in msg.contacts().flatten() {
        if let sr_sdk::sip_msg::headers::ContactValue::Addr(na) = c {
            let own = na.params.split(';').map(str::trim).find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("expires")
                    .then(|| v.trim().parse::<i64>().ok())
                    .flatten()
            });
            if let Some(e) = own.or(header) {
                all.push(e);
            }
        }
    }
    if all.is_empty() {
        if let Some(h) = header {
            all.push(h);
        }
    }
    let v = match key {
        "min" => all.iter().min(),
        "max" => all.iter().max(),
        _ => None,
    };
    v.map_or(Value::Null, |x| Value::Int(*x))
}

fn hostname() -> &'static (String, String, String) {
    static H: OnceLock<(String, String, String)> = OnceLock::new();
    H.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_string();
        let fqdn = std::process::Command::new("hostname")
            .arg("-f")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| name.clone());
        let short = fqdn.split('.').next().unwrap_or(&name).to_string();
        let domain = fqdn
            .split_once('.')
            .map_or(String::new(), |(_, d)| d.to_string());
        (short, domain, fqdn)
    })
}

/// The start time (`$Tb`), fixed the first time it is asked (the pv
/// module asks at start).
pub fn start_time() -> i64 {
    static T: OnceLock<i64> = OnceLock::new();
    *T.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    })
}

/// The receiving socket or the source as a SIP URI (`with_transport`
/// adds `;transport=`).
fn addr_uri(addr: std::net::SocketAddr, proto: &str, with_transport: bool) -> Value<'static> {
    let host = match addr.ip() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut u = format!("sip:{host}:{}", addr.port());
    if with_transport {
        u.push_str(";transport=");
        u.push_str(proto);
    }
    s(u)
}

/// Reads one of [`NAMES`].
pub fn get(name: &str, ctx: &mut Ctx<'_>, n: &PvName) -> Value<'static> {
    let key = n.inner.as_deref().unwrap_or("").trim();
    match name {
        "dd" => text_uri_part(ctx.msg.dst_uri.as_deref(), "d"),
        "dp" => text_uri_part(ctx.msg.dst_uri.as_deref(), "p"),
        "dP" => text_uri_part(ctx.msg.dst_uri.as_deref(), "P"),
        "od" | "op" | "oP" | "oU" => {
            let k = &name[1..];
            match ctx.msg.msg().request_uri() {
                Some(u) => uri_part(u, if k == "d" { "d" } else { k }),
                None => Value::Null,
            }
        }
        "nh" => {
            let target = ctx
                .msg
                .dst_uri
                .clone()
                .unwrap_or_else(|| ctx.msg.ruri().to_string());
            text_uri_part(Some(&target), key)
        }
        "Ru" | "Rut" => {
            let proto = ctx.msg.rcv.proto.as_str().to_ascii_lowercase();
            addr_uri(ctx.msg.rcv.dst, &proto, name == "Rut")
        }
        "sut" => {
            let proto = ctx.msg.rcv.proto.as_str().to_ascii_lowercase();
            addr_uri(ctx.msg.rcv.src, &proto, true)
        }
        "hfl" => pick(&field_list(ctx, key), n.index),
        "hflc" => Value::Int(field_list(ctx, key).len() as i64),
        "via0" | "via1" | "viaZ" => via_attr(ctx, name, key),
        "rmid" => match ctx.msg.msg().txn_method() {
            Ok(m) => Value::Int(method_id(m.as_str())),
            Err(_) => Value::Null,
        },
        "expires" => expires(ctx, key),
        "K" => match key {
            "IPv4" => Value::Int(2),
            "IPv6" => Value::Int(10),
            "UDP" => Value::Int(1),
            "TCP" => Value::Int(2),
            "TLS" => Value::Int(3),
            "SCTP" => Value::Int(4),
            "WS" => Value::Int(5),
            "WSS" => Value::Int(6),
            _ => Value::Null,
        },
        "HN" => {
            let (short, domain, fqdn) = hostname();
            match key {
                "n" => s(short.clone()),
                "d" => s(domain.clone()),
                "f" => s(fqdn.clone()),
                "i" => std::net::ToSocketAddrs::to_socket_addrs(&(fqdn.as_str(), 0))
                    .ok()
                    .and_then(|mut a| a.next())
                    .map_or(Value::Null, |a| s(a.ip().to_string())),
                _ => Value::Null,
            }
        }
        "TF" => s(sr_sdk::localtime::strftime(
            "%a %b %e %H:%M:%S %Y",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            false,
        )
        .unwrap_or_default()),
        "Tb" => Value::Int(start_time()),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_ids_are_kamailios() {
        assert_eq!(method_id("INVITE"), 1);
        assert_eq!(method_id("OPTIONS"), 512);
        assert_eq!(method_id("FOO"), 524288);
        let list = vec!["a".to_string(), "b".to_string()];
        assert_eq!(pick(&list, Some(1)), s("b"));
        assert_eq!(pick(&list, Some(-1)), Value::Null);
        assert_eq!(pick(&list, None), s("a"));
    }
}
