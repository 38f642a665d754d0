//! Interoperability with SIPp (Debian package `sip-tester`), the load and
//! conformance tool operators test SIP servers with, running the scenarios
//! in `tests/interop/sipp/` against the shipped default configuration:
//!
//! - calls: a SIPp UAS registers (`register.xml`), a SIPp UAC calls it
//!   through the proxy (`uac.xml`: INVITE, 100/180/200, ACK and BYE along
//!   the record-routed route set; `uas.xml` answers), over UDP, over TCP,
//!   and from a UDP caller to a TCP callee; every call must succeed on both
//!   sides, none retransmitted past its timers;
//! - registrations with digest authentication: ten users over UDP and
//!   TCP, each challenged (401) and then registered (200); a wrong
//!   password is refused.
//!
//! Without `sipp` the tests print a skip notice and pass, unless
//! `SR_INTEROP_REQUIRED=1`, which `.ci/run` sets after installing it.

use sr_testkit::{default_config, free_port, fresh_db, TestServer};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// SIPp's version, when it runs here.
fn sipp_version() -> Option<String> {
    let out = Command::new("sipp")
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with("v3") || w.starts_with("v4"))
        .map(str::to_string)
}

/// Whether SIPp can be run (a failure when it must and cannot).
fn available() -> bool {
    if let Some(v) = sipp_version() {
        eprintln!("SIPp {v}");
        return true;
    }
    assert!(
        std::env::var_os("SR_INTEROP_REQUIRED").is_none(),
        "SIPp is required (SR_INTEROP_REQUIRED) but `sipp` does not run: apt-get install sip-tester"
    );
    eprintln!("skipped: SIPp is not installed (apt-get install sip-tester)");
    false
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/sipp")
        .join(name)
        .display()
        .to_string()
}

/// One SIPp process, its screen written to a file.
struct Sipp {
    child: Child,
    out: PathBuf,
    what: String,
}

/// How a SIPp run ended: its exit code and its last statistics screen.
struct Ended {
    code: Option<i32>,
    text: String,
    what: String,
}

