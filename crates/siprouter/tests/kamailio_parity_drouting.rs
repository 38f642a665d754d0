//! Differential test against Kamailio itself, for drouting: the same
//! `dr_gateways`, `dr_rules`, `dr_gw_lists` and `dr_groups` rows in one
//! SQLite file, read by Kamailio 5.6 and by siprouter, and the same
//! requests routed — `do_routing` with a group and from the caller's
//! group (with `use_domain`), longest-prefix search falling back to
//! shorter prefixes and to the default rules, rules that are not active
//! now, negative priorities, `#list` references, strip and prefix,
//! Request-URI parameters kept, a rule's route block and its return
//! code, rules skipped for a bad prefix or an unknown gateway; the
//! failover AVPs and `use_next_gw` through every gateway with their
//! attributes; `is_from_gw` with and without type and strip flag;
//! `goes_to_gw` on `$du` and the Request-URI — comparing the return
//! code, the Request-URI and every AVP after each call.
//!
//! Without Kamailio and its drouting and db_sqlite modules installed the
//! test prints a notice and passes, unless `SR_KAMAILIO_REQUIRED=1`
//! (`.ci/run` sets it).

use sr_sdk::db::{DbConn, DbValue};
use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "db_sqlite", "drouting"];

const BODY: &str = r#"
modparam("drouting", "db_url", "__DB__")
modparam("drouting", "ruri_avp", "$avp(dr_ruri)")
modparam("drouting", "attrs_avp", "$avp(dr_attrs)")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(rt) = "no";
    $var(rc) = "none";
    if ($hdr(X-T) == "route") {
        if ($hdr(X-G) == "caller") { $var(rc) = do_routing(); }
        else { $var(g) = $(hdr(X-G){s.int}); $var(rc) = do_routing("$var(g)"); }
        $var(first) = $ru + " attrs=" + $avp(dr_attrs);
        $var(next) = "";
        $var(i) = 0;
        while ($var(i) < 6 && use_next_gw()) {
            $var(next) = $var(next) + " " + $ru + " attrs=" + $avp(dr_attrs);
            $var(i) = $var(i) + 1;
        }
        append_to_reply("X-R: rc=$var(rc) rt=$var(rt) first=$var(first) next=$var(next) left=$(avp(dr_ruri)[*])\r\n");
    } else if ($hdr(X-T) == "from") {
        if ($hdr(X-G) == "any") { $var(rc) = is_from_gw(); }
        else if ($hdr(X-F) == $null) { $var(rc) = is_from_gw("$(hdr(X-G){s.int})"); }
        else { $var(rc) = is_from_gw("$(hdr(X-G){s.int})", "$(hdr(X-F){s.int})"); }
        append_to_reply("X-R: rc=$var(rc) ru=$ru\r\n");
    } else if ($hdr(X-T) == "goes") {
        if ($hdr(X-Du) != $null) { $du = $hdr(X-Du); }
        if ($hdr(X-G) == "any") { $var(rc) = goes_to_gw(); }
        else { $var(rc) = goes_to_gw("$(hdr(X-G){s.int})"); }
        append_to_reply("X-R: rc=$var(rc)\r\n");
    } else if ($hdr(X-T) == "nogw") {
        $var(rc) = use_next_gw();
        append_to_reply("X-R: rc=$var(rc) ru=$ru\r\n");
    }
    sl_send_reply("200", "done");
}
route[RT] {
    $var(rt) = "ran";
    return 1;
}
route[NEG] {
    $var(rt) = "neg";
    return -2;
}
"#;

