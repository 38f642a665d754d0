//! A real RTPProxy for tests: RTPProxy's own code as the rtp.io Python
//! package (PyPI), run by `scripts/rtpproxy_rtpio.py` with its control
//! socket on UDP at 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running RTPProxy; dropping it stops it.
pub struct RtpProxy {
    child: Child,
    dir: std::path::PathBuf,
    /// Its control port (`udp:127.0.0.1:ctl`).
    pub ctl: u16,
}

impl Drop for RtpProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts an RTPProxy on control port `ctl` (a free one when `None`),
/// relaying media on 100 ports chosen from it. `None` when rtp.io is not
/// installed (a notice is printed), unless `SR_RTPPROXY_REQUIRED` is set
/// (as `.ci/run` does), which makes it a failure.
pub fn start(ctl: Option<u16>) -> Option<RtpProxy> {
    let have = Command::new("python3")
        .args(["-c", "import rtp.io"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var_os("SR_RTPPROXY_REQUIRED").is_none(),
            "RTPProxy is required (SR_RTPPROXY_REQUIRED) but rtp.io is not installed"
        );
        eprintln!("SKIPPED: rtp.io is not installed (python3 -m pip install rtp.io)");
        return None;
    }
    let ctl = ctl.unwrap_or_else(|| {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    });
    let base = 30000 + (ctl % 100) * 100;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rtpproxy_rtpio.py");
    // RTPProxy writes its accounting file (rtpproxy_acct.csv) where it
    // runs: a directory of its own.
    let dir = std::env::temp_dir().join(format!("sr-rtpproxy-{}-{ctl}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("rtpproxy's directory");
    let mut child = Command::new("python3")
        .current_dir(&dir)
        .args([
            script,
            &ctl.to_string(),
            &base.to_string(),
            &(base + 99).to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rtpproxy");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("rtpproxy's first line");
    assert_eq!(line.trim(), "ready", "rtpproxy did not start");
    Some(RtpProxy { child, dir, ctl })
}

impl RtpProxy {
    /// Sends one command (`Q call tag;1 tag`, ...) and gives the answer.
    /// Each has a cookie of its own: RTPProxy answers a cookie it has seen
    /// from its cache.
    pub fn command(&self, cmd: &str) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let cookie = format!("t{}", N.fetch_add(1, Ordering::Relaxed));
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        s.send_to(
            format!("{cookie} {cmd}").as_bytes(),
            ("127.0.0.1", self.ctl),
        )
        .expect("send");
        let mut buf = [0u8; 1024];
        let n = s.recv(&mut buf).expect("an answer from rtpproxy");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        text.trim_start_matches(&format!("{cookie} "))
            .trim()
            .to_string()
    }
}
