//! The regex module end to end, what the Kamailio differential test
//! (`kamailio_parity_regex.rs`) leaves out: a groups file that does not
//! load stops the start with the reason, `pcre_match_group` without a
//! file, `pcre_multiline` and `pcre_dotall`.

use sr_testkit::{TestServer, UdpPeer};

fn cfg(extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "regex"
{extra}
request_route {{
    $var(s) = "first line" + "\n" + "second";
    pcre_match("$var(s)", "^second"); $var(a) = $rc;
    pcre_match("$var(s)", "line.second"); $var(b) = $rc;
    pcre_match_group("$var(s)"); $var(c) = $rc;
    append_to_reply("X-A: $var(a) $var(b) $var(c)\r\n");
    sl_send_reply("200", "ok");
}}
"#
    )
}

fn answer(srv: &TestServer) -> String {
    let peer = UdpPeer::new();
    let req =
        sr_testkit::kamailio::options("rx-1", "").replace("__VIA__", &peer.addr().to_string());
    peer.final_header(srv.addr(), &req, "X-A")
}

#[test]
fn options_and_a_missing_file() {
    let srv = TestServer::start(&cfg(""), siprouter::in_tree());
    assert_eq!(
        answer(&srv),
        "-1 -1 -2",
        "one line, dot stops at the line break, no file"
    );
    let e = srv.rpc("regex.reload", &[]).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (500, "Group matching not enabled")
    );
    drop(srv);
    let srv = TestServer::start(
        &cfg("modparam(\"regex\", \"pcre_multiline\", 1)\nmodparam(\"regex\", \"pcre_dotall\", 1)"),
        siprouter::in_tree(),
    );
    assert_eq!(answer(&srv), "1 1 -2");
    assert_eq!(srv.rpc("regex.reload", &[]).map_err(|e| e.code), Err(500));
}

#[test]
fn a_bad_groups_file_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("sr-regex-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("groups");
    for (text, want) in [
        ("^before\n[0]\n", "first group must be initialized"),
        ("[0]\n(?=look)ahead\n", "compilation of"),
        ("# only comments\n", "no expressions in the file"),
    ] {
        std::fs::write(&file, text).unwrap();
        let extra = format!("modparam(\"regex\", \"file\", \"{}\")", file.display());
        let e = TestServer::try_start(&cfg(&extra), siprouter::in_tree())
            .err()
            .expect("refused");
        assert!(e.join("\n").contains(want), "{text:?}: {e:?}");
    }
    let extra = format!("modparam(\"regex\", \"file\", \"{}/none\")", dir.display());
    let e = TestServer::try_start(&cfg(&extra), siprouter::in_tree())
        .err()
        .expect("refused");
    assert!(e.join("\n").contains("could not open file"), "{e:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
