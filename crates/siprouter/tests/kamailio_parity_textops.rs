//! Differential test against Kamailio itself, for textops: the same
//! request (several headers of one name, compact names, a Privacy
//! header, an SDP body) through one textops function at a time in
//! Kamailio 5.6 and in siprouter, each forwarded statelessly to the same
//! next hop, comparing the return code, any variable written and the
//! whole message the next hop gets (but the proxy's own Via), byte for
//! byte.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::UdpPeer;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops"];

/// The calls, each run on a fresh copy of the request.
const CALLS: &[&str] = &[
    r#"search("^X-A: t")"#,
    r#"search("nomatch")"#,
    r#"search_body("^m=audio")"#,
    r#"search_append("X-A: two", ";app")"#,
    r#"search_append_body("a=sendrecv", "\r\na=X-added")"#,
    r#"replace("X-A: one", "X-A: uno")"#,
    r#"replace_all("two", "dos")"#,
    r#"replace_body("PCMU", "pcmu")"#,
    r#"replace_body_all("8000", "16000")"#,
    r#"replace_body_atonce("m=audio [0-9]+", "m=audio 9")"#,
    r#"subst("/^X-A: (.*)$/X-B: \1/")"#,
    r#"subst("/^x-a: (.*)$/X-B: \1/ig")"#,
    r#"subst_uri("/^sip:([0-9]+)@(.*)$/sip:00\1@\2/")"#,
    r#"subst_user("/^49/0049/")"#,
    r#"subst_body("/^o=([a-z]+)/o=bob/")"#,
    r#"subst_hf("X-A", "/t/T/g", "a")"#,
    r#"subst_hf("X-A", "/t/T/", "f")"#,
    r#"subst_hf("X-A", "/o/O/", "l")"#,
    r#"subst_hf("X-None", "/o/O/", "a")"#,
    r#"search_hf("X-A", "^two", "a")"#,
    r#"search_hf("X-A", "^two", "f")"#,
    r#"search_hf("X-A", "hree", "l")"#,
    r#"append_hf("X-New: 1\r\n")"#,
    r#"append_hf("X-New: 2\r\n", "Call-ID")"#,
    r#"insert_hf("X-New: 3\r\n")"#,
    r#"insert_hf("X-New: 4\r\n", "X-A")"#,
    r#"append_urihf("X-U: <", ">\r\n")"#,
    r#"remove_hf("X-A")"#,
    r#"remove_hf("f")"#,
    r#"remove_hf("X-None")"#,
    r#"remove_hf_re("^X-")"#,
    r#"remove_hf_re_pv("^X-$hdr(X-Sel)")"#,
    r#"remove_hf_exp("^X-", "^X-A")"#,
    r#"remove_hf_idx("X-A", "1")"#,
    r#"remove_hf_idx("X-A", "-1")"#,
    r#"remove_hf_idx("X-A", "5")"#,
    r#"replace_str("two", "2", "a")"#,
    r#"replace_str("e", "E", "f")"#,
    r#"replace_hdrs_str("o", "0", "a")"#,
    r#"replace_body_str("0", "O", "a")"#,
    r#"is_present_hf("X-A")"#,
    r#"is_present_hf("v")"#,
    r#"is_present_hf("X-None")"#,
    r#"is_present_hf_re("^X-[AB]")"#,
    r#"is_present_hf_pv("$hdr(X-Sel)")"#,
    r#"is_method("INVITE|BYE")"#,
    r#"is_method("OPTIONS")"#,
    r#"has_body()"#,
    r#"has_body("application/sdp")"#,
    r#"has_body("text/plain")"#,
    r#"is_privacy("id")"#,
    r#"is_privacy("user")"#,
    r#"is_audio_on_hold()"#,
    r#"set_body("hello", "text/plain")"#,
    r#"starts_with("$ru", "sip:49")"#,
    r#"starts_with("$ru", "tel")"#,
    r#"ends_with("$rU", "30")"#,
    r#"ends_with("$rU", "99")"#,
    r#"ends_with("$rU", "00")"#,
    r#"starts_with("$rU", "12")"#,
    r#"cmp_str("$rU", "4930")"#,
    r#"cmp_str("$rU", "49")"#,
    r#"cmp_istr("ABC", "abd")"#,
    r#"cmp_istr("ABC", "abc")"#,
    r#"in_list("b", "a,b,c", ",")"#,
    r#"in_list("z", "a,b,c", ",")"#,
    r#"in_list_prefix("49301", "33,49,1", ",")"#,
    r#"in_list_prefix("7", "33,49", ",")"#,
    r#"str_find("abcabc", "ca")"#,
    r#"str_find("abc", "x")"#,
    r#"str_ifind("ABCabc", "cA")"#,
    r#"$var(out) = "none"; regex_substring("abc123def456", "([a-z]+)([0-9]+)", "2", "3", "$var(out)")"#,
    r#"$var(out) = "none"; regex_substring("abc123def456", "([a-z]+)([0-9]+)", "0", "1", "$var(out)")"#,
    r#"$var(out) = "none"; regex_substring("abc123def456", "([a-z]+)([0-9]+)", "2", "1", "$var(out)")"#,
    r#"$var(out) = "none"; regex_substring("abc123def456", "([a-z]+)([0-9]+)", "1", "2", "$var(out)")"#,
    r#"$var(out) = "none"; regex_substring("abc", "x", "0", "0", "$var(out)")"#,
];

