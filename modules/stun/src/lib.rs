//! Module `stun` (Kamailio's): answers STUN Binding requests that arrive
//! on the SIP UDP sockets (see [`binding`]), so that a client can learn
//! its public address, or keep its NAT binding open, on the SIP port.
//! No parameters, functions or RPC.
#![forbid(unsafe_code)]

pub mod binding;

use sr_sdk::prelude::*;
use std::sync::{Arc, OnceLock};

/// The module definition.
pub fn module() -> ModuleDef {
    let software: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let s = software.clone();
    ModuleDef::new("stun")
        .on_init(move |core| {
            let _ = s.set(format!("Server: siprouter ({})", core.version()));
            Ok(())
        })
        .on_stun_in(move |buf, rcv| {
            let sw = software.get().map_or("Server: siprouter", String::as_str);
            binding::answer(buf, rcv.src, sw)
        })
}
