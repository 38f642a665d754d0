//! Differential test against Kamailio itself, for the permissions
//! module's rule files (`allow_routing`, `allow_register`, `allow_uri`):
//! the same files and configuration for both servers, in two settings
//! (`check_all_branches` 1 and 0), the same requests, every answer
//! compared. The files hold comments, lists, `ALL`, `EXCEPT` on both
//! sides, quoted colons and hashes, unanchored expressions and lines
//! Kamailio skips (an empty item, a bad expression, no colon).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use std::path::Path;

/// The configuration after its head (`kamailio::head`).
const BODY: &str = r#"modparam("permissions", "default_allow_file", "__DIR__/permissions.allow")
modparam("permissions", "default_deny_file", "__DIR__/permissions.deny")
modparam("permissions", "check_all_branches", __CAB__)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-B) != $null) { append_branch("$hdr(X-B)"); }
    if ($hdr(X-RU) != $null) { $ru = $hdr(X-RU); }
    $var(t) = $hdr(X-T);
    $var(r) = "none";
    if ($var(t) == "route0") { $var(r) = allow_routing(); }
    else if ($var(t) == "route1") { $var(r) = allow_routing("__DIR__/permissions"); }
    else if ($var(t) == "route2") { $var(r) = allow_routing("__DIR__/r2.allow", "__DIR__/r2.deny"); }
    else if ($var(t) == "empty") { $var(r) = allow_routing("__DIR__/nothing"); }
    else if ($var(t) == "reg") { $var(r) = allow_register("__DIR__/reg"); }
    else if ($var(t) == "reg2") { $var(r) = allow_register("__DIR__/reg.allow", "__DIR__/reg.deny"); }
    else if ($var(t) == "uri") { $var(r) = allow_uri("__DIR__/uri", "$hdr(X-V)"); }
    append_to_reply("X-R: $var(r)\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn files(dir: &Path) {
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    w(
        "permissions.allow",
        "# who may call whom\n\
         \"^sip:alice@\" : ALL\n\
         \"^sip:carol@\" EXCEPT \"^sip:carol@evil\" : \"^sip:bob@\", \"^sip:dave@\"\n\
         ALL : \"^sip:@hostonly\\.com$\"\n\
         ^sip:u2@x : ^sip:a2@\n\
         \"a14\\.b\" : ALL   # unanchored\n\
         \"x:y\" : \"#hash\"\n\
         \"a\",,\"b\" : ALL\n\
         \"[unclosed\" : ALL\n\
         no colon here\n",
    );
    w("permissions.deny", "ALL : ALL\n");
    w(
        "r2.allow",
        "ALL : ALL EXCEPT \"^sip:closed@\"\n\"ALL\" : \"^sip:tall@\"\n",
    );
    w("r2.deny", "\"^sip:eve@\" : ALL\nALL : \"^sip:closed@\"\n");
    w("reg.allow", "\"^sip:admin@\" : ALL\n");
    w("reg.deny", "ALL : \"^sip:.*1\\.2\\.3\\.4$\"\n");
    w("uri.allow", "\"^sip:alice@\" : \"^A1$\", \"^B1$\"\n");
    w("uri.deny", "ALL : ALL\n");
}

fn requests() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut add = |t: &str, ruri: &str, from: &str, to: &str, extra: &[String]| {
        n += 1;
        let call = format!("pr{n}-{t}");
        let mut h = String::new();
        for e in extra {
            h.push_str(e);
            h.push_str("\r\n");
        }
        out.push((
            call.clone(),
            format!(
                "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKpr{n}\r\nFrom: {from};tag=1\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-T: {t}\r\n{h}Content-Length: 0\r\n\r\n"
            ),
        ));
    };
    let froms = [
        "<sip:alice@a.com>",
        "\"Alice\" <sip:ALICE@A.COM;x=y>",
        "<sip:carol@c.com>",
        "<sip:carol@evil.com>",
        "<sip:eve@e.com>",
        "<sip:u2@x>",
        "<sip:xxa14.byy@z>",
        "<sips:eve@e.com:5061>",
        "<sip:x:y@h>",
    ];
    let ruris = [
        "sip:bob@b.com:5060;transport=udp",
        "sip:dave@d.com",
        "sip:eve@e.com",
        "sip:hostonly.com",
        "sips:bob@b.com",
        "sip:a2@h",
        "sip:closed@c.com",
        "sip:tall@t.com",
        "sip:#hash@h",
    ];
    for t in ["route0", "route1", "route2", "empty"] {
        for from in froms {
            for ruri in ruris {
                add(t, ruri, from, "<sip:x@y>", &[]);
            }
        }
    }
    // Branches (checked when check_all_branches is 1) and a rewritten
    // Request-URI.
    for b in [
        "sip:eve@e.com",
        "sip:bob@b.com:5070",
        "sip:hostonly.com",
        "sip:closed@c.com",
    ] {
        for from in ["<sip:alice@a.com>", "<sip:carol@c.com>", "<sip:zed@z.com>"] {
            add(
                "route0",
                "sip:bob@b.com",
                from,
                "<sip:x@y>",
                &[format!("X-B: {b}")],
            );
            add(
                "route2",
                "sip:bob@b.com",
                from,
                "<sip:x@y>",
                &[format!("X-B: {b}")],
            );
        }
    }
    add(
        "route0",
        "sip:eve@e.com",
        "<sip:carol@c.com>",
        "<sip:x@y>",
        &["X-RU: sip:bob@b.com".into()],
    );
    for t in ["reg", "reg2"] {
        for to in [
            "<sip:admin@t.com>",
            "<sip:admin@t.com;p=1>",
            "<sip:user@t.com>",
        ] {
            for contacts in [
                vec!["<sip:x@1.2.3.4:5060;transport=udp>;expires=60"],
                vec!["<sip:x@5.6.7.8>"],
                vec!["<sip:a@5.6.7.8>, <sip:b@1.2.3.4>"],
                vec!["<sip:a@5.6.7.8>", "<sip:b@1.2.3.4>"],
                vec!["*"],
                vec![],
            ] {
                let extra: Vec<String> = contacts.iter().map(|c| format!("Contact: {c}")).collect();
                add(t, "sip:reg@t.com", "<sip:x@y>", to, &extra);
            }
        }
    }
    for from in ["<sip:alice@a.com>", "<sip:bob@b.com>"] {
        for v in ["A1", "a1", "B1", "A1;x=y", "C1"] {
            add("uri", "sip:x@y", from, "<sip:x@y>", &[format!("X-V: {v}")]);
        }
        add("uri", "sip:x@y", from, "<sip:x@y>", &[]);
    }
    out
}

fn check(cab: &str) {
    let dir = kamailio::fresh_dir(&format!("permrules-{cab}"));
    files(&dir);
    let d = dir.display().to_string();
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops", "corex", "permissions"],
        BODY,
        &[("__DIR__", &d), ("__CAB__", cab)],
        &requests(),
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|a| a.ends_with(": -1")), "{want:?}");
    assert!(want.iter().any(|a| a.ends_with(": 1")), "{want:?}");
    kamailio::conclude(&dir, &want, &got, &format!("check_all_branches {cab}"));
}

#[test]
fn permission_rule_files_match_kamailio() {
    if !kamailio::available(&["permissions", "corex", "sl", "pv", "textops"]) {
        return;
    }
    check("1");
    check("0");
}
