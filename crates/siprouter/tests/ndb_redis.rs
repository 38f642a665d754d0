//! ndb_redis end to end against real Redis servers: what the Kamailio
//! differential test (`kamailio_parity_ndb_redis.rs`) cannot compare: a
//! server down at the start and up later, `allowed_timeouts` with
//! `disable_time`, `cmd_timeout` (the connection dropped, not read out
//! of step), `flush_on_reconnect`, Redis Cluster redirections
//! (`cluster`, `allow_dynamic_nodes`), Sentinel (master and replica), and
//! the configuration errors.

use sr_testkit::redis::{self, Redis};
use sr_testkit::{TestServer, UdpPeer};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

fn cfg(servers: &[String], extra: &str) -> String {
    let mut s = String::from(
        "listen=udp:127.0.0.1:{PORT}\nchildren=1\nloadmodule \"sl\"\nloadmodule \"pv\"\nloadmodule \"textops\"\nloadmodule \"ndb_redis\"\n",
    );
    for v in servers {
        s.push_str(&format!("modparam(\"ndb_redis\", \"server\", \"{v}\")\n"));
    }
    s.push_str(extra);
    s.push_str(
        r#"
request_route {
    $var(rc) = redis_cmd("$hdr(X-S)", "$hdr(X-C)", "r");
    append_to_reply("X-R: rc=$var(rc) type=$redis(r=>type) value=$redis(r=>value) info=$redis(r=>info)\r\n");
    sl_send_reply("200", "ok");
}
"#,
    );
    s
}

/// Sends one command through siprouter: its `X-R` answer.
fn ask(uac: &UdpPeer, srv: &TestServer, n: u32, server: &str, cmd: &str) -> String {
    uac.send(
        srv.addr(),
        &format!("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKrd{n}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: rd-{n}\r\nCSeq: 1 OPTIONS\r\nX-S: {server}\r\nX-C: {cmd}\r\nContent-Length: 0\r\n\r\n", uac.addr()),
    );
    uac.recv_final(T)
        .expect("an answer")
        .header("X-R")
        .unwrap_or_default()
}

fn tcp(name: &str, r: &Redis) -> String {
    format!("name={name};addr=127.0.0.1;port={}", r.port)
}

