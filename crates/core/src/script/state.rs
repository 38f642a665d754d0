//! Per-worker script state: `$var` slots (kept between messages, as
//! Kamailio's `$var` is per process), the last return code, and cached
//! time.

use sr_sdk::Value;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

fn slots() -> &'static Mutex<HashMap<String, usize>> {
    static SLOTS: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    SLOTS.get_or_init(Default::default)
}

/// The slot of `$var(name)`; names keep their slot across reloads.
pub fn var_slot(name: &str) -> usize {
    let mut m = slots().lock().unwrap_or_else(|e| e.into_inner());
    let n = m.len();
    *m.entry(name.to_string()).or_insert(n)
}

/// The `$var` names the configuration uses, with their slots, in slot
/// order.
pub fn var_names() -> Vec<(String, usize)> {
    let m = slots().lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<(String, usize)> = m.iter().map(|(k, s)| (k.clone(), *s)).collect();
    v.sort_by_key(|x| x.1);
    v
}

/// The slot of `$var(name)` when the configuration uses that name.
pub fn var_lookup(name: &str) -> Option<usize> {
    let m = slots().lock().unwrap_or_else(|e| e.into_inner());
    m.get(name).copied()
}

/// Where the request an `onsend_route` runs for is going.
#[derive(Debug, Clone, Copy)]
pub struct SendDest {
    /// The local socket it leaves from, if known.
    pub local: Option<std::net::SocketAddr>,
    /// Its destination.
    pub to: std::net::SocketAddr,
    /// Transport.
    pub proto: sr_sdk::Proto,
}

thread_local! {
    static SEND_DEST: Cell<Option<SendDest>> = const { Cell::new(None) };
    static VARS: RefCell<Vec<Value<'static>>> = const { RefCell::new(Vec::new()) };
    static LAST_RC: Cell<i32> = const { Cell::new(1) };
}

/// Reads a `$var` of this worker (0 when never set, as Kamailio).
pub fn var_get(slot: usize) -> Value<'static> {
    VARS.with(|v| v.borrow().get(slot).cloned().unwrap_or(Value::Int(0)))
}

/// Sets a `$var` of this worker.
pub fn var_set(slot: usize, val: Value<'static>) {
    VARS.with(|v| {
        let mut v = v.borrow_mut();
        if v.len() <= slot {
            v.resize(slot + 1, Value::Int(0));
        }
        v[slot] = val;
    })
}

/// Sets (or clears) the destination `onsend_route` reports.
pub fn set_send_dest(d: Option<SendDest>) {
    SEND_DEST.with(|c| c.set(d));
}

/// The destination of the request `onsend_route` runs for.
pub fn send_dest() -> Option<SendDest> {
    SEND_DEST.with(Cell::get)
}

/// The last return code (`$rc`).
pub fn last_rc() -> i32 {
    LAST_RC.with(Cell::get)
}

/// Records the last return code.
pub fn set_last_rc(rc: i32) {
    LAST_RC.with(|c| c.set(rc));
}

static START: AtomicI64 = AtomicI64::new(0);
static CACHED: AtomicI64 = AtomicI64::new(0);

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Records the startup time.
pub fn mark_start() {
    START.store(now_secs(), Ordering::Relaxed);
}

/// The startup time (`$TS`).
pub fn start_time() -> i64 {
    START.load(Ordering::Relaxed)
}

/// Refreshes the cached time (once per message).
pub fn touch_time() {
    CACHED.store(now_secs(), Ordering::Relaxed);
}

/// The time cached for the current message (`$Ts`).
pub fn cached_time() -> i64 {
    match CACHED.load(Ordering::Relaxed) {
        0 => now_secs(),
        t => t,
    }
}
