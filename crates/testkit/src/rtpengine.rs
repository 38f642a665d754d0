//! A real rtpengine daemon for tests (Debian's `rtpengine-daemon`, run in
//! user space on 127.0.0.1 with its own ng port and media ports), and one
//! ng exchange with it.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running daemon; stopped when dropped.
pub struct Daemon {
    child: Child,
    /// Its ng control port.
    pub ng: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free UDP port.
fn udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_or(0, |a| a.port())
}

/// One ng exchange (bencode written by hand): the daemon's answer, empty
/// when none came. Each has its own cookie: the daemon answers a cookie it
/// knows from its cache.
pub fn ng(port: u16, body: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let cookie = format!("t{}", N.fetch_add(1, Ordering::Relaxed));
    let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
    let mut buf = [0u8; 65536];
    for _ in 0..10 {
        let _ = s.send_to(format!("{cookie} {body}").as_bytes(), ("127.0.0.1", port));
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    String::new()
}

/// Starts a daemon, `None` (with a notice) when rtpengine is not
/// installed — a failure instead when `SR_RTPENGINE_REQUIRED` is set.
pub fn start() -> Option<Daemon> {
    let bin = ["/usr/bin/rtpengine", "/usr/sbin/rtpengine"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        assert!(
            std::env::var_os("SR_RTPENGINE_REQUIRED").is_none(),
            "rtpengine is required (SR_RTPENGINE_REQUIRED) but not installed"
        );
        eprintln!("skipped: rtpengine is not installed (apt-get install rtpengine-daemon)");
        return None;
    };
    // The ng port is free when picked but may be taken before the daemon
    // binds it (tests run in parallel): a daemon that exits is started
    // again on another port.
    for _ in 0..5 {
        let ng_port = udp_port();
        // Media ports near the top of the range the kernel does not hand
        // out to clients, chosen from the ng port so parallel runs differ.
        let base = 20000 + (ng_port % 100) * 100;
        let child = Command::new(bin)
            .args([
                "--foreground",
                "--log-stderr",
                "--interface=127.0.0.1",
                &format!("--listen-ng=127.0.0.1:{ng_port}"),
                &format!("--port-min={base}"),
                &format!("--port-max={}", base + 99),
                "--table=-1",
                "--no-fallback",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rtpengine");
        let mut d = Daemon { child, ng: ng_port };
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if ng(d.ng, "d7:command4:pinge").contains("pong") {
                return Some(d);
            }
            if matches!(d.child.try_wait(), Ok(Some(_))) {
                break;
            }
            assert!(Instant::now() < end, "rtpengine did not answer a ping");
        }
    }
    panic!("rtpengine exited at start five times (ng ports taken?)");
}
