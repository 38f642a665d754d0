//! The prefix_route module end to end, what the Kamailio differential
//! test (`kamailio_parity_prefix_route.rs`, on MariaDB) leaves out: the
//! table on SQLite, which Kamailio's prefix_route cannot read (its srdb2
//! interface is missing from db_sqlite) and siprouter can; a route name
//! that does not exist stops the start with the reason; the table made by
//! `siprouter db init`'s schema.

use sr_testkit::{TestServer, UdpPeer};

fn cfg(url: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "prefix_route"
modparam("prefix_route", "db_url", "{url}")
request_route {{
    prefix_route();
    append_to_reply("X-R: none $rc\r\n");
    sl_send_reply("404", "no route");
}}
route[SE] {{ append_to_reply("X-R: SE $rU\r\n"); sl_send_reply("200", "se"); }}
route[NO] {{ append_to_reply("X-R: NO $rU\r\n"); sl_send_reply("200", "no"); }}
route[LOOP] {{ prefix_route("99"); }}
"#
    )
}

fn route(srv: &TestServer, user: &str) -> String {
    let peer = UdpPeer::new();
    let req = sr_testkit::kamailio::options(&format!("pr-{user}"), "")
        .replace("__VIA__", &peer.addr().to_string())
        .replace("sip:x@127.0.0.1", &format!("sip:{user}@x.example"));
    peer.final_header(srv.addr(), &req, "X-R")
}

#[test]
fn routes_from_sqlite_and_refuses_unknown_routes() {
    let db = sr_testkit::fresh_db("prefix_route");
    let url = format!("sqlite://{}", db.display());
    // The tables `siprouter db init` makes, prefix_route among them.
    let mut c = sr_mod_db_sqlite::driver().open(&url).expect("sqlite");
    sr_sdk::db::init_standard_tables(&mut *c).expect("the tables");
    drop(c);
    sr_testkit::sqlite3(
        &db,
        "INSERT INTO prefix_route (prefix, route, comment) VALUES ('46', 'SE', 'Sweden'), ('47', 'NO', 'Norway'), ('9', 'LOOP', 'itself');",
    );
    let srv = TestServer::start(&cfg(&url), siprouter::in_tree());
    assert_eq!(route(&srv, "4612"), "SE 4612");
    assert_eq!(route(&srv, "47-1"), "NO 47-1");
    assert_eq!(route(&srv, "46"), "none -1", "a user equal to a prefix");
    assert_eq!(route(&srv, "5"), "none -1");
    // A block that runs prefix_route again, into itself: stopped at a
    // depth, the request answered.
    assert_eq!(route(&srv, "99"), "none -1");
    sr_testkit::sqlite3(
        &db,
        "UPDATE prefix_route SET route = 'NO' WHERE prefix = '46';",
    );
    assert_eq!(
        srv.rpc("prefix_route.reload", &[]).unwrap(),
        sr_sdk::serde_json::json!("Prefix routes reloaded successfully")
    );
    assert_eq!(route(&srv, "4612"), "NO 4612");
    drop(srv);
    sr_testkit::sqlite3(
        &db,
        "INSERT INTO prefix_route (prefix, route) VALUES ('9', 'NOWHERE');",
    );
    let e = TestServer::try_start(&cfg(&url), siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(
        e.join("\n").contains("route name 'NOWHERE' is not defined"),
        "{e:?}"
    );
}
