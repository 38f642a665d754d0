//! End-to-end: the dispatcher module with real gateways (UDP peers on
//! 127.0.0.1): the destination Kamailio picks for the same list and
//! Call-IDs, failover through failure_route with `ds_mark_dst` and
//! `ds_next_dst`, probing that takes a silent gateway down and brings it
//! back, `ds_is_from_list`, the RPC methods, and loading from SQLite.

use sr_sdk::serde_json::{json, Value as Json};
use sr_testkit::{answer, req, Reply, TestServer, UdpPeer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);

const HEAD: &str = r#"
listen=udp:127.0.0.1:{PORT}
children=2
loadmodule "sl"
loadmodule "tm"
loadmodule "pv"
loadmodule "xlog"
loadmodule "textops"
loadmodule "dispatcher"
modparam("tm", "fr_timer", 1000)
modparam("tm", "wt_timer", 200)
modparam("dispatcher", "list_file", "{DIR}/dispatcher.list")
modparam("dispatcher", "flags", 2)
"#;

/// A running server with its dispatcher.list in a folder of the test's
/// own (the list must be there before the server starts).
struct Ds {
    srv: TestServer,
    list: PathBuf,
}

impl Drop for Ds {
    fn drop(&mut self) {
        if let Some(d) = self.list.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl std::ops::Deref for Ds {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.srv
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A server with `params` and `routes`, `list` as its dispatcher.list.
fn start(params: &str, routes: &str, list: &str) -> Ds {
    let dir = std::env::temp_dir().join(format!(
        "sr-ds-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dispatcher.list");
    std::fs::write(&path, list).unwrap();
    let cfg = format!("{HEAD}{params}\n{routes}")
        .replace("{DIR}/dispatcher.list", &path.display().to_string());
    Ds {
        srv: TestServer::start(&cfg, siprouter::in_tree()),
        list: path,
    }
}

fn invite(uac: &UdpPeer, call: &str) -> String {
    req(
        "INVITE",
        "sip:bob@example.com",
        uac.addr(),
        &format!("b{call}"),
        call,
        1,
        &["Contact: <sip:alice@127.0.0.1>"],
        "",
    )
}

/// Which of `gws` receives a request other than an ACK within `t` (and
/// the request).
fn who_gets(gws: &[&UdpPeer], t: Duration) -> Option<(usize, Reply)> {
    let deadline = Instant::now() + t;
    while Instant::now() < deadline {
        for (i, g) in gws.iter().enumerate() {
            if let Some(r) = g.recv(Duration::from_millis(20)) {
                if r.msg.msg().method().is_some_and(|m| m.as_str() != "ACK") {
                    return Some((i, r));
                }
            }
        }
    }
    None
}

fn flags_of(list: &Json, uri: &str) -> String {
    for rec in list["RECORDS"].as_array().unwrap() {
        for t in rec["SET"]["TARGETS"].as_array().unwrap() {
            if t["DEST"]["URI"] == uri {
                return t["DEST"]["FLAGS"].as_str().unwrap().to_string();
            }
        }
    }
    panic!("{uri} not in {list}")
}

/// A shared variable's value (`null` when not set).
fn shv(srv: &TestServer, name: &str) -> Json {
    srv.rpc("pv.shvGet", &[json!(name)])
        .map(|v| v["value"].clone())
        .unwrap_or(Json::Null)
}

const RELAY: &str = r#"
request_route {
    if (!ds_select_dst("1", "$hdr(X-Alg)")) { sl_send_reply("503", "No gateway"); exit; }
    t_on_failure("NEXT");
    t_relay();
}
failure_route[NEXT] {
    if (t_is_canceled()) { exit; }
    ds_mark_dst();
    if (ds_next_dst()) { t_on_failure("NEXT"); t_relay(); exit; }
}
"#;

#[test]
fn call_id_hash_picks_what_kamailio_picks() {
    // The list and Call-IDs given to Kamailio 5.6.3 (ds_select_dst("1",
    // "0")): it chose the second line for a84b4c76e66710@pc33.atlanta.com,
    // the first for x1 and x2 and the third (priority 5) for x3.
    let gws = [UdpPeer::new(), UdpPeer::new(), UdpPeer::new()];
    let list = format!(
        "# gateways\n1 sip:{} 0 0 duid=a;weight=50\n1 sip:{} 0 0 duid=b;weight=30\n1 sip:{} 8 5\n",
        gws[0].addr(),
        gws[1].addr(),
        gws[2].addr()
    );
    let srv = start("", RELAY, &list);
    let uac = UdpPeer::new();
    let refs: Vec<&UdpPeer> = gws.iter().collect();
    for (call, want) in [
        ("a84b4c76e66710@pc33.atlanta.com", 1),
        ("x1", 0),
        ("x2", 0),
        ("x3", 2),
    ] {
        uac.send(
            srv.addr(),
            &invite(&uac, call).replace("Contact:", "X-Alg: 0\r\nContact:"),
        );
        let (got, r) = who_gets(&refs, T).unwrap_or_else(|| panic!("{call}: no gateway got it"));
        assert_eq!(got, want, "{call}");
        gws[got].send(r.from, &answer(&r, 200, "OK", "gw", &[]));
        assert!(uac.recv_status(200, T).is_some(), "{call}: 200 relayed");
    }
}

#[test]
fn failover_marks_gateways_down_and_rpc_brings_them_back() {
    let gws = [UdpPeer::new(), UdpPeer::new(), UdpPeer::new()];
    let uris: Vec<String> = gws.iter().map(|g| format!("sip:{}", g.addr())).collect();
    let list = format!(
        "1 {} 0 30\n1 {} 0 20\n1 {} 0 10\n",
        uris[0], uris[1], uris[2]
    );
    let events = r#"
event_route[dispatcher:dst-down] {
    $shv(down) = $shv(down) + 1;
    $shv(code) = $dsv(code);
}
event_route[dispatcher:dst-up] {
    $shv(up) = $shv(up) + 1;
}
"#;
    let srv = start(
        "modparam(\"pv\", \"shvset\", \"down=i:0\")",
        &format!("{RELAY}{events}"),
        &list,
    );
    let uac = UdpPeer::new();
    let refs: Vec<&UdpPeer> = gws.iter().collect();
    uac.send(
        srv.addr(),
        &invite(&uac, "f1").replace("Contact:", "X-Alg: 8\r\nContact:"),
    );
    // Priority order: the first gateway, which is busy.
    let (g, r) = who_gets(&refs, T).expect("first gateway");
    assert_eq!(g, 0);
    gws[0].send(r.from, &answer(&r, 503, "Overloaded", "g0", &[]));
    // The second fails too.
    let (g, r) = who_gets(&refs, T).expect("second gateway");
    assert_eq!((g, r.msg.msg().method().unwrap().as_str()), (1, "INVITE"));
    gws[1].send(r.from, &answer(&r, 500, "Error", "g1", &[]));
    let (g, r) = who_gets(&refs, T).expect("third gateway");
    assert_eq!((g, r.msg.msg().method().unwrap().as_str()), (2, "INVITE"));
    gws[2].send(r.from, &answer(&r, 200, "OK", "g2", &[]));
    let ok = uac.recv_status(200, T).expect("200 from the third gateway");
    assert!(ok.header("To").unwrap().contains("tag=g2"));
    let l = srv.rpc("dispatcher.list", &[]).unwrap();
    assert_eq!(flags_of(&l, &uris[0]), "IX", "{l}");
    assert_eq!(flags_of(&l, &uris[1]), "IX");
    assert_eq!(flags_of(&l, &uris[2]), "AX");
    assert_eq!(shv(&srv, "down"), json!(2), "two dst-down events");
    assert_eq!(shv(&srv, "code"), json!(820), "marked from a request");
    // The next call goes straight to the one left.
    uac.send(
        srv.addr(),
        &invite(&uac, "f2").replace("Contact:", "X-Alg: 8\r\nContact:"),
    );
    let (g, r) = who_gets(&refs, T).expect("a gateway");
    assert_eq!(g, 2, "the inactive ones are skipped");
    gws[2].send(r.from, &answer(&r, 200, "OK", "g2", &[]));
    assert!(uac.recv_status(200, T).is_some());
    // The operator sets the first active again.
    srv.rpc(
        "dispatcher.set_state",
        &[json!("a"), json!(1), json!(uris[0])],
    )
    .unwrap();
    let l = srv.rpc("dispatcher.list", &[]).unwrap();
    assert_eq!(flags_of(&l, &uris[0]), "AX");
    uac.send(
        srv.addr(),
        &invite(&uac, "f3").replace("Contact:", "X-Alg: 8\r\nContact:"),
    );
    let (g, r) = who_gets(&refs, T).expect("a gateway");
    assert_eq!(g, 0);
    gws[0].send(r.from, &answer(&r, 200, "OK", "g0", &[]));
    assert!(uac.recv_status(200, T).is_some());
    // Nothing left: every gateway disabled.
    srv.rpc(
        "dispatcher.set_state",
        &[json!("d"), json!(1), json!("all")],
    )
    .unwrap();
    uac.send(
        srv.addr(),
        &invite(&uac, "f4").replace("Contact:", "X-Alg: 8\r\nContact:"),
    );
    let r = uac.recv_final(T).expect("a reply");
    assert_eq!(r.status(), Some(503));
    let e = srv
        .rpc(
            "dispatcher.set_state",
            &[json!("x"), json!(1), json!("all")],
        )
        .unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "Unknown State Value"));
    let e = srv
        .rpc(
            "dispatcher.set_state",
            &[json!("a"), json!(9), json!("all")],
        )
        .unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "State Update Failed"));
}

