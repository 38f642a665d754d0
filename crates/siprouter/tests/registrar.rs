//! End-to-end: registrar and usrloc with real UDP peers on 127.0.0.1 and
//! real SQLite files: add, refresh, remove, `*`, CSeq ordering,
//! max_contacts, expiry, lookup + forwarding, Path, method filtering,
//! lookup + t_relay, persistence across restarts in db_mode 1, 2 and 3 (and a kill -9 in
//! mode 1), and a table of the wrong version refused.

use crate::reg_support::{contacts, db, db_dir, expires_of, Ua, T};
use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, UdpPeer};
use std::time::Duration;

fn cfg(db_mode: u8, url: &str, extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=2
loadmodule "sl"
loadmodule "db_sqlite"
loadmodule "usrloc"
loadmodule "registrar"
modparam("usrloc", "db_mode", {db_mode})
modparam("usrloc", "db_url", "{url}")
modparam("usrloc", "use_domain", 1)
modparam("usrloc", "timer_interval", 1)
modparam("registrar", "min_expires", 1)
{extra}
request_route {{
    if (method == "REGISTER") {{
        save("location");
        exit;
    }}
    lookup("location");
    switch ($rc) {{
        case -1:
            sl_send_reply("404", "Not Found");
            exit;
        case -2:
            sl_send_reply("405", "Method Not Allowed");
            exit;
        case -3:
            sl_send_reply("500", "Server Error");
            exit;
    }}
    forward();
    exit;
}}
"#
    )
}

fn mem_cfg(extra: &str) -> String {
    cfg(0, "", extra)
}

fn message(from: &UdpPeer, to_user: &str, n: u32) -> String {
    sr_testkit::req(
        "MESSAGE",
        &format!("sip:{to_user}@example.com"),
        from.addr(),
        &format!("msg{n}"),
        &format!("call-msg-{n}"),
        1,
        &[],
        "hello",
    )
}

fn c(ua: &Ua, expires: u32) -> Vec<String> {
    vec![format!("Contact: <{}>;expires={expires}", ua.contact())]
}

#[test]
fn add_refresh_remove_and_star() {
    let srv = TestServer::start(&mem_cfg(""), siprouter::in_tree());
    let ua = Ua::new("alice");
    let other = format!("sip:alice@127.0.0.1:{}", 1);
    let r = ua.register(srv.addr(), &c(&ua, 600));
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert_eq!(expires_of(&r, &ua.contact()), Some(600));
    // A second binding: the reply lists both.
    let r = ua.register(
        srv.addr(),
        &[format!("Contact: <{other}>;q=0.5"), "Expires: 300".into()],
    );
    assert_eq!(contacts(&r).len(), 2, "{}", r.text());
    assert_eq!(expires_of(&r, &other), Some(300));
    assert!(r.text().contains(";q=0.5"), "{}", r.text());
    // Refresh the first with a new expiry.
    let r = ua.register(srv.addr(), &c(&ua, 900));
    assert_eq!(expires_of(&r, &ua.contact()), Some(900));
    assert_eq!(contacts(&r).len(), 2);
    // Query only (no Contact): both still listed.
    let r = ua.register(srv.addr(), &[]);
    assert_eq!(contacts(&r).len(), 2, "{}", r.text());
    assert_eq!(srv.stat("usrloc:location_contacts"), Some(2));
    assert_eq!(srv.stat("usrloc:registered_users"), Some(1));
    // Remove one.
    let r = ua.register(srv.addr(), &c(&ua, 0));
    // (The other binding's time left counts down: a second may have
    // passed since it was made.)
    let left = contacts(&r);
    assert!(
        left == [format!("<{other}>;q=0.5;expires=300")]
            || left == [format!("<{other}>;q=0.5;expires=299")],
        "{left:?}"
    );
    let v = srv
        .rpc(
            "ul.lookup",
            &[json!("location"), json!("alice@example.com")],
        )
        .unwrap();
    assert_eq!(v["Contacts"].as_array().unwrap().len(), 1, "{v}");
    // `*` with Expires 0 removes all.
    let r = ua.register(srv.addr(), &["Contact: *".into(), "Expires: 0".into()]);
    assert_eq!(r.status(), Some(200));
    assert!(contacts(&r).is_empty(), "{}", r.text());
    assert!(srv
        .rpc(
            "ul.lookup",
            &[json!("location"), json!("alice@example.com")]
        )
        .is_err());
    // `*` with a non-zero Expires is refused.
    let r = ua.register(srv.addr(), &["Contact: *".into(), "Expires: 10".into()]);
    assert_eq!(r.status(), Some(400));
    assert_eq!(
        r.header("P-Registrar-Error").as_deref(),
        Some("* used in contact and expires is not zero")
    );
    // So is `*` with other contacts (RFC 3261 10.2.2; Kamailio 5.6.3
    // takes it as `*` alone and removes every binding).
    ua.register(srv.addr(), &c(&ua, 600));
    let r = ua.register(
        srv.addr(),
        &[format!("Contact: *, <{other}>"), "Expires: 0".into()],
    );
    assert_eq!(r.status(), Some(400), "{}", r.text());
    assert_eq!(
        r.header("P-Registrar-Error").as_deref(),
        Some("* used in contact and more than 1 contact")
    );
    assert_eq!(srv.stat("usrloc:location_contacts"), Some(1));
    assert_eq!(srv.stat("registrar:accepted_regs"), Some(7));
    assert_eq!(srv.stat("registrar:rejected_regs"), Some(2));
}

