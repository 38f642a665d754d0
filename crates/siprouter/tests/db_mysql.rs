//! db_mysql against a real MariaDB server (started by the test, see
//! `sr_testkit::mariadb`): the driver's reads and writes with Kamailio's
//! column types, the standard tables `db init` makes, SQL for sqlops, and
//! Debian's stock kamailio.cfg run as shipped with WITH_MYSQL, WITH_AUTH
//! and WITH_USRLOCDB (only the database address changed): a digest
//! REGISTER checked against `subscriber` and the binding written to
//! `location` in MariaDB, then found by a second server from the table.
//!
//! Without MariaDB installed the tests print a notice and pass, unless
//! `SR_MARIADB_REQUIRED=1` (`.ci/run` sets it).

use sr_mod_auth::digest::{self, Alg, ResponseInput};
use sr_mod_db_mysql::MysqlConn;
use sr_sdk::db::{self, schema, Cond, DbConn, DbOp, DbValue};
use std::path::Path;
use std::time::Duration;

fn conn(url: &str) -> MysqlConn {
    MysqlConn::open(url, Duration::from_secs(5)).expect("connected")
}

#[test]
fn reads_and_writes_with_kamailio_s_types() {
    let Some(server) = sr_testkit::mariadb::start("types") else {
        return;
    };
    let url = server.url();
    let mut c = conn(&url);
    let created = db::init_standard_tables(&mut c).unwrap();
    assert!(created.contains(&"location".to_string()), "{created:?}");
    for t in schema::standard() {
        assert!(c.table_exists(t.name).unwrap(), "{} created", t.name);
    }
    // A second init creates nothing; versions are Kamailio's.
    assert!(db::init_standard_tables(&mut c).unwrap().is_empty());
    db::check_version(&mut c, "location", 9).unwrap();
    db::check_version(&mut c, "subscriber", 7).unwrap();
    assert!(db::check_version(&mut c, "subscriber", 6).is_err());
    c.insert(
        "location",
        &[
            ("ruid", DbValue::str("r1")),
            ("username", DbValue::str("alice")),
            ("contact", DbValue::str("sip:alice@192.0.2.1:5060")),
            ("expires", DbValue::DateTime(2_000_000_000)),
            ("q", DbValue::Double(0.5)),
            ("cseq", DbValue::Int(42)),
            ("methods", DbValue::Null),
        ],
    )
    .unwrap();
    let r = c
        .query(
            "location",
            &[Cond::new("expires", DbOp::Gt, DbValue::DateTime(1_000))],
            &["ruid", "expires", "q", "cseq", "methods", "domain", "id"],
            None,
        )
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r.get(0, "ruid"), &DbValue::str("r1"));
    assert_eq!(r.get(0, "expires"), &DbValue::DateTime(2_000_000_000));
    assert_eq!(r.get(0, "q"), &DbValue::Double(0.5));
    assert_eq!(r.get(0, "cseq"), &DbValue::Int(42));
    assert!(r.get(0, "methods").is_null());
    assert!(r.get(0, "domain").is_null());
    assert_eq!(r.get(0, "id"), &DbValue::Int(1));
    let n = c
        .update(
            "location",
            &[Cond::eq("ruid", DbValue::str("r1"))],
            &[("cseq", DbValue::Int(43))],
        )
        .unwrap();
    assert_eq!(n, 1);
    // REPLACE on the unique ruid.
    c.replace(
        "location",
        &[
            ("ruid", DbValue::str("r1")),
            ("username", DbValue::str("bob")),
        ],
    )
    .unwrap();
    let r = c.query("location", &[], &[], None).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r.get(0, "username"), &DbValue::str("bob"));
    // Text with quotes and non-ASCII goes through parameters untouched.
    let odd = "o'brien \"q\" \\ é";
    c.insert(
        "subscriber",
        &[
            ("username", DbValue::str(odd)),
            ("domain", DbValue::str("example.com")),
        ],
    )
    .unwrap();
    let r = c
        .query(
            "subscriber",
            &[Cond::eq("username", DbValue::str(odd))],
            &["username"],
            None,
        )
        .unwrap();
    assert_eq!(r.get(0, "username"), &DbValue::str(odd));
    // Raw SQL (sqlops): typed rows, affected rows.
    let raw = c
        .raw("SELECT username, cseq, expires FROM location ORDER BY id")
        .unwrap();
    assert!(raw.has_rows);
    assert_eq!(raw.rows.columns, ["username", "cseq", "expires"]);
    assert_eq!(raw.rows.get(0, "cseq"), &DbValue::Int(1));
    assert!(matches!(raw.rows.get(0, "expires"), DbValue::DateTime(_)));
    let raw = c
        .raw("UPDATE location SET cseq = cseq + 1 WHERE username = 'bob'")
        .unwrap();
    assert!(!raw.has_rows);
    assert_eq!(raw.affected, 1);
    // A failed transaction leaves nothing behind.
    let e = c.transaction(&mut |t| {
        t.delete("location", &[])?;
        Err(sr_sdk::db::DbError("stop".into()))
    });
    assert!(e.is_err());
    assert_eq!(c.query("location", &[], &[], None).unwrap().len(), 1);
    assert_eq!(
        c.delete("location", &[Cond::eq("domain", DbValue::Null)])
            .unwrap(),
        1
    );
    // Errors are errors, with the cause.
    assert!(c.query("bad name", &[], &[], None).is_err());
    let e = c.query("missing", &[], &[], None).unwrap_err();
    assert!(e.0.contains("missing"), "{e}");
    let e =
        MysqlConn::open(&url.replace("kamailiorw", "wrong"), Duration::from_secs(5)).unwrap_err();
    assert!(
        e.0.contains("cannot connect") && !e.0.contains("wrong"),
        "{e}"
    );
}

