//! BINRPC over TCP and UDP (the `ctl` module's `binrpc` sockets
//! `tcp:host:port` and `udp:host:port`, as `kamcmd -s tcp:...` uses):
//! on TCP a connection carries packets as on the UNIX socket; on UDP each
//! datagram is one request, answered to its sender.

use crate::binrpc;
use crate::unix::{binrpc_answer, binrpc_connection};
use crate::Limits;
use sr_sdk::prelude::*;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Weak};
use std::time::Duration;

pub use crate::accept::{stopping, POLL};

/// Kamailio's default port for `binrpc` network sockets.
pub const DEFAULT_PORT: u16 = 2049;

/// A `binrpc` network socket: `tcp:host[:port]` or `udp:host[:port]`
/// (TCP when `true`); `None` for anything else.
pub fn parse(s: &str) -> Option<Result<(bool, SocketAddr), String>> {
    let (tcp, rest) = if let Some(r) = s.strip_prefix("tcp:") {
        (true, r)
    } else if let Some(r) = s.strip_prefix("udp:") {
        (false, r)
    } else {
        return None;
    };
    let addr = rest
        .parse::<SocketAddr>()
        .or_else(|_| {
            let host = rest.trim_matches(['[', ']']);
            host.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        })
        .map_err(|_| format!("binrpc '{s}': give an IP address and port (tcp:127.0.0.1:2049)"));
    Some(addr.map(|a| (tcp, a)))
}

/// Accepts TCP connections until shutdown.
pub fn serve_tcp(l: TcpListener, core: Weak<dyn Core>, limits: Arc<Limits>) {
    if let Err(e) = l.set_nonblocking(true) {
        lm_err!("ctl: binrpc TCP: {e}");
        return;
    }
    let accept = || l.accept().map(|(s, _)| s);
    crate::accept::accept_loop(
        "binrpc TCP",
        "rpc-tcp-conn",
        accept,
        core,
        limits,
        tcp_connection,
    );
}

fn tcp_connection(s: TcpStream, core: &Weak<dyn Core>, limits: &Limits) {
    if s.set_nonblocking(false).is_err()
        || s.set_read_timeout(Some(POLL)).is_err()
        || s.set_write_timeout(Some(Duration::from_secs(10))).is_err()
    {
        return;
    }
    let Ok(w) = s.try_clone() else { return };
    binrpc_connection(s, w, core, limits);
}

/// Answers datagrams until shutdown.
pub fn serve_udp(s: UdpSocket, core: Weak<dyn Core>, _limits: Arc<Limits>) {
    if s.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut buf = vec![0u8; 65_535];
    while !stopping(&core) {
        let (n, from) = match s.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                lm_err!("ctl: binrpc UDP: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        };
        let pkt = &buf[..n];
        let answer = match binrpc::header(pkt) {
            Ok(Some(h)) if h.header_len + h.body_len <= n => {
                binrpc_answer(&core, h, &pkt[h.header_len..h.header_len + h.body_len])
            }
            // A datagram that is not one whole packet gets a fault.
            _ => binrpc::packet(
                binrpc::FAULT,
                0,
                &binrpc::fault_body(400, "not a whole BINRPC packet"),
            ),
        };
        let _ = s.send_to(&answer, from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_sockets_are_read_as_kamailio_writes_them() {
        assert_eq!(
            parse("tcp:127.0.0.1:2046"),
            Some(Ok((true, "127.0.0.1:2046".parse().unwrap())))
        );
        assert_eq!(
            parse("udp:127.0.0.1"),
            Some(Ok((false, "127.0.0.1:2049".parse().unwrap())))
        );
        assert_eq!(
            parse("tcp:[::1]:7"),
            Some(Ok((true, "[::1]:7".parse().unwrap())))
        );
        assert!(parse("tcp:localhost:1").unwrap().is_err());
        assert_eq!(parse("unix:/x"), None);
    }
}
