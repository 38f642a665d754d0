//! A real Redis server for tests: Debian's `redis-server`, TCP on
//! 127.0.0.1 at a free port and a UNIX socket in a folder of its own,
//! nothing saved to disk, an optional password.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = "/usr/bin/redis-server";

/// A running Redis server; dropping it stops it and removes its folder.
pub struct Redis {
    child: Child,
    dir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Its password, if one was set.
    pub pass: Option<String>,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Redis {
    /// Its UNIX socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// Runs one command (its arguments) and gives the raw reply text,
    /// for tests that check what a server stored (empty when the server
    /// cannot be reached).
    pub fn cmd(&self, args: &[&str]) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut out = String::new();
        if let Some(p) = &self.pass {
            out.push_str(&format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{p}\r\n", p.len()));
        }
        out.push_str(&format!("*{}\r\n", args.len()));
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        if s.write_all(out.as_bytes()).is_err() {
            return String::new();
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        if self.pass.is_some() {
            reply = reply.strip_prefix("+OK\r\n").unwrap_or(&reply).to_string();
        }
        reply
    }
}

/// Whether `redis-server` is installed. When it is not, a notice is
/// printed, unless `SR_REDIS_REQUIRED=1` (as `.ci/run` sets), which makes
/// it a failure.
pub fn available() -> bool {
    if Path::new(SERVER).exists() {
        return true;
    }
    assert!(
        std::env::var("SR_REDIS_REQUIRED").as_deref() != Ok("1"),
        "SR_REDIS_REQUIRED=1 but Redis is not installed ({SERVER})"
    );
    eprintln!("SKIPPED: Redis is not installed (apt-get install redis-server)");
    false
}

/// Starts a Redis server (`pass` as `requirepass`, `extra` more
/// `redis-server` options; a first one `sentinel monitor ...` makes it a
/// Sentinel with that line in its configuration file). `None` when Redis is not installed (see
/// [`available`]).
pub fn start(name: &str, pass: Option<&str>, extra: &[&str]) -> Option<Redis> {
    start_at(name, crate::free_port(), pass, extra)
}

/// [`start`] on a given port (a server started again where it was).
pub fn start_at(name: &str, port: u16, pass: Option<&str>, extra: &[&str]) -> Option<Redis> {
    if !available() {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("sr-redis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a folder for Redis");
    let mut cmd = Command::new(SERVER);
    // A Sentinel reads its configuration file first (written here).
    if let Some(conf) = extra.first().filter(|e| e.starts_with("sentinel monitor")) {
        let path = dir.join("sentinel.conf");
        std::fs::write(&path, format!("{conf}\n")).expect("the sentinel configuration");
        cmd.arg(&path).arg("--sentinel");
    }
    let extra: Vec<&str> = extra
        .iter()
        .copied()
        .filter(|e| !e.starts_with("sentinel monitor"))
        .collect();
    cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--port", &port.to_string()])
        .arg("--unixsocket")
        .arg(dir.join("redis.sock"))
        .arg("--dir")
        .arg(&dir);
    if let Some(p) = pass {
        cmd.args(["--requirepass", p]);
    }
    let log = std::fs::File::create(dir.join("server.log")).expect("the server log");
    let child = cmd
        .args(&extra)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let r = Redis {
        child,
        dir,
        port,
        pass: pass.map(str::to_string),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !r.cmd(&["PING"]).starts_with("+PONG") {
        assert!(
            Instant::now() < deadline,
            "Redis did not start: {}",
            std::fs::read_to_string(r.dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(r)
}
