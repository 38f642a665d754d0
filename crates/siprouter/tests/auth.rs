//! End-to-end: digest authentication (auth + auth_db) of REGISTER with
//! real UDP peers and a real SQLite subscriber table: challenge then
//! success, wrong password, unknown user, replayed nonce, stale nonce,
//! SHA-256, subscribers changed with `siprouter db` while the server runs,
//! `pv_www_authorize`, and a call to a registered user through lookup.

use crate::reg_support::{answer, challenge_of, db, db_dir, Challenge, Ua, T};
use sr_mod_auth::digest::Alg;
use sr_testkit::{Reply, TestServer, UdpPeer};
use std::time::Duration;

fn cfg(url: &str, extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=2
loadmodule "sl"
loadmodule "db_sqlite"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "auth"
loadmodule "auth_db"
modparam("usrloc", "use_domain", 1)
modparam("auth_db", "db_url", "{url}")
modparam("auth", "nonce_count", 1)
{extra}
request_route {{
    if (method == "REGISTER") {{
        if (!auth_check("$td", "subscriber", "1")) {{
            $var(rc) = $rc;
            if ($var(rc) == -4 || $var(rc) == -5) {{
                auth_challenge("$td", "1");
                exit;
            }}
            sl_send_reply("403", "Forbidden rc=$var(rc)");
            exit;
        }}
        consume_credentials();
        save("location");
        exit;
    }}
    if (!lookup("location")) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    forward();
    exit;
}}
"#
    )
}

fn setup(name: &str, extra: &str) -> (std::path::PathBuf, String, TestServer) {
    let (dir, url) = db_dir(name);
    db(&url, "add", &["alice@example.com", "secret"]);
    let srv = TestServer::start(&cfg(&url, extra), siprouter::in_tree());
    (dir, url, srv)
}

fn contact_hdrs(ua: &Ua) -> Vec<String> {
    vec![
        format!("Contact: <{}>", ua.contact()),
        "Expires: 600".into(),
    ]
}

fn with_auth(ua: &Ua, v: String) -> Vec<String> {
    let mut h = contact_hdrs(ua);
    h.push(format!("Authorization: {v}"));
    h
}

/// REGISTER from `ua` answering challenge `ch` with alice's credentials
/// (nonce-count 1).
fn register_as_alice(ua: &Ua, srv: &TestServer, ch: &Challenge) -> Reply {
    let v = answer("alice", "secret", "REGISTER", "sip:example.com", ch, 1);
    ua.register(srv.addr(), &with_auth(ua, v))
}

