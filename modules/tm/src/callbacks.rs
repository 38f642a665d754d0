//! Transaction callbacks for other modules (Kamailio's `TMCB_*`, the
//! part accounting needs): a module registers a function through
//! [`crate::TmApi::register_callback`] and is called when a transaction
//! sends a reply upstream or is about to run failure_route, with the
//! transaction's request (its flags as `t_flush_flags`/`t_relay` left
//! them) and the reply.

use crate::cell::Cell;
use crate::engine::Engine;
use bytes::Bytes;
use sr_sdk::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmEventKind {
    /// A reply came from downstream for a branch (`TMCB_RESPONSE_IN`; only
    /// after a module called [`crate::TmApi::want_reply_in`]), before
    /// onreply_route and before it is relayed: `received` is the reply,
    /// which the callback may change (uac restores From/To there).
    ReplyIn,
    /// A transaction was created for a request (`TMCB_REQUEST_IN`; only
    /// after a module called [`crate::TmApi::want_request_in`]); no reply
    /// yet (code 0). `req` is then the request the script is
    /// routing (changes to it reach the transaction and its branches).
    RequestIn,
    /// A reply went upstream (`TMCB_RESPONSE_OUT`): the first final
    /// reply of the transaction, or a provisional relayed from
    /// downstream. Retransmissions are not reported.
    ReplyOut,
    /// Every branch ended negatively and failure_route is about to run
    /// (`TMCB_ON_FAILURE`), with the winning reply.
    Failure,
}

/// One event of a transaction.
#[derive(Debug)]
pub struct TmEvent<'a> {
    /// What happened.
    pub kind: TmEventKind,
    /// The transaction's request. A callback may change its flags (acc
    /// resets the missed-call flags once reported); the change stays in
    /// the transaction.
    pub req: &'a mut SipMsg,
    /// The reply's status code.
    pub code: u16,
    /// The reply's reason phrase.
    pub reason: String,
    /// The reply as sent upstream or received; `None` for a local 408
    /// that was not sent (failure_route about to run).
    pub reply: Option<Bytes>,
    /// The To-tag tm uses in its own replies for this transaction.
    pub local_to_tag: &'a str,
    /// The Request-URI of the branch the reply belongs to, if known.
    pub branch_uri: Option<String>,
    /// Set by a `RequestIn` callback that changed the request (the
    /// transaction then takes a fresh copy of it).
    pub req_changed: bool,
    /// The transaction's id (as [`crate::TmApi::cell_id`] gives it).
    pub cell: u64,
    /// `ReplyIn`: the reply received, as it will be relayed.
    pub received: Option<&'a mut SipMsg>,
}

