//! Differential test against Kamailio itself, for tm as a proxy: parallel
//! forks answered in various orders (which final reply wins among 6xx,
//! 3xx, 4xx, 401/407 — merged challenges —, 5xx, a 503, a local 408),
//! provisional replies, a 2xx cancelling the other branches, two 2xx
//! both relayed, non-INVITE forks, the caller's CANCEL (and one that
//! matches nothing), a retransmitted INVITE, serial forking and a reply
//! from failure_route — every reply the caller gets (status, To tag,
//! challenge and Contact headers) and everything each user agent gets
//! (ACKs, CANCELs with their Reason) compared.
//!
//! Without Kamailio (tm) installed the test prints a notice and passes,
//! unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::scene::{first_line, Scene};
use sr_testkit::{kamailio, Reply};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "pv", "textops", "corex"];

const BODY: &str = r#"modparam("tm", "fr_timer", 1000)
modparam("tm", "fr_inv_timer", 2500)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("CANCEL|ACK")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    if ($hdr(X-D2) != $null) {
        $ru = $hdr(X-D2);
        append_branch();
    }
    $ru = $hdr(X-D);
    if ($hdr(X-N) != $null) { t_on_failure("NEXT"); }
    t_relay();
    exit;
}
failure_route[NEXT] {
    if (t_is_canceled()) { exit; }
    if (t_check_status("486")) {
        $ru = $hdr(X-N);
        t_relay();
        exit;
    }
    if (t_check_status("404")) { t_reply("480", "Gone Away"); exit; }
}
"#;

/// How the caller's replies are written: the status line, the To tag
/// (the user agents' own, or the server's), and the headers that tell
/// replies apart.
fn show(r: &Reply) -> String {
    let m = r.msg.msg();
    let tag = m.to_tag().ok().flatten().unwrap_or("");
    let tag = if tag.is_empty() || tag.starts_with('u') {
        tag
    } else {
        "<server's>"
    };
    let mut s = format!("{} [to-tag {tag}]", first_line(r));
    for h in [
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Contact",
        "Reason",
    ] {
        for v in r.text().lines().filter_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case(h))
                .map(|(_, v)| v.trim().to_string())
        }) {
            s.push_str(&format!(" [{h}: {v}]"));
        }
    }
    s
}

/// Everything user agent `i` got since its requests were answered:
/// ACKs (with their To tag), CANCELs (with their Reason), requests.
fn rest_of(p: &Scene, i: usize) -> String {
    let mut seen: Vec<String> = Vec::new();
    while let Some(r) = p.uas[i].recv(Duration::from_millis(150)) {
        let m = r.msg.msg();
        let mut l = first_line(&r)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        if let Some(why) = r.header("Reason") {
            l.push_str(&format!(" [Reason: {why}]"));
        }
        if m.method().map(|x| x.as_str()) == Some("ACK") {
            l.push_str(&format!(
                " [to-tag {}]",
                m.to_tag().ok().flatten().unwrap_or("")
            ));
        }
        if !seen.contains(&l) {
            seen.push(l);
        }
    }
    if seen.is_empty() {
        return format!("u{i}: -");
    }
    format!("u{i}: {}", seen.join(", "))
}

/// One answer of a user agent: which, the code, the reason, headers.
type Answer<'a> = (usize, u16, &'a str, &'a [&'a str]);

/// A case: its name, the method, the user agents forked to, the one
/// failure_route goes on to, the answers, how long the caller listens.
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<usize>,
    Option<usize>,
    Vec<Answer<'a>>,
    Duration,
);

