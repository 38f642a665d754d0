//! Differential test against Kamailio itself, for siputils: the URI and
//! number checks (`is_e164`, `is_uri_user_e164`, `is_tel_number`,
//! `is_numeric`, `is_uri`, `is_user`, `cmp_uri`, `cmp_aor`), the
//! Request-URI parameter functions (`uri_param`, `add_uri_param`),
//! `has_totag`, `is_first_hop`, `is_request` and `is_reply`, run in
//! Kamailio 5.6 and siprouter on the same inputs, comparing each return
//! code and the Request-URI after the call.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "siputils"];

const CALLS: &[(&str, &[&str])] = &[
    (
        "is_e164(\"$var(a)\")",
        &[
            "+4930123456",
            "4930123456",
            "+49",
            "+1234567890123456",
            "+123",
            "+12a4",
            "",
            "tel:+4930123",
        ],
    ),
    (
        "is_uri_user_e164(\"$var(a)\")",
        &[
            "sip:+4930123456@x",
            "sip:4930123456@x",
            "tel:+4930123456",
            "sip:+4930123456;user=phone@x",
            "sip:x",
            "garbage",
        ],
    ),
    (
        "is_tel_number(\"$var(a)\")",
        &["+4930123", "4930123", "+", "", "12a", "+0123"],
    ),
    (
        "is_numeric(\"$var(a)\")",
        &["123", "0", "", "12a", "-1", "+1"],
    ),
    (
        "is_uri(\"$var(a)\")",
        &["sip:a@b", "sips:b", "tel:+1", "a@b", "", "sip:", "urn:x"],
    ),
    ("is_user(\"$var(a)\")", &["alice", "bob", "ALICE", ""]),
    (
        "cmp_uri(\"$var(a)\", \"sip:alice@example.com\")",
        &[
            "sip:alice@example.com",
            "sip:ALICE@example.com",
            "sip:alice@EXAMPLE.com",
            "sip:alice@example.com:5060",
            "sip:alice@example.com;transport=udp",
            "<sip:alice@example.com>",
            "sips:alice@example.com",
            "sip:bob@example.com",
        ],
    ),
    (
        "cmp_aor(\"$var(a)\", \"sip:alice@example.com\")",
        &[
            "sip:alice@example.com",
            "sip:alice@example.com:5060",
            "sip:alice@example.com;x=1",
            "sip:alice:pw@example.com",
            "sips:alice@example.com",
            "sip:Alice@example.com",
            "sip:alice@Example.COM",
        ],
    ),
    (
        "uri_param(\"$var(a)\")",
        &["lr", "transport", "user", "LR", "none", ""],
    ),
    (
        "uri_param(\"$var(a)\", \"tcp\")",
        &["transport", "lr", "TRANSPORT", "user"],
    ),
    ("add_uri_param(\"$var(a)\")", &["x=1", "lr", "", "a=b;c=d"]),
    ("has_totag()", &["-"]),
    ("is_first_hop()", &["-"]),
    ("is_request()", &["-"]),
    ("is_reply()", &["-"]),
    (
        "is_alphanum(\"$var(a)\")",
        &["abc123", "a-b", "", "\u{c4}B", "a b", "Z9"],
    ),
    (
        "is_alphanumex(\"$var(a)\", \"+.-_\")",
        &["a-b.c", "a b", "", "+49_1", "a/b"],
    ),
    (
        "cmp_hdr_name(\"$var(a)\", \"From\")",
        &["f", "From", "FROM", "To", "x-from", "", " From"],
    ),
    (
        "cmp_hdr_name(\"$var(a)\", \"X-Foo\")",
        &["x-foo", "X-FOO", "X-Fo", "f"],
    ),
    (
        "uri_param_any(\"$var(a)\")",
        &["lr", "transport", "LR", "user", "none", ""],
    ),
    (
        "uri_param_rm(\"$var(a)\")",
        &["lr", "transport", "TRANSPORT", "user", "none", ""],
    ),
    (
        "is_gruu(\"$var(a)\")",
        &[
            "sip:a@b;gr=urn:uuid:1",
            "sip:a@b;gr",
            "sip:a@b",
            "garbage",
            "sip:a@b;gr=",
        ],
    ),
    ("is_gruu()", &["-"]),
    (
        "tel2sip(\"$var(a)\", \"example.com\", \"$var(out)\")",
        &[
            "tel:+(34)-999-888-777",
            "tel:+12-(34)-56-78;Ext=200;ISUB=+123-456",
            "TEL:123",
            "sip:alice@example.com",
            "tel",
            "",
        ],
    ),
    (
        "set_uri_user(\"$var(a)\", \"$var(nu)\")",
        &[
            "sip:alice@example.com",
            "sip:example.com:5070;x=y",
            "sips:bob@[::1]:5061;transport=tls",
            "garbage",
            "tel:+1234",
        ],
    ),
    (
        "set_uri_host(\"$var(a)\", \"$var(nh)\")",
        &[
            "sip:alice@example.com",
            "sip:example.com:5070;x=y",
            "garbage",
        ],
    ),
    ("is_supported(\"outbound\")", &["-"]),
    ("is_supported(\"path\")", &["-"]),
    ("hdr_date_check(\"60\")", &["-"]),
];