/// Waits for an INVITE at `gw`, answering the pings that come first.
fn invite_answering_pings(gw: &UdpPeer) -> Option<Reply> {
    gw.recv_matching(T, |r| match r.msg.msg().method().map(|m| m.as_str()) {
        Some("OPTIONS") => {
            gw.send(r.from, &answer(r, 200, "Pong", "p", &[]));
            false
        }
        Some("INVITE") => true,
        _ => false,
    })
}

/// Answers the OPTIONS pings that reach `gw` with `code` until `until`.
fn answer_pings(gw: &UdpPeer, code: u16, until: Instant) -> usize {
    let mut n = 0;
    while Instant::now() < until {
        if let Some(r) = gw.recv(Duration::from_millis(50)) {
            if r.msg
                .msg()
                .method()
                .is_some_and(|m| m.as_str() == "OPTIONS")
            {
                gw.send(r.from, &answer(&r, code, "Pong", "p", &[]));
                n += 1;
            }
        }
    }
    n
}

#[test]
fn probing_takes_a_silent_gateway_down_and_back_up() {
    let alive = UdpPeer::new();
    let silent = UdpPeer::new();
    let (ua, us) = (
        format!("sip:{}", alive.addr()),
        format!("sip:{}", silent.addr()),
    );
    let list = format!("1 {ua}\n1 {us}\n");
    let params = r#"
modparam("dispatcher", "ds_ping_interval", 1)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_ping_from", "sip:prober@siprouter.test")
modparam("dispatcher", "ds_ping_reply_codes", "code=404")
"#;
    let events = r#"
event_route[dispatcher:dst-down] {
    $shv(down) = $ru;
    $shv(code) = $dsv(code);
}
event_route[dispatcher:dst-up] {
    $shv(up) = $ru;
    $shv(upflags) = $dsv(flags);
}
"#;
    let srv = start(params, &format!("{RELAY}{events}"), &list);
    // The first ping: what it looks like.
    let p = alive.recv_method("OPTIONS", T).expect("a ping");
    let m = p.msg.msg();
    assert_eq!(m.request_uri().unwrap().raw, ua);
    assert!(p
        .header("From")
        .unwrap()
        .starts_with("<sip:prober@siprouter.test>;tag="));
    assert_eq!(p.header("To").unwrap(), format!("<{ua}>"));
    assert_eq!(p.header("Max-Forwards").as_deref(), Some("70"));
    alive.send(p.from, &answer(&p, 404, "Not Here", "p", &[]));
    // The silent one is retransmitted to, then times out (fr_timer 1 s).
    let first = silent
        .recv_method("OPTIONS", T)
        .expect("ping to the silent one");
    let again = silent.recv_method("OPTIONS", T).expect("retransmission");
    assert_eq!(first.header("Via"), again.header("Via"), "same transaction");
    // Keep answering for the alive one (404 counts: ds_ping_reply_codes).
    answer_pings(&alive, 404, Instant::now() + Duration::from_millis(2500));
    let l = srv.rpc("dispatcher.list", &[]).unwrap();
    assert_eq!(flags_of(&l, &ua), "AP", "{l}");
    assert_eq!(flags_of(&l, &us), "IP", "{l}");
    assert_eq!(shv(&srv, "down"), json!(us));
    assert_eq!(shv(&srv, "code"), json!(408));
    // Calls now go to the alive one only.
    let uac = UdpPeer::new();
    for k in 0..4 {
        uac.send(
            srv.addr(),
            &invite(&uac, &format!("p{k}")).replace("Contact:", "X-Alg: 4\r\nContact:"),
        );
        // Pings keep coming meanwhile: answered, or the alive one would
        // go down too.
        let r = invite_answering_pings(&alive).expect("to the alive gateway");
        alive.send(r.from, &answer(&r, 200, "OK", "a", &[]));
        assert!(uac.recv_status(200, T).is_some());
    }
    // The silent one answers again: up.
    let deadline = Instant::now() + Duration::from_secs(4);
    let (mut a, mut b) = (0, 0);
    while Instant::now() < deadline && shv(&srv, "up") != json!(us) {
        a += answer_pings(&alive, 200, Instant::now() + Duration::from_millis(100));
        b += answer_pings(&silent, 200, Instant::now() + Duration::from_millis(100));
    }
    assert!(
        b > 0,
        "the silent one was pinged and answered ({a} answers from the other)"
    );
    let l = srv.rpc("dispatcher.list", &[]).unwrap();
    assert_eq!(flags_of(&l, &us), "AP", "{l}");
    assert_eq!(shv(&srv, "upflags"), json!(1), "a real reply");
    // Pinging off: no more pings.
    let v = srv.rpc("dispatcher.ping_active", &[json!(0)]).unwrap();
    assert_eq!(v, json!({"NewPingState": 0, "OldPingState": 1}));
    answer_pings(&alive, 200, Instant::now() + Duration::from_millis(300));
    assert_eq!(
        answer_pings(&alive, 200, Instant::now() + Duration::from_millis(1500)),
        0
    );
}

