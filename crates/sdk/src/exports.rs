//! What a module exports, as data: the seed's `module_exports` in Rust.
//!
//! ```
//! use sr_sdk::prelude::*;
//! let hits = Stat::new();
//! let h = hits.clone();
//! let def = ModuleDef::new("mymod")
//!     .cmd("my_func", 1, RouteType::REQUEST | RouteType::FAILURE, Some(fixup::f(fixup::spve)),
//!          move |ctx, p| { h.inc(); if p[0].str(ctx).is_empty() { -1 } else { 1 } })
//!     .stat("hits", hits);
//! assert_eq!(def.cmds[0].params, 1);
//! ```

use crate::core_api::Core;
use crate::ctx::Ctx;
use crate::fixup::{Fixed, FixupFn};
use crate::msg::{Dest, RecvInfo};
use crate::route::RouteType;
use crate::rpc::{RpcError, RpcExport};
use crate::stats::{Stat, StatExport, StatSource};
use crate::value::Value;
use serde_json::Value as Json;
use std::fmt;
use std::sync::Arc;

/// A script function handler: the context and the prepared parameters in,
/// Kamailio's return convention out (above 0 true, below 0 false, 0 stops
/// the script).
pub type CmdFn = Arc<dyn Fn(&mut Ctx<'_>, &[Fixed]) -> i32 + Send + Sync>;

/// A script function a module exports.
#[derive(Clone)]
pub struct CmdExport {
    /// The name used in the script.
    pub name: String,
    /// Number of parameters. A name may be exported several times with
    /// different counts (overloading by arity, as Kamailio allows).
    pub params: usize,
    /// Prepares each parameter once at load; `None` keeps each parameter
    /// as a string that may contain pseudo-variables ([`crate::fixup::spve`]).
    pub fixup: Option<FixupFn>,
    /// The handler.
    pub handler: CmdFn,
    /// Route types it may be called from.
    pub flags: RouteType,
}

impl fmt::Debug for CmdExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {:?}", self.name, self.params, self.flags)
    }
}

/// A value given with `modparam`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}

/// Which values a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// An integer (`PARAM_INT`).
    Int,
    /// A string (`PARAM_STRING` / `PARAM_STR`).
    Str,
    /// Either.
    Any,
}

/// A setter called for each `modparam` of the parameter.
pub type ParamFn = Arc<dyn Fn(ParamValue) -> Result<(), String> + Send + Sync>;

/// A module parameter.
#[derive(Clone)]
pub struct ParamExport {
    /// Name used in `modparam`.
    pub name: String,
    /// Accepted type.
    pub kind: ParamKind,
    /// Called for each `modparam` occurrence, in config order; a later
    /// value replaces an earlier one unless the setter accumulates
    /// (Kamailio's `PARAM_USE_FUNC` parameters such as htable's `htable`).
    pub set: ParamFn,
}

impl fmt::Debug for ParamExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.name, self.kind)
    }
}

/// The name part of a module pseudo-variable: `$name(inner)[index]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PvName {
    /// The text inside the parentheses, if any.
    pub inner: Option<String>,
    /// The index, if any (`None` for no index; `i64::MIN` for `[*]`).
    pub index: Option<i64>,
}

/// Reads a module pseudo-variable.
pub type PvGetFn = Arc<dyn Fn(&mut Ctx<'_>, &PvName) -> Value<'static> + Send + Sync>;
/// Writes a module pseudo-variable.
pub type PvSetFn =
    Arc<dyn Fn(&mut Ctx<'_>, &PvName, Value<'_>) -> Result<(), String> + Send + Sync>;

/// Checks a module pseudo-variable's name when the script is loaded (a
/// Kamailio module's `parse_name`): an error refuses the configuration.
pub type PvCheckFn = Arc<dyn Fn(&PvName) -> Result<(), String> + Send + Sync>;

/// A pseudo-variable class a module exports (`$T_reply_code`, `$ulc(...)`).
#[derive(Clone)]
pub struct PvExport {
    /// Class name without `$`.
    pub name: String,
    /// Getter.
    pub get: PvGetFn,
    /// Setter, for writable ones.
    pub set: Option<PvSetFn>,
    /// Name check at load, if any.
    pub check: Option<PvCheckFn>,
}

impl fmt::Debug for PvExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.name)
    }
}

