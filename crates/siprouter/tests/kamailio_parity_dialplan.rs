//! Differential test against Kamailio itself, for dialplan: one SQLite
//! file (siprouter's `dialplan` table, read by Kamailio's db_sqlite) with
//! rules of every match operator, match lengths, substitutions with
//! groups, `\0`, `\u`, escapes and pseudo-variables, replacements without
//! substitution, rules without replacement and outputs too long; the same
//! requests to both servers, and every answer compared: the return code
//! of `dp_translate` (each form of its parameters), `dp_match` and
//! `dp_replace`, the output variable, the attributes (`attrs_pvar`) and
//! the Request-URI. Two settings: `match_dynamic` 0 with attributes in an
//! AVP, and 1 (expressions with pseudo-variables built per message) with
//! attributes in a `$var`. Then a call through tm whose first branch
//! fails: `dp_translate` on the Request-URI in failure_route, with
//! `append_branch` 1 and 0, and what the second callee gets.
//!
//! Without Kamailio and its SQLite module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::db::{DbConn, DbValue};
use sr_testkit::{answer, kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

/// The configuration after its head (`kamailio::head`).
const BODY: &str = r#"modparam("dialplan", "db_url", "__DB__")
__PARAMS__
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-T);
    $var(id) = $(hdr(X-D){s.int});
    $var(sid) = $hdr(X-D);
    $var(in) = $hdr(X-I);
    $var(out) = "none";
    $var(at) = "unset";
    $avp(attrs) = "unset";
    $avp(o) = "none";
    $avp(pfx) = "44";
    $var(r) = "none";
    if ($var(t) == "tr") { $var(r) = dp_translate("$var(id)", "$var(in)/$var(out)"); }
    else if ($var(t) == "tr-def") { $var(r) = dp_translate("$var(id)"); }
    else if ($var(t) == "tr-avp") { $var(r) = dp_translate("$var(id)", "$hdr(X-I)/$avp(o)"); }
    else if ($var(t) == "tr-src") { $var(r) = dp_translate("$var(id)", "$var(in)"); }
    else if ($var(t) == "tr-ru") { $var(r) = dp_translate("$var(id)", "$var(in)/$ru"); }
    else if ($var(t) == "tr-sid") { $var(r) = dp_translate("$var(sid)", "$var(in)/$var(out)"); }
    else if ($var(t) == "tr-const") { $var(r) = dp_translate("2", "$var(in)/$var(out)"); }
    else if ($var(t) == "match") { $var(r) = dp_match("$var(id)", "$var(in)"); }
    else if ($var(t) == "match-sid") { $var(r) = dp_match("$var(sid)", "$var(in)"); }
    else if ($var(t) == "replace") { $var(r) = dp_replace("$var(id)", "$var(in)", "$var(out)"); }
    else if ($var(t) == "replace-ru") { $var(r) = dp_replace("$var(id)", "$rU", "$rU"); }
    append_to_reply("X-R: r=$var(r) out=$var(out) o=$avp(o) attrs=$avp(attrs) at=$var(at) ru=$ru\r\n");
    sl_send_reply("200", "ok");
}
"#;

/// `(dpid, pr, match_op, match_exp, match_len, subst_exp, repl_exp, attrs)`.
type RuleRow = (
    i32,
    i32,
    i32,
    &'static str,
    i32,
    &'static str,
    &'static str,
    &'static str,
);

const RULES: &[RuleRow] = &[
    (1, 1, 1, "^00[1-9]", 0, "^00(.*)$", "+\\1", "intl"),
    (1, 2, 1, "^0[1-9]", 0, "^0(.*)$", "+49\\1", "nat"),
    (1, 3, 0, "112", 0, "", "sip:sos@example.com", "emergency"),
    (1, 4, 2, "1??", 0, "", "", "short"),
    (1, 5, 1, "^[2-9]", 7, "^(.*)$", "+4930\\1", "local7"),
    (1, 6, 1, "^[2-9]", 0, "(.)(.)", "\\2\\1-\\0", "swap"),
    (1, 7, 1, "^x", 0, "^y(.*)", "\\1", "mismatch"),
    (1, 8, 1, "^\\+", 0, "^\\+(.*)", "00\\1", "plus"),
    (1, 9, 1, "^u", 0, "^u", "\\u", "uri"),
    (1, 10, 1, "^v", 0, "^v(.*)", "$fU-\\1", "pv"),
    (1, 11, 1, "^w", 0, "", "$fU-lit", "nosubst"),
    (1, 12, 1, "^esc", 0, "^esc(.*)", "a\\\\b\\1\\$", "esc"),
    (1, 13, 1, "^long", 0, "^long(.*)", "\\1\\1", "long"),
    (1, 14, 0, "Case", 0, "", "exact", "case"),
    (1, 15, 2, "[!0-9]*z", 0, "", "globbed", "glob"),
    (
        1,
        16,
        1,
        "^opt(a)?(b)",
        0,
        "^opt(a)?(b)",
        "[\\1][\\2]",
        "optional",
    ),
    (1, 17, 1, "^noattr", 0, "^noattr(.*)", "na\\1", ""),
    (1, 18, 1, "^same", 0, "^same", "same", "nochange"),
    (2, 1, 1, ".", 0, "", "any", "a0"),
    (2, 2, 1, ".", 3, "", "three", "a3"),
    (2, 3, 1, "^9", 4, "", "four9", "a4"),
    (3, 1, 1, "^$avp(pfx)", 0, "^$avp(pfx)(.*)$", "\\1", "dyn"),
    (3, 2, 1, "^1", 0, "^1(.*)$", "one\\1", "static"),
    (5, 1, 1, "^0", 0, "^0(.*)$", "49\\1", "retry"),
];

