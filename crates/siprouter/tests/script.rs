//! The routing script with real messages: each test runs a small config
//! and reads the result from the reply's reason phrase (sl_send_reply with
//! a format string), so every value goes through the real engine.

use sr_testkit::{req, TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn server(body: &str) -> TestServer {
    let cfg = format!("listen=udp:127.0.0.1:{{PORT}}\nchildren=1\nloadmodule \"sl\"\n{body}\n");
    TestServer::start(&cfg, siprouter::in_tree())
}

/// Sends one request and returns the reason phrase of the reply.
fn ask(srv: &TestServer, uac: &UdpPeer, method: &str, ruri: &str, extra: &[&str]) -> String {
    ask_n(srv, uac, method, ruri, extra, "c")
}

fn ask_n(
    srv: &TestServer,
    uac: &UdpPeer,
    method: &str,
    ruri: &str,
    extra: &[&str],
    cid: &str,
) -> String {
    let m = req(method, ruri, uac.addr(), cid, cid, 1, extra, "");
    uac.send(srv.addr(), &m);
    let r = uac.recv(T).expect("a reply");
    r.msg.msg().reason().unwrap_or("").to_string()
}

#[test]
fn var_survives_between_messages_in_a_worker() {
    let srv = server(
        r#"request_route {
            $var(n) = $var(n) + 1;
            sl_send_reply("200", "n=$var(n)");
        }"#,
    );
    let uac = UdpPeer::new();
    assert_eq!(ask_n(&srv, &uac, "OPTIONS", "sip:a@b", &[], "1"), "n=1");
    assert_eq!(ask_n(&srv, &uac, "OPTIONS", "sip:a@b", &[], "2"), "n=2");
    assert_eq!(ask_n(&srv, &uac, "OPTIONS", "sip:a@b", &[], "3"), "n=3");
}

#[test]
fn return_zero_in_a_subroute_exits_the_script() {
    let srv = server(
        r#"request_route {
            route(CHECK);
            sl_send_reply("200", "after route");
        }
        route[CHECK] {
            if ($rU == "stop") {
                sl_send_reply("403", "stopped");
                return 0;
            }
            return 1;
        }"#,
    );
    let uac = UdpPeer::new();
    assert_eq!(
        ask_n(&srv, &uac, "OPTIONS", "sip:stop@b", &[], "1"),
        "stopped"
    );
    assert_eq!(
        ask_n(&srv, &uac, "OPTIONS", "sip:go@b", &[], "2"),
        "after route"
    );
}

#[test]
fn equality_is_typed_by_the_left_operand() {
    let srv = server(
        r#"request_route {
            $var(s) = "10";
            $var(i) = 10;
            $var(r) = "";
            if ($var(s) == "10") { $var(r) = $var(r) + "a"; }
            if ($var(i) == "10") { $var(r) = $var(r) + "b"; }
            if ("010" == 10) { $var(r) = $var(r) + "c"; }
            if (10 == "010") { $var(r) = $var(r) + "d"; }
            if ($null == $null) { $var(r) = $var(r) + "e"; }
            if ($avp(none) == 0) { $var(r) = $var(r) + "f"; }
            if ("a" + 1 == "a1") { $var(r) = $var(r) + "g"; }
            if (1 + "2" == 3) { $var(r) = $var(r) + "h"; }
            sl_send_reply("200", "r=$var(r)");
        }"#,
    );
    let uac = UdpPeer::new();
    assert_eq!(ask(&srv, &uac, "OPTIONS", "sip:a@b", &[]), "r=abdefgh");
}

#[test]
fn rc_holds_the_last_code_and_route_value() {
    let srv = server(
        r#"request_route {
            route(NEG);
            $var(a) = $rc;
            if (route(NEG)) { $var(b) = "true"; } else { $var(b) = "false"; }
            sl_send_reply("200", "rc=$var(a) cond=$var(b)");
        }
        route[NEG] { return -2; }"#,
    );
    let uac = UdpPeer::new();
    assert_eq!(
        ask(&srv, &uac, "OPTIONS", "sip:a@b", &[]),
        "rc=-2 cond=false"
    );
}

