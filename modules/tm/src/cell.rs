//! A transaction ("cell"): the proxy state, the request cloned at relay
//! time (with the script's edits, flags and AVPs), where replies go and
//! where each branch went, and the routes armed for it.
//!
//! A cell is owned by one thread at a time: [`CellBox::take`] checks it
//! out (others wait), and the [`CellGuard`] puts it back when dropped. A
//! route run while the cell is checked out finds it in the message's
//! extensions ([`crate::ctx::TxCtx`]), so `t_relay` in failure_route or
//! `$T_reply_code` in onreply_route reach it without locking again.

use crate::proxy::Proxy;
use bytes::Bytes;
use sip_txn::{Instant, Timed, TxKey};
use sr_sdk::{Branch, Dest, RouteId, SipMsg};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The routes armed for a transaction (`t_on_failure` and friends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Armed {
    /// `failure_route`.
    pub failure: Option<RouteId>,
    /// `onreply_route`.
    pub reply: Option<RouteId>,
    /// `branch_route`.
    pub branch: Option<RouteId>,
    /// `event_route[tm:branch-failure:...]`.
    pub branch_failure: Option<RouteId>,
}

/// One outgoing branch as the module sees it.
#[derive(Debug, Clone)]
pub struct BranchOut {
    /// Where its requests go.
    pub dest: Dest,
    /// Its Request-URI.
    pub uri: String,
    /// Its branch flags (`$bf`) as it left; onreply_route sees and
    /// changes them, as in Kamailio.
    pub flags: u32,
    /// The target's URI before branch_route, and its location record
    /// (`ruid`), which `append_branches` compares new targets with.
    pub target: (String, Option<String>),
    /// The location record it was sent to (`$T_reply_ruid`) and its
    /// `+sip.instance` (`t_next_contact_flow`), from the target.
    pub location: (Option<String>, Option<String>),
    /// `event_route[tm:branch-failure:...]` armed when it was created
    /// (Kamailio copies the transaction's into each branch).
    pub on_branch_failure: Option<RouteId>,
}

impl BranchOut {
    /// Whether this branch went to `t`: the same URI (before branch_route)
    /// and, when both are known, the same location record (Kamailio's
    /// `t_append_branches` test).
    pub fn asked_for(&self, t: &Branch) -> bool {
        let uri = if self.target.0.is_empty() {
            &self.uri
        } else {
            &self.target.0
        };
        *uri == t.uri
            && match (&self.target.1, &t.ruid) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// The transaction data.
#[derive(Debug)]
pub struct Cell {
    /// Unique id (also in our Via branches).
    pub id: u64,
    /// The server transaction key.
    pub key: TxKey,
    /// The request method.
    pub method: String,
    /// The proxy state machine.
    pub proxy: Proxy,
    /// The request as cloned into the transaction.
    pub req: SipMsg,
    /// Where replies go.
    pub up: Dest,
    /// The branches' destinations, by index.
    pub out: Vec<BranchOut>,
    /// Armed routes.
    pub armed: Armed,
    /// Our To-tag for local replies.
    pub to_tag: LocalTag,
    /// The final reply was counted in the statistics.
    pub counted: bool,
    /// Created at.
    pub created: std::time::Instant,
    /// `t_relay` was called (branches exist or were tried).
    pub relayed: bool,
    /// `t_set_auto_inv_100` override.
    pub auto_inv_100: Option<bool>,
    /// The first final reply was reported to the callbacks.
    pub final_reported: bool,
    /// `t_save_lumps` kept the request's edits: a later `t_relay` keeps
    /// them (failure-route branches start from them).
    pub lumps_saved: bool,
    /// `t_set_no_e2e_cancel_reason` override: whether the caller's CANCEL
    /// Reason goes into our CANCELs (`None`: the `e2e_cancel_reason`
    /// parameter).
    pub e2e_cancel_reason: Option<bool>,
}

impl Cell {
    /// A new transaction for request `req` (key `key`), relaying nothing
    /// yet, its replies going to `up`.
    pub fn new(id: u64, key: TxKey, method: String, proxy: Proxy, req: SipMsg, up: Dest) -> Cell {
        Cell {
            id,
            key,
            method,
            proxy,
            req,
            up,
            out: Vec::new(),
            armed: Armed::default(),
            to_tag: LocalTag::default(),
            counted: false,
            created: std::time::Instant::now(),
            relayed: false,
            auto_inv_100: None,
            final_reported: false,
            lumps_saved: false,
            e2e_cancel_reason: None,
        }
    }
}

/// Our To-tag for the replies a transaction makes itself, computed from
/// its request the first time one needs it (most transactions never do).
#[derive(Debug, Default)]
pub struct LocalTag(std::cell::OnceCell<String>);

impl LocalTag {
    /// The tag for the transaction `id` of request `req`.
    pub fn get(&self, req: &SipMsg, id: u64) -> &str {
        self.0.get_or_init(|| crate::relay::to_tag(req, id))
    }
}

/// Pushes onto a per-transaction vector, growing it 1, 2, 4, ... instead of
/// the standard library's first step of 4: almost every transaction has one
/// branch, and tens of thousands of them are alive under load.
pub(crate) fn push_tight<T>(v: &mut Vec<T>, item: T) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len().max(1));
    }
    v.push(item);
}