/// `mod_init`: runs once, in load order, before the workers start.
pub type InitFn = Arc<dyn Fn(&dyn Core) -> Result<(), String> + Send + Sync>;
/// `child_init(rank)`: runs in each worker thread (and for the special
/// ranks in their threads).
pub type ChildInitFn = Arc<dyn Fn(&dyn Core, i32) -> Result<(), String> + Send + Sync>;
/// `destroy`: runs once at shutdown, in reverse load order.
pub type DestroyFn = Arc<dyn Fn() + Send + Sync>;
/// The response hook: sees every received reply not dropped by
/// `reply_route`; returns true when it consumed the reply (the core then
/// does not forward it statelessly).
pub type ResponseFn = Arc<dyn Fn(&mut Ctx<'_>) -> bool + Send + Sync>;
/// The request hook (Kamailio's pre-script callback): sees every received
/// request that passed the core's checks, before `request_route`; returns
/// true when it consumed the request (the script does not run).
pub type RequestFn = Arc<dyn Fn(&mut Ctx<'_>) -> bool + Send + Sync>;
/// The received-data hook (Kamailio's `SREV_NET_DATA_IN`): sees every
/// message as it came off the network (datagram or framed stream message)
/// before it is parsed; returns the bytes to handle instead, or `None` to
/// leave them as they are. Topology hiding decodes here.
pub type NetDataInFn = Arc<dyn Fn(&[u8], &RecvInfo) -> Option<Vec<u8>> + Send + Sync>;
/// The STUN hook (Kamailio's `SREV_STUN_IN`): a UDP datagram whose first
/// byte is below 4 (no SIP message starts so) goes to the hooks instead
/// of the parser, before the received-data hooks; a hook's answer is sent
/// back to the sender from the socket it came in on. Without a hook such
/// datagrams are parsed (and dropped) as any other.
pub type StunInFn = Arc<dyn Fn(&[u8], &RecvInfo) -> Option<Vec<u8>> + Send + Sync>;
/// The unparsed-data hook (Kamailio's `SREV_RCV_NOSIP`): a received
/// message that does not parse as SIP (nor as HTTP) is offered to each
/// module's hook in load order until one returns true (it took the data:
/// no error reply is sent); otherwise the core answers or drops it as
/// usual. The nosip module runs its event route here.
pub type UnparsedFn = Arc<dyn Fn(&[u8], &RecvInfo) -> bool + Send + Sync>;
/// The sent-data hook (Kamailio's `SREV_NET_DATA_OUT`): sees every SIP
/// message about to be sent (replies, forwarded and local requests,
/// retransmissions) with its destination (whose `send_socket` is the
/// local socket it leaves from, when known); returns the bytes to send
/// instead, or `None`. Topology hiding encodes here, siptrace mirrors.
pub type NetDataOutFn = Arc<dyn Fn(&[u8], &Dest) -> Option<Vec<u8>> + Send + Sync>;

/// Everything a module exports (the seed's `struct module_exports`).
#[derive(Clone, Default)]
pub struct ModuleDef {
    /// Module name (used by `modparam`, `MOD_<name>`, statistics group).
    pub name: String,
    /// Script functions.
    pub cmds: Vec<CmdExport>,
    /// Parameters.
    pub params: Vec<ParamExport>,
    /// Statistics (group = module name).
    pub stats: Vec<StatExport>,
    /// RPC methods.
    pub rpcs: Vec<RpcExport>,
    /// Pseudo-variables.
    pub pvs: Vec<PvExport>,
    /// Reply hook.
    pub response: Option<ResponseFn>,
    /// Request hook (in-tree Rust modules; not carried over the C ABI).
    pub request: Option<RequestFn>,
    /// Request-done hook (Kamailio's post-script callback): runs when
    /// `request_route` of a received request ended (its return value is
    /// not used). In-tree Rust modules only, like `request`.
    pub request_done: Option<RequestFn>,
    /// Non-SIP message hook (Kamailio's `nonsip_msg_run_hooks`): an HTTP
    /// request received on a TCP or TLS connection is offered to each
    /// module's hook in load order until one returns true (xhttp). In-tree
    /// Rust modules only, like `request`.
    pub nonsip: Option<RequestFn>,
    /// Received-data hook ([`NetDataInFn`]), in-tree Rust modules only.
    pub net_data_in: Option<NetDataInFn>,
    /// STUN hook ([`StunInFn`]), in-tree Rust modules only.
    pub stun_in: Option<StunInFn>,
    /// Sent-data hook ([`NetDataOutFn`]), in-tree Rust modules only.
    pub net_data_out: Option<NetDataOutFn>,
    /// Unparsed-data hook ([`UnparsedFn`]), in-tree Rust modules only.
    pub unparsed: Option<UnparsedFn>,
    /// `mod_init`.
    pub init: Option<InitFn>,
    /// `child_init`.
    pub child_init: Option<ChildInitFn>,
    /// `destroy`.
    pub destroy: Option<DestroyFn>,
}

impl fmt::Debug for ModuleDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleDef")
            .field("name", &self.name)
            .field("cmds", &self.cmds)
            .field("params", &self.params)
            .field("stats", &self.stats.len())
            .field("rpcs", &self.rpcs)
            .field("pvs", &self.pvs)
            .finish()
    }
}

