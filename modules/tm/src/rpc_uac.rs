//! `tm.t_uac_start`, `tm.t_uac_wait_block` and `tm.t_uac_wait`: a request
//! sent from RPC (an application, a cron job), as Kamailio's tm sends it —
//! `method ruri next_hop socket headers [body]`, the headers holding at
//! least From and To. Non-INVITE requests only (an INVITE would need a
//! dialog the caller cannot go on with).

use crate::engine::Engine;
use crate::local::{Ended, LocalRequests, Taken};
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_opt_str, param_str};
use sr_sdk::RpcError;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a waiting RPC gets its request's end.
type Waiter = Option<Arc<Mutex<Option<mpsc::Sender<(u16, String)>>>>>;

/// The requests RPC sent.
pub struct RpcUac {
    reqs: LocalRequests<Waiter>,
}

impl Default for RpcUac {
    fn default() -> Self {
        RpcUac {
            reqs: LocalRequests::new("rpc"),
        }
    }
}

/// The parts of a `headers` parameter: From, To, and the other lines
/// (CRLF each); the Content-Type among them.
struct Headers {
    from: Option<String>,
    to: Option<String>,
    other: String,
    ctype: bool,
}

fn split_headers(h: &str) -> Headers {
    let mut out = Headers {
        from: None,
        to: None,
        other: String::new(),
        ctype: false,
    };
    for l in h.split('\n').map(|l| l.trim_end_matches('\r')) {
        if l.trim().is_empty() {
            continue;
        }
        let (name, value) = l.split_once(':').unwrap_or((l, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("from") || name == "f" {
            out.from = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("to") || name == "t" {
            out.to = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("content-length") || name == "l" {
            // The length is written from the body.
        } else {
            if name.eq_ignore_ascii_case("content-type") || name == "c" {
                out.ctype = true;
            }
            out.other.push_str(l);
            out.other.push_str("\r\n");
        }
    }
    out
}

impl RpcUac {
    /// A final reply for one of our requests (the tm module's reply hook
    /// asks first): whether it was ours.
    pub fn on_response(&self, msg: &SipMsg) -> bool {
        match self.reqs.take_reply(msg) {
            Taken::NotOurs => false,
            Taken::Absorbed => true,
            Taken::Ended(e) => {
                Self::ended(e);
                true
            }
        }
    }

    /// Runs the timers (retransmissions, 408s).
    pub fn tick(&self, core: &dyn Core) {
        for e in self.reqs.tick(core) {
            Self::ended(e);
        }
    }

    fn ended(e: Ended<Waiter>) {
        if let Some(w) = e.tag {
            if let Some(tx) = w.lock().ok().and_then(|mut g| g.take()) {
                let _ = tx.send((e.code, e.reason));
            }
        }
    }

    /// Builds and sends the request of `p`; the waiter gets its end.
    pub(crate) fn send(
        &self,
        core: &dyn Core,
        timers: &sip_txn::TimerConfig,
        p: &[Json],
        w: Waiter,
    ) -> Result<(), RpcError> {
        let method = param_str(p, 0, "method")?;
        let ruri = param_str(p, 1, "ruri")?;
        let next = param_str(p, 2, "next hop")?;
        let socket = param_str(p, 3, "socket")?;
        let headers = param_str(p, 4, "headers")?;
        let body = param_opt_str(p, 5).filter(|b| !b.is_empty() && b != ".");
        if method.is_empty() || method.bytes().any(|c| !c.is_ascii_alphanumeric()) {
            return Err(RpcError::new(400, "Invalid method"));
        }
        if ["INVITE", "ACK", "CANCEL"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&method))
        {
            return Err(RpcError::new(
                400,
                format!("{method} is not sent from RPC here"),
            ));
        }
        let h = split_headers(&headers);
        let (Some(from), Some(to)) = (h.from, h.to) else {
            return Err(RpcError::new(400, "From and To headers are needed"));
        };
        if body.is_some() && !h.ctype {
            return Err(RpcError::new(400, "Content-Type missing"));
        }
        let hop = if next == "." || next.is_empty() {
            &ruri
        } else {
            &next
        };
        let mut dest = core
            .resolve(hop, None)
            .map_err(|e| RpcError::new(400, format!("Bad next hop {hop}: {e}")))?;
        if socket != "." && !socket.is_empty() {
            dest.send_socket = Some(
                sr_sdk::socket_addr(&socket)
                    .ok_or_else(|| RpcError::new(400, format!("Bad socket {socket}")))?,
            );
        }
        let local = crate::local::via_host(core, &dest)
            .ok_or_else(|| RpcError::new(500, "No local address to send from"))?;
        let host = local
            .rsplit_once(':')
            .map_or(local.as_str(), |x| x.0)
            .to_string();
        let (n, branch) = self.reqs.next_branch();
        let key = self.reqs.key().to_string();
        let from = if from.contains(";tag=") {
            from
        } else {
            format!("{from};tag={key}-{n}")
        };
        let body = body.unwrap_or_default();
        let mut t = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/{} {local};branch={branch}\r\nTo: {to}\r\nFrom: {from}\r\nCSeq: 10 {method}\r\nCall-ID: {key}-{n}@{host}\r\nMax-Forwards: 70\r\nContent-Length: {}\r\n",
            dest.proto.via_name(),
            body.len()
        );
        if let Some(ua) = core.user_agent_header() {
            t.push_str(&ua);
            t.push_str("\r\n");
        }
        t.push_str(&h.other);
        t.push_str("\r\n");
        t.push_str(&body);
        if let Some(e) = self.reqs.start(core, n, t.into_bytes(), dest, timers, w) {
            Self::ended(e);
        }
        Ok(())
    }
}

/// Adds the commands.
pub fn export(def: ModuleDef, e: &Arc<Engine>, uac: &Arc<RpcUac>) -> ModuleDef {
    let (e1, e2, u1, u2) = (e.clone(), e.clone(), uac.clone(), uac.clone());
    let core_of = |e: &Engine| e.core().ok_or_else(|| RpcError::new(500, "not running"));
    def.rpc(
        "tm.t_uac_start",
        "Sends a request: method ruri next_hop socket headers [body] (next hop and socket '.' for none).",
        move |p| {
            let core = core_of(&e1)?;
            u1.send(&*core, &e1.uac_timers(), p, None)?;
            Ok(Json::Null)
        },
    )
    .pipe(|d| {
        let mut d = d;
        for name in ["tm.t_uac_wait_block", "tm.t_uac_wait"] {
            let (e, u) = (e2.clone(), u2.clone());
            d = d.rpc(
                name,
                "Sends a request and waits for its final reply: {code, text}.",
                move |p| {
                    let core = core_of(&e)?;
                    let (tx, rx) = mpsc::channel();
                    let w = Arc::new(Mutex::new(Some(tx)));
                    u.send(&*core, &e.uac_timers(), p, Some(w))?;
                    // (Kamailio waits 80 s at most.)
                    match rx.recv_timeout(Duration::from_secs(80)) {
                        Ok((code, text)) => Ok(json!({"code": code, "text": text})),
                        Err(_) => Err(RpcError::new(500, "No reply")),
                    }
                },
            );
        }
        d
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split() {
        let h = split_headers("From: <sip:a@b>;tag=1\nTo: <sip:c@d>\r\nX-A: 1\nContent-Type: text/plain\nContent-Length: 9\n");
        assert_eq!(h.from.as_deref(), Some("<sip:a@b>;tag=1"));
        assert_eq!(h.to.as_deref(), Some("<sip:c@d>"));
        assert_eq!(h.other, "X-A: 1\r\nContent-Type: text/plain\r\n");
        assert!(h.ctype);
    }
}