/// (gwid, type, address, strip, pri_prefix, attrs)
type Gw = (
    i32,
    i32,
    &'static str,
    i32,
    Option<&'static str>,
    Option<&'static str>,
);
const GATEWAYS: &[Gw] = &[
    (1, 1, "10.0.0.1", 0, None, Some("a1")),
    (2, 2, "10.0.0.2:5070", 2, Some("00"), Some("a2")),
    (3, 3, "127.0.0.1", 1, Some(""), None),
    (4, 4, "127.0.0.1:5099", 0, None, Some("four")),
    (5, 1, "10.0.0.5;transport=tcp", 0, Some("+"), Some("x=y")),
    (6, 5, "[2001:db8::1]:5060", 0, None, Some("v6")),
];

/// (ruleid, groupid, prefix, timerec, priority, routeid, gwlist)
type R = (
    i32,
    &'static str,
    &'static str,
    &'static str,
    i32,
    &'static str,
    &'static str,
);
const RULES: &[R] = &[
    (1, "1", "49", "", 0, "", "1,2"),
    (2, "1", "4930", "", 5, "", "5;1"),
    (3, "1,2", "4930", "20100101T000000|PT1H", 10, "", "2"),
    (4, "2", "", "", 0, "", "#1"),
    (5, "1", "+1", "", 0, "RT", "3"),
    (6, "1", "+2", "", 0, "NEG", "1"),
    (7, "3", "1", "", 0, "", "2"),
    (8, "1", "5x", "", 0, "", "1"),
    (9, "4", "9", "", 0, "", "99"),
    (10, "1|4", "7", "", -1, "", "4"),
    (11, "4", "7", "", 100, "", "1"),
    (12, "1", "8", "20100101T000000", 0, "", "6,1"),
    (13, "5", "*9", "", 0, "", "1;2"),
    (14, "1", "6", "", 0, "0", "1 ;2, 5"),
    (15, "6", "", "20100101T000000|PT1H", 0, "", "1"),
    (16, "6", "", "", 0, "", "2"),
    (17, "7", "3", "20100101T000000|PT24H|daily", 0, "", "1"),
    (18, "7", "", "", 0, "", "2"),
];

fn fill(url: &str) {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    let opt = |v: Option<&str>| v.map_or(DbValue::Null, DbValue::str);
    for &(id, ty, addr, strip, pri, attrs) in GATEWAYS {
        c.insert(
            "dr_gateways",
            &[
                ("gwid", DbValue::Int(id)),
                ("type", DbValue::Int(ty)),
                ("address", DbValue::str(addr)),
                ("strip", DbValue::Int(strip)),
                ("pri_prefix", opt(pri)),
                ("attrs", opt(attrs)),
            ],
        )
        .unwrap();
    }
    c.insert(
        "dr_gw_lists",
        &[("id", DbValue::Int(1)), ("gwlist", DbValue::str("1,2;5"))],
    )
    .unwrap();
    for (i, (u, d, g)) in [
        ("alice", "ex.test", 1),
        ("bob", "ex.test", 2),
        ("carol", "other", 1),
    ]
    .iter()
    .enumerate()
    {
        c.insert(
            "dr_groups",
            &[
                ("id", DbValue::Int(i as i32 + 1)),
                ("username", DbValue::str(*u)),
                ("domain", DbValue::str(*d)),
                ("groupid", DbValue::Int(*g)),
            ],
        )
        .unwrap();
    }
    for &(id, grp, prefix, tr, prio, route, gwl) in RULES {
        c.insert(
            "dr_rules",
            &[
                ("ruleid", DbValue::Int(id)),
                ("groupid", DbValue::str(grp)),
                ("prefix", DbValue::str(prefix)),
                ("timerec", DbValue::str(tr)),
                ("priority", DbValue::Int(prio)),
                ("routeid", DbValue::str(route)),
                ("gwlist", DbValue::str(gwl)),
            ],
        )
        .unwrap();
    }
}

