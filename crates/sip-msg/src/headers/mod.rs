//! Typed views of header values, decoded only when asked for.

pub mod auth;
pub mod cseq;
pub mod media;
pub mod name_addr;
pub mod via;

pub use auth::{AuthParams, AuthValue};
pub use cseq::CSeq;
pub use media::{EventValue, MediaType};
pub use name_addr::{parse_qvalue, ContactValue, NameAddr};
pub use via::{KnownParams, Via, MAGIC_COOKIE};