/// Copies a message's routing state (everything but module extensions,
/// the same message id) into a new message over the same original, with room for more edits
/// (a branch's, a failure route's).
pub fn clone_msg(m: &SipMsg) -> Option<SipMsg> {
    copy_msg(m, false)
}

/// [`clone_msg`] for the copy a transaction keeps (alive for seconds, not
/// edited again): `m`'s original is shared first, so the copy costs a
/// reference count, and its edits take no spare room.
pub fn keep_msg(m: &mut SipMsg) -> Option<SipMsg> {
    m.share();
    copy_msg(m, true)
}

/// A copy of `base` (its original bytes and edits) with the rest of the
/// routing state (flags, AVPs, URIs, ...) of `state`: for `t_save_lumps`,
/// when the request was parsed again since (its saved edits are against
/// the old bytes, which `base` keeps).
pub fn keep_msg_with_state_of(base: &mut SipMsg, state: &SipMsg) -> Option<SipMsg> {
    base.share();
    let mut n = base.over_same_original(state.id)?;
    n.edits = base.edits.clone_exact();
    Some(with_state(n, state))
}

/// `n` (a message over some original, with its edits) given `m`'s routing
/// state.
fn with_state(mut n: SipMsg, m: &SipMsg) -> SipMsg {
    n.new_uri = m.new_uri.clone();
    n.dst_uri = m.dst_uri.clone();
    n.flags = m.flags;
    n.xflags = m.xflags;
    n.bflags = m.bflags;
    n.branches = m.branches.clone();
    n.path = m.path.clone();
    n.ruri_location = m.ruri_location.clone();
    n.force_send_socket = m.force_send_socket.clone();
    n.reply_headers = m.reply_headers.clone();
    n.reply_body = m.reply_body.clone();
    n.avps = m.avps.clone();
    n.xavps = m.xavps.clone();
    n.fwd_flags = m.fwd_flags;
    n.reply_flags = m.reply_flags;
    n.force_rport = m.force_rport;
    n.local_rport = m.local_rport;
    n.via_srvid = m.via_srvid;
    n.via_xavp_params = m.via_xavp_params;
    n.via_xavp_fields = m.via_xavp_fields;
    n.advertised = m.advertised.clone();
    n.last_error = m.last_error.clone();
    n.send_fixups = m.send_fixups;
    n
}

fn copy_msg(m: &SipMsg, exact: bool) -> Option<SipMsg> {
    let mut n = m.over_same_original(m.id)?;
    n.edits = if exact {
        m.edits.clone_exact()
    } else {
        m.edits.clone()
    };
    Some(with_state(n, m))
}

