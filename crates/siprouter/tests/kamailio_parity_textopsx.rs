//! Differential test against Kamailio itself, for textopsx's header-value
//! functions (`append_hf_value`, `insert_hf_value`, `remove_hf_value`,
//! `remove_hf_value2`, `assign_hf_value`, `assign_hf_value2`,
//! `include_hf_value`, `exclude_hf_value`, `hf_value_exists`) and its
//! header and body-line iterators (`hf_iterator_*` with `$hfitname` and
//! `$hfitbody`, `bl_iterator_*` with `$blitval`). Each request is changed
//! by one call and forwarded statelessly to a user agent; what it gets
//! (the headers the calls touch, the body) is compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "textopsx", "xlog"];

/// One call per case: `X-T` names it.
const CASES: &[(&str, &str)] = &[
    ("a1", r#"append_hf_value("Foo", "new");"#),
    ("a2", r#"append_hf_value("Foo[1]", "new");"#),
    ("a3", r#"append_hf_value("Foo[-1]", "new");"#),
    ("a4", r#"append_hf_value("Bar", "new;x=$rm");"#),
    ("a5", r#"append_hf_value("Foo[2]", "new");"#),
    ("a6", r#"append_hf_value("Bar[1]", "new");"#),
    ("a7", r#"append_hf_value("Foo[9]", "new");"#),
    ("a8", r#"append_hf_value("foo[1]", "new");"#),
    ("i1", r#"insert_hf_value("Foo", "new");"#),
    ("i5", r#"insert_hf_value("Foo[9]", "new");"#),
    ("i6", r#"insert_hf_value("Foo[3]", "new");"#),
    ("i2", r#"insert_hf_value("Foo[2]", "new");"#),
    ("i3", r#"insert_hf_value("Foo[-1]", "new");"#),
    ("i4", r#"insert_hf_value("Bar", "new");"#),
    ("r1", r#"remove_hf_value("Foo");"#),
    ("r2", r#"remove_hf_value("Foo[*]");"#),
    ("r3", r#"remove_hf_value("Foo[-1]");"#),
    ("r4", r#"remove_hf_value("Foo.p");"#),
    ("r5", r#"remove_hf_value("Foo[*].p");"#),
    ("r6", r#"remove_hf_value("Foo[2]");"#),
    ("r7", r#"remove_hf_value("Bar");"#),
    ("r8", r#"remove_hf_value("Foo[3].p");"#),
    ("r9", r#"remove_hf_value("Foo[1].p");"#),
    ("r10", r#"remove_hf_value("Foo[2].p");"#),
    ("r11", r#"remove_hf_value("Foo[3]");"#),
    ("r12", r#"remove_hf_value("X-One");"#),
    ("q1", r#"remove_hf_value2("X-Auth.b");"#),
    ("q5", r#"remove_hf_value2("X-Auth.a");"#),
    ("q6", r#"remove_hf_value2("X-Auth[-1]");"#),
    ("q2", r#"remove_hf_value2("Foo[1]");"#),
    ("q3", r#"remove_hf_value2("Foo");"#),
    ("q4", r#"remove_hf_value2("Foo[*]");"#),
    ("s1", r#"assign_hf_value("Foo", "z");"#),
    ("s2", r#"assign_hf_value("Foo[-1]", "z");"#),
    ("s3", r#"assign_hf_value("Foo[2].p", "9");"#),
    ("s4", r#"assign_hf_value("Foo[*].lr", "");"#),
    ("s6", r#"assign_hf_value("Foo.q", "7");"#),
    ("s7", r#"assign_hf_value("Foo[4].q", "7");"#),
    ("s8", r#"assign_hf_value("Foo[2].p", "");"#),
    ("s9", r#"assign_hf_value("Foo[9]", "z");"#),
    ("s10", r#"assign_hf_value("Bar", "z");"#),
    ("t1", r#"assign_hf_value2("X-Auth.a", "\"yes\"");"#),
    ("t4", r#"assign_hf_value2("X-Auth.b", "");"#),
    ("t5", r#"assign_hf_value2("X-Auth", "Basic x");"#),
    ("t2", r#"assign_hf_value2("X-Auth.c", "3");"#),
    ("t3", r#"assign_hf_value2("Foo[-1]", "gogo");"#),
    ("n1", r#"include_hf_value("Supported", "path");"#),
    ("n2", r#"include_hf_value("Supported", "timer");"#),
    ("n3", r#"include_hf_value("Bar", "timer");"#),
    ("n4", r#"include_hf_value("Supported", "PATH");"#),
    ("x1", r#"exclude_hf_value("Supported", "100rel");"#),
    ("x4", r#"exclude_hf_value("X-One", "solo");"#),
    ("x5", r#"exclude_hf_value("Supported", "path");"#),
    ("x2", r#"exclude_hf_value("Supported", "nope");"#),
    (
        "x3",
        r#"exclude_hf_value("Supported", "path"); exclude_hf_value("Supported", "100rel");"#,
    ),
    (
        "e1",
        r#"if (hf_value_exists("Supported", "100rel")) { append_hf("X-E: yes\r\n"); }"#,
    ),
    (
        "e2",
        r#"if (hf_value_exists("Supported", "xx")) { append_hf("X-E: yes\r\n"); }"#,
    ),
    (
        "e3",
        r#"if (hf_value_exists("Foo", "d")) { append_hf("X-E: yes\r\n"); }"#,
    ),
    (
        "e4",
        r#"if (hf_value_exists("Supported", "PATH")) { append_hf("X-E: yes\r\n"); }"#,
    ),
    (
        "e5",
        r#"if (hf_value_exists("Foo", "b;p=1")) { append_hf("X-E: yes\r\n"); }"#,
    ),
    (
        "h1",
        r#"$var(n) = "";
        hf_iterator_start("i1");
        while (hf_iterator_next("i1")) {
            $var(n) = $var(n) + $hfitname(i1) + "=" + $hfitbody(i1) + ";";
        }
        hf_iterator_end("i1");
        append_hf("X-It: $var(n)\r\n");"#,
    ),
    (
        "h2",
        r#"hf_iterator_start("i1");
        while (hf_iterator_next("i1")) {
            if ($hfitname(i1) == "X-Del") { hf_iterator_rm("i1"); }
            if ($hfitname(i1) == "Supported") { hf_iterator_append("i1", "X-After: 1\r\n"); }
            if ($hfitname(i1) == "X-Auth") { hf_iterator_insert("i1", "X-Before: 1\r\n"); }
        }
        hf_iterator_end("i1");"#,
    ),
    (
        "h3",
        r#"hf_iterator_start("i1");
        hf_iterator_next("i1");
        hf_iterator_next("i1");
        hf_iterator_next("i1");
        hf_iterator_prev("i1");
        append_hf("X-It: $hfitname(i1)\r\n");"#,
    ),
    (
        "b1",
        r#"$var(n) = 0;
        bl_iterator_start("b1");
        while (bl_iterator_next("b1")) {
            $var(n) = $var(n) + 1;
            if ($blitval(b1) =~ "^a=x") { bl_iterator_rm("b1"); }
            if ($blitval(b1) =~ "^m=") { bl_iterator_append("b1", "a=after\r\n"); }
            if ($blitval(b1) =~ "^c=") { bl_iterator_insert("b1", "a=before\r\n"); }
            if ($var(n) == 1) { $var(first) = $(blitval(b1){s.len}); }
        }
        bl_iterator_end("b1");
        append_hf("X-It: $var(n) $var(first)\r\n");"#,
    ),
];

const HEADERS: &str = "Foo: a, b;p=1, c\r\nFoo: d;q=2;p=3\r\nX-Del: 1\r\nSupported: path, 100rel\r\nX-Auth: Digest a=1, b=2\r\nX-One: solo\r\n";

const BODY_TEXT: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=x-one\r\na=rtpmap:0 PCMU/8000\r\na=x-two\r\n";

fn config(uas: u16) -> String {
    let mut body = String::from(
        "request_route {\n    if ($hdr(X-T) == $null) { sl_send_reply(\"200\", \"up\"); exit; }\n",
    );
    for (name, code) in CASES {
        body.push_str(&format!(
            "    if ($hdr(X-T) == \"{name}\") {{\n        {code}\n        append_hf(\"X-Rc: $rc\\r\\n\");\n    }}\n"
        ));
    }
    body.push_str(&format!(
        "    $du = \"sip:127.0.0.1:{uas}\";\n    forward();\n}}\n"
    ));
    kamailio::head(MODULES) + &body
}

/// The lines of `r` that the cases touch (the scene's ports named), and
/// the body when it changed.
fn seen(p: &Scene, r: &sr_testkit::Reply) -> String {
    let text = r.text();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let lines: Vec<&str> = head
        .lines()
        .skip(1)
        .filter(|l| {
            ![
                "Via:",
                "Max-Forwards:",
                "From:",
                "To:",
                "Call-ID:",
                "CSeq:",
                "Contact:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect();
    let lines = p.names(&lines.join(" / "));
    if body == BODY_TEXT {
        lines
    } else {
        format!("{lines} || {body:?}")
    }
}

fn scenario_with(p: &Scene) -> Vec<String> {
    let srv = p.srv;
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (name, _) in CASES {
        let extra = format!("X-T: {name}\r\n{HEADERS}Content-Type: application/sdp\r\n");
        // (The scene's requests have no body: this one is written whole.)
        let call = format!("tx-{name}");
        let req = format!(
            "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\n{extra}Content-Length: {}\r\n\r\n{BODY_TEXT}",
            p.caller.addr(),
            BODY_TEXT.len()
        );
        p.caller.send(srv, &req);
        let got = p.uas[0].recv_matching(Duration::from_secs(2), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        out.push(match got {
            Some(r) => format!("{name}: {}", seen(p, &r)),
            None => format!("{name}: nothing forwarded"),
        });
    }
    out
}

#[test]
fn header_values_and_iterators_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("textopsx");
    let uas_port = sr_testkit::free_port();
    let cfg = config(uas_port);
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let p_uas = sr_testkit::UdpPeer::on(&format!("127.0.0.1:{uas_port}"));
        let mut s = Scene::new(srv, 0);
        s.uas.push(p_uas);
        scenario_with(&s)
    });
    assert!(want.iter().any(|l| l.contains("X-Rc: 1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "textopsx");
}
