//! Differential test against Kamailio itself, for RPC answers: the script
//! runs JSON-RPC documents with `jsonrpc_exec` and returns `$jsonrpl`'s
//! code, text and body; both servers get the same documents and every
//! answer is compared (the bodies as JSON values, so that key order and
//! spacing do not count). Methods of dialplan (`dialplan.translate`,
//! `dialplan.dump` and their errors), statistics (`stats.get_statistics`)
//! and unknown methods and bad documents.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::db::{DbConn, DbValue};
use sr_sdk::serde_json::Value as Json;
use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl",
    "pv",
    "textops",
    "jsonrpcs",
    "kex",
    "db_sqlite",
    "dialplan",
    "statistics",
];

const BODY: &str = r#"#!ifdef SIPROUTER
modparam("jsonrpcs", "socket", "")
#!else
modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "__DIR__/rpc.fifo")
#!endif
modparam("jsonrpcs", "pretty_format", 0)
modparam("dialplan", "db_url", "__DB__")
modparam("dialplan", "attrs_pvar", "$avp(dpa)")
modparam("statistics", "variable", "hits")
modparam("statistics", "variable", "kept/no_reset")
request_route {
    if ($hdr(X-RPC) == $null) { sl_send_reply("200", "up"); exit; }
    update_stat("hits", "+2");
    $var(r) = jsonrpc_exec("$hdr(X-RPC)");
    append_to_reply("X-C: $var(r) $jsonrpl(code) $jsonrpl(text)\r\n");
    append_to_reply("X-B: $jsonrpl(body)\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn fill(url: &str) {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    for (dpid, pr, op, m, len, s, r, a) in [
        (1, 1, 1, "^0[1-9]", 0, "^0(.*)$", "+49\\1", "nat"),
        (1, 2, 0, "112", 0, "", "sos", "emergency"),
        (1, 3, 2, "9*", 4, "", "nine", ""),
        (2, 1, 1, ".", 0, "", "", "any"),
    ] {
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

/// The body as a JSON value printed with sorted keys (`<none>` when empty,
/// the text itself when it is not JSON).
fn canonical(body: &str) -> String {
    if body.trim().is_empty() {
        return "<none>".into();
    }
    match sr_sdk::serde_json::from_str::<Json>(body) {
        Ok(v) => v.to_string(),
        Err(_) => format!("not JSON: {body}"),
    }
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let uac = UdpPeer::new();
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let docs = [
        r#"{"jsonrpc":"2.0","method":"dialplan.translate","params":[1,"0301234"],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"dialplan.translate","params":[1,"112"],"id":2}"#,
        r#"{"jsonrpc":"2.0","method":"dialplan.translate","params":[1,"777"],"id":3}"#,
        r#"{"jsonrpc":"2.0","method":"dialplan.translate","params":[7,"0301"],"id":4}"#,
        r#"{"jsonrpc":"2.0","method":"dialplan.translate","params":[1],"id":5}"#,
        r#"{"jsonrpc":"2.0","method":"dialplan.translate","params":[2,"x"],"id":6}"#,
        r#"{"jsonrpc":"2.0","method":"dialplan.dump","params":[1],"id":7}"#,
        r#"{"jsonrpc":"2.0","method":"dialplan.dump","params":[9],"id":8}"#,
        r#"{"jsonrpc":"2.0","method":"stats.get_statistics","params":["script:"],"id":9}"#,
        r#"{"jsonrpc":"2.0","method":"stats.get_statistics","params":["hits"],"id":10}"#,
        r#"{"jsonrpc":"2.0","method":"stats.get_statistics","params":["kept"],"id":11}"#,
        r#"{"jsonrpc":"2.0","method":"dialplan.reload","id":14}"#,
        r#"{"jsonrpc":"2.0","method":"dialplan.reload","id":15}"#,
    ];
    let mut out = Vec::new();
    for (n, doc) in docs.iter().enumerate() {
        let call = format!("rpc{n}");
        let text = format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKrpc{n}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-RPC: {doc}\r\nContent-Length: 0\r\n\r\n",
            a = uac.addr()
        );
        uac.send(srv, &text);
        let line = match uac.recv_matching(Duration::from_secs(2), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        }) {
            Some(r) => format!(
                "{call}: {} {}",
                r.header("X-C").unwrap_or_default(),
                canonical(&r.header("X-B").unwrap_or_default())
            ),
            None => format!("{call}: nothing"),
        };
        out.push(line);
    }
    out
}

#[test]
fn rpc_answers_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("rpc");
    let url = format!("sqlite:///{}", dir.join("rpc.db").display());
    fill(&url);
    let cfg = (kamailio::head(MODULES) + BODY)
        .replace("__DB__", &url)
        .replace("__DIR__", &dir.display().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("+49301234")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "rpc");
}