fn body() -> String {
    let mut b = String::from(
        "request_route {\n    if ($hdr(X-Call) == $null) { sl_send_reply(\"200\", \"up\"); exit; }\n    $var(rc) = \"none\";\n    $var(out) = \"\";\n",
    );
    for (i, c) in CALLS.iter().enumerate() {
        let (pre, call) = match c.rsplit_once("; ") {
            Some((pre, call)) => (format!("{pre}; "), call.to_string()),
            None => (String::new(), c.to_string()),
        };
        b.push_str(&format!(
            "    if ($hdr(X-Call) == \"{i}\") {{ {pre}$var(rc) = {call}; }}\n"
        ));
    }
    b.push_str("    append_hf(\"X-RC: $var(rc) out=$var(out)\\r\\n\");\n    forward();\n}\n");
    b
}

const SDP: &str = "v=0\r\no=alice 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendonly\r\n";

fn scenario(srv: SocketAddr) -> Vec<String> {
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    for (n, c) in CALLS.iter().enumerate() {
        let text = format!(
            "INVITE sip:4930@{uas} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bKtx{n}\r\nMax-Forwards: 70\r\nf: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: tx-{n}\r\nCSeq: 1 INVITE\r\nX-A: one\r\nX-A: two, three\r\nx-a: four\r\nX-B: keep\r\nPrivacy: id; header\r\nX-Sel: A\r\nX-Call: {n}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len(),
            uas = uas.addr(),
            uac = uac.addr(),
        );
        uac.send(srv, &text);
        let call = format!("tx-{n}");
        let got = uas.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        let line = match got {
            Some(r) => {
                // Without the proxy's Via (the first).
                let t = r.text();
                let mut lines: Vec<&str> = t.split("\r\n").collect();
                if let Some(i) = lines.iter().position(|l| l.starts_with("Via:")) {
                    lines.remove(i);
                }
                let t = lines
                    .join("\r\n")
                    .replace(&uas.addr().to_string(), "UAS")
                    .replace(&uac.addr().to_string(), "UAC");
                format!("{n} {c}: {t:?}")
            }
            None => format!("{n} {c}: nothing"),
        };
        out.push(line);
    }
    out
}

#[test]
fn textops_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("textops");
    let cfg = kamailio::head(MODULES) + &body();
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(
        want.iter().filter(|l| !l.ends_with("nothing")).count() > 50,
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "textops");
}
