//! Differential test against Kamailio itself, for the domain module: one
//! SQLite database (siprouter's schema, read by Kamailio's db_sqlite) with
//! `domain` and `domain_attrs` rows, one configuration with
//! `register_myself`, the same requests to both, and every answer
//! compared: `is_from_local`, `is_uri_host_local`, `is_domain_local`,
//! `lookup_domain` with and without a prefix (the did and attribute
//! AVPs), and `uri==myself` / `from_uri==myself` through the domain list.
//!
//! Without Kamailio and its SQLite module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::db::{DbConn, DbValue};
use sr_testkit::kamailio::{self, assert_same, run_both, MPATH};

const CFG: &str = r#"#!KAMAILIO
children=1
listen=udp:127.0.0.1:__PORT__
mpath="__MPATH__"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "db_sqlite.so"
loadmodule "domain.so"
modparam("domain", "db_url", "__DB__")
modparam("domain", "register_myself", 1)
request_route {
    $var(f) = is_from_local();
    $var(u) = is_uri_host_local();
    $var(d) = is_domain_local("$hdr(X-D)");
    $var(l) = lookup_domain("$hdr(X-D)");
    $var(p) = lookup_domain("$hdr(X-D)", "x_");
    $var(m) = 0;
    if (uri == myself) { $var(m) = 1; }
    $var(fm) = 0;
    if (from_uri == myself) { $var(fm) = 1; }
    append_to_reply("X-R: f=$var(f) u=$var(u) d=$var(d) l=$var(l) p=$var(p) m=$var(m) fm=$var(fm) did=$avp(did) xdid=$avp(x_did) tier=$avp(tier) xtier=$avp(x_tier) realm=$avp(realm) xrealm=$avp(x_realm)\r\n");
    sl_send_reply("200", "ok");
}
"#;

const PROBE: &str = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKup\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: up\r\nCSeq: 1 OPTIONS\r\nX-D: none\r\nContent-Length: 0\r\n\r\n";

fn fill(url: &str) {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    let s = |v: &str| DbValue::str(v);
    for (domain, did) in [
        ("example.com", Some("d1")),
        ("alias.example.com", Some("d1")),
        ("Other.ORG", None),
        ("voip.example.net", Some("d2")),
    ] {
        c.insert(
            "domain",
            &[("domain", s(domain)), ("did", did.map_or(DbValue::Null, s))],
        )
        .unwrap();
    }
    for (did, name, ty, value) in [
        ("d1", "tier", 0, "3"),
        ("d1", "realm", 2, "example.com"),
        ("d2", "tier", 0, "1"),
        ("other.org", "realm", 2, "other"),
    ] {
        c.insert(
            "domain_attrs",
            &[
                ("did", s(did)),
                ("name", s(name)),
                ("type", DbValue::Int(ty)),
                ("value", s(value)),
            ],
        )
        .unwrap();
    }
}

fn requests() -> Vec<(String, String)> {
    let hosts = [
        "example.com",
        "EXAMPLE.COM",
        "alias.example.com",
        "other.org",
        "voip.example.net",
        // (Not a bare address: `uri==myself` of a URI without a port is
        // port 5060 in Kamailio, any of our ports in siprouter.)
        "unknown.net",
    ];
    let mut out = Vec::new();
    let mut n = 0;
    for ruri in hosts {
        for from in ["example.com", "elsewhere.net"] {
            for d in [
                "other.org",
                "voip.example.net",
                "Example.Com",
                "nope.example.com",
            ] {
                n += 1;
                let call = format!("dm{n}");
                let text = format!(
                    "OPTIONS sip:bob@{ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKd{n}\r\nFrom: <sip:alice@{from}>;tag=1\r\nTo: <sip:bob@{ruri}>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-D: {d}\r\nContent-Length: 0\r\n\r\n"
                );
                out.push((call, text));
            }
        }
    }
    out
}

#[test]
fn domain_matches_kamailio() {
    if !kamailio::available(&["domain", "db_sqlite", "sl", "pv", "textops"]) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sr-kdomain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Four slashes: an absolute path for Kamailio's db_sqlite too.
    let url = format!("sqlite:///{}", dir.join("domain.db").display());
    fill(&url);
    let cfg = |port: &str| {
        CFG.replace("__PORT__", port)
            .replace("__MPATH__", MPATH)
            .replace("__DB__", &url)
    };
    let (want, got) = run_both(
        &dir,
        &cfg,
        PROBE,
        &requests(),
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|a| a.contains("xtier=3")), "{want:?}");
    assert_same(&want, &got, "domain");
    let _ = std::fs::remove_dir_all(&dir);
}
