//! What rr offers other modules (Kamailio's `load_rr_api`): callbacks run
//! by `loose_route()` when the request's route set starts with our own
//! Route entry (Kamailio's `register_rrcb`), with that entry's
//! parameters — the dialog module finds its `did` there.

use sr_sdk::prelude::*;
use std::sync::{Arc, RwLock};

/// The name rr publishes [`RrApi`] under.
pub const RR_API: &str = "rr";

/// A loose_route callback: the request and our Route entry's parameters
/// (`;name=value...`, as `check_route_param` reads them).
pub type RrCallback = Arc<dyn Fn(&mut Ctx<'_>, &str) + Send + Sync>;

/// rr's API for other modules.
#[derive(Clone, Default)]
pub struct RrApi {
    /// Replaced on registration (at startup): each `loose_route` takes a
    /// reference count, not a copy of the list.
    callbacks: Arc<RwLock<Arc<Vec<RrCallback>>>>,
    append_fromtag: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for RrApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.callbacks.read().map_or(0, |v| v.len());
        write!(f, "RrApi({n} callbacks)")
    }
}

impl RrApi {
    /// rr's `append_fromtag` (uac's restore needs the From-tag in our
    /// Route).
    pub fn append_fromtag(&self) -> bool {
        self.append_fromtag
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets what [`Self::append_fromtag`] says (rr's `mod_init`).
    pub fn set_append_fromtag(&self, on: bool) {
        self.append_fromtag
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds a callback (from another module's `mod_init`).
    pub fn register_callback(&self, cb: RrCallback) {
        if let Ok(mut v) = self.callbacks.write() {
            let mut list = v.as_ref().clone();
            list.push(cb);
            *v = Arc::new(list);
        }
    }

    /// Runs the callbacks, in the order they were added.
    pub fn run(&self, ctx: &mut Ctx<'_>, params: &str) {
        let cbs = match self.callbacks.read() {
            Ok(v) if !v.is_empty() => Arc::clone(&v),
            _ => return,
        };
        for cb in cbs.iter() {
            cb(ctx, params);
        }
    }

    /// `add_rr_param(params)` for another module: to the Record-Route
    /// already added, else kept for the next `record_route`.
    pub fn add_rr_param(&self, ctx: &mut Ctx<'_>, params: &str) -> i32 {
        crate::record::add_rr_param(ctx, params)
    }
}