impl Sipp {
    /// Starts `sipp ARGS` in `dir` (where it writes anything it writes).
    fn start(dir: &Path, what: &str, args: &[String]) -> Sipp {
        let out = dir.join(format!("{what}.out"));
        let child = Command::new("sipp")
            .args(args)
            .args(["-nostdin", "-timeout", "30", "-timeout_error"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("sipp output file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp");
        Sipp {
            child,
            out,
            what: what.to_string(),
        }
    }

    /// Waits for it to end (killed after 60 s).
    fn wait(mut self) -> Ended {
        let end = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st.code();
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        Ended {
            code,
            text,
            what: self.what,
        }
    }
}

impl Ended {
    /// A cumulative counter of the last statistics screen
    /// (`Successful call`, `Failed call`).
    fn count(&self, name: &str) -> Option<u64> {
        self.text
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with(name))
            .and_then(|l| l.split('|').nth(2))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Exit code 0 (every call succeeded) and `n` successful calls.
    fn all_succeeded(&self, n: u64) {
        let tail: String = {
            let lines: Vec<&str> = self.text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        assert_eq!(
            (
                self.code,
                self.count("Successful call"),
                self.count("Failed call")
            ),
            (Some(0), Some(n), Some(0)),
            "{}: {tail}",
            self.what
        );
    }
}

/// The arguments every SIPp run here shares: local address and port,
/// transport, the server as the remote end (none for a UAS).
fn base(server: Option<u16>, port: u16, transport: &str, sf: &str) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    if let Some(p) = server {
        a.push(format!("127.0.0.1:{p}"));
    }
    for s in ["-sf", &scenario(sf), "-i", "127.0.0.1", "-t", transport] {
        a.push(s.to_string());
    }
    a.push("-p".into());
    a.push(port.to_string());
    a
}

/// Registers `user` (with `password` when challenged), its Contact at
/// `contact_port`; how the run ended.
fn register(
    dir: &Path,
    server: u16,
    transport: &str,
    (user, password): (&str, &str),
    contact_port: u16,
) -> Ended {
    let csv = dir.join(format!("{user}.csv"));
    std::fs::write(&csv, format!("SEQUENTIAL\n{user};\n")).expect("injection file");
    let mut args = base(Some(server), free_port(), transport, "register.xml");
    for s in [
        "-inf",
        &csv.display().to_string(),
        "-key",
        "contact_port",
        &contact_port.to_string(),
        "-au",
        user,
        "-ap",
        password,
        "-m",
        "1",
    ] {
        args.push(s.to_string());
    }
    Sipp::start(dir, &format!("register-{user}-{transport}"), &args).wait()
}

#[test]
fn sipp_calls_through_the_default_configuration_over_udp_and_tcp() {
    if !available() {
        return;
    }
    let db = fresh_db("interop-sipp-calls");
    let srv = TestServer::start(&default_config(&db, free_port()), siprouter::in_tree());
    // SIPp's files stay beside the database for a look after a failure.
    let dir = db.parent().expect("folder").to_path_buf();
    const CALLS: u64 = 20;
    // (caller's transport, callee's transport)
    for (uac_t, uas_t) in [("u1", "u1"), ("t1", "t1"), ("u1", "t1")] {
        let callee = format!("callee-{uac_t}-{uas_t}");
        let uas_port = free_port();
        register(&dir, srv.port, uas_t, (&callee, "-"), uas_port).all_succeeded(1);
        let mut uas_args = base(None, uas_port, uas_t, "uas.xml");
        uas_args.extend(["-m".to_string(), CALLS.to_string()]);
        let uas = Sipp::start(&dir, &format!("uas-{uac_t}-{uas_t}"), &uas_args);
        std::thread::sleep(Duration::from_millis(300));
        let mut uac_args = base(Some(srv.port), free_port(), uac_t, "uac.xml");
        for s in ["-s", &callee, "-m", &CALLS.to_string(), "-r", "20"] {
            uac_args.push(s.to_string());
        }
        let uac = Sipp::start(&dir, &format!("uac-{uac_t}-{uas_t}"), &uac_args).wait();
        let uas = uas.wait();
        uac.all_succeeded(CALLS);
        uas.all_succeeded(CALLS);
    }
}

#[test]
fn sipp_registers_many_users_with_digest_authentication() {
    if !available() {
        return;
    }
    let db = fresh_db("interop-sipp-auth");
    let mut cfg = default_config(&db, free_port());
    // The default configuration with REGISTER authenticated against the
    // subscriber table, as Kamailio's WITH_AUTH does it.
    let plain = cfg.clone();
    cfg = cfg
        .replacen(
            "loadmodule \"registrar\"\n",
            "loadmodule \"registrar\"\nloadmodule \"auth\"\nloadmodule \"auth_db\"\nmodparam(\"auth_db\", \"db_url\", DBURL)\nmodparam(\"auth_db\", \"calculate_ha1\", 1)\nmodparam(\"auth_db\", \"password_column\", \"password\")\n",
            1,
        )
        .replacen(
            "\tif (!save(\"location\")) {",
            "\tif (!auth_check(\"$fd\", \"subscriber\", \"1\")) {\n\t\tauth_challenge(\"$fd\", \"0\");\n\t\texit;\n\t}\n\tconsume_credentials();\n\tif (!save(\"location\")) {",
            1,
        );
    assert_ne!(cfg, plain, "the default configuration changed shape");
    let url = format!("sqlite://{}", db.display());
    let db_cmd = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_siprouter"))
            .args(["db", "-u", &url])
            .args(args)
            .output()
            .expect("run siprouter db");
        assert!(out.status.success(), "siprouter db {args:?}: {out:?}");
    };
    db_cmd(&["init"]);
    const USERS: usize = 10;
    let users: Vec<(String, String)> = (1..=USERS)
        .map(|i| (format!("user{i}"), format!("pw-{i}")))
        .collect();
    for (u, p) in &users {
        db_cmd(&["add", &format!("{u}@127.0.0.1"), p]);
    }
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let dir = db.parent().expect("folder").to_path_buf();
    for (i, (u, p)) in users.iter().enumerate() {
        let transport = if i % 2 == 0 { "u1" } else { "t1" };
        register(&dir, srv.port, transport, (u, p), 5070).all_succeeded(1);
    }
    // Each was challenged, then stored.
    let stored = srv.wait_stat("usrloc:registered_users", USERS as i64);
    assert_eq!(stored, Some(USERS as i64));
    // The wrong password: challenged again, so SIPp's call fails.
    let wrong = register(&dir, srv.port, "u1", ("user1", "not-it"), 5070);
    assert_eq!(
        (wrong.code, wrong.count("Failed call")),
        (Some(1), Some(1)),
        "{}",
        wrong.text
    );
}