#[test]
fn from_list_domain_round_robin_and_rpc_changes() {
    let gw = UdpPeer::new();
    let other = UdpPeer::new();
    let gw2 = UdpPeer::new();
    let list = format!(
        "1 sip:{} 0 0 duid=gw1;maxload=10\n2 sip:{};transport=udp\n",
        gw.addr(),
        gw2.addr()
    );
    let params = r#"
modparam("dispatcher", "setid_pvname", "$var(setid)")
modparam("dispatcher", "attrs_pvname", "$var(attrs)")
modparam("dispatcher", "reload_delta", 0)
"#;
    let routes = r#"
request_route {
    if (method == "OPTIONS") {
        if (ds_is_from_list("-1", "0")) {
            sl_send_reply("200", "Known by protocol");
        } else if (ds_is_from_list()) {
            append_to_reply("X-Set: $var(setid)\r\nX-Attrs: $var(attrs)\r\n");
            sl_send_reply("200", "Known");
        } else {
            sl_send_reply("403", "Unknown");
        }
        exit;
    }
    if (!ds_select_domain("$hdr(X-Set)", "4")) { sl_send_reply("503", "No gateway"); exit; }
    append_hf("X-Cnt: $xavp(_dsctx_=>cnt)\r\n");
    t_relay();
}
"#;
    let srv = start(params, routes, &list);
    let opt = |from: &UdpPeer, call: &str| {
        from.send(
            srv.addr(),
            &req(
                "OPTIONS",
                "sip:ds@example.com",
                from.addr(),
                call,
                call,
                1,
                &[],
                "",
            ),
        );
        from.recv_final(T).expect("reply")
    };
    let r = opt(&gw, "o1");
    assert_eq!(r.msg.msg().reason(), Some("Known"));
    assert_eq!(r.header("X-Set").as_deref(), Some("1"));
    assert_eq!(r.header("X-Attrs").as_deref(), Some("duid=gw1;maxload=10"));
    // Protocol matching (mode 0) takes only a destination whose URI names
    // its transport.
    assert_eq!(
        opt(&gw2, "o2").msg.msg().reason(),
        Some("Known by protocol")
    );
    assert_eq!(opt(&other, "o3").status(), Some(403));
    // ds_select_domain: the Request-URI's host part is the gateway's.
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &invite(&uac, "d1").replace("Contact:", "X-Set: 1\r\nContact:"),
    );
    let r = gw.recv_method("INVITE", T).expect("INVITE at the gateway");
    assert_eq!(
        r.msg.msg().request_uri().unwrap().raw,
        format!("sip:bob@{}", gw.addr())
    );
    assert_eq!(r.header("X-Cnt").as_deref(), Some("1"));
    gw.send(r.from, &answer(&r, 200, "OK", "g", &[]));
    assert!(uac.recv_status(200, T).is_some());
    // RPC: add a gateway to set 1; round robin then uses both.
    let extra = UdpPeer::new();
    srv.rpc(
        "dispatcher.add",
        &[json!(1), json!(extra.addr().to_string())],
    )
    .unwrap();
    let l = srv.rpc("dispatcher.list", &[]).unwrap();
    assert_eq!(flags_of(&l, &format!("sip:{}", extra.addr())), "AX");
    let mut seen = [0, 0];
    for k in 0..4 {
        uac.send(
            srv.addr(),
            &invite(&uac, &format!("rr{k}")).replace("Contact:", "X-Set: 1\r\nContact:"),
        );
        let (g, r) = who_gets(&[&gw, &extra], T).expect("a gateway");
        seen[g] += 1;
        [&gw, &extra][g].send(r.from, &answer(&r, 200, "OK", "g", &[]));
        assert!(uac.recv_status(200, T).is_some());
    }
    assert_eq!(seen, [2, 2], "round robin");
    srv.rpc(
        "dispatcher.remove",
        &[json!(1), json!(format!("sip:{}", extra.addr()))],
    )
    .unwrap();
    // Nothing to remove is no fault, as in Kamailio.
    let ok = srv
        .rpc("dispatcher.remove", &[json!(1), json!("sip:nowhere")])
        .unwrap();
    assert_eq!(ok, json!("Ok. Dispatcher destination removed."));
    let l = srv.rpc("dispatcher.list", &[]).unwrap();
    assert_eq!(l["NRSETS"], 2);
    // Kamailio's order: its tree of sets 1 and 2 walks 2 first.
    assert_eq!(l["RECORDS"][0]["SET"]["ID"], 2);
    let set1 = &l["RECORDS"][1]["SET"];
    assert_eq!(set1["ID"], 1);
    assert_eq!(set1["TARGETS"].as_array().unwrap().len(), 1);
    assert_eq!(set1["TARGETS"][0]["DEST"]["ATTRS"]["DUID"], "gw1");
    // A set that does not exist.
    uac.send(
        srv.addr(),
        &invite(&uac, "d9").replace("Contact:", "X-Set: 7\r\nContact:"),
    );
    assert_eq!(uac.recv_final(T).unwrap().status(), Some(503));
    let h = srv
        .rpc(
            "dispatcher.hash",
            &[json!(0), json!("a84b4c76e66710@pc33.atlanta.com")],
        )
        .unwrap();
    assert_eq!(h["hashid"], -2_119_949_202_i64);
}

