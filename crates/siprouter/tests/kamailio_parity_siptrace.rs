//! Differential test against Kamailio itself, for siptrace: the same
//! requests through Kamailio 5.6 and through siprouter with HEPv3 copies
//! going to a UDP socket of the test, and every HEP packet compared chunk
//! by chunk (the time chunks left out, ports named, the proxy's own branch
//! and Server header left out of the payload): `sip_trace()` on one
//! message, with a correlation id, on a whole transaction (relayed INVITE,
//! provisional and final replies; a cancelled one with its CANCEL, 487
//! and ACK), `hlog()` with and without a correlation id, and
//! `trace_mode=1` mirroring all traffic; then the rows `sip_trace()`
//! writes to the `sip_trace` table (SQLite).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{answer, kamailio, UdpPeer};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const MODULES: &[&str] = &["sl", "tm", "rr", "pv", "textops", "siputils", "siptrace"];

const BODY: &str = r#"__PARAMS__
modparam("siptrace", "trace_on", 1)
modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:__HEP__")
modparam("siptrace", "hep_mode_on", 1)
modparam("siptrace", "hep_version", 3)
modparam("siptrace", "hep_capture_id", 42)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-T) == "dbmsg") {
        $var(rc) = sip_trace();
        append_to_reply("X-RC: $var(rc)\r\n");
        sl_send_reply("200", "traced");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    $var(t) = $hdr(X-T);
    if ($var(t) == "msg") { $var(rc) = sip_trace(); }
    else if ($var(t) == "cid") { $var(rc) = sip_trace("sip:127.0.0.1:__HEP__", "$ci-x"); }
    else if ($var(t) == "log") { hlog("hello $rm"); $var(rc) = hlog("cid-$ci", "second"); }
    else if ($var(t) == "tx") {
        $var(rc) = sip_trace("sip:127.0.0.1:__HEP__", "$ci-t", "t");
        record_route();
        $du = $hdr(X-To);
        t_relay();
        exit;
    }
    else if ($var(t) == "relay") { $du = $hdr(X-To); t_relay(); exit; }
    else { $var(rc) = "none"; }
    append_to_reply("X-RC: $var(rc)\r\n");
    sl_send_reply("200", "traced");
}
"#;

const WAIT: Duration = Duration::from_secs(3);

struct Peers {
    a: UdpPeer,
    b: UdpPeer,
    hep: UdpSocket,
}

fn names(p: &Peers, srv: SocketAddr) -> Vec<(String, &'static str)> {
    vec![
        (srv.port().to_string(), "P"),
        (p.a.addr().port().to_string(), "A"),
        (p.b.addr().port().to_string(), "B"),
        (p.hep.local_addr().unwrap().port().to_string(), "H"),
    ]
}

