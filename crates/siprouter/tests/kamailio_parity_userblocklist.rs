//! Differential test against Kamailio itself, for the userblocklist
//! module: one SQLite file made with Kamailio's own schema (per-user
//! prefixes, the global list and a second global table), one
//! configuration, the same checks to both servers — `check_user_blocklist`
//! and `check_user_allowlist` with the Request-URI's user or a given
//! number (leading non-digits, a character that ends the walk, longer
//! prefixes overriding shorter ones, the empty prefix, an unknown user),
//! `check_blocklist()` and `check_blocklist`/`check_allowlist` on a named
//! table — then the RPC commands through Kamailio's `kamcmd`, before and
//! after the global table changes and `userblocklist.reload_blocklist`.
//! Every return code and every printed line is compared, in two settings:
//! digits only (`match_mode` 10) and ASCII with `use_domain`
//! (`match_mode` 128).
//!
//! Without Kamailio (its userblocklist and db_sqlite modules, kamcmd)
//! installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "/usr/share/kamailio/db_sqlite/userblocklist-create.sql";

const MODULES: &[&str] = &["sl", "pv", "textops", "db_sqlite", "ctl", "userblocklist"];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("userblocklist", "db_url", "__DB__")
__PARAMS__
request_route {
    if ($hdr(X-U) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-N) != $null) {
        $var(b) = check_user_blocklist("$hdr(X-U)", "$hdr(X-D)", "$hdr(X-N)");
        $var(a) = check_user_allowlist("$hdr(X-U)", "$hdr(X-D)", "$hdr(X-N)");
        $var(t) = check_user_blocklist("$hdr(X-U)", "$hdr(X-D)", "$hdr(X-N)", "otherlist");
    } else {
        $var(b) = check_user_blocklist("$hdr(X-U)", "$hdr(X-D)");
        $var(a) = check_user_allowlist("$hdr(X-U)", "$hdr(X-D)");
        $var(t) = 0;
    }
    $var(g) = check_blocklist();
    $var(gb) = check_blocklist("globalblocklist");
    $var(ga) = check_allowlist("globalblocklist");
    $var(ob) = check_blocklist("othertable");
    $var(oa) = check_allowlist("othertable");
    append_to_reply("X-R: b=$var(b) a=$var(a) t=$var(t) g=$var(g) gb=$var(gb) ga=$var(ga) ob=$var(ob) oa=$var(oa)\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn fill(path: &Path) {
    let _ = std::fs::remove_file(path);
    let schema = std::fs::read_to_string(SCHEMA).expect("Kamailio's userblocklist schema");
    let sql = format!(
        "CREATE TABLE version (table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL);
{schema}
CREATE TABLE otherlist (id INTEGER PRIMARY KEY NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL, prefix VARCHAR(64) DEFAULT '' NOT NULL, allowlist SMALLINT DEFAULT 0 NOT NULL);
CREATE TABLE othertable (id INTEGER PRIMARY KEY NOT NULL, prefix VARCHAR(64) DEFAULT '' NOT NULL, allowlist SMALLINT DEFAULT 0 NOT NULL, description VARCHAR(255) DEFAULT NULL);
INSERT INTO userblocklist (username, domain, prefix, allowlist) VALUES
  ('alice', 'a.example', '49', 0), ('alice', 'a.example', '4930', 1), ('alice', 'a.example', '493012', 0),
  ('alice', 'b.example', '1', 0), ('bob', 'a.example', '', 0), ('bob', 'a.example', '900', 1),
  ('carol', 'a.example', '+44', 0), ('carol', 'a.example', '44', 1), ('carol', 'a.example', '4a', 0);
INSERT INTO otherlist (id, username, domain, prefix, allowlist) VALUES (1, 'alice', 'a.example', '4', 1);
INSERT INTO globalblocklist (prefix, allowlist, description) VALUES ('0900', 0, 'premium'), ('09001', 1, 'ok'), ('00', 0, 'abroad'), ('+1', 1, 'plus');
INSERT INTO othertable (id, prefix, allowlist) VALUES (1, '12', 1), (2, '123', 0);"
    );
    sr_testkit::sqlite3(path, &sql);
}

/// (R-URI user, X-U, X-D, number or "" for the R-URI's user).
const CHECKS: &[(&str, &str, &str, &str)] = &[
    ("4912345", "alice", "a.example", ""),
    ("4930999", "alice", "a.example", ""),
    ("493012", "alice", "a.example", ""),
    ("+4930", "alice", "a.example", ""),
    ("49x30", "alice", "a.example", ""),
    ("5", "alice", "a.example", ""),
    ("1", "alice", "a.example", ""),
    ("0900123", "alice", "a.example", "4930"),
    ("09001", "alice", "a.example", "+49"),
    ("000", "bob", "a.example", ""),
    ("900", "bob", "a.example", ""),
    ("+15551234", "carol", "a.example", ""),
    ("4411", "carol", "a.example", ""),
    ("4a", "carol", "a.example", "+4a1"),
    ("123", "nobody", "x", ""),
    ("abc", "nobody", "x", ""),
];

