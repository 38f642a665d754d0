//! Differential test against Kamailio itself, for module uri_db: one
//! SQLite file (siprouter's tables, read by Kamailio's db_sqlite) with
//! subscribers and `uri` rows; the module on the subscriber table (with
//! `use_domain`) and on the `uri` table (`use_uri_table`). Requests
//! without credentials and REGISTERs answered to a digest challenge; for
//! each the results of `check_to`, `check_from`, `check_uri` with the
//! digest credentials and with given ones, and `does_uri_exist` —
//! matches, other users, case, URIs without user, text that is no URI.
//!
//! Without Kamailio and its SQLite module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use crate::reg_support::{answer, challenge_of, db, Challenge};
use sr_sdk::db::DbValue;
use sr_testkit::kamailio;
use sr_testkit::{Reply, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl",
    "pv",
    "textops",
    "db_sqlite",
    "auth",
    "auth_db",
    "uri_db",
];

const BODY: &str = r#"modparam("auth_db", "db_url", "__DB__")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("uri_db", "db_url", "__DB__")
__PARAMS__
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-T) == "auth") {
        if (!www_authorize("example.com", "subscriber")) {
            www_challenge("example.com", "1");
            exit;
        }
    }
    check_to(); $var(to) = $rc;
    check_from(); $var(from) = $rc;
    check_uri("$hdr(X-U)"); $var(u1) = $rc;
    check_uri("$hdr(X-U)", "alice", "example.com"); $var(u3) = $rc;
    does_uri_exist(); $var(e) = $rc;
    append_to_reply("X-R: to=$var(to) from=$var(from) u1=$var(u1) u3=$var(u3) e=$var(e)\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn fill(url: &str) {
    db(url, "init", &[]);
    db(url, "add", &["alice@example.com", "secret"]);
    db(url, "add", &["bob@example.com", "bobpw"]);
    let mut c = sr_mod_db_sqlite::driver().open(url).expect("open db");
    for (u, d, uu) in [
        ("alice", "example.com", "alice"),
        ("alice", "example.com", "1000"),
        ("bob", "example.com", "bob"),
    ] {
        c.insert(
            "uri",
            &[
                ("username", DbValue::str(u)),
                ("domain", DbValue::str(d)),
                ("uri_user", DbValue::str(uu)),
            ],
        )
        .unwrap();
    }
}

/// Sends a request; its final reply.
fn send(peer: &UdpPeer, srv: SocketAddr, call: &str, r: &Req, auth: &str) -> Option<Reply> {
    let text = format!(
        "{} {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:{}@example.com>;tag=f\r\nTo: <sip:{}@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 {}\r\nContact: <sip:{}@{}>\r\nX-T: {}\r\nX-U: {}\r\n{auth}Content-Length: 0\r\n\r\n",
        r.method,
        r.ruri,
        peer.addr(),
        r.from,
        r.to,
        r.method,
        r.from,
        peer.addr(),
        if r.auth { "auth" } else { "plain" },
        r.xu,
    );
    peer.send(srv, &text);
    peer.recv_matching(Duration::from_secs(3), |x| {
        x.msg.msg().call_id().ok() == Some(call) && x.status().is_some_and(|c| c >= 200)
    })
}

/// What a reply says: its `X-R`, else its status.
fn show(r: Option<&Reply>) -> String {
    match r {
        None => "no reply".into(),
        Some(r) => r
            .header("X-R")
            .unwrap_or_else(|| format!("status {}", r.status().unwrap_or(0))),
    }
}

struct Req {
    method: &'static str,
    ruri: &'static str,
    from: &'static str,
    to: &'static str,
    xu: &'static str,
    auth: bool,
}

fn reqs() -> Vec<Req> {
    let plain = |ruri, from, to, xu| Req {
        method: "OPTIONS",
        ruri,
        from,
        to,
        xu,
        auth: false,
    };
    let auth = |from, to, xu| Req {
        method: "REGISTER",
        ruri: "sip:example.com",
        from,
        to,
        xu,
        auth: true,
    };
    vec![
        plain("sip:alice@example.com", "alice", "alice", "sip:alice@h.net"),
        plain("sip:nobody@example.com", "alice", "bob", "sip:ALICE@h.net"),
        plain("sip:alice@other.com", "bob", "alice", "sip:bob@h.net"),
        plain("sip:example.com", "alice", "alice", "sip:h.net"),
        plain("sip:bob@example.com", "alice", "alice", "not a uri"),
        plain("sip:1000@example.com", "alice", "alice", "sip:1000@h.net"),
        auth("alice", "alice", "sip:alice@h.net"),
        auth("1000", "alice", "sip:bob@h.net"),
        auth("ALICE", "bob", "sip:1000@h.net"),
    ]
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (n, r) in reqs().iter().enumerate() {
        let call = format!("uridb{n}");
        let rep = send(&peer, srv, &call, r, "");
        out.push(format!("{call}: {}", show(rep.as_ref())));
        let Some(rep) = rep.filter(|x| r.auth && x.status() == Some(401)) else {
            continue;
        };
        let c: Challenge = challenge_of(&rep);
        let v = answer("alice", "secret", r.method, r.ruri, &c, 1);
        let call = format!("{call}a");
        let rep = send(&peer, srv, &call, r, &format!("Authorization: {v}\r\n"));
        out.push(format!("{call}: {}", show(rep.as_ref())));
    }
    out
}

#[test]
fn uri_db_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    for (setting, params) in [
        ("subscriber", r#"modparam("uri_db", "use_domain", 1)"#),
        (
            "uri",
            r#"modparam("uri_db", "db_table", "uri")
modparam("uri_db", "use_uri_table", 1)"#,
        ),
    ] {
        let dir = kamailio::fresh_dir(&format!("uri_db-{setting}"));
        let url = format!("sqlite:///{}", dir.join("k.db").display());
        let cfg = (kamailio::head(MODULES) + BODY)
            .replace("__PARAMS__", params)
            .replace("__DB__", &url);
        let (want, got) = kamailio::run_scenario(
            &dir,
            &cfg,
            siprouter::in_tree(),
            &|| {
                let _ = std::fs::remove_file(dir.join("k.db"));
                fill(&url);
            },
            &scenario,
        );
        assert!(
            want.iter().any(|l| l.contains("to=1 from=1 u1=1")),
            "{setting}: {want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, setting);
    }
}