/// The shared box a cell lives in.
#[derive(Debug)]
pub struct CellBox {
    /// Cell id.
    pub id: u64,
    slot: Mutex<Slot>,
    cv: Condvar,
    /// Next deadline in ms of the tm clock (0: none), for the table.
    deadline: AtomicU64,
    /// Over: remove from the table.
    done: AtomicBool,
    /// Still counted in `active_transactions`.
    active: AtomicBool,
    key: TxKey,
}

/// A shared reference to a cell.
pub type CellRef = Arc<CellBox>;

/// How long a thread waiting for a busy cell sleeps before it looks again
/// (a safety net: putting the cell back wakes it). Long in unit tests, so
/// that a lost wake-up shows as a stall instead of being hidden by it.
const WAIT_SLICE: Duration = if cfg!(test) {
    Duration::from_secs(10)
} else {
    Duration::from_millis(50)
};

/// The cell when nobody has it checked out, and how many threads wait for
/// it (so that putting it back wakes someone only when someone waits: a
/// condition variable's notify is a system call even with no waiter).
#[derive(Debug, Default)]
struct Slot {
    cell: Option<Box<Cell>>,
    waiters: u32,
    /// The thread that checked the cell out: the same thread asking for
    /// it again (a module called from a route running on it) would wait
    /// for itself.
    holder: Option<std::thread::ThreadId>,
}

thread_local! {
    /// This thread's id, read once (`thread::current()` costs an `Arc`
    /// clone at each call).
    static THREAD: std::thread::ThreadId = std::thread::current().id();
}

fn this_thread() -> std::thread::ThreadId {
    THREAD.with(|t| *t)
}

impl CellBox {
    /// A box holding `cell`.
    pub fn new(cell: Cell) -> CellRef {
        let id = cell.id;
        let b = Arc::new(CellBox {
            id,
            key: cell.key.clone(),
            active: AtomicBool::new(true),
            slot: Mutex::new(Slot::default()),
            cv: Condvar::new(),
            deadline: AtomicU64::new(0),
            done: AtomicBool::new(false),
        });
        let mut c = Box::new(cell);
        b.sync(&mut c);
        b.slot.lock().unwrap_or_else(|e| e.into_inner()).cell = Some(c);
        b
    }

    /// Checks the cell out, waiting while another thread has it. `None`
    /// when the cell is gone (freed) or stayed busy for seconds.
    pub fn take(self: &Arc<Self>) -> Option<CellGuard> {
        let mut g = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let mut waited = 0;
        let me = this_thread();
        loop {
            if let Some(c) = g.cell.take() {
                g.holder = Some(me);
                return Some(CellGuard {
                    owner: self.clone(),
                    cell: Some(c),
                });
            }
            if self.done.load(Ordering::Acquire) || waited > 100 || g.holder == Some(me) {
                return None;
            }
            g.waiters += 1;
            let (ng, _) = self
                .cv
                .wait_timeout(g, WAIT_SLICE)
                .unwrap_or_else(|e| e.into_inner());
            g = ng;
            g.waiters -= 1;
            waited += 1;
        }
    }

    fn put(&self, c: Box<Cell>) {
        let mut g = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        g.cell = Some(c);
        g.holder = None;
        let waiting = g.waiters > 0;
        drop(g);
        if waiting {
            self.cv.notify_all();
        }
    }

    /// Copies the cell's deadline and end into the atomics the table reads.
    pub fn sync(&self, c: &mut Cell) {
        let d = c.proxy.poll_timeout().map_or(0, |d| d.as_millis().max(1));
        self.deadline.store(d, Ordering::Release);
        if c.proxy.is_done() {
            self.done.store(true, Ordering::Release);
        }
    }

    /// The server key of the cell.
    pub fn key(&self) -> Option<&TxKey> {
        Some(&self.key)
    }

