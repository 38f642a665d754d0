//! # sr-testkit
//!
//! End-to-end test support: [`TestServer`] starts a real siprouter
//! (in-process, real sockets on 127.0.0.1) from a config text, and
//! [`UdpPeer`]/[`TcpPeer`] are test user agents that send and receive
//! real SIP messages. [`req`] builds well-formed requests.
#![forbid(unsafe_code)]

mod peer;
mod server;

pub use peer::{answer, req, Reply, TcpPeer, UdpPeer};
pub use server::{free_port, TestServer};
