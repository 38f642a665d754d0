//! Differential test against Kamailio itself, for alias_db, speeddial and
//! group: one SQLite file (siprouter's tables, read by Kamailio's
//! db_sqlite) with aliases, short numbers, group members and group
//! expressions; one configuration in two settings (no domains; domains
//! with `domain_prefix`, `append_branches`, `multiple_gid=0`); the same
//! requests to both servers, and every answer compared: return codes, the
//! rewritten Request-URI, the branches alias_db adds, `alias_db_find`'s
//! AVP and variable, `is_user_in` for each kind of user, and
//! `get_user_group`'s ids.
//!
//! Without Kamailio and its SQLite module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::db::{DbConn, DbValue};
use sr_testkit::kamailio;

/// The configuration after its head (`kamailio::head`).
const BODY: &str = r#"modparam("alias_db", "db_url", "__DB__")
modparam("speeddial", "db_url", "__DB__")
modparam("group", "db_url", "__DB__")
modparam("group", "re_table", "re_grp")
__PARAMS__
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-T);
    $var(r) = "none";
    if ($var(t) == "alias") { $var(r) = alias_db_lookup("dbaliases"); }
    else if ($var(t) == "alias-d") { $var(r) = alias_db_lookup("dbaliases", "d"); }
    else if ($var(t) == "alias-u") { $var(r) = alias_db_lookup("dbaliases", "u"); }
    else if ($var(t) == "alias-r") { $var(r) = alias_db_lookup("dbaliases", "r"); }
    else if ($var(t) == "alias-ud") { $var(r) = alias_db_lookup("dbaliases", "UD"); }
    else if ($var(t) == "find") {
        $avp(in) = $hdr(X-U);
        $var(r) = alias_db_find("dbaliases", "$avp(in)", "$avp(out)");
        $var(o) = "x";
        $var(r2) = alias_db_find("dbaliases", "$avp(in)", "$var(o)", "r");
        append_to_reply("X-F: r2=$var(r2) o=$var(o) a0=$(avp(out)[0]) a1=$(avp(out)[1]) a2=$(avp(out)[2])\r\n");
    }
    else if ($var(t) == "sd") { $var(r) = sd_lookup("speed_dial"); }
    else if ($var(t) == "sd-owner") { $var(r) = sd_lookup("speed_dial", "$hdr(X-U)"); }
    else if ($var(t) == "grp") {
        $var(g1) = is_user_in("Request-URI", "g1");
        $var(g2) = is_user_in("To", "g1");
        $var(g3) = is_user_in("From", "g2");
        $avp(u) = $hdr(X-U);
        $var(g4) = is_user_in("$avp(u)", "g1");
        $var(g5) = get_user_group("$avp(u)", "$avp(gid)");
        append_to_reply("X-G: ruri=$var(g1) to=$var(g2) from=$var(g3) avp=$var(g4) ids=$var(g5) id0=$(avp(gid)[0]) id1=$(avp(gid)[1]) id2=$(avp(gid)[2])\r\n");
    }
    append_to_reply("X-R: r=$var(r) ru=$ru b=$branch(count) b0=$(branch(uri)[0]) q0=$(branch(q)[0]) b1=$(branch(uri)[1]) b2=$(branch(uri)[2])\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn fill(c: &mut dyn DbConn) {
    let s = DbValue::str;
    for (au, ad, u, d) in [
        ("alice", "example.com", "bob", "a.com"),
        ("alice", "example.com", "carol", "b.com"),
        ("alice", "other.com", "dave", "c.com"),
        ("sales", "example.com", "erin", "example.com"),
        ("ALICE", "example.com", "frank", "f.com"),
    ] {
        c.insert(
            "dbaliases",
            &[
                ("alias_username", s(au)),
                ("alias_domain", s(ad)),
                ("username", s(u)),
                ("domain", s(d)),
            ],
        )
        .unwrap();
    }
    for (u, d, su, sd, new) in [
        (
            "alice",
            "example.com",
            "11",
            "example.com",
            "sip:bob@a.com:5070;transport=tcp",
        ),
        ("alice", "other.com", "11", "other.net", "carol@b.com"),
        ("alice", "example.com", "12", "example.com", "tel:+123"),
        (
            "bob",
            "example.com",
            "11",
            "example.com",
            "sips:secure@s.com",
        ),
    ] {
        c.insert(
            "speed_dial",
            &[
                ("username", s(u)),
                ("domain", s(d)),
                ("sd_username", s(su)),
                ("sd_domain", s(sd)),
                ("new_uri", s(new)),
            ],
        )
        .unwrap();
    }
    for (u, d, g) in [
        ("alice", "example.com", "g1"),
        ("bob", "other.com", "g1"),
        ("carol", "example.com", "g2"),
    ] {
        c.insert(
            "grp",
            &[("username", s(u)), ("domain", s(d)), ("grp", s(g))],
        )
        .unwrap();
    }
    for (re, gid) in [
        ("^sip:alice@", 10),
        ("example\\.com$", 20),
        ("^sip:ALICE", 30),
        ("^sip:zzz", 40),
    ] {
        c.insert(
            "re_grp",
            &[("reg_exp", s(re)), ("group_id", DbValue::Int(gid))],
        )
        .unwrap();
    }
}

