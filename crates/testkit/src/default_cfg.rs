//! The shipped default configuration (etc/siprouter.cfg), made ready for a
//! test server: its port, HTTP and socket addresses and database replaced
//! by ones of the test's own.

use std::path::{Path, PathBuf};

/// The text of etc/siprouter.cfg with the SIP port left to
/// [`crate::TestServer`] (`{PORT}`), the RPC socket in the server's folder
/// (`{DIR}`), JSON-RPC over HTTP on `http_port` and SQLite in `db`.
pub fn default_config(db: &Path, http_port: u16) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../etc/siprouter.cfg"
    ))
    .expect("etc/siprouter.cfg");
    text.replace("#!trydef SIP_PORT 5060", "#!trydef SIP_PORT {PORT}")
        .replace("\"127.0.0.1:5080\"", &format!("\"127.0.0.1:{http_port}\""))
        .replace(
            "\"/tmp/siprouter/siprouter_rpc.sock\"",
            "\"{DIR}/rpc.sock\"",
        )
        .replace(
            "\"sqlite://siprouter.db\"",
            &format!("\"sqlite://{}\"", db.display()),
        )
}

/// A fresh SQLite file path for a test (`name` tells tests apart), in a
/// folder of its own under the system's temporary folder; any file left
/// there by an earlier run is removed.
pub fn fresh_db(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("siprouter-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temporary folder");
    let p = d.join("siprouter.db");
    let _ = std::fs::remove_file(&p);
    p
}