fn fill(url: &str) {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    for &(dpid, pr, op, m, len, s, r, a) in RULES {
        c.insert(
            "dialplan",
            &[
                ("dpid", DbValue::Int(dpid)),
                ("pr", DbValue::Int(pr)),
                ("match_op", DbValue::Int(op)),
                ("match_exp", DbValue::str(m)),
                ("match_len", DbValue::Int(len)),
                ("subst_exp", DbValue::str(s)),
                ("repl_exp", DbValue::str(r)),
                ("attrs", DbValue::str(a)),
            ],
        )
        .unwrap();
    }
}

fn requests() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut add = |t: &str, dpid: &str, input: &str, ruri: &str| {
        n += 1;
        let call = format!("dp{n}-{t}");
        out.push((
            call.clone(),
            format!(
                "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKdp{n}\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-T: {t}\r\nX-D: {dpid}\r\nX-I: {input}\r\nContent-Length: 0\r\n\r\n"
            ),
        ));
    };
    let long = format!("long{}", "9".repeat(70));
    let inputs: Vec<&str> = vec![
        "0049301234",
        "0301234",
        "112",
        "123",
        "2345678",
        "23456",
        "x1",
        "+49301",
        "u1",
        "v77",
        "w1",
        "esc9",
        &long,
        "long12",
        "Case",
        "case",
        "abz",
        "1bz",
        "optb",
        "optab",
        "noattr5",
        "same",
        "zzz",
    ];
    for t in ["tr", "match", "replace"] {
        for i in &inputs {
            add(t, "1", i, "sip:bob@example.com");
        }
    }
    for i in ["123", "1234", "9234", "12", "99999"] {
        add("tr", "2", i, "sip:bob@example.com");
        add("tr-const", "0", i, "sip:bob@example.com");
    }
    for i in ["44123", "4", "155", "44"] {
        add("tr", "3", i, "sip:bob@example.com");
        add("match", "3", i, "sip:bob@example.com");
    }
    for (t, d, i, ru) in [
        ("tr-def", "1", "-", "sip:0301234@example.com;user=phone"),
        ("tr-def", "1", "-", "sip:112@example.com"),
        ("tr-def", "1", "-", "sip:999@example.com"),
        ("tr-def", "1", "-", "sip:example.com"),
        ("tr-avp", "1", "0049301234", "sip:bob@example.com"),
        ("tr-avp", "1", "123", "sip:bob@example.com"),
        ("tr-src", "1", "0301234", "sip:bob@example.com"),
        ("tr-ru", "1", "112", "sip:bob@example.com"),
        ("tr-ru", "1", "0301234", "sip:bob@example.com"),
        ("tr-sid", "1", "0301234", "sip:bob@example.com"),
        ("match-sid", "1", "0301234", "sip:bob@example.com"),
        ("replace-ru", "1", "-", "sip:00441234@example.com"),
        ("replace-ru", "1", "-", "sip:123@example.com"),
        ("tr", "99", "0301234", "sip:bob@example.com"),
        ("match", "99", "0301234", "sip:bob@example.com"),
        ("replace", "99", "0301234", "sip:bob@example.com"),
        ("tr", "1", "", "sip:bob@example.com"),
        ("match", "1", "", "sip:bob@example.com"),
    ] {
        add(t, d, i, ru);
    }
    out
}

fn check(setting: &str, params: &str) {
    let dir = kamailio::fresh_dir(&format!("dialplan-{setting}"));
    // Four slashes: an absolute path for Kamailio's db_sqlite too.
    let url = format!("sqlite:///{}", dir.join("dialplan.db").display());
    fill(&url);
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops", "db_sqlite", "dialplan"],
        BODY,
        &[("__DB__", &url), ("__PARAMS__", params)],
        &requests(),
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(
        want.iter().any(|a| a.contains("r=1 ")),
        "{setting}: {want:?}"
    );
    kamailio::conclude(&dir, &want, &got, setting);
}