#[test]
fn switch_with_ints_strings_regex_fallthrough_and_default() {
    let srv = server(
        r#"request_route {
            $var(out) = "";
            switch ($rU) {
                case "alice":
                    $var(out) = "A";
                case "bob":
                    $var(out) = $var(out) + "B";
                    break;
                case /"^car":
                    $var(out) = "C";
                    break;
                default:
                    $var(out) = "D";
            }
            $var(n) = 2;
            switch ($var(n)) {
                case 1: $var(out) = $var(out) + "1"; break;
                case 2: $var(out) = $var(out) + "2"; break;
            }
            sl_send_reply("200", "$var(out)");
        }"#,
    );
    let uac = UdpPeer::new();
    assert_eq!(ask_n(&srv, &uac, "OPTIONS", "sip:alice@b", &[], "1"), "AB2");
    assert_eq!(ask_n(&srv, &uac, "OPTIONS", "sip:bob@b", &[], "2"), "B2");
    assert_eq!(ask_n(&srv, &uac, "OPTIONS", "sip:carol@b", &[], "3"), "C2");
    assert_eq!(ask_n(&srv, &uac, "OPTIONS", "sip:dave@b", &[], "4"), "D2");
}

#[test]
fn while_is_bounded_and_break_works() {
    let srv = server(
        r#"max_while_loops=5
        request_route {
            $var(i) = 0;
            while ($var(i) < 1000) { $var(i) = $var(i) + 1; }
            $var(j) = 0;
            while (1) { $var(j) += 1; if ($var(j) == 3) { break; } }
            sl_send_reply("200", "i=$var(i) j=$var(j)");
        }"#,
    );
    let uac = UdpPeer::new();
    assert_eq!(ask(&srv, &uac, "OPTIONS", "sip:a@b", &[]), "i=5 j=3");
}

#[test]
fn regex_match_is_case_insensitive_and_casts_work() {
    let srv = server(
        r#"request_route {
            $var(r) = "";
            if ($ua =~ "friendly|scanner") { $var(r) = "scanner"; }
            if ((int)"42" == 42 && (int)"42abc" == 0) { $var(r) = $var(r) + "+int"; }
            if ((str)7 + "x" == "7x") { $var(r) = $var(r) + "+str"; }
            if (strlen($rU) == 5 && !strempty($rU)) { $var(r) = $var(r) + "+len"; }
            if (defined $rU && !(defined $avp(nothing))) { $var(r) = $var(r) + "+def"; }
            sl_send_reply("200", "$var(r)");
        }"#,
    );
    let uac = UdpPeer::new();
    let r = ask(
        &srv,
        &uac,
        "OPTIONS",
        "sip:alice@b",
        &["User-Agent: FRIENDLY-scanner 1.0"],
    );
    assert_eq!(r, "scanner+int+str+len+def");
}

#[test]
fn pseudo_variables_and_transformations() {
    let srv = server(
        r#"request_route {
            $avp(x) = "one";
            $avp(x) = "two";
            sl_send_reply("200", "v|$rm|$rU|$rd|$fU|$fd|$ft|$tU|$ci|$cs|$(ru{s.len})|$(hdr(X-Test){s.toupper})|$(avp(x)[1])|$(fu{uri.user})|$(hdr(X-P){param.value,b})|$(rU{s.substr,1,3})|$(ci{s.md5}{s.len})|$(hdr(X-Test){re.subst,/l+/L/})");
        }"#,
    );
    let uac = UdpPeer::new();
    let r = ask(
        &srv,
        &uac,
        "MESSAGE",
        "sip:bobby@example.org:5070",
        &["X-Test: hello", "X-P: a=1;b=two"],
    );
    let parts: Vec<&str> = r.split('|').collect();
    assert_eq!(
        parts,
        [
            "v",
            "MESSAGE",
            "bobby",
            "example.org",
            "alice",
            "example.com",
            "from-c",
            "bobby",
            "c",
            "1",
            "26",
            "HELLO",
            "one",
            "alice",
            "two",
            "obb",
            "32",
            "heLo"
        ]
    );
}

