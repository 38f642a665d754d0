//! # sip-msg: SIP messages for siprouter
//!
//! A zero-copy parser, a lump-style editor and a serializer for SIP
//! (RFC 3261) messages, with no I/O and no clock.
//!
//! - [`Message::parse`] reads a datagram or a framed stream message into a
//!   [`Message`] that borrows from the buffer: start line, headers in their
//!   original order (compact names understood), body by Content-Length.
//! - Header values are decoded only when asked for ([`Message::top_via`],
//!   [`Message::from`], [`Message::cseq`], [`Message::contacts`], ...):
//!   headers nobody reads are forwarded byte-for-byte.
//! - [`Uri`] parses `sip:`, `sips:`, `tel:` and opaque URIs and compares
//!   them as RFC 3261 19.1.4 says.
//! - [`edit::Edits`] records changes against the original buffer (Kamailio's
//!   "lumps") and applies them when the outgoing bytes are built.
//! - [`build`] makes replies, CANCEL and ACK from a request.
//! - [`framer::StreamFramer`] cuts messages out of a TCP/TLS byte stream.
//! - Every fault is a [`ParseError`] that names it and maps to the status
//!   code a server answers with. Nothing here panics on any input.
//!
//! ```
//! use sip_msg::Message;
//! let raw = b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n\
//! Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKhjhs8ass877\r\n\
//! Max-Forwards: 70\r\nTo: <sip:carol@chicago.com>\r\n\
//! From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
//! Call-ID: a84b4c76e66710\r\nCSeq: 63104 OPTIONS\r\nContent-Length: 0\r\n\r\n";
//! let msg = Message::parse(raw).unwrap();
//! assert_eq!(msg.top_via().unwrap().branch(), Some("z9hG4bKhjhs8ass877"));
//! assert_eq!(msg.from().unwrap().tag(), Some("1928301774"));
//! assert_eq!(msg.cseq().unwrap().seq, 63104);
//! ```
#![forbid(unsafe_code)]

pub mod access;
pub mod build;
mod decoded;
pub mod edit;
pub mod error;
pub mod framer;
#[doc(hidden)]
pub mod fuzz_support;
pub mod header_name;
pub mod headers;
pub mod message;
pub mod method;
pub mod owned;
pub mod params;
mod rebase;
pub mod scan;
pub mod text;
pub mod uri;
mod uri_scan;

pub use error::ParseError;
pub use header_name::HeaderName;
pub use message::{Header, Message, ParseOptions, StartLine, DEFAULT_MAX_SIZE};
pub use method::Method;
pub use owned::OwnedMessage;
pub use uri::{Host, Scheme, Uri};