impl ModuleDef {
    /// Hands the definition to `f` and takes back what it returns: a
    /// builder chain split over functions (`def.rpc(..).pipe(more_rpcs)`).
    pub fn pipe(self, f: impl FnOnce(ModuleDef) -> ModuleDef) -> ModuleDef {
        f(self)
    }

    /// An empty module definition.
    pub fn new(name: &str) -> ModuleDef {
        ModuleDef {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Adds a script function.
    pub fn cmd<F>(
        mut self,
        name: &str,
        params: usize,
        flags: RouteType,
        fixup: Option<FixupFn>,
        handler: F,
    ) -> ModuleDef
    where
        F: Fn(&mut Ctx<'_>, &[Fixed]) -> i32 + Send + Sync + 'static,
    {
        self.cmds.push(CmdExport {
            name: name.to_string(),
            params,
            fixup,
            handler: Arc::new(handler),
            flags,
        });
        self
    }

    /// Adds a parameter with a setter.
    pub fn param<F>(mut self, name: &str, kind: ParamKind, set: F) -> ModuleDef
    where
        F: Fn(ParamValue) -> Result<(), String> + Send + Sync + 'static,
    {
        self.params.push(ParamExport {
            name: name.to_string(),
            kind,
            set: Arc::new(set),
        });
        self
    }

    /// Adds a counter or gauge.
    pub fn stat(mut self, name: &str, s: Stat) -> ModuleDef {
        self.stats.push(StatExport {
            name: name.to_string(),
            no_reset: false,
            source: StatSource::Value(s),
        });
        self
    }

    /// Adds a statistic that is never reset (gauges such as
    /// `inuse_transactions`).
    pub fn stat_no_reset(mut self, name: &str, s: Stat) -> ModuleDef {
        self.stats.push(StatExport {
            name: name.to_string(),
            no_reset: true,
            source: StatSource::Value(s),
        });
        self
    }

    /// Adds a statistic computed when read.
    pub fn stat_fn<F>(mut self, name: &str, f: F) -> ModuleDef
    where
        F: Fn() -> i64 + Send + Sync + 'static,
    {
        self.stats.push(StatExport {
            name: name.to_string(),
            no_reset: true,
            source: StatSource::Func(Arc::new(f)),
        });
        self
    }

    /// Adds an RPC method.
    pub fn rpc<F>(mut self, name: &str, doc: &str, handler: F) -> ModuleDef
    where
        F: Fn(&[Json]) -> Result<Json, RpcError> + Send + Sync + 'static,
    {
        self.rpcs.push(RpcExport {
            name: name.to_string(),
            doc: doc.to_string(),
            handler: Arc::new(handler),
        });
        self
    }

    /// Adds a read-only pseudo-variable class.
    pub fn pv<F>(mut self, name: &str, get: F) -> ModuleDef
    where
        F: Fn(&mut Ctx<'_>, &PvName) -> Value<'static> + Send + Sync + 'static,
    {
        self.pvs.push(PvExport {
            name: name.to_string(),
            get: Arc::new(get),
            set: None,
            check: None,
        });
        self
    }

    /// Adds a read-only pseudo-variable class whose names `check` reads
    /// when the script is loaded (a name it refuses stops the start).
    pub fn pv_checked<C, F>(mut self, name: &str, check: C, get: F) -> ModuleDef
    where
        C: Fn(&PvName) -> Result<(), String> + Send + Sync + 'static,
        F: Fn(&mut Ctx<'_>, &PvName) -> Value<'static> + Send + Sync + 'static,
    {
        self.pvs.push(PvExport {
            name: name.to_string(),
            get: Arc::new(get),
            set: None,
            check: Some(Arc::new(check)),
        });
        self
    }

    /// Adds a writable pseudo-variable class whose names `check` reads
    /// when the script is loaded.
    pub fn pv_rw_checked<C, G, S>(mut self, name: &str, check: C, get: G, set: S) -> ModuleDef
    where
        C: Fn(&PvName) -> Result<(), String> + Send + Sync + 'static,
        G: Fn(&mut Ctx<'_>, &PvName) -> Value<'static> + Send + Sync + 'static,
        S: Fn(&mut Ctx<'_>, &PvName, Value<'_>) -> Result<(), String> + Send + Sync + 'static,
    {
        self.pvs.push(PvExport {
            name: name.to_string(),
            get: Arc::new(get),
            set: Some(Arc::new(set)),
            check: Some(Arc::new(check)),
        });
        self
    }

    /// Adds a writable pseudo-variable class.
    pub fn pv_rw<G, S>(mut self, name: &str, get: G, set: S) -> ModuleDef
    where
        G: Fn(&mut Ctx<'_>, &PvName) -> Value<'static> + Send + Sync + 'static,
        S: Fn(&mut Ctx<'_>, &PvName, Value<'_>) -> Result<(), String> + Send + Sync + 'static,
    {
        self.pvs.push(PvExport {
            name: name.to_string(),
            get: Arc::new(get),
            set: Some(Arc::new(set)),
            check: None,
        });
        self
    }

    /// Sets `mod_init`.
    pub fn on_init<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&dyn Core) -> Result<(), String> + Send + Sync + 'static,
    {
        self.init = Some(Arc::new(f));
        self
    }

    /// Sets `child_init`.
    pub fn on_child_init<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&dyn Core, i32) -> Result<(), String> + Send + Sync + 'static,
    {
        self.child_init = Some(Arc::new(f));
        self
    }

    /// Sets `destroy`.
    pub fn on_destroy<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.destroy = Some(Arc::new(f));
        self
    }

    /// Sets the reply hook.
    pub fn on_response<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&mut Ctx<'_>) -> bool + Send + Sync + 'static,
    {
        self.response = Some(Arc::new(f));
        self
    }

    /// Sets the request hook, run before `request_route` (see
    /// [`RequestFn`]).
    pub fn on_request<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&mut Ctx<'_>) -> bool + Send + Sync + 'static,
    {
        self.request = Some(Arc::new(f));
        self
    }

    /// Sets the request-done hook (see [`ModuleDef::request_done`]).
    pub fn on_request_done<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&mut Ctx<'_>) -> bool + Send + Sync + 'static,
    {
        self.request_done = Some(Arc::new(f));
        self
    }

    /// Sets the non-SIP message hook (see [`ModuleDef::nonsip`]).
    pub fn on_nonsip<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&mut Ctx<'_>) -> bool + Send + Sync + 'static,
    {
        self.nonsip = Some(Arc::new(f));
        self
    }

    /// Sets the received-data hook (see [`NetDataInFn`]).
    pub fn on_net_data_in<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&[u8], &RecvInfo) -> Option<Vec<u8>> + Send + Sync + 'static,
    {
        self.net_data_in = Some(Arc::new(f));
        self
    }

    /// Sets the STUN hook (see [`StunInFn`]).
    pub fn on_stun_in<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&[u8], &RecvInfo) -> Option<Vec<u8>> + Send + Sync + 'static,
    {
        self.stun_in = Some(Arc::new(f));
        self
    }

    /// Sets the unparsed-data hook (see [`UnparsedFn`]).
    pub fn on_unparsed<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&[u8], &RecvInfo) -> bool + Send + Sync + 'static,
    {
        self.unparsed = Some(Arc::new(f));
        self
    }

    /// Sets the sent-data hook (see [`NetDataOutFn`]).
    pub fn on_net_data_out<F>(mut self, f: F) -> ModuleDef
    where
        F: Fn(&[u8], &Dest) -> Option<Vec<u8>> + Send + Sync + 'static,
    {
        self.net_data_out = Some(Arc::new(f));
        self
    }
}

/// Helpers for parameters stored in atomics or mutexes.
pub mod params {
    use super::ParamValue;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::{Arc, RwLock};

