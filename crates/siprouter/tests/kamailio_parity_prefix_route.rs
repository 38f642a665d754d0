//! Differential test against Kamailio itself, for the prefix_route
//! module, on a real MariaDB server (Kamailio's prefix_route reads through
//! the srdb2 interface, which its db_sqlite lacks): prefixes with a
//! character that is not a digit, an empty prefix, a prefix set twice, a
//! route name longer than the dump keeps; then the same requests to both
//! servers — users longer than a prefix, equal to one, with characters
//! that are not digits, matching nothing, a Request-URI without a user,
//! the user from a parameter — with `exit` on and off; then
//! `prefix_route.dump`, `prefix_route.reload` after the table changed and
//! after it named a route that does not exist (refused, the tree in use
//! kept), through Kamailio's `kamcmd`.
//!
//! Without Kamailio (prefix_route, db_mysql, kamcmd) or MariaDB installed
//! the test prints a notice and passes, unless `SR_KAMAILIO_REQUIRED=1`
//! and `SR_MARIADB_REQUIRED=1` (`.ci/run` sets them).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "db_mysql", "ctl", "prefix_route"];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("prefix_route", "db_url", "__DB__")
modparam("prefix_route", "exit", __EXIT__)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(in_route) = __EXIT__;
    if ($hdr(X-U) != $null) { prefix_route("$hdr(X-U)"); } else { prefix_route(); }
    $var(rc) = $rc;
    append_to_reply("X-Rc: $var(rc)\r\n");
    sl_send_reply("200", "after");
}
route[SE] { append_to_reply("X-Route: SE $rU\r\n"); route(DONE); }
route[NO] { append_to_reply("X-Route: NO $rU\r\n"); route(DONE); }
route[NOMOB] { append_to_reply("X-Route: NOMOB\r\n"); route(DONE); }
route[DE] { append_to_reply("X-Route: DE\r\n"); route(DONE); }
route[ANY] { append_to_reply("X-Route: ANY\r\n"); route(DONE); }
route[IT2] { append_to_reply("X-Route: IT2\r\n"); route(DONE); }
route[A_VERY_LONG_ROUTE_NAME] { append_to_reply("X-Route: LONG\r\n"); route(DONE); }
route[FR] { append_to_reply("X-Route: FR\r\n"); route(DONE); }
route[DONE] { if ($var(in_route) == 1) { sl_send_reply("200", "in route"); } }
"#;

const TABLE: &str = "USE kamailio; DROP TABLE IF EXISTS prefix_route;
    CREATE TABLE prefix_route (prefix VARCHAR(64) NOT NULL DEFAULT '', route VARCHAR(64) NOT NULL DEFAULT '', comment VARCHAR(64) NOT NULL DEFAULT '');
    INSERT INTO prefix_route VALUES ('46','SE','Sweden'),('47','NO','Norway'),('4-7-9','NOMOB','mobile'),
      ('49','DE','Deutschland'),('39','SE','first'),('39','IT2','second'),('',  'ANY','everything'),
      ('123456','A_VERY_LONG_ROUTE_NAME','long');";

/// (Request-URI, X-U header) of each request.
const CASES: &[(&str, Option<&str>)] = &[
    ("sip:4612@x.com", None),
    ("sip:46@x.com", None),
    ("sip:+47-123@x.com", None),
    ("sip:4791@x.com", None),
    ("sip:479@x.com", None),
    ("sip:49@x.com", None),
    ("sip:391@x.com", None),
    ("sip:1234567@x.com", None),
    ("sip:5@x.com", None),
    ("sip:abc@x.com", None),
    ("sip:x.com", None),
    ("sip:x.com", Some("4699")),
    ("sip:4612@x.com", Some("nothing")),
    ("sip:4612@x.com", Some("33 1")),
];

fn ask(peer: &UdpPeer, srv: SocketAddr, tag: &str) -> Vec<String> {
    CASES
        .iter()
        .enumerate()
        .map(|(i, (ruri, user))| {
            let call = format!("pr-{tag}-{i}");
            let extra = user.map_or(String::new(), |u| format!("X-U: {u}\r\n"));
            let req = format!(
                "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-T: 1\r\n{extra}Content-Length: 0\r\n\r\n",
                peer.addr()
            );
            peer.send(srv, &req);
            let r = peer
                .recv_matching(Duration::from_secs(3), |r| {
                    r.msg.msg().call_id().ok() == Some(call.as_str())
                })
                .unwrap_or_else(|| panic!("{call}: no answer"));
            format!(
                "{tag} {ruri} {user:?}: {} | {} | {}",
                r.text().lines().next().unwrap_or_default(),
                r.header("X-Route").unwrap_or_default(),
                r.header("X-Rc").unwrap_or_default()
            )
        })
        .collect()
}

fn scenario(srv: SocketAddr, sock: &Path, db: &sr_testkit::mariadb::MariaDb) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = ask(&peer, srv, "start");
    let kam = |args: &[&str]| kamailio::kamcmd(sock, args, &|l| l.to_string());
    out.extend(kam(&["prefix_route.dump"]));
    db.root_sql(
        "USE kamailio; DELETE FROM prefix_route WHERE route = 'ANY';
         INSERT INTO prefix_route VALUES ('33','FR','France');",
    );
    out.extend(kam(&["prefix_route.reload"]));
    out.extend(kam(&["prefix_route.dump"]));
    out.extend(ask(&peer, srv, "reloaded"));
    db.root_sql("USE kamailio; INSERT INTO prefix_route VALUES ('7','NOWHERE','missing');");
    out.extend(kam(&["prefix_route.reload"]));
    out.extend(kam(&["prefix_route.dump"]));
    out
}

#[test]
fn prefix_route_matches_kamailio() {
    if !kamailio::available(MODULES) || !kamailio::kamcmd_available(&[]) {
        return;
    }
    let Some(server) = sr_testkit::mariadb::start("prefix_route") else {
        return;
    };
    for exit in ["1", "0"] {
        let dir = kamailio::fresh_dir(&format!("prefix_route{exit}"));
        let sock = dir.join("ctl.sock");
        let cfg = (kamailio::head(MODULES) + BODY)
            .replace("__SOCK__", &sock.display().to_string())
            .replace("__DB__", &server.url())
            .replace("__EXIT__", exit);
        let (want, got) = kamailio::run_scenario(
            &dir,
            &cfg,
            siprouter::in_tree(),
            &|| server.root_sql(TABLE),
            &|srv| scenario(srv, &sock, &server),
        );
        assert!(
            want.iter()
                .any(|l| l.starts_with("start sip:4612@x.com None:") && l.contains("SE 4612")),
            "{want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, &format!("prefix_route, exit={exit}"));
    }
}