/// A transaction callback: the core (for pseudo-variables, routes) and
/// the event.
pub type TmCallback = Arc<dyn Fn(&dyn Core, &mut TmEvent<'_>) + Send + Sync>;

/// The status code and reason of reply bytes.
pub fn status_of(b: &[u8]) -> Option<(u16, String)> {
    let end = b.iter().position(|&c| c == b'\r' || c == b'\n')?;
    let line = std::str::from_utf8(b.get(..end)?).ok()?;
    let mut parts = line.splitn(3, ' ');
    if !parts.next()?.starts_with("SIP/") {
        return None;
    }
    let code = parts.next()?.parse().ok()?;
    Some((code, parts.next().unwrap_or("").to_string()))
}

impl Engine {
    /// Adds a callback (from another module's `mod_init`).
    pub fn register_callback(&self, cb: TmCallback) {
        if let Ok(mut v) = self.callbacks.write() {
            let mut list = v.as_ref().clone();
            list.push(cb);
            *v = Arc::new(list);
            self.has_callbacks.store(true, Ordering::Release);
        }
    }

    fn fire(&self, core: &dyn Core, ev: &mut TmEvent<'_>) {
        let cbs = match self.callbacks.read() {
            Ok(v) => Arc::clone(&v),
            Err(_) => return,
        };
        for cb in cbs.iter() {
            cb(core, ev);
        }
    }

    /// Reports a reply going upstream: the first final one of the cell,
    /// or a relayed provisional (`provisional`). Nothing without
    /// callbacks.
    pub fn reply_out(&self, core: &dyn Core, cell: &mut Cell, bytes: &Bytes, provisional: bool) {
        if !self.has_callbacks.load(Ordering::Acquire) {
            return;
        }
        let Some((code, reason)) = status_of(bytes) else {
            return;
        };
        if provisional != (code < 200) || code <= 100 {
            return;
        }
        if !provisional {
            if cell.final_reported {
                return;
            }
            cell.final_reported = true;
        }
        let branch_uri = cell
            .proxy
            .winner()
            .or_else(|| {
                cell.proxy
                    .branches()
                    .iter()
                    .position(|b| b.final_code == code)
            })
            .and_then(|i| cell.out.get(i))
            .map(|o| o.uri.clone())
            .filter(|u| !u.is_empty());
        let Cell {
            req, to_tag, id, ..
        } = cell;
        let mut ev = TmEvent {
            kind: TmEventKind::ReplyOut,
            local_to_tag: to_tag.get(req, *id),
            req,
            code,
            reason,
            reply: Some(bytes.clone()),
            branch_uri,
            req_changed: false,
            cell: *id,
            received: None,
        };
        self.fire(core, &mut ev);
    }

    /// Reports a transaction just created for the request the script
    /// routes (`msg`, which the callbacks may change: the dialog module
    /// adds its Record-Route parameter); whether one changed it.
    /// Nothing (and no cost) unless a module asked for these events with
    /// [`crate::TmApi::want_request_in`].
    pub fn request_in(&self, core: &dyn Core, msg: &mut SipMsg) -> bool {
        if !self.wants_request_in.load(Ordering::Acquire) {
            return false;
        }
        let cell_id = msg
            .ext
            .get::<crate::ctx::TxCtx>()
            .and_then(|t| t.cell.as_ref())
            .map_or(0, |c| c.id);
        let mut ev = TmEvent {
            kind: TmEventKind::RequestIn,
            local_to_tag: "",
            req: msg,
            code: 0,
            reason: String::new(),
            reply: None,
            branch_uri: None,
            req_changed: false,
            cell: cell_id,
            received: None,
        };
        self.fire(core, &mut ev);
        ev.req_changed
    }

    /// Reports a reply received for a branch of `cell`, before
    /// onreply_route; the callbacks may change `rpl`. Nothing (and no
    /// cost) unless a module asked with [`crate::TmApi::want_reply_in`].
    pub fn reply_in(&self, core: &dyn Core, cell: &mut Cell, rpl: &mut SipMsg, code: u16) {
        if !self.wants_reply_in.load(Ordering::Acquire) {
            return;
        }
        let reason = rpl.msg().reason().unwrap_or("").to_string();
        let Cell {
            req, to_tag, id, ..
        } = cell;
        let mut ev = TmEvent {
            kind: TmEventKind::ReplyIn,
            local_to_tag: to_tag.get(req, *id),
            req,
            code,
            reason,
            reply: None,
            branch_uri: None,
            req_changed: false,
            cell: *id,
            received: Some(rpl),
        };
        self.fire(core, &mut ev);
    }

    /// Reports that failure_route is about to run.
    pub fn on_failure_event(&self, core: &dyn Core, cell: &mut Cell) {
        if !self.has_callbacks.load(Ordering::Acquire) {
            return;
        }
        let Some(w) = Engine::winning_reply(cell) else {
            return;
        };
        let branch_uri = cell
            .proxy
            .winner()
            .and_then(|i| cell.out.get(i))
            .map(|o| o.uri.clone())
            .filter(|u| !u.is_empty());
        let Cell {
            req, to_tag, id, ..
        } = cell;
        let mut ev = TmEvent {
            kind: TmEventKind::Failure,
            local_to_tag: to_tag.get(req, *id),
            req,
            code: w.code,
            reason: w.reason,
            reply: w.bytes,
            branch_uri,
            req_changed: false,
            cell: *id,
            received: None,
        };
        self.fire(core, &mut ev);
    }
}

#[cfg(test)]
mod tests {
    use super::status_of;

    #[test]
    fn status_lines() {
        assert_eq!(
            status_of(b"SIP/2.0 486 Busy Here\r\n\r\n"),
            Some((486, "Busy Here".into()))
        );
        assert_eq!(status_of(b"SIP/2.0 200\r\n"), Some((200, String::new())));
        assert_eq!(status_of(b"INVITE sip:a SIP/2.0\r\n"), None);
        assert_eq!(status_of(b"SIP/2.0 x\r\n"), None);
        assert_eq!(status_of(b""), None);
    }
}
