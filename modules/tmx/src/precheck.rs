//! `t_precheck_trans`: requests being routed right now, so that a
//! retransmission arriving before the first copy created its transaction
//! is recognised. Entries live while their message is routed (a guard in
//! the message's extensions removes them when the message is dropped).

use sr_sdk::sip_msg::text::push_dec;
use sr_sdk::SipMsg;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

type Set = Arc<Mutex<HashSet<String, foldhash::fast::RandomState>>>;

/// The set of requests in progress.
#[derive(Debug, Default)]
pub struct Precheck {
    set: Set,
}

/// Removes the entry when the message is dropped.
struct Entry {
    set: Set,
    key: String,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.key);
        }
    }
}

/// `call-id|from-tag|cseq|method|branch`.
fn key(msg: &SipMsg) -> Option<String> {
    let m = msg.msg();
    let via = m.top_via().ok()?;
    let cseq = m.cseq().ok()?;
    let parts = [
        m.call_id().ok()?,
        m.from_tag().ok()?.unwrap_or(""),
        cseq.method.as_str(),
        via.branch().unwrap_or(""),
    ];
    let mut k = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>() + 20);
    k.push_str(parts[0]);
    k.push('|');
    k.push_str(parts[1]);
    k.push('|');
    push_dec(&mut k, u64::from(cseq.seq));
    for p in &parts[2..] {
        k.push('|');
        k.push_str(p);
    }
    Some(k)
}

impl Precheck {
    /// True when another worker is routing the same request now;
    /// otherwise records this one (ACK and CANCEL are not tracked).
    pub fn check(&self, msg: &mut SipMsg) -> bool {
        if matches!(
            msg.msg().method(),
            Some(sr_sdk::sip_msg::Method::Ack | sr_sdk::sip_msg::Method::Cancel)
        ) {
            return false;
        }
        if msg.ext.get::<Entry>().is_some() {
            return false;
        }
        let Some(k) = key(msg) else {
            return false;
        };
        let Ok(mut s) = self.set.lock() else {
            return false;
        };
        if !s.insert(k.clone()) {
            return true;
        }
        drop(s);
        msg.ext.insert(Entry {
            set: self.set.clone(),
            key: k,
        });
        false
    }
}