fn requests() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut add = |t: &str, ruri: &str, from: &str, extra: &str| {
        n += 1;
        let call = format!("dr{n}-{t}");
        out.push((
            call.clone(),
            format!(
                "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKdr{n}\r\nFrom: <{from}>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-T: {t}\r\n{extra}Content-Length: 0\r\n\r\n"
            ),
        ));
    };
    let alice = "sip:alice@ex.test";
    for (ruri, g) in [
        ("sip:4930123@ex.test", "1"),
        ("sip:4930123@ex.test", "2"),
        ("sip:4912@ex.test", "1"),
        ("sip:4912:secret@ex.test;user=phone;x=1", "1"),
        ("sip:4912@ex.test;x=1;transport=tcp?X-H=1", "1"),
        ("sip:4912@ex.test;user=phone", "1"),
        ("sip:4912;isub=5@ex.test;user=phone;lr", "1"),
        ("sip:4912;isub=5@ex.test;lr", "1"),
        ("sip:4@ex.test", "1"),
        ("sip:49x1@ex.test", "1"),
        ("sip:493@ex.test", "1"),
        ("sip:49301@ex.test", "9"),
        ("sip:999@ex.test", "2"),
        ("sip:1@ex.test", "3"),
        ("sip:12@ex.test", "3"),
        ("sip:123@ex.test", "3"),
        ("sip:+1555@ex.test", "1"),
        ("sip:+2555@ex.test", "1"),
        ("sip:5x1@ex.test", "1"),
        ("sip:7000@ex.test", "4"),
        ("sip:7000@ex.test", "1"),
        ("sip:9000@ex.test", "4"),
        ("sip:8000@ex.test", "1"),
        ("sip:*91@ex.test", "5"),
        ("sip:6000@ex.test", "1"),
        ("sip:ex.test", "1"),
        ("sip:555@ex.test", "6"),
        ("sip:355@ex.test", "7"),
        ("sip:455@ex.test", "7"),
    ] {
        add("route", ruri, alice, &format!("X-G: {g}\r\n"));
    }
    for from in [
        "sip:alice@ex.test",
        "sip:bob@ex.test",
        "sip:carol@other",
        "sip:carol@ex.test",
        "sip:dave@ex.test",
    ] {
        add("route", "sip:4930123@ex.test", from, "X-G: caller\r\n");
    }
    for (g, f) in [
        ("any", None),
        ("3", None),
        ("1", None),
        ("4", None),
        ("3", Some("1")),
        ("3", Some("0")),
        ("-1", None),
    ] {
        let extra = match f {
            Some(f) => format!("X-G: {g}\r\nX-F: {f}\r\n"),
            None => format!("X-G: {g}\r\n"),
        };
        add("from", "sip:4930123@ex.test", alice, &extra);
    }
    for (du, g, ruri) in [
        (Some("sip:10.0.0.2:9999"), "any", "sip:1@ex.test"),
        (Some("sip:10.0.0.2:9999"), "2", "sip:1@ex.test"),
        (Some("sip:10.0.0.2"), "1", "sip:1@ex.test"),
        (Some("sip:gw.example.com"), "any", "sip:1@ex.test"),
        (None, "1", "sip:1@10.0.0.5"),
        (None, "-1", "sip:1@10.0.0.5;transport=tcp"),
        (None, "any", "sip:1@[2001:db8::1]"),
        (None, "any", "sip:1@10.9.9.9"),
    ] {
        let mut extra = format!("X-G: {g}\r\n");
        if let Some(du) = du {
            extra.push_str(&format!("X-Du: {du}\r\n"));
        }
        add("goes", ruri, alice, &extra);
    }
    add("nogw", "sip:1@ex.test", alice, "");
    out
}

#[test]
fn drouting_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("drouting");
    // Four slashes: an absolute path for Kamailio's db_sqlite too.
    let url = format!("sqlite:///{}", dir.join("drouting.db").display());
    fill(&url);
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        BODY,
        &[("__DB__", &url)],
        &requests(),
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|a| a.contains("rc=1 ")), "{want:#?}");
    assert!(want.iter().any(|a| a.contains("rc=-1 ")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "drouting");
}