fn body() -> String {
    let mut b = String::from(
        "request_route {\n    if ($hdr(X-C) == $null) { sl_send_reply(\"200\", \"up\"); exit; }\n    $var(a) = $(hdr(X-A){s.decode.hexa});\n    if ($hdr(X-A) == \"EMPTY\") { $var(a) = \"\"; }\n    $var(rc) = \"none\";\n    $var(out) = \"unset\";\n    $var(nu) = \"new\";\n    $var(nh) = \"new.host\";\n",
    );
    for (i, (call, _)) in CALLS.iter().enumerate() {
        b.push_str(&format!(
            "    if ($hdr(X-C) == \"{i}\") {{ $var(rc) = {call}; }}\n"
        ));
    }
    b.push_str("    append_to_reply(\"X-R: $var(rc) ru=$ru a=$var(a) out=$var(out)\\r\\n\");\n    sl_send_reply(\"200\", \"done\");\n}\n");
    b
}

fn requests() -> Vec<(String, String)> {
    let mut out = Vec::new();
    // A Date of now (both servers answer within its minute).
    let now = std::process::Command::new("date")
        .args(["-u", "+%a, %d %b %Y %H:%M:%S GMT"])
        .output()
        .expect("date");
    let fresh = format!(
        "Supported: path\r\nDate: {}\r\n",
        String::from_utf8_lossy(&now.stdout).trim()
    );
    let mut n = 0;
    for (i, (_, inputs)) in CALLS.iter().enumerate() {
        for input in *inputs {
            for (ruri, totag, extra) in [
                (
                    "sip:alice@example.com;lr;transport=tcp;user=phone",
                    "",
                    fresh.as_str(),
                ),
                (
                    "sip:+4930@example.com;gr",
                    ";tag=t1",
                    "Supported: timer, outbound\r\nDate: Sat, 13 Nov 2010 23:29:00 GMT\r\n",
                ),
            ] {
                n += 1;
                let call = format!("su{n}");
                let a = if input.is_empty() {
                    "EMPTY".to_string()
                } else {
                    input.bytes().map(|b| format!("{b:02x}")).collect()
                };
                out.push((
                    call.clone(),
                    format!(
                        "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKsu{n}\r\nFrom: <sip:alice@example.com>;tag=f\r\nTo: <sip:bob@example.com>{totag}\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-C: {i}\r\nX-A: {a}\r\n{extra}Content-Length: 0\r\n\r\n"
                    ),
                ));
            }
        }
    }
    out
}

#[test]
fn siputils_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("siputils");
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        &body(),
        &[],
        &requests(),
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|a| a.contains(": 1 ")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "siputils");
}