/// A `method` request to user agents `to` (the first as the
/// Request-URI, the second as a branch; `next` for failure_route's serial
/// forking), answered with `answers` in order (a user agent answers the
/// request it got last, waiting for one if it has none yet); then what
/// the caller got within `wait` and what each user agent got after.
fn fork(
    p: &Scene,
    method: &str,
    to: &[usize],
    next: Option<usize>,
    answers: &[Answer<'_>],
    wait: Duration,
) -> String {
    let mut h = format!("X-T: f\r\nX-D: {}\r\n", p.uri(to[0]));
    if let Some(&b) = to.get(1) {
        h.push_str(&format!("X-D2: {}\r\n", p.uri(b)));
    }
    if let Some(n) = next {
        h.push_str(&format!("X-N: {}\r\n", p.uri(n)));
    }
    let call = p.send(method, "fork", &h);
    let mut got: HashMap<usize, Reply> = HashMap::new();
    let mut out = Vec::new();
    for &(i, code, reason, extra) in answers {
        if let std::collections::hash_map::Entry::Vacant(e) = got.entry(i) {
            match p.uas_request(i, Duration::from_secs(3), None) {
                Some(r) => {
                    e.insert(r);
                }
                None => {
                    out.push(format!("u{i} got no request"));
                    continue;
                }
            }
        }
        let r = &got[&i];
        let tag = format!("u{i}");
        p.uas[i].send(r.from, &sr_testkit::answer(r, code, reason, &tag, extra));
        std::thread::sleep(Duration::from_millis(60));
    }
    out.push(p.replies_with(&call, wait, &show));
    let mut all: Vec<usize> = to.to_vec();
    all.extend(next);
    for i in all {
        out.push(rest_of(p, i));
    }
    p.names(&out.join("; "))
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 4);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let w = Duration::from_millis(900);
    let mut out = Vec::new();
    let inv = "INVITE";
    let cases: Vec<Case<'_>> = vec![
        (
            "6xx over 4xx",
            inv,
            vec![0, 1],
            None,
            vec![(0, 486, "Busy Here", &[]), (1, 603, "Decline", &[])],
            w,
        ),
        (
            "4xx among 4xx",
            inv,
            vec![0, 1],
            None,
            vec![(0, 486, "Busy Here", &[]), (1, 404, "Not Found", &[])],
            w,
        ),
        (
            "4xx among 4xx, other order",
            inv,
            vec![0, 1],
            None,
            vec![(1, 404, "Not Found", &[]), (0, 486, "Busy Here", &[])],
            w,
        ),
        (
            "3xx and 4xx",
            inv,
            vec![0, 1],
            None,
            vec![
                (0, 486, "Busy Here", &[]),
                (1, 302, "Moved", &["Contact: <sip:else@127.0.0.1:7>"]),
            ],
            w,
        ),
        (
            "4xx over 5xx",
            inv,
            vec![0, 1],
            None,
            vec![(0, 500, "Oops", &[]), (1, 480, "Later", &[])],
            w,
        ),
        (
            "5xx and 503",
            inv,
            vec![0, 1],
            None,
            vec![(0, 503, "Down", &[]), (1, 502, "Bad Gateway", &[])],
            w,
        ),
        (
            "503 alone",
            inv,
            vec![0],
            None,
            vec![(0, 503, "Down", &["Retry-After: 5"])],
            w,
        ),
        (
            "401 and 407 merged",
            inv,
            vec![0, 1],
            None,
            vec![
                (
                    0,
                    401,
                    "Unauthorized",
                    &["WWW-Authenticate: Digest realm=\"a\", nonce=\"1\""],
                ),
                (
                    1,
                    407,
                    "Proxy Authentication Required",
                    &["Proxy-Authenticate: Digest realm=\"b\", nonce=\"2\""],
                ),
            ],
            w,
        ),
        (
            "401 over 486",
            inv,
            vec![0, 1],
            None,
            vec![
                (0, 486, "Busy Here", &[]),
                (
                    1,
                    401,
                    "Unauthorized",
                    &["WWW-Authenticate: Digest realm=\"a\", nonce=\"1\""],
                ),
            ],
            w,
        ),
        (
            "local 408 and 486",
            inv,
            vec![0, 1],
            None,
            vec![(1, 486, "Busy Here", &[])],
            Duration::from_millis(2000),
        ),
        (
            "local 408 alone (MESSAGE)",
            "MESSAGE",
            vec![0],
            None,
            vec![],
            Duration::from_millis(1800),
        ),
        (
            "ringing, then 200 cancels the other",
            inv,
            vec![0, 1],
            None,
            vec![
                (0, 180, "Ringing", &[]),
                (1, 183, "Session Progress", &[]),
                (0, 200, "OK", &[]),
            ],
            w,
        ),
        (
            "two 200s",
            inv,
            vec![0, 1],
            None,
            vec![(0, 200, "OK", &[]), (1, 200, "OK", &[])],
            w,
        ),
        (
            "100 not relayed",
            inv,
            vec![0],
            None,
            vec![(0, 100, "Trying", &[]), (0, 486, "Busy Here", &[])],
            w,
        ),
        (
            "MESSAGE fork: the first final",
            "MESSAGE",
            vec![0, 1],
            None,
            vec![(0, 202, "Accepted", &[]), (1, 200, "OK", &[])],
            w,
        ),
        (
            "MESSAGE fork: 4xx then 2xx",
            "MESSAGE",
            vec![0, 1],
            None,
            vec![(0, 404, "Not Found", &[]), (1, 200, "OK", &[])],
            w,
        ),
        (
            "MESSAGE fork: 6xx",
            "MESSAGE",
            vec![0, 1],
            None,
            vec![(0, 603, "Decline", &[]), (1, 486, "Busy Here", &[])],
            w,
        ),
        (
            "serial forking",
            inv,
            vec![0],
            Some(2),
            vec![(0, 486, "Busy Here", &[]), (2, 200, "OK", &[])],
            w,
        ),
        (
            "failure_route reply",
            inv,
            vec![0],
            Some(2),
            vec![(0, 404, "Not Found", &[])],
            w,
        ),
        (
            "failure_route relays the 5xx",
            inv,
            vec![0],
            Some(2),
            vec![(0, 500, "Oops", &[])],
            w,
        ),
    ];
    for (what, method, to, next, answers, wait) in &cases {
        out.push(format!(
            "{what}: {}",
            fork(&p, method, to, *next, answers, *wait)
        ));
    }

    // The caller cancels a ringing call.
    let call = p.send(inv, "cancel", &format!("X-T: c\r\nX-D: {}\r\n", p.uri(3)));
    let r = p.uas_request(3, Duration::from_secs(3), Some((180, "Ringing", &[])));
    std::thread::sleep(Duration::from_millis(100));
    p.cancel(&call, "X-T: c\r\n");
    let c = p.uas_request(3, Duration::from_secs(3), Some((200, "OK", &[])));
    if let Some(inv) = &r {
        p.uas[3].send(
            inv.from,
            &sr_testkit::answer(inv, 487, "Request Terminated", "u3", &[]),
        );
    }
    out.push(p.names(&format!(
        "cancel: u3 got {} {}; caller: {}; {}",
        c.as_ref().map(first_line).unwrap_or_default(),
        c.and_then(|c| c.header("Reason")).unwrap_or_default(),
        p.replies_with(&call, w, &show),
        rest_of(&p, 3)
    )));
    // A CANCEL that matches nothing.
    let lone = "scene-lone";
    p.cancel(lone, "X-T: c\r\n");
    out.push(format!(
        "lone cancel: {}",
        p.replies(lone, Duration::from_millis(500))
    ));

    // A retransmitted INVITE after its final reply gets it again; after
    // a provisional, the provisional.
    let h = format!("X-T: r\r\nX-D: {}\r\n", p.uri(0));
    let call = p.send(inv, "rtx", &h);
    let r = p.uas_request(0, Duration::from_secs(3), Some((180, "Ringing", &[])));
    std::thread::sleep(Duration::from_millis(200));
    let again = |p: &Scene| {
        let req = format!(
            "INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{}>\r\n{h}Content-Length: 0\r\n\r\n",
            p.caller.addr(),
            p.caller.addr()
        );
        p.caller.send(p.srv, &req);
    };
    let before = p.replies_with(&call, Duration::from_millis(400), &show);
    again(&p);
    let mid = p.replies_with(&call, Duration::from_millis(400), &show);
    if let Some(inv) = &r {
        p.uas[0].send(
            inv.from,
            &sr_testkit::answer(inv, 486, "Busy Here", "u0", &[]),
        );
    }
    let fin = p.replies_with(&call, Duration::from_millis(400), &show);
    again(&p);
    let after = p.replies_with(&call, Duration::from_millis(400), &show);
    out.push(p.names(&format!(
        "retransmission: {before} / again: {mid} / final: {fin} / again: {after}; {}",
        rest_of(&p, 0)
    )));
    out
}

