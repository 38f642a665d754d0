//! Differential test against Kamailio itself, for path: REGISTERs through
//! an edge proxy that adds Path headers (`add_path`, `add_path_received`,
//! with a user, parameters, twice, before a Path already there) and
//! requests routed back through a Path entry (`loose_route` with and
//! without `use_received`, both `received_format`s, another
//! `received_name`); what the next hop gets is compared: the Path and
//! Route headers, the Request-URI, the return codes, `$du`, and which
//! peer the request went to.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, Reply, UdpPeer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const MODULES: &[&str] = &["sl", "pv", "textops", "rr", "path"];

/// The configuration after its head.
const BODY: &str = r#"__PARAMS__
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-T);
    if ($var(t) == "lr") {
        $var(r) = loose_route();
        append_hf("X-R: $var(r) du=$du\r\n");
        forward();
        exit;
    }
    $du = $hdr(X-To);
    $var(r) = "none";
    if ($var(t) == "p0") { $var(r) = add_path(); }
    else if ($var(t) == "p1") { $var(r) = add_path("u1"); }
    else if ($var(t) == "p2") { $var(r) = add_path("u2", "x=1;y"); }
    else if ($var(t) == "pv") { $var(r) = add_path("$fU", "tag=$ft"); }
    else if ($var(t) == "r0") { $var(r) = add_path_received(); }
    else if ($var(t) == "r1") { $var(r) = add_path_received("u3"); }
    else if ($var(t) == "r2") { $var(r) = add_path_received("u4", "ob"); }
    else if ($var(t) == "twice") { add_path("a"); $var(r) = add_path_received("b"); }
    append_hf("X-R: $var(r)\r\n");
    forward();
}
"#;

/// Waits for the request with this Call-ID at either peer.
fn arrival(peers: &[(&str, &UdpPeer)], call: &str) -> Option<(String, Reply)> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        for (name, p) in peers {
            if let Some(r) = p.recv_matching(Duration::from_millis(50), |r| {
                r.msg.msg().call_id().ok() == Some(call)
            }) {
                return Some((name.to_string(), r));
            }
        }
    }
    None
}

fn all(r: &Reply, name: &str) -> String {
    r.msg
        .msg()
        .headers_by_name(name)
        .map(|h| h.value.to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let (uac, uas1, uas2) = (UdpPeer::new(), UdpPeer::new(), UdpPeer::new());
    kamailio::wait_until_up(&uac, srv, kamailio::PROBE, None);
    let peers = [("first", &uas1), ("second", &uas2)];
    let mut out = Vec::new();
    let mut n = 0;
    let mut send = |t: &str, method: &str, ruri: &str, extra: &str| {
        n += 1;
        let call = format!("path{n}-{t}");
        let text = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKpath{n}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=ft{n}\r\nTo: <sip:alice@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nContact: <sip:alice@10.0.0.9:5060>\r\nX-T: {t}\r\nX-To: sip:{to}\r\n{extra}Content-Length: 0\r\n\r\n",
            a = uac.addr(),
            to = uas1.addr(),
        );
        uac.send(srv, &text);
        let line = match arrival(&peers, &call) {
            Some((who, r)) => format!(
                "{call}: to {who} ruri={} R=[{}] Path=[{}] Route=[{}]",
                r.msg.msg().request_uri().map_or("?", |u| u.raw),
                r.header("X-R").unwrap_or_default(),
                all(&r, "Path"),
                all(&r, "Route"),
            ),
            None => format!("{call}: nothing"),
        };
        out.push(line);
    };
    for t in ["p0", "p1", "p2", "pv", "r0", "r1", "r2", "twice"] {
        send(t, "REGISTER", "sip:example.com", "");
    }
    send(
        "p0",
        "REGISTER",
        "sip:example.com",
        "Path: <sip:edge0.example.com;lr>\r\n",
    );
    send(
        "r1",
        "REGISTER",
        "sip:example.com",
        "Supported: path\r\nPath: <sip:e1.example.com;lr>, <sip:e2.example.com;lr>\r\n",
    );
    let (b, c) = (uas1.addr(), uas2.addr());
    let routes = [
        format!("<sip:{srv};lr;received=sip:{c}>"),
        format!("<sip:{srv};lr;received=sip:{c}%3Btransport%3Dudp>"),
        format!("<sip:u1@{srv};lr;received=sip:{c}>"),
        format!("<sip:{srv};lr>"),
        format!("<sip:{srv};lr;received={}~{}~1>", c.ip(), c.port()),
        format!(
            "<sip:{srv};lr;rcv={}~{}~1;received=sip:{b}>",
            c.ip(),
            c.port()
        ),
        format!("<sip:{srv};lr;rcv={}~{}~1>", c.ip(), c.port()),
        format!("<sip:{srv};lr;received=sip:{c}>, <sip:{b};lr>"),
    ];
    for r in &routes {
        send(
            "lr",
            "INVITE",
            &format!("sip:bob@{b}"),
            &format!("Route: {r}\r\n"),
        );
    }
    // A preloaded route set whose first entry is not ours.
    send(
        "lr",
        "INVITE",
        &format!("sip:bob@{b}"),
        &format!("Route: <sip:{c};lr>\r\n"),
    );
    // Each run has its own ports: name the addresses.
    let names = [(srv, "SRV"), (uac.addr(), "A"), (b, "B"), (c, "C")];
    out.into_iter()
        .map(|mut l| {
            for (addr, name) in names {
                l = l.replace(&addr.to_string(), name);
                l = l.replace(&addr.port().to_string(), &format!("{name}-PORT"));
            }
            l
        })
        .collect()
}

#[test]
fn path_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    for (setting, params) in [
        ("received", r#"modparam("path", "use_received", 1)"#),
        ("plain", ""),
        (
            "tilde",
            r#"modparam("path", "use_received", 1)
modparam("path", "received_format", 1)
modparam("path", "received_name", "rcv")"#,
        ),
    ] {
        let dir = kamailio::fresh_dir(&format!("path-{setting}"));
        let cfg = (kamailio::head(MODULES) + BODY).replace("__PARAMS__", params);
        let (want, got) =
            kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
        assert!(
            want.iter().any(|l| l.contains("Path=[<sip:")),
            "{setting}: {want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, setting);
    }
}
