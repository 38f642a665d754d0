//! A siprouter started in-process for a test.

use sr_core::{InTree, Options, Runtime, Server};
use sr_sdk::Core;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;

/// A port free on 127.0.0.1 for both UDP and TCP (at the time of asking).
pub fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let p = u.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A running server and the folder holding its config.
pub struct TestServer {
    /// The server (threads).
    pub server: Server,
    /// The runtime (stats, RPC, routes).
    pub rt: Arc<Runtime>,
    /// The port `{PORT}` was replaced with.
    pub port: u16,
    /// Folder with `test.cfg` (and anything the test puts there).
    pub dir: PathBuf,
}

impl TestServer {
    /// Writes `cfg` (with `{PORT}` and `{DIR}` replaced) to a fresh folder
    /// and starts siprouter on it with the given in-tree modules.
    pub fn start(cfg: &str, modules: Vec<InTree>) -> TestServer {
        Self::try_start(cfg, modules)
            .unwrap_or_else(|e| panic!("server did not start:\n{}", e.join("\n")))
    }

    /// Like [`TestServer::start`], returning the errors instead.
    pub fn try_start(cfg: &str, modules: Vec<InTree>) -> Result<TestServer, Vec<String>> {
        Self::try_start_with(
            cfg,
            Options {
                in_tree: modules,
                ..Default::default()
            },
        )
    }

    /// Like [`TestServer::try_start`], with the rest of the options given
    /// (the shared-library loader, defines); `opts.config` is replaced by
    /// the written `test.cfg`.
    pub fn try_start_with(cfg: &str, opts: Options) -> Result<TestServer, Vec<String>> {
        // The port was free when asked for, but tests run in parallel and
        // one of them may take it first: then try another.
        let mut attempt = 0;
        loop {
            match Self::start_once(cfg, opts.clone()) {
                Err(e)
                    if attempt < 4
                        && cfg.contains("{PORT}")
                        && e.iter().any(|m| m.contains("Address already in use")) =>
                {
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    fn start_once(cfg: &str, opts: Options) -> Result<TestServer, Vec<String>> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "siprouter-test-{}-{}-{port}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).map_err(|e| vec![e.to_string()])?;
        let text = cfg
            .replace("{PORT}", &port.to_string())
            .replace("{DIR}", &dir.display().to_string());
        let path = dir.join("test.cfg");
        std::fs::write(&path, text).map_err(|e| vec![e.to_string()])?;
        let opts = Options {
            config: path,
            ..opts
        };
        let rt = sr_core::load(&opts, false)?;
        let server = sr_core::start(&rt).map_err(|e| vec![e])?;
        Ok(TestServer {
            server,
            rt,
            port,
            dir,
        })
    }

    /// The server's SIP address on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A statistic by `group:name`.
    pub fn stat(&self, name: &str) -> Option<i64> {
        self.rt
            .statistics()
            .into_iter()
            .find(|(g, n, _)| format!("{g}:{n}") == name)
            .map(|(_, _, v)| v)
    }

    /// Waits until a statistic reaches `want` (counters are updated just
    /// after the packet leaves, so a peer can see the packet first).
    pub fn wait_stat(&self, name: &str, want: i64) -> Option<i64> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let v = self.stat(name);
            if v == Some(want) || std::time::Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Calls an RPC method.
    pub fn rpc(
        &self,
        method: &str,
        params: &[sr_sdk::serde_json::Value],
    ) -> Result<sr_sdk::serde_json::Value, sr_sdk::RpcError> {
        self.rt.rpc_call(method, params)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