const STOCK: &str = "/etc/kamailio/kamailio.cfg";

/// The digest answer to the 401 `r` for alice's REGISTER of `uri`.
fn authorization(r: &sr_testkit::Reply, uri: &str) -> String {
    let h = r.header("WWW-Authenticate").expect("a challenge");
    let param = |name: &str| {
        let at = h.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        h[at..].split('"').next().unwrap().to_string()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let ha1 = digest::ha1(Alg::Md5, "alice", &realm, "secret");
    let resp = digest::response(
        Alg::Md5,
        &ha1,
        &ResponseInput {
            nonce: &nonce,
            method: "REGISTER",
            uri,
            ..Default::default()
        },
    );
    format!("Authorization: Digest username=\"alice\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5")
}

#[test]
fn the_stock_config_runs_on_mariadb() {
    if !Path::new(STOCK).exists() {
        assert!(
            std::env::var("SR_MARIADB_REQUIRED").as_deref() != Ok("1"),
            "{STOCK} is missing"
        );
        eprintln!("skipped: {STOCK} is not installed (apt-get install kamailio)");
        return;
    }
    let Some(server) = sr_testkit::mariadb::start("stock") else {
        return;
    };
    let url = server.url();
    {
        let mut c = conn(&url);
        db::init_standard_tables(&mut c).unwrap();
        let ha1 = digest::ha1(Alg::Md5, "alice", "127.0.0.1", "secret");
        c.insert(
            "subscriber",
            &[
                ("username", DbValue::str("alice")),
                ("domain", DbValue::str("127.0.0.1")),
                ("password", DbValue::str("secret")),
                ("ha1", DbValue::str(ha1)),
            ],
        )
        .unwrap();
    }
    // The shipped file: db_mysql, DBURL at the test server.
    let text = std::fs::read_to_string(STOCK).unwrap().replace(
        "mysql://kamailio:kamailiorw@localhost/kamailio",
        &url["".len()..],
    );
    let dir = std::env::temp_dir().join(format!("sr-stock-mysql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("kamailio.cfg");
    std::fs::write(&cfg, text).unwrap();
    let start = |port: u16| {
        let mut opts = siprouter::options(cfg.to_str().unwrap());
        opts.defines = ["WITH_MYSQL", "WITH_AUTH", "WITH_USRLOCDB"]
            .iter()
            .map(|d| (d.to_string(), None))
            .collect();
        opts.overrides.listen = vec![format!("udp:127.0.0.1:{port}")];
        opts.overrides.children = Some(2);
        let rt = sr_core::load(&opts, false)
            .unwrap_or_else(|e| panic!("the stock config loads:\n{}", e.join("\n")));
        let srv = sr_core::start(&rt).unwrap_or_else(|e| panic!("it starts: {e}"));
        (rt, srv)
    };
    let port = sr_testkit::free_port();
    let (rt, srv) = start(port);
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ua = sr_testkit::UdpPeer::new();
    let a = ua.addr();
    let t = Duration::from_secs(3);
    let uri = format!("sip:127.0.0.1:{port}");
    let register = |branch: &str, cseq: u32, auth: &str| {
        format!("REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=m1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: stock-mysql-1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:alice@{a}>\r\nExpires: 300\r\n{auth}Content-Length: 0\r\n\r\n")
    };
    ua.send(to, &register("my1", 1, ""));
    let r = ua.recv_final(t).expect("challenged");
    assert_eq!(r.status(), Some(401), "{}", r.text());
    ua.send(
        to,
        &register("my2", 2, &format!("{}\r\n", authorization(&r, &uri))),
    );
    let r = ua.recv_final(t).expect("registered");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    // WITH_USRLOCDB (db_mode 2): the binding reaches MariaDB by shutdown.
    srv.shutdown();
    drop(rt);
    let rows = conn(&url)
        .query(
            "location",
            &[Cond::eq("username", DbValue::str("alice"))],
            &["contact", "expires"],
            None,
        )
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows.get(0, "contact"),
        &DbValue::str(format!("sip:alice@{a}"))
    );
    // A new server loads it: a call to alice reaches the contact.
    let port = sr_testkit::free_port();
    let (_rt, srv) = start(port);
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let caller = sr_testkit::UdpPeer::new();
    let c = caller.addr();
    // The stock config asks callers for credentials too: alice calls
    // herself, answering the challenge.
    let invite = |branch: &str, cseq: u32, auth: &str| {
        format!("INVITE sip:alice@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=i1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: stock-mysql-2\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@{c}>\r\n{auth}Content-Length: 0\r\n\r\n")
    };
    caller.send(to, &invite("mi1", 1, ""));
    let r = caller.recv_final(t).expect("challenged");
    assert_eq!(r.status(), Some(407), "{}", r.text());
    let h = r.header("Proxy-Authenticate").expect("a challenge");
    let nonce = h
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let ruri = format!("sip:alice@127.0.0.1:{port}");
    let ha1 = digest::ha1(Alg::Md5, "alice", "127.0.0.1", "secret");
    let resp = digest::response(
        Alg::Md5,
        &ha1,
        &ResponseInput {
            nonce,
            method: "INVITE",
            uri: &ruri,
            ..Default::default()
        },
    );
    let auth = format!("Proxy-Authorization: Digest username=\"alice\", realm=\"127.0.0.1\", nonce=\"{nonce}\", uri=\"{ruri}\", response=\"{resp}\", algorithm=MD5\r\n");
    caller.send(to, &invite("mi2", 2, &auth));
    let got = ua
        .recv_method("INVITE", t)
        .expect("the call reaches the contact stored in MariaDB");
    assert_eq!(
        got.msg.msg().request_uri().map(|u| u.raw),
        Some(format!("sip:alice@{a}").as_str())
    );
    srv.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
