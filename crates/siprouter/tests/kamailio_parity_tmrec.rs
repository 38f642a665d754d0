//! Differential test against Kamailio itself, for tmrec and the time
//! pseudo-variables: the same recurrences and periods matched at the same
//! moments by Kamailio 5.6 and siprouter — `tmrec_match` with every
//! field (start, durations in each unit, the four frequencies, until,
//! intervals, `byday` with counts, `bymonthday`, `byyearday`, `byweekno`,
//! `bymonth`, positive and negative), malformed fields, the first
//! occurrence's bounds, periods crossing midnight; `time_period_match`
//! with every scale, names, ranges wrapping around, several sub-periods
//! and syntax errors; `is_leap_year`; and the slow-moving fields of
//! `$time`, `$utime`, `$timef`, `$utimef` — comparing each return code.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::localtime::mktime;
use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "tmrec"];

const BODY: &str = r#"
request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    $var(a) = $hdr(X-A);
    if ($var(a) == "-") { $var(a) = ""; }
    $var(ts) = $(hdr(X-Ts){s.int});
    $var(rc) = "none";
    if ($hdr(X-Op) == "rec") { $var(rc) = tmrec_match("$var(a)", "$var(ts)"); }
    else if ($hdr(X-Op) == "period") { $var(rc) = time_period_match("$var(a)", "$var(ts)"); }
    else if ($hdr(X-Op) == "leap") { $var(rc) = is_leap_year("$var(a)"); }
    else if ($hdr(X-Op) == "leapnow") { $var(rc) = is_leap_year(); }
    else if ($hdr(X-Op) == "leapint") { $var(y) = $(var(a){s.int}); $var(rc) = is_leap_year("$var(y)"); }
    else if ($hdr(X-Op) == "time") {
        append_to_reply("X-T: $time(year)-$time(mon) $utime(year)-$utime(mon) $timef(%Y/%m) $utimef(%Y.%b) $time(isdst) $utime(isdst)\r\n");
    }
    append_to_reply("X-RC: $var(rc)\r\n");
    sl_send_reply("200", "done");
}
"#;

/// Local time to Unix seconds.
fn at(y: i32, mo: i32, d: i32, h: i32, mi: i32, s: i32) -> i64 {
    mktime(y, mo - 1, d, h, mi, s).expect("a valid time")
}

fn moments() -> Vec<i64> {
    vec![
        at(2026, 11, 27, 8, 29, 59),
        at(2026, 11, 27, 8, 30, 0),
        at(2026, 11, 27, 12, 0, 0),
        at(2026, 11, 27, 18, 29, 59),
        at(2026, 11, 27, 18, 30, 0),
        at(2026, 11, 27, 23, 59, 59),
        at(2026, 11, 28, 0, 30, 0),
        at(2026, 11, 28, 10, 0, 0),
        at(2026, 11, 20, 12, 0, 0),
        at(2026, 11, 30, 12, 0, 0),
        at(2026, 11, 2, 9, 30, 0),
        at(2026, 11, 4, 9, 30, 0),
        at(2026, 11, 23, 9, 0, 0),
        at(2026, 12, 31, 12, 0, 0),
        at(2027, 1, 1, 12, 0, 0),
        at(2027, 1, 2, 12, 0, 0),
        at(2024, 2, 29, 12, 0, 0),
        at(2027, 3, 15, 12, 0, 0),
        at(2027, 3, 28, 10, 0, 0),
        at(2026, 6, 30, 12, 0, 0),
        at(2028, 12, 31, 12, 0, 0),
        at(2011, 12, 31, 12, 0, 0),
        at(2026, 1, 5, 7, 0, 0),
    ]
}