fn requests() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut add = |t: &str, ruri: &str, from: &str, to: &str, u: &str| {
        n += 1;
        let call = format!("db{n}-{t}");
        out.push((
            call.clone(),
            format!(
                "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKdb{n}\r\nFrom: <{from}>;tag=1\r\nTo: <{to}>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-T: {t}\r\nX-U: {u}\r\nContent-Length: 0\r\n\r\n"
            ),
        ));
    };
    for t in ["alias", "alias-d", "alias-u", "alias-r", "alias-ud"] {
        for ruri in [
            "sip:alice@example.com:5080;transport=tcp",
            "sip:alice@sip.other.com",
            "sips:sales@EXAMPLE.com",
            "sip:ALICE@example.com",
            "sip:bob@a.com",
            "sip:nobody@example.com",
            "tel:+1234",
        ] {
            add(t, ruri, "sip:x@y", "sip:x@y", "");
        }
    }
    for u in [
        "sip:alice@example.com",
        "sip:carol@b.com",
        "sip:alice@SIP.other.com",
        "alice",
        "sip:nobody@x",
    ] {
        add("find", "sip:x@y", "sip:x@y", "sip:x@y", u);
    }
    for (ruri, from) in [
        ("sip:11@example.com", "sip:alice@example.com"),
        ("sip:11@other.net", "sip:alice@other.com"),
        ("sip:11@sip.other.net", "sip:alice@sip.other.com"),
        ("sip:11@Other.net", "sip:alice@other.com"),
        ("sip:12@example.com", "sip:alice@example.com"),
        ("sip:11@example.com", "sip:bob@example.com"),
        ("sip:13@example.com", "sip:alice@example.com"),
        ("sip:11@example.com;user=phone", "sip:ALICE@example.com"),
    ] {
        add("sd", ruri, from, "sip:x@y", "");
    }
    for owner in [
        "sip:alice@example.com:5070;transport=tcp",
        "sip:alice@other.com",
        "alice@other.com",
        "sip:bob@example.com",
    ] {
        add(
            "sd-owner",
            "sip:11@other.net",
            "sip:zed@z.com",
            "sip:x@y",
            owner,
        );
    }
    for (ruri, from, to, u) in [
        (
            "sip:alice@example.com",
            "sip:carol@example.com",
            "sip:bob@other.com",
            "sip:alice@example.com",
        ),
        (
            "sip:alice@zzz.com",
            "sip:carol@zzz.com",
            "sip:bob@example.com",
            "sips:alice@example.com:5061;transport=tls",
        ),
        (
            "sip:nobody@example.com",
            "sip:nobody@example.com",
            "sip:nobody@x",
            "sip:zzz@nowhere",
        ),
        (
            "sip:ALICE@example.com",
            "sip:Carol@example.com",
            "sip:bob@other.com",
            "alice",
        ),
        (
            "tel:+1",
            "sip:carol@example.com",
            "sip:bob@other.com",
            "tel:+1",
        ),
    ] {
        add("grp", ruri, from, to, u);
    }
    out
}

