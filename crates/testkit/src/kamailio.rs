//! The real Kamailio (the Debian package's binary and modules) run next to
//! siprouter for differential tests: the same configuration and requests
//! to both, the answers compared.

use crate::peer::UdpPeer;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kamailio's binary.
pub const KAMAILIO: &str = "/usr/sbin/kamailio";
/// Where the package installs its modules.
pub const MPATH: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";

/// Whether Kamailio and these modules (`name.so`) are installed. When they
/// are not, a notice is printed, unless `SR_KAMAILIO_REQUIRED=1` (set by
/// `.ci/run`), which makes it a failure.
pub fn available(modules: &[&str]) -> bool {
    let files: Vec<String> = std::iter::once(KAMAILIO.to_string())
        .chain(modules.iter().map(|m| format!("{MPATH}{m}.so")))
        .collect();
    installed(&files)
}

/// Whether every one of `files` exists; when not, a notice naming the
/// missing ones is printed, unless `SR_KAMAILIO_REQUIRED=1`, which makes
/// it a failure.
fn installed<S: AsRef<str> + std::fmt::Debug>(files: &[S]) -> bool {
    let missing: Vec<&S> = files
        .iter()
        .filter(|p| !Path::new(p.as_ref()).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("SR_KAMAILIO_REQUIRED").as_deref() != Ok("1"),
        "SR_KAMAILIO_REQUIRED=1 but these are missing: {missing:?}"
    );
    eprintln!("SKIPPED: not installed here: {missing:?}");
    false
}

/// A running Kamailio, in a process group of its own: dropping it stops
/// the main process and every worker it forked.
pub struct Kamailio {
    child: Child,
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    /// Its log (standard error).
    pub log: PathBuf,
}

