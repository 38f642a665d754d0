//! Differential test against Kamailio itself, for module crypto:
//! `crypto_aes_encrypt` and `crypto_aes_decrypt` with the derived key
//! (the default salt, another salt, none), with raw base64 keys of 128
//! and 256 bits and a fixed `init_vector`, and with a random IV (the
//! round trip and the length compared); `crypto_hmac_sha256`. Kamailio's
//! ciphertexts are decrypted by siprouter and the reverse, since both
//! servers see the same requests: the ciphertexts must be equal.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "crypto"];

const BODY: &str = r#"
__PARAMS__
request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    $var(e) = "none";
    $var(d) = "none";
    $var(r2) = 0;
    if ($hdr(X-Op) == "enc") {
        crypto_aes_encrypt("$hdr(X-P)", "$hdr(X-K)", "$var(e)");
        $var(r) = $rc;
        if ($var(r) == 1) {
            crypto_aes_decrypt("$var(e)", "$hdr(X-K)", "$var(d)");
            $var(r2) = $rc;
        }
        if ($hdr(X-Random) != $null) {
            $var(e) = $(var(e){s.len});
        }
        append_to_reply("X-R: $var(r) [$var(e)] $var(r2) [$var(d)]\r\n");
    } else if ($hdr(X-Op) == "dec") {
        crypto_aes_decrypt("$hdr(X-C)", "$hdr(X-K)", "$var(d)");
        append_to_reply("X-R: $rc [$var(d)]\r\n");
    } else {
        crypto_hmac_sha256("$hdr(X-P)", "$hdr(X-K)", "$var(d)");
        append_to_reply("X-R: $rc [$var(d)]\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

/// 16 bytes 0..15, base64.
const IV: &str = "AAECAwQFBgcICQoLDA0ODw==";
/// A 128-bit key and a 256-bit key, base64.
const KEY128: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
const KEY256: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn step(n: usize, op: &str, hdrs: &str) -> (String, String) {
    let call = format!("cr{n}");
    let r = kamailio::options(&call, &format!("X-Op: {op}\r\n{hdrs}"));
    (call, r)
}

fn steps(setting: &str) -> Vec<(String, String)> {
    let mut s: Vec<(String, &str, String)> = Vec::new();
    let mut add = |op: &str, h: String| s.push((op.to_string(), "", h));
    match setting {
        "raw" => {
            for key in [KEY128, KEY256] {
                add("enc", format!("X-P: hello world\r\nX-K: {key}\r\n"));
                add("enc", format!("X-P: 0123456789abcdef\r\nX-K: {key}\r\n"));
            }
            add("enc", "X-P: hello\r\nX-K: c2hvcnQ=\r\n".into());
            // IV 0..15 then the AES-128 ciphertext of "hi" under KEY128.
            add(
                "dec",
                format!("X-C: AAECAwQFBgcICQoLDA0OD8pU0Gl5MR5xMoG6IoHczEk=\r\nX-K: {KEY128}\r\n"),
            );
            add("dec", format!("X-C: AAECAw==\r\nX-K: {KEY128}\r\n"));
        }
        "random" => {
            for key in [KEY128, KEY256] {
                add(
                    "enc",
                    format!("X-P: hello world\r\nX-K: {key}\r\nX-Random: 1\r\n"),
                );
                add(
                    "enc",
                    format!("X-P: 0123456789abcdef0\r\nX-K: {key}\r\nX-Random: 1\r\n"),
                );
            }
        }
        _ => {
            add("enc", "X-P: hello world\r\nX-K: secret\r\n".into());
            add("enc", "X-P: 0123456789abcdef\r\nX-K: secret\r\n".into());
            add(
                "enc",
                "X-P: sip:alice@example.com;tag=1\r\nX-K: k\r\n".into(),
            );
            add("enc", "X-P: hello world\r\nX-K: another key\r\n".into());
            add(
                "dec",
                "X-C: 6Q+lbF1Y8XoDuz2T3yO6Yw==\r\nX-K: secret\r\n".into(),
            );
            add("dec", "X-C: AAAA\r\nX-K: secret\r\n".into());
            add("hmac", "X-P: hello\r\nX-K: secret\r\n".into());
            add("hmac", "X-P: sip:bob@example.com\r\nX-K: k\r\n".into());
        }
    }
    s.into_iter()
        .enumerate()
        .map(|(n, (op, _, h))| step(n, &op, &h))
        .collect()
}

#[test]
fn crypto_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    for (setting, params) in [
        ("default", String::new()),
        ("salt", r#"modparam("crypto", "salt", "a-longer-salt-text")"#.into()),
        ("nosalt", r#"modparam("crypto", "salt", "")"#.into()),
        (
            "raw",
            format!(
                "modparam(\"crypto\", \"key_derivation\", 0)\nmodparam(\"crypto\", \"init_vector\", \"{IV}\")"
            ),
        ),
        ("random", r#"modparam("crypto", "key_derivation", 0)"#.into()),
    ] {
        let dir = kamailio::fresh_dir(&format!("crypto-{setting}"));
        let body = BODY.replace("__PARAMS__", &params);
        let (want, got) = kamailio::run_parity(
            &dir,
            MODULES,
            &body,
            &[],
            &steps(setting),
            &["X-R"],
            siprouter::in_tree(),
        );
        assert!(
            want[0].starts_with("cr0: 1 [") && want[0].ends_with(" 1 [hello world]"),
            "{setting}: {want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, setting);
    }
}
