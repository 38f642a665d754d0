//! End-to-end: the infrastructure modules used from a routing script
//! (pv, xlog, kex, corex, counters, cfg_rpc) on a real server, observed
//! through the replies the script sends, statistics, RPC and the log.

use sr_sdk::serde_json::json;
use sr_testkit::{req, TestServer, UdpPeer};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

const CFG: &str = r#"
listen=udp:127.0.0.1:{PORT}
children=1
debug=2
alias=sip.example.org:5070
loadmodule "sl"
loadmodule "pv"
loadmodule "xlog"
loadmodule "kex"
loadmodule "corex"
loadmodule "counters"
loadmodule "cfg_rpc"
modparam("pv", "shvset", "maint=i:1")
modparam("pv", "shvset", "gw=s:sip:gw.example")
modparam("pv", "varset", "start=i:5")
modparam("counters", "script_counter", "hits: requests seen by the script")
modparam("counters", "script_counter", "bytes")
modparam("xlog", "buf_size", 64)

request_route {
    cnt_inc("hits");
    cnt_add("bytes", $ml);
    route($rU);
    sl_send_reply("404", "no test $rU");
}

route[shv] {
    sl_send_reply("200", "shv $shv(maint) $shv(gw) var $var(start)");
    exit;
}

route[isset] {
    $avp(a) = 1;
    if (!pv_isset("$avp(a)")) { sl_send_reply("500", "not set"); exit; }
    pv_unset("$avp(a)");
    if (pv_isset("$avp(a)")) { sl_send_reply("500", "still set"); exit; }
    $var(r) = "";
    if (is_int("$var(start)")) $var(r) = $var(r) + "I";
    $var(s) = "12x";
    if (!is_int("$var(s)")) $var(r) = $var(r) + "i";
    if (typeof("$avp(none)", "null")) $var(r) = $var(r) + "N";
    if (typeof("$rU", "str")) $var(r) = $var(r) + "S";
    if (typeof("$var(start)", "int")) $var(r) = $var(r) + "T";
    if (not_empty("$rU")) $var(r) = $var(r) + "E";
    if (!not_empty("$avp(none)")) $var(r) = $var(r) + "e";
    sl_send_reply("200", "pv $var(r)");
    exit;
}

route[xavp] {
    $xavp(x=>a) = "1";
    $xavp(x[0]=>b) = "2";
    $xavp(x=>a) = "3";
    $xavp(x[0]=>c) = "4";
    $xavp(x[1]=>b) = $null;
    sl_send_reply("200", "xavp $xavp(x=>a) $xavp(x[1]=>a) $xavp(x[1]=>b) $xavp(x[0]=>c)");
    exit;
}

route[flags] {
    setbflag(3);
    setbflag(5);
    resetbflag(5);
    if (!isbflagset(3) || isbflagset(5)) { sl_send_reply("500", "bflags"); exit; }
    append_branch("sip:b1@example.org");
    setbflag(7, 1);
    if (!isbflagset(7, 1) || isbflagset(7)) { sl_send_reply("500", "branch 1"); exit; }
    if (setbflag(1, 9)) { sl_send_reply("500", "no branch 9"); exit; }
    if (issflagset(2)) $var(sf) = "again"; else $var(sf) = "first";
    setsflag(2);
    setxflag(40);
    if (!isxflagset(40) || isxflagset(41)) { sl_send_reply("500", "xflags"); exit; }
    if (is_faked_msg()) { sl_send_reply("500", "faked"); exit; }
    msg_iflag_set("UAC_AUTH");
    if (!msg_iflag_is_set("UAC_AUTH")) { sl_send_reply("500", "iflag"); exit; }
    msg_iflag_reset("UAC_AUTH");
    if (msg_iflag_is_set("UAC_AUTH")) { sl_send_reply("500", "iflag reset"); exit; }
    pv_printf("$var(p)", "u=$rU");
    sl_send_reply("200", "bf $bf sf $var(sf) $var(p)");
    exit;
}

route[send] {
    if (send_data("sip:$hdr(X-To)", "hello-data $ci")) {
        sl_send_reply("200", "sent");
    } else {
        sl_send_reply("500", "not sent");
    }
    exit;
}

route[log] {
    if (!xlog("L_INFO", "xlog-test $rU $avp(nothing) $ci\n")) { sl_send_reply("500", "xlog"); exit; }
    xdbg("xlog-hidden $ci\n");
    xerr("xlog-err $ci\n");
    xlog("xlog-default $ci\n");
    xlogl("L_NOTICE", "xlog-located $ci\n");
    xinfo("xlog-long $ci 0123456789012345678901234567890123456789012345678901234567890123456789\n");
    $var(lvl) = 2;
    xlog("$var(lvl)", "xlog-dyn $ci\n");
    sl_send_reply("200", "logged");
    exit;
}
"#;

