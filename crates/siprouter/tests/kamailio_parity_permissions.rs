//! Differential test against Kamailio itself, for the permissions
//! module: one SQLite database (made by siprouter's schema, read by
//! Kamailio's db_sqlite) with `address` and `trusted` rows, one
//! configuration, the same requests to Kamailio and to siprouter, and
//! every answer compared: `allow_address`, `allow_address_group`,
//! `allow_source_address`, `allow_source_address_group`, `allow_trusted`
//! with and without arguments, and the tags pushed onto `peer_tag_avp` —
//! with the trusted table cached and read per call, and with one tag or
//! all.
//!
//! Without Kamailio and its SQLite module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::db::{DbConn, DbValue};
use sr_testkit::kamailio::{self, assert_same, run_both, MPATH};
use std::path::Path;

const CFG: &str = r#"#!KAMAILIO
children=1
listen=udp:127.0.0.1:__PORT__
mpath="__MPATH__"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "db_sqlite.so"
loadmodule "permissions.so"
modparam("permissions", "db_url", "__DB__")
modparam("permissions", "db_mode", __MODE__)
modparam("permissions", "peer_tag_avp", "$avp(tag)")
modparam("permissions", "peer_tag_mode", __TAGMODE__)
request_route {
    $var(a) = allow_address("$(hdr(X-Grp){s.int})", "$hdr(X-Ip)", "$(hdr(X-Port){s.int})");
    $var(g) = allow_address_group("$hdr(X-Ip)", "$(hdr(X-Port){s.int})");
    $var(s) = allow_source_address("$(hdr(X-Grp){s.int})");
    $var(sg) = allow_source_address_group();
    $var(t) = allow_trusted("$hdr(X-Ip)", "$hdr(X-Proto)", "$hdr(X-Furi)");
    $var(t2) = allow_trusted("$hdr(X-Ip)", "$hdr(X-Proto)");
    $var(t0) = allow_trusted();
    append_to_reply("X-P: a=$var(a) g=$var(g) s=$var(s) sg=$var(sg) t=$var(t) t2=$var(t2) t0=$var(t0) tags=$(avp(tag)[0]),$(avp(tag)[1]),$(avp(tag)[2]),$(avp(tag)[3]),$(avp(tag)[4]),$(avp(tag)[5]),$(avp(tag)[6]),$(avp(tag)[7]),$(avp(tag)[8]),$(avp(tag)[9]),$(avp(tag)[10]),$(avp(tag)[11])\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn fill(db: &Path) {
    let url = format!("sqlite://{}", db.display());
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    let s = |v: &str| DbValue::str(v);
    let opt = |v: Option<&str>| v.map_or(DbValue::Null, DbValue::str);
    for (grp, ip, mask, port, tag) in [
        (1, "127.0.0.1", 32, 0, Some("loop")),
        (2, "127.0.0.1", 32, 5060, Some("loop5060")),
        (3, "10.0.0.0", 8, 0, Some("ten")),
        (1, "10.1.0.0", 16, 5061, Some("tenone")),
        (4, "192.168.1.10", 32, 0, None),
        (5, "gw.example.com", 32, 0, Some("name")),
        (2, "10.1.2.3", 32, 0, Some("host")),
        (3, "10.1.2.3", 32, 5061, Some("host3")),
        (6, "2001:db8::", 32, 0, Some("v6net")),
        (6, "::1", 128, 0, Some("v6host")),
        (7, "172.16.0.0", 12, 0, Some("rfc1918")),
        (8, "10.0.0.0", 0, 0, Some("mask0")),
    ] {
        c.insert(
            "address",
            &[
                ("grp", DbValue::Int(grp)),
                ("ip_addr", s(ip)),
                ("mask", DbValue::Int(mask)),
                ("port", DbValue::Int(port)),
                ("tag", opt(tag)),
            ],
        )
        .unwrap();
    }
    for (ip, proto, from, ruri, tag, prio) in [
        ("127.0.0.1", "any", None, None, Some("t-any"), 0),
        (
            "10.0.0.1",
            "udp",
            Some("^sip:.*@carrier\\.net"),
            None,
            Some("carrier"),
            5,
        ),
        ("10.0.0.1", "tcp", None, None, Some("tcp"), 1),
        ("10.0.0.1", "any", None, Some("^sip:\\+49"), Some("de"), 9),
        ("10.0.0.1", "UDP", None, None, None, 3),
        ("10.0.0.2", "none", None, None, Some("none"), 0),
        ("10.0.0.3", "tls", None, None, Some("tls"), 2),
        // A literal + in a basic expression: matches +49 numbers.
        ("10.0.0.3", "any", None, Some("^sip:+49"), Some("de-lit"), 7),
        (
            "10.0.0.3",
            "udp",
            Some("\\(alice\\|bob\\)@"),
            None,
            Some("alt"),
            4,
        ),
        ("10.0.0.3", "any", Some("a$b"), None, Some("mid-dollar"), 1),
    ] {
        c.insert(
            "trusted",
            &[
                ("src_ip", s(ip)),
                ("proto", s(proto)),
                ("from_pattern", opt(from)),
                ("ruri_pattern", opt(ruri)),
                ("tag", opt(tag)),
                ("priority", DbValue::Int(prio)),
            ],
        )
        .unwrap();
    }
}

fn requests() -> Vec<(String, String)> {
    let ips = [
        "127.0.0.1",
        "10.1.2.3",
        "10.1.9.9",
        "10.200.0.1",
        "192.168.1.10",
        "gw.example.com",
        "2001:db8::5",
        "::1",
        "172.20.5.5",
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
        "8.8.8.8",
        "10.0.0.0",
    ];
    let protos = ["any", "udp", "tcp", "tls", "UDP"];
    let furis = ["sip:a@carrier.net", "sip:alice@other.net"];
    let ruris = ["sip:+4930123@example.com", "sip:bob@example.com"];
    let mut out = Vec::new();
    let mut i = 0;
    for ip in ips {
        for port in [0, 5060, 5061] {
            for k in 0..4 {
                i += 1;
                let head = format!(
                    "X-Ip: {ip}\r\nX-Port: {port}\r\nX-Grp: {}\r\nX-Proto: {}\r\nX-Furi: {}\r\n",
                    1 + i % 8,
                    protos[i % protos.len()],
                    furis[k % 2],
                );
                let call = format!("p{i}");
                let text = format!(
                    "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKp{i}\r\nFrom: <{from}>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\n{head}Content-Length: 0\r\n\r\n",
                    ruri = ruris[(k / 2) % 2],
                    from = furis[(k + 1) % 2],
                );
                out.push((call, text));
            }
        }
    }
    out
}

const PROBE: &str = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKup\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: up\r\nCSeq: 1 OPTIONS\r\nX-Ip: 1.1.1.1\r\nX-Port: 0\r\nX-Grp: 1\r\nX-Proto: any\r\nX-Furi: sip:a@b\r\nContent-Length: 0\r\n\r\n";

#[test]
fn permissions_match_kamailio() {
    if !kamailio::available(&["permissions", "db_sqlite", "sl", "pv", "textops"]) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sr-kperm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("perm.db");
    fill(&db);
    // Kamailio's db_sqlite reads what follows `sqlite://` and one more
    // slash as a relative path: four slashes make it absolute for both.
    let url = format!("sqlite:///{}", db.display());
    let reqs = requests();
    for (mode, tag_mode) in [(1, 0), (1, 1), (0, 0), (0, 1)] {
        let cfg = |port: &str| {
            CFG.replace("__PORT__", port)
                .replace("__MPATH__", MPATH)
                .replace("__DB__", &url)
                .replace("__MODE__", &mode.to_string())
                .replace("__TAGMODE__", &tag_mode.to_string())
        };
        let (want, got) = run_both(&dir, &cfg, PROBE, &reqs, &["X-P"], siprouter::in_tree());
        assert!(want.iter().any(|a| a.contains("g=6")), "{want:?}");
        assert!(want.iter().any(|a| a.contains("t=1")), "{want:?}");
        assert!(want.iter().any(|a| a.contains("de-lit")), "{want:?}");
        assert_same(
            &want,
            &got,
            &format!("db_mode={mode} peer_tag_mode={tag_mode}"),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
