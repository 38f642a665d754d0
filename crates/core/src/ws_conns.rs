//! The WebSocket side of the connection table: what a reader does with
//! decoded frames, and what the websocket module may do
//! ([`StreamConns`]): upgrade a connection after its handshake, close,
//! ping, list, count — and what tcpops may do with any connection
//! (look it up, its lifetime, keepalives, the report of its end).

use crate::transport::{Conn, TcpConns};
use crate::ws_codec::{close_payload, opcode, status, WsDecoder, WsEvent};
use sr_sdk::{
    lm_dbg, lm_warn, ConnEndFn, Keepalive, SendError, StreamConns, TlsSession, WsConnInfo, WsCounts,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl TcpConns {
    /// Connection `id` if it is a WebSocket.
    fn ws_conn(&self, id: u64) -> Result<Arc<Conn>, SendError> {
        self.get(id)
            .filter(|c| c.is_ws())
            .ok_or_else(|| SendError(format!("no WebSocket connection {id}")))
    }
}

impl StreamConns for TcpConns {
    fn upgrade_ws(&self, conn_id: u64, reply: &[u8]) -> Result<(), SendError> {
        let c = self
            .get(conn_id)
            .ok_or_else(|| SendError(format!("no connection {conn_id}")))?;
        c.upgrade_ws(reply).map_err(|e| {
            c.close();
            SendError(format!("upgrade of connection {conn_id}: {e}"))
        })
    }

    fn ws_close(&self, conn_id: u64, status: u16, reason: &str) -> Result<(), SendError> {
        let c = self.ws_conn(conn_id)?;
        c.mark_closing();
        let r = c.write_frame(opcode::CLOSE, &close_payload(status, reason));
        self.remove(conn_id);
        r.map_err(|e| SendError(e.to_string()))
    }

    fn close(&self, conn_id: u64) {
        self.remove(conn_id);
    }

    fn conn(&self, id: u64) -> Option<WsConnInfo> {
        self.get(id).filter(|c| c.usable()).map(|c| info(&c))
    }

    fn conn_to(&self, peer: std::net::SocketAddr) -> Option<u64> {
        self.by_peer(peer).filter(|c| c.usable()).map(|c| c.id)
    }

    fn set_lifetime(&self, id: u64, lifetime: std::time::Duration) -> bool {
        self.get(id).is_some_and(|c| {
            let ms = u64::try_from(lifetime.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            c.lifetime_ms.store(ms, Ordering::Relaxed);
            true
        })
    }

    fn set_keepalive(&self, id: u64, ka: Option<Keepalive>) -> Result<(), String> {
        let c = self.get(id).ok_or_else(|| format!("no connection {id}"))?;
        c.set_keepalive(ka).map_err(|e| e.to_string())
    }

    fn want_end_event(&self, id: u64) -> bool {
        self.get(id).is_some_and(|c| {
            c.end_event.store(true, Ordering::Relaxed);
            true
        })
    }

    fn on_end(&self, f: ConnEndFn) -> bool {
        self.on_end.set(crate::transport::EndHook(f)).is_ok()
    }

    fn ws_ping(&self, conn_id: u64, pong: bool, data: &[u8]) -> Result<(), SendError> {
        let c = self.ws_conn(conn_id)?;
        let op = if pong { opcode::PONG } else { opcode::PING };
        c.write_frame(op, &data[..data.len().min(125)])
            .map_err(|e| {
                self.ws_counters.failed.fetch_add(1, Ordering::Relaxed);
                c.close();
                SendError(e.to_string())
            })
    }

    fn tls_session(&self, id: u64) -> Option<TlsSession> {
        let c = self.get(id).filter(|c| c.usable())?;
        self.session_of(&c)
    }

    fn tls_conns(&self) -> Vec<(WsConnInfo, Option<TlsSession>)> {
        let mut v: Vec<_> = self
            .all()
            .into_iter()
            .filter(|c| c.proto == sr_sdk::Proto::Tls && c.usable())
            .map(|c| (info(&c), self.session_of(&c)))
            .collect();
        v.sort_by_key(|(c, _)| c.id);
        v
    }

    fn ws_conns(&self) -> Vec<WsConnInfo> {
        let mut v: Vec<WsConnInfo> = self
            .all()
            .into_iter()
            .filter(|c| c.is_ws())
            .map(|c| info(&c))
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    fn ws_counts(&self) -> WsCounts {
        let c = &self.ws_counters;
        WsCounts {
            received: c.received.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            remote_closed: c.remote_closed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }
}

/// What [`StreamConns`] tells of a connection.
fn info(c: &Conn) -> WsConnInfo {
    WsConnInfo {
        id: c.id,
        peer: c.peer,
        local: c.local,
        proto: c.sip_proto(),
        idle: c.idle_for(),
        silent: c.silent_for(),
    }
}

impl TcpConns {
    /// A TLS connection's session as the tls module shows it: what the
    /// handshake agreed on, with our certificate and whether the peer's
    /// was checked taken from the configuration in force.
    fn session_of(&self, c: &Conn) -> Option<TlsSession> {
        let st = c.tls_state()?;
        let cfgs = self.tls_configs().ok();
        let verifies = cfgs.as_ref().is_some_and(|t| t.verifies(st.accepted));
        Some(TlsSession {
            version: st.version.to_string(),
            suite: st.suite,
            peer_verified: verifies && !st.peer_certs.is_empty(),
            peer_certs: st.peer_certs,
            my_cert: cfgs.and_then(|t| t.my_cert(st.accepted).map(<[u8]>::to_vec)),
            server_name: st.server_name,
            accepted: st.accepted,
        })
    }

    /// Takes the WebSocket events decoded so far on `conn`; `false` to
    /// stop reading (the connection is then removed).
    pub(crate) fn ws_events(&self, dec: &mut WsDecoder, conn: &Conn) -> bool {
        let counters = &self.ws_counters;
        let before = dec.frames();
        let open = loop {
            let Some(ev) = dec.next_event() else {
                break true;
            };
            match ev {
                Ok(WsEvent::Message(b)) => {
                    if is_crlf_keepalive(&b) {
                        // RFC 5626 keep-alives inside messages, as SIP.js
                        // sends them: a double CRLF is answered with one.
                        if &b[..] == b"\r\n\r\n" {
                            let _ = conn.write_frame(opcode::TEXT, b"\r\n");
                        }
                    } else if !self.hand_over(conn, b) {
                        break false;
                    }
                }
                Ok(WsEvent::Ping(data)) => {
                    let _ = conn.write_frame(opcode::PONG, &data);
                }
                Ok(WsEvent::Pong) => {}
                Ok(WsEvent::Close(_)) if conn.closing() => {
                    // The answer to our own Close.
                    break false;
                }
                Ok(WsEvent::Close(code)) => {
                    // Echo the status (RFC 6455 5.5.1), then close.
                    let code = code.unwrap_or(status::NORMAL);
                    let _ = conn.write_frame(opcode::CLOSE, &code.to_be_bytes());
                    lm_dbg!("ws {}: closed by the peer ({code})", conn.peer);
                    counters.remote_closed.fetch_add(1, Ordering::Relaxed);
                    conn.peer_closed.store(true, Ordering::Relaxed);
                    break false;
                }
                Err(e) => {
                    lm_warn!("ws {}: {}; closing the connection", conn.peer, e.reason);
                    let _ = conn.write_frame(opcode::CLOSE, &close_payload(e.status, e.reason));
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    break false;
                }
            }
        };
        counters
            .received
            .fetch_add(dec.frames() - before, Ordering::Relaxed);
        open
    }
}

/// A message of line ends only: a CRLF keep-alive, not SIP.
fn is_crlf_keepalive(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|&c| c == b'\r' || c == b'\n')
}
