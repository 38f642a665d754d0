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
    let mut child = Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .args(["-DD", "-E", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start siprouter");
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
