//! Message pseudo-variables of Kamailio's pv module that the core does
//! not give: `$rv`, `$rP`, `$bs`, `$mt`, `$mi`, `$ds`, `$su`,
//! `$fs`, `$RAi`, `$RAp`, the Diversion (`$di`, `$dip`, `$dir`),
//! Remote-Party-ID (`$re`), Refer-To (`$rt`), P-Asserted-Identity
//! (`$ai`) and P-Preferred-Identity (`$pu`, `$pU`, `$pd`, `$pn`) ones.

use sr_sdk::prelude::*;
use sr_sdk::sip_msg::headers::NameAddr;
use sr_sdk::sip_msg::Uri;
use sr_sdk::PvName;

fn s(v: impl Into<String>) -> Value<'static> {
    Value::Str(v.into().into())
}

/// The first value of header `name` (any case), as a name-address.
fn first_addr<'m>(ctx: &'m Ctx<'_>, name: &str) -> Option<NameAddr<'m>> {
    let m = ctx.msg.msg();
    let h = m
        .headers()
        .iter()
        .find(|h| h.name_str.eq_ignore_ascii_case(name))?;
    let v = h.value.trim();
    // Only the first of comma-separated values.
    let first = split_first(v);
    NameAddr::parse(first, "header").ok()
}

/// The first value of a comma-separated list (commas inside quotes and
/// angle brackets kept).
fn split_first(v: &str) -> &str {
    let (mut quoted, mut angle) = (false, false);
    for (i, c) in v.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => return v[..i].trim(),
            _ => {}
        }
    }
    v
}

/// A header's URI-based value: `part` is `uri`, `user`, `host`,
/// `display` or a parameter name (`param:NAME`).
fn addr_part(ctx: &Ctx<'_>, header: &str, part: &str) -> Value<'static> {
    let Some(na) = first_addr(ctx, header) else {
        return Value::Null;
    };
    match part {
        "uri" => s(na.uri_str),
        "user" => na.uri.user.map_or(Value::Null, s),
        "host" => s(na.uri.host_str),
        // As written, quotes kept (Kamailio).
        "display" => na.display.map_or(Value::Null, s),
        p => match p.strip_prefix("param:").and_then(|n| na.param(n)) {
            Some(Some(v)) => s(v),
            _ => Value::Null,
        },
    }
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Udp => "udp",
        Proto::Tcp => "tcp",
        Proto::Tls => "tls",
        Proto::Ws => "ws",
        Proto::Wss => "wss",
        _ => "sctp",
    }
}

/// One of this file's pseudo-variables by class name.
pub fn get(class: &str, ctx: &mut Ctx<'_>, _n: &PvName) -> Value<'static> {
    match class {
        "rv" => {
            let raw = ctx.msg.msg().raw();
            let line = raw
                .split(|&b| b == b'\r' || b == b'\n')
                .next()
                .unwrap_or(b"");
            let line = String::from_utf8_lossy(line);
            let v = if ctx.msg.is_request() {
                line.rsplit(' ').next().unwrap_or("")
            } else {
                line.split(' ').next().unwrap_or("")
            };
            s(v.to_string())
        }
        "rP" => {
            let ruri = ctx.msg.ruri().to_string();
            match Uri::parse(&ruri) {
                Ok(u) => match u.param("transport") {
                    Some(Some(t)) => s(t),
                    _ => s("UDP"),
                },
                Err(_) => Value::Null,
            }
        }
        "bs" => Value::Int(ctx.msg.body().len() as i64),
        "mt" => Value::Int(if ctx.msg.is_request() { 1 } else { 2 }),
        "mi" => Value::Int(ctx.msg.id as i64),
        "ds" => {
            if ctx.msg.branches.is_empty() {
                return Value::Null;
            }
            let parts: Vec<String> = ctx
                .msg
                .branches
                .iter()
                .map(|b| match b.q {
                    Some(q) => format!("<{}>;q={}", b.uri, q_text(q)),
                    None => format!("<{}>", b.uri),
                })
                .collect();
            s(parts.join(", "))
        }
        "su" => {
            let src = ctx.msg.rcv.src;
            let host = match src.ip() {
                std::net::IpAddr::V6(a) => format!("[{a}]"),
                a => a.to_string(),
            };
            let t = match ctx.msg.rcv.proto {
                Proto::Udp => String::new(),
                p => format!(";transport={}", proto_name(p)),
            };
            s(format!("sip:{host}:{}{t}", src.port()))
        }
        "fs" => ctx.msg.force_send_socket.clone().map_or(Value::Null, s),
        "RAi" | "RAp" => {
            let rcv = ctx.msg.rcv;
            let (ip, port) = ctx
                .core
                .received_on(&rcv)
                .unwrap_or_else(|| (rcv.dst.ip().to_string(), rcv.dst.port()));
            if class == "RAi" {
                s(ip)
            } else {
                Value::Int(i64::from(port))
            }
        }
        "di" => addr_part(ctx, "Diversion", "uri"),
        "dip" => addr_part(ctx, "Diversion", "param:privacy"),
        "dir" => addr_part(ctx, "Diversion", "param:reason"),
        "re" => addr_part(ctx, "Remote-Party-ID", "uri"),
        "rt" => addr_part(ctx, "Refer-To", "uri"),
        "ai" => addr_part(ctx, "P-Asserted-Identity", "uri"),
        "pu" => addr_part(ctx, "P-Preferred-Identity", "uri"),
        "pU" => addr_part(ctx, "P-Preferred-Identity", "user"),
        "pd" => addr_part(ctx, "P-Preferred-Identity", "host"),
        "pn" => addr_part(ctx, "P-Preferred-Identity", "display"),
        _ => Value::Null,
    }
}

/// A q-value (0..1000) as Kamailio prints it.
fn q_text(q: u16) -> String {
    match q {
        1000 => "1".into(),
        0 => "0".into(),
        q => {
            let t = format!("0.{q:03}");
            t.trim_end_matches('0').to_string()
        }
    }
}

/// The class names.
pub const NAMES: &[&str] = &[
    "rv", "rP", "bs", "mt", "mi", "ds", "su", "fs", "RAi", "RAp", "di", "dip", "dir", "re", "rt",
    "ai", "pu", "pU", "pd", "pn",
];
