//! Differential test against Kamailio itself, for the pdt module: one
//! SQLite file (Kamailio's schema) with prefixes for any source domain
//! and for two domains (a row with an empty prefix and one repeating a
//! domain, both skipped), the module's `prefix`, then the same requests
//! to both servers: `prefix2domain` with each rewrite mode, the From
//! domain as source (with and without falling back to `*`),
//! `pd_translate` (source domains differing in case, a `sips` URI, a
//! password, a port, parameters and headers that go), users too short,
//! without the prefix, with characters outside `char_list`; then
//! `pdt.list` with filters and `pdt.reload` after the table changed,
//! through Kamailio's `kamcmd`. Not compared: `pdt.list` over several
//! source domains (Kamailio answers one struct repeating SDOMAIN and
//! RECORDS, which JSON cannot hold; siprouter answers one struct each).
//!
//! Without Kamailio (its pdt and db_sqlite modules, kamcmd, the schema)
//! installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "db_sqlite", "ctl", "pdt"];

const SCHEMA: &[&str] = &[
    "/usr/share/kamailio/db_sqlite/standard-create.sql",
    "/usr/share/kamailio/db_sqlite/pdt-create.sql",
];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("pdt", "db_url", "__DB__")
modparam("pdt", "prefix", "00")
request_route {
    if ($hdr(X-F) == $null) { sl_send_reply("200", "up"); exit; }
    $var(m) = $(hdr(X-M){s.int});
    $var(s) = $(hdr(X-S){s.int});
    if ($hdr(X-F) == "0") { prefix2domain(); }
    else if ($hdr(X-F) == "1") { prefix2domain("$var(m)"); }
    else if ($hdr(X-F) == "2") { prefix2domain("$var(m)", "$var(s)"); }
    else { pd_translate("$hdr(X-D)", "$var(m)"); }
    $var(r) = $rc;
    append_to_reply("X-R: $var(r) $ru\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn fill(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut sql = String::new();
    for f in SCHEMA {
        sql.push_str(&std::fs::read_to_string(f).expect("Kamailio's SQLite schema"));
    }
    sql.push_str(
        "INSERT INTO pdt (sdomain,prefix,domain) VALUES ('*','1','one.example'),('*','123','x123.example'),
         ('*','2','two.example'),('a.example','9','nine.example'),('a.example','1','a-one.example'),
         ('*','4','one.example'),('b.example','77','seven.example:5070'),('*','','empty.example');",
    );
    sr_testkit::sqlite3(path, &sql);
}

/// (Request-URI, headers, From URI).
const CASES: &[(&str, &str, &str)] = &[
    (
        "sip:0012345@x.com:5070;transport=udp?h=1",
        "X-F: 0\r\n",
        "sip:a@a.example",
    ),
    (
        "sip:0012345:pw@x.com",
        "X-F: 1\r\nX-M: 1\r\n",
        "sip:a@a.example",
    ),
    (
        "sip:0012345@x.com",
        "X-F: 1\r\nX-M: 2\r\n",
        "sip:a@a.example",
    ),
    (
        "sip:0012345@x.com",
        "X-F: 1\r\nX-M: 7\r\n",
        "sip:a@a.example",
    ),
    ("sip:12345@x.com", "X-F: 0\r\n", "sip:a@a.example"),
    ("sip:00@x.com", "X-F: 0\r\n", "sip:a@a.example"),
    ("sip:00555@x.com", "X-F: 0\r\n", "sip:a@a.example"),
    ("sip:001x3@x.com", "X-F: 0\r\n", "sip:a@a.example"),
    ("sip:0019x@x.com", "X-F: 0\r\n", "sip:a@a.example"),
    (
        "sip:009123@x.com",
        "X-F: 2\r\nX-M: 0\r\nX-S: 1\r\n",
        "sip:a@a.example",
    ),
    (
        "sip:002123@x.com",
        "X-F: 2\r\nX-M: 0\r\nX-S: 1\r\n",
        "sip:a@a.example",
    ),
    (
        "sip:002123@x.com",
        "X-F: 2\r\nX-M: 1\r\nX-S: 2\r\n",
        "sip:a@a.example",
    ),
    (
        "sip:001@x.com",
        "X-F: 2\r\nX-M: 0\r\nX-S: 2\r\n",
        "sip:a@a.example",
    ),
    (
        "sip:001@x.com",
        "X-F: 2\r\nX-M: 0\r\nX-S: 0\r\n",
        "sip:a@a.example",
    ),
    (
        "sip:0077@x.com",
        "X-D: b.example\r\nX-M: 0\r\n",
        "sip:a@a.example",
    ),
    (
        "sip:0077@x.com",
        "X-D: B.EXAMPLE\r\nX-M: 0\r\n",
        "sip:a@a.example",
    ),
    ("sips:0012@x.com", "X-D: *\r\nX-M: 2\r\n", "sip:a@a.example"),
    ("sip:004@x.com", "X-F: 0\r\n", "sip:a@a.example"),
    ("sip:OO12@x.com", "X-F: 0\r\n", "sip:a@a.example"),
];

fn ask(peer: &UdpPeer, srv: SocketAddr, tag: &str) -> Vec<String> {
    CASES
        .iter()
        .enumerate()
        .map(|(i, (ruri, extra, from))| {
            let call = format!("pdt-{tag}-{i}");
            let req = format!(
                "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <{from}>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n",
                peer.addr()
            );
            peer.send(srv, &req);
            let r = peer
                .recv_matching(Duration::from_secs(3), |r| {
                    r.msg.msg().call_id().ok() == Some(call.as_str())
                })
                .unwrap_or_else(|| panic!("{call}: no answer"));
            format!("{tag} {ruri} [{}]: {}", extra.trim().replace("\r\n", ", "), r.header("X-R").unwrap_or_default())
        })
        .collect()
}

fn scenario(srv: SocketAddr, sock: &Path, db: &Path) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = ask(&peer, srv, "start");
    let kam = |args: &[&str]| kamailio::kamcmd(sock, args, &|l| l.to_string());
    for args in [
        &["pdt.list", "a.example"][..],
        &["pdt.list", "b"],
        &["pdt.list", "a.example", "9"],
        &["pdt.list", "a.example", ".", "A-ONE"],
        &["pdt.list", "*", "1"],
        &["pdt.list", ".", "1x"],
        &["pdt.list", "zzz"],
    ] {
        out.extend(kam(args));
    }
    sr_testkit::sqlite3(
        db,
        "INSERT INTO pdt (sdomain,prefix,domain) VALUES ('*','5','five.example');",
    );
    out.extend(kam(&["pdt.reload"]));
    out.extend(kam(&["pdt.list", "*", "5"]));
    out.extend(
        ask(&peer, srv, "reloaded")
            .into_iter()
            .filter(|l| l.contains("00555")),
    );
    out
}

#[test]
fn pdt_matches_kamailio() {
    if !kamailio::available(MODULES) || !kamailio::kamcmd_available(SCHEMA) {
        return;
    }
    let dir = kamailio::fresh_dir("pdt");
    let sock = dir.join("ctl.sock");
    let db = dir.join("pdt.db");
    let cfg = (kamailio::head(MODULES) + BODY)
        .replace("__SOCK__", &sock.display().to_string())
        .replace("__DB__", &format!("sqlite:///{}", db.display()));
    let (want, got) =
        kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| fill(&db), &|srv| {
            scenario(srv, &sock, &db)
        });
    assert!(
        want.iter().any(|l| l.ends_with("1 sip:45@x123.example")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "pdt");
}
