//! # sr-testkit
//!
//! End-to-end test support: [`TestServer`] starts a real siprouter
//! (in-process, real sockets on 127.0.0.1) from a config text, and
//! [`UdpPeer`]/[`TcpPeer`] are test user agents that send and receive
//! real SIP messages. [`req`] builds well-formed requests;
//! [`default_config`] gives the shipped default configuration for a test.
#![forbid(unsafe_code)]

mod default_cfg;
pub mod kamailio;
pub mod mariadb;
pub mod media;
mod peer;
pub mod postgres;
pub mod redis;
pub mod rtpengine;
pub mod rtpproxy;
pub mod scene;
mod server;
mod ws_peer;

pub use default_cfg::{default_config, fresh_db};

/// Runs `sql` on the SQLite file `db` with the `sqlite3` command; what it
/// printed. Panics when it fails.
pub fn sqlite3(db: &std::path::Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything that arrives on `s` until its read timeout passes with
/// nothing more (`<EOF>` appended when the other end closed), as text.
pub fn read_stream(s: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                out.extend_from_slice(b"<EOF>");
                break;
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub use peer::{answer, from_caller, invite, probe_until, req, Reply, TcpPeer, UdpPeer};
pub use server::{free_port, TestServer};
pub use ws_peer::{WsPeer, WS_KEY};
