//! Differential test against Kamailio itself, for the json module and its
//! `{json.parse,...}` transformation: JSON texts in request bodies (nested
//! objects and arrays, single quotes, comments, a trailing comma, literals
//! in capitals, `null` members, big and negative integers, numbers with a
//! fraction or an exponent, `NaN`, escapes and `\u` sequences, a repeated
//! key, text after the value, invalid JSON), each read with
//! `json_get_field`, `json_get_string` and the transformation (a constant
//! path and paths from a header: members, `[n]` elements, an index past
//! the end, `%` for a dot in a name), compared with what Kamailio 5.6.3
//! (json-c) gives.
//!
//! Without Kamailio and its json module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "json"];

const BODY: &str = r##"
modparam("json", "json_escape_char", "#")
request_route {
    if ($hdr(X-F) == $null) { sl_send_reply("200", "up"); exit; }
    $var(f) = "-"; $var(s) = "-";
    json_get_field("$rb", "$hdr(X-F)", "$var(f)"); $var(rf) = $rc;
    json_get_string("$rb", "$hdr(X-F)", "$var(s)"); $var(rs) = $rc;
    $var(p) = $(rb{json.parse,$hdr(X-P)});
    $var(c) = $(rb{json.parse,c.d[1]});
    append_to_reply("X-A: [$var(rf)] [$var(f)] [$var(rs)] [$var(s)] [$var(p)] [$var(c)]\r\n");
    sl_send_reply("200", "ok");
}
"##;

/// (body, member name, path) of each request.
const CASES: &[(&str, &str, &str)] = &[
    (r#"{"a":1,"b":"x/y","c":{"d":[1,2.50,"z"]}}"#, "b", "c.d[2]"),
    (r#"{"a":1,"b":"x/y","c":{"d":[1,2.50,"z"]}}"#, "c", "c.d"),
    (r#"{"a":1,"b":"x/y","c":{"d":[1,2.50,"z"]}}"#, "a", "c.d[7]"),
    (r#"{"a":1,"b":"x/y","c":{"d":[1,2.50,"z"]}}"#, "zz", "zz.y"),
    (
        r#"{'foo':'bar', "n": null, "t": TRUE, "f": False}"#,
        "foo",
        "t",
    ),
    (
        r#"{'foo':'bar', "n": null, "t": TRUE, "f": False}"#,
        "n",
        "n",
    ),
    (
        r#"{'foo':'bar', "n": null, "t": TRUE, "f": False}"#,
        "f",
        "foo",
    ),
    (
        "/* note */ {\"x\": [ ], \"y\": { }, // line\n \"z\": \"\\u00e9\\t\\\"q\\\"\"}",
        "x",
        "y",
    ),
    (
        "/* note */ {\"x\": [ ], \"y\": { }, // line\n \"z\": \"\\u00e9\\t\\\"q\\\"\"}",
        "z",
        "z",
    ),
    (
        r#"{"i": 9223372036854775808, "j": -12, "k": 1e3, "l": 0.10, "m": NaN, "o": -Infinity}"#,
        "i",
        "l",
    ),
    (
        r#"{"i": 9223372036854775808, "j": -12, "k": 1e3, "l": 0.10, "m": NaN, "o": -Infinity}"#,
        "k",
        "m",
    ),
    (
        r#"{"i": 9223372036854775808, "j": -12, "k": 1e3, "l": 0.10, "m": NaN, "o": -Infinity}"#,
        "o",
        "j",
    ),
    (
        r#"{"d.e": 5, "a": 1, "b": [2, 3,], "a": {"x": 9},}"#,
        "a",
        "d%e",
    ),
    (
        r#"{"d.e": 5, "a": 1, "b": [2, 3,], "a": {"x": 9},}"#,
        "b",
        "a.x",
    ),
    (
        r#"{"d.e": 5, "a": 1, "b": [2, 3,], "a": {"x": 9},}"#,
        "d.e",
        "b[1]",
    ),
    (
        r#"{"c": {"d": [null, "second"]}} and then some text"#,
        "c",
        "c.d[0]",
    ),
    (r#"{"s": "\ud83d\ude00 \u0041\/"}"#, "s", "s"),
    (r#"{"a": }"#, "a", "a"),
    (r#"[1, 2, 3]"#, "0", "a"),
    (r#"{"a": [[1, [2, {"b": "c"}]]]}"#, "a", "a[0]"),
];

fn ask(peer: &UdpPeer, srv: SocketAddr) -> Vec<String> {
    CASES
        .iter()
        .enumerate()
        .map(|(i, (body, f, p))| {
            let call = format!("json-{i}");
            let req = format!(
                "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nX-F: {f}\r\nX-P: {p}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                peer.addr(),
                body.len()
            );
            peer.send(srv, &req);
            let r = peer
                .recv_matching(Duration::from_secs(3), |r| {
                    r.msg.msg().call_id().ok() == Some(call.as_str())
                })
                .unwrap_or_else(|| panic!("{call}: no answer"));
            format!("{i} {f} {p}: {}", r.header("X-A").unwrap_or_default())
        })
        .collect()
}

#[test]
fn json_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("json");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let peer = UdpPeer::new();
        kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
        ask(&peer, srv)
    });
    assert!(
        want.iter()
            .any(|l| l.starts_with("0 b c.d[2]: [1] [\"x\\/y\"]")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "json");
}
