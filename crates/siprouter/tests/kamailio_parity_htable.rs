//! Differential test against Kamailio itself, for htable's database
//! tables, iterators and locks: one SQLite file (siprouter's `htable`
//! table, read by Kamailio's db_sqlite) with plain items, arrays, integer
//! values written as text, duplicates and expiring rows; one
//! configuration with an `event_route[htable:mod-init]`; the same
//! requests to both servers, every answer compared: the items as loaded,
//! whole tables walked with an iterator (in Kamailio's slot order),
//! iterators that change and remove items, and `sht_lock`/`sht_unlock`.
//!
//! Without Kamailio and its SQLite module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::db::{DbConn, DbValue};
use sr_testkit::kamailio;

/// The configuration after its head (`kamailio::head`).
const BODY: &str = r#"modparam("htable", "db_url", "__DB__")
modparam("htable", "db_expires", 1)
modparam("htable", "htable", "a=>size=4;dbtable=htable;")
modparam("htable", "htable", "e=>size=3;autoexpire=3600;dbtable=htable;")
modparam("htable", "htable", "w=>size=2;")
modparam("htable", "htable", "m=>size=5;")
event_route[htable:mod-init] {
    $sht(m=>boot) = "yes";
    $sht(m=>n) = 7;
}
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-T);
    if ($var(t) == "get") {
        $var(k) = $hdr(X-K);
        append_to_reply("X-R: a=$sht(a=>$var(k)) e=$sht(e=>$var(k)) m=$sht(m=>$var(k))\r\n");
    } else if ($var(t) == "walk") {
        $var(out) = "";
        $var(rc) = sht_iterator_start("i1", "$hdr(X-K)");
        while (sht_iterator_next("i1")) {
            $var(out) = $var(out) + $shtitkey(i1) + "=" + $shtitval(i1) + ";";
        }
        $var(again) = sht_iterator_next("i1");
        $var(k0) = $shtitkey(i1);
        sht_iterator_end("i1");
        $var(gone) = sht_iterator_end("i1");
        append_to_reply("X-R: rc=$var(rc) $var(out) again=$var(again) k0=$var(k0) gone=$var(gone)\r\n");
    } else if ($var(t) == "fill") {
        $var(i) = 0;
        while ($var(i) < 12) {
            $sht(w=>key$var(i)) = $var(i);
            $var(i) = $var(i) + 1;
        }
        $sht(w=>Key3) = "upper";
        append_to_reply("X-R: filled\r\n");
    } else if ($var(t) == "change") {
        sht_iterator_start("i2", "w");
        $var(log) = "";
        while (sht_iterator_next("i2")) {
            if ($shtitkey(i2) =~ "^key[13579]$") {
                $var(r) = sht_iterator_rm("i2");
                $var(log) = $var(log) + "rm" + $var(r) + ";";
            } else if ($shtitkey(i2) == "key4") {
                sht_iterator_sets("i2", "four");
            } else if ($shtitkey(i2) == "key6") {
                sht_iterator_seti("i2", 66);
            }
        }
        sht_iterator_end("i2");
        $var(bad) = sht_iterator_sets("i2", "x");
        append_to_reply("X-R: $var(log) bad=$var(bad) k4=$sht(w=>key4) k6=$sht(w=>key6) k5=$sht(w=>key5) k1=$sht(w=>key1) k0=$sht(w=>key0)\r\n");
    } else if ($var(t) == "lock") {
        $var(a) = sht_lock("w=>key2");
        $var(b) = sht_lock("w=>key2");
        $sht(w=>key2) = "locked";
        $var(c) = sht_unlock("w=>key2");
        $var(d) = sht_unlock("w=>key2");
        $var(e) = sht_lock("nope=>x");
        append_to_reply("X-R: $var(a) $var(b) $var(c) $var(d) $var(e) $sht(w=>key2)\r\n");
    } else if ($var(t) == "match") {
        $var(a) = sht_match_name("w", "eq", "key2");
        $var(b) = sht_match_name("w", "sw", "zz");
        $var(c) = sht_match_str_value("w", "re", "^lock");
        $var(d) = sht_match_str_value("w", "ne", "x");
        append_to_reply("X-R: $var(a) $var(b) $var(c) $var(d)\r\n");
    } else if ($var(t) == "many") {
        $var(r1) = sht_iterator_start("j1", "w");
        $var(r2) = sht_iterator_start("j2", "w");
        $var(r3) = sht_iterator_start("j3", "w");
        $var(r4) = sht_iterator_start("j4", "w");
        $var(r5) = sht_iterator_start("j5", "w");
        $var(r6) = sht_iterator_start("j1", "nosuch");
        $var(r7) = sht_iterator_next("j1");
        $var(r8) = sht_iterator_next("zz");
        sht_iterator_end("j1");
        sht_iterator_end("j2");
        sht_iterator_end("j3");
        sht_iterator_end("j4");
        append_to_reply("X-R: $var(r1) $var(r2) $var(r3) $var(r4) $var(r5) $var(r6) $var(r7) $var(r8)\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

fn fill(url: &str) {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (name, kt, vt, val, exp) in [
        ("plain", 0, 0, "hello", 0),
        ("num", 0, 1, "12abc", 0),
        ("neg", 0, 1, "-7", 0),
        ("words", 0, 1, "abc", 0),
        ("big", 0, 1, "99999999999", 0),
        ("arr", 1, 0, "x", 0),
        ("arr", 1, 0, "y", 0),
        ("arr", 1, 1, "3", 0),
        ("dup", 0, 0, "one", 0),
        ("dup", 0, 0, "two", 0),
        ("Case", 0, 0, "upper", 0),
        ("case", 0, 0, "lower", 0),
        ("past", 0, 0, "gone", now - 100),
        ("future", 0, 0, "later", now + 500),
        ("sipdomain.example.com", 0, 0, "long key", 0),
    ] {
        c.insert(
            "htable",
            &[
                ("key_name", DbValue::str(name)),
                ("key_type", DbValue::Int(kt)),
                ("value_type", DbValue::Int(vt)),
                ("key_value", DbValue::str(val)),
                ("expires", DbValue::BigInt(exp)),
            ],
        )
        .unwrap();
    }
}

fn requests() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut add = |t: &str, k: &str| {
        n += 1;
        let call = format!("ht{n}-{t}");
        out.push((
            call.clone(),
            kamailio::options(&call, &format!("X-T: {t}\r\nX-K: {k}\r\n")),
        ));
    };
    for k in [
        "plain",
        "num",
        "neg",
        "words",
        "big",
        "arr[0]",
        "arr[1]",
        "arr[2]",
        "arr::size",
        "dup",
        "Case",
        "case",
        "past",
        "future",
        "boot",
        "n",
        "missing",
    ] {
        add("get", k);
    }
    for t in ["a", "e", "m", "w", "nosuch"] {
        add("walk", t);
    }
    add("fill", "");
    add("walk", "w");
    add("change", "");
    add("walk", "w");
    add("lock", "");
    add("match", "");
    add("many", "");
    out
}

#[test]
fn htable_database_iterators_and_locks_match_kamailio() {
    if !kamailio::available(&["htable", "db_sqlite", "sl", "pv", "textops"]) {
        return;
    }
    let dir = kamailio::fresh_dir("htable");
    // Four slashes: an absolute path for Kamailio's db_sqlite too.
    let url = format!("sqlite:///{}", dir.join("htable.db").display());
    fill(&url);
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops", "db_sqlite", "htable"],
        BODY,
        &[("__DB__", &url)],
        &requests(),
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|a| a.contains("a=hello")), "{want:?}");
    kamailio::conclude(&dir, &want, &got, "htable");
}