    /// Stops counting the cell as active; true the first time.
    pub fn clear_active(&self) -> bool {
        self.active.swap(false, Ordering::AcqRel)
    }

    /// Whether the transaction is over.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// A cell as stored in the cells table (deadline and end read from the
/// box's atomics, so the table never waits for a cell).
#[derive(Debug, Clone)]
pub struct CellEntry(pub CellRef);

impl Timed for CellEntry {
    fn poll_timeout(&self) -> Option<Instant> {
        match self.0.deadline.load(Ordering::Acquire) {
            0 => None,
            d => Some(Instant::from_millis(d)),
        }
    }
    fn is_terminated(&self) -> bool {
        self.0.is_done()
    }
}

/// A checked-out cell; returned to its box on drop.
#[derive(Debug)]
pub struct CellGuard {
    owner: CellRef,
    cell: Option<Box<Cell>>,
}

impl CellGuard {
    /// The box.
    pub fn owner(&self) -> &CellRef {
        &self.owner
    }
}

impl std::ops::Deref for CellGuard {
    type Target = Cell;
    fn deref(&self) -> &Cell {
        self.cell
            .as_deref()
            .unwrap_or_else(|| unreachable!("a guard always holds its cell until dropped"))
    }
}

impl std::ops::DerefMut for CellGuard {
    fn deref_mut(&mut self) -> &mut Cell {
        self.cell
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("a guard always holds its cell until dropped"))
    }
}

impl Drop for CellGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.cell.take() {
            self.owner.sync(&mut c);
            self.owner.put(c);
        }
    }
}

/// A key entry in the server-key index: which cell.
#[derive(Debug, Clone)]
pub struct KeyEntry(pub CellRef);

impl Timed for KeyEntry {
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn is_terminated(&self) -> bool {
        false
    }
}

/// A received reply kept for `$T_rpl` and `t_check_status` in
/// failure_route.
#[derive(Debug, Clone)]
pub struct WinningReply {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// The reply bytes, when one was received (not for a local 408).
    pub bytes: Option<Bytes>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ProxyConfig;

    fn cell(id: u64) -> Cell {
        let ms = Duration::from_millis;
        let cfg = ProxyConfig::kamailio(ms(5000), ms(30000), ms(500), ms(4000), ms(5000));
        let raw = "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let rcv = sr_sdk::RecvInfo::loopback();
        Cell::new(
            id,
            TxKey::client("z9hG4bK1", sip_txn::Method::Options),
            "OPTIONS".into(),
            Proxy::new(cfg, false, false, Instant::ZERO),
            SipMsg::parse(Bytes::from_static(raw.as_bytes()), rcv, id).expect("parses"),
            Dest::new(sr_sdk::Proto::Udp, rcv.src),
        )
    }

    #[test]
    fn a_waiting_thread_gets_the_cell_when_it_is_put_back() {
        let b = CellBox::new(cell(7));
        let g = b.take().expect("free");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.take().map(|g| g.id));
            // Until the waiter waits, putting back needs no wake-up.
            while b.slot.lock().map(|s| s.waiters).unwrap_or(0) == 0 {
                std::thread::yield_now();
            }
            let put_back = std::time::Instant::now();
            drop(g);
            assert_eq!(waiter.join().expect("waiter"), Some(7));
            // Woken by the put-back, not by its 10 s wait running out.
            assert!(put_back.elapsed() < Duration::from_secs(5));
        });
        assert_eq!(b.slot.lock().map(|s| s.waiters).unwrap_or(9), 0);
        assert!(b.take().is_some(), "back in its box");
    }

    #[test]
    fn push_tight_grows_one_two_four() {
        let mut v: Vec<u64> = Vec::new();
        let mut caps = Vec::new();
        for i in 0..5 {
            push_tight(&mut v, i);
            caps.push(v.capacity());
        }
        assert_eq!(v, [0, 1, 2, 3, 4]);
        assert_eq!(caps, [1, 2, 4, 4, 8]);
    }
}
