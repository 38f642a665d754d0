//! # outbound: RFC 5626 flow tokens for an edge proxy
//!
//! Kamailio's `outbound` module. It exports no script functions: when it
//! is loaded, `rr`'s `record_route()` and `path`'s `add_path()` put a
//! flow token (the connection the request came in on, signed) in the
//! user part of the URI they add, and `loose_route()` sends a request
//! whose top Route is ours and carries a token back down that flow
//! (returning 2), or refuses a tampered token (returning -2). See
//! [`use_outbound`] for when a request "uses outbound" and [`token`] for
//! the token itself.
//!
//! Parameters: `force_outbound_flag`, `force_no_outbound_flag` (message
//! flags that force the decision either way, -1 for none) and
//! `flow_token_secret` (the key is its SHA-1, so that tokens survive a
//! restart and several proxies can share them; a random key without it).
#![forbid(unsafe_code)]

pub mod detect;
pub mod token;

pub use detect::use_outbound;
pub use token::{Flow, TokenError};

use sr_sdk::prelude::*;
use sr_sdk::RecvInfo;
use std::sync::{Arc, OnceLock, RwLock};

/// The name the module publishes [`ObApi`] under.
pub const OB_API: &str = "outbound";

/// What outbound offers rr and path (Kamailio's `bind_ob`).
#[derive(Debug)]
pub struct ObApi {
    key: [u8; 20],
    force_flag: i64,
    force_no_flag: i64,
}

impl ObApi {
    /// An API with this key and the two flags (-1: not set).
    pub fn new(key: [u8; 20], force_flag: i64, force_no_flag: i64) -> ObApi {
        ObApi {
            key,
            force_flag,
            force_no_flag,
        }
    }

    /// The token of the flow `rcv` describes.
    pub fn encode(&self, rcv: &RecvInfo) -> String {
        token::encode(
            &self.key,
            &Flow {
                proto: rcv.proto,
                dst: rcv.dst,
                src: rcv.src,
            },
        )
    }

    /// The flow a token names, if it is one of ours.
    pub fn decode(&self, token: &str) -> Result<Flow, TokenError> {
        token::decode(&self.key, token)
    }

    /// Whether the request uses outbound: 0 no, 1 yes (a token of the
    /// flow it came in on is to be added), 2 yes, and it came from the
    /// far side of an existing flow (the token in its top Route is to be
    /// copied).
    pub fn use_outbound(&self, core: &dyn Core, msg: &SipMsg) -> u8 {
        let flag = |f: i64| (0..32).contains(&f) && msg.flags & (1u32 << f) != 0;
        if flag(self.force_flag) {
            return 1;
        }
        if flag(self.force_no_flag) {
            return 0;
        }
        use_outbound(self, core, msg)
    }
}

/// The API another module uses, looked up once (at its first use, when
/// every module has started): `None` when outbound is not loaded.
#[derive(Debug, Default, Clone)]
pub struct ObBinding(Arc<OnceLock<Option<Arc<ObApi>>>>);

impl ObBinding {
    /// outbound's API, if the module is loaded.
    pub fn get(&self, core: &dyn Core) -> Option<&ObApi> {
        self.0
            .get_or_init(|| bind::<ObApi>(core, OB_API))
            .as_deref()
    }
}

fn check_flag(name: &str, v: i64) -> Result<(), String> {
    if v == -1 || (0..32).contains(&v) {
        Ok(())
    } else {
        Err(format!("outbound: bad {name} value ({v})"))
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let force = params::int_cell(-1);
    let force_no = params::int_cell(-1);
    let secret: Arc<RwLock<String>> = params::str_cell("");
    let (f, fnf, s) = (force.clone(), force_no.clone(), secret.clone());
    ModuleDef::new("outbound")
        .param("force_outbound_flag", ParamKind::Int, params::int(&force))
        .param(
            "force_no_outbound_flag",
            ParamKind::Int,
            params::int(&force_no),
        )
        .param("flow_token_secret", ParamKind::Str, params::string(&secret))
        .on_init(move |core| {
            let (flag, no_flag) = (params::get_int(&f), params::get_int(&fnf));
            check_flag("force_outbound_flag", flag)?;
            check_flag("force_no_outbound_flag", no_flag)?;
            let secret = params::get_str(&s);
            let key = if secret.is_empty() {
                token::random_key()
            } else {
                token::key_from_secret(&secret)
            };
            core.register_api(OB_API, Arc::new(ObApi::new(key, flag, no_flag)));
            Ok(())
        })
}
