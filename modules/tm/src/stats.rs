//! Statistics, under the `tmx` group as Kamailio names them (tm counts,
//! tmx exports; here tm registers them under `tmx` when tmx is loaded,
//! and under `tm` always).

use sr_sdk::prelude::*;

/// The transaction counters.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Transactions created for received requests.
    pub uas: Stat,
    /// Transactions created for locally generated requests.
    pub uac: Stat,
    /// Transactions that ended with a 1xx..6xx final reply.
    pub by_class: [Stat; 6],
    /// Transactions with no final reply yet.
    pub active: Stat,
    /// Replies received from downstream.
    pub rpl_received: Stat,
    /// Replies absorbed (retransmissions, replies after the final one).
    pub rpl_absorbed: Stat,
    /// Replies generated locally.
    pub rpl_generated: Stat,
    /// Replies relayed.
    pub rpl_relayed: Stat,
    /// Replies sent (generated + relayed).
    pub rpl_sent: Stat,
}

impl Stats {
    /// Counts the final status of a transaction.
    pub fn final_code(&self, code: u16) {
        if (100..700).contains(&code) {
            self.by_class[usize::from(code / 100 - 1)].inc();
        }
    }

    /// The statistics as `(name, stat)`, in Kamailio's order (without
    /// `inuse_transactions`, which is computed).
    pub fn list(&self) -> Vec<(String, Stat)> {
        let mut v = vec![
            ("UAS_transactions".to_string(), self.uas.clone()),
            ("UAC_transactions".to_string(), self.uac.clone()),
        ];
        for (i, s) in self.by_class.iter().enumerate().skip(1) {
            v.push((format!("{}xx_transactions", i + 1), s.clone()));
        }
        v.push(("active_transactions".into(), self.active.clone()));
        v.push(("rpl_received".into(), self.rpl_received.clone()));
        v.push(("rpl_absorbed".into(), self.rpl_absorbed.clone()));
        v.push(("rpl_generated".into(), self.rpl_generated.clone()));
        v.push(("rpl_relayed".into(), self.rpl_relayed.clone()));
        v.push(("rpl_sent".into(), self.rpl_sent.clone()));
        v
    }
}