#[test]
fn a_server_down_at_the_start_is_used_once_up_and_disabled_after_failures() {
    if !redis::available() {
        return;
    }
    let port = sr_testkit::free_port();
    let server = format!("name=late;addr=127.0.0.1;port={port}");
    // Without init_without_redis, a server that cannot be reached stops
    // the start.
    let e = TestServer::try_start(
        &cfg(std::slice::from_ref(&server), ""),
        siprouter::in_tree(),
    )
    .err()
    .expect("an unreachable server is refused");
    assert!(
        e.iter()
            .any(|l| l.contains("failed to connect to server [late]")),
        "{e:?}"
    );
    let srv = TestServer::start(
        &cfg(
            &[server],
            "modparam(\"ndb_redis\", \"init_without_redis\", 1)\nmodparam(\"ndb_redis\", \"allowed_timeouts\", 1)\nmodparam(\"ndb_redis\", \"disable_time\", 2)\n",
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    // Down: two failures are allowed, then the server is disabled (-2).
    assert_eq!(
        ask(&uac, &srv, 1, "late", "PING"),
        "rc=-1 type=<null> value=<null> info=<null>"
    );
    assert!(ask(&uac, &srv, 2, "late", "PING").starts_with("rc=-1 "));
    let disabled_at = Instant::now();
    let r = redis::start_at("late", port, None, &[]).expect("redis");
    // Up now, but still disabled for the rest of disable_time.
    assert!(ask(&uac, &srv, 3, "late", "PING").starts_with("rc=-2 "));
    while disabled_at.elapsed() < Duration::from_millis(2100) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        ask(&uac, &srv, 4, "late", "SET k v"),
        "rc=1 type=5 value=<null> info=OK"
    );
    assert_eq!(r.cmd(&["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn a_command_past_cmd_timeout_fails_and_the_next_one_gets_its_own_reply() {
    let Some(r) = redis::start("timeout", None, &[]) else {
        return;
    };
    let srv = TestServer::start(
        &cfg(
            &[tcp("t", &r)],
            "modparam(\"ndb_redis\", \"cmd_timeout\", 300)\n",
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    let start = Instant::now();
    // BLPOP waits 1 s for a list that never fills: past the timeout (tried
    // twice, as Kamailio does after reconnecting).
    assert_eq!(
        ask(&uac, &srv, 1, "t", "BLPOP nolist 1"),
        "rc=-1 type=<null> value=<null> info=<null>"
    );
    assert!(start.elapsed() < Duration::from_millis(1500));
    // A late BLPOP reply (nil) must not be read as this GET's.
    r.cmd(&["SET", "a", "1"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        ask(&uac, &srv, 2, "t", "GET a"),
        "rc=1 type=1 value=1 info=1"
    );
    // Commands that answer with a stream are refused: their later
    // messages would be read as other commands' replies.
    for (n, cmd) in [(3, "SUBSCRIBE ch"), (4, "monitor")] {
        assert_eq!(
            ask(&uac, &srv, n, "t", cmd),
            "rc=-1 type=1 value=1 info=1",
            "{cmd}: the container keeps the last reply"
        );
    }
    assert_eq!(
        ask(&uac, &srv, 5, "t", "PING"),
        "rc=1 type=5 value=<null> info=PONG"
    );
}

#[test]
fn flush_on_reconnect_empties_the_database_after_a_lost_connection() {
    let Some(r) = redis::start("flush", None, &[]) else {
        return;
    };
    let srv = TestServer::start(
        &cfg(
            &[tcp("f", &r)],
            "modparam(\"ndb_redis\", \"flush_on_reconnect\", 1)\n",
        ),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    assert!(ask(&uac, &srv, 1, "f", "SET keep 1").starts_with("rc=1 "));
    // The first connection is no reconnection: nothing flushed.
    assert!(ask(&uac, &srv, 2, "f", "GET keep").starts_with("rc=1 type=1 value=1"));
    // Every other client's connection closed by the server.
    assert!(r
        .cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        .starts_with(':'));
    assert_eq!(
        ask(&uac, &srv, 3, "f", "GET keep"),
        "rc=1 type=4 value=<null> info=<null>"
    );
}

/// Two Redis Cluster nodes, slots 0-8191 on the first and the rest on
/// the second, joined and ready.
fn cluster() -> Option<(Redis, Redis)> {
    let bus = |_: ()| sr_testkit::free_port().to_string();
    let (ba, bb) = (bus(()), bus(()));
    let a = redis::start(
        "cluster-a",
        None,
        &["--cluster-enabled", "yes", "--cluster-port", &ba],
    )?;
    let b = redis::start(
        "cluster-b",
        None,
        &["--cluster-enabled", "yes", "--cluster-port", &bb],
    )?;
    assert!(a
        .cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "8191"])
        .starts_with("+OK"));
    assert!(b
        .cmd(&["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"])
        .starts_with("+OK"));
    assert!(a
        .cmd(&["CLUSTER", "MEET", "127.0.0.1", &b.port.to_string(), &bb])
        .starts_with("+OK"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(a.cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
        && b.cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    {
        assert!(Instant::now() < deadline, "the cluster did not form");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((a, b))
}

#[test]
fn cluster_redirections_are_followed() {
    let Some((a, b)) = cluster() else {
        return;
    };
    let na = format!("127.0.0.1:{}", a.port);
    let nb = format!("127.0.0.1:{}", b.port);
    // "foo" is in slot 12182: on the second node.
    assert!(a.cmd(&["SET", "foo", "x"]).starts_with("-MOVED 12182 "));
    let both = [tcp(&na, &a), tcp(&nb, &b)];
    let srv = TestServer::start(
        &cfg(&both, "modparam(\"ndb_redis\", \"cluster\", 1)\n"),
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    assert_eq!(
        ask(&uac, &srv, 1, &na, "SET foo 1"),
        "rc=1 type=5 value=<null> info=OK"
    );
    assert_eq!(b.cmd(&["GET", "foo"]), "$1\r\n1\r\n");
    drop(srv);
    // Only the first node configured: the redirection fails unless nodes
    // may be added as they are named.
    let one = [tcp(&na, &a)];
    let srv = TestServer::start(
        &cfg(&one, "modparam(\"ndb_redis\", \"cluster\", 1)\n"),
        siprouter::in_tree(),
    );
    let got = ask(&uac, &srv, 2, &na, "GET foo");
    assert!(
        got.starts_with("rc=-1 type=6 value=<null> info=MOVED 12182 "),
        "{got}"
    );
    drop(srv);
    let srv = TestServer::start(
        &cfg(
            &one,
            "modparam(\"ndb_redis\", \"cluster\", 1)\nmodparam(\"ndb_redis\", \"allow_dynamic_nodes\", 1)\n",
        ),
        siprouter::in_tree(),
    );
    assert_eq!(
        ask(&uac, &srv, 3, &na, "GET foo"),
        "rc=1 type=1 value=1 info=1"
    );
    // Without cluster, a MOVED error is just an error.
    drop(srv);
    let srv = TestServer::start(&cfg(&one, ""), siprouter::in_tree());
    assert!(ask(&uac, &srv, 4, &na, "GET foo").starts_with("rc=-1 type=6 "));
}

#[test]
fn sentinel_gives_the_master_or_a_replica() {
    let Some(master) = redis::start("sentinel-master", None, &[]) else {
        return;
    };
    let mport = master.port.to_string();
    let replica = redis::start(
        "sentinel-replica",
        None,
        &["--replicaof", "127.0.0.1", &mport],
    )
    .expect("a replica");
    let sentinel = redis::start(
        "sentinel",
        None,
        &[&format!("sentinel monitor grp 127.0.0.1 {mport} 1")],
    )
    .expect("a sentinel");
    // The Sentinel learns of the replica from the master.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sentinel
        .cmd(&["SENTINEL", "replicas", "grp"])
        .contains(&replica.port.to_string())
    {
        assert!(Instant::now() < deadline, "the sentinel found no replica");
        std::thread::sleep(Duration::from_millis(200));
    }
    let at = format!("sentinel=127.0.0.1:{}", sentinel.port);
    let servers = [
        format!("name=m;sentinel_group=grp;sentinel_master=1;{at}"),
        format!("name=s;sentinel_group=grp;sentinel_master=0;sentinel=127.0.0.1:1;{at}"),
    ];
    let srv = TestServer::start(&cfg(&servers, ""), siprouter::in_tree());
    let uac = UdpPeer::new();
    assert_eq!(
        ask(&uac, &srv, 1, "m", "SET via sentinel"),
        "rc=1 type=5 value=<null> info=OK"
    );
    assert_eq!(master.cmd(&["GET", "via"]), "$8\r\nsentinel\r\n");
    // The replica (reached after a Sentinel that is not there) refuses
    // writes and serves reads once it has the value.
    let got = ask(&uac, &srv, 2, "s", "SET x 1");
    assert!(
        got.starts_with("rc=-1 type=6 value=<null> info=READONLY"),
        "{got}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica.cmd(&["GET", "via"]).contains("sentinel") {
        assert!(Instant::now() < deadline, "the replica did not sync");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        ask(&uac, &srv, 3, "s", "GET via"),
        "rc=1 type=1 value=sentinel info=sentinel"
    );
}

#[test]
fn configuration_errors_are_reported() {
    for (server, what) in [
        ("addr=127.0.0.1", "server without a name"),
        ("name=a;port=http", "invalid port [http]"),
        ("name=a;colour=red", "unknown server attribute [colour]"),
    ] {
        let e = TestServer::try_start(&cfg(&[server.to_string()], ""), siprouter::in_tree())
            .err()
            .expect("a bad server is refused");
        assert!(e.iter().any(|l| l.contains(what)), "{server}: {e:?}");
    }
    // Names of $redis and $redisd are checked at load, as Kamailio does.
    for (pv, what) in [
        (
            "$redis(r=>bogus)",
            "invalid $redis(r=>bogus): invalid key spec",
        ),
        ("$redis(r=>size[1])", "invalid $redis(r=>size[1])"),
        (
            "$redisd(rpl_x)",
            "invalid $redisd(rpl_x): unknown redisd name",
        ),
    ] {
        let text = cfg(
            &["name=a;addr=127.0.0.1;port=1".to_string()],
            "modparam(\"ndb_redis\", \"init_without_redis\", 1)\n",
        )
        .replace("value=$redis(r=>value)", &format!("value={pv}"));
        let e = TestServer::try_start(&text, siprouter::in_tree())
            .err()
            .expect("a bad name is refused");
        assert!(e.iter().any(|l| l.contains(what)), "{pv}: {e:?}");
    }
    let Some(r) = redis::start("auth", Some("right"), &[]) else {
        return;
    };
    let wrong = format!("{};pass=wrong", tcp("p", &r));
    let e = TestServer::try_start(&cfg(&[wrong], ""), siprouter::in_tree())
        .err()
        .expect("a wrong password is refused");
    assert!(
        e.iter().any(|l| l.contains("authentication failed")),
        "{e:?}"
    );
}