#[test]
fn reload_reads_the_file_again() {
    let (a, b) = (UdpPeer::new(), UdpPeer::new());
    let routes = r#"
request_route {
    if (!ds_select_dst("1", "0")) { sl_send_reply("503", "No gateway"); exit; }
    t_relay();
}
"#;
    let ds = start("", routes, &format!("1 sip:{}\n", a.addr()));
    // The first reload is taken whenever it comes (the load at start does
    // not count), as in Kamailio.
    std::fs::write(
        &ds.list,
        format!("# moved\n1 sip:{} 0 0 duid=b\n", b.addr()),
    )
    .unwrap();
    ds.rpc("dispatcher.reload", &[]).unwrap();
    let l = ds.rpc("dispatcher.list", &[]).unwrap();
    assert_eq!(
        l["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]["URI"],
        format!("sip:{}", b.addr())
    );
    // Within reload_delta (5 s) of it, the next is refused.
    let e = ds.rpc("dispatcher.reload", &[]).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (500, "Ongoing reload"));
    let e = ds
        .rpc("dispatcher.add", &[json!(1), json!("sip:192.0.2.1")])
        .unwrap_err();
    assert_eq!(e.message, "Ongoing reload");
    let uac = UdpPeer::new();
    uac.send(ds.addr(), &invite(&uac, "r1"));
    let r = b.recv_method("INVITE", T).expect("to the new gateway");
    b.send(r.from, &answer(&r, 200, "OK", "g", &[]));
    assert!(uac.recv_status(200, T).is_some());
    assert!(a.recv(Duration::from_millis(100)).is_none());
}