#[test]
fn assignments_to_request_uri_parts_and_flags() {
    let srv = server(
        r#"request_route {
            $rU = "carol";
            $rd = "example.net";
            setflag(3);
            if (isflagset(3)) { $var(f) = "set"; }
            resetflag(3);
            if (!isflagset(3)) { $var(f) = $var(f) + "+reset"; }
            sl_send_reply("200", "= $ru $var(f) $mf");
        }"#,
    );
    let uac = UdpPeer::new();
    assert_eq!(
        ask(
            &srv,
            &uac,
            "OPTIONS",
            "sip:bob@example.com;transport=udp",
            &[]
        ),
        "= sip:carol@example.net;transport=udp set+reset 0"
    );
}

#[test]
fn core_conditions() {
    let srv = server(
        r#"request_route {
            $var(r) = "";
            if (uri == myself) { $var(r) = "me"; }
            if (src_ip == 127.0.0.0/8) { $var(r) = $var(r) + "+lo"; }
            if (proto == UDP) { $var(r) = $var(r) + "+udp"; }
            if (af == INET) { $var(r) = $var(r) + "+v4"; }
            if (method == "options") { $var(r) = $var(r) + "+opt"; }
            if (from_uri =~ "^sip:alice@") { $var(r) = $var(r) + "+from"; }
            sl_send_reply("200", "$var(r)");
        }"#,
    );
    let uac = UdpPeer::new();
    let me = format!("sip:127.0.0.1:{}", srv.port);
    assert_eq!(
        ask(&srv, &uac, "OPTIONS", &me, &[]),
        "me+lo+udp+v4+opt+from"
    );
    assert_eq!(
        ask_n(&srv, &uac, "OPTIONS", "sip:x@192.0.2.1", &[], "2"),
        "+lo+udp+v4+opt+from"
    );
}

#[test]
fn drop_and_exit_stop_without_a_reply() {
    let srv = server(
        r#"request_route {
            if ($rU == "drop") { drop; }
            if ($rU == "exit") { exit; }
            sl_send_reply("200", "reached");
        }"#,
    );
    let uac = UdpPeer::new();
    for who in ["drop", "exit"] {
        let m = req(
            "OPTIONS",
            &format!("sip:{who}@b"),
            uac.addr(),
            who,
            who,
            1,
            &[],
            "",
        );
        uac.send(srv.addr(), &m);
        assert!(
            uac.recv(Duration::from_millis(400)).is_none(),
            "{who} must not reply"
        );
    }
    assert_eq!(ask(&srv, &uac, "OPTIONS", "sip:x@b", &[]), "reached");
}

#[test]
fn reload_swaps_routes_and_keeps_old_ones_on_error() {
    let srv = server(r#"request_route { sl_send_reply("200", "version one"); }"#);
    let uac = UdpPeer::new();
    assert_eq!(
        ask_n(&srv, &uac, "OPTIONS", "sip:a@b", &[], "1"),
        "version one"
    );
    let path = srv.dir.join("test.cfg");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("version one", "version two")).unwrap();
    let r = srv.rpc("cfg.reload", &[]).expect("reload accepted");
    assert_eq!(r["reloaded"], true);
    assert_eq!(
        ask_n(&srv, &uac, "OPTIONS", "sip:a@b", &[], "2"),
        "version two"
    );
    // A broken config is refused and the running routes stay.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("sl_send_reply(", "no_such_function(")).unwrap();
    let e = srv.rpc("cfg.reload", &[]).expect_err("reload refused");
    assert!(
        e.message.contains("unknown function 'no_such_function'"),
        "{}",
        e.message
    );
    assert!(e.message.contains("test.cfg:"), "{}", e.message);
    assert_eq!(
        ask_n(&srv, &uac, "OPTIONS", "sip:a@b", &[], "3"),
        "version two"
    );
}