#[test]
fn old_cseq_is_refused_and_expires_are_clamped() {
    let extra = r#"modparam("registrar", "max_expires", 1000)
modparam("registrar", "default_expires", 120)"#;
    let srv = TestServer::start(&mem_cfg(extra), siprouter::in_tree());
    let ua = Ua::new("carol");
    let r = ua.register_cseq(srv.addr(), &c(&ua, 5000), 10);
    assert_eq!(expires_of(&r, &ua.contact()), Some(1000), "{}", r.text());
    let r = ua.register_cseq(srv.addr(), &c(&ua, 50), 9);
    assert_eq!(r.status(), Some(400), "{}", r.text());
    // No expires anywhere: default_expires.
    let r = ua.register_cseq(srv.addr(), &[format!("Contact: <{}>", ua.contact())], 11);
    assert_eq!(expires_of(&r, &ua.contact()), Some(120), "{}", r.text());
    assert_eq!(srv.stat("registrar:max_expires"), Some(1000));
    assert_eq!(srv.stat("registrar:default_expire"), Some(120));
}

#[test]
fn max_contacts_rejects_with_503() {
    let extra = r#"modparam("registrar", "max_contacts", 2)
modparam("registrar", "retry_after", 30)"#;
    let srv = TestServer::start(&mem_cfg(extra), siprouter::in_tree());
    let ua = Ua::new("dave");
    for i in 1..=2 {
        let r = ua.register(
            srv.addr(),
            &[format!("Contact: <sip:dave@10.0.0.{i}>;expires=60")],
        );
        assert_eq!(r.status(), Some(200));
    }
    let r = ua.register(
        srv.addr(),
        &["Contact: <sip:dave@10.0.0.3>;expires=60".into()],
    );
    assert_eq!(r.status(), Some(503), "{}", r.text());
    assert_eq!(r.header("Retry-After").as_deref(), Some("30"));
    // A refresh of an existing one is still fine.
    let r = ua.register(
        srv.addr(),
        &["Contact: <sip:dave@10.0.0.1>;expires=90".into()],
    );
    assert_eq!(r.status(), Some(200));
    assert_eq!(srv.stat("registrar:rejected_regs"), Some(1));
    assert_eq!(srv.stat("registrar:max_contacts"), Some(2));
    // The refused one changed nothing, and the 503 listed what is there.
    assert_eq!(srv.stat("usrloc:location_contacts"), Some(2));
}

#[test]
fn replace_mode_is_not_refused_by_max_contacts() {
    // save(..., 0x04): the request's contacts replace the others, so a
    // phone moving to a new address is not over the limit (as Kamailio,
    // which counts only outside replace mode).
    let extra = r#"modparam("registrar", "max_contacts", 1)"#;
    let cfg = mem_cfg(extra).replace("save(\"location\");", "save(\"location\", \"0x04\");");
    assert!(cfg.contains("0x04"));
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let ua = Ua::new("fred");
    for i in 1..=2 {
        let r = ua.register(
            srv.addr(),
            &[format!("Contact: <sip:fred@10.0.1.{i}>;expires=60")],
        );
        assert_eq!(r.status(), Some(200), "{}", r.text());
        assert_eq!(
            contacts(&r),
            vec![format!("<sip:fred@10.0.1.{i}>;expires=60")]
        );
    }
}