#[test]
fn dialplan_matches_kamailio() {
    if !kamailio::available(&["dialplan", "db_sqlite", "sl", "pv", "textops"]) {
        return;
    }
    check(
        "static",
        r#"modparam("dialplan", "attrs_pvar", "$avp(attrs)")"#,
    );
    check(
        "dynamic",
        r#"modparam("dialplan", "match_dynamic", 1)
modparam("dialplan", "attrs_pvar", "$var(at)")"#,
    );
}

/// A stateful proxy: the first branch to `X-First` (`$du`), and in
/// failure_route the Request-URI's user translated by dialplan 5 and
/// `t_relay()` again, `$du` untouched: the Request-URI (written, so
/// usable again) goes to `X-First` once more, and the branch dialplan
/// appends (no `$du`) to the Request-URI's host, the second callee.
const FAILURE_BODY: &str = r#"modparam("dialplan", "db_url", "__DB__")
__PARAMS__
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "up"); exit; }
    if (is_method("ACK")) { exit; }
    $du = $hdr(X-First);
    t_on_failure("retry");
    t_relay();
    exit;
}
failure_route[retry] {
    $var(r) = dp_translate("5");
    xlog("L_INFO", "dp_translate: $var(r) $ru\n");
    t_relay();
}
"#;

/// Every INVITE a callee gets in 1.5 s (after `first`), each answered 486;
/// a retransmission (the same Via, sent again when the machine was slow to
/// answer within T1) is answered again but not counted.
fn invites(uas: &UdpPeer, first: Option<sr_testkit::Reply>) -> Vec<String> {
    let ruri = |r: &sr_testkit::Reply| r.msg.msg().request_uri().map_or("?", |u| u.raw).to_string();
    let mut got = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut next = first;
    while let Some(r) = next
        .take()
        .or_else(|| uas.recv_method("INVITE", Duration::from_millis(1500)))
    {
        let via = r.header("Via").unwrap_or_default();
        let tag = match seen.iter().find(|(v, _)| *v == via) {
            Some((_, tag)) => tag.clone(),
            None => {
                got.push(ruri(&r));
                let tag = format!("t{}", got.len());
                seen.push((via, tag.clone()));
                tag
            }
        };
        uas.send(r.from, &answer(&r, 486, "Busy Here", &tag, &[]));
    }
    got
}

fn failure_scenario(srv: SocketAddr) -> Vec<String> {
    let (uac, uas1, uas2) = (UdpPeer::new(), UdpPeer::new(), UdpPeer::new());
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (n, user) in ["0301", "777"].iter().enumerate() {
        let call = format!("fr-{n}");
        let invite = format!(
            "INVITE sip:{user}@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKfr{n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:{user}@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nX-First: sip:{a1}\r\nContent-Length: 0\r\n\r\n",
            a = uac.addr(),
            a1 = uas1.addr(),
            b = uas2.addr(),
        );
        uac.send(srv, &invite);
        let first = uas1.recv_method("INVITE", Duration::from_secs(3));
        let at_first = invites(&uas1, first);
        let at_second = invites(&uas2, None);
        out.push(format!(
            "{call} first callee: {at_first:?} second callee: {at_second:?}"
        ));
        match uac.recv_final(Duration::from_secs(3)) {
            Some(r) => {
                out.push(format!("{call} caller: {:?}", r.status()));
                let to = r.header("To").unwrap_or_default();
                uac.send(
                    srv,
                    &format!(
                        "ACK sip:{user}@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKfr{n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                        a = uac.addr(),
                        b = uas2.addr(),
                    ),
                );
            }
            None => out.push(format!("{call} caller: nothing")),
        }
    }
    let c = uas2.addr().to_string();
    out.into_iter().map(|l| l.replace(&c, "C")).collect()
}

#[test]
fn dialplan_in_failure_route_matches_kamailio() {
    const MODULES: &[&str] = &["sl", "pv", "textops", "xlog", "tm", "db_sqlite", "dialplan"];
    if !kamailio::available(MODULES) {
        return;
    }
    for (setting, params) in [
        ("append", ""),
        ("no-append", r#"modparam("dialplan", "append_branch", 0)"#),
    ] {
        let dir = kamailio::fresh_dir(&format!("dialplan-fr-{setting}"));
        let url = format!("sqlite:///{}", dir.join("dialplan.db").display());
        fill(&url);
        let cfg = (kamailio::head(MODULES) + FAILURE_BODY)
            .replace("__DB__", &url)
            .replace("__PARAMS__", params);
        let (want, got) =
            kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &failure_scenario);
        assert!(
            want.iter()
                .any(|l| l.contains("first callee: [\"sip:0301@C\", \"sip:49301@C\"]")),
            "{setting}: {want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, setting);
    }
}