#[test]
fn tm_proxying_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("proxy");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("603 Decline")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "proxy");
}

const RR_MODULES: &[&str] = &["sl", "tm", "pv", "textops", "rr", "maxfwd", "siputils"];

const RR_BODY: &str = r#"request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        if (is_method("ACK")) {
            if (t_check_trans()) { t_relay(); }
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (loose_route()) { t_relay(); exit; }
    if (is_method("INVITE|SUBSCRIBE")) { record_route(); }
    $ru = $hdr(X-D);
    t_relay();
    exit;
}
"#;

/// A request as the caller sends it: `method` to `ruri` with the
/// `X-T`/`X-D` headers, `extra` lines, its own Call-ID and branch.
fn raw_request(p: &Scene, method: &str, ruri: &str, call: &str, extra: &str) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nContact: <sip:a@{}>\r\nX-T: r\r\n{extra}Content-Length: 0\r\n\r\n",
        p.caller.addr(),
        p.caller.addr()
    )
}

fn rr_scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 3);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let wait = Duration::from_secs(3);
    let mut out = Vec::new();
    let caller_gets = |p: &Scene, call: &str| {
        p.caller
            .recv_matching(wait, |r| {
                r.msg.msg().call_id().ok() == Some(call) && r.status().is_some_and(|c| c >= 180)
            })
            .map_or("nothing".into(), |r| p.whole(&r))
    };

    // An INVITE record-routed to u0, its 200 back, the ACK and BYE in the
    // dialog through the Route.
    let call = "scene-rr-1";
    let x = format!("X-D: {}\r\n", p.uri(0));
    p.caller
        .send(srv, &raw_request(&p, "INVITE", "sip:x@127.0.0.1", call, &x));
    let inv = p.uas_request(
        0,
        wait,
        Some((200, "OK", &["Contact: <sip:callee@127.0.0.1:9>"])),
    );
    out.push(format!(
        "u0 got: {}",
        inv.as_ref().map_or("nothing".into(), |r| p.whole(r))
    ));
    out.push(format!("caller got: {}", caller_gets(&p, call)));
    let route = format!("Route: <sip:127.0.0.1:{};lr;ftag=f>\r\n", srv.port());
    for (m, n) in [("ACK", 1), ("BYE", 2)] {
        let req = raw_request(&p, m, &p.uri(0), call, &route)
            .replace("To: <sip:x@y>", "To: <sip:x@y>;tag=u0")
            .replace(
                &format!("branch=z9hG4bK{call}"),
                &format!("branch=z9hG4bK{call}-{n}"),
            )
            .replace(&format!("CSeq: 1 {m}"), &format!("CSeq: {n} {m}"));
        p.caller.send(srv, &req);
        let ans = (m == "BYE").then_some((200, "OK", &[] as &[&str]));
        let r = p.uas_request(0, wait, ans);
        out.push(format!(
            "{m}: u0 got {}",
            r.as_ref().map_or("nothing".into(), |r| p.whole(r))
        ));
    }
    out.push(format!("caller got: {}", caller_gets(&p, call)));

    // A preloaded Route through us to u1, with a Max-Forwards of 1.
    let call = "scene-rr-2";
    let extra = format!(
        "Route: <sip:127.0.0.1:{};lr>, <{};lr>\r\n",
        srv.port(),
        p.uri(1)
    );
    let req = raw_request(&p, "MESSAGE", "sip:y@example.net", call, &extra)
        .replace("Max-Forwards: 70", "Max-Forwards: 1");
    p.caller.send(srv, &req);
    let r = p.uas_request(1, wait, Some((202, "Accepted", &[])));
    out.push(format!(
        "preloaded Route: u1 got {}",
        r.as_ref().map_or("nothing".into(), |r| p.whole(r))
    ));
    out.push(format!("caller got: {}", caller_gets(&p, call)));
    // Max-Forwards 0: 483; above the limit: lowered to it.
    let call = "scene-rr-3";
    let x = format!("X-D: {}\r\n", p.uri(1));
    let req = raw_request(&p, "MESSAGE", "sip:x@127.0.0.1", call, &x)
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    p.caller.send(srv, &req);
    out.push(format!(
        "Max-Forwards 0: caller got {}",
        caller_gets(&p, call)
    ));
    // A second Via (u2 playing a proxy before the caller), and a
    // Record-Route.
    let call = "scene-rr-4";
    let extra = format!(
        "X-D: {}\r\nRecord-Route: <sip:127.0.0.1:9;lr>\r\n",
        p.uri(1)
    );
    let req = raw_request(&p, "INVITE", "sip:x@127.0.0.1", call, &extra).replacen(
        "Via: ",
        &format!(
            "Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bKx1\r\nVia: ",
            p.uas[2].addr().port()
        ),
        1,
    );
    p.caller.send(srv, &req);
    let r = p.uas_request(1, wait, Some((486, "Busy Here", &[])));
    out.push(format!(
        "two Vias: u1 got {}",
        r.as_ref().map_or("nothing".into(), |r| p.whole(r))
    ));
    let ack = p.uas[1].recv_method("ACK", wait);
    out.push(format!(
        "u1's ACK: {}",
        ack.as_ref().map_or("nothing".into(), |r| p.whole(r))
    ));
    let back = p.uas[2].recv_matching(wait, |r| r.status().is_some_and(|c| c >= 200));
    out.push(format!(
        "u2 got: {}",
        back.as_ref().map_or("nothing".into(), |r| p.whole(r))
    ));
    out
}

