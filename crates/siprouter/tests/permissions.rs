//! End-to-end: the permissions module on real sockets: requests let in or
//! refused by `allow_source_address` from an address file, the address and
//! trusted tables from SQLite reloaded and dumped over RPC, tags in
//! `peer_tag_avp`, and configuration faults refused at start.

use sr_sdk::db::{DbConn, DbValue};
use sr_sdk::serde_json::json;
use sr_sdk::Core;
use sr_testkit::{req, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// A folder of the test's own, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("sr-perm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(from: &UdpPeer, srv: &TestServer, call: &str) -> (u16, Option<String>) {
    from.send(
        srv.addr(),
        &req(
            "OPTIONS",
            "sip:x@example.com",
            from.addr(),
            call,
            call,
            1,
            &[],
            "",
        ),
    );
    let r = from.recv_final(T).expect("a reply");
    (r.status().unwrap_or(0), r.header("X-Tag"))
}

const ROUTE: &str = r#"
request_route {
    if (allow_source_address("2")) {
        append_to_reply("X-Tag: $avp(tag)\r\n");
        sl_send_reply("200", "Known");
        exit;
    }
    sl_send_reply("403", "Forbidden");
}
"#;

#[test]
fn address_file_lets_known_sources_in() {
    let known = UdpPeer::new();
    let stranger = UdpPeer::new();
    let dir = TempDir::new("file");
    let file = dir.0.join("address.list");
    // Group 2: the known peer's exact address and port; 127.0.0.0/8 is in
    // group 3 only.
    std::fs::write(
        &file,
        format!(
            "# peers\n2 127.0.0.1 32 {} pbx\n3 127.0.0.0 8 0 loopback\n",
            known.addr().port()
        ),
    )
    .unwrap();
    let cfg = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"sl\"\nloadmodule \"pv\"\nloadmodule \"textops\"\nloadmodule \"permissions\"\nmodparam(\"permissions\", \"address_file\", \"{}\")\nmodparam(\"permissions\", \"peer_tag_avp\", \"$avp(tag)\")\nmodparam(\"permissions\", \"reload_delta\", 0)\n{ROUTE}",
        file.display()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    assert_eq!(options(&known, &srv, "k1"), (200, Some("pbx".into())));
    assert_eq!(options(&stranger, &srv, "s1").0, 403);
    // The stranger is added to group 2 as a subnet: reloaded, it is in.
    std::fs::write(
        &file,
        format!(
            "2 127.0.0.1 32 {} pbx\n2 127.0.0.0 8 {} lab\n",
            known.addr().port(),
            stranger.addr().port()
        ),
    )
    .unwrap();
    assert_eq!(
        srv.rpc("permissions.addressReload", &[]).unwrap(),
        json!("Reload OK")
    );
    assert_eq!(options(&stranger, &srv, "s2"), (200, Some("lab".into())));
    let subnets = srv.rpc("permissions.subnetDump", &[]).unwrap();
    assert_eq!(subnets[0]["group"], 2);
    assert_eq!(subnets[0]["item"]["ip"], "127.0.0.0");
    assert_eq!(subnets[0]["item"]["mask"], 8);
    assert_eq!(subnets[0]["item"]["tag"], "lab");
    let hosts = srv.rpc("permissions.addressDump", &[]).unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 1);
    assert_eq!(hosts[0]["item"]["port"], known.addr().port());
    // A broken file: the reload fails and the table in use stays.
    std::fs::write(&file, "2 127.0.0.1 99\n").unwrap();
    let e = srv.rpc("permissions.addressReload", &[]).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "Reload failed."));
    assert_eq!(options(&stranger, &srv, "s3").0, 200);
    // No trusted table here.
    let e = srv.rpc("permissions.trustedDump", &[]).unwrap_err();
    assert_eq!(e.message, "No trusted table");
    let e = srv.rpc("permissions.trustedReload", &[]).unwrap_err();
    assert_eq!(e.message, "Reload failed.");
}

#[test]
fn tables_from_sqlite_reload_and_dump() {
    let db = sr_testkit::fresh_db("permissions");
    let url = format!("sqlite://{}", db.display());
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    c.insert(
        "trusted",
        &[
            ("src_ip", DbValue::str("127.0.0.1")),
            ("proto", DbValue::str("udp")),
            ("from_pattern", DbValue::str("^sip:alice@")),
            ("tag", DbValue::str("alice-trunk")),
            ("priority", DbValue::Int(3)),
        ],
    )
    .unwrap();
    // An address row (group 2) read at start from the database.
    c.insert(
        "address",
        &[
            ("grp", DbValue::Int(2)),
            ("ip_addr", DbValue::str("127.0.0.1")),
            ("tag", DbValue::str("from-db")),
        ],
    )
    .unwrap();
    drop(c);
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "permissions"
modparam("permissions", "db_url", "{url}")
modparam("permissions", "db_mode", 1)
modparam("permissions", "peer_tag_avp", "$avp(tag)")
request_route {{
    if (allow_trusted()) {{
        append_to_reply("X-Tag: $avp(tag)\r\n");
        sl_send_reply("200", "Trusted");
        exit;
    }}
    if (allow_source_address("2")) {{
        append_to_reply("X-Tag: $avp(tag)\r\n");
        sl_send_reply("202", "Known address");
        exit;
    }}
    sl_send_reply("403", "Forbidden");
}}
"#
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let peer = UdpPeer::new();
    // The test's From is alice@example.com (testkit's req).
    assert_eq!(
        options(&peer, &srv, "t1"),
        (200, Some("alice-trunk".into()))
    );
    let dump = srv.rpc("permissions.trustedDump", &[]).unwrap();
    assert_eq!(dump[0]["item"]["ip"], "127.0.0.1");
    assert_eq!(dump[0]["item"]["proto"], 1);
    assert_eq!(dump[0]["item"]["pattern"], "^sip:alice@");
    assert_eq!(dump[0]["item"]["ruri_pattern"], "NULL");
    assert_eq!(dump[0]["item"]["priority"], 3);
    // The rows change in the database: seen after the reloads.
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    c.delete("trusted", &[]).unwrap();
    c.delete("address", &[]).unwrap();
    drop(c);
    assert_eq!(options(&peer, &srv, "t2").0, 200, "cached until reloaded");
    assert_eq!(
        srv.rpc("permissions.trustedReload", &[]).unwrap(),
        json!("Reload OK")
    );
    // One clock for both reloads (reload_delta 5 s): the address reload
    // right after is refused, as in Kamailio.
    let e = srv.rpc("permissions.addressReload", &[]).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "ongoing reload"));
    // Not trusted now; the address row, read at start, still lets it in.
    assert_eq!(options(&peer, &srv, "t3"), (202, Some("from-db".into())));
    let dump = srv.rpc("permissions.addressDump", &[]).unwrap();
    assert_eq!(dump[0]["item"]["tag"], "from-db");
}

