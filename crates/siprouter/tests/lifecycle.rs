//! Module lifecycle as Kamailio runs it, observed through test modules
//! defined here with the SDK: load order, modparam applied as read,
//! mod_init in load order, child_init for every rank (in the right
//! threads), destroy in reverse order, and a failing mod_init stopping
//! startup with the module named.

use sr_sdk::prelude::*;
use sr_testkit::{req, TestServer, UdpPeer};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn log(e: String) {
    EVENTS.lock().unwrap().push(e);
}

fn recorder(name: &'static str) -> ModuleDef {
    let greeting = Arc::new(std::sync::RwLock::new(String::from("unset")));
    let g2 = greeting.clone();
    let limit = Arc::new(AtomicI64::new(0));
    let l2 = limit.clone();
    ModuleDef::new(name)
        .param("greeting", ParamKind::Str, {
            let set = params::string(&greeting);
            move |v| {
                log(format!("{name}:greeting:{v:?}"));
                set(v)
            }
        })
        .param("limit", ParamKind::Int, move |v| {
            log(format!("{name}:param:{v:?}"));
            params::int(&l2)(v)
        })
        .cmd("greet", 0, RouteType::REQUEST, None, move |ctx, _| {
            let g = g2.read().unwrap().clone();
            let core = ctx.core;
            match core.send_reply(ctx.msg, 200, &g) {
                Ok(()) => 1,
                Err(_) => -1,
            }
        })
        .on_init(move |_| {
            log(format!(
                "{name}:mod_init:limit={}",
                limit.load(Ordering::Relaxed)
            ));
            Ok(())
        })
        .on_child_init(move |_, rank| {
            let t = std::thread::current().name().unwrap_or("main").to_string();
            log(format!("{name}:child_init:{rank}:{t}"));
            Ok(())
        })
        .on_destroy(move || log(format!("{name}:destroy")))
}

fn first() -> ModuleDef {
    recorder("first")
}

fn second() -> ModuleDef {
    recorder("second")
}

fn failing() -> ModuleDef {
    ModuleDef::new("failing").on_init(|_| Err("cannot open the widget".into()))
}

fn modules() -> Vec<sr_core::InTree> {
    let mut m = siprouter::in_tree();
    m.push(("first", first));
    m.push(("second", second));
    m.push(("failing", failing));
    m
}

