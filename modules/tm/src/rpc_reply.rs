//! `tm.reply` and `tm.reply_callid`: a reply to a transaction from
//! outside its messages (an application answering a request a script
//! suspended), as Kamailio's tm builds it — the To tag given, extra
//! header lines, a body.

use crate::cell::{clone_msg, CellRef};
use crate::engine::Engine;
use bytes::Bytes;
use sr_sdk::prelude::*;
use sr_sdk::rpc::{param_int, param_opt_str, param_str};
use sr_sdk::RpcError;
use std::sync::Arc;

/// The header lines of an RPC's `new_headers` (`.` for none), each ending
/// with CRLF, and the Content-Type among them.
fn headers_of(h: &str) -> (String, Option<String>) {
    if h == "." || h.is_empty() {
        return (String::new(), None);
    }
    let mut out = String::new();
    let mut ctype = None;
    for l in h
        .split("\r\n")
        .flat_map(|l| l.split('\n'))
        .filter(|l| !l.is_empty())
    {
        match l.split_once(':') {
            Some((n, v)) if n.trim().eq_ignore_ascii_case("content-type") => {
                ctype = Some(v.trim().to_string());
            }
            // Content-Length is the core's to write.
            Some((n, _)) if n.trim().eq_ignore_ascii_case("content-length") => {}
            _ => {
                out.push_str(l);
                out.push_str("\r\n");
            }
        }
    }
    (out, ctype)
}

/// What an RPC asks to reply.
struct RpcReply {
    code: u16,
    reason: String,
    to_tag: String,
    headers: String,
    body: Option<String>,
}

impl RpcReply {
    /// From the parameters: code and reason at 0 and 1, the To tag, the
    /// headers and the body from `at`.
    fn of(p: &[Json], at: usize) -> Result<RpcReply, RpcError> {
        let code = param_int(p, 0, "code")?;
        Ok(RpcReply {
            code: u16::try_from(code).map_err(|_| RpcError::new(500, "Reply failed"))?,
            reason: param_str(p, 1, "reason")?,
            to_tag: param_str(p, at, "to_tag")?,
            headers: param_str(p, at + 1, "new_headers")?,
            body: param_opt_str(p, at + 2),
        })
    }
}

impl Engine {
    /// Sends a final or provisional reply on transaction `c` (Kamailio's
    /// `t_reply_with_body`).
    fn reply_from_rpc(&self, core: &dyn Core, c: &CellRef, r: &RpcReply) -> Result<(), RpcError> {
        let (code, reason, to_tag, headers, body) = (
            r.code,
            r.reason.as_str(),
            r.to_tag.as_str(),
            r.headers.as_str(),
            r.body.as_deref(),
        );
        let failed = || RpcError::new(500, "Reply failed");
        let Some(mut g) = c.take() else {
            return Err(failed());
        };
        if g.proxy.final_sent() >= 200 || g.proxy.is_canceled() {
            return Err(failed());
        }
        let mut msg = clone_msg(&g.req).ok_or_else(failed)?;
        // (No To tag given: the transaction's own, as its local replies.)
        let own_tag;
        let to_tag = if to_tag.is_empty() {
            own_tag = g.to_tag.get(&g.req, g.id).to_string();
            own_tag.as_str()
        } else {
            to_tag
        };
        let (extra, ctype) = headers_of(headers);
        msg.reply_headers = extra;
        let body = body.filter(|b| !b.is_empty());
        let ctype = ctype.unwrap_or_else(|| "text/plain".into());
        let out = core
            .build_reply(
                &msg,
                code,
                reason,
                Some(to_tag),
                body.map(|b| (ctype.as_str(), b.as_bytes())),
            )
            .map_err(|_| failed())?;
        self.stats.rpl_generated.inc();
        let now = self.now();
        let effects = g.proxy.reply(now, code, Bytes::from(out.data));
        let g = self.run_effects(core, g, effects);
        drop(g);
        self.touch(c);
        Ok(())
    }

    /// The transaction with this Call-ID and CSeq number (or whole CSeq
    /// value), if any; with `invite`, an INVITE's only.
    pub(crate) fn by_callid(&self, callid: &str, cseq: &str, invite: bool) -> Option<CellRef> {
        let mut found = None;
        let mut cells = Vec::new();
        self.tables.cells.for_each(|_, c| cells.push(c.0.clone()));
        for c in cells {
            let Some(g) = c.take() else { continue };
            let m = g.req.msg();
            let same_cseq = m.cseq().is_ok_and(|cs| {
                cseq.trim() == cs.seq.to_string()
                    || cseq
                        .trim()
                        .eq_ignore_ascii_case(&format!("{} {}", cs.seq, cs.method))
            });
            let method_ok = !invite || g.proxy.is_invite();
            if m.call_id().ok() == Some(callid) && same_cseq && method_ok {
                drop(g);
                found = Some(c);
                break;
            }
        }
        found
    }
}

impl Engine {
    /// tmx's `t_reply_callid(callid, cseq, code, reason)`: 1 replied, -1
    /// no such transaction or it has its final reply.
    pub fn reply_callid(
        &self,
        core: &dyn Core,
        callid: &str,
        cseq: &str,
        code: u16,
        reason: &str,
    ) -> i32 {
        let Some(c) = self.by_callid(callid, cseq, false) else {
            return -1;
        };
        let r = RpcReply {
            code,
            reason: reason.to_string(),
            to_tag: String::new(),
            headers: String::new(),
            body: None,
        };
        match self.reply_from_rpc(core, &c, &r) {
            Ok(()) => 1,
            Err(_) => -1,
        }
    }

