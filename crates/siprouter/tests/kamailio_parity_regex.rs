//! Differential test against Kamailio itself, for the regex module: a
//! groups file (comments, blank and indented lines, an empty group,
//! escapes), `pcre_match` with expressions from headers and the script
//! (`$$` for the end of line, `(?i)`, one that does not compile, bytes
//! outside ASCII, a class of letters outside ASCII, `\d`),
//! `pcre_match_group` with and without a group (an unknown group, a
//! group that is not a number, digits before other characters), then
//! `regex.reload` through Kamailio's `kamcmd` after the file changed, and
//! after it broke (the groups in use stay) — in two settings (the
//! default options, and `pcre_caseless` with `pcre_extended`).
//!
//! Without Kamailio (its regex module, kamcmd) installed the test prints
//! a notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets
//! it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "ctl", "regex"];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("regex", "file", "__FILE__")
__OPTIONS__
request_route {
    if ($hdr(X-S) == $null) { sl_send_reply("200", "up"); exit; }
    pcre_match("$hdr(X-S)", "$hdr(X-R)"); $var(a) = $rc;
    pcre_match_group("$hdr(X-S)", "$hdr(X-G)"); $var(b) = $rc;
    pcre_match_group("$hdr(X-S)"); $var(c) = $rc;
    pcre_match("$hdr(X-S)", "^user[1234]$$"); $var(d) = $rc;
    pcre_match("$hdr(X-S)", "(?i)^twinkle"); $var(e) = $rc;
    append_to_reply("X-A: $var(a) $var(b) $var(c) $var(d) $var(e)\r\n");
    sl_send_reply("200", "ok");
}
"#;

const FILE: &str = "### User-Agents
[0]

# Softphones
^Twinkle/1
^X-Lite
 ^indented is skipped
^eyeBeam

### Blocked addresses
[1]
^190\\.232\\.250\\.226$
^86\\.92\\.112\\.
[7]
[9]
^1\\d{3}$
^((\\+|00)34)?900\\d{6}$
^a b c$";

const CHANGED: &str = "[0]\n^Linphone\n[1]\n^86\\.\n";
const BROKEN: &str = "^before any group\n[0]\nx\n";

/// (string, expression, group) of each request.
const CASES: &[(&str, &str, &str)] = &[
    ("Twinkle/1.4", "^Twin", "0"),
    ("twinkle/1.4", "^Twin", "1"),
    ("190.232.250.226", "250\\.", "1"),
    ("86.92.112.7", "^86", "1"),
    ("", "^$", "2"),
    ("1234", "^\\d+$", "3"),
    ("12345", "^\\d{4}$", "3"),
    ("0034900123456", "900", "3"),
    ("abc", "a b c", "3"),
    ("user3", "a(b", "9"),
    ("héllo", "^h.llo$", "x"),
    ("٣", "^\\d$", "0"),
    ("X-Lite 4", "lite", "-1"),
    ("über", "^[äöü]ber$", "1x"),
    ("86.1", "^[^a-z]+$", "1"),
];

fn ask(peer: &UdpPeer, srv: SocketAddr, tag: &str) -> Vec<String> {
    CASES
        .iter()
        .enumerate()
        .map(|(i, (s, re, g))| {
            let call = format!("rx-{tag}-{i}");
            let extra = format!("X-S: {s}\r\nX-R: {re}\r\nX-G: {g}\r\n");
            let req = kamailio::options(&call, &extra).replace("__VIA__", &peer.addr().to_string());
            peer.send(srv, &req);
            let r = peer
                .recv_matching(Duration::from_secs(3), |r| {
                    r.msg.msg().call_id().ok() == Some(call.as_str())
                })
                .unwrap_or_else(|| panic!("{call}: no answer"));
            format!(
                "{tag} [{s}] [{re}] [{g}]: {}",
                r.header("X-A").unwrap_or_default()
            )
        })
        .collect()
}

fn scenario(srv: SocketAddr, sock: &Path, file: &Path) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = ask(&peer, srv, "start");
    std::fs::write(file, CHANGED).unwrap();
    out.extend(kamailio::kamcmd(sock, &["regex.reload"], &|l| {
        l.to_string()
    }));
    out.extend(ask(&peer, srv, "changed"));
    std::fs::write(file, BROKEN).unwrap();
    out.extend(kamailio::kamcmd(sock, &["regex.reload"], &|l| {
        l.to_string()
    }));
    out.extend(ask(&peer, srv, "broken"));
    out
}

#[test]
fn regex_matches_kamailio() {
    if !kamailio::available(MODULES) || !kamailio::kamcmd_available(&[]) {
        return;
    }
    for (n, options) in [
        "",
        "modparam(\"regex\", \"pcre_caseless\", 1)\nmodparam(\"regex\", \"pcre_extended\", 1)",
    ]
    .iter()
    .enumerate()
    {
        let dir = kamailio::fresh_dir(&format!("regex{n}"));
        let sock = dir.join("ctl.sock");
        let file = dir.join("groups");
        let cfg = (kamailio::head(MODULES) + BODY)
            .replace("__SOCK__", &sock.display().to_string())
            .replace("__FILE__", &file.display().to_string())
            .replace("__OPTIONS__", options);
        let (want, got) = kamailio::run_scenario(
            &dir,
            &cfg,
            siprouter::in_tree(),
            &|| std::fs::write(&file, FILE).unwrap(),
            &|srv| scenario(srv, &sock, &file),
        );
        assert!(
            want.iter()
                .any(|l| l.starts_with("start [Twinkle/1.4]") && l.ends_with(": 1 1 1 -1 1")),
            "{want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, &format!("regex, setting {n}"));
    }
}