#[test]
fn faults_are_refused_at_start() {
    let base = "listen=udp:127.0.0.1:{PORT}\nloadmodule \"sl\"\nloadmodule \"permissions\"\n";
    for (params, want) in [
        ("modparam(\"permissions\", \"db_mode\", 2)", "db_mode"),
        (
            "modparam(\"permissions\", \"peer_tag_avp\", \"$var(x)\")",
            "peer_tag_avp",
        ),
        (
            "modparam(\"permissions\", \"address_file\", \"/nonexistent/address.list\")",
            "/nonexistent/address.list",
        ),
    ] {
        let cfg = format!("{base}{params}\nrequest_route {{ drop; }}\n");
        let e = TestServer::try_start(&cfg, siprouter::in_tree())
            .err()
            .expect("refused");
        assert!(e.join("\n").contains(want), "{want}: {e:?}");
    }
}

#[test]
fn rule_files_next_to_the_config_route_and_answer_test_uri() {
    let dir = TempDir::new("rules");
    let d = &dir.0;
    std::fs::write(d.join("permissions.allow"), "\"^sip:alice@\" : ALL\n").unwrap();
    std::fs::write(d.join("permissions.deny"), "ALL : ALL\n").unwrap();
    std::fs::write(d.join("register.deny"), "ALL : \"^sip:.*1\\.2\\.3\\.4$\"\n").unwrap();
    let port = sr_testkit::free_port();
    let cfg = d.join("site.cfg");
    std::fs::write(
        &cfg,
        format!(
            r#"listen=udp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "permissions"
request_route {{
    if (is_method("REGISTER")) {{
        if (!allow_register("register")) {{ sl_send_reply("403", "Contact refused"); exit; }}
        sl_send_reply("200", "ok");
        exit;
    }}
    if (!allow_routing()) {{ sl_send_reply("403", "Not allowed"); exit; }}
    sl_send_reply("200", "ok");
}}
"#
        ),
    )
    .unwrap();
    // From another folder: the relative names are the config's folder's.
    let opts = siprouter::options(cfg.to_str().unwrap());
    let rt = sr_core::load(&opts, false).unwrap_or_else(|e| panic!("{}", e.join("\n")));
    let srv = sr_core::start(&rt).unwrap();
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ua = UdpPeer::new();
    let ask = |method: &str, from: &str, contact: &str, n: u32| {
        let extra = format!("Contact: <{contact}>");
        let mut m = req(
            method,
            "sip:bob@b.com",
            ua.addr(),
            &format!("ru{n}"),
            &format!("ru-{n}"),
            1,
            &[&extra],
            "",
        );
        m = m.replace("From: <sip:alice@example.com>", &format!("From: <{from}>"));
        ua.send(to, &m);
        ua.recv_final(T).expect("an answer").status()
    };
    assert_eq!(
        ask("OPTIONS", "sip:alice@example.com", "sip:a@h", 1),
        Some(200)
    );
    assert_eq!(
        ask("OPTIONS", "sip:eve@example.com", "sip:a@h", 2),
        Some(403)
    );
    assert_eq!(ask("REGISTER", "sip:x@y", "sip:a@5.6.7.8", 3), Some(200));
    assert_eq!(
        ask("REGISTER", "sip:x@y", "sip:a@1.2.3.4:5060", 4),
        Some(403)
    );
    // The RPC tests a pair of strings against a loaded basename.
    let t = |base: &str, uri: &str, contact: &str| {
        rt.rpc_call(
            "permissions.testUri",
            &[json!(base), json!(uri), json!(contact)],
        )
        .unwrap()
    };
    assert_eq!(
        t("permissions", "sip:alice@a.com", "sip:bob@b.com"),
        json!("Allowed")
    );
    assert_eq!(
        t("permissions", "sip:eve@a.com", "sip:bob@b.com"),
        json!("Denied")
    );
    assert_eq!(t("register", "sip:x@y", "sip:a@1.2.3.4"), json!("Denied"));
    assert_eq!(t("nosuch", "sip:x@y", "sip:a@b"), json!("Denied"));
    assert!(rt
        .rpc_call("permissions.allowUri", &[json!("permissions")])
        .is_err());
    srv.shutdown();
}
