//! The WebSocket side of the connection table, as the websocket module
//! sees it ([`StreamConns`]): upgrading a connection after its handshake,
//! closing, pinging, listing.

use crate::transport::TcpConns;
use crate::ws_codec::{close_payload, opcode};
use sr_sdk::{SendError, StreamConns, WsConnInfo};
use std::sync::atomic::Ordering;

fn no_conn(id: u64) -> SendError {
    SendError(format!("no WebSocket connection {id}"))
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
        let c = self
            .get(conn_id)
            .filter(|c| c.is_ws())
            .ok_or_else(|| no_conn(conn_id))?;
        let r = c.write_frame(opcode::CLOSE, &close_payload(status, reason));
        self.remove(conn_id);
        r.map_err(|e| SendError(e.to_string()))
    }

    fn close(&self, conn_id: u64) {
        self.remove(conn_id);
    }

    fn ws_ping(&self, conn_id: u64, pong: bool, data: &[u8]) -> Result<(), SendError> {
        let c = self
            .get(conn_id)
            .filter(|c| c.is_ws())
            .ok_or_else(|| no_conn(conn_id))?;
        let op = if pong { opcode::PONG } else { opcode::PING };
        c.write_frame(op, &data[..data.len().min(125)])
            .map_err(|e| {
                c.close();
                SendError(e.to_string())
            })
    }

    fn ws_conns(&self) -> Vec<WsConnInfo> {
        let mut v: Vec<WsConnInfo> = self
            .all()
            .into_iter()
            .filter(|c| c.is_ws())
            .map(|c| WsConnInfo {
                id: c.id,
                peer: c.peer,
                local: c.local,
                proto: c.sip_proto(),
                idle: c.idle_for(),
            })
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    fn ws_frames(&self) -> (u64, u64) {
        (
            self.ws_frames.received.load(Ordering::Relaxed),
            self.ws_frames.sent.load(Ordering::Relaxed),
        )
    }
}
