//! Interoperability with real WebSocket SIP clients: JsSIP and SIP.js
//! (the browser SIP libraries, npm packages `jssip` and `sip.js`) run in
//! Node.js by `tests/interop/jssip_ua.js` and `tests/interop/sipjs_ua.js`,
//! their own WebSocket transports over the `ws` package's WebSocket.
//!
//! In each test two user agents, alice and bob, connect to siprouter's TCP
//! socket with `ws://` and register with their passwords (digest: 401,
//! then 200; subscribers in a real SQLite file made with `siprouter db
//! add`); alice sends bob a MESSAGE (407, then again with credentials),
//! which siprouter finds with `lookup()` and relays over bob's WebSocket;
//! with JsSIP, bob also sends alice an OPTIONS; both unregister. The
//! configuration is the one Kamailio's WebSocket example uses:
//! `event_route[xhttp:request]` with `ws_handle_handshake()`,
//! `nat_uac_test("64")`, `fix_nated_register()`, `add_contact_alias()`.
//! Calls are not tried: both libraries need WebRTC (`RTCPeerConnection`)
//! for them, which Node.js does not have.
//!
//! Without `node` and the packages installed in `tests/interop/node_modules`
//! (`npm install --prefix crates/siprouter/tests/interop`) the tests print
//! a skip notice and pass, unless `SR_INTEROP_REQUIRED=1`, which `.ci/run`
//! sets after installing them.

use sr_testkit::TestServer;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const DOMAIN: &str = "sip.test";

fn cfg(url: &str) -> String {
    format!(
        r#"
listen=127.0.0.1:{{PORT}}
alias="{DOMAIN}"
tcp_accept_no_cl=yes
loadmodule "tm"
loadmodule "sl"
loadmodule "rr"
loadmodule "pv"
loadmodule "siputils"
loadmodule "textops"
loadmodule "xlog"
loadmodule "db_sqlite"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "auth"
loadmodule "auth_db"
loadmodule "nathelper"
loadmodule "xhttp"
loadmodule "websocket"
modparam("usrloc", "db_url", "{url}")
modparam("usrloc", "db_mode", 1)
modparam("usrloc", "use_domain", 1)
modparam("auth_db", "db_url", "{url}")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")

request_route {{
    force_rport();
    if (nat_uac_test("64")) {{
        if (is_method("REGISTER")) {{
            fix_nated_register();
        }} else if (is_first_hop()) {{
            add_contact_alias();
        }}
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            if (!isdsturiset()) {{
                handle_ruri_alias();
            }}
            t_relay();
        }}
        exit;
    }}
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
    if (!lookup("location")) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    if (!t_relay()) {{
        sl_reply_error();
    }}
}}

event_route[xhttp:request] {{
    set_reply_close();
    set_reply_no_connect();
    if ($hdr(Upgrade) =~ "websocket" && $hdr(Connection) =~ "Upgrade" && $rm =~ "GET") {{
        if (ws_handle_handshake()) {{
            exit;
        }}
    }}
    xhttp_reply("404", "Not Found", "", "");
}}
"#
    )
}

/// The folder with the script and its node_modules.
fn interop_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop"))
}

/// `Some(versions)` when JsSIP and SIP.js can be run here.
fn libraries() -> Option<String> {
    let out = Command::new("node")
        .arg("-e")
        .arg("for (const p of ['jssip', 'sip.js', 'ws']) console.log(p, require(p + '/package.json').version)")
        .current_dir(interop_dir())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .replace('\n', ", ")
    })
}

