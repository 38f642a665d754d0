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
