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
    if ($hdr(X-RPC) == "kept") {
        append_to_reply("X-C: kept $jsonrpl(code) $jsonrpl(text)\r\n");
        append_to_reply("X-B: $jsonrpl(body)\r\n");
        sl_send_reply("200", "ok");
        exit;
    }
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

const DOCS: &[&str] = &[
    r#"{"jsonrpc":"2.0","method":"dialplan.translate","params":[1,"0301234"],"id":1}"#,
    r#"{"jsonrpc":"2.0","method":"dialplan.translate","params":[1,"112"],"id":2}"#,
    // A message that runs nothing reads the worker's last answer.
    "kept",
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

/// Each document run through the script; its answer per line.
fn run_docs(srv: SocketAddr, docs: &[&str]) -> Vec<String> {
    let uac = UdpPeer::new();
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
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
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|a| {
        run_docs(a, DOCS)
    });
    assert!(want.iter().any(|l| l.contains("+49301234")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "rpc");
}

const MODULE_MODULES: &[&str] = &[
    "sl",
    "pv",
    "textops",
    "jsonrpcs",
    "kex",
    "tm",
    "db_sqlite",
    "htable",
    "dispatcher",
    "permissions",
    "domain",
    "cfgutils",
];

const MODULE_BODY: &str = r#"#!ifdef SIPROUTER
modparam("jsonrpcs", "socket", "")
#!else
modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "__DIR__/rpc.fifo")
#!endif
modparam("jsonrpcs", "pretty_format", 0)
modparam("htable", "htable", "t=>size=4;autoexpire=0;")
modparam("htable", "htable", "u=>size=2;")
modparam("dispatcher", "list_file", "__DIR__/dispatcher.list")
modparam("permissions", "db_url", "__DB__")
modparam("permissions", "load_backends", 1)
modparam("domain", "db_url", "__DB__")
modparam("cfgutils", "initial_probability", 15)
request_route {
    if ($hdr(X-RPC) == $null) { sl_send_reply("200", "up"); exit; }
    $var(r) = jsonrpc_exec("$hdr(X-RPC)");
    append_to_reply("X-C: $var(r) $jsonrpl(code) $jsonrpl(text)\r\n");
    append_to_reply("X-B: $jsonrpl(body)\r\n");
    sl_send_reply("200", "ok");
}
"#;

const MODULE_DOCS: &[&str] = &[
    r#"{"jsonrpc":"2.0","method":"htable.sets","params":["t","k1","v1"],"id":1}"#,
    r#"{"jsonrpc":"2.0","method":"htable.seti","params":["t","k2",7],"id":2}"#,
    r#"{"jsonrpc":"2.0","method":"htable.get","params":["t","k1"],"id":3}"#,
    r#"{"jsonrpc":"2.0","method":"htable.get","params":["t","k2"],"id":4}"#,
    r#"{"jsonrpc":"2.0","method":"htable.get","params":["t","nope"],"id":5}"#,
    r#"{"jsonrpc":"2.0","method":"htable.get","params":["zz","k1"],"id":6}"#,
    r#"{"jsonrpc":"2.0","method":"htable.dump","params":["t"],"id":7}"#,
    r#"{"jsonrpc":"2.0","method":"htable.listTables","id":8}"#,
    r#"{"jsonrpc":"2.0","method":"htable.stats","id":9}"#,
    r#"{"jsonrpc":"2.0","method":"htable.delete","params":["t","k1"],"id":10}"#,
    r#"{"jsonrpc":"2.0","method":"htable.dump","params":["t"],"id":11}"#,
    r#"{"jsonrpc":"2.0","method":"dispatcher.list","id":12}"#,
    r#"{"jsonrpc":"2.0","method":"dispatcher.set_state","params":["ip",1,"sip:127.0.0.1:5071"],"id":13}"#,
    r#"{"jsonrpc":"2.0","method":"dispatcher.list","id":14}"#,
    r#"{"jsonrpc":"2.0","method":"permissions.addressDump","id":15}"#,
    r#"{"jsonrpc":"2.0","method":"permissions.subnetDump","id":16}"#,
    r#"{"jsonrpc":"2.0","method":"permissions.trustedDump","id":17}"#,
    r#"{"jsonrpc":"2.0","method":"domain.dump","id":18}"#,
    r#"{"jsonrpc":"2.0","method":"cfgutils.get_gflags","id":19}"#,
    r#"{"jsonrpc":"2.0","method":"cfgutils.set_gflag","params":[5],"id":20}"#,
    r#"{"jsonrpc":"2.0","method":"cfgutils.get_gflags","id":21}"#,
    r#"{"jsonrpc":"2.0","method":"cfgutils.rand_get_prob","id":22}"#,
    r#"{"jsonrpc":"2.0","method":"tm.stats","id":23}"#,
];

fn fill_modules(url: &str, dir: &std::path::Path) {
    std::fs::write(
        dir.join("dispatcher.list"),
        "1 sip:127.0.0.1:5071 0 0 weight=50\n1 sip:127.0.0.1:5072;transport=tcp 2 5 duid=b\n2 sip:gw.example.com 0 0\n",
    )
    .unwrap();
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    let s = DbValue::str;
    for (grp, ip, mask, port, tag) in [
        (1, "10.0.0.1", 32, 0, "one"),
        (1, "192.168.0.0", 16, 5060, "lan"),
        (2, "203.0.113.7", 32, 0, ""),
    ] {
        c.insert(
            "address",
            &[
                ("grp", DbValue::Int(grp)),
                ("ip_addr", s(ip)),
                ("mask", DbValue::Int(mask)),
                ("port", DbValue::Int(port)),
                ("tag", s(tag)),
            ],
        )
        .unwrap();
    }
    c.insert(
        "trusted",
        &[
            ("src_ip", s("10.1.1.1")),
            ("proto", s("any")),
            ("from_pattern", s("^sip:.*@example.com$")),
            ("tag", s("peer")),
            ("priority", DbValue::Int(1)),
        ],
    )
    .unwrap();
    c.insert("domain", &[("domain", s("example.com")), ("did", s("d1"))])
        .unwrap();
    for d in ["example.org", "a.example.net", "sip.example.com"] {
        c.insert("domain", &[("domain", s(d))]).unwrap();
    }
    for (name, ty, value) in [("tier", 0, "3"), ("label", 2, "gold")] {
        c.insert(
            "domain_attrs",
            &[
                ("did", s("d1")),
                ("name", s(name)),
                ("type", DbValue::Int(ty)),
                ("value", s(value)),
            ],
        )
        .unwrap();
    }
}

#[test]
fn module_rpcs_match_kamailio() {
    if !kamailio::available(MODULE_MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("rpc-modules");
    let url = format!("sqlite:///{}", dir.join("rpc.db").display());
    fill_modules(&url, &dir);
    let cfg = (kamailio::head(MODULE_MODULES) + MODULE_BODY)
        .replace("__DB__", &url)
        .replace("__DIR__", &dir.display().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|a| {
        run_docs(a, MODULE_DOCS)
    });
    kamailio::conclude(&dir, &want, &got, "module rpcs");
}