const RECS: &[&str] = &[
    "20120101T083000|PT10H|weekly|||MO,TU,WE,TH,FR",
    "20120101T000000|PT24H|weekly|||SA,SU",
    "20261127T100000|PT1H",
    "20261127T080000|PT10H30M",
    "20261102T090000|PT1H|daily||2",
    "20261102T090000|PT1H|weekly||111",
    "20261102T090000|PT1H|weekly||2",
    "20261102T090000|PT1H|daily|20261105T090000",
    "20260101T000000|PT24H|monthly|||-1FR,1MO",
    "20260101T000000|PT24H|monthly|||4FR,-2FR,3FR",
    "20260101T000000|PT24H|yearly|||-1SU,1TH,48FR,47FR",
    "20260101T000000|PT24H|daily|||||||3,-1",
    "20260101T000000|PT24H|daily|||||||11,12",
    "20260101T000000|PT24H|monthly||||-1",
    "20260101T000000|PT24H|monthly||||30",
    "20260101T000000|PT24H|monthly||||1,20,27,-4",
    "20260101T000000|PT24H|yearly|||||1,-1",
    "20260101T000000|PT24H|yearly|||||331,-35,365",
    "20260101T000000|PT24H|yearly||||||48,-5,52",
    "20260101T000000|PT24H|weekly||||||48",
    "20261102T220000|PT4H|daily",
    "20100101T093000|PT10H30M|yearly|4||SU||||3",
    "20100101T093000|PT10H30M|yearly|||SU||||3",
    "20260101T000000|P1D|monthly||2",
    "20261101T000000|P1W|monthly",
    "20261101T000000|+P1W|monthly||3",
    "20251127T120000|PT1H|yearly",
    "20251127T000000|P1D|yearly||12",
    "20261127T000000|-PT1H",
    "20120101T000000|PT24H|weekly|||MO,",
    "20120101T000000|PT24H|weekly||| mo , Fr ",
    "20120101T000000|PT24H|weekly|||XX",
    "20120101T000000|PT24H|weekly|||SA|1;2",
    "20120101T000000|PT24H|hourly",
    "20120101T000000|PT24H|DAILY||0",
    "20120101T000000|PT24H|daily|",
    "|PT1H|daily",
    "-",
    "2026",
    "20261127T100000|",
    "20261127T100000|PT0S",
    "20261127T100000|8H",
    "20261127T100000|PT1D",
    "20261127T100000|PT1H|daily|2026",
    "20261127X100000|PT1H",
    "20261127T100000|PT1H|daily|||MO|||||extra",
];

const PERIODS: &[&str] = &[
    "-",
    "never",
    "NONE",
    "wd {fri}",
    "wd{2-6} hr{8-16}",
    "wd{2-6} hr{8-16}, wd{1-5} hr{17} min{0-29}",
    "weekday { sat sun }, weekday {mo-fr} hr {17-8},wd{mo-wed}hr{15 16 9}",
    "wd{mo-wed}hr{15 16 9}",
    "wd {sat-mon}",
    "wd {thu-sun}",
    "wd {sat-fri}",
    "wd {friday}",
    "wd {7}",
    "wd {8}",
    "month {november}",
    "mo {jan-oct}",
    "mo {janua}",
    "month {nov-feb}",
    "md {27} yd {331}",
    "md {31-1}",
    "wk {4}",
    "wk {1-2}",
    "week {5 6}",
    "sec {30} min {45}",
    "second {0-59}",
    "hr {12}",
    "hour {17-8}",
    "hr {24}",
    "year {2026}",
    "yr {2025}",
    "yr {26}",
    "year {1969}",
    "year {2020-2030}",
    "hr {1-2-3}",
    "hr {-3}",
    "hr {3",
    "hr {16} hr {1}",
    "hr { 12 - 13 }",
    "hr{12}min{0}",
    "foo {1}",
    "hr 12",
    "yd {60}",
    "minute {0-29}, minute {30-59}",
];

const LEAP: &[&str] = &["2024", "2100", "2000", "2026", "1900", "x"];

fn ask(peer: &UdpPeer, srv: SocketAddr, n: usize, op: &str, a: &str, ts: i64) -> String {
    let call = format!("tm{n}");
    let extra = format!("X-Op: {op}\r\nX-A: {a}\r\nX-Ts: {ts}\r\n");
    peer.send(
        srv,
        &kamailio::options(&call, &extra).replace("__VIA__", &peer.addr().to_string()),
    );
    let r = peer.recv_matching(Duration::from_secs(3), |r| {
        r.status() == Some(200) && r.msg.msg().call_id().ok() == Some(call.as_str())
    });
    match r {
        Some(r) => format!(
            "{op} [{a}] at {ts} -> {} {}",
            r.header("X-RC").unwrap_or_default(),
            r.header("X-T").unwrap_or_default()
        ),
        None => format!("{op} [{a}] at {ts}: no answer"),
    }
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let mut n = 0;
    for rec in RECS {
        for &t in &moments() {
            n += 1;
            out.push(ask(&peer, srv, n, "rec", rec, t));
        }
    }
    for p in PERIODS {
        for &t in &moments() {
            n += 1;
            out.push(ask(&peer, srv, n, "period", p, t));
        }
    }
    for y in LEAP {
        n += 1;
        out.push(ask(&peer, srv, n, "leap", y, 0));
        n += 1;
        out.push(ask(&peer, srv, n, "leapint", y, 0));
    }
    out.push(ask(&peer, srv, n + 1, "leapnow", "", 0));
    out.push(ask(&peer, srv, n + 2, "time", "", 0));
    out
}

#[test]
fn tmrec_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("tmrec");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.ends_with("-> 1 ")), "{want:#?}");
    assert!(want.iter().any(|l| l.ends_with("-> -1 ")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "tmrec");
}
