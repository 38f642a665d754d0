//! `tm.stats` and `tm.list`.

use crate::engine::Engine;
use sr_sdk::prelude::*;
use std::sync::Arc;

/// Adds the RPC methods.
pub fn export(def: ModuleDef, e: &Arc<Engine>) -> ModuleDef {
    let (e1, e2) = (e.clone(), e.clone());
    def.rpc("tm.stats", "Transaction statistics.", move |_| {
        let s = &e1.stats;
        let total = s.uas.get() + s.uac.get();
        let current = e1.inuse() as i64;
        Ok(json!({
            "current": current,
            "waiting": current - s.active.get().max(0),
            "total": total,
            "total_local": s.uac.get(),
            "rpl_received": s.rpl_received.get(),
            "rpl_generated": s.rpl_generated.get(),
            "rpl_sent": s.rpl_sent.get(),
            "6xx": s.by_class[5].get(),
            "5xx": s.by_class[4].get(),
            "4xx": s.by_class[3].get(),
            "3xx": s.by_class[2].get(),
            "2xx": s.by_class[1].get(),
            "created": total,
            "freed": total - current,
            "delayed_free": 0,
        }))
    })
    .rpc("tm.list", "The transactions in the table.", move |_| {
        let mut out = Vec::new();
        let mut cells = Vec::new();
        e2.tables.cells.for_each(|_, c| cells.push(c.0.clone()));
        for c in cells {
            if let Some(g) = c.take() {
                let m = g.req.msg();
                out.push(json!({
                    "id": format!("{:x}", g.id),
                    "method": g.method,
                    "ruri": g.req.ruri(),
                    "call_id": m.call_id().unwrap_or(""),
                    "from_tag": m.from_tag().ok().flatten().unwrap_or(""),
                    "cseq": m.cseq().map(|c| c.seq).unwrap_or(0),
                    "branches": g.proxy.branches().len(),
                    "final": g.proxy.final_sent(),
                    "canceled": g.proxy.is_canceled(),
                    "age_ms": g.created.elapsed().as_millis() as u64,
                }));
            }
        }
        Ok(Json::Array(out))
    })
}
