//! Differential test against Kamailio itself, for the ndb_redis module:
//! one real Redis server (password set, TCP and its UNIX socket, two
//! databases), one configuration, the same commands to both servers
//! (each request carries its command and `%s` values), and every answer
//! compared: return codes, the reply's type, value, info and size, array
//! elements by constant and variable index, arrays in arrays (`EXEC`),
//! 32-bit integers, errors from Redis, pipelines (`redis_pipe_cmd`,
//! `redis_execute`, a `redis_cmd` with commands waiting), `redis_free`,
//! an unknown server and `$redisd`. A server down at the start is not
//! compared: Kamailio 5.6 then stops connecting the servers after it and
//! never tries again (siprouter connects on use; tests/ndb_redis.rs).
//!
//! Without Kamailio's ndb_redis (Debian `kamailio-redis-modules`) or
//! `redis-server` installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` / `SR_REDIS_REQUIRED=1` (`.ci/run` sets them).

use sr_testkit::{kamailio, redis};

/// The configuration after its head (`kamailio::head`).
const BODY: &str = r#"modparam("ndb_redis", "server", "name=srvA;addr=127.0.0.1;port=__RPORT__;db=1;pass=sekret")
modparam("ndb_redis", "server", "name=srvU;unix=__RSOCK__;db=2;pass=sekret")
request_route {
    if ($hdr(X-C) == $null && $hdr(X-Case) == $null) { sl_send_reply("200", "up"); exit; }
    $var(i) = 1;
    if ($hdr(X-Case) == "pipe") {
        $var(p1) = redis_pipe_cmd("srvA", "SET pk %s", "v 1", "p1");
        $var(p2) = redis_pipe_cmd("srvA", "GET pk", "p2");
        $var(p3) = redis_pipe_cmd("srvA", "HGET pk x", "p3");
        $var(e) = redis_execute("srvA");
        $var(e2) = redis_execute("srvA");
        append_to_reply("X-R: p=$var(p1),$var(p2),$var(p3) e=$var(e) e2=$var(e2) r1=$redis(p1=>type)/$redis(p1=>info) r2=$redis(p2=>value) r3=$redis(p3=>type)/$redis(p3=>info)\r\n");
    } else if ($hdr(X-Case) == "pipe-ok") {
        redis_pipe_cmd("srvU", "SET pu 5", "o1");
        redis_pipe_cmd("srvU", "INCR pu", "o2");
        $var(e) = redis_execute("srvU");
        append_to_reply("X-R: e=$var(e) o1=$redis(o1=>info) o2=$redis(o2=>value)\r\n");
    } else if ($hdr(X-Case) == "pipe-then-cmd") {
        $var(a) = redis_pipe_cmd("srvA", "INCR pc", "q1");
        $var(c) = redis_cmd("srvA", "INCR pc", "q2");
        $var(e) = redis_execute("srvA");
        append_to_reply("X-R: a=$var(a) c=$var(c) e=$var(e) q1=$redis(q1=>value) q2=$redis(q2=>value)\r\n");
    } else if ($hdr(X-Case) == "pipe-unknown") {
        $var(a) = redis_pipe_cmd("nosuch", "PING", "q3");
        $var(e) = redis_execute("nosuch");
        append_to_reply("X-R: a=$var(a) e=$var(e) t=$redis(q3=>type)\r\n");
    } else if ($hdr(X-Case) == "free") {
        redis_cmd("srvA", "PING", "f");
        $var(a) = redis_free("f");
        $var(b) = redis_free("f");
        $var(c) = redis_free("never");
        append_to_reply("X-R: a=$var(a) b=$var(b) c=$var(c) t=$redis(f=>type) i=$redis(f=>info) n=$redis(never=>type)\r\n");
    } else if ($hdr(X-Case) == "unknown") {
        redis_cmd("srvA", "PING", "d");
        $var(x) = redis_cmd("nosuch", "PING", "d");
        append_to_reply("X-R: x=$var(x) t=$redis(d=>type)\r\n");
    } else if ($hdr(X-Case) == "redisd") {
        append_to_reply("X-R: $redisd(rpl_str) $redisd(rpl_arr) $redisd(rpl_int) $redisd(rpl_nil) $redisd(rpl_sts) $redisd(rpl_err)\r\n");
    } else {
        if ($hdr(X-A3) != $null) {
            $var(rc) = redis_cmd("$hdr(X-S)", "$hdr(X-C)", "$hdr(X-A1)", "$hdr(X-A2)", "$hdr(X-A3)", "r");
        } else if ($hdr(X-A2) != $null) {
            $var(rc) = redis_cmd("$hdr(X-S)", "$hdr(X-C)", "$hdr(X-A1)", "$hdr(X-A2)", "r");
        } else if ($hdr(X-A1) != $null) {
            $var(rc) = redis_cmd("$hdr(X-S)", "$hdr(X-C)", "$hdr(X-A1)", "r");
        } else {
            $var(rc) = redis_cmd("$hdr(X-S)", "$hdr(X-C)", "r");
        }
        append_to_reply("X-R: rc=$var(rc) type=$redis(r=>type) value=$redis(r=>value) info=$redis(r=>info) size=$redis(r=>size) v0=$redis(r=>value[0]) v1=$redis(r=>value[$var(i)]) t0=$redis(r=>type[0]) t2=$redis(r=>type[2]) vm=$redis(r=>value[-1]) n0=$redis(r=>value[0]=>size) n00=$redis(r=>value[0]=>value[0]) n01t=$redis(r=>value[0]=>type[1])\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

/// Each case: a label, the server, the command text and its `%s` values;
/// or a scenario (`X-Case`) with an empty server.
fn cases() -> Vec<(&'static str, &'static str, &'static str, Vec<&'static str>)> {
    vec![
        ("flush", "srvA", "FLUSHALL", vec![]),
        ("set", "srvA", "SET foo bar", vec![]),
        ("get", "srvA", "GET foo", vec![]),
        ("get-arg", "srvA", "GET %s", vec!["foo"]),
        (
            "set-spaces",
            "srvA",
            "SET %s %s",
            vec!["key with space", "v a l"],
        ),
        ("get-spaces", "srvA", "GET %s", vec!["key with space"]),
        ("incr", "srvA", "INCR cnt", vec![]),
        ("incr-big", "srvA", "INCRBY cnt 4294967296", vec![]),
        ("incr-neg", "srvA", "INCRBY cnt -9000000000", vec![]),
        ("nil", "srvA", "GET missing", vec![]),
        ("hset", "srvA", "HSET h f1 a f2 2", vec![]),
        ("hmget", "srvA", "HMGET h f1 f2 f3", vec![]),
        (
            "hmget-args",
            "srvA",
            "HMGET %s %s %s",
            vec!["h", "f2", "f1"],
        ),
        ("rpush", "srvA", "RPUSH l a b c", vec![]),
        ("lrange", "srvA", "LRANGE l 0 -1", vec![]),
        ("empty-array", "srvA", "LRANGE nosuch 0 -1", vec![]),
        ("multi", "srvA", "MULTI", vec![]),
        ("queued-1", "srvA", "LRANGE l 0 1", vec![]),
        ("queued-2", "srvA", "INCR cnt", vec![]),
        ("exec", "srvA", "EXEC", vec![]),
        ("wrongtype", "srvA", "HGET foo x", vec![]),
        ("unknown-cmd", "srvA", "NOSUCHCMD a", vec![]),
        ("arity", "srvA", "SET k", vec![]),
        ("percent", "srvA", "SET a%% 100%%", vec![]),
        ("percent-get", "srvA", "GET a%", vec![]),
        ("empty-arg", "srvA", "SET %s x", vec![""]),
        ("empty-arg-get", "srvA", "GET %s", vec![""]),
        ("joined", "srvA", "SET pre:%s:post y", vec!["mid"]),
        ("joined-get", "srvA", "GET pre:mid:post", vec![]),
        ("extra-args", "srvA", "GET foo", vec!["x", "y", "z"]),
        ("mget", "srvA", "MGET %s %s %s", vec!["foo", "nope", "cnt"]),
        ("ping", "srvA", "PING", vec![]),
        ("echo", "srvA", "ECHO %s", vec!["héllo wörld"]),
        ("unix-set", "srvU", "SET u 1", vec![]),
        ("unix-get", "srvU", "GET u", vec![]),
        ("other-db", "srvA", "GET u", vec![]),
        ("del", "srvA", "DEL foo cnt", vec![]),
        ("pipe", "", "pipe", vec![]),
        ("pipe-ok", "", "pipe-ok", vec![]),
        ("pipe-then-cmd", "", "pipe-then-cmd", vec![]),
        ("pipe-unknown", "", "pipe-unknown", vec![]),
        ("free", "", "free", vec![]),
        ("unknown", "", "unknown", vec![]),
        ("redisd", "", "redisd", vec![]),
    ]
}

fn requests() -> Vec<(String, String)> {
    cases()
        .into_iter()
        .enumerate()
        .map(|(n, (label, srv, cmd, args))| {
            let call = format!("rd{n}-{label}");
            let h = if srv.is_empty() {
                format!("X-Case: {cmd}\r\n")
            } else {
                let mut h = format!("X-S: {srv}\r\nX-C: {cmd}\r\n");
                for (i, a) in args.iter().enumerate() {
                    h.push_str(&format!("X-A{}: {a}\r\n", i + 1));
                }
                h
            };
            (call.clone(), kamailio::options(&call, &h))
        })
        .collect()
}

#[test]
fn ndb_redis_matches_kamailio() {
    if !kamailio::available(&["ndb_redis", "sl", "pv", "textops"]) {
        return;
    }
    let Some(r) = redis::start("parity", Some("sekret"), &[]) else {
        return;
    };
    let dir = kamailio::fresh_dir("ndb_redis");
    let port = r.port.to_string();
    let sock = r.socket().display().to_string();
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops", "ndb_redis"],
        BODY,
        &[("__RPORT__", &port), ("__RSOCK__", &sock)],
        &requests(),
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|a| a.contains("value=bar")), "{want:?}");
    kamailio::conclude(&dir, &want, &got, "ndb_redis");
}
