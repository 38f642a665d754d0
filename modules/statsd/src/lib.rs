//! Module `statsd` (Kamailio's): metrics sent to a statsd server (or
//! InfluxDB's statsd listener) over UDP, one datagram each, in statsd's
//! line format: `key:1|c` (`statsd_incr`), `key:-1|c` (`statsd_decr`),
//! `key:value|g` (`statsd_gauge`), `key:value|h` (`statsd_histogram`),
//! `key:value|s` (`statsd_set`), and `key:ms|ms` for the milliseconds
//! between `statsd_start(key)` and `statsd_stop(key)` (kept in the AVP
//! named `key` meanwhile, as Kamailio keeps it). Each line ends with a
//! newline, as Kamailio's.
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
use std::net::{ToSocketAddrs, UdpSocket};
use std::sync::{Arc, OnceLock, RwLock};

/// The module's state.
struct Statsd {
    ip: Arc<RwLock<String>>,
    port: Arc<RwLock<String>>,
    sock: OnceLock<UdpSocket>,
}

impl Statsd {
    /// Opens the socket to the server (Kamailio's `connect()` on a UDP
    /// socket: the server is not asked anything).
    fn init(&self) -> Result<(), String> {
        let (ip, port) = (params::get_str(&self.ip), params::get_str(&self.port));
        let addr = (
            ip.as_str(),
            port.parse::<u16>()
                .map_err(|_| format!("statsd: bad port '{port}'"))?,
        )
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                format!("statsd: could not initiate server information ({ip}:{port})")
            })?;
        let local = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let s = UdpSocket::bind(local)
            .and_then(|s| s.connect(addr).map(|()| s))
            .map_err(|e| format!("statsd: could not initiate a connect to statsd: {e}"))?;
        let _ = self.sock.set(s);
        Ok(())
    }

    /// Sends one line (with its newline, as Kamailio writes it): 1, also
    /// when the send fails (it is logged), as Kamailio; 0 without a socket.
    fn send(&self, mut line: String) -> i32 {
        let Some(s) = self.sock.get() else {
            return 0;
        };
        line.push('\n');
        if let Err(e) = s.send(line.as_bytes()) {
            lm_err!("statsd: could not send the correct info to statsd ({e})");
        }
        1
    }
}

/// C's `strtol(value, &end, 0)` that must read all of `value` (base 10,
/// `0x` hex, `0` octal; leading blanks and a sign), as statsd_set checks
/// its value; `None` when characters are left. Cut to C's `int`.
fn strtol_all(v: &str) -> Option<i32> {
    let (n, used) = sr_sdk::text::strtol(v, 0);
    // (No number: strtol's end stays at the start, so only "" passes.)
    (used == v.len()).then_some(n as i32)
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let m = Arc::new(Statsd {
        ip: params::str_cell("127.0.0.1"),
        port: params::str_cell("8125"),
        sock: OnceLock::new(),
    });
    let init = m.clone();
    let mut def = ModuleDef::new("statsd")
        .param("ip", ParamKind::Str, params::string(&m.ip))
        .param("port", ParamKind::Str, params::string(&m.port))
        .on_init(move |_| init.init());
    for (name, kind) in [("statsd_gauge", "g"), ("statsd_histogram", "h")] {
        let s = m.clone();
        def = def.cmd(name, 2, RouteType::ANY, None, move |ctx, p| {
            let k = p[0].str(ctx).into_owned();
            let v = p[1].str(ctx).into_owned();
            s.send(format!("{k}:{v}|{kind}"))
        });
    }
    let s = m.clone();
    def = def.cmd("statsd_set", 2, RouteType::ANY, None, move |ctx, p| {
        let k = p[0].str(ctx).into_owned();
        let v = p[1].str(ctx).into_owned();
        match strtol_all(&v) {
            Some(n) => s.send(format!("{k}:{n}|s")),
            None => {
                // (Kamailio's false: 0, which ends the script.)
                lm_err!("statsd_count could not  use the provide value({v})");
                0
            }
        }
    });
    for (name, delta) in [("statsd_incr", 1), ("statsd_decr", -1)] {
        let s = m.clone();
        def = def.cmd(name, 1, RouteType::ANY, None, move |ctx, p| {
            let k = p[0].str(ctx).into_owned();
            s.send(format!("{k}:{delta}|c"))
        });
    }
    def = def.cmd("statsd_start", 1, RouteType::ANY, None, |ctx, p| {
        let k = p[0].str(ctx).into_owned();
        ctx.msg
            .avps
            .push(&k, Value::Str(now_ms().to_string().into()));
        1
    });
    let s = m;
    def.cmd("statsd_stop", 1, RouteType::ANY, None, move |ctx, p| {
        let k = p[0].str(ctx).into_owned();
        let Some(v) = ctx.msg.avps.get(&k, 0).map(|v| v.as_str().into_owned()) else {
            // (Kamailio 5.6.3 reads an unset value here and may send a
            // timing made of it; siprouter sends nothing.)
            lm_err!("Statsd: statsd_stop not valid key({k})");
            return 1;
        };
        let Ok(start) = v.trim().parse::<i64>() else {
            return 0;
        };
        ctx.msg.avps.remove_newest(&k);
        s.send(format!("{k}:{}|ms", now_ms().saturating_sub(start) as i32))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_strtol() {
        assert_eq!(strtol_all("5"), Some(5));
        assert_eq!(strtol_all("-3"), Some(-3));
        assert_eq!(strtol_all("0x10"), Some(16));
        assert_eq!(strtol_all("010"), Some(8));
        assert_eq!(strtol_all("0"), Some(0));
        assert_eq!(strtol_all("12a"), None);
        assert_eq!(strtol_all("a"), None);
        assert_eq!(strtol_all(""), Some(0));
        assert_eq!(strtol_all(" +7"), Some(7));
        assert_eq!(strtol_all("0x"), None);
        assert_eq!(strtol_all("09"), None);
    }
}
