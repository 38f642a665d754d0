//! Differential test against Kamailio itself, for pipelimit, within one
//! interval (the timer never runs during the test): pipes from the
//! `pl_pipes` table (SQLite) and made by `pl_check(name, algo, limit)`,
//! TAILDROP counting dropped requests too, a limit of 0, a limit
//! replaced while the algorithm stays, unknown pipes and algorithms, NOP,
//! RED before any load, negative limits, `pl_active`, and `pl_drop` with
//! no, one (also 0) and two values — compared: every return code, and
//! the drop replies' code, reason and Retry-After.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &["db_sqlite", "sl", "pv", "textops", "pipelimit"];

const BODY: &str = r#"
modparam("pipelimit", "db_url", "__DB__")
modparam("pipelimit", "timer_interval", 300)
request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    $var(op) = $hdr(X-Op);
    $var(p) = $hdr(X-P);
    $var(rc) = "none";
    if ($var(op) == "check") { $var(rc) = pl_check("$var(p)"); }
    else if ($var(op) == "checkw") { $var(rc) = pl_check("$var(p)", "$hdr(X-A)", "$(hdr(X-L){s.int})"); }
    else if ($var(op) == "active") { $var(rc) = pl_active("$var(p)"); }
    else if ($var(op) == "drop0") { pl_drop(); exit; }
    else if ($var(op) == "drop1") { pl_drop("30"); exit; }
    else if ($var(op) == "drop1z") { pl_drop("0"); exit; }
    else if ($var(op) == "drop2") { pl_drop("20", "20"); exit; }
    append_to_reply("X-RC: $var(rc)\r\n");
    sl_send_reply("200", "done");
}
"#;

fn sqlite(db: &Path, sql: &str) {
    sr_testkit::sqlite3(db, sql);
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let steps: Vec<(&str, &str, &str, &str)> = vec![
        ("check", "dbp", "", ""),
        ("check", "dbp", "", ""),
        ("check", "dbp", "", ""),
        ("check", "dbnop", "", ""),
        ("checkw", "p1", "TAILDROP", "3"),
        ("check", "p1", "", ""),
        ("check", "p1", "", ""),
        ("check", "p1", "", ""),
        ("check", "p1", "", ""),
        ("check", "unknown", "", ""),
        ("checkw", "p2", "bogus", "1"),
        ("checkw", "p3", "TAILDROP", "0"),
        ("checkw", "p1", "RED", "10"),
        ("check", "p1", "", ""),
        ("checkw", "p1", "TAILDROP", "0"),
        ("checkw", "p4", "NOP", "5"),
        ("checkw", "p5", "TAILDROP", "-1"),
        ("checkw", "p6", "RED", "2"),
        ("check", "p6", "", ""),
        ("check", "p6", "", ""),
        ("active", "p1", "", ""),
        ("active", "nope", "", ""),
        ("active", "dbp", "", ""),
        ("drop0", "", "", ""),
        ("drop1", "", "", ""),
        ("drop1z", "", "", ""),
        ("drop2", "", "", ""),
    ];
    let mut out = Vec::new();
    for (n, (op, p, a, l)) in steps.into_iter().enumerate() {
        let call = format!("pl{n}");
        let extra = format!("X-Op: {op}\r\nX-P: {p}\r\nX-A: {a}\r\nX-L: {l}\r\n");
        peer.send(
            srv,
            &kamailio::options(&call, &extra).replace("__VIA__", &peer.addr().to_string()),
        );
        let r = peer.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
                && r.status().is_some_and(|c| c >= 200)
        });
        out.push(match r {
            Some(r) => format!(
                "{op} {p} {a} {l} -> {} {} rc={} retry-after={}",
                r.status().unwrap_or(0),
                r.msg.msg().reason().unwrap_or(""),
                r.header("X-RC").unwrap_or_default(),
                r.header("Retry-After").unwrap_or_default()
            ),
            None => format!("{op} {p} {a} {l} -> nothing"),
        });
    }
    out
}

#[test]
fn pipelimit_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("pipelimit");
    let db = dir.join("pl.db");
    let cfg =
        (kamailio::head(MODULES) + BODY).replace("__DB__", &format!("sqlite:///{}", db.display()));
    let prepare = || {
        let _ = std::fs::remove_file(&db);
        for f in ["standard-create.sql", "pipelimit-create.sql"] {
            let sql = std::fs::read_to_string(format!("/usr/share/kamailio/db_sqlite/{f}"))
                .expect("Kamailio's SQLite schema");
            sqlite(&db, &sql);
        }
        sqlite(
            &db,
            "INSERT INTO pl_pipes (pipeid, algorithm, plimit) VALUES ('dbp', 'TAILDROP', 2), ('dbnop', 'NOP', 0);",
        );
    };
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &prepare, &scenario);
    assert!(want.iter().any(|l| l.contains("rc=-1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "pipelimit");
}