    /// A setter storing an integer (booleans as 0/1 too).
    pub fn int(cell: &Arc<AtomicI64>) -> impl Fn(ParamValue) -> Result<(), String> + Send + Sync {
        let cell = cell.clone();
        move |v| match v {
            ParamValue::Int(i) => {
                cell.store(i, Ordering::Relaxed);
                Ok(())
            }
            ParamValue::Str(s) => s
                .trim()
                .parse::<i64>()
                .map(|i| cell.store(i, Ordering::Relaxed))
                .map_err(|_| format!("'{s}' is not an integer")),
        }
    }

    /// A setter storing a string.
    pub fn string(
        cell: &Arc<RwLock<String>>,
    ) -> impl Fn(ParamValue) -> Result<(), String> + Send + Sync {
        let cell = cell.clone();
        move |v| {
            let s = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            *cell.write().map_err(|_| "poisoned".to_string())? = s;
            Ok(())
        }
    }

    /// A string parameter's cell, holding its default.
    pub fn str_cell(default: &str) -> Arc<RwLock<String>> {
        Arc::new(RwLock::new(default.to_string()))
    }

    /// An integer parameter's cell, holding its default.
    pub fn int_cell(default: i64) -> Arc<AtomicI64> {
        Arc::new(AtomicI64::new(default))
    }

    /// A string parameter's value now.
    pub fn get_str(cell: &RwLock<String>) -> String {
        cell.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// An integer parameter's value now.
    pub fn get_int(cell: &AtomicI64) -> i64 {
        cell.load(Ordering::Relaxed)
    }
}
