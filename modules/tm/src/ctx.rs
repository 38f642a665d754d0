//! What tm keeps in a message's extensions: the transaction of the
//! request, the routes armed before it exists, and, while a tm route
//! runs, the checked-out cell and the branch or reply it is about.

use crate::cell::{Armed, Cell, CellGuard, CellRef, WinningReply};
use crate::params::Overrides;
use sr_sdk::{Ctx, SipMsg};

/// tm's per-message state.
#[derive(Debug, Default)]
pub struct TxCtx {
    /// The transaction of this request (after `t_newtran`/`t_relay`, or a
    /// successful lookup).
    pub cell: Option<CellRef>,
    /// The cell, checked out by the tm route runner (failure, onreply,
    /// branch routes).
    pub held: Option<CellGuard>,
    /// `$T_branch_idx` in branch_route and onreply_route.
    pub branch: Option<usize>,
    /// The reply being processed (onreply_route) or the winning one
    /// (failure_route).
    pub reply: Option<WinningReply>,
    /// Routes armed by `t_on_*` for the next relay.
    pub armed: Armed,
    /// `t_set_fr` and friends, before the transaction exists.
    pub overrides: Overrides,
    /// `t_set_auto_inv_100`.
    pub auto_inv_100: Option<bool>,
    /// `t_set_no_e2e_cancel_reason`, before the transaction exists
    /// (whether the CANCEL's Reason is copied).
    pub e2e_cancel_reason: Option<bool>,
    /// `t_set_disable_internal_reply(1)`, or `t_replicate` running: a
    /// relay that sends nothing does not answer the caller itself.
    pub no_internal_reply: bool,
    /// The reply a relay that sent nothing owes the caller (Kamailio's
    /// delayed error reply), sent when request_route ends unless the
    /// transaction was answered by then.
    pub delayed_error: Option<(u16, String)>,
    /// Running in failure_route.
    pub in_failure: bool,
    /// `t_relay` already started a new leg in this failure_route run.
    pub leg_started: bool,
    /// The transaction's id, for a branch_route's copy of the request
    /// (which holds no reference to the cell).
    pub cell_id: Option<u64>,
    /// The server transaction key of the request, made once (see
    /// [`crate::table::server_key_of`]), with the start and length of the
    /// text it was made from (a message parsed again gets its own).
    pub key: Option<(usize, usize, Option<sip_txn::TxKey>)>,
}

/// tm's state of this message, created on first use.
pub fn tx(msg: &mut SipMsg) -> &mut TxCtx {
    if msg.ext.get::<TxCtx>().is_none() {
        msg.ext.insert(TxCtx::default());
    }
    msg.ext
        .get_mut::<TxCtx>()
        .unwrap_or_else(|| unreachable!("inserted just above"))
}

/// Runs `f` on the transaction of this message: the held cell, or the
/// referenced one checked out for the call. `None` without a transaction.
pub fn with_cell<R>(ctx: &mut Ctx<'_>, f: impl FnOnce(&mut Cell) -> R) -> Option<R> {
    let t = ctx.msg.ext.get_mut::<TxCtx>()?;
    if let Some(g) = t.held.as_mut() {
        return Some(f(g));
    }
    let r = t.cell.clone()?;
    let mut g = r.take()?;
    Some(f(&mut g))
}

/// Whether this message has a transaction.
pub fn has_cell(msg: &SipMsg) -> bool {
    msg.ext
        .get::<TxCtx>()
        .is_some_and(|t| t.held.is_some() || t.cell.is_some())
}
