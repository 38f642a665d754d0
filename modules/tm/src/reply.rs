//! Replies from downstream: matched to a cell and branch by our Via
//! branch, run through onreply_route, fed to the proxy, relayed.

use crate::cell::{Cell, CellGuard, CellRef, WinningReply};
use crate::ctx::{tx, TxCtx};
use crate::engine::{Engine, LocalReplies};
use crate::table::parse_branch;
use bytes::Bytes;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::edit::ApplyOptions;
use sr_sdk::RouteId;

/// The cell and branch index a reply belongs to.
pub fn reply_cell(e: &Engine, msg: &SipMsg) -> Option<(CellRef, usize)> {
    let branch = msg.msg().top_via_branch().ok()??;
    let (id, idx) = parse_branch(branch)?;
    Some((e.tables.by_id(id)?, idx))
}

impl Engine {
    /// The response hook: true when the reply belonged to a transaction
    /// (consumed).
    pub fn on_response(&self, ctx: &mut Ctx<'_>) -> bool {
        let Some((c, idx)) = reply_cell(self, ctx.msg) else {
            return false;
        };
        let Some(mut code) = ctx.msg.msg().status() else {
            return true;
        };
        self.stats.rpl_received.inc();
        // The CSeq method, parsed once (an unparsable CSeq matches nothing).
        let cseq_method = ctx.msg.msg().cseq().ok().map(|c| c.method);
        let cseq_is_cancel = cseq_method == Some(Method::Cancel);
        let Some(mut g) = c.take() else {
            self.stats.rpl_absorbed.inc();
            return true;
        };
        let now = self.now();
        let raw = ctx.msg.bytes().clone();
        if cseq_is_cancel {
            g.proxy.on_cancel_reply(now, idx, code, raw);
            self.stats.rpl_absorbed.inc();
            drop(g);
            self.touch(&c);
            return true;
        }
        let same_method = cseq_method.is_some_and(|m| m.as_str() == g.method);
        if !same_method || idx >= g.proxy.branches().len() {
            self.stats.rpl_absorbed.inc();
            drop(g);
            self.touch(&c);
            return true;
        }
        // Modules' TMCB_RESPONSE_IN (uac restores From/To here).
        self.reply_in(ctx.core, &mut g, ctx.msg, code);
        // onreply_route, with the cell held for $T_* and t_* functions.
        if let Some(r) = g.armed.reply {
            let reason = ctx.msg.msg().reason().unwrap_or("").to_string();
            // The transaction's XAVPs are the reply's while the route runs
            // (dispatcher's ds_mark_dst reads its records there), and what
            // the route leaves in them goes back to the transaction, as in
            // Kamailio.
            ctx.msg.xavps = std::mem::take(&mut g.req.xavps);
            // And its AVPs, as Kamailio's reply route sees the
            // transaction's AVP lists.
            ctx.msg.avps = std::mem::take(&mut g.req.avps);
            // So are the request's flags and the branch's flags (the
            // stock configuration's NAT handling reads both there).
            ctx.msg.flags = g.req.flags;
            ctx.msg.bflags = g.out.get(idx).map_or(0, |b| b.flags);
            let t = tx(ctx.msg);
            t.held = Some(g);
            t.branch = Some(idx);
            t.reply = Some(WinningReply {
                code,
                reason,
                bytes: Some(raw.clone()),
            });
            let res = ctx.core.run_route(r, RouteType::TM_ONREPLY, ctx.msg);
            let held = ctx
                .msg
                .ext
                .remove::<TxCtx>()
                .and_then(|mut t| t.held.take());
            let Some(mut ng) = held else {
                // The cell was taken by the route (not done today): its
                // XAVPs and AVPs stay on the reply, which ends here.
                return true;
            };
            ng.req.xavps = std::mem::take(&mut ctx.msg.xavps);
            ng.req.avps = std::mem::take(&mut ctx.msg.avps);
            ng.req.flags = ctx.msg.flags;
            if let Some(b) = ng.out.get_mut(idx) {
                b.flags = ctx.msg.bflags;
            }
            g = ng;
            // The script may have changed the code (textopsx's
            // change_reply_status_code); the relayed bytes carry it too.
            if let Some(s) = ctx.msg.ext.get::<sr_sdk::NewStatus>() {
                code = s.code;
            }
            if res.dropped && code < 200 {
                self.stats.rpl_absorbed.inc();
                drop(g);
                self.touch(&c);
                return true;
            }
        }
        // After onreply_route, whose blst_set_ignore() counts, as Kamailio.
        if code == 503 {
            self.blocklist_503(ctx.core, &g, ctx.msg);
        }
        let relayed = {
            let m = ctx.msg.msg();
            let mut edits = ctx.msg.edits.clone();
            edits.remove_top_via(m);
            Bytes::from(edits.apply(
                m,
                ApplyOptions {
                    ensure_content_length: g.up.proto.is_reliable(),
                },
            ))
        };
        // event_route[tm:branch-failure:NAME], for the first negative final
        // reply of a branch that has it armed, while the transaction is not
        // answered yet (Kamailio drops negative replies after a final one
        // went upstream): before the best reply is picked (as in Kamailio),
        // so that a branch it relays (say the next flow of the same
        // instance, t_next_contact_flow) keeps the transaction going.
        if code >= 300
            && g.proxy.final_sent() == 0
            && g.proxy
                .branches()
                .get(idx)
                .is_some_and(|b| b.final_code == 0)
        {
            if let Some(r) = g.out.get(idx).and_then(|o| o.on_branch_failure) {
                let reply = WinningReply {
                    code,
                    reason: ctx.msg.msg().reason().unwrap_or("").to_string(),
                    bytes: Some(ctx.msg.bytes().clone()),
                };
                match self.run_branch_failure(ctx.core, g, r, idx, reply) {
                    Some(ng) => g = ng,
                    None => return true,
                }
            }
        }
        let (effects, new) = {
            let Cell {
                proxy,
                req,
                to_tag,
                id,
                ..
            } = &mut *g;
            let rf = LocalReplies {
                core: ctx.core,
                req,
                tag: to_tag,
                id: *id,
                stats: &self.stats,
            };
            proxy.on_reply(now, idx, code, raw, relayed, &rf)
        };
        if !new {
            self.stats.rpl_absorbed.inc();
        }
        if new && code < 200 {
            for e in &effects {
                if let crate::proxy::Effect::Upstream(b) = e {
                    self.reply_out(ctx.core, &mut g, b, true);
                }
            }
        }
        let relayed_any = effects
            .iter()
            .any(|e| matches!(e, crate::proxy::Effect::Upstream(_)));
        if relayed_any && new {
            self.stats.rpl_relayed.inc();
        }
        let g = self.run_effects(ctx.core, g, effects);
        drop(g);
        self.touch(&c);
        true
    }

