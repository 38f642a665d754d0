//! End-to-end: rtimer's routes run on their timers — mode 0 on the core's
//! timer thread, mode 2 on two threads of its own (`$rtimer_worker`), a
//! microsecond interval — with Kamailio's faked OPTIONS that keeps what a
//! route set; and bad parameters refused.

use sr_testkit::{probe_until, TestServer, UdpPeer};

const CFG: &str = r#"
listen=udp:127.0.0.1:{PORT}
children=1
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "rtimer"
modparam("pv", "shvset", "seen=s:")
modparam("rtimer", "timer", "name=ta;interval=1;mode=0;")
modparam("rtimer", "exec", "timer=ta;route=TICK")
modparam("rtimer", "timer", "name=tb;interval=1;mode=2;")
modparam("rtimer", "exec", "timer=tb;route=WORKER")
modparam("rtimer", "timer", "name=tc;interval=200000u")
modparam("rtimer", "exec", "timer=tc;route=FAST")
request_route {
    append_to_reply("X-T: $shv(ticks) $shv(seen) $shv(w0) $shv(w1) $shv(fast)\r\n");
    sl_send_reply("200", "OK");
}
route[TICK] {
    $shv(ticks) = $shv(ticks) + 1;
    $shv(seen) = $rm + "|" + $ru + "|" + $ci;
    $ru = "sip:kept@x.test";
}
route[WORKER] {
    if ($rtimer_worker == 0) { $shv(w0) = 1; }
    if ($rtimer_worker == 1) { $shv(w1) = 1; }
}
route[FAST] {
    $shv(fast) = $shv(fast) + 1;
}
"#;

#[test]
fn routes_run_on_their_timers() {
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let uac = UdpPeer::new();
    let counts = |r: &sr_testkit::Reply| {
        let t = r.header("X-T").unwrap_or_default();
        let f: Vec<&str> = t.split(' ').collect();
        let n = |i: usize| f.get(i).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
        n(0) >= 2 && n(4) >= 5 && f.get(2) == Some(&"1") && f.get(3) == Some(&"1")
    };
    let last = probe_until(&uac, srv.addr(), "X-T", 60, counts)
        .and_then(|r| r.header("X-T"))
        .unwrap_or_default();
    let f: Vec<&str> = last.split(' ').collect();
    assert!(f[0].parse::<i64>().unwrap() >= 2, "mode 0 ran: {last}");
    assert_eq!(
        f[1], "OPTIONS|sip:kept@x.test|123",
        "Kamailio's faked message, kept from the tick before: {last}"
    );
    assert_eq!((f[2], f[3]), ("1", "1"), "both mode 2 workers ran: {last}");
    assert!(
        f[4].parse::<i64>().unwrap() >= 5,
        "the 200 ms timer: {last}"
    );
}

#[test]
fn bad_parameters_are_refused() {
    for (bad, want) in [
        ("name=tx;mode=abc", "invalid mode: abc"),
        ("interval=3", "invalid timer name"),
        ("name=ta;interval=1", "duplicate timer"),
    ] {
        let cfg = CFG.replace(
            "modparam(\"rtimer\", \"exec\", \"timer=ta;route=TICK\")",
            &format!("modparam(\"rtimer\", \"timer\", \"{bad}\")"),
        );
        let errs = TestServer::try_start(&cfg, siprouter::in_tree())
            .err()
            .expect(bad);
        assert!(errs.iter().any(|e| e.contains(want)), "{bad}: {errs:?}");
    }
    let cfg = CFG.replace("timer=tc;route=FAST", "timer=zz;route=FAST");
    let errs = TestServer::try_start(&cfg, siprouter::in_tree())
        .err()
        .expect("exec");
    assert!(
        errs.iter()
            .any(|e| e.contains("timer not found - name: zz")),
        "{errs:?}"
    );
}