#[test]
fn challenge_then_success_then_call() {
    let (dir, _url, srv) = setup("ok", "");
    let ua = Ua::new("alice");
    let r = ua.register(srv.addr(), &contact_hdrs(&ua));
    assert_eq!(r.status(), Some(401), "{}", r.text());
    let ch = challenge_of(&r);
    assert_eq!(ch.realm, "example.com");
    assert_eq!(ch.qop.as_deref(), Some("auth"));
    assert_eq!(ch.alg, Alg::Md5);
    assert!(!ch.stale);
    let r = register_as_alice(&ua, &srv, &ch);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert_eq!(srv.stat("usrloc:location_contacts"), Some(1));
    // Both replies went through sl (Kamailio's auth and registrar reply
    // through sl's API), so they count in its statistics.
    assert_eq!(srv.stat("sl:401_replies"), Some(1));
    assert_eq!(srv.stat("sl:200_replies"), Some(1));
    // Someone calls alice: lookup then forward to her contact.
    let bob = UdpPeer::new();
    bob.send(
        srv.addr(),
        &sr_testkit::req(
            "INVITE",
            "sip:alice@example.com",
            bob.addr(),
            "inv1",
            "call-inv",
            1,
            &[],
            "",
        ),
    );
    let got = ua.peer.recv(T).expect("alice gets the INVITE");
    assert_eq!(got.msg.msg().request_uri().unwrap().raw, ua.contact());
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn wrong_password_and_unknown_user() {
    let (dir, _url, srv) = setup("bad", "");
    let ua = Ua::new("alice");
    let ch = challenge_of(&ua.register(srv.addr(), &contact_hdrs(&ua)));
    let r = ua.register(
        srv.addr(),
        &with_auth(
            &ua,
            answer("alice", "wrong", "REGISTER", "sip:example.com", &ch, 1),
        ),
    );
    assert_eq!(r.status(), Some(403));
    assert_eq!(r.msg.msg().reason(), Some("Forbidden rc=-2"));
    let eve = Ua::new("eve");
    let ch = challenge_of(&eve.register(srv.addr(), &contact_hdrs(&eve)));
    let r = eve.register(
        srv.addr(),
        &with_auth(
            &eve,
            answer("eve", "x", "REGISTER", "sip:example.com", &ch, 1),
        ),
    );
    assert_eq!(r.msg.msg().reason(), Some("Forbidden rc=-3"));
    // The From/To user must be the authentication user (flag 1).
    let ch = challenge_of(&eve.register(srv.addr(), &contact_hdrs(&eve)));
    let r = register_as_alice(&eve, &srv, &ch);
    assert_eq!(r.msg.msg().reason(), Some("Forbidden rc=-8"));
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn replayed_nonce_count_is_refused() {
    let (dir, _url, srv) = setup("replay", "");
    let ua = Ua::new("alice");
    let ch = challenge_of(&ua.register(srv.addr(), &contact_hdrs(&ua)));
    let v1 = answer("alice", "secret", "REGISTER", "sip:example.com", &ch, 1);
    assert_eq!(
        ua.register(srv.addr(), &with_auth(&ua, v1.clone()))
            .status(),
        Some(200)
    );
    // The same nonce and nc again (a replay, new CSeq and branch).
    let r = ua.register(srv.addr(), &with_auth(&ua, v1));
    assert_eq!(
        r.msg.msg().reason(),
        Some("Forbidden rc=-6"),
        "{}",
        r.text()
    );
    // The next nonce-count is fine.
    let v2 = answer("alice", "secret", "REGISTER", "sip:example.com", &ch, 2);
    assert_eq!(
        ua.register(srv.addr(), &with_auth(&ua, v2)).status(),
        Some(200)
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stale_nonce_gets_a_new_challenge_with_stale_true() {
    let (dir, _url, srv) = setup("stale", r#"modparam("auth", "nonce_expire", 1)"#);
    let ua = Ua::new("alice");
    let ch = challenge_of(&ua.register(srv.addr(), &contact_hdrs(&ua)));
    std::thread::sleep(Duration::from_millis(2100));
    let r = register_as_alice(&ua, &srv, &ch);
    assert_eq!(r.status(), Some(401), "{}", r.text());
    let ch2 = challenge_of(&r);
    assert!(ch2.stale, "{}", r.text());
    assert_ne!(ch2.nonce, ch.nonce);
    let r = register_as_alice(&ua, &srv, &ch2);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn forged_nonce_is_refused() {
    let (dir, _url, srv) = setup("forged", "");
    let ua = Ua::new("alice");
    let mut ch = challenge_of(&ua.register(srv.addr(), &contact_hdrs(&ua)));
    ch.nonce = format!("ffffffff{}", &ch.nonce[8..]);
    let r = register_as_alice(&ua, &srv, &ch);
    assert_eq!(
        r.msg.msg().reason(),
        Some("Forbidden rc=-1"),
        "{}",
        r.text()
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sha256_digest() {
    let extra = r#"modparam("auth", "algorithm", "SHA-256")
modparam("auth_db", "calculate_ha1", 1)"#;
    let (dir, _url, srv) = setup("sha", extra);
    let ua = Ua::new("alice");
    let ch = challenge_of(&ua.register(srv.addr(), &contact_hdrs(&ua)));
    assert_eq!(ch.alg, Alg::Sha256);
    let r = register_as_alice(&ua, &srv, &ch);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn subscribers_change_while_the_server_runs() {
    let (dir, url, srv) = setup("cli", "");
    let bob = Ua::new("bob");
    assert_eq!(
        bob.register_auth(srv.addr(), "pw1", 600).status(),
        Some(403)
    );
    db(&url, "add", &["bob@example.com", "pw1"]);
    assert!(db(&url, "list", &[]).contains("bob@example.com"));
    assert_eq!(
        bob.register_auth(srv.addr(), "pw1", 600).status(),
        Some(200)
    );
    db(&url, "passwd", &["bob@example.com", "pw2"]);
    let r = bob.register_auth(srv.addr(), "pw1", 600);
    assert_eq!(r.msg.msg().reason(), Some("Forbidden rc=-2"));
    assert_eq!(
        bob.register_auth(srv.addr(), "pw2", 600).status(),
        Some(200)
    );
    db(&url, "rm", &["bob@example.com"]);
    let r = bob.register_auth(srv.addr(), "pw2", 600);
    assert_eq!(r.msg.msg().reason(), Some("Forbidden rc=-3"));
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stored_ha1_without_plain_password() {
    let (dir, url) = db_dir("ha1");
    db(&url, "add", &["alice@example.com", "secret"]);
    {
        use sr_sdk::db::{Cond, DbValue};
        let mut c = sr_mod_db_sqlite::driver().open(&url).unwrap();
        c.update(
            "subscriber",
            &[Cond::eq("username", DbValue::str("alice"))],
            &[("password", DbValue::str(""))],
        )
        .unwrap();
    }
    let srv = TestServer::start(&cfg(&url, ""), siprouter::in_tree());
    let ua = Ua::new("alice");
    assert_eq!(
        ua.register_auth(srv.addr(), "secret", 600).status(),
        Some(200)
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pv_www_authorize_checks_a_password_from_the_script() {
    let config = r#"
listen=udp:127.0.0.1:{PORT}
children=1
loadmodule "sl"
loadmodule "auth"
request_route {
    if (!pv_www_authorize("example.com", "letmein", "0")) {
        www_challenge("example.com", "0");
        exit;
    }
    sl_send_reply("200", "Welcome $au");
    exit;
}
"#;
    let srv = TestServer::start(config, siprouter::in_tree());
    let ua = Ua::new("zed");
    let r = ua.register(srv.addr(), &contact_hdrs(&ua));
    let ch = challenge_of(&r);
    assert!(ch.qop.is_none());
    let r = ua.register(
        srv.addr(),
        &with_auth(
            &ua,
            answer("zed", "letmein", "REGISTER", "sip:example.com", &ch, 1),
        ),
    );
    assert_eq!(r.msg.msg().reason(), Some("Welcome zed"), "{}", r.text());
}