#[test]
fn bad_list_files_are_reported() {
    let cfg = format!("{HEAD}\nrequest_route {{ drop; }}").replace(
        "{DIR}/dispatcher.list",
        "/nonexistent/siprouter/dispatcher.list",
    );
    let e = TestServer::try_start(&cfg, siprouter::in_tree())
        .err()
        .expect("refused");
    let all = e.join("\n");
    assert!(
        all.contains("/nonexistent/siprouter/dispatcher.list"),
        "{all}"
    );
    assert!(all.contains("dispatcher"), "{all}");
}

#[test]
fn sets_load_from_sqlite() {
    use sr_sdk::db::{DbConn, DbValue};
    let db = sr_testkit::fresh_db("dispatcher");
    let url = format!("sqlite://{}", db.display());
    let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
    let gw = UdpPeer::new();
    for (set, dest, prio) in [
        (3, format!("sip:{}", gw.addr()), 1),
        (3, "sip:192.0.2.7:5060".into(), 0),
    ] {
        c.insert(
            "dispatcher",
            &[
                ("setid", DbValue::Int(set)),
                ("destination", DbValue::str(dest)),
                ("priority", DbValue::Int(prio)),
                ("attrs", DbValue::str("weight=60")),
            ],
        )
        .unwrap();
    }
    drop(c);
    let head = HEAD.replace(
        "loadmodule \"dispatcher\"\n",
        &format!("loadmodule \"db_sqlite\"\nloadmodule \"dispatcher\"\nmodparam(\"dispatcher\", \"db_url\", \"{url}\")\n"),
    );
    let cfg = format!(
        "{head}{}",
        r#"
request_route {
    if (!ds_select_dst("3", "8")) { sl_send_reply("503", "No gateway"); exit; }
    t_relay();
}
"#
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let l = srv.rpc("dispatcher.list", &[]).unwrap();
    assert_eq!(l["RECORDS"][0]["SET"]["ID"], 3);
    assert_eq!(
        l["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]["URI"],
        format!("sip:{}", gw.addr())
    );
    assert_eq!(
        l["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]["ATTRS"]["WEIGHT"],
        60
    );
    let uac = UdpPeer::new();
    uac.send(srv.addr(), &invite(&uac, "db1"));
    let r = gw
        .recv_method("INVITE", T)
        .expect("to the priority-1 gateway");
    gw.send(r.from, &answer(&r, 200, "OK", "g", &[]));
    assert!(uac.recv_status(200, T).is_some());
}

#[test]
fn parallel_forking_and_marking_from_a_reply_route() {
    let gws = [UdpPeer::new(), UdpPeer::new(), UdpPeer::new()];
    let uris: Vec<String> = gws.iter().map(|g| format!("sip:{}", g.addr())).collect();
    let list = format!("1 {} 0 10\n1 {} 0 5\n1 {} 0 0\n", uris[0], uris[1], uris[2]);
    let routes = r#"
request_route {
    if ($hdr(X-Par) != $null) {
        ds_select_dst("1", "12");
        t_relay();
        exit;
    }
    ds_select_dst("1", "8");
    t_on_reply("R");
    t_on_failure("F");
    t_relay();
}
onreply_route[R] {
    if (t_check_status("503")) { ds_mark_dst("ip"); }
}
failure_route[F] {
    if (ds_next_dst()) { t_relay(); }
}
event_route[dispatcher:dst-down] {
    $shv(code) = $dsv(code);
    $shv(reason) = $dsv(reason);
    $shv(flags) = $dsv(flags);
}
"#;
    let srv = start("", routes, &list);
    let uac = UdpPeer::new();
    let refs: Vec<&UdpPeer> = gws.iter().collect();
    // Parallel: the first to $du, a branch to each of the others.
    uac.send(
        srv.addr(),
        &invite(&uac, "par1").replace("Contact:", "X-Par: 1\r\nContact:"),
    );
    let mut got = Vec::new();
    while let Some((g, r)) = who_gets(&refs, Duration::from_millis(700)) {
        assert_eq!(
            r.msg.msg().request_uri().unwrap().raw,
            "sip:bob@example.com"
        );
        got.push(g);
        gws[g].send(r.from, &answer(&r, 486, "Busy", "b", &[]));
    }
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 2], "one INVITE to each gateway");
    assert_eq!(uac.recv_final(T).unwrap().status(), Some(486));
    // A 503 marks the gateway from onreply_route (the transaction's
    // failover records are there), and failure_route goes on.
    uac.send(srv.addr(), &invite(&uac, "m1"));
    let (g, r) = who_gets(&refs, T).expect("first gateway");
    assert_eq!(g, 0);
    gws[0].send(r.from, &answer(&r, 503, "Overloaded", "g0", &[]));
    let (g, r) = who_gets(&refs, T).expect("next gateway");
    assert_eq!(g, 1);
    gws[1].send(r.from, &answer(&r, 200, "OK", "g1", &[]));
    assert!(uac.recv_status(200, T).is_some());
    let l = srv.rpc("dispatcher.list", &[]).unwrap();
    assert_eq!(flags_of(&l, &uris[0]), "IP", "{l}");
    assert_eq!(shv(&srv, "code"), json!(503));
    assert_eq!(shv(&srv, "reason"), json!("Overloaded"));
    assert_eq!(shv(&srv, "flags"), json!(1), "marked from a reply");
    // Parallel again: the inactive one is still forked to (Kamailio adds
    // every later destination), the first usable one takes $du.
    uac.send(
        srv.addr(),
        &invite(&uac, "par2").replace("Contact:", "X-Par: 1\r\nContact:"),
    );
    let mut got = Vec::new();
    while let Some((g, r)) = who_gets(&refs, Duration::from_millis(700)) {
        got.push(g);
        gws[g].send(r.from, &answer(&r, 486, "Busy", "b", &[]));
    }
    got.sort_unstable();
    assert_eq!(got, vec![1, 2], "from the chosen one on");
}

#[test]
fn a_socket_attribute_must_be_the_servers() {
    let (a, b) = (UdpPeer::new(), UdpPeer::new());
    let routes = r#"
request_route {
    if (!ds_select_dst("1", "8")) { sl_send_reply("503", "No gateway"); exit; }
    t_relay();
}
"#;
    // The server's own socket is taken; another address's is not (the
    // line is skipped, as Kamailio skips it).
    let list = format!(
        "1 sip:{} 0 9 socket=udp:192.0.2.1:5060\n1 sip:{} 0 1 socket=udp:127.0.0.1:{{PORT}}\n",
        a.addr(),
        b.addr()
    );
    let dir = std::env::temp_dir().join(format!("sr-ds-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dispatcher.list");
    let port = sr_testkit::free_port();
    std::fs::write(&path, list.replace("{PORT}", &port.to_string())).unwrap();
    let cfg = format!("{HEAD}\n{routes}")
        .replace("{DIR}/dispatcher.list", &path.display().to_string())
        .replace(
            "listen=udp:127.0.0.1:{PORT}",
            &format!("listen=udp:127.0.0.1:{port}"),
        );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let l = srv.rpc("dispatcher.list", &[]).unwrap();
    let targets = l["RECORDS"][0]["SET"]["TARGETS"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(targets.len(), 1, "{l}");
    assert_eq!(targets[0]["DEST"]["URI"], format!("sip:{}", b.addr()));
    // The server listens where the list says (not on the testkit's port).
    let to: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let uac = UdpPeer::new();
    uac.send(to, &invite(&uac, "sock1"));
    let r = b
        .recv_method("INVITE", T)
        .expect("sent from the socket named");
    assert_eq!(r.from.port(), port, "from the forced socket");
    b.send(r.from, &answer(&r, 200, "OK", "b", &[]));
    assert!(uac.recv_status(200, T).is_some());
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}
