//! The real binary as a process: started in the foreground with a config
//! loading `jsonrpcs`, answering RPC on its UNIX socket, then stopped with
//! SIGTERM: it exits with 0 after running the modules' `destroy` (the
//! RPC socket file is removed).

use sr_testkit::free_port;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binary on `cfg` in the foreground, logging to `stderr`.
fn run_in_foreground(cfg: &std::path::Path, stderr: Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .args(["-DD", "-E", "-f"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start siprouter")
}

#[test]
fn sigterm_stops_cleanly_and_runs_destroy() {
    let dir = std::env::temp_dir().join(format!("siprouter-process-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sock = dir.join("rpc.sock");
    let cfg = dir.join("siprouter.cfg");
    std::fs::write(
        &cfg,
        format!(
            r#"
listen=udp:127.0.0.1:{}
children=1
loadmodule "jsonrpcs"
loadmodule "xlog"
modparam("jsonrpcs", "socket", "{}")
request_route {{ xlog("L_INFO", "got $rm\n"); drop; }}
"#,
            free_port(),
            sock.display()
        ),
    )
    .expect("write config");
    let mut child = run_in_foreground(&cfg, Stdio::piped());
    let path = sock.display().to_string();
    let req = siprouter::ctl::request("core.version", &[]);
    wait_for("the RPC socket", || {
        siprouter::ctl::call_unix(&path, &req).is_ok()
    });
    let r = siprouter::ctl::call_unix(&path, &req).expect("answer");
    assert!(
        r["result"]
            .as_str()
            .is_some_and(|s| s.starts_with("siprouter")),
        "{r}"
    );

    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("siprouter did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(status.code(), Some(0), "stderr:\n{err}");
    assert!(!sock.exists(), "destroy removed the socket file");
    let _ = std::fs::remove_dir_all(&dir);
}

/// How often the process's thread named `name` has gone to sleep so far
/// (its voluntary context switches), or `None` until it exists.
fn sleeps_of(pid: u32, name: &str) -> Option<u64> {
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let t = t.ok()?.path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let status = std::fs::read_to_string(t.join("status")).ok()?;
            return status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok());
        }
    }
    None
}

/// Starts the binary on `body` (after `listen=`), counts the timer
/// thread's sleeps over about one second, stops it; returns them per
/// second of the time measured (a loaded machine may oversleep).
fn timer_sleeps_per_second(body: &str) -> u64 {
    let dir = std::env::temp_dir().join(format!(
        "siprouter-timer-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cfg = dir.join("siprouter.cfg");
    let text = format!("listen=udp:127.0.0.1:{}\nchildren=1\n{body}", free_port());
    std::fs::write(&cfg, text).expect("write config");
    let mut child = run_in_foreground(&cfg, Stdio::null());
    let pid = child.id();
    wait_for("the timer thread", || sleeps_of(pid, "timer").is_some());
    std::thread::sleep(Duration::from_millis(200));
    let before = sleeps_of(pid, "timer").expect("timer thread");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let after = sleeps_of(pid, "timer").expect("timer thread");
    let secs = t0.elapsed().as_secs_f64();
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
    ((after - before) as f64 / secs).round() as u64
}

/// The timer thread sleeps until its next timer is due (at most 100 ms),
/// instead of waking every few milliseconds: with only usrloc's 60 s timer
/// and the once-a-second TCP check it wakes about ten times a second; with
/// tm's 10 ms tick about a hundred.
#[test]
fn the_timer_thread_wakes_only_when_something_is_due() {
    let idle = timer_sleeps_per_second(
        "loadmodule \"sl\"\nloadmodule \"usrloc\"\nrequest_route { drop; }\n",
    );
    assert!(idle <= 30, "{idle} wake-ups in one second without tm");
    let tm = timer_sleeps_per_second("loadmodule \"tm\"\nrequest_route { drop; }\n");
    assert!(
        (20..=150).contains(&tm),
        "{tm} wake-ups in one second with tm's 10 ms tick"
    );
}
