//! Differential test against Kamailio itself, for xhttp_prom: the same
//! configuration (counters, gauges and histograms with and without labels,
//! default and own buckets, a prefix of our own) run by Kamailio 5.6 and
//! by siprouter, the same changes made from the script over HTTP (every
//! function with 0 to 3 labels, good and bad names, label counts and
//! numbers, each call's return code answered), SIP traffic, and the
//! `/metrics` answers compared line for line but for their timestamps and
//! the statistics' values (their names and order are compared). `prom_check_uri()` is checked on several URLs, and a
//! missing statistic must give the same 500.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer, WsPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "xhttp", "xhttp_prom"];

const WAIT: Duration = Duration::from_secs(3);

/// What the script does for `X-A: <function>` with `X-C: <labels>`: the
/// function called with name `X-N`, number `X-V` (an integer for
/// counters: `X-V` read as one, or as written with `X-S: 1`) and labels
/// `X-L1`..`X-L3`.
fn actions() -> String {
    let mut s = String::new();
    let labels = [
        "",
        ", \"$var(l1)\"",
        ", \"$var(l1)\", \"$var(l2)\"",
        ", \"$var(l1)\", \"$var(l2)\", \"$var(l3)\"",
    ];
    for (c, l) in labels.iter().enumerate() {
        for (act, call) in [
            (
                "cinc",
                format!("prom_counter_inc(\"$var(n)\", \"$var(iv)\"{l})"),
            ),
            (
                "cincs",
                format!("prom_counter_inc(\"$var(n)\", \"$var(v)\"{l})"),
            ),
            ("creset", format!("prom_counter_reset(\"$var(n)\"{l})")),
            (
                "gset",
                format!("prom_gauge_set(\"$var(n)\", \"$var(v)\"{l})"),
            ),
            ("greset", format!("prom_gauge_reset(\"$var(n)\"{l})")),
            (
                "hobs",
                format!("prom_histogram_observe(\"$var(n)\", \"$var(v)\"{l})"),
            ),
        ] {
            s.push_str(&format!(
                "    if ($hdr(X-A) == \"{act}\" && $hdr(X-C) == \"{c}\") {{ {call}; $var(rc) = $rc; }}\n"
            ));
        }
    }
    s
}

const BODY: &str = r#"listen=tcp:127.0.0.1:__PORT__
tcp_accept_no_cl=yes
modparam("xhttp_prom", "xhttp_prom_stats", "__STATS__")
modparam("xhttp_prom", "xhttp_prom_beginning", "sr_")
modparam("xhttp_prom", "prom_counter", "name=calls;")
modparam("xhttp_prom", "prom_counter", "name=by_method; label=method")
modparam("xhttp_prom", "prom_counter", "name=three; label=a:b:c")
modparam("xhttp_prom", "prom_counter", "name=after_dispatch")
modparam("xhttp_prom", "prom_gauge", "name=load; label=host:kind;")
modparam("xhttp_prom", "prom_gauge", "name=temp")
modparam("xhttp_prom", "prom_histogram", "name=setup_time;")
modparam("xhttp_prom", "prom_histogram", "name=sizes; label=dir; buckets=10:100:1000")
request_route {
    if ($rU == "nobody") { sl_send_reply("404", "Not Here"); exit; }
    sl_send_reply("200", "OK");
}
event_route[xhttp:request] {
    if (prom_check_uri()) {
        prom_dispatch();
        prom_counter_inc("after_dispatch", "1");
        exit;
    }
    if ($hdr(X-A) == $null) {
        xhttp_reply("200", "OK", "text/plain", "not metrics: $hu");
        exit;
    }
    $var(n) = $hdr(X-N);
    $var(v) = $hdr(X-V);
    $var(iv) = $(hdr(X-V){s.int});
    $var(l1) = $hdr(X-L1);
    $var(l2) = $hdr(X-L2);
    $var(l3) = $hdr(X-L3);
    $var(rc) = "none";
__ACTIONS__    xhttp_reply("200", "OK", "text/plain", "rc=$var(rc)");
}
"#;

/// One HTTP request on a new connection: `status body`, the body's
/// timestamps (the last field of each metric line) left out.
fn get(srv: SocketAddr, url: &str, headers: &[(&str, &str)]) -> String {
    let mut p = WsPeer::connect(srv);
    let mut req = format!("GET {url} HTTP/1.1\r\nHost: t\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let Some((code, text)) = p.http(&req, WAIT) else {
        return format!("{url}: no answer");
    };
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let ctype = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
        .unwrap_or("");
    let lines: Vec<String> = body
        .lines()
        .map(|l| {
            if l.starts_with('#') || l.is_empty() {
                l.to_string()
            } else {
                let l = match l.rsplit_once(' ') {
                    Some((m, ts)) if ts.len() >= 13 && ts.bytes().all(|b| b.is_ascii_digit()) => {
                        format!("{m} TS")
                    }
                    _ => l.to_string(),
                };
                // The statistics' values are the servers' own: Kamailio
                // counts xhttp's HTTP answers in sl's statistics, and
                // shows another process's counts up to a second late.
                match l.split_once(' ') {
                    Some((name, _)) if name.starts_with("sr_sl_") => format!("{name} N TS"),
                    _ => l,
                }
            }
        })
        .collect();
    format!("{url}: {code} {ctype} | {}", lines.join(" | "))
}

