//! Differential test against Kamailio itself, for the sqlops module: one
//! SQLite file (read by Kamailio's db_sqlite and by siprouter's), one
//! configuration, the same queries to both (each request carries its SQL),
//! and every answer compared: return codes, `$dbr` rows, columns, column
//! names and cells with their types (through `{sql.val}`, which quotes
//! strings and leaves integers bare), `sql_pvquery` into a `$var` and an
//! `$avp`, `sql_xquery` rows and fields, `sql_result_free`, and the
//! `{sql.val*}` transformations on odd strings and nulls.
//!
//! Reals are left out: Kamailio 5.6's sqlops gives `$null` for them,
//! siprouter their text (docs/modules/sqlops.md).
//!
//! Without Kamailio and its SQLite module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

/// The configuration after its head (`kamailio::head`).
const BODY: &str = r#"modparam("sqlops", "sqlcon", "ca=>__DB__")
modparam("sqlops", "sqlres", "ra")
request_route {
    if ($hdr(X-Q) == $null) { sl_send_reply("200", "up"); exit; }
    $var(rc) = sql_query("ca", "$hdr(X-Q)", "ra");
    $var(i) = 1;
    $var(s) = "1";
    append_to_reply("X-R: rc=$var(rc) rows=$dbr(ra=>rows) cols=$dbr(ra=>cols) c0=$dbr(ra=>colname[0]) c1=$dbr(ra=>colname[1]) c9=$dbr(ra=>colname[9]) v00=$(dbr(ra=>[0,0]){sql.val}) v01=$(dbr(ra=>[0,1]){sql.val}) v02=$(dbr(ra=>[0,2]){sql.val}) v10=$(dbr(ra=>[1,0]){sql.val}) v11=$(dbr(ra=>[$var(i),$var(i)]){sql.val.int}) v12=$(dbr(ra=>[1,2]){sql.val.str}) vs=$dbr(ra=>[$var(s),0]) oob=$dbr(ra=>[7,0])\r\n");
    if ($hdr(X-Two) != $null) {
        $var(rc2) = sql_query("ca", "$hdr(X-Q)");
        append_to_reply("X-Two: $var(rc2)\r\n");
    }
    if ($hdr(X-Free) != $null) {
        sql_result_free("ra");
        append_to_reply("X-Free: rows=$dbr(ra=>rows) v00=$dbr(ra=>[0,0])\r\n");
    }
    if ($hdr(X-PQ) != $null) {
        $var(a) = "unset";
        $var(prc) = sql_pvquery("ca", "$hdr(X-PQ)", "$var(a), $avp(b)");
        append_to_reply("X-P: rc=$var(prc) a=$(var(a){sql.val}) b0=$(avp(b)[0]{sql.val}) b1=$(avp(b)[1]{sql.val}) b2=$(avp(b)[2]{sql.val})\r\n");
    }
    if ($hdr(X-XQ) != $null) {
        $var(xrc) = sql_xquery("ca", "$hdr(X-XQ)", "xr");
        append_to_reply("X-X: rc=$var(xrc) id0=$(xavp(xr=>id){sql.val}) name0=$(xavp(xr=>name){sql.val}) id1=$(xavp(xr[1]=>id){sql.val}) name1=$(xavp(xr[1]=>name){sql.val}) id2=$(xavp(xr[2]=>id){sql.val})\r\n");
    }
    if ($hdr(X-T) != $null) {
        append_to_reply("X-T: $(hdr(X-T){sql.val}) $(hdr(X-T){sql.val.int}) $(hdr(X-T){sql.val.str}) n=$(avp(nope){sql.val}) ni=$(avp(nope){sql.val.int}) ns=$(avp(nope){sql.val.str}) i=$(var(i){sql.val.str})\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

fn fill(path: &std::path::Path) {
    let sql = "CREATE TABLE t (id INTEGER, name VARCHAR(32), big BIGINT, note TEXT, ts DATETIME, num NUMERIC, u);
INSERT INTO t VALUES (1, 'alice', 5000000000, 'it''s \"q\" \\x', 2460000.5, 12, 'first');
INSERT INTO t VALUES (2, NULL, 7, '', NULL, 3, 12);
INSERT INTO t VALUES (3, '12abc', -5, 'plain', NULL, 1, NULL);
INSERT INTO t VALUES (2147483648, 'big', 2147483648, 'x', NULL, 0, 'y');
CREATE TABLE s (k INTEGER, v TEXT);";
    let status = std::process::Command::new("sqlite3")
        .arg(path)
        .arg(sql)
        .status()
        .expect("sqlite3");
    assert!(status.success());
}

/// (label, query, extra headers)
fn cases() -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    vec![
        (
            "rows",
            "select id, name, big from t order by id",
            &["X-Two: 1"],
        ),
        ("one", "select name, id from t where id = 2", &[]),
        ("none", "select * from t where id = 99", &["X-Two: 1"]),
        ("count", "select count(*) from t", &[]),
        (
            "agg",
            "select count(*) as n, max(id), min(name) from t",
            &[],
        ),
        ("untyped", "select u, id from t order by id", &[]),
        (
            "untyped-null-first",
            "select u from t order by id desc",
            &[],
        ),
        ("notes", "select note, name from t order by id", &[]),
        ("bigint", "select big, id from t order by id", &[]),
        ("int32", "select id, big from t where id > 3", &[]),
        ("numeric", "select num, name from t order by id", &[]),
        ("datetime", "select ts, id from t where id = 1", &[]),
        (
            "intext",
            "select id, cast(name as integer) from t order by id",
            &[],
        ),
        ("literals", "select 'abc', 1+1, NULL, x'414243'", &[]),
        (
            "case",
            "select case when id = 1 then null else id end from t order by id",
            &[],
        ),
        ("union", "select 'x' union all select 5", &[]),
        ("alias", "select t.name as who from t where id = 1", &[]),
        ("syntax", "selekt 1", &["X-Two: 1"]),
        ("no-table", "select * from missing", &[]),
        ("two-stmts", "select 1; select 2", &[]),
        ("insert", "insert into s values (1, 'a')", &[]),
        ("insert2", "insert into s values (2, 'b')", &[]),
        ("update", "update s set v = 'c' where k = 2", &[]),
        ("read-s", "select k, v from s order by k", &[]),
        ("delete", "delete from s", &[]),
        ("update-none", "update s set v = 'd' where k = 9", &[]),
        ("free", "select id from t order by id", &["X-Free: 1"]),
        (
            "pvquery",
            "select 1",
            &["X-PQ: select name, id from t where id < 3 order by id"],
        ),
        (
            "pvquery-one",
            "select 1",
            &["X-PQ: select name, id from t where id = 1"],
        ),
        (
            "pvquery-none",
            "select 1",
            &["X-PQ: select name, id from t where id = 99"],
        ),
        (
            "pvquery-few-pvs",
            "select 1",
            &["X-PQ: select name, id, big from t where id = 1"],
        ),
        (
            "pvquery-null",
            "select 1",
            &["X-PQ: select name, big from t where id = 2"],
        ),
        ("pvquery-bad", "select 1", &["X-PQ: selekt"]),
        (
            "xquery",
            "select 1",
            &["X-XQ: select id, name from t order by id"],
        ),
        (
            "xquery-none",
            "select 1",
            &["X-XQ: select id, name from t where id = 99"],
        ),
        ("xquery-bad", "select 1", &["X-XQ: select nope from t"]),
        ("tr-plain", "select 1", &["X-T: abc"]),
        ("tr-quotes", "select 1", &["X-T: it's \"q\" \\x"]),
        ("tr-number-text", "select 1", &["X-T: 123"]),
    ]
}

fn requests() -> Vec<(String, String)> {
    cases()
        .into_iter()
        .enumerate()
        .map(|(n, (label, q, extra))| {
            let call = format!("sq{n}-{label}");
            let mut h = String::new();
            for e in extra {
                h.push_str(e);
                h.push_str("\r\n");
            }
            let text = kamailio::options(&call, &format!("X-Q: {q}\r\n{h}"));
            (call, text)
        })
        .collect()
}

#[test]
fn sqlops_matches_kamailio() {
    if !kamailio::available(&["sqlops", "db_sqlite", "sl", "pv", "textops"]) {
        return;
    }
    let dir = kamailio::fresh_dir("sqlops");
    let db = dir.join("sqlops.db");
    fill(&db);
    // Four slashes: an absolute path for Kamailio's db_sqlite too.
    let url = format!("sqlite:///{}", db.display());
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops", "db_sqlite", "sqlops"],
        BODY,
        &[("__DB__", &url)],
        &requests(),
        &["X-R", "X-Two", "X-Free", "X-P", "X-X", "X-T"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|a| a.contains("v00='alice'")), "{want:?}");
    kamailio::conclude(&dir, &want, &got, "sqlops");
}
