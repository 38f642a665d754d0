//! db_mysql and db_postgres against real servers (MariaDB and
//! PostgreSQL, started by the tests: `sr_testkit::mariadb`,
//! `sr_testkit::postgres`): the drivers' reads and writes with Kamailio's
//! column types, the standard tables `db init` makes, SQL for sqlops,
//! transactions and errors; and Debian's stock kamailio.cfg with
//! WITH_MYSQL, WITH_AUTH and WITH_USRLOCDB — as shipped on MariaDB, with
//! `db_postgres` loaded in place of `db_mysql` on PostgreSQL: a digest
//! REGISTER checked against `subscriber`, the binding written to
//! `location` in the server, then found there by a second server that
//! routes a call to it.
//!
//! Without the servers installed the tests print a notice and pass, unless
//! `SR_MARIADB_REQUIRED=1` / `SR_POSTGRES_REQUIRED=1` (`.ci/run` sets them).

use sr_mod_auth::digest::{self, Alg, ResponseInput};
use sr_sdk::db::{self, schema, Cond, DbConn, DbError, DbOp, DbValue};
use std::path::Path;
use std::time::Duration;

fn mysql(url: &str) -> Box<dyn DbConn> {
    Box::new(sr_mod_db_mysql::MysqlConn::open(url, Duration::from_secs(5)).expect("connected"))
}

fn postgres(url: &str) -> Box<dyn DbConn> {
    Box::new(sr_mod_db_postgres::PgConn::open(url, Duration::from_secs(5)).expect("connected"))
}