fn check(setting: &str, params: &str) {
    let dir = kamailio::fresh_dir(&format!("dbmods-{setting}"));
    // Four slashes: an absolute path for Kamailio's db_sqlite too.
    let url = format!("sqlite:///{}", dir.join("dbmods.db").display());
    fill(&mut sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap());
    compare(&dir, "db_sqlite", &url, setting, params);
}

/// Both servers on the database at `url` through their `driver` module.
fn compare(dir: &std::path::Path, driver: &str, url: &str, setting: &str, params: &str) {
    let (want, got) = kamailio::run_parity(
        dir,
        &[
            "sl",
            "pv",
            "textops",
            driver,
            "alias_db",
            "speeddial",
            "group",
        ],
        BODY,
        &[("__DB__", url), ("__PARAMS__", params)],
        &requests(),
        &["X-R", "X-F", "X-G"],
        siprouter::in_tree(),
    );
    assert!(
        want.iter().any(|a| a.contains("r=1")),
        "{setting}: {want:?}"
    );
    kamailio::conclude(dir, &want, &got, setting);
}

#[test]
fn alias_db_speeddial_and_group_match_kamailio() {
    if !kamailio::available(&[
        "alias_db",
        "speeddial",
        "group",
        "db_sqlite",
        "sl",
        "pv",
        "textops",
    ]) {
        return;
    }
    check("plain", "");
    check(
        "domains",
        r#"modparam("alias_db", "use_domain", 1)
modparam("alias_db", "domain_prefix", "sip.")
modparam("alias_db", "append_branches", 1)
modparam("speeddial", "use_domain", 2)
modparam("speeddial", "domain_prefix", "sip.")
modparam("group", "use_domain", 1)
modparam("group", "multiple_gid", 0)"#,
    );
}

/// Kamailio's modules for the servers' tests.
fn server_modules(driver: &'static str) -> [&'static str; 7] {
    [
        "alias_db",
        "speeddial",
        "group",
        driver,
        "sl",
        "pv",
        "textops",
    ]
}

/// The comparison on a database server: tables made by siprouter's driver
/// (as `siprouter db -u URL init`), filled, then read by Kamailio's driver
/// module and by siprouter's.
fn on_server(driver: &str, url: &str, mut c: Box<dyn DbConn>) {
    sr_sdk::db::init_standard_tables(&mut *c).unwrap();
    fill(&mut *c);
    drop(c);
    let dir = kamailio::fresh_dir(&format!("dbmods-{driver}"));
    compare(&dir, driver, url, driver, "");
}

/// The same against MariaDB (MySQL's default collation ignores case, for
/// Kamailio and siprouter alike).
#[test]
fn alias_db_speeddial_and_group_match_kamailio_on_mariadb() {
    if !kamailio::available(&server_modules("db_mysql")) {
        return;
    }
    let Some(server) = sr_testkit::mariadb::start("dbmods") else {
        return;
    };
    let url = server.url();
    let c = sr_mod_db_mysql::MysqlConn::open(&url, std::time::Duration::from_secs(5)).unwrap();
    on_server("db_mysql", &url, Box::new(c));
}

/// The same against PostgreSQL.
#[test]
fn alias_db_speeddial_and_group_match_kamailio_on_postgresql() {
    if !kamailio::available(&server_modules("db_postgres")) {
        return;
    }
    let Some(server) = sr_testkit::postgres::start("dbmods") else {
        return;
    };
    let url = server.url();
    let c = sr_mod_db_postgres::PgConn::open(&url, std::time::Duration::from_secs(5)).unwrap();
    on_server("db_postgres", &url, Box::new(c));
}