#[test]
fn forwarded_messages_match_kamailio() {
    if !kamailio::available(RR_MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("proxy_rr");
    let cfg = kamailio::head(RR_MODULES) + RR_BODY;
    let (want, got) =
        kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &rr_scenario);
    assert!(want.iter().any(|l| l.contains("Record-Route")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "proxy_rr");
}

/// The record-routing configuration on a UDP and a TCP socket.
fn tcp_cfg() -> String {
    kamailio::head(RR_MODULES).replace(
        "listen=udp:127.0.0.1:__PORT__\n",
        "listen=udp:127.0.0.1:__PORT__\nlisten=tcp:127.0.0.1:__PORT__\n",
    ) + RR_BODY
}

fn tcp_scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 1);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let wait = Duration::from_secs(3);
    let mut out = Vec::new();
    let mut tcp = sr_testkit::TcpPeer::connect(srv);
    let me = tcp.addr();
    // (The caller's TCP port is its own per run: named. Kamailio marks
    // its Via with the connection's number, `;i=1`, for replies to find
    // it; siprouter keeps that in the transaction: left out.)
    let name = |p: &Scene, s: String| {
        p.names(&s)
            .replace(&me.port().to_string(), "<tcp>")
            .replace(";branch=<b>;i=1", ";branch=<b>")
    };
    let call = "scene-tcp-1";
    let req = |m: &str, ruri: &str, n: u32, extra: &str| {
        format!(
            "{m} {ruri} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bK{call}-{n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>{}\r\nCall-ID: {call}\r\nCSeq: {n} {m}\r\nContact: <sip:a@{me};transport=tcp>\r\nX-T: r\r\n{extra}Content-Length: 0\r\n\r\n",
            if n > 1 { ";tag=u0" } else { "" }
        )
    };
    // An INVITE over TCP to u0 over UDP: record-routed twice.
    tcp.send(&req(
        "INVITE",
        "sip:x@127.0.0.1",
        1,
        &format!("X-D: {}\r\n", p.uri(0)),
    ));
    let inv = p.uas_request(
        0,
        wait,
        Some((200, "OK", &["Contact: <sip:callee@127.0.0.1:9>"])),
    );
    out.push(name(
        &p,
        format!(
            "u0 got: {}",
            inv.as_ref().map_or("nothing".into(), |r| p.whole(r))
        ),
    ));
    let mut ok = None;
    while let Some(r) = tcp.recv(wait) {
        if r.status().is_some_and(|c| c >= 200) {
            ok = Some(r);
            break;
        }
    }
    out.push(name(
        &p,
        format!(
            "caller got over TCP: {}",
            ok.as_ref().map_or("nothing".into(), |r| p.whole(r))
        ),
    ));
    // The BYE through the Record-Routes, reversed.
    let routes: Vec<String> = ok
        .as_ref()
        .map(|r| {
            r.msg
                .msg()
                .headers_by_name("Record-Route")
                .flat_map(|h| h.value.split(", ").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let route = format!("Route: {}\r\n", routes.join(", "));
    tcp.send(&req("BYE", &p.uri(0), 2, &route));
    let bye = p.uas_request(0, wait, Some((200, "OK", &[])));
    out.push(name(
        &p,
        format!(
            "u0 got: {}",
            bye.as_ref().map_or("nothing".into(), |r| p.whole(r))
        ),
    ));
    let r = tcp.recv(wait);
    out.push(name(
        &p,
        format!(
            "caller got over TCP: {}",
            r.as_ref().map_or("nothing".into(), |r| p.whole(r))
        ),
    ));
    out
}

#[test]
fn tcp_to_udp_matches_kamailio() {
    if !kamailio::available(RR_MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("proxy_tcp");
    let (want, got) = kamailio::run_scenario(
        &dir,
        &tcp_cfg(),
        siprouter::in_tree(),
        &|| {},
        &tcp_scenario,
    );
    assert!(want.iter().any(|l| l.contains("r2=on")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "proxy_tcp");
}

const SL_BODY: &str = r#"request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $du = $hdr(X-D);
    if (!forward()) { sl_send_reply("500", "not forwarded"); }
    exit;
}
"#;

/// Stateless forwarding from a TCP caller to a UDP user agent and back.
fn stateless_tcp_scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 1);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let wait = Duration::from_secs(3);
    let mut tcp = sr_testkit::TcpPeer::connect(srv);
    let me = tcp.addr();
    let name = |p: &Scene, s: String| {
        p.names(&s)
            .replace(&me.port().to_string(), "<tcp>")
            .replace(";branch=<b>;i=1", ";branch=<b>")
    };
    let mut out = Vec::new();
    for (n, code) in [(1, 202), (2, 404)] {
        tcp.send(&format!(
            "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKscene-sl-{n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>\r\nCall-ID: scene-sl-{n}\r\nCSeq: {n} MESSAGE\r\nX-T: s\r\nX-D: {}\r\nContent-Length: 5\r\n\r\nhello",
            p.uri(0)
        ));
        let r = p.uas_request(0, wait, Some((code, "Answer", &[])));
        out.push(name(
            &p,
            format!(
                "u0 got: {}",
                r.as_ref().map_or("nothing".into(), |r| p.whole(r))
            ),
        ));
        let back = tcp.recv(wait);
        out.push(name(
            &p,
            format!(
                "caller got over TCP: {}",
                back.as_ref().map_or("nothing".into(), |r| p.whole(r))
            ),
        ));
    }
    out
}

#[test]
fn stateless_tcp_to_udp_matches_kamailio() {
    let modules = &["sl", "pv", "textops"];
    if !kamailio::available(modules) {
        return;
    }
    let dir = kamailio::fresh_dir("proxy_sl_tcp");
    let cfg = kamailio::head(modules).replace(
        "listen=udp:127.0.0.1:__PORT__\n",
        "listen=udp:127.0.0.1:__PORT__\nlisten=tcp:127.0.0.1:__PORT__\n",
    ) + SL_BODY;
    let (want, got) = kamailio::run_scenario(
        &dir,
        &cfg,
        siprouter::in_tree(),
        &|| {},
        &stateless_tcp_scenario,
    );
    assert!(want.iter().any(|l| l.contains("202 Answer")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "proxy_sl_tcp");
}

/// The record-routing configuration on 127.0.0.1 (for the probe) and ::1.
fn v6_cfg() -> String {
    kamailio::head(RR_MODULES).replace(
        "listen=udp:127.0.0.1:__PORT__\n",
        "listen=udp:127.0.0.1:__PORT__\nlisten=udp:[::1]:__PORT__\n",
    ) + RR_BODY
}

/// A call over IPv6: caller and callee on ::1.
fn v6_scenario(srv: SocketAddr) -> Vec<String> {
    let probe = Scene::new(srv, 0);
    kamailio::wait_until_up(&probe.caller, srv, kamailio::PROBE, None);
    let srv6: SocketAddr = format!("[::1]:{}", srv.port()).parse().expect("v6");
    let caller = sr_testkit::UdpPeer::on("[::1]:0");
    let callee = sr_testkit::UdpPeer::on("[::1]:0");
    let wait = Duration::from_secs(3);
    let name = |s: &str| {
        s.replace(&caller.addr().port().to_string(), "<caller>")
            .replace(&callee.addr().port().to_string(), "<u0>")
    };
    let show = |r: Option<&Reply>| name(&r.map_or("nothing".into(), |r| probe.whole(r)));
    let mut out = Vec::new();
    let call = "scene-v6";
    let c = caller.addr().port();
    let u = callee.addr().port();
    caller.send(srv6, &format!("INVITE sip:x@[::1]:{} SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:{c};branch=z9hG4bK{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@[::1]>;tag=f\r\nTo: <sip:x@[::1]>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@[::1]:{c}>\r\nX-T: r\r\nX-D: sip:[::1]:{u}\r\nContent-Length: 0\r\n\r\n", srv.port()));
    let inv = callee.recv_matching(wait, |r| r.status().is_none());
    out.push(format!("callee gets: {}", show(inv.as_ref())));
    if let Some(inv) = &inv {
        callee.send(
            inv.from,
            &sr_testkit::answer(
                inv,
                200,
                "OK",
                "u0",
                &[&format!("Contact: <sip:x@[::1]:{u}>")],
            ),
        );
    }
    let ok = caller.recv_matching(wait, |r| r.status().is_some_and(|c| c >= 200));
    out.push(format!("caller gets: {}", show(ok.as_ref())));
    // The BYE through the Record-Route.
    caller.send(srv6, &format!("BYE sip:x@[::1]:{u} SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:{c};branch=z9hG4bK{call}-2;rport\r\nMax-Forwards: 70\r\nRoute: <sip:[::1]:{};lr;ftag=f>\r\nFrom: <sip:a@[::1]>;tag=f\r\nTo: <sip:x@[::1]>;tag=u0\r\nCall-ID: {call}\r\nCSeq: 2 BYE\r\nX-T: r\r\nContent-Length: 0\r\n\r\n", srv.port()));
    let bye = callee.recv_matching(wait, |r| r.status().is_none());
    out.push(format!("callee gets: {}", show(bye.as_ref())));
    out
}

#[test]
fn ipv6_matches_kamailio() {
    if !kamailio::available(RR_MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("proxy_v6");
    let (want, got) =
        kamailio::run_scenario(&dir, &v6_cfg(), siprouter::in_tree(), &|| {}, &v6_scenario);
    assert!(want.iter().any(|l| l.contains("[::1]")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "proxy_v6");
}

/// Retransmissions: how many copies a silent callee gets of a MESSAGE and
/// of an INVITE before `fr_timer` (3 s) ends them, how many of an INVITE
/// after a 180 (none), and how many copies of the local 408 the caller
/// gets while it does not ACK.
fn timers_scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 3);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let count = |u: &sr_testkit::UdpPeer, window: Duration| {
        let end = std::time::Instant::now() + window;
        let mut n = 0;
        while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
            if u.recv(left).is_some() {
                n += 1;
            }
        }
        n
    };
    let mut out = Vec::new();
    for (i, method) in [(0, "MESSAGE"), (1, "INVITE")] {
        let call = p.send(method, "rtx", &format!("X-T: r\r\nX-D: {}\r\n", p.uri(i)));
        let copies = count(&p.uas[i], Duration::from_millis(2900));
        out.push(format!("{method}: the callee got {copies} copies"));
        let finals = p.replies_with(&call, Duration::from_millis(2300), &|r| {
            r.status().map_or(String::new(), |c| c.to_string())
        });
        out.push(format!("{method}: the caller got {finals}"));
    }
    // The 408 to the INVITE again and again (the caller sends no ACK).
    let call = p.send(
        "INVITE",
        "rtx408",
        &format!("X-T: r\r\nX-D: {}\r\n", p.uri(2)),
    );
    let first = p.caller.recv_matching(Duration::from_secs(4), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str()) && r.status() == Some(408)
    });
    // (Repeated at +0.5 s and +1.5 s, the next at +3.5 s: a window of
    // 2.5 s leaves room for a busy machine either way.)
    let again = count(&p.caller, Duration::from_millis(2500));
    out.push(format!(
        "408: first {}, then {again} more within 2.5 s",
        first.is_some()
    ));
    let _ = count(&p.uas[2], Duration::from_millis(10));
    // A 180 stops the INVITE's retransmissions.
    let call = p.send(
        "INVITE",
        "rtx180",
        &format!("X-T: r\r\nX-D: {}\r\n", p.uri(0)),
    );
    let _ = count(&p.uas[0], Duration::from_millis(50));
    p.uas_answer(0, Duration::from_secs(1), Some((180, "Ringing", &[])));
    let copies = count(&p.uas[0], Duration::from_millis(2000));
    out.push(format!("after a 180: the callee got {copies} more"));
    let _ = call;
    out
}