/// A script call over HTTP: its return code.
fn call(srv: SocketAddr, what: &str, labels: &[&str], name: &str, value: &str) -> String {
    let c = labels.len().to_string();
    let mut h = vec![
        ("X-A", what),
        ("X-C", c.as_str()),
        ("X-N", name),
        ("X-V", value),
    ];
    let keys = ["X-L1", "X-L2", "X-L3"];
    for (k, l) in keys.iter().zip(labels) {
        h.push((k, l));
    }
    let r = get(srv, "/act", &h);
    format!(
        "{what}({name}, {value:?}, {labels:?}) -> {}",
        r.rsplit(" | ").next().unwrap_or("")
    )
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    // Before anything is used: no value listed yet.
    out.push(get(srv, "/metrics", &[]));
    // SIP traffic for the sl statistics: two 200s, a 404.
    for (i, user) in ["a", "b", "nobody"].iter().enumerate() {
        peer.send(
            srv,
            &kamailio::options(&format!("prom-{i}"), "")
                .replace("__VIA__", &peer.addr().to_string())
                .replace("sip:x@", &format!("sip:{user}@")),
        );
        let r = peer.recv(WAIT);
        out.push(format!("OPTIONS {user}: {:?}", r.and_then(|r| r.status())));
    }
    for (what, labels, name, value) in [
        ("cinc", &[][..], "calls", "3"),
        ("cinc", &[], "calls", "4"),
        ("cinc", &["INVITE"], "by_method", "2"),
        ("cinc", &["BYE"], "by_method", "1"),
        ("cinc", &["INVITE"], "by_method", "5"),
        ("cinc", &["x", "y", "z"], "three", "1"),
        ("cinc", &[], "calls", "-1"),
        ("cinc", &[], "calls", "0"),
        ("cincs", &[], "calls", "9"),
        ("cinc", &["INVITE"], "calls", "1"),
        ("cinc", &[], "by_method", "1"),
        ("cinc", &[], "nosuch", "1"),
        ("cinc", &[], "load", "1"),
        ("creset", &["BYE"], "by_method", ""),
        ("creset", &["NEW"], "by_method", ""),
        ("gset", &["h1", "cpu"], "load", "2.8"),
        ("gset", &["h1", "mem"], "load", "-12.5"),
        ("gset", &["h2", "cpu"], "load", "1e3"),
        ("gset", &["h1", "cpu"], "load", "0.1234567"),
        ("gset", &[], "temp", "abc"),
        ("gset", &[], "temp", "42abc"),
        ("gset", &[], "temp", "0x10"),
        ("gset", &[], "temp", ""),
        ("gset", &["h1"], "load", "1"),
        ("greset", &["h2", "cpu"], "load", ""),
        ("greset", &[], "calls", ""),
        ("hobs", &[], "setup_time", "0.3"),
        ("hobs", &[], "setup_time", "0.005"),
        ("hobs", &[], "setup_time", "11"),
        ("hobs", &["in"], "sizes", "100"),
        ("hobs", &["in"], "sizes", "5000"),
        ("hobs", &["out"], "sizes", "-3"),
        ("hobs", &[], "sizes", "1"),
        ("hobs", &["x"], "calls", "1"),
    ] {
        out.push(call(srv, what, labels, name, value));
    }
    for url in [
        "/metrics",
        "/metrics/",
        "/metrics?x=1",
        "/Metrics",
        "/other",
    ] {
        out.push(get(srv, url, &[]));
    }
    // prom_dispatch() ends the route or not: `after_dispatch` tells.
    out.push(get(srv, "/metrics", &[]));
    out
}

#[test]
fn xhttp_prom_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    for (setting, stats) in [
        ("sl", "sl:"),
        ("one", "200_replies"),
        ("missing", "no_such_stat"),
        ("none", ""),
    ] {
        let dir = kamailio::fresh_dir(&format!("xhttp-prom-{setting}"));
        let cfg = (kamailio::head(MODULES) + BODY)
            .replace("__STATS__", stats)
            .replace("__ACTIONS__", &actions());
        let (want, got) =
            kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
        assert!(
            want.iter().any(|l| l.contains("/metrics: ")),
            "{setting}: {want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, setting);
    }
}