/// What every driver must do the same way.
fn exercise(c: &mut dyn DbConn) {
    let created = db::init_standard_tables(c).unwrap();
    assert!(created.contains(&"location".to_string()), "{created:?}");
    for t in schema::standard() {
        assert!(c.table_exists(t.name).unwrap(), "{} created", t.name);
    }
    // A second init creates nothing; versions are Kamailio's.
    assert!(db::init_standard_tables(c).unwrap().is_empty());
    db::check_version(c, "location", 9).unwrap();
    db::check_version(c, "subscriber", 7).unwrap();
    assert!(db::check_version(c, "subscriber", 6).is_err());
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
    // Replaced through the unique ruid.
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
    // Text with quotes and non-ASCII goes through untouched; bytes too.
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
    assert!(matches!(raw.rows.get(0, "cseq"), DbValue::Int(_)));
    assert!(matches!(raw.rows.get(0, "expires"), DbValue::DateTime(_)));
    let raw = c
        .raw("UPDATE location SET cseq = cseq + 1 WHERE username = 'bob'")
        .unwrap();
    assert!(!raw.has_rows);
    assert_eq!(raw.affected, 1);
    // A failed transaction leaves nothing behind.
    let e = c.transaction(&mut |t| {
        t.delete("location", &[])?;
        Err(DbError("stop".into()))
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
}

#[test]
fn mysql_reads_and_writes_with_kamailio_s_types() {
    let Some(server) = sr_testkit::mariadb::start("types") else {
        return;
    };
    let url = server.url();
    exercise(&mut *mysql(&url));
    let e = sr_mod_db_mysql::MysqlConn::open(
        &url.replace("kamailiorw", "wrong"),
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert!(
        e.0.contains("cannot connect") && !e.0.contains("wrong"),
        "{e}"
    );
}

#[test]
fn postgres_reads_and_writes_with_kamailio_s_types() {
    let Some(server) = sr_testkit::postgres::start("types") else {
        return;
    };
    let url = server.url();
    exercise(&mut *postgres(&url));
    // Bytes survive (BYTEA), and an unknown database is an error.
    let mut c = postgres(&url);
    c.raw("CREATE TABLE blobs (b BYTEA)").unwrap();
    c.insert("blobs", &[("b", DbValue::Blob(vec![0, 1, 0xfe, b'\'']))])
        .unwrap();
    let r = c.query("blobs", &[], &["b"], None).unwrap();
    assert_eq!(r.get(0, "b"), &DbValue::Blob(vec![0, 1, 0xfe, b'\'']));
    let e = sr_mod_db_postgres::PgConn::open(
        &url.replace("/kamailio", "/nope"),
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert!(e.0.contains("cannot connect"), "{e}");
}

const STOCK: &str = "/etc/kamailio/kamailio.cfg";

/// A digest `header` answering the challenge in `challenge` for alice.
fn digest_answer(challenge: &str, header: &str, method: &str, uri: &str) -> String {
    let param = |name: &str| {
        let at = challenge.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        challenge[at..].split('"').next().unwrap().to_string()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let ha1 = digest::ha1(Alg::Md5, "alice", &realm, "secret");
    let resp = digest::response(
        Alg::Md5,
        &ha1,
        &ResponseInput {
            nonce: &nonce,
            method,
            uri,
            ..Default::default()
        },
    );
    format!("{header}: Digest username=\"alice\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5\r\n")
}

/// The stock configuration (`text` is the file as it will run) on the
/// database at `url` (`conn` opens it): alice registers with digest
/// credentials from `subscriber`, the binding goes to `location` (db_mode
/// 2: by shutdown), and a second server routes a call to it.
fn stock_scenario(name: &str, text: &str, url: &str, conn: fn(&str) -> Box<dyn DbConn>) {
    {
        let mut c = conn(url);
        db::init_standard_tables(&mut *c).unwrap();
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
    let dir = std::env::temp_dir().join(format!("sr-stock-{name}-{}", std::process::id()));
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
        format!("REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=m1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: stock-{name}-1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:alice@{a}>\r\nExpires: 300\r\n{auth}Content-Length: 0\r\n\r\n")
    };
    ua.send(to, &register("r1", 1, ""));
    let r = ua.recv_final(t).expect("challenged");
    assert_eq!(r.status(), Some(401), "{}", r.text());
    let h = r.header("WWW-Authenticate").expect("a challenge");
    let auth = digest_answer(&h, "Authorization", "REGISTER", &uri);
    ua.send(to, &register("r2", 2, &auth));
    let r = ua.recv_final(t).expect("registered");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    // WITH_USRLOCDB (db_mode 2): the binding reaches the server by shutdown.
    srv.shutdown();
    drop(rt);
    let rows = conn(url)
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
    // A new server loads it: alice calls herself (the stock config asks
    // callers for credentials too) and the call reaches the contact.
    let port = sr_testkit::free_port();
    let (_rt, srv) = start(port);
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let caller = sr_testkit::UdpPeer::new();
    let c = caller.addr();
    let ruri = format!("sip:alice@127.0.0.1:{port}");
    let invite = |branch: &str, cseq: u32, auth: &str| {
        format!("INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1:{port}>;tag=i1\r\nTo: <sip:alice@127.0.0.1:{port}>\r\nCall-ID: stock-{name}-2\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@{c}>\r\n{auth}Content-Length: 0\r\n\r\n")
    };
    caller.send(to, &invite("i1", 1, ""));
    let r = caller.recv_final(t).expect("challenged");
    assert_eq!(r.status(), Some(407), "{}", r.text());
    let h = r.header("Proxy-Authenticate").expect("a challenge");
    let auth = digest_answer(&h, "Proxy-Authorization", "INVITE", &ruri);
    caller.send(to, &invite("i2", 2, &auth));
    let got = ua
        .recv_method("INVITE", t)
        .expect("the call reaches the contact stored in the database");
    assert_eq!(
        got.msg.msg().request_uri().map(|u| u.raw),
        Some(format!("sip:alice@{a}").as_str())
    );
    srv.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stock file, or `None` (with a notice) when Kamailio is not
/// installed.
fn stock_text(required_var: &str) -> Option<String> {
    if !Path::new(STOCK).exists() {
        assert!(
            std::env::var(required_var).as_deref() != Ok("1"),
            "{STOCK} is missing"
        );
        eprintln!("skipped: {STOCK} is not installed (apt-get install kamailio)");
        return None;
    }
    Some(std::fs::read_to_string(STOCK).unwrap())
}

const STOCK_URL: &str = "mysql://kamailio:kamailiorw@localhost/kamailio";

#[test]
fn the_stock_config_runs_on_mariadb_as_shipped() {
    let Some(text) = stock_text("SR_MARIADB_REQUIRED") else {
        return;
    };
    let Some(server) = sr_testkit::mariadb::start("stock") else {
        return;
    };
    let url = server.url();
    assert!(text.contains(STOCK_URL));
    stock_scenario("mysql", &text.replace(STOCK_URL, &url), &url, mysql);
}

#[test]
fn the_stock_config_runs_on_postgresql() {
    let Some(text) = stock_text("SR_POSTGRES_REQUIRED") else {
        return;
    };
    let Some(server) = sr_testkit::postgres::start("stock") else {
        return;
    };
    let url = server.url();
    let text = text.replace(STOCK_URL, &url).replace(
        "loadmodule \"db_mysql.so\"",
        "loadmodule \"db_postgres.so\"",
    );
    stock_scenario("postgres", &text, &url, postgres);
}