fn ask(srv: &TestServer, user: &str, extra: &[&str]) -> (u16, String) {
    let uac = UdpPeer::new();
    let m = req(
        "MESSAGE",
        &format!("sip:{user}@127.0.0.1:{}", srv.port),
        uac.addr(),
        "t1",
        &format!("call-{user}-{}", uac.addr().port()),
        1,
        extra,
        "",
    );
    uac.send(srv.addr(), &m);
    let r = uac.recv(T).unwrap_or_else(|| panic!("{user}: no reply"));
    let text = r.text();
    let first = text.lines().next().unwrap_or("").to_string();
    let reason = first.splitn(3, ' ').nth(2).unwrap_or("").to_string();
    (r.status().unwrap_or(0), reason)
}

fn start() -> TestServer {
    log_capture();
    TestServer::start(CFG, siprouter::in_tree())
}

#[test]
fn shared_variables_from_params_and_rpc() {
    let srv = start();
    assert_eq!(
        ask(&srv, "shv", &[]),
        (200, "shv 1 sip:gw.example var 5".into())
    );
    let got = srv.rpc("pv.shvGet", &[json!("maint")]).expect("shvGet");
    assert_eq!(got, json!({"name": "maint", "type": "int", "value": 1}));
    srv.rpc("pv.shvSet", &[json!("maint"), json!("int"), json!("7")])
        .expect("shvSet");
    srv.rpc(
        "pv.shvSet",
        &[json!("gw"), json!("str"), json!("sip:other")],
    )
    .expect("shvSet");
    assert_eq!(ask(&srv, "shv", &[]), (200, "shv 7 sip:other var 5".into()));
    let all = srv.rpc("pv.shvGet", &[]).expect("shvGet all");
    assert_eq!(
        all,
        json!([{"name": "gw", "type": "str", "value": "sip:other"}, {"name": "maint", "type": "int", "value": 7}])
    );
    assert_eq!(
        srv.rpc("pv.shvGet", &[json!("nope")]).map_err(|e| e.code),
        Err(404)
    );
    assert!(srv
        .rpc("pv.shvSet", &[json!("x"), json!("int"), json!("abc")])
        .is_err());
    assert!(srv
        .rpc("pv.shvSet", &[json!("x"), json!("float"), json!("1")])
        .is_err());
}

#[test]
fn pv_functions_and_xavp() {
    let srv = start();
    assert_eq!(ask(&srv, "isset", &[]), (200, "pv IiNSTEe".into()));
    assert_eq!(ask(&srv, "xavp", &[]), (200, "xavp 3 1 <null> 4".into()));
}

#[test]
fn kex_and_corex_flags() {
    let srv = start();
    assert_eq!(
        ask(&srv, "flags", &[]),
        (200, "bf 8 sf first u=flags".into())
    );
    // Script flags are per worker and kept between messages (one worker).
    assert_eq!(
        ask(&srv, "flags", &[]),
        (200, "bf 8 sf again u=flags".into())
    );
}

#[test]
fn send_data_reaches_the_target() {
    let srv = start();
    let target = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    target.set_read_timeout(Some(T)).ok();
    let to = format!("127.0.0.1:{}", target.local_addr().expect("addr").port());
    let (code, reason) = ask(&srv, "send", &[&format!("X-To: {to}")]);
    assert_eq!((code, reason.as_str()), (200, "sent"));
    let mut buf = [0u8; 1500];
    let (n, _) = target.recv_from(&mut buf).expect("data arrived");
    let got = String::from_utf8_lossy(&buf[..n]);
    assert!(got.starts_with("hello-data call-send-"), "{got}");
}

#[test]
fn counters_in_statistics_and_rpc() {
    let srv = start();
    ask(&srv, "shv", &[]);
    ask(&srv, "shv", &[]);
    assert_eq!(srv.wait_stat("script:hits", 2), Some(2));
    assert!(srv.stat("script:bytes").unwrap_or(0) > 200);
    let lines = srv
        .rpc("stats.get_statistics", &[json!("script:")])
        .expect("stats");
    assert!(
        lines
            .as_array()
            .expect("array")
            .contains(&json!("script:hits = 2")),
        "{lines}"
    );
    assert_eq!(
        srv.rpc("cnt.get", &[json!("script"), json!("hits")]).ok(),
        Some(json!(2))
    );
    assert_eq!(
        srv.rpc("cnt.get", &[json!("core"), json!("rcv_requests")])
            .ok(),
        Some(json!(2))
    );
    assert_eq!(
        srv.rpc("cnt.get", &[json!("script"), json!("nope")])
            .map_err(|e| e.code),
        Err(400)
    );
    let grps = srv.rpc("cnt.grps_list", &[]).expect("groups");
    for g in ["core", "sl", "script"] {
        assert!(
            grps.as_array().expect("array").contains(&json!(g)),
            "{grps}"
        );
    }
    assert_eq!(
        srv.rpc("cnt.var_list", &[json!("script")]).ok(),
        Some(json!(["hits", "bytes"]))
    );
    let all = srv
        .rpc("cnt.grp_get_all", &[json!("script")])
        .expect("grp_get_all");
    assert_eq!(all["hits"], json!(2));
    assert_eq!(
        srv.rpc("cnt.help", &[json!("script"), json!("hits")]).ok(),
        Some(json!("requests seen by the script"))
    );
    srv.rpc("cnt.reset", &[json!("script"), json!("hits")])
        .expect("reset");
    assert_eq!(srv.stat("script:hits"), Some(0));
    assert!(srv.stat("script:bytes").unwrap_or(0) > 0);
}