const RPC_BEFORE: &[&[&str]] = &[
    &["userblocklist.dump_blocklist"],
    &["userblocklist.check_blocklist", "s:09002"],
    &["userblocklist.check_blocklist", "s:090011"],
    &["userblocklist.check_allowlist", "s:090011"],
    &["userblocklist.check_allowlist", "s:+1555"],
    &["userblocklist.check_blocklist", "s:555"],
    &["userblocklist.check_blocklist"],
    &[
        "userblocklist.check_userblocklist",
        "s:4931",
        "alice",
        "a.example",
    ],
    &[
        "userblocklist.check_userblocklist",
        "s:4930",
        "alice",
        "a.example",
    ],
    &[
        "userblocklist.check_userallowlist",
        "s:4930",
        "alice",
        "a.example",
    ],
    &["userblocklist.check_userblocklist", "s:4931", "alice"],
    &["userblocklist.check_userblocklist", "s:1", "alice"],
    &[
        "userblocklist.check_userallowlist",
        "s:777",
        "bob",
        "a.example",
    ],
    &["userblocklist.check_userblocklist", "s:1"],
];

const RPC_AFTER: &[&[&str]] = &[
    &["userblocklist.check_blocklist", "s:0800"],
    &["userblocklist.reload_blocklist"],
    &["userblocklist.check_blocklist", "s:0800"],
    &["userblocklist.dump_blocklist"],
];

fn checks(peer: &UdpPeer, srv: SocketAddr, tag: &str) -> Vec<String> {
    let via = peer.addr().to_string();
    CHECKS
        .iter()
        .enumerate()
        .map(|(n, (ruri, u, d, number))| {
            let call = format!("ub{tag}-{n}");
            let mut h = format!("X-U: {u}\r\nX-D: {d}\r\n");
            if !number.is_empty() {
                h.push_str(&format!("X-N: {number}\r\n"));
            }
            let req = kamailio::options(&call, &h)
                .replace("__VIA__", &via)
                .replace("OPTIONS sip:x@", &format!("OPTIONS sip:{ruri}@"));
            peer.send(srv, &req);
            let r = peer
                .recv_matching(Duration::from_secs(3), |r| {
                    r.status() == Some(200) && r.msg.msg().call_id().ok() == Some(call.as_str())
                })
                .unwrap_or_else(|| panic!("{call}: no answer"));
            format!(
                "{ruri} {u}@{d} {number}: {}",
                r.header("X-R").unwrap_or_default()
            )
        })
        .collect()
}

fn scenario(srv: SocketAddr, sock: &Path, db: &Path) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = checks(&peer, srv, "a");
    out.extend(
        RPC_BEFORE
            .iter()
            .flat_map(|c| kamailio::kamcmd(sock, c, &str::to_string)),
    );
    sr_testkit::sqlite3(db, "INSERT INTO globalblocklist (prefix, allowlist) VALUES ('08', 0); DELETE FROM globalblocklist WHERE prefix = '00';");
    out.extend(
        RPC_AFTER
            .iter()
            .flat_map(|c| kamailio::kamcmd(sock, c, &str::to_string)),
    );
    out
}

#[test]
fn userblocklist_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    if !kamailio::kamcmd_available(&[SCHEMA]) {
        return;
    }
    for (setting, params) in [
        ("digits", ""),
        (
            "ascii",
            "modparam(\"userblocklist\", \"match_mode\", 128)\nmodparam(\"userblocklist\", \"use_domain\", 1)",
        ),
    ] {
        let dir = kamailio::fresh_dir(&format!("userblocklist-{setting}"));
        let sock = dir.join("ctl.sock");
        let db = dir.join("ubl.db");
        let cfg = (kamailio::head(MODULES) + BODY)
            .replace("__SOCK__", &sock.display().to_string())
            .replace("__DB__", &format!("sqlite:///{}", db.display()))
            .replace("__PARAMS__", params);
        let (want, got) = kamailio::run_scenario(
            &dir,
            &cfg,
            siprouter::in_tree(),
            &|| fill(&db),
            &|srv| scenario(srv, &sock, &db),
        );
        assert!(want.iter().any(|l| l.contains("b=-1")), "{setting}: {want:#?}");
        kamailio::conclude(&dir, &want, &got, setting);
    }
}
