//! The transaction tables (cells by id with their deadlines, and the
//! server-key index), transaction keys and our Via branches.

use crate::cell::{CellEntry, CellRef, KeyEntry};
use sip_txn::{Method as TxMethod, Rfc2543Parts, TxKey, TxTable};
use sr_sdk::sip_msg::Message;

/// Prefix of the Via branches tm puts in requests it relays.
pub const BRANCH_PREFIX: &str = "z9hG4bKT";

/// The Via branch of branch `idx` of cell `id`.
pub fn branch_id(id: u64, idx: usize) -> String {
    let mut b = String::with_capacity(BRANCH_PREFIX.len() + 20);
    b.push_str(BRANCH_PREFIX);
    sr_sdk::sip_msg::text::push_hex_num(&mut b, id);
    b.push('.');
    sr_sdk::sip_msg::text::push_dec(&mut b, idx as u64);
    b
}

/// The cell id and branch index in one of our Via branches.
pub fn parse_branch(b: &str) -> Option<(u64, usize)> {
    let rest = b.strip_prefix(BRANCH_PREFIX)?;
    let (id, idx) = rest.split_once('.')?;
    Some((u64::from_str_radix(id, 16).ok()?, idx.parse().ok()?))
}

/// The server transaction key of a request (RFC 3261 branch + sent-by +
/// method, else the RFC 2543 parts). An ACK gets its INVITE's key.
pub fn server_key(m: &Message<'_>) -> Option<TxKey> {
    let via = m.top_via().ok()?;
    let method = TxMethod::parse(m.method()?.as_str());
    let port = via.port.unwrap_or(via.default_port());
    let branch = via.branch().unwrap_or("");
    if let Some(k) = TxKey::server_via(branch, via.host_str, port, method.clone()) {
        return Some(k);
    }
    let parts = Rfc2543Parts {
        request_uri: m.request_uri()?.raw,
        to_tag: m.to_tag().ok()?,
        from_tag: m.from_tag().ok()?,
        call_id: m.call_id().ok()?,
        cseq: m.cseq().ok()?.seq,
        top_via: via.raw,
    };
    Some(TxKey::server_rfc2543(&parts, method))
}

/// [`server_key`] of a request, made once per message: `t_precheck_trans`,
/// `t_check_trans` and `t_relay` each want it (it was built up to five
/// times per call), and a key costs an allocation and the top Via's
/// decoding.
pub fn server_key_of(msg: &mut sr_sdk::SipMsg) -> Option<TxKey> {
    let raw = msg.msg().raw();
    let at = (raw.as_ptr() as usize, raw.len());
    if let Some((p, l, k)) = msg
        .ext
        .get::<crate::ctx::TxCtx>()
        .and_then(|t| t.key.as_ref())
    {
        if (*p, *l) == at {
            return k.clone();
        }
    }
    let k = server_key(msg.msg());
    // An ACK makes no transaction: no tm state just for its key.
    let ack = msg.msg().method() == Some(sr_sdk::sip_msg::Method::Ack);
    if !ack || msg.ext.get::<crate::ctx::TxCtx>().is_some() {
        crate::ctx::tx(msg).key = Some((at.0, at.1, k.clone()));
    }
    k
}

/// Shards per table.
const SHARDS: usize = 16;

/// Both tables.
#[derive(Debug)]
pub struct Tables {
    /// Cells by id, with their deadlines (the timer polls this one).
    pub cells: TxTable<u64, CellEntry>,
    /// Server transaction key → cell.
    pub keys: TxTable<TxKey, KeyEntry>,
}

impl Tables {
    /// Empty tables. 16 shards each: a few times the worker threads of a
    /// usual configuration, and the timer thread visits every shard of
    /// `cells` at each tick (64 shards cost about 2 % more user-space
    /// instructions per stateful call at 200 calls/s).
    pub fn new() -> Tables {
        Tables {
            cells: TxTable::new(SHARDS),
            keys: TxTable::new(SHARDS),
        }
    }

    /// The cell of a server key.
    pub fn by_key(&self, k: &TxKey) -> Option<CellRef> {
        self.keys.get(k).map(|e| e.0).filter(|c| !c.is_done())
    }

    /// The cell of an id.
    pub fn by_id(&self, id: u64) -> Option<CellRef> {
        self.cells.get(&id).map(|e| e.0).filter(|c| !c.is_done())
    }
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_round_trip() {
        assert_eq!(parse_branch(&branch_id(0xabc, 3)), Some((0xabc, 3)));
        assert_eq!(parse_branch("z9hG4bKsr123"), None);
        assert_eq!(parse_branch("z9hG4bKTzz.1"), None);
        assert_eq!(parse_branch("z9hG4bKT1.x"), None);
    }

    #[test]
    fn keys_match_ack_and_default_port() {
        let inv = Message::parse(b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n").unwrap();
        let ack = Message::parse(b"ACK sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP A.example:5060;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=x\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n").unwrap();
        assert_eq!(server_key(&inv), server_key(&ack));
        let old = Message::parse(b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n").unwrap();
        assert!(server_key(&old).is_some());
        assert_ne!(server_key(&old), server_key(&inv));
    }
}