#[test]
fn contacts_expire_on_the_timer() {
    let srv = TestServer::start(&mem_cfg(""), siprouter::in_tree());
    let ua = Ua::new("erin");
    let r = ua.register(srv.addr(), &c(&ua, 1));
    assert_eq!(r.status(), Some(200));
    assert_eq!(srv.stat("usrloc:location_contacts"), Some(1));
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(srv.stat("usrloc:location_contacts"), Some(0));
    assert_eq!(srv.stat("usrloc:location_expires"), Some(1));
    let caller = UdpPeer::new();
    caller.send(srv.addr(), &message(&caller, "erin", 1));
    assert_eq!(caller.recv_final(T).unwrap().status(), Some(404));
}

#[test]
fn lookup_forwards_to_the_registered_contact() {
    let srv = TestServer::start(&mem_cfg(""), siprouter::in_tree());
    let bob = Ua::new("bob");
    assert_eq!(bob.register(srv.addr(), &c(&bob, 600)).status(), Some(200));
    let alice = UdpPeer::new();
    alice.send(srv.addr(), &message(&alice, "bob", 1));
    let got = bob.peer.recv(T).expect("bob gets the MESSAGE");
    assert_eq!(got.msg.msg().request_uri().unwrap().raw, bob.contact());
    // Not registered: 404 from the switch on $rc.
    alice.send(srv.addr(), &message(&alice, "nobody", 2));
    assert_eq!(alice.recv_final(T).unwrap().status(), Some(404));
}

#[test]
fn method_filtering_uses_the_stored_allow() {
    let extra = r#"modparam("registrar", "method_filtering", 1)"#;
    let srv = TestServer::start(&mem_cfg(extra), siprouter::in_tree());
    let bob = Ua::new("frank");
    let mut h = c(&bob, 600);
    h.push("Allow: INVITE, ACK, BYE, CANCEL".into());
    assert_eq!(bob.register(srv.addr(), &h).status(), Some(200));
    let alice = UdpPeer::new();
    alice.send(srv.addr(), &message(&alice, "frank", 1));
    assert_eq!(alice.recv_final(T).unwrap().status(), Some(405));
}

#[test]
fn path_is_stored_and_used_for_lookup() {
    let edge = UdpPeer::new();
    let extra = r#"modparam("registrar", "use_path", 1)
modparam("registrar", "path_mode", 1)"#;
    let srv = TestServer::start(&mem_cfg(extra), siprouter::in_tree());
    let ua = Ua::new("gina");
    let path = format!("<sip:{};lr>", edge.addr());
    let mut h = c(&ua, 600);
    h.push(format!("Path: {path}"));
    h.push("Supported: path".into());
    let r = ua.register(srv.addr(), &h);
    assert_eq!(r.status(), Some(200));
    assert_eq!(
        r.header("Path").as_deref(),
        Some(path.as_str()),
        "{}",
        r.text()
    );
    let alice = UdpPeer::new();
    alice.send(srv.addr(), &message(&alice, "gina", 1));
    let got = edge.recv(T).expect("the Path hop gets the request");
    assert_eq!(got.msg.msg().request_uri().unwrap().raw, ua.contact());
    assert_eq!(got.header("Route").as_deref(), Some(path.as_str()));
}

fn register_and_check(srv: &TestServer, ua: &Ua) {
    let r = ua.register(srv.addr(), &c(ua, 600));
    assert_eq!(r.status(), Some(200), "{}", r.text());
}

fn lookup_count(srv: &TestServer, aor: &str) -> usize {
    srv.rpc("ul.lookup", &[json!("location"), json!(aor)])
        .map_or(0, |v| v["Contacts"].as_array().map_or(0, |a| a.len()))
}