#[test]
fn undeclared_counter_is_a_config_error() {
    // debug=2 as every server of this file: the log level is global to the
    // test process, and a server starting at the default level while
    // xlog_formats_with_pvs_and_respects_the_level runs would hide its
    // L_INFO lines (a flake seen once).
    let errs = TestServer::try_start(
        "debug=2\nlisten=udp:127.0.0.1:{PORT}\nloadmodule \"counters\"\nrequest_route { cnt_inc(\"nope\"); }\n",
        siprouter::in_tree(),
    )
    .err()
    .expect("refused");
    assert!(errs.join("\n").contains("not declared"), "{errs:?}");
}

#[test]
fn corex_and_cfg_rpcs() {
    let srv = start();
    assert_eq!(srv.rpc("corex.debug", &[]).ok(), Some(json!({"debug": 2})));
    assert_eq!(
        srv.rpc("corex.debug", &[json!(2)]).ok(),
        Some(json!({"old": 2, "new": 2}))
    );
    let socks = srv.rpc("corex.list_sockets", &[]).expect("sockets");
    assert_eq!(socks[0]["PROTO"], json!("udp"));
    assert_eq!(socks[0]["PORT"], json!(srv.port));
    let al = srv.rpc("corex.list_aliases", &[]).expect("aliases");
    assert_eq!(
        al,
        json!([{"PROTO": "*", "ADDR": "sip.example.org", "PORT": 5070}])
    );
    assert_eq!(srv.rpc("cfg.list", &[]).ok(), Some(json!(["core: debug"])));
    srv.rpc(
        "cfg.set_now_string",
        &[json!("core"), json!("debug"), json!("2")],
    )
    .expect("set");
    assert_eq!(
        srv.rpc("cfg.get", &[json!("core"), json!("debug")]).ok(),
        Some(json!(2))
    );
    assert!(srv
        .rpc(
            "cfg.set_now_string",
            &[json!("core"), json!("debug"), json!("loud")]
        )
        .is_err());
    assert!(srv
        .rpc("cfg.help", &[json!("core"), json!("debug")])
        .is_ok());
    srv.rpc(
        "cfg.set_delayed_int",
        &[json!("core"), json!("debug"), json!(2)],
    )
    .expect("delayed");
    let d = srv.rpc("cfg.diff", &[]).expect("diff");
    assert_eq!(d[0]["new value"], json!(2));
    srv.rpc("cfg.commit", &[]).expect("commit");
    assert_eq!(srv.rpc("cfg.diff", &[]).ok(), Some(json!([])));
    assert_eq!(
        srv.rpc("core.memory", &[])
            .ok()
            .and_then(|m| m["resident"].as_u64())
            .map(|r| r > 0),
        Some(true)
    );
}

fn captured() -> &'static Mutex<Vec<(i32, String, String)>> {
    static LINES: OnceLock<Mutex<Vec<(i32, String, String)>>> = OnceLock::new();
    LINES.get_or_init(Default::default)
}

/// Captures the log of this test process (the sink is global and set once).
fn log_capture() {
    sr_sdk::log::set_sink(Box::new(|lvl, target, args| {
        if let Ok(mut l) = captured().lock() {
            l.push((lvl, target.to_string(), args.to_string()));
        }
    }));
}

#[test]
fn xlog_formats_with_pvs_and_respects_the_level() {
    let srv = start();
    let (code, _) = ask(&srv, "log", &[]);
    assert_eq!(code, 200);
    let ci = |s: &str| format!("{s} call-log-");
    let lines: Vec<(i32, String, String)> = captured()
        .lock()
        .map(|l| {
            l.iter()
                .filter(|x| x.2.contains("call-log-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let find = |p: &str| lines.iter().find(|x| x.2.starts_with(&ci(p))).cloned();
    let (lvl, target, msg) = find("xlog-test log <null>").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!((lvl, target.as_str()), (2, "<script>"));
    assert!(!msg.ends_with('\n'));
    assert!(find("xlog-hidden").is_none(), "L_DBG is off at debug=2");
    assert_eq!(find("xlog-err").map(|x| x.0), Some(-1));
    assert_eq!(find("xlog-default").map(|x| x.0), Some(-1));
    assert_eq!(find("xlog-dyn").map(|x| x.0), Some(2));
    let located = lines
        .iter()
        .find(|x| x.2.contains("xlog-located"))
        .expect("xlogl");
    assert_eq!(located.0, 1);
    assert!(located.2.starts_with("[request_route]"), "{located:?}");
    let long = find("xlog-long").expect("xinfo");
    assert_eq!(long.2.len(), 64, "buf_size cuts: {long:?}");
}
