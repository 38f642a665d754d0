//! Differential test against Kamailio itself, for db_text: one folder
//! made of Kamailio's own db_text table files (`/usr/share/kamailio/
//! dbtext/kamailio`: version, subscriber, location, dbaliases, domain)
//! with rows added, used by auth_db (digest registration with the
//! password column), usrloc with write-through (`db_mode` 1), alias_db and
//! domain, the same requests to both servers; then `db_text.dump`
//! through Kamailio's `kamcmd` and the location file compared line by
//! line (its times, ruid and ports set aside), after registrations and
//! after one is removed.
//!
//! Without Kamailio (db_text, auth_db, kamcmd, the table files) installed
//! the test prints a notice and passes, unless `SR_KAMAILIO_REQUIRED=1`
//! (`.ci/run` sets it).

use crate::reg_support::Ua;
use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl",
    "pv",
    "textops",
    "db_text",
    "ctl",
    "tm",
    "usrloc",
    "registrar",
    "auth",
    "auth_db",
    "alias_db",
    "domain",
];

const TABLES: &str = "/usr/share/kamailio/dbtext/kamailio";

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("auth_db|usrloc|alias_db|domain", "db_url", "text://__DIR__")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("usrloc", "db_mode", 1)
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "up"); exit; }
    if (is_method("REGISTER")) {
        if (!www_authorize("example.com", "subscriber")) {
            www_challenge("example.com", "0");
            exit;
        }
        save("location");
        exit;
    }
    $var(d) = is_domain_local("$rd");
    $var(a) = alias_db_lookup("dbaliases");
    $var(l) = lookup("location");
    append_to_reply("X-R: d=$var(d) a=$var(a) l=$var(l)\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn ha1(user: &str, pass: &str) -> String {
    sr_mod_auth::digest::ha1(sr_mod_auth::digest::Alg::Md5, user, "example.com", pass)
}

/// The folder: Kamailio's files, with rows.
fn fill(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir.join("db"));
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    for t in [
        "version",
        "subscriber",
        "location",
        "dbaliases",
        "domain",
        "domain_attrs",
    ] {
        std::fs::copy(Path::new(TABLES).join(t), db.join(t)).unwrap();
    }
    let add = |t: &str, rows: &str| {
        let p = db.join(t);
        let mut s = std::fs::read_to_string(&p).unwrap();
        s.push_str(rows);
        std::fs::write(p, s).unwrap();
    };
    add(
        "subscriber",
        &format!(
            "1:alice:example.com:secret:{}:x\n2:bob:example.com:b\\:pw:{}:x\n",
            ha1("alice", "secret"),
            ha1("bob", "b:pw")
        ),
    );
    add(
        "dbaliases",
        "1:al:example.com:alice:example.com\n2:BOBBY:example.com:bob:example.com\n",
    );
    add("domain", "1:example.com::0\n");
}

fn message(peer: &UdpPeer, srv: SocketAddr, to: &str, n: usize) -> String {
    let call = format!("dbt-{n}");
    let req = format!(
        "MESSAGE {to} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:x@example.com>;tag=1\r\nTo: <{to}>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        peer.addr()
    );
    peer.send(srv, &req);
    let r = peer
        .recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        })
        .unwrap_or_else(|| panic!("{call}: no answer"));
    format!("MESSAGE {to}: {}", r.header("X-R").unwrap_or_default())
}

/// The location file's lines, with what differs between runs set aside.
fn location(dir: &Path, srv: SocketAddr, uas: &[&Ua]) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("db/location")).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                return format!("location: {l}");
            }
            // (Fields end at a `:` that is not escaped as `\:`.)
            let mut f: Vec<String> = vec![String::new()];
            let mut esc = false;
            for ch in l.chars() {
                match ch {
                    ':' if !esc => f.push(String::new()),
                    _ => {
                        if let Some(last) = f.last_mut() {
                            last.push(ch);
                        }
                    }
                }
                esc = ch == '\\' && !esc;
            }
            // ruid, expires, last_modified; the socket's port.
            for k in [1, 7, 11] {
                if let Some(x) = f.get_mut(k) {
                    *x = "<varies>".into();
                }
            }
            let mut line = f.join(":");
            for ua in uas {
                line = line.replace(&ua.peer.addr().port().to_string(), "<ua-port>");
            }
            line = line.replace(&srv.port().to_string(), "<server-port>");
            format!("location row: {line}")
        })
        .collect()
}

fn scenario(srv: SocketAddr, sock: &Path, dir: &Path) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let alice = Ua::new("alice");
    let bob = Ua::new("bob");
    let carol = Ua::new("carol");
    for (ua, pass) in [
        (&alice, "secret"),
        (&bob, "wrong"),
        (&bob, "b:pw"),
        (&carol, "x"),
    ] {
        let r = ua.register_auth(srv, pass, 600);
        out.push(format!(
            "REGISTER {} {pass}: {}",
            ua.user,
            r.status().unwrap_or(0)
        ));
    }
    for (n, to) in [
        "sip:alice@example.com",
        "sip:al@example.com",
        "sip:bobby@example.com",
        "sip:nobody@example.com",
        "sip:alice@other.example",
    ]
    .iter()
    .enumerate()
    {
        out.push(message(&peer, srv, to, n));
    }
    let kam = |args: &[&str]| kamailio::kamcmd(sock, args, &|l| l.to_string());
    out.extend(kam(&["db_text.dump"]));
    out.extend(location(dir, srv, &[&alice, &bob]));
    let r = alice.register_auth(srv, "secret", 0);
    out.push(format!("unREGISTER alice: {}", r.status().unwrap_or(0)));
    out.push(message(&peer, srv, "sip:alice@example.com", 9));
    out.extend(kam(&["db_text.dump"]));
    out.extend(location(dir, srv, &[&alice, &bob]));
    out
}

#[test]
fn db_text_matches_kamailio() {
    if !kamailio::available(MODULES)
        || !kamailio::kamcmd_available(&[&format!("{TABLES}/location")])
    {
        return;
    }
    let dir = kamailio::fresh_dir("db_text");
    let sock = dir.join("ctl.sock");
    let cfg = (kamailio::head(MODULES) + BODY)
        .replace("__SOCK__", &sock.display().to_string())
        .replace("__DIR__", &dir.join("db").display().to_string());
    let (want, got) =
        kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| fill(&dir), &|srv| {
            scenario(srv, &sock, &dir)
        });
    assert!(
        want.iter().any(|l| l == "REGISTER alice secret: 200"),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "db_text");
}