#[test]
fn lifecycle_order_ranks_and_params() {
    EVENTS.lock().unwrap().clear();
    let srv = TestServer::start(
        r#"
listen=udp:127.0.0.1:{PORT}
listen=tcp:127.0.0.1:{PORT}
children=2
tcp_children=1
loadmodule "sl"
loadmodule "/some/other/path/first.so"
modparam("first", "limit", 7)
modparam("FIRST|second", "greeting", "hello there")
loadmodule "second"
modparam("second", "limit", 9)
request_route { greet(); }
"#,
        modules(),
    );
    // Both modules export greet(): the one loaded last wins, as in
    // Kamailio. Its greeting is unset: the modparam naming both modules
    // was applied when only "first" was loaded.
    let uac = UdpPeer::new();
    uac.send(
        srv.addr(),
        &req("OPTIONS", "sip:x@y", uac.addr(), "lc", "lc", 1, &[], ""),
    );
    let r = uac.recv(Duration::from_secs(3)).expect("reply");
    assert_eq!(r.msg.msg().reason(), Some("unset"));
    drop(srv);
    let ev = EVENTS.lock().unwrap().clone();
    let pos = |s: &str| {
        ev.iter()
            .position(|e| e == s)
            .unwrap_or_else(|| panic!("missing {s} in {ev:#?}"))
    };
    assert!(
        ev.contains(&"first:greeting:Str(\"hello there\")".to_string()),
        "{ev:#?}"
    );
    assert!(
        !ev.iter().any(|e| e.starts_with("second:greeting")),
        "{ev:#?}"
    );
    // modparam applied as read: first's limit before second was loaded.
    assert!(pos("first:param:Int(7)") < pos("second:param:Int(9)"));
    // mod_init in load order, after all modparams.
    assert!(pos("first:mod_init:limit=7") < pos("second:mod_init:limit=9"));
    assert!(pos("second:param:Int(9)") < pos("first:mod_init:limit=7"));
    // child_init for every rank, in its own thread.
    for m in ["first", "second"] {
        let ranks: Vec<&String> = ev
            .iter()
            .filter(|e| e.starts_with(&format!("{m}:child_init:")))
            .collect();
        let has = |r: &str| {
            ranks
                .iter()
                .any(|e| e.starts_with(&format!("{m}:child_init:{r}:")))
        };
        assert!(has("-127"), "PROC_INIT for {m}: {ranks:?}");
        assert!(has("0"), "PROC_MAIN for {m}: {ranks:?}");
        assert!(has("1") && has("2"), "UDP workers for {m}: {ranks:?}");
        assert!(has("3"), "TCP worker for {m}: {ranks:?}");
        assert!(has("-1"), "timer for {m}: {ranks:?}");
        assert!(has("-4"), "TCP main for {m}: {ranks:?}");
        assert!(
            ranks
                .iter()
                .any(|e| e.as_str() == format!("{m}:child_init:-1:timer")),
            "{ranks:?}"
        );
        assert!(
            ranks
                .iter()
                .any(|e| e.as_str() == format!("{m}:child_init:1:udp-1")),
            "{ranks:?}"
        );
        // child_init runs for a rank after mod_init, in load order per rank.
        assert!(
            pos(&format!(
                "{m}:mod_init:limit={}",
                if m == "first" { 7 } else { 9 }
            )) < pos(ranks[0])
        );
    }
    assert!(pos("first:child_init:-1:timer") < pos("second:child_init:-1:timer"));
    // destroy in reverse load order.
    assert!(pos("second:destroy") < pos("first:destroy"));
}

#[test]
fn failing_mod_init_stops_startup_naming_the_module() {
    let e = TestServer::try_start(
        "listen=udp:127.0.0.1:{PORT}\nloadmodule \"failing\"\nrequest_route { exit; }\n",
        modules(),
    )
    .err()
    .expect("startup must fail");
    assert_eq!(
        e,
        vec!["module failing: mod_init failed: cannot open the widget".to_string()]
    );
}

#[test]
fn modparam_type_mismatch_is_an_error() {
    let e = TestServer::try_start(
        "listen=udp:127.0.0.1:{PORT}\nloadmodule \"first\"\nmodparam(\"first\", \"limit\", \"ten\")\nmodparam(\"first\", \"greeting\", 5)\nrequest_route { exit; }\n",
        modules(),
    )
    .err()
    .expect("type errors");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[0].ends_with("test.cfg:3:28: parameter 'limit' of module 'first' is an integer, got the string \"ten\""), "{e:#?}");
    assert!(
        e[1].ends_with(
            "test.cfg:4:31: parameter 'greeting' of module 'first' is a string, got the integer 5"
        ),
        "{e:#?}"
    );
}

/// A timer with a zero interval runs on the timer thread, but at most about
/// once a millisecond: it does not spin the thread.
#[test]
fn a_zero_interval_timer_runs_about_once_a_millisecond() {
    let srv = TestServer::start(
        "listen=udp:127.0.0.1:{PORT}\nchildren=1\nrequest_route { drop; }\n",
        siprouter::in_tree(),
    );
    let runs = Arc::new(AtomicI64::new(0));
    let r = runs.clone();
    srv.rt.add_timer(
        "zero",
        Duration::ZERO,
        Arc::new(move || {
            r.fetch_add(1, Ordering::Relaxed);
        }),
    );
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let n = runs.load(Ordering::Relaxed);
    let ms = t0.elapsed().as_millis() as i64;
    assert!(n >= 1, "the timer never ran");
    assert!(n <= ms + 50, "{n} runs in {ms} ms: the timer thread spins");
}
