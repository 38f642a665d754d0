//! Interoperability with a real SIP user agent: PJSUA2 (PJSIP's library,
//! PyPI package `pjsua2-python`) driven by `tests/interop/pjsua_ua.py`.
//!
//! Two UA processes, alice and bob, register through siprouter with their
//! passwords (digest: 401, then 200; subscribers in a real SQLite file made
//! with `siprouter db add`); alice calls bob, which local users must
//! authenticate too (407, then the INVITE again); siprouter finds bob with
//! `lookup()` and relays statefully with record-routing; bob answers, both
//! sides see the call confirmed with audio (null sound device, RTP directly
//! between the UAs on 127.0.0.1), alice hangs up with a BYE that follows the
//! route set, and both unregister.
//!
//! Without `pjsua2` importable by `python3` (or `$SR_INTEROP_PYTHON`) the test
//! prints a skip notice and passes, unless `SR_INTEROP_REQUIRED=1`, which
//! `.ci/run` sets after installing the package.

use sr_testkit::TestServer;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

const DOMAIN: &str = "sip.test";

fn python() -> String {
    std::env::var("SR_INTEROP_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `Some(version)` when the real UA can be run here.
fn pjsua2_version() -> Option<String> {
    let out = Command::new(python())
        .args([
            "-c",
            "import pjsua2 as pj; e = pj.Endpoint(); e.libCreate(); \
             print('PJSUA2', e.libVersion().full); e.libDestroy()",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("PJSUA2 "))
        .map(|v| v.trim().to_string())
}

fn cfg(url: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
alias="{DOMAIN}"
children=2
loadmodule "tm"
loadmodule "tmx"
loadmodule "sl"
loadmodule "rr"
loadmodule "pv"
loadmodule "maxfwd"
loadmodule "siputils"
loadmodule "textops"
loadmodule "sanity"
loadmodule "xlog"
loadmodule "db_sqlite"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "auth"
loadmodule "auth_db"
modparam("usrloc", "db_url", "{url}")
modparam("usrloc", "db_mode", 1)
modparam("usrloc", "use_domain", 1)
modparam("auth_db", "db_url", "{url}")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("auth", "nonce_count", 1)

request_route {{
    force_rport();
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check("17895", "7")) {{
        xlog("L_ERR", "malformed request from $si:$sp\n");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    if (!is_method("ACK")) {{
        if (t_precheck_trans()) {{
            t_check_trans();
            exit;
        }}
        t_check_trans();
    }}
    route(WITHINDLG);

    # Local users prove who they are: REGISTER (401) and calls (407).
    if (is_method("REGISTER") || from_uri==myself) {{
        if (!auth_check("$fd", "subscriber", "1")) {{
            auth_challenge("$fd", "1");
            exit;
        }}
        consume_credentials();
    }}
    if (is_method("REGISTER")) {{
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    if (uri!=myself) {{
        sl_send_reply("403", "Not relaying");
        exit;
    }}
    remove_hf("Route");
    if (is_method("INVITE|SUBSCRIBE")) {{
        record_route();
    }}
    if (!lookup("location")) {{
        t_newtran();
        send_reply("404", "Not Found");
        exit;
    }}
    route(RELAY);
}}

route[RELAY] {{
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

route[WITHINDLG] {{
    if (!has_totag()) {{
        return;
    }}
    if (loose_route()) {{
        route(RELAY);
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    sl_send_reply("404", "Not here");
    exit;
}}
"#
    )
}

/// Runs `siprouter db -u URL ...` (the real binary).
fn db(url: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .args(["db", "-u", url])
        .args(args)
        .output()
        .expect("run siprouter db");
    assert!(
        out.status.success(),
        "siprouter db {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One UA process, its stdout lines arriving on a channel.
struct UaProc {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
    log: PathBuf,
}

impl UaProc {
    fn start(name: &'static str, dir: &Path, server: &str, extra: &[&str]) -> UaProc {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pjsua_ua.py");
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(python())
            .arg("-u")
            .arg(&script)
            .args(["--user", name, "--password", &format!("{name}-pw")])
            .args(["--domain", DOMAIN, "--proxy", server, "--timeout", "20"])
            .arg("--log")
            .arg(&log)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the UA");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx): (Sender<String>, Receiver<String>) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        UaProc {
            name,
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
            log,
        }
    }

    /// Waits for a line starting with `prefix` (seen already or to come;
    /// a RESULT line ends the UA); returns it.
    fn wait(&mut self, prefix: &str, within: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.starts_with(prefix)) {
            return line.clone();
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                    if line.starts_with("RESULT") {
                        self.fail(&format!("ended while waiting for {prefix:?}"));
                    }
                }
                Err(_) => self.fail(&format!("timed out waiting for {prefix:?}")),
            }
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the UA");
        stdin.flush().expect("flush");
    }

    fn saw(&self, prefix: &str) -> bool {
        self.seen.iter().any(|l| l.starts_with(prefix))
    }

    fn report(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(150).collect();
        format!(
            "--- {} events:\n{}\n--- {} PJSIP log (last lines):\n{}",
            self.name,
            self.seen.join("\n"),
            self.name,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    fn fail(&self, why: &str) -> ! {
        panic!("{}: {why}\n{}", self.name, self.report());
    }
}

impl Drop for UaProc {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Polls a statistic until it equals `want` (the UA can see a reply just
/// before the counters move).
fn stat_eq(srv: &TestServer, name: &str, want: i64) -> Option<i64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let v = srv.stat(name);
        if v == Some(want) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The user agents stored for `user`'s contacts (`ul.lookup`).
fn user_agents(srv: &TestServer, user: &str) -> String {
    let r = srv
        .rpc(
            "ul.lookup",
            &["location".into(), format!("{user}@{DOMAIN}").into()],
        )
        .unwrap_or_else(|e| panic!("ul.lookup {user}: {e:?}"));
    r.to_string()
}

#[test]
fn pjsua2_registers_with_password_and_calls_through_siprouter() {
    let Some(version) = pjsua2_version() else {
        if std::env::var("SR_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!(
                "SR_INTEROP_REQUIRED=1 but `{} -c 'import pjsua2'` fails: \
                 install it with `python3 -m pip install pjsua2-python`",
                python()
            );
        }
        eprintln!(
            "SKIPPED interop_ua: the real SIP UA is not installed (`{} -c 'import pjsua2'` \
             fails); install it with `python3 -m pip install pjsua2-python` (.ci/run does)",
            python()
        );
        return;
    };
    eprintln!("interop_ua: PJSUA2 {version}");
    let started = Instant::now();

    let dir = std::env::temp_dir().join(format!(
        "sr-interop-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let url = format!("sqlite://{}/sr.db", dir.display());
    db(&url, &["init"]);
    db(&url, &["add", &format!("alice@{DOMAIN}"), "alice-pw"]);
    db(&url, &["add", &format!("bob@{DOMAIN}"), "bob-pw"]);

    let srv = TestServer::start(&cfg(&url), siprouter::in_tree());
    let server = srv.addr().to_string();

    let mut bob = UaProc::start("bob", &dir, &server, &["--role", "callee"]);
    bob.wait("EVENT registered", Duration::from_secs(10));
    assert_eq!(stat_eq(&srv, "usrloc:location_contacts", 1), Some(1));

    let mut alice = UaProc::start(
        "alice",
        &dir,
        &server,
        &["--role", "caller", "--target", "bob", "--hold", "1"],
    );
    alice.wait("EVENT registered", Duration::from_secs(10));
    assert_eq!(stat_eq(&srv, "usrloc:location_contacts", 2), Some(2));
    assert_eq!(srv.stat("usrloc:registered_users"), Some(2));
    for user in ["alice", "bob"] {
        let found = user_agents(&srv, user);
        assert!(found.contains("pjsua2-interop"), "{user}: {found}");
    }
    // Each registration was challenged first (401), then accepted.
    assert!(bob.saw("EVENT reg 200 active") && alice.saw("EVENT reg 200 active"));

    alice.send("call");
    bob.wait("EVENT incoming", Duration::from_secs(10));
    bob.wait("EVENT established", Duration::from_secs(10));
    alice.wait("EVENT established", Duration::from_secs(10));
    alice.wait("EVENT media active", Duration::from_secs(10));
    bob.wait("EVENT ended", Duration::from_secs(10));
    alice.wait("EVENT ended", Duration::from_secs(10));
    for ua in [&mut alice, &mut bob] {
        let result = ua.wait("RESULT", Duration::from_secs(10));
        if result != "RESULT ok" {
            ua.fail(&result);
        }
        assert!(ua.saw("EVENT call_state CONFIRMED 200"), "{}", ua.report());
        assert!(ua.saw("EVENT unregistered"), "{}", ua.report());
    }
    assert!(bob.saw("EVENT media active"), "{}", bob.report());
    // Audio flowed both ways between the UAs (RTP, not through siprouter).
    for ua in [&alice, &bob] {
        let rtp = ua.seen.iter().find_map(|l| l.strip_prefix("EVENT rtp "));
        let counts: Vec<u64> = rtp
            .unwrap_or("")
            .split(' ')
            .filter_map(|f| f.split_once('=').and_then(|(_, n)| n.parse().ok()))
            .collect();
        assert!(
            counts.len() == 2 && counts.iter().all(|n| *n > 0),
            "{}: RTP {rtp:?}\n{}",
            ua.name,
            ua.report()
        );
    }
    // alice called bob by his AoR and he saw her identity.
    assert!(
        bob.saw(&format!("EVENT incoming <sip:alice@{DOMAIN}>"))
            || bob.saw(&format!("EVENT incoming sip:alice@{DOMAIN}")),
        "{}",
        bob.report()
    );

    // siprouter's side: two registrations and two removals accepted, the
    // INVITE and the BYE relayed with a 2xx, nothing left in the location.
    assert_eq!(stat_eq(&srv, "usrloc:location_contacts", 0), Some(0));
    let accepted = srv.stat("registrar:accepted_regs").unwrap_or(0);
    assert!(accepted >= 4, "registrar:accepted_regs = {accepted}");
    let ok = srv.stat("tmx:2xx_transactions").unwrap_or(0);
    assert!(ok >= 2, "tmx:2xx_transactions = {ok}");
    // The 407 went out statelessly and its ACK ended in sl instead of being
    // relayed towards the domain.
    assert_eq!(srv.stat("sl:received_ACKs"), Some(1));
    // The UAs' own records of the exchange (PJSIP logs every message).
    for ua in [&alice, &bob] {
        let log = std::fs::read_to_string(&ua.log).unwrap_or_default();
        assert!(log.contains("SIP/2.0 401 Unauthorized"), "{}", ua.report());
        assert!(
            log.contains("Authorization: Digest username=\""),
            "{}",
            ua.report()
        );
    }
    let log = std::fs::read_to_string(&alice.log).unwrap_or_default();
    assert!(log.contains("SIP/2.0 407 "), "{}", alice.report());
    assert!(
        log.contains("Proxy-Authorization: Digest username=\"alice\""),
        "{}",
        alice.report()
    );
    assert!(!log.contains("sending with TCP"), "{}", alice.report());
    let log = std::fs::read_to_string(&bob.log).unwrap_or_default();
    assert!(log.contains("Record-Route: "), "{}", bob.report());
    for ua in [&alice, &bob] {
        let events: Vec<&str> = ua
            .seen
            .iter()
            .filter_map(|l| l.strip_prefix("EVENT "))
            .collect();
        eprintln!("interop_ua: {}: {}", ua.name, events.join(" | "));
    }
    eprintln!(
        "interop_ua: passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(srv);
    if std::env::var_os("SR_INTEROP_KEEP").is_some() {
        eprintln!("interop_ua: logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
