//! Differential test against Kamailio itself, for avpops: the same
//! `usr_preferences` rows (SQLite) and script run by Kamailio 5.6 and by
//! siprouter in turn, with `use_domain` 0 and 1, and what the script
//! reports compared: `avp_db_load` by URI, user, domain, UUID (from an
//! AVP and a constant), one attribute and all (`*`), integer names and
//! values; `avp_db_store` (which, with `use_domain` 0, writes a NULL
//! domain that the table refuses — as in Kamailio) and `avp_db_delete`;
//! `is_avp_set`, `avp_check` (operators, `g` and `i` flags, AVP operands),
//! `avp_copy`, `avp_op`, `avp_delete`, `avp_pushto`, `avp_subst` (in
//! place, to another AVP, all values, back references) and
//! `avp_db_query` (named and numbered AVPs, integer columns, no rows).
//!
//! Without Kamailio and its avpops and db_sqlite modules installed the
//! test prints a notice and passes, unless `SR_KAMAILIO_REQUIRED=1`
//! (`.ci/run` sets it).

use sr_sdk::db::{DbConn, DbValue};
use sr_testkit::kamailio;
use sr_testkit::UdpPeer;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "db_sqlite", "avpops"];

const BODY: &str = r#"
modparam("avpops", "db_url", "__DB__")
modparam("avpops", "avp_table", "usr_preferences")
modparam("avpops", "use_domain", __UD__)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(r) = "";
    if ($hdr(X-T) == "load") {
        $var(a) = avp_db_load("$fu", "$avp(fwd)");
        $var(b) = avp_db_load("$fu", "$avp(cnt)");
        $var(c) = avp_db_load("$fu", "$avp(nope)");
        $avp(uuid) = "u2";
        $var(d) = avp_db_load("$avp(uuid)", "$avp(fwd)");
        $var(e) = avp_db_load("$fu/domain", "$avp(dom)");
        $var(f) = avp_db_load("$fu/username", "$avp(i:7)");
        $var(g) = avp_db_load("$fu", "$avp(i:8)");
        $var(h) = avp_db_load("u1", "$avp(fwd)");
        $var(r) = "a=" + $var(a) + " b=" + $var(b) + " c=" + $var(c) + " d=" + $var(d) + " e=" + $var(e) + " f=" + $var(f) + " g=" + $var(g) + " h=" + $var(h) + " fwd=" + $(avp(fwd)[*]) + " cnt=" + $avp(cnt) + " cntint=" + ($avp(cnt) + 1) + " dom=" + $avp(dom) + " i7=" + $avp(i:7) + " i8=" + ($avp(i:8) + 1);
    }
    if ($hdr(X-T) == "all") {
        $var(a) = avp_db_load("$fu", "*");
        $var(r) = "a=" + $var(a) + " fwd=" + $(avp(fwd)[*]) + " cnt=" + $avp(cnt) + " i7=" + $avp(i:7);
    }
    if ($hdr(X-T) == "store") {
        $avp(pref) = "p1"; $avp(pref) = "p2"; $avp(n) = 5;
        $var(a) = avp_db_store("$tu", "$avp(pref)");
        $var(b) = avp_db_store("$tu", "$avp(n)");
        $var(c) = avp_db_store("$tu", "$avp(none)");
        $var(d) = avp_db_load("$tu", "$avp(pref2)");
        $var(e) = avp_db_load("$tu", "*");
        $var(f) = avp_db_delete("$tu", "$avp(pref)");
        $var(g) = avp_db_delete("$tu", "$avp(none)");
        $var(h) = avp_db_load("$tu", "*");
        $var(r) = "a=" + $var(a) + " b=" + $var(b) + " c=" + $var(c) + " d=" + $var(d) + " e=" + $var(e) + " pref=" + $(avp(pref)[*]) + " n=" + $(avp(n)[*]) + " f=" + $var(f) + " g=" + $var(g) + " h=" + $var(h);
    }
    if ($hdr(X-T) == "ops") {
        $avp(x) = "one"; $avp(x) = "two"; $avp(y) = 3; $avp(y) = 4;
        $var(a) = is_avp_set("$avp(x)");
        $var(b) = is_avp_set("$avp(nope)");
        $var(c) = is_avp_set("$avp(y)/n");
        $var(d) = is_avp_set("$avp(x)/n");
        $var(e) = is_avp_set("$avp(x)/s");
        $var(f) = avp_check("$avp(x)", "eq/s:two");
        $var(g) = avp_check("$avp(x)", "eq/s:one");
        $var(h) = avp_check("$avp(x)", "eq/s:one/g");
        $var(i) = avp_check("$avp(y)", "gt/i:3");
        $var(j) = avp_check("$avp(x)", "re/^t.o$");
        $var(k) = avp_check("$avp(x)", "eq/s:TWO/i");
        $var(l) = avp_check("$avp(y)", "eq/$avp(y)");
        $var(m2) = avp_check("$avp(y)", "lt/i:4");
        avp_copy("$avp(x)", "$avp(cx)");
        avp_copy("$avp(x)", "$avp(cg)/g");
        $var(cg) = $(avp(cg)[*]);
        avp_op("$avp(y)", "add/i:10");
        $var(m) = $(avp(y)[*]);
        avp_delete("$avp(x)");
        $var(n) = $(avp(x)[*]);
        avp_delete("$avp(cg)/g");
        avp_pushto("$ru/username", "$avp(cx)");
        $var(r) = "a=" + $var(a) + " b=" + $var(b) + " c=" + $var(c) + " d=" + $var(d) + " e=" + $var(e) + " f=" + $var(f) + " g=" + $var(g) + " h=" + $var(h) + " i=" + $var(i) + " j=" + $var(j) + " k=" + $var(k) + " l=" + $var(l) + " m2=" + $var(m2) + " cx=" + $(avp(cx)[*]) + " cgall=" + $var(cg) + " m=" + $var(m) + " n=" + $var(n) + " cg=" + $(avp(cg)[*]) + " ru=" + $ru;
    }
    if ($hdr(X-T) == "subst") {
        $avp(s) = "Hello World"; $avp(s) = "hello there";
        $var(a) = avp_subst("$avp(s)", "/hello/bye/i");
        $var(sa) = $(avp(s)[*]);
        $var(b) = avp_subst("$avp(s)/$avp(d)", "/l/L/g");
        $var(c) = avp_subst("$avp(s)/g", "/e/E/");
        $var(d) = avp_subst("$avp(nope)", "/a/b/");
        $var(e) = avp_subst("$avp(s)", "/zzz/y/");
        $var(f) = avp_subst("$avp(s)/$avp(w)", "/(H)(E)/\\2\\1/");
        $var(g) = avp_db_query("select attribute, value from usr_preferences where username='alice' order by id", "$avp(qa);$avp(qv)");
        $var(h) = avp_db_query("select value from usr_preferences where username='nobody'", "$avp(qn)");
        $var(i) = avp_db_query("select type, value from usr_preferences where attribute='cnt'", "$avp(qt);$avp(qw)");
        $var(u) = "dom";
        $var(j) = avp_db_query("select value from usr_preferences where attribute='$var(u)'");
        avp_print();
        $var(r) = "a=" + $var(a) + " sa=" + $var(sa) + " b=" + $var(b) + " d1=" + $(avp(d)[*]) + " s1=" + $(avp(s)[*]) + " c=" + $var(c) + " d=" + $var(d) + " e=" + $var(e) + " f=" + $var(f) + " w=" + $avp(w) + " g=" + $var(g) + " qa=" + $(avp(qa)[*]) + " qv=" + $(avp(qv)[*]) + " h=" + $var(h) + " i=" + $var(i) + " qt1=" + ($avp(qt) + 1) + " qw1=" + ($avp(qw) + 1) + " j=" + $var(j) + " i1=" + $avp(i:1);
    }
    append_to_reply("X-R: $var(r)\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn fill(url: &str) {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    let _ = c.delete("usr_preferences", &[]);
    for (uuid, user, dom, attr, ty, val) in [
        ("u1", "alice", "ex.test", "fwd", 0, "sip:bob@ex.test"),
        ("u1", "alice", "ex.test", "fwd", 0, "sip:carol@ex.test"),
        ("", "alice", "ex.test", "cnt", 1, "42"),
        ("", "alice", "other.test", "fwd", 0, "sip:x@other"),
        ("u2", "", "", "fwd", 0, "sip:uuid@ex.test"),
        ("", "", "ex.test", "dom", 0, "dval"),
        ("", "alice", "ex.test", "7", 2, "intname"),
        ("", "alice", "ex.test", "8", 3, "88"),
    ] {
        let s = DbValue::str;
        c.insert(
            "usr_preferences",
            &[
                ("uuid", s(uuid)),
                ("username", s(user)),
                ("domain", s(dom)),
                ("attribute", s(attr)),
                ("type", DbValue::Int(ty)),
                ("value", s(val)),
            ],
        )
        .unwrap();
    }
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    ["load", "all", "store", "ops", "subst"]
        .iter()
        .map(|t| {
            peer.send(
                srv,
                &format!(
                    "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{t}\r\nFrom: <sip:alice@ex.test>;tag=1\r\nTo: <sip:dave@ex.test>\r\nCall-ID: c{t}\r\nCSeq: 1 OPTIONS\r\nX-T: {t}\r\nContent-Length: 0\r\n\r\n",
                    peer.addr()
                ),
            );
            let r = peer.recv(Duration::from_secs(3));
            format!(
                "{t}: {}",
                r.and_then(|r| r.header("X-R")).unwrap_or_else(|| "no answer".into())
            )
        })
        .collect()
}

#[test]
fn avpops_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    for ud in ["0", "1"] {
        let dir = kamailio::fresh_dir(&format!("avpops{ud}"));
        let url = format!("sqlite:///{}", dir.join("avpops.db").display());
        let cfg = (kamailio::head(MODULES) + BODY)
            .replace("__DB__", &url)
            .replace("__UD__", ud);
        let (want, got) =
            kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| fill(&url), &scenario);
        assert!(want[0].contains("a=1"), "Kamailio loaded: {want:#?}");
        kamailio::conclude(&dir, &want, &got, &format!("avpops use_domain={ud}"));
    }
}
