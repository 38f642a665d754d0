//! # sr-core: the siprouter runtime
//!
//! Loads the modules named by a `kamailio.cfg` (in-tree ones by name, others
//! from shared libraries), applies their parameters, runs their lifecycle
//! hooks, compiles the routing script against their exports, and runs it
//! for every message received on the configured sockets. Implements the
//! [`sr_sdk::Core`] services modules use.

pub mod core_module;
pub mod core_rpc_blst;
pub mod core_rpc_info;
pub mod core_stats;
pub mod dns;
pub mod dns_srv;
pub mod myself;
pub mod outbound;
pub mod receive;
pub mod registry;
pub mod runtime;
pub mod script;
pub mod settings;
pub mod startup;
pub mod tls;
pub mod tls_cert;
mod tls_pv;
mod tls_rpc;
pub mod transport;
pub mod udp_batch;
pub mod udp_pace;
pub mod udp_send_queue;
pub mod udp_steer;
mod via_xavp;
pub mod ws_codec;
mod ws_conns;

pub use runtime::Runtime;
pub use startup::{load, start, ExternalLoader, InTree, Options, Overrides, Server};
