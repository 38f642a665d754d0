//! The db_text module end to end, what the Kamailio differential test
//! (`kamailio_parity_db_text.rs`) leaves out: a folder made by
//! `siprouter db -u text:///... init` and a subscriber added by
//! `siprouter db add` (written when the tool's connection closes), a
//! registration through it with usrloc writing through, `db_text.dump`
//! writing the changed table, `db_mode` 1 reading a table again after its
//! file changed, and a table file that does not parse giving an error,
//! not a wrong answer.

use crate::reg_support::Ua;
use sr_testkit::{TestServer, UdpPeer};
use std::path::Path;

fn cfg(url: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_text"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "auth"
loadmodule "auth_db"
loadmodule "alias_db"
modparam("db_text", "db_mode", 1)
modparam("auth_db|usrloc|alias_db", "db_url", "{url}")
modparam("usrloc", "db_mode", 1)
request_route {{
    if (is_method("REGISTER")) {{
        if (!www_authorize("example.com", "subscriber")) {{
            www_challenge("example.com", "0");
            exit;
        }}
        save("location");
        exit;
    }}
    $var(a) = alias_db_lookup("dbaliases");
    append_to_reply("X-R: $var(a) $ru\r\n");
    sl_send_reply("200", "ok");
}}
"#
    )
}

fn tool(url: &str, cmd: &str, args: &[&str]) -> String {
    let mut c = sr_mod_db_text::driver().open(url).expect("open");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    siprouter::db_cmd::command(c.as_mut(), cmd, &args).expect("db command")
}

fn alias(srv: &TestServer, user: &str) -> String {
    let peer = UdpPeer::new();
    let req = sr_testkit::kamailio::options(&format!("dbt-{user}"), "")
        .replace("__VIA__", &peer.addr().to_string())
        .replace("sip:x@127.0.0.1", &format!("sip:{user}@example.com"));
    peer.final_header(srv.addr(), &req, "X-R")
}

fn rows(dir: &Path, table: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(table))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn tool_server_dump_and_reread() {
    let dir = sr_testkit::fresh_db("db_text").with_extension("d");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("text://{}", dir.display());
    tool(&url, "init", &[]);
    tool(&url, "add", &["alice@example.com", "secret"]);
    // Written when the tool's connection closed.
    let subs = rows(&dir, "subscriber");
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert!(subs[0].contains(":alice:example.com:"), "{subs:?}");
    assert!(
        rows(&dir, "version").iter().any(|r| r == "location:9"),
        "{:?}",
        rows(&dir, "version")
    );
    let srv = TestServer::start(&cfg(&url), siprouter::in_tree());
    let ua = Ua::new("alice");
    assert_eq!(
        ua.register_auth(srv.addr(), "secret", 600).status(),
        Some(200)
    );
    assert!(rows(&dir, "location").is_empty(), "written only by a dump");
    assert_eq!(
        srv.rpc("db_text.dump", &[]).unwrap(),
        sr_sdk::serde_json::json!("Dump OK")
    );
    let loc = rows(&dir, "location");
    assert_eq!(loc.len(), 1, "{loc:?}");
    assert!(
        loc[0].contains(":alice::sip\\:alice@127.0.0.1\\:"),
        "{loc:?}"
    );
    // db_mode 1: a table whose file changed is read again.
    assert_eq!(alias(&srv, "al"), "-1 sip:al@example.com");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let head = std::fs::read_to_string(dir.join("dbaliases")).unwrap();
    let head = head.lines().next().unwrap().to_string();
    std::fs::write(
        dir.join("dbaliases"),
        format!("{head}\n1:al:example.com:alice:example.com\n"),
    )
    .unwrap();
    assert_eq!(alias(&srv, "al"), "1 sip:alice@example.com");
    // A file that does not parse: the lookup fails, nothing else.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(dir.join("dbaliases"), format!("{head}\nnot:enough\n")).unwrap();
    assert_eq!(alias(&srv, "al"), "-1 sip:al@example.com");
    drop(srv);
}