fn name(text: &str, names: &[(String, &'static str)]) -> String {
    let mut t = text.to_string();
    for (port, n) in names {
        t = t.replace(port.as_str(), &format!("<{n}>"));
    }
    t
}

/// A SIP payload with the proxy's own branch and `Server` left out.
fn payload(text: &str, names: &[(String, &'static str)]) -> String {
    name(text, names)
        .split("\r\n")
        .filter(|l| !l.starts_with("Server:"))
        .map(|l| {
            if l.starts_with("Via: SIP/2.0/UDP 127.0.0.1:<P>;branch=") {
                "Via: SIP/2.0/UDP 127.0.0.1:<P>;branch=BRANCH".to_string()
            } else if let Some(i) = l.find(";tag=").filter(|_| l.starts_with("To:")) {
                // tm's own To tag (`<32 hex>-<hex>`) is made another way.
                let tag = &l[i + 5..];
                match tag.find('-') {
                    Some(32) if tag[..32].bytes().all(|b| b.is_ascii_hexdigit()) => {
                        format!("{};tag=LOCAL", &l[..i])
                    }
                    _ => l.to_string(),
                }
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// The HEP packets that come within a step, each as one line, sorted.
fn packets(p: &Peers, srv: SocketAddr) -> Vec<String> {
    let names = names(p, srv);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_millis(600);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        p.hep
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok((n, _)) = p.hep.recv_from(&mut buf) else {
            break;
        };
        let Some(chunks) = sr_mod_siptrace::hep::decode_v3(&buf[..n]) else {
            out.push(format!("not HEP3: {:?}", &buf[..n.min(16)]));
            continue;
        };
        let line: Vec<String> = chunks
            .iter()
            .filter(|(k, _)| !matches!(k, 9 | 10))
            .map(|(k, v)| {
                let val = match k {
                    3 | 4 if v.len() == 4 => format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3]),
                    7 | 8 if v.len() == 2 => {
                        name(&u16::from_be_bytes([v[0], v[1]]).to_string(), &names)
                    }
                    12 if v.len() == 4 => u32::from_be_bytes([v[0], v[1], v[2], v[3]]).to_string(),
                    15 | 17 | 14 => payload(&String::from_utf8_lossy(v), &names),
                    _ => format!("{v:?}"),
                };
                format!("{k}={val}")
            })
            .collect();
        out.push(line.join(" "));
    }
    out.sort();
    out
}

fn req(p: &Peers, method: &str, call: &str, t: &str, extra: &str) -> String {
    format!(
        "{method} sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=f-{call}\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nContact: <sip:alice@{a}>\r\nX-T: {t}\r\nX-To: sip:{b}\r\n{extra}Content-Length: 0\r\n\r\n",
        a = p.a.addr(),
        b = p.b.addr(),
    )
}

fn scenario(p: &Peers, srv: SocketAddr, all_traffic: bool) -> Vec<String> {
    kamailio::wait_until_up(&p.a, srv, kamailio::PROBE, None);
    // The probes may have been mirrored.
    let _ = packets(p, srv);
    let mut out = Vec::new();
    let step = |label: &str, out: &mut Vec<String>| {
        out.push(format!("== {label}"));
        out.extend(packets(p, srv));
    };
    if !all_traffic {
        for t in ["msg", "cid", "log"] {
            p.a.send(srv, &req(p, "OPTIONS", &format!("st-{t}"), t, ""));
            let r = p.a.recv_status(200, WAIT);
            out.push(format!(
                "{t}: rc {}",
                r.and_then(|r| r.header("X-RC")).unwrap_or_default()
            ));
            step(t, &mut out);
        }
    }
    // A transaction traced whole.
    let t = if all_traffic { "relay" } else { "tx" };
    p.a.send(srv, &req(p, "INVITE", "st-tx1", t, ""));
    if let Some(inv) = p.b.recv_method("INVITE", WAIT) {
        p.b.send(srv, &answer(&inv, 180, "Ringing", "tb1", &[]));
        let _ = p.a.recv_status(180, WAIT);
        p.b.send(
            srv,
            &answer(
                &inv,
                200,
                "OK",
                "tb1",
                &[&format!("Contact: <sip:bob@{}>", p.b.addr())],
            ),
        );
        let _ = p.a.recv_status(200, WAIT);
    }
    step("tx1", &mut out);
    // A cancelled one.
    p.a.send(srv, &req(p, "INVITE", "st-tx2", t, ""));
    if let Some(inv) = p.b.recv_method("INVITE", WAIT) {
        p.b.send(srv, &answer(&inv, 180, "Ringing", "tb2", &[]));
        let _ = p.a.recv_status(180, WAIT);
        p.a.send(srv, &req(p, "CANCEL", "st-tx2", t, ""));
        let _ = p.a.recv_status(200, WAIT);
        if let Some(c) = p.b.recv_method("CANCEL", WAIT) {
            p.b.send(srv, &answer(&c, 200, "OK", "tb2", &[]));
        }
        p.b.send(srv, &answer(&inv, 487, "Request Terminated", "tb2", &[]));
        let _ = p.b.recv_method("ACK", WAIT);
        if let Some(r) = p.a.recv_status(487, WAIT) {
            let to = r.header("To").unwrap_or_default();
            p.a.send(
                srv,
                &req(p, "ACK", "st-tx2", t, "")
                    .replace("To: <sip:bob@example.com>\r\n", &format!("To: {to}\r\n")),
            );
        }
    }
    step("tx2", &mut out);
    out
}

fn sqlite(db: &Path, sql: &str) -> String {
    sr_testkit::sqlite3(db, sql)
}

#[test]
fn siptrace_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let peers = Peers {
        a: UdpPeer::new(),
        b: UdpPeer::new(),
        hep: UdpSocket::bind("127.0.0.1:0").unwrap(),
    };
    let hep_port = peers.hep.local_addr().unwrap().port().to_string();
    for (setting, params, all) in [
        (
            "script",
            r#"modparam("siptrace", "trace_to_database", 0)"#,
            false,
        ),
        (
            "all-traffic",
            r#"modparam("siptrace", "trace_to_database", 0)
modparam("siptrace", "trace_mode", 1)"#,
            true,
        ),
    ] {
        let dir = kamailio::fresh_dir(&format!("siptrace-{setting}"));
        let cfg = (kamailio::head(MODULES) + BODY)
            .replace("__PARAMS__", params)
            .replace("__HEP__", &hep_port);
        let (want, got) =
            kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
                scenario(&peers, srv, all)
            });
        assert!(
            want.iter().any(|l| l.contains(" 15=")),
            "{setting}: {want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, setting);
    }
}

/// The rows `sip_trace()` writes, Kamailio's and siprouter's, with
/// db_sqlite on Kamailio's own schema. (The time is compared as a date:
/// Kamailio's db_sqlite writes a Julian day number, siprouter's the text
/// form; each reads both.)
#[test]
fn siptrace_rows_match_kamailio() {
    let mut modules = MODULES.to_vec();
    modules.insert(0, "db_sqlite");
    if !kamailio::available(&modules) {
        return;
    }
    let peers = Peers {
        a: UdpPeer::new(),
        b: UdpPeer::new(),
        hep: UdpSocket::bind("127.0.0.1:0").unwrap(),
    };
    let dir = kamailio::fresh_dir("siptrace-db");
    let db = dir.join("trace.db");
    let params = format!(
        "modparam(\"siptrace\", \"db_url\", \"sqlite:///{}\")\nmodparam(\"siptrace\", \"hep_mode_on\", 0)",
        db.display()
    );
    let cfg = (kamailio::head(&modules) + BODY)
        .replace("__PARAMS__", &params)
        .replace(
            "__HEP__",
            &peers.hep.local_addr().unwrap().port().to_string(),
        )
        .replace("modparam(\"siptrace\", \"hep_mode_on\", 1)\n", "");
    let prepare = || {
        let _ = std::fs::remove_file(&db);
        for f in ["standard-create.sql", "siptrace-create.sql"] {
            let sql = std::fs::read_to_string(format!("/usr/share/kamailio/db_sqlite/{f}"))
                .expect("Kamailio's SQLite schema");
            sqlite(&db, &sql);
        }
    };
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &prepare, &|srv| {
        kamailio::wait_until_up(&peers.a, srv, kamailio::PROBE, None);
        let names = names(&peers, srv);
        let mut out = Vec::new();
        // In-dialog requests: Kamailio 5.6 stores an empty To tag as NULL,
        // which the table refuses (siprouter stores '').
        for t in ["dbmsg", "dbmsg"] {
            let r = req(&peers, "MESSAGE", &format!("db-{}", out.len()), t, "").replace(
                "To: <sip:bob@example.com>\r\n",
                "To: <sip:bob@example.com>;tag=tt\r\n",
            );
            peers.a.send(srv, &r);
            let r = peers.a.recv_status(200, WAIT);
            out.push(format!(
                "rc {}",
                r.and_then(|r| r.header("X-RC")).unwrap_or_default()
            ));
        }
        let rows = sqlite(
            &db,
            "SELECT id, callid, traced_user, method, status, fromip, toip, fromtag, totag, direction, CAST(msg AS TEXT), datetime(time_stamp) > '2020', time_us >= 0 FROM sip_trace ORDER BY id",
        );
        out.extend(rows.lines().map(|l| payload(l, &names)));
        out
    });
    assert!(want.iter().any(|l| l.contains("MESSAGE")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "database");
}
