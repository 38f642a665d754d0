//! Differential test against Kamailio itself, for jansson: the same
//! JSON documents, paths and values through Kamailio 5.6 and siprouter —
//! `jansson_get` on every JSON type (32-bit and larger integers, reals,
//! booleans, null, nested objects, escapes), paths with dots, indexes in
//! hex and octal, negative and malformed ones, the empty path, documents
//! jansson refuses; `jansson_set` with every type name, nested paths that
//! create objects, array slots, C's number conversions; `jansson_append`
//! to arrays and merging objects; `jansson_array_size`; `jansson_get_field`;
//! `jansson_xdecode` into an XAVP and `jansson_xencode` back — comparing the return code, the value (its text and whether it is an
//! integer) and every document written back.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "jansson"];

const BODY: &str = r#"
request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    $var(op) = $hdr(X-Op);
    $var(p) = $hdr(X-P);
    if ($var(p) == "-") { $var(p) = ""; }
    $var(v) = $hdr(X-V);
    if ($var(v) == "-") { $var(v) = ""; }
    $var(src) = $hdr(X-S);
    $var(out) = 0;
    if ($hdr(X-R) != $null) { $var(out) = $hdr(X-R); }
    $var(rc) = "none";
    if ($var(op) == "get") { $var(rc) = jansson_get("$var(p)", "$var(src)", "$var(out)"); }
    else if ($var(op) == "set") { $var(rc) = jansson_set("$hdr(X-Ty)", "$var(p)", "$var(v)", "$var(out)"); }
    else if ($var(op) == "append") { $var(rc) = jansson_append("$hdr(X-Ty)", "$var(p)", "$var(v)", "$var(out)"); }
    else if ($var(op) == "xdec") {
        $var(rc) = jansson_xdecode("$var(src)", "js");
        $var(rc2) = jansson_xencode("js", "$var(enc)");
        append_to_reply("X-Dec: a=$xavp(js=>a) b=$xavp(js=>b) a1=$xavp(js[1]=>a) c=$xavp(js=>c) rc2=$var(rc2) enc=$var(enc)\r\n");
    }
    else if ($var(op) == "getfield") { $var(rc) = jansson_get_field("$var(src)", "$var(p)", "$var(out)"); }
    else if ($var(op) == "size") { $var(rc) = jansson_array_size("$var(p)", "$var(src)", "$var(out)"); }
    $var(plus) = $var(out) + 1;
    append_to_reply("X-RC: $var(rc)\r\nX-Out: $var(out)\r\nX-Plus: $var(plus)\r\n");
    sl_send_reply("200", "done");
}
"#;

/// (op, path, src, type, value, initial result); `-` for an empty text,
/// `None` for a header left out.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

const DOC: &str = r#"{"inner":{"deep":{"list":[0,1,2,{"x":[5,6]},"four"]}},"a.b":1,"s":"str","i":7,"big":5000000000,"neg":-2147483649,"r":3.14159,"e":1e300,"w":2.0,"t":true,"f":false,"z":null,"o":{"k":"v","n":[1,2.5,"x\ny\"z\\/\u00e9\ud83d\ude00\u0001"]},"":9}"#;

fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = Vec::new();
    for p in [
        "inner.deep.list[3]",
        "inner.deep.list[3].x[1]",
        "inner.deep.list[0x4]",
        "inner.deep.list[010]",
        "inner.deep.list[-1]",
        "inner.deep.list[9]",
        "inner.deep.list[z]",
        "inner.deep.list[1",
        "inner.deep.list[1]x",
        "inner.deep.list[]",
        "inner.deep",
        "a.b",
        "s",
        "i",
        "big",
        "neg",
        "r",
        "e",
        "w",
        "t",
        "f",
        "z",
        "o",
        "o.n",
        "o.n[2]",
        "-",
        "missing",
        "s.x",
        "[0]",
        "inner..deep",
        ".s",
        "o.n[1]",
    ] {
        v.push(("get", p, DOC, "", "", None));
    }
    for (p, src) in [
        ("[1]", "[10,20]"),
        ("[1][0]", "[[1],[2,3]]"),
        ("a", "{\"a\":1,\"a\":2}"),
        ("a", "5"),
        ("a", "\"text\""),
        ("a", "{\"a\":1} x"),
        ("a", "{\"a\":01}"),
        ("a", "{\"a\":99999999999999999999}"),
        ("a", "{\"a\":[1,]}"),
        ("a", "{ \"a\" : [ 1 , 2 ] }"),
        ("a", "{\"a\":\"\\u0000\"}"),
        ("a", "{\"a\":-0.0}"),
        ("a", "{\"a\":1E2}"),
        ("a", "{\"a\":123456789012345678}"),
        ("a", "{\"a\":0.1}"),
        ("a", "{"),
    ] {
        v.push(("get", p, src, "", "", None));
    }
    for src in [
        "{\"a\":\"x\",\"b\":7,\"c\":{\"n\":[1]}}",
        "[{\"a\":1},{\"a\":2,\"b\":true}]",
        "{\"a\":null,\"b\":2.5,\"c\":5000000000}",
        "[1,2]",
        "{\"a\":",
    ] {
        v.push(("xdec", "-", src, "", "", None));
    }
    for p in ["s", "a.b", "inner.deep.list[1]", "missing"] {
        v.push(("getfield", p, DOC, "", "", None));
    }
    for (ty, p, val, init) in [
        ("string", "mystr", "my input string", None),
        ("integer", "count", "9000", Some("{\"mystr\":\"x\"}")),
        ("true", "mybool", "0", Some("{\"mystr\":\"x\"}")),
        ("false", "f", "-", None),
        ("null", "n", "-", None),
        ("real", "pi", "3.14159", None),
        ("real", "r", "1e300", None),
        ("real", "r", "2", None),
        ("real", "r", "pi", None),
        ("obj", "myobj", "{\"foo\":\"bar\"}", Some("{\"a\":1}")),
        (
            "str",
            "myobj.foo",
            "baz",
            Some("{\"myobj\":{\"foo\":\"bar\"},\"z\":0}"),
        ),
        ("int", "a.b.c", "1", None),
        ("int", "x[0]", "1", None),
        ("array", "list", "[0,1]", None),
        ("int", "list[1]", "9", Some("{\"list\":[0,1]}")),
        ("int", "list[5]", "9", Some("{\"list\":[0,1]}")),
        ("int", "[0]", "9", Some("[1,2]")),
        ("int", "i", "-", None),
        ("int", "i", "12x", None),
        ("int", "i", "99999999999999999999", None),
        ("int", "i", " 42", None),
        ("bogus", "i", "1", None),
        ("obj", "o", "[1]", None),
        ("array", "o", "{}", None),
        ("obj", "o", "{bad", None),
        ("str", "s", "with \"quotes\" and \\ and / \u{e9}", None),
        ("str", "s", "x", Some("[]")),
        ("str", "s", "x", Some("not json")),
        ("str", "a.", "x", None),
        ("str", "-", "x", None),
        ("str", "a..b", "x", None),
    ] {
        v.push(("set", p, "", ty, val, init));
    }
    for (ty, p, val, init) in [
        ("int", "-", "0", Some("[]")),
        ("int", "list", "5", Some("{\"list\":[0]}")),
        ("obj", "-", "{\"a\":1,\"b\":100}", Some("{\"b\":2,\"c\":3}")),
        ("int", "mystr", "1", Some("{\"mystr\":\"x\"}")),
        ("obj", "o", "{\"z\":1}", Some("{\"o\":{\"a\":1}}")),
        ("int", "o", "1", Some("{\"o\":{\"a\":1}}")),
        ("int", "list[0]", "1", Some("{\"list\":[[1],2]}")),
        ("int", "-", "1", Some("{}")),
        ("int", "new", "1", None),
    ] {
        v.push(("append", p, "", ty, val, init));
    }
    for (p, src) in [
        ("loopme", "{\"loopme\":[0,1,2]}"),
        ("-", "[1,2]"),
        ("a", "{\"a\":1}"),
        ("missing", "{\"a\":1}"),
        ("a[0]", "{\"a\":[[],[1]]}"),
    ] {
        v.push(("size", p, src, "", "", None));
    }
    v
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (n, (op, p, src, ty, val, init)) in cases().into_iter().enumerate() {
        let mut extra = format!("X-Op: {op}\r\nX-P: {p}\r\nX-V: {val}\r\nX-Ty: {ty}\r\n");
        if !src.is_empty() {
            extra.push_str(&format!("X-S: {src}\r\n"));
        }
        if let Some(r) = init {
            extra.push_str(&format!("X-R: {r}\r\n"));
        }
        let call = format!("js{n}");
        peer.send(
            srv,
            &kamailio::options(&call, &extra).replace("__VIA__", &peer.addr().to_string()),
        );
        let r = peer.recv_matching(Duration::from_secs(3), |r| {
            r.status() == Some(200) && r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        let line = match r {
            Some(r) => format!(
                "{op} [{p}] [{ty}] [{val}] -> rc={} out=[{}] plus=[{}] {}",
                r.header("X-RC").unwrap_or_default(),
                r.header("X-Out").unwrap_or_default(),
                r.header("X-Plus").unwrap_or_default(),
                r.header("X-Dec").unwrap_or_default()
            ),
            None => format!("{op} [{p}]: no answer"),
        };
        out.push(line);
    }
    out
}

#[test]
fn jansson_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("jansson");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("rc=1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "jansson");
}