    /// `event_route[tm:branch-failure:NAME]` for a negative reply (or a
    /// timeout) of branch `idx`, on a copy of the request with the cell held (so
    /// `t_relay()` there adds branches to this transaction); the cell back.
    pub(crate) fn run_branch_failure(
        &self,
        core: &dyn Core,
        mut g: CellGuard,
        r: RouteId,
        idx: usize,
        reply: WinningReply,
    ) -> Option<CellGuard> {
        let Some(mut m) = crate::cell::clone_msg(&g.req) else {
            return Some(g);
        };
        // Once per arming, as in Kamailio: the branches relayed from now on
        // get the route only when it is armed again.
        g.armed.branch_failure = None;
        if let Some(o) = g.out.get_mut(idx) {
            o.on_branch_failure = None;
            m.bflags = o.flags;
        }
        m.branches.clear();
        // The Request-URI was used (as in failure_route): t_relay sends to
        // the branches the route adds.
        m.consume_ruri();
        let t = tx(&mut m);
        t.branch = Some(idx);
        t.reply = Some(reply);
        // New branches join the branches there are (no new serial round).
        t.leg_started = true;
        t.held = Some(g);
        core.run_route(r, RouteType::BRANCH_FAILURE, &mut m);
        let mut t = m.ext.remove::<TxCtx>()?;
        let mut g = t.held.take()?;
        // t_on_branch_failure() there, with no relay after it: for the
        // branches relayed later.
        if t.armed.branch_failure.is_some() {
            g.armed.branch_failure = t.armed.branch_failure;
        }
        g.req.avps = m.avps.clone();
        g.req.xavps = m.xavps.clone();
        g.req.flags = m.flags;
        Some(g)
    }
}