    /// tmx's `t_cancel_callid(callid, cseq, flag[, rcode])`: CANCELs the
    /// pending branches of that INVITE transaction (a `Reason: SIP;cause=`
    /// with `rcode`), after setting `flag` (1..31) on its request. 1 done,
    /// -1 no such transaction.
    pub fn cancel_callid(
        &self,
        core: &dyn Core,
        callid: &str,
        cseq: &str,
        flag: i64,
        rcode: Option<i64>,
    ) -> i32 {
        let Some(c) = self.by_callid(callid, cseq, true) else {
            return -1;
        };
        let Some(mut g) = c.take() else {
            return -1;
        };
        if (1..32).contains(&flag) {
            g.req.flags |= 1 << flag;
        }
        // (The text Kamailio gives a 200's, as for the CANCELs after a 2xx.)
        let reason = rcode.filter(|r| *r > 0).map(|r| match r {
            200 => "SIP;cause=200;text=\"Call completed elsewhere\"".to_string(),
            r => format!("SIP;cause={r}"),
        });
        let (_, effects) = g.proxy.cancel_branches(self.now(), reason);
        let g = self.run_effects(core, g, effects);
        drop(g);
        self.touch(&c);
        1
    }
}

impl Engine {
    /// `tm.cancel`: CANCELs for the pending branches of the INVITE
    /// transaction with this Call-ID and CSeq number; how many branches
    /// still wait for their final reply.
    fn cancel_from_rpc(&self, core: &dyn Core, callid: &str, cseq: &str) -> Option<usize> {
        let c = self.by_callid(callid, cseq, true)?;
        let mut g = c.take()?;
        let (_, effects) = g.proxy.cancel_branches(self.now(), None);
        let pending = g.proxy.branches().iter().filter(|b| b.pending()).count();
        let g = self.run_effects(core, g, effects);
        drop(g);
        self.touch(&c);
        Some(pending)
    }
}

/// Adds `tm.reply`, `tm.reply_callid`, `tm.cancel`, `tm.clean` and
/// `tm.hash_stats`.
pub fn export(def: ModuleDef, e: &Arc<Engine>) -> ModuleDef {
    let (e1, e2, e3) = (e.clone(), e.clone(), e.clone());
    let def = def
        .rpc(
            "tm.cancel",
            "CANCELs the pending branches of an INVITE transaction: callid cseq.",
            move |p| {
                // (Text, as Kamailio scans them.)
                let (Some(Json::String(callid)), Some(Json::String(cseq))) = (p.first(), p.get(1))
                else {
                    return Err(RpcError::new(400, "Callid and CSeq expected as parameters"));
                };
                let core = e3.core().ok_or_else(|| RpcError::new(500, "not running"))?;
                let left = e3
                    .cancel_from_rpc(&*core, callid, cseq)
                    .ok_or_else(|| RpcError::new(400, "Transaction not found"))?;
                Ok(json!([left, "branches remaining (waiting for timeout)"]))
            },
        )
        // Transactions end by their timers: nothing to clean by hand.
        .rpc(
            "tm.clean",
            "Cleans expired transactions (none outlive their timers).",
            |_| Ok(Json::Null),
        )
        // (As Kamailio built without TM_HASH_STATS, as Debian's is.)
        .rpc("tm.hash_stats", "Hash table statistics (not kept).", |_| {
            Err(RpcError::new(
                500,
                "Hash statistics not supported (tryrecompiling with -DTM_HASH_STATS)",
            ))
        });
    let core_of = |e: &Engine| e.core().ok_or_else(|| RpcError::new(500, "Reply failed"));
    def.rpc(
        "tm.reply",
        "Replies to a transaction: code reason index:label to_tag new_headers [body].",
        move |p| {
            // (Text, as Kamailio scans it: a number is refused.)
            let id = match p.get(2) {
                Some(Json::String(s)) => s.clone(),
                _ => return Err(RpcError::new(400, "Transaction ID expected")),
            };
            let r = RpcReply::of(p, 3)?;
            let ids = id.split_once(':').and_then(|(i, l)| {
                Some((i.trim().parse::<u64>().ok()?, l.trim().parse::<u64>().ok()?))
            });
            let Some((index, label)) = ids else {
                return Err(RpcError::new(400, "Invalid transaction ID"));
            };
            let c = crate::suspend::join_id(index, label)
                .and_then(|id| e1.tables.by_id(id))
                .ok_or_else(|| RpcError::new(481, "No such transaction"))?;
            let core = core_of(&e1)?;
            e1.reply_from_rpc(&*core, &c, &r)?;
            Ok(Json::Null)
        },
    )
    .rpc(
        "tm.reply_callid",
        "Replies to a transaction: code reason callid cseq to_tag new_headers [body].",
        move |p| {
            let callid = param_str(p, 2, "callid")?;
            let cseq = match p.get(3) {
                Some(Json::String(s)) => s.clone(),
                _ => return Err(RpcError::new(400, "CSeq expected")),
            };
            let r = RpcReply::of(p, 4)?;
            let c = e2
                .by_callid(&callid, &cseq, false)
                .ok_or_else(|| RpcError::new(404, "Transaction not found"))?;
            let core = core_of(&e2)?;
            e2.reply_from_rpc(&*core, &c, &r)?;
            Ok(Json::Null)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_headers() {
        assert_eq!(headers_of("."), (String::new(), None));
        assert_eq!(
            headers_of("X-A: 1\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-B: 2"),
            (
                "X-A: 1\r\nX-B: 2\r\n".to_string(),
                Some("text/plain".to_string())
            )
        );
    }
}