#[test]
fn retransmissions_match_kamailio() {
    if !kamailio::available(RR_MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("proxy_timers");
    let cfg = kamailio::head(RR_MODULES)
        + "modparam(\"tm\", \"fr_timer\", 3000)\nmodparam(\"tm\", \"fr_inv_timer\", 3000)\n"
        + RR_BODY;
    let (want, got) =
        kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &timers_scenario);
    assert!(want.iter().any(|l| l.contains("copies")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "proxy_timers");
}

/// Stream framing over TCP: two requests in one write, one request in
/// three writes, a CRLF keepalive (RFC 5626's pong), and a request
/// without Content-Length (refused: the connection closes).
fn framing_scenario(srv: SocketAddr) -> Vec<String> {
    use std::io::{Read, Write};
    let p = Scene::new(srv, 0);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let opt = |me: SocketAddr, n: u32, cl: bool| {
        format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKscene-fr{n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=f{n}\r\nTo: <sip:x@y>\r\nCall-ID: fr{n}\r\nCSeq: {n} OPTIONS\r\n{}\r\n",
            if cl { "Content-Length: 0\r\n" } else { "" }
        )
    };
    let mut tcp = sr_testkit::TcpPeer::connect(srv);
    let me = tcp.addr();
    let status = |r: Option<Reply>| {
        r.map_or("nothing".to_string(), |r| {
            format!(
                "{} ({})",
                r.status().unwrap_or(0),
                r.msg.msg().call_id().unwrap_or("")
            )
        })
    };
    tcp.send(&(opt(me, 1, true) + &opt(me, 2, true)));
    out.push(format!(
        "two in one write: {}",
        status(tcp.recv(Duration::from_secs(2)))
    ));
    out.push(format!("and: {}", status(tcp.recv(Duration::from_secs(2)))));
    let one = opt(me, 3, true);
    let (a, rest) = one.split_at(20);
    let (b, c) = rest.split_at(rest.len() / 2);
    for part in [a, b, c] {
        tcp.send(part);
        std::thread::sleep(Duration::from_millis(100));
    }
    out.push(format!(
        "one in three writes: {}",
        status(tcp.recv(Duration::from_secs(2)))
    ));
    // A keepalive: two CRLFs get one CRLF back.
    tcp.send("\r\n\r\n");
    tcp.stream
        .set_read_timeout(Some(Duration::from_millis(800)))
        .ok();
    let mut buf = [0u8; 16];
    let pong = match tcp.stream.read(&mut buf) {
        Ok(n) => format!("{:?}", String::from_utf8_lossy(&buf[..n])),
        Err(_) => "nothing".into(),
    };
    out.push(format!("keepalive: {pong}"));
    // No Content-Length on a stream.
    let mut t2 = std::net::TcpStream::connect(srv).expect("connect");
    let me2 = t2.local_addr().expect("addr");
    let _ = t2.write_all(opt(me2, 4, false).as_bytes());
    t2.set_read_timeout(Some(Duration::from_millis(1500))).ok();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        match t2.read(&mut chunk) {
            Ok(0) => break "closed",
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(_) => break "still open",
        }
    };
    let text = String::from_utf8_lossy(&got);
    out.push(format!(
        "no Content-Length: {} / connection {end}",
        text.lines().next().unwrap_or("nothing")
    ));
    out
}

#[test]
fn tcp_framing_matches_kamailio() {
    let modules = &["sl", "pv", "textops"];
    if !kamailio::available(modules) {
        return;
    }
    let dir = kamailio::fresh_dir("proxy_framing");
    let cfg = kamailio::head(modules).replace(
        "listen=udp:127.0.0.1:__PORT__\n",
        "listen=udp:127.0.0.1:__PORT__\nlisten=tcp:127.0.0.1:__PORT__\n",
    ) + "request_route {\n    sl_send_reply(\"200\", \"ok\");\n    exit;\n}\n";
    let (want, got) =
        kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &framing_scenario);
    assert!(want.iter().any(|l| l.contains("200 (fr2)")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "proxy_framing");
}