fn persists(db_mode: u8) {
    let (dir, url) = db_dir(&format!("persist{db_mode}"));
    let config = cfg(db_mode, &url, "");
    let ua = Ua::new("henry");
    {
        let srv = TestServer::start(&config, siprouter::in_tree());
        register_and_check(&srv, &ua);
        let r = ua.register(
            srv.addr(),
            &["Contact: <sip:henry@10.1.1.1>;expires=1".into()],
        );
        assert_eq!(contacts(&r).len(), 2);
        assert_eq!(lookup_count(&srv, "henry@example.com"), 2);
        std::thread::sleep(Duration::from_millis(1500));
    }
    // A new server on the same file: the unexpired contact is back.
    let srv = TestServer::start(&config, siprouter::in_tree());
    assert_eq!(
        lookup_count(&srv, "henry@example.com"),
        1,
        "db_mode {db_mode}"
    );
    let alice = UdpPeer::new();
    alice.send(srv.addr(), &message(&alice, "henry", 1));
    let got = ua
        .peer
        .recv(T)
        .expect("henry gets the MESSAGE after restart");
    assert_eq!(got.msg.msg().request_uri().unwrap().raw, ua.contact());
    // What is in the file matches.
    let rows = {
        let mut conn = sr_mod_db_sqlite::driver().open(&url).unwrap();
        conn.query("location", &[], &["contact", "expires"], None)
            .unwrap()
    };
    assert!(rows
        .rows
        .iter()
        .any(|r| r[0].as_string().as_deref() == Some(ua.contact().as_str())));
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn persistence_db_mode_1() {
    persists(1);
}

#[test]
fn persistence_db_mode_2() {
    persists(2);
}

#[test]
fn persistence_db_mode_3() {
    persists(3);
}

#[test]
fn db_mode_2_writes_on_the_timer() {
    let (dir, url) = db_dir("wb");
    let srv = TestServer::start(&cfg(2, &url, ""), siprouter::in_tree());
    let ua = Ua::new("ivan");
    register_and_check(&srv, &ua);
    std::thread::sleep(Duration::from_millis(1600));
    let mut conn = { sr_mod_db_sqlite::driver().open(&url).unwrap() };
    let rows = conn
        .query("location", &[], &["username", "domain"], None)
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.get(0, "username").as_string().as_deref(), Some("ivan"));
    assert_eq!(
        rows.get(0, "domain").as_string().as_deref(),
        Some("example.com")
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn wrong_table_version_is_refused() {
    let (dir, url) = db_dir("ver");
    {
        use sr_sdk::db::{Cond, DbValue};
        let mut conn = sr_mod_db_sqlite::driver().open(&url).unwrap();
        conn.update(
            "version",
            &[Cond::eq("table_name", DbValue::str("location"))],
            &[("table_version", DbValue::Int(8))],
        )
        .unwrap();
    }
    let e = TestServer::try_start(&cfg(1, &url, ""), siprouter::in_tree())
        .err()
        .expect("refused");
    let text = e.join("\n");
    assert!(
        text.contains("version 8") && text.contains("expected 9"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn db_init_is_idempotent_and_writes_kamailio_versions() {
    let (dir, url) = db_dir("init");
    assert_eq!(
        db(&url, "init", &[]),
        "all tables are in place (made when the database was opened, or before)\n"
    );
    let v = db(&url, "version", &[]);
    for want in [
        "version 1",
        "location 9",
        "location_attrs 1",
        "subscriber 7",
    ] {
        assert!(v.lines().any(|l| l == want), "{v}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn db_mode_1_survives_kill_9() {
    use std::process::{Command, Stdio};
    let (dir, url) = db_dir("kill");
    let port = sr_testkit::free_port();
    let cfg_path = dir.join("k.cfg");
    std::fs::write(
        &cfg_path,
        cfg(1, &url, "").replace("{PORT}", &port.to_string()),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .args(["-DD", "-E", "-f"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start siprouter");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let ua = Ua::new("kim");
    // Wait until it answers (an OPTIONS to nobody gets a 404).
    let probe = UdpPeer::new();
    let mut ok = false;
    for i in 0..100 {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("siprouter exited: {st}");
        }
        probe.send(addr, &message(&probe, "nobody", 100 + i));
        if probe.recv_final(Duration::from_millis(100)).is_some() {
            ok = true;
            break;
        }
    }
    assert!(ok, "server did not start");
    let r = ua.register(addr, &c(&ua, 600));
    assert_eq!(r.status(), Some(200), "{}", r.text());
    // Acknowledged: kill -9 at once, no shutdown work.
    child.kill().expect("kill -9");
    let _ = child.wait();
    let srv = TestServer::start(&cfg(1, &url, ""), siprouter::in_tree());
    assert_eq!(lookup_count(&srv, "kim@example.com"), 1);
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn lookup_then_t_relay() {
    let config = r#"
listen=udp:127.0.0.1:{PORT}
children=2
loadmodule "sl"
loadmodule "tm"
loadmodule "usrloc"
loadmodule "registrar"
modparam("usrloc", "use_domain", 1)
request_route {
    if (method == "REGISTER") {
        save("location");
        exit;
    }
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    t_relay();
    exit;
}
"#;
    let srv = TestServer::start(config, siprouter::in_tree());
    let bob = Ua::new("tina");
    assert_eq!(bob.register(srv.addr(), &c(&bob, 600)).status(), Some(200));
    let alice = UdpPeer::new();
    alice.send(srv.addr(), &message(&alice, "tina", 1));
    let got = bob.peer.recv(T).expect("tina gets the MESSAGE through tm");
    assert_eq!(got.msg.msg().request_uri().unwrap().raw, bob.contact());
}

/// The registrar replies through sl, as Kamailio's does through sl's API:
/// its replies count in sl's statistics.
#[test]
fn registrar_replies_count_in_sl_statistics() {
    let srv = TestServer::start(&mem_cfg(""), siprouter::in_tree());
    let ua = Ua::new("carol");
    assert_eq!(ua.register(srv.addr(), &c(&ua, 600)).status(), Some(200));
    assert_eq!(ua.register(srv.addr(), &[]).status(), Some(200));
    let r = ua.register(srv.addr(), &["Contact: *".into(), "Expires: 10".into()]);
    assert_eq!(r.status(), Some(400));
    assert_eq!(srv.stat("sl:200_replies"), Some(2));
    assert_eq!(srv.stat("sl:400_replies"), Some(1));
    assert_eq!(srv.stat("sl:sent_replies"), Some(3));
    // As in Kamailio, only sl_reply_error() counts in sent_err_replies.
    assert_eq!(srv.stat("sl:sent_err_replies"), Some(0));
}

/// `expires_range` and `default_expires_range` spread the expiries over
/// `[expires - range%, expires]`, as Kamailio does; more than 100 is
/// refused at start.
#[test]
fn expires_ranges_spread_the_expiries() {
    let srv = TestServer::start(
        &mem_cfg(
            "modparam(\"registrar\", \"expires_range\", 50)\nmodparam(\"registrar\", \"default_expires_range\", 30)",
        ),
        siprouter::in_tree(),
    );
    let mut asked = std::collections::HashSet::new();
    let mut defaulted = std::collections::HashSet::new();
    for i in 0..12 {
        let ua = Ua::new(&format!("range{i}"));
        let r = ua.register(srv.addr(), &c(&ua, 3600));
        let e = expires_of(&r, &ua.contact()).expect("an expiry");
        assert!((1800..=3600).contains(&e), "{e}");
        asked.insert(e);
        // No expiry asked for: the default (3600) spread by 30%.
        let r = ua.register(srv.addr(), &[format!("Contact: <{}>", ua.contact())]);
        let e = expires_of(&r, &ua.contact()).expect("an expiry");
        assert!((2520..=3600).contains(&e), "{e}");
        defaulted.insert(e);
    }
    assert!(
        asked.len() > 2 && defaulted.len() > 2,
        "{asked:?} {defaulted:?}"
    );
    // Removal stays removal.
    let ua = Ua::new("range-gone");
    ua.register(srv.addr(), &c(&ua, 3600));
    let r = ua.register(srv.addr(), &c(&ua, 0));
    assert_eq!(r.status(), Some(200));
    assert!(contacts(&r).is_empty(), "{:?}", contacts(&r));
    assert_eq!(srv.stat("registrar:expires_range"), Some(50));
    assert_eq!(srv.stat("registrar:default_expires_range"), Some(30));
    let e = TestServer::try_start(
        &mem_cfg("modparam(\"registrar\", \"expires_range\", 150)"),
        siprouter::in_tree(),
    )
    .err()
    .expect("refused");
    assert!(e.join("\n").contains("between 0 and 100"), "{e:?}");
}

#[test]
fn db_counts_over_rpc() {
    let (dir, url) = db_dir("dbcounts");
    let srv = TestServer::start(&cfg(1, &url, ""), siprouter::in_tree());
    let (a, b) = (Ua::new("ann"), Ua::new("bea"));
    register_and_check(&srv, &a);
    register_and_check(&srv, &b);
    let r = a.register(
        srv.addr(),
        &["Contact: <sip:ann@10.9.9.9>;expires=600".into()],
    );
    assert_eq!(r.status(), Some(200));
    // A row expired long ago, as a crashed server would leave it.
    sr_testkit::sqlite3(
        &dir.join("sr.db"),
        "INSERT INTO location (ruid, username, domain, contact, expires, callid) VALUES ('old', 'cid', 'example.com', 'sip:cid@10.0.0.9', '2001-01-01 00:00:00', 'x');",
    );
    let n = |m: &str| srv.rpc(m, &[json!("location")]).unwrap();
    assert_eq!(n("ul.db_users"), json!(2));
    assert_eq!(n("ul.db_contacts"), json!(3));
    assert_eq!(n("ul.db_expired_contacts"), json!(1));
    let e = srv.rpc("ul.db_users", &[]).unwrap_err();
    assert_eq!(e.message, "Not enough parameters (table to query)");
    drop(srv);
    let mem = TestServer::start(&mem_cfg(""), siprouter::in_tree());
    let e = mem.rpc("ul.db_users", &[json!("location")]).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (500, "Command is not supported in db_mode=0")
    );
    let _ = std::fs::remove_dir_all(dir);
}
