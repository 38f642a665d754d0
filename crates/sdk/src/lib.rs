//! # sr-sdk: the siprouter module API
//!
//! The one public API for modules, in-tree and loaded at run time alike.
//! A module declares its exports as data in a [`ModuleDef`] (the seed's
//! `module_exports`): script functions with their parameter count, fixup
//! and allowed route types; parameters set by `modparam`; statistics; RPC
//! methods; pseudo-variables; a reply hook; and the `mod_init`,
//! `child_init(rank)` and `destroy` hooks.
//!
//! Handlers receive a [`Ctx`]: the message being routed ([`SipMsg`]: the
//! parsed original, recorded edits, new Request-URI, destination, flags,
//! branches, AVPs) and the [`Core`] services (send replies, forward,
//! build requests, run routes, bind other modules' APIs, timers).
//!
//! Return values follow Kamailio: above 0 is true, below 0 false, 0 stops
//! the script.
#![forbid(unsafe_code)]

pub mod avp;
pub mod cfgtrace;
pub mod core_api;
pub mod ctx;
pub mod db;
pub mod dst_blocklist;
pub mod exports;
pub mod fixup;
pub mod hash;
pub mod http;
pub mod jsonc;
pub mod localtime;
pub mod log;
pub mod msg;
pub mod pcre;
pub mod route;
pub mod rpc;
pub mod stats;
pub mod tag;
pub mod text;
pub mod value;
pub mod xavp;

pub use core_api::{
    bind, BranchTarget, ConnEnd, ConnEndFn, Core, Keepalive, LateFailure, MyselfCheck, Outgoing,
    RouteId, RunResult, SendError, StreamConns, TlsSession, WsConnInfo, WsCounts,
};
pub use ctx::Ctx;
pub use exports::{CmdExport, ModuleDef, ParamExport, ParamKind, ParamValue, PvExport, PvName};
pub use fixup::{Arg, Fixed};
pub use msg::{
    same_instance, socket_addr, Branch, Dest, NewStatus, Proto, RecvInfo, RuriLocation,
    SavedReplyHeaders, SendFixup, SendFixups, SendInfo, SipMsg,
};
pub use route::{rank, RouteType};
pub use rpc::RpcError;
pub use serde_json;
pub use sip_msg;
pub use stats::Stat;
pub use value::Value;

/// The version of this module API. A module built against another major
/// version is refused at load time.
pub const API_VERSION: (u16, u16) = (1, 0);

/// Everything a module usually needs.
pub mod prelude {
    pub use crate::exports::params;
    pub use crate::fixup::{self, Arg, Fixed};
    pub use crate::{
        bind, lm_dbg, lm_err, lm_info, lm_notice, lm_warn, rank, Branch, Core, Ctx, Dest,
        ModuleDef, ParamKind, ParamValue, Proto, RouteType, RpcError, SipMsg, Stat, Value,
    };
    pub use serde_json::{json, Map as JsonMap, Value as Json};
    pub use sip_msg::{HeaderName, Message, Method};
}
