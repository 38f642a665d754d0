//! Differential test against Kamailio itself, for module statsc: after a
//! few samples (`interval` 1 s, `items` 3), the `statsc.report` answers —
//! `list` and `diff` of every statistic, of one, with a limit, for an
//! unknown name, and the errors — run from the script with
//! `jsonrpc_exec`, compared in shape: names, how many items and their
//! indexes, which slots are empty (timestamp 0). Times and values are
//! written alike (they depend on when each server sampled).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::serde_json::Value as Json;
use sr_testkit::kamailio;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "jsonrpcs", "statsc"];

const BODY: &str = r#"#!ifdef SIPROUTER
modparam("jsonrpcs", "socket", "")
#!else
modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "__DIR__/rpc.fifo")
#!endif
modparam("jsonrpcs", "pretty_format", 0)
modparam("statsc", "interval", 1)
modparam("statsc", "items", 3)
modparam("statsc", "track", "req.received=rcv_requests;rpl.sent=sent_replies;")
request_route {
    if ($hdr(X-RPC) == $null) { sl_send_reply("200", "up"); exit; }
    statsc_reset();
    $var(r) = $rc;
    jsonrpc_exec("$hdr(X-RPC)");
    append_to_reply("X-R: $var(r) $jsonrpl(code) $jsonrpl(text) $jsonrpl(body)\r\n");
    sl_send_reply("200", "ok");
}
"#;

/// Times and values written alike (an empty slot's time stays 0).
fn shape(v: &mut Json) {
    match v {
        Json::Object(m) => {
            for (k, x) in m.iter_mut() {
                match k.as_str() {
                    "timestamp" if x.as_u64() != Some(0) => *x = Json::from("T"),
                    "value" => *x = Json::from("V"),
                    _ => shape(x),
                }
            }
        }
        Json::Array(a) => a.iter_mut().for_each(shape),
        _ => {}
    }
}

fn normal(line: &str) -> String {
    let Some(i) = line.find(" {") else {
        return line.to_string();
    };
    match sr_sdk::serde_json::from_str::<Json>(&line[i + 1..]) {
        Ok(mut v) => {
            shape(&mut v);
            format!("{} {v}", &line[..i])
        }
        Err(_) => line.to_string(),
    }
}

#[test]
fn statsc_reports_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("statsc");
    let body = BODY.replace("__DIR__", &dir.display().to_string());
    let docs = [
        r#"{"jsonrpc":"2.0","method":"statsc.report","params":["list"],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"statsc.report","params":["diff"],"id":2}"#,
        r#"{"jsonrpc":"2.0","method":"statsc.report","params":["list","req.received"],"id":3}"#,
        r#"{"jsonrpc":"2.0","method":"statsc.report","params":["diff","all",1],"id":4}"#,
        r#"{"jsonrpc":"2.0","method":"statsc.report","params":["list","nope"],"id":5}"#,
        r#"{"jsonrpc":"2.0","method":"statsc.report","params":["sum"],"id":6}"#,
        r#"{"jsonrpc":"2.0","method":"statsc.report","id":7}"#,
        r#"{"jsonrpc":"2.0","method":"statsc.report","params":["list","shm.used",9],"id":8}"#,
    ];
    let reqs: Vec<(String, String)> = docs
        .iter()
        .enumerate()
        .map(|(n, d)| {
            let call = format!("sc{n}");
            (
                call.clone(),
                kamailio::options(&call, &format!("X-RPC: {d}\r\n")),
            )
        })
        .collect();
    let cfg = kamailio::head(MODULES) + &body;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let peer = sr_testkit::UdpPeer::new();
        kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
        // Two samples or more taken.
        std::thread::sleep(Duration::from_millis(2600));
        kamailio::answers(&peer, srv, &reqs, &["X-R"])
    });
    // siprouter's samples are the statistic's values: the probe requests
    // were received before the samples were taken.
    let raw = &got[2][got[2].find(" {").unwrap() + 1..];
    let v: Json = sr_sdk::serde_json::from_str(raw).unwrap();
    let first = &v["result"]["stats"][0]["data"][0]["value"];
    assert!(first.as_i64().is_some_and(|n| n >= 1), "{v}");
    let want: Vec<String> = want.iter().map(|l| normal(l)).collect();
    let got: Vec<String> = got.iter().map(|l| normal(l)).collect();
    assert!(want[0].contains("req.received"), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "statsc");
}
