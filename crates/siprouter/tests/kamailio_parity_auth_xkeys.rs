//! Differential test against Kamailio itself, for module auth_xkeys:
//! `auth_xkeys_add` (the header with the digest of `value:data` under the
//! chain's newest key, for SHA-256/384/512; unknown ids and algorithms
//! refused), `auth_xkeys_check` (a digest under any key of the chain,
//! hex in either case, white space around it; wrong data, length, id,
//! algorithm, missing header), and the RPCs `auth_xkeys_.list` and
//! `auth_xkeys_.set` run from the script with `jsonrpc_exec` (the
//! listed expiry times written alike before comparing).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::serde_json::Value as Json;
use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "textopsx", "jsonrpcs", "auth_xkeys"];

const BODY: &str = r#"#!ifdef SIPROUTER
modparam("jsonrpcs", "socket", "")
#!else
modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "__DIR__/rpc.fifo")
#!endif
modparam("jsonrpcs", "pretty_format", 0)
modparam("auth_xkeys", "xkey", "id=abc;name=k1;value=secret1;expires=72000")
modparam("auth_xkeys", "xkey", "id=ABC;name=k2;value=secret2")
request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-Op) == "add") {
        auth_xkeys_add("X-Sig", "$hdr(X-K)", "$hdr(X-A)", "$hdr(X-D)");
        $var(r) = $rc;
        msg_apply_changes();
        $var(c) = "none";
        if ($var(r) == 1) {
            auth_xkeys_check("X-Sig", "$hdr(X-K)", "$hdr(X-A)", "$hdr(X-D)");
            $var(c) = $rc;
        }
        append_to_reply("X-R: $var(r) $var(c) $hdr(X-Sig)\r\n");
    } else if ($hdr(X-Op) == "check") {
        auth_xkeys_check("X-In", "$hdr(X-K)", "$hdr(X-A)", "$hdr(X-D)");
        append_to_reply("X-R: $rc\r\n");
    } else {
        $var(r) = jsonrpc_exec("$hdr(X-RPC)");
        append_to_reply("X-R: $var(r) $jsonrpl(code) $jsonrpl(text) $jsonrpl(body)\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

/// A step: the operation and its headers.
fn req(n: usize, op: &str, hdrs: &str) -> (String, String) {
    let call = format!("xk{n}");
    let r = format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-Op: {op}\r\n{hdrs}Content-Length: 0\r\n\r\n"
    );
    (call, r)
}

fn rpc(n: usize, method_and_params: &str) -> (String, String) {
    req(
        n,
        "rpc",
        &format!(
            "X-RPC: {{\"jsonrpc\":\"2.0\",\"method\":\"auth_xkeys_.{method_and_params},\"id\":{n}}}\r\n"
        ),
    )
}

/// The line with the JSON body printed with sorted keys and the listed
/// expiry times (seconds from now) written alike.
fn normal(line: &str) -> String {
    let Some(i) = line.find(" {") else {
        return line.to_string();
    };
    let Ok(v) = sr_sdk::serde_json::from_str::<Json>(&line[i + 1..]) else {
        return line.to_string();
    };
    let mut text = v.to_string();
    while let Some(at) = text.find("\"EXPIRES\":1") {
        let end = text[at + 10..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(text.len(), |e| at + 10 + e);
        text.replace_range(at + 10..end, "T");
    }
    format!("{} {text}", &line[..i])
}

const SHA256_OLD: &str = "9d274ab81db42b56e31b8659bc1b256abf02fbd0eb1b6603484cb49e66058e56";
const SHA384_NEW_UPPER: &str = "4563E63888A046646CDD92B0EAF97AE7E30C4AE0AE0B3E54B53A27D2A9C7121192414E13D48E0B666D7F7489697E54AD";
const SHA512_OLD: &str = "676def98dc01cf03118df5337f58363243a10d88838d3e4a1ac2e9104ee9d39afd22b9bcb26dbeb3b9e59ebc3a68dd978bc5e351d4d1a05f311a9f596c84e053";

#[test]
fn auth_xkeys_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("auth-xkeys");
    let body = BODY.replace("__DIR__", &dir.display().to_string());
    let add = |k: &str, a: &str, d: &str| format!("X-K: {k}\r\nX-A: {a}\r\nX-D: {d}\r\n");
    let check = |k: &str, a: &str, d: &str, v: &str| {
        format!("X-K: {k}\r\nX-A: {a}\r\nX-D: {d}\r\nX-In: {v}\r\n")
    };
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut push = |f: &dyn Fn(usize) -> (String, String)| {
        let n = steps.len();
        steps.push(f(n));
    };
    push(&|n| req(n, "add", &add("abc", "sha256", "hello")));
    push(&|n| req(n, "add", &add("Abc", "SHA384", "hello")));
    push(&|n| req(n, "add", &add("abc", "sha512", "sip:a@b|sip:x@y")));
    push(&|n| req(n, "add", &add("nope", "sha256", "hello")));
    push(&|n| req(n, "add", &add("abc", "md5", "hello")));
    push(&|n| req(n, "check", &check("abc", "sha256", "hello", SHA256_OLD)));
    push(&|n| {
        req(
            n,
            "check",
            &check("abc", "sha384", "hello", SHA384_NEW_UPPER),
        )
    });
    push(&|n| {
        req(
            n,
            "check",
            &check("abc", "sha512", "hello", &format!("  {SHA512_OLD} ")),
        )
    });
    push(&|n| req(n, "check", &check("abc", "sha256", "hellO", SHA256_OLD)));
    push(&|n| req(n, "check", &check("abc", "sha512", "hello", SHA256_OLD)));
    push(&|n| {
        req(
            n,
            "check",
            &check("abc", "sha256", "hello", &SHA256_OLD[1..]),
        )
    });
    push(&|n| req(n, "check", &check("zzz", "sha256", "hello", SHA256_OLD)));
    push(&|n| req(n, "check", &check("abc", "md5", "hello", SHA256_OLD)));
    push(&|n| req(n, "check", &check("abc", "sha256", "hello", "")));
    push(&|n| req(n, "check", "X-K: abc\r\nX-A: sha256\r\nX-D: hello\r\n"));
    push(&|n| rpc(n, r#"list""#));
    push(&|n| rpc(n, r#"set","params":["abc","k9","ignored",100]"#));
    push(&|n| rpc(n, r#"list""#));
    push(&|n| rpc(n, r#"set","params":["abc","k9"]"#));
    push(&|n| req(n, "add", &add("abc", "sha256", "hello")));
    let cfg = kamailio::head(MODULES) + &body;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let peer = sr_testkit::UdpPeer::new();
        kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
        kamailio::answers(&peer, srv, &steps, &["X-R"])
    });
    let mut want: Vec<String> = want.iter().map(|l| normal(l)).collect();
    let mut got: Vec<String> = got.iter().map(|l| normal(l)).collect();
    assert!(want[0].starts_with("xk0: 1 1 "), "{want:#?}");
    // Kept difference: Kamailio 5.6's auth_xkeys_.list fails over
    // JSON-RPC (its reply format has a member type jsonrpcs does not
    // know); ours lists the chain, newest key first, `set` having moved
    // the newest key's expiry.
    for i in [15, 17] {
        assert!(
            want[i].contains("500 Internal error creating dest struct"),
            "{want:#?}"
        );
    }
    assert!(
        got[15].ends_with(r#"{"jsonrpc":"2.0","result":{"KID":"abc","KEYS":[{"KEY":{"NAME":"k2","VALUE":"secret2","EXPIRES":0}},{"KEY":{"NAME":"k1","VALUE":"secret1","EXPIRES":T}}]},"id":15}"#),
        "{got:#?}"
    );
    assert!(
        got[17].ends_with(r#"{"jsonrpc":"2.0","result":{"KID":"abc","KEYS":[{"KEY":{"NAME":"k2","VALUE":"secret2","EXPIRES":T}},{"KEY":{"NAME":"k1","VALUE":"secret1","EXPIRES":T}}]},"id":17}"#),
        "{got:#?}"
    );
    for i in [17, 15] {
        want.remove(i);
        got.remove(i);
    }
    kamailio::conclude(&dir, &want, &got, "auth_xkeys");
}