fn db(url: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .args(["db", "-u", url])
        .args(args)
        .output()
        .expect("run siprouter db");
    assert!(
        out.status.success(),
        "siprouter db {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server with alice and bob as subscribers in a fresh SQLite file;
/// `None` (after a skip notice) when the libraries are not installed.
fn server(name: &str) -> Option<TestServer> {
    let Some(versions) = libraries() else {
        assert!(
            std::env::var("SR_INTEROP_REQUIRED").as_deref() != Ok("1"),
            "SR_INTEROP_REQUIRED=1 but JsSIP and SIP.js are not installed in {}",
            interop_dir().display()
        );
        eprintln!(
            "SKIPPED: node with jssip, sip.js and ws in {} is needed (npm install --prefix {})",
            interop_dir().display(),
            interop_dir().display()
        );
        return None;
    };
    eprintln!("{versions}");
    let dir = std::env::temp_dir().join(format!("siprouter-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/sr.db", dir.display());
    let _ = std::fs::remove_file(dir.join("sr.db"));
    db(&url, &["init"]);
    db(&url, &["add", &format!("alice@{DOMAIN}"), "alice-secret"]);
    db(&url, &["add", &format!("bob@{DOMAIN}"), "bob-secret"]);
    Some(TestServer::start(&cfg(&url), siprouter::in_tree()))
}

/// Runs a client script against `srv`: its event lines, and `ul.dump`
/// taken while both users were registered (at "EVENT READY").
fn drive(srv: &TestServer, script: &str) -> (String, String) {
    let mut child = Command::new("node")
        .arg(script)
        .arg(format!("ws://127.0.0.1:{}", srv.port))
        .arg(DOMAIN)
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    // Up to READY (both registered; the script gives up by itself after
    // 15 s), then a look at the location table.
    let mut early = String::new();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    for l in lines.by_ref().map_while(Result::ok) {
        early.push_str(&l);
        early.push('\n');
        if l == "EVENT READY" {
            break;
        }
    }
    let dump = srv
        .rpc("ul.dump", &[])
        .map(|d| d.to_string())
        .unwrap_or_default();
    let _ = child.stdin.take().expect("stdin").write_all(b"go\n");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().expect("node output");
    let stdout = early + &rest.join("\n");
    let report = format!(
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    (report, dump)
}

/// The location table while both were registered: their WebSocket
/// contacts (a made-up .invalid host with transport=ws) with where they
/// really are (`fix_nated_register`).
fn assert_ws_contacts(dump: &str) {
    for user in ["alice", "bob"] {
        assert!(dump.contains(&format!("{user}@{DOMAIN}")), "{dump}");
    }
    assert_eq!(dump.matches(".invalid;transport=ws").count(), 2, "{dump}");
    assert_eq!(
        dump.matches("sip:127.0.0.1:").count(),
        2,
        "received addresses: {dump}"
    );
}

fn assert_events(report: &str, want: &[&str]) {
    for w in want {
        assert!(report.lines().any(|l| l == *w), "missing {w:?}\n{report}");
    }
}

#[test]
fn jssip_registers_and_exchanges_requests_over_websocket() {
    let Some(srv) = server("jssip") else {
        return;
    };
    let (report, dump) = drive(&srv, "jssip_ua.js");
    assert_events(
        &report,
        &[
            "EVENT REGISTERED bob 200",
            "EVENT REGISTERED alice 200",
            "EVENT BOB_GOT_MESSAGE hello bob, over WebSocket",
            "EVENT MESSAGE_ANSWERED 200",
            "EVENT ALICE_GOT_OPTIONS bob",
            "EVENT OPTIONS_ANSWERED 200",
            "EVENT UNREGISTERED alice",
            "EVENT UNREGISTERED bob",
            "EVENT DONE",
        ],
    );
    assert_ws_contacts(&dump);
    assert!(srv.stat("websocket:ws_successful_handshakes").unwrap() >= 2);
    // Digest: every REGISTER was challenged once (401, then again).
    assert!(
        srv.stat("core:rcv_requests_register").unwrap() >= 4,
        "{report}"
    );
}

#[test]
fn sipjs_registers_and_sends_a_message_over_websocket() {
    let Some(srv) = server("sipjs") else {
        return;
    };
    let (report, dump) = drive(&srv, "sipjs_ua.js");
    assert_events(
        &report,
        &[
            "EVENT REGISTERED bob 200",
            "EVENT REGISTERED alice 200",
            "EVENT BOB_GOT_MESSAGE hello bob, from SIP.js",
            "EVENT MESSAGE_ANSWERED 200",
            "EVENT UNREGISTERED alice",
            "EVENT UNREGISTERED bob",
            "EVENT DONE",
        ],
    );
    assert_ws_contacts(&dump);
}
