//! Differential test against Kamailio itself, for the secfilter module:
//! one SQLite file made with Kamailio's schema (blocked and allowed user
//! agents, countries, domains, IP addresses, users, blocked
//! destinations), one configuration, the same requests to both servers
//! with every check's return code (user agent, source IP, country,
//! From/To/Contact with names, users and domains, destinations exactly
//! and by prefix, SQL injection in one value and in the whole message,
//! which drops it), then the RPC commands through Kamailio's `kamcmd`
//! (`secfilter.stats` after the checks, `print` by section, `add_bl`,
//! `add_wl`, errors, `stats_reset`, `reload`), everything printed
//! compared, in two settings (`dst_exact_match` 1 and 0; destinations
//! listed longest first, where Kamailio 5.6's prefix comparison works:
//! siprouter compares every entry as a prefix in any order). A successful
//! `add_dst` is left out: Kamailio 5.6.3 prints stray bytes after the
//! number in its answer (tests/secfilter.rs checks siprouter's).
//!
//! Without Kamailio (its secfilter and db_sqlite modules, kamcmd)
//! installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "/usr/share/kamailio/db_sqlite/secfilter-create.sql";

const MODULES: &[&str] = &["sl", "pv", "textops", "db_sqlite", "ctl", "secfilter"];

const BODY: &str = r#"modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("secfilter", "db_url", "__DB__")
__PARAMS__
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    $var(ua) = secf_check_ua();
    $var(ip) = secf_check_ip();
    $var(c1) = secf_check_country("XX");
    $var(c2) = secf_check_country("es");
    $var(c3) = secf_check_country("$hdr(X-Country)");
    $var(f) = secf_check_from_hdr();
    $var(t) = secf_check_to_hdr();
    $var(ct) = secf_check_contact_hdr();
    $var(d1) = secf_check_dst("0900");
    $var(d2) = secf_check_dst("5551234");
    $var(d3) = secf_check_dst("$rU");
    $var(d4) = secf_check_dst("12");
    $var(q1) = secf_check_sqli_hdr("a'b");
    $var(q2) = secf_check_sqli_hdr("$ua");
    $var(q3) = secf_check_sqli_hdr("x%24y");
    append_to_reply("X-R: ua=$var(ua) ip=$var(ip) c=$var(c1),$var(c2),$var(c3) f=$var(f) t=$var(t) ct=$var(ct) d=$var(d1),$var(d2),$var(d3),$var(d4) q=$var(q1),$var(q2),$var(q3)\r\n");
    if ($hdr(X-Sqli) != $null) {
        secf_check_sqli_all();
        append_to_reply("X-S: continued\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

fn fill(path: &Path) {
    let _ = std::fs::remove_file(path);
    let schema = std::fs::read_to_string(SCHEMA).expect("Kamailio's secfilter schema");
    let sql = format!(
        "CREATE TABLE version (table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL);
{schema}
INSERT INTO secfilter (action, type, data) VALUES
  (0, 0, 'friendly-scanner'), (1, 0, 'good'), (0, 0, 'sipcli'),
  (0, 1, 'XX'), (1, 1, 'ES'),
  (0, 2, 'evil.com'), (1, 2, 'trusted.org'), (0, 2, 'bad'),
  (0, 3, '10.'), (1, 3, '127.0.0.2'),
  (0, 4, 'sipvicious'), (1, 4, 'alice'), (0, 4, 'Mallory'), (1, 4, 'Friend'),
  (2, 0, '0900'), (2, 0, '555'), (2, 0, '12');"
    );
    sr_testkit::sqlite3(path, &sql);
}

/// Each request: R-URI user, From, To, Contact (or ""), User-Agent (or
/// ""), whether to run `secf_check_sqli_all`.
const REQUESTS: &[(&str, &str, &str, &str, &str, bool)] = &[
    (
        "0900",
        "<sip:alice@a.net>",
        "<sip:bob@b.net>",
        "<sip:c@1.2.3.4>",
        "friendly-scanner 1.0",
        false,
    ),
    (
        "555",
        "\"Mallory\" <sip:m@x.net>",
        "<sip:sipviciousX@evil.com>",
        "",
        "FRIENDLY-SCANNER",
        false,
    ),
    (
        "5551",
        "Friend <sip:eve@bad.org>",
        "\"\" <sip:u@trusted.org>",
        "<sip:alice@evil.com>",
        "Good/2",
        false,
    ),
    (
        "12",
        "<sip:x@evil.com>",
        "\"Friendly\" <sip:y@z.net>",
        "*",
        "",
        false,
    ),
    (
        "777",
        "<sip:ali@sub.trusted.org>",
        "<sip:bob@b.net>",
        "<sip:u@10.0.0.1>",
        "sipcli/1.8",
        false,
    ),
    (
        "1",
        "<sip:evil.com>",
        "<sip:bob@b.net>",
        "<sip:evil.com>",
        "",
        false,
    ),
    (
        "1",
        "<sip:alice@a.net>",
        "<sip:bob@b.net>",
        "",
        "curl",
        true,
    ),
    (
        "1",
        "<sip:o'neil@a.net>",
        "<sip:bob@b.net>",
        "",
        "curl",
        true,
    ),
    (
        "1",
        "<sip:alice@a.net>",
        "<sip:bob@b.net>",
        "",
        "x --y",
        true,
    ),
    (
        "1",
        "<sip:alice@a.net>",
        "\"a%60b\" <sip:bob@b.net>",
        "",
        "",
        true,
    ),
];

const RPC: &[&[&str]] = &[
    &["secfilter.stats"],
    &["secfilter.print", "ua"],
    &["secfilter.print", "d"],
    &["secfilter.print", "user"],
    &["secfilter.print", "ip"],
    &["secfilter.print", "country"],
    &["secfilter.add_bl", "user", "bob"],
    &["secfilter.add_wl", "dom", "x.org"],
    &["secfilter.add_bl", "", "evil-ua"],
    &["secfilter.add_bl", "bogus", "v"],
    &["secfilter.add_bl"],
    &["secfilter.add_wl", "user"],
    &["secfilter.add_dst"],
    &["secfilter.print", "u"],
    &["secfilter.print", "dst"],
    &["secfilter.print", "domain"],
    &["secfilter.stats_reset"],
    &["secfilter.stats"],
    &["secfilter.reload"],
    &["secfilter.print", "user"],
];

fn scenario(srv: SocketAddr, sock: &Path) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let via = peer.addr().to_string();
    let mut out = Vec::new();
    for (n, (ruri, from, to, contact, ua, sqli)) in REQUESTS.iter().enumerate() {
        let call = format!("sf-{n}");
        let mut h = "X-C: 1\r\nX-Country: XX\r\n".to_string();
        if !contact.is_empty() {
            h.push_str(&format!("Contact: {contact}\r\n"));
        }
        if !ua.is_empty() {
            h.push_str(&format!("User-Agent: {ua}\r\n"));
        }
        if *sqli {
            h.push_str("X-Sqli: 1\r\n");
        }
        let req = format!(
            "OPTIONS sip:{ruri}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{call}\r\nFrom: {from};tag=1\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\n{h}Content-Length: 0\r\n\r\n"
        );
        peer.send(srv, &req);
        let r = peer.recv_matching(Duration::from_millis(1500), |r| {
            r.status() == Some(200) && r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        out.push(match r {
            Some(r) => format!(
                "{call}: {} | {}",
                r.header("X-R").unwrap_or_default(),
                r.header("X-S").unwrap_or_default()
            ),
            None => format!("{call}: no answer (dropped)"),
        });
    }
    out.extend(
        RPC.iter()
            .flat_map(|c| kamailio::kamcmd(sock, c, &str::to_string)),
    );
    out
}

#[test]
fn secfilter_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    if !kamailio::kamcmd_available(&[SCHEMA]) {
        return;
    }
    for (setting, params) in [
        ("exact", ""),
        ("prefix", "modparam(\"secfilter\", \"dst_exact_match\", 0)"),
    ] {
        let dir = kamailio::fresh_dir(&format!("secfilter-{setting}"));
        let sock = dir.join("ctl.sock");
        let db = dir.join("secf.db");
        let cfg = (kamailio::head(MODULES) + BODY)
            .replace("__SOCK__", &sock.display().to_string())
            .replace("__DB__", &format!("sqlite:///{}", db.display()))
            .replace("__PARAMS__", params);
        let (want, got) =
            kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| fill(&db), &|srv| {
                scenario(srv, &sock)
            });
        assert!(
            want.iter().any(|l| l.contains("ua=-2")),
            "{setting}: {want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, setting);
    }
}
