//! htable with a database on a real SQLite file: a table loaded at start,
//! changed by the script, reloaded over RPC (`htable.reload`, which drops
//! what the script added), counted (`htable.stats`), and written back at
//! shutdown with `dbmode=1` (every row replaced by the items, arrays
//! flattened, key type 0).

use sr_sdk::db::{DbConn, DbValue};
use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, UdpPeer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn rows(url: &str) -> Vec<String> {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    let r = c
        .query(
            "htable",
            &[],
            &["key_name", "key_type", "value_type", "key_value"],
            None,
        )
        .unwrap();
    let mut v: Vec<String> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|x| x.as_string().unwrap_or_else(|| format!("{x:?}")))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_database_table_loads_reloads_counts_and_is_written_back() {
    let dir = std::env::temp_dir().join(format!("sr-htdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("h.db").display());
    {
        let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
        for (n, kt, vt, v) in [
            ("a", 0, 0, "x"),
            ("b", 0, 1, "5"),
            ("arr", 1, 0, "p"),
            ("arr", 1, 0, "q"),
        ] {
            c.insert(
                "htable",
                &[
                    ("key_name", DbValue::str(n)),
                    ("key_type", DbValue::Int(kt)),
                    ("value_type", DbValue::Int(vt)),
                    ("key_value", DbValue::str(v)),
                ],
            )
            .unwrap();
        }
    }
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "db_sqlite"
loadmodule "htable"
modparam("htable", "db_url", "{url}")
modparam("htable", "htable", "t=>size=4;dbtable=htable;dbmode=1")
request_route {{
    $sht(t=>added) = "by script";
    $sht(t=>b) = $sht(t=>b) + 1;
    append_to_reply("X-R: a=$sht(t=>a) b=$sht(t=>b) arr=$sht(t=>arr[1]) size=$sht(t=>arr::size)\r\n");
    sl_send_reply("200", "ok");
}}
"#
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let ua = UdpPeer::new();
    let ask = |n: u32| {
        ua.send(
            srv.addr(),
            &sr_testkit::req(
                "OPTIONS",
                "sip:x@y",
                ua.addr(),
                &format!("h{n}"),
                &format!("h-{n}"),
                1,
                &[],
                "",
            ),
        );
        ua.recv_final(T).unwrap().header("X-R").unwrap()
    };
    assert_eq!(ask(1), "a=x b=6 arr=q size=2");
    let stats = srv.rpc("htable.stats", &[]).unwrap();
    assert_eq!(stats[0]["name"], "t");
    assert_eq!(stats[0]["slots"], 16);
    assert_eq!(stats[0]["all"], 6, "{stats}");
    // A reload is the database's content again: the script's item goes.
    assert_eq!(
        srv.rpc("htable.reload", &[json!("t")]).unwrap(),
        json!("Ok. Htable reloaded.")
    );
    assert_eq!(
        srv.rpc("htable.get", &[json!("t"), json!("added")]).ok(),
        None
    );
    assert!(srv.rpc("htable.reload", &[json!("nope")]).is_err());
    assert_eq!(ask(2), "a=x b=6 arr=q size=2");
    // At shutdown the table goes back to the database.
    drop(srv);
    assert_eq!(
        rows(&url),
        vec![
            "added|0|0|by script",
            "arr::size|0|1|2",
            "arr[0]|0|0|p",
            "arr[1]|0|0|q",
            "a|0|0|x",
            "b|0|1|6"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