impl Kamailio {
    /// Starts Kamailio in `dir` on `cfg`, whose `__PORT__` becomes a free
    /// port.
    pub fn start(dir: &Path, cfg: &str) -> Kamailio {
        let port = crate::free_port();
        let path = dir.join("kamailio.cfg");
        std::fs::write(&path, cfg.replace("__PORT__", &port.to_string())).expect("write cfg");
        let log = dir.join("kamailio.log");
        let child = Command::new(KAMAILIO)
            .arg("-f")
            .arg(&path)
            .args(["-DD", "-E", "-w"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .process_group(0)
            .spawn()
            .expect("start kamailio");
        Kamailio {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            log,
        }
    }

    fn signal_group(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal_group("-KILL");
        // Without a working `kill`, at least the main process goes (the
        // wait must not hang).
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Sends `probe` (a request whose Via names `__VIA__`) until the server at
/// `to` answers, then drains whatever else comes; panics with `log` when
/// it never answers.
pub fn wait_until_up(peer: &UdpPeer, to: SocketAddr, probe: &str, log: Option<&Path>) {
    let probe = probe.replace("__VIA__", &peer.addr().to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        peer.send(to, &probe);
        if peer.recv(Duration::from_millis(200)).is_some() {
            while peer.recv(Duration::from_millis(100)).is_some() {}
            return;
        }
    }
    let text = log
        .map(|l| std::fs::read_to_string(l).unwrap_or_default())
        .unwrap_or_default();
    panic!("no answer on {to}; log:\n{text}");
}

/// Sends each request (`(call_id, text)`, the text's Via naming
/// `__VIA__`) and gives, for each, `call_id: ` and the values of
/// `headers` in the 200 with that Call-ID.
pub fn answers(
    peer: &UdpPeer,
    to: SocketAddr,
    reqs: &[(String, String)],
    headers: &[&str],
) -> Vec<String> {
    let via = peer.addr().to_string();
    reqs.iter()
        .map(|(call, text)| {
            peer.send(to, &text.replace("__VIA__", &via));
            let r = peer
                .recv_matching(Duration::from_secs(3), |r| {
                    r.status() == Some(200) && r.msg.msg().call_id().ok() == Some(call.as_str())
                })
                .unwrap_or_else(|| panic!("{call}: no answer from {to}"));
            let values: Vec<String> = headers
                .iter()
                .map(|h| r.header(h).unwrap_or_default())
                .collect();
            format!("{call}: {}", values.join(" | "))
        })
        .collect()
}

/// Sends the same requests to Kamailio (started in `dir` on `cfg("__PORT__")`)
/// and then to siprouter (on `cfg("{PORT}")`), and gives both servers'
/// answers (see [`answers`]): Kamailio's first.
pub fn run_both(
    dir: &Path,
    cfg: &dyn Fn(&str) -> String,
    probe: &str,
    reqs: &[(String, String)],
    headers: &[&str],
    modules: Vec<sr_core::InTree>,
) -> (Vec<String>, Vec<String>) {
    let kam = Kamailio::start(dir, &cfg("__PORT__"));
    let peer = UdpPeer::new();
    wait_until_up(&peer, kam.addr, probe, Some(&kam.log));
    let want = answers(&peer, kam.addr, reqs, headers);
    drop(kam);
    // (On file before siprouter starts, as in run_scenario.)
    let _ = std::fs::write(dir.join("kamailio.txt"), want.join("\n"));
    let srv = crate::TestServer::start(&cfg("{PORT}"), modules);
    wait_until_up(&peer, srv.addr(), probe, None);
    let got = answers(&peer, srv.addr(), reqs, headers);
    (want, got)
}

/// The request every parity test waits with until a server answers
/// (its Via names `__VIA__`): an OPTIONS without test headers.
pub const PROBE: &str = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKup\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: up\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

/// The head of a parity configuration: one worker, UDP at `__PORT__`,
/// Kamailio's module folder, and `modules` loaded in order.
pub fn head(modules: &[&str]) -> String {
    let mut s =
        format!("#!KAMAILIO\nchildren=1\nlisten=udp:127.0.0.1:__PORT__\nmpath=\"{MPATH}\"\n");
    for m in modules {
        s.push_str(&format!("loadmodule \"{m}.so\"\n"));
    }
    s
}

/// An OPTIONS request with Call-ID `call` (which also makes its branch),
/// its Via naming `__VIA__`, and `extra` header lines (each ending in
/// CRLF).
pub fn options(call: &str, extra: &str) -> String {
    format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// [`run_both`] on the configuration [`head`]`(modules)` + `body`, with
/// `__PORT__` and each `(from, to)` of `subst` replaced, waiting with
/// [`PROBE`].
pub fn run_parity(
    dir: &Path,
    modules: &[&str],
    body: &str,
    subst: &[(&str, &str)],
    reqs: &[(String, String)],
    headers: &[&str],
    in_tree: Vec<sr_core::InTree>,
) -> (Vec<String>, Vec<String>) {
    let cfg = |port: &str| {
        let mut c = (head(modules) + body).replace("__PORT__", port);
        for (from, to) in subst {
            c = c.replace(from, to);
        }
        c
    };
    run_both(dir, &cfg, PROBE, reqs, headers, in_tree)
}

/// Runs a scenario against Kamailio (started in `dir` on `cfg`) and then
/// against siprouter (the same configuration, its `__PORT__` given by
/// the test server), `prepare` first each time (a database filled again):
/// both lists of observations, Kamailio's first. A Kamailio run whose log
/// says its SQLite database was locked is repeated (up to three runs).
pub fn run_scenario(
    dir: &Path,
    cfg: &str,
    modules: Vec<sr_core::InTree>,
    prepare: &dyn Fn(),
    scenario: &dyn Fn(SocketAddr) -> Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let mut want = Vec::new();
    for _ in 0..3 {
        prepare();
        let kam = Kamailio::start(dir, cfg);
        want = scenario(kam.addr);
        drop(kam);
        // Kamailio 5.6's db_sqlite has no busy timeout: a write while its
        // timer process writes fails ("database is locked", a 500 to the
        // request). Such a run is no reference: run it again.
        let log = std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default();
        if !log.contains("database is locked") {
            break;
        }
        eprintln!("Kamailio's SQLite database was locked during the run: running it again");
    }
    // Kamailio's observations are on file before siprouter starts (a
    // configuration siprouter refuses ends the test there).
    let _ = std::fs::write(dir.join("kamailio.txt"), want.join("\n"));
    prepare();
    let srv = crate::TestServer::start(&cfg.replace("__PORT__", "{PORT}"), modules);
    let got = scenario(srv.addr());
    drop(srv);
    (want, got)
}

/// A fresh folder for a parity test's files (`name` and the process id).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sr-k{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a folder for the test");
    dir
}

/// Compares both servers' answers ([`assert_same`]). With `SR_KEEP=1` both
/// lists are written to `dir` (kamailio.txt, siprouter.txt) and it is
/// kept; else it is removed.
pub fn conclude(dir: &Path, want: &[String], got: &[String], what: &str) {
    let keep = std::env::var("SR_KEEP").is_ok();
    if keep {
        let _ = std::fs::write(dir.join("kamailio.txt"), want.join("\n"));
        let _ = std::fs::write(dir.join("siprouter.txt"), got.join("\n"));
    }
    assert_eq!(
        want.len(),
        got.len(),
        "{what}: {} observations from Kamailio, {} from siprouter\n--- kamailio:\n{}\n--- siprouter:\n{}",
        want.len(),
        got.len(),
        want.join("\n"),
        got.join("\n")
    );
    assert_same(want, got, what);
    if !keep {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Fails, listing the answers that differ side by side, unless all are
/// the same (`what` names the setting).
pub fn assert_same(want: &[String], got: &[String], what: &str) {
    let diff = differences(want, got);
    assert!(
        diff.is_empty(),
        "{what}: {} of {} answers differ:\n{}",
        diff.len(),
        want.len(),
        diff.join("\n")
    );
}

/// The answers that differ, side by side (empty when none do).
pub fn differences(want: &[String], got: &[String]) -> Vec<String> {
    want.iter()
        .zip(got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("kamailio:  {w}\nsiprouter: {g}"))
        .collect()
}

/// A message a user agent received, as one line for a parity comparison:
/// `label: ` then its lines joined with ` | `, `Server` and `User-Agent`
/// left out, the server's port named `PPORT`, the To tag of the server's
/// own replies (`own_reply`) named `TOTAG`, and every line passed through
/// `tidy` (for what else differs by nature between the two servers).
/// `nothing` when no message came.
pub fn message_line(
    label: &str,
    r: Option<&crate::Reply>,
    srv: SocketAddr,
    own_reply: bool,
    tidy: &mut dyn FnMut(&str) -> String,
) -> String {
    let Some(r) = r else {
        return format!("{label}: nothing");
    };
    let text = r.text();
    let mut lines = Vec::new();
    for l in text.split("\r\n") {
        if l.starts_with("Server:") || l.starts_with("User-Agent:") {
            continue;
        }
        let mut l = l.replace(&srv.port().to_string(), "PPORT");
        if own_reply && l.starts_with("To:") {
            if let Some(i) = l.find(";tag=") {
                l.replace_range(i.., ";tag=TOTAG");
            }
        }
        lines.push(tidy(&l));
    }
    format!("{label}: {}", lines.join(" | "))
}

/// Kamailio's command-line RPC client.
pub const KAMCMD: &str = "/usr/sbin/kamcmd";

/// Whether `kamcmd` and these files (a schema, ...) are installed; when
/// not, a notice is printed, unless `SR_KAMAILIO_REQUIRED=1`, which makes
/// it a failure.
pub fn kamcmd_available(files: &[&str]) -> bool {
    let all: Vec<&str> = std::iter::once(KAMCMD)
        .chain(files.iter().copied())
        .collect();
    installed(&all)
}

/// Runs `kamcmd` on the control socket `sock` with `args`: the command
/// line, then every line it printed (standard output, then errors), each
/// passed through `tidy` (what differs by nature between servers).
pub fn kamcmd(sock: &Path, args: &[&str], tidy: &dyn Fn(&str) -> String) -> Vec<String> {
    let out = Command::new(KAMCMD)
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .args(args)
        .output()
        .expect("kamcmd runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut lines = vec![format!("$ kamcmd {}", args.join(" "))];
    lines.extend(text.lines().map(|l| tidy(l.trim_end())));
    lines
}
