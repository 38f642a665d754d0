//! Differential test against Kamailio itself, for the registrar on the
//! wire: REGISTERs adding, refreshing, querying and removing contacts
//! (the `expires` parameter, the Expires header, the default, below
//! `min_expires`, above `max_expires`, q values, `Contact: *`, too many
//! contacts, bad requests), then calls to the registered users routed by
//! `lookup` (forked by q) and to unknown ones — every reply compared
//! whole (but the server's To tag and Server header), and which user
//! agents each call reaches.
//!
//! Without Kamailio (usrloc, registrar) installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets
//! it).

use sr_testkit::kamailio;
use sr_testkit::scene::{first_line, Scene};
use sr_testkit::Reply;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "pv", "textops", "usrloc", "registrar"];

const BODY: &str = r#"modparam("registrar", "min_expires", 60)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "default_expires", 1800)
modparam("registrar", "max_contacts", 3)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("REGISTER")) {
        if (!save("location")) { sl_reply_error(); }
        exit;
    }
    if (is_method("ACK")) { exit; }
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found $rc");
        exit;
    }
    t_relay();
    exit;
}
"#;

/// A reply as compared: its lines, the server's To tag and Server header
/// written alike, each expiry rounded up to ten seconds (the servers
/// count the seconds left at slightly different moments).
fn whole(p: &Scene, r: &Reply) -> String {
    let text = r.text();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut out = Vec::new();
    for l in head.lines() {
        let mut l = l.to_string();
        if l.starts_with("Server:") {
            l = "Server: <server's>".into();
        }
        if let Some(i) = l.find(";tag=").filter(|_| l.starts_with("To:")) {
            l = format!("{};tag=<server's>", &l[..i]);
        }
        out.push(p.names(&round_expires(&l)));
    }
    out.join(" / ")
}

/// `expires=N` with N rounded up to a multiple of 10.
fn round_expires(l: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find("expires=") {
        out.push_str(&rest[..i + 8]);
        rest = &rest[i + 8..];
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..n].parse::<u64>() {
            Ok(v) => out.push_str(&v.div_ceil(10).saturating_mul(10).to_string()),
            Err(_) => out.push_str(&rest[..n]),
        }
        rest = &rest[n..];
    }
    out.push_str(rest);
    out
}

/// A temporary GRUU's user part (the server's record id) written alike.
fn tidy_gruu(l: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find("temp-gruu=\"sip:") {
        out.push_str(&rest[..i + 15]);
        rest = &rest[i + 15..];
        if rest.starts_with('x') {
            out.push('x');
        }
        out.push_str("<ruid>");
        rest = &rest[rest.find('@').unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let p = Scene::new(srv, 4);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let mut cseq = 0;
    // A REGISTER for `user` with `headers`, from one Call-ID; its reply.
    let mut register = |what: &str, user: &str, headers: &str| {
        cseq += 1;
        let call = format!("reg-{user}");
        let req = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKreg{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=r{cseq}\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {call}\r\nCSeq: {cseq} REGISTER\r\nX-T: r\r\n{headers}Content-Length: 0\r\n\r\n",
            p.caller.addr()
        );
        p.caller.send(srv, &req);
        let r = p.caller.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
                && r.status().is_some_and(|c| c >= 200)
        });
        let line = format!(
            "{what}: {}",
            r.as_ref().map_or("no reply".into(), |r| whole(&p, r))
        );
        // A second reply (sl_reply_error after save() failed)?
        let more = p
            .caller
            .recv_matching(Duration::from_millis(150), |r| {
                r.msg.msg().call_id().ok() == Some(call.as_str())
            })
            .map(|r| format!(" + {}", first_line(&r)))
            .unwrap_or_default();
        line + &more
    };
    let c = |i: usize| format!("<sip:u{i}@127.0.0.1:{}>", p.uas[i].addr().port());
    let inst =
        |n: u32| format!("+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-00000000000{n}>\"");
    let steps: Vec<(&str, &str, String)> = vec![
        (
            "expires parameter",
            "alice",
            format!("Contact: {};expires=120\r\n", c(0)),
        ),
        (
            "Expires header",
            "alice",
            format!("Contact: {}\r\nExpires: 300\r\n", c(1)),
        ),
        ("query", "alice", String::new()),
        (
            "refresh",
            "alice",
            format!("Contact: {};expires=240\r\n", c(0)),
        ),
        ("default expiry", "bob", format!("Contact: {}\r\n", c(2))),
        (
            "below min_expires",
            "bob",
            format!("Contact: {};expires=10\r\n", c(3)),
        ),
        (
            "above max_expires",
            "carol",
            format!("Contact: {};expires=99999\r\n", c(0)),
        ),
        (
            "q values",
            "dave",
            format!("Contact: {};q=0.5, {};q=1.0;expires=200\r\n", c(1), c(2)),
        ),
        (
            "too many",
            "bob",
            format!("Contact: {}, <sip:x@127.0.0.1:7>\r\n", c(0)),
        ),
        (
            "star with 0",
            "carol",
            "Contact: *\r\nExpires: 0\r\n".into(),
        ),
        ("star without Expires", "carol", "Contact: *\r\n".into()),
        (
            "bad expires",
            "erin",
            format!("Contact: {};expires=abc\r\n", c(0)),
        ),
        (
            "remove one",
            "alice",
            format!("Contact: {};expires=0\r\n", c(1)),
        ),
        ("query again", "alice", String::new()),
        (
            "instance without gruu",
            "frank",
            format!("Contact: {};{};reg-id=1;expires=100\r\n", c(1), inst(1)),
        ),
        (
            "gruu",
            "gina",
            format!(
                "Contact: {};{};expires=100\r\nSupported: gruu\r\n",
                c(2),
                inst(2)
            ),
        ),
        (
            "second gruu",
            "gina",
            format!(
                "Contact: {};{};reg-id=2;expires=100\r\nSupported: path, gruu\r\n",
                c(3),
                inst(3)
            ),
        ),
    ];
    let mut temp_gruu = String::new();
    for (what, user, headers) in &steps {
        let line = register(what, user, headers);
        // (The temporary GRUU names the server's record id; the last one
        // is the second gruu's, of u3.)
        if let Some(i) = line.rfind("temp-gruu=\"") {
            let rest = &line[i + 11..];
            temp_gruu = rest[..rest.find('"').unwrap_or(0)].to_string();
        }
        out.push(tidy_gruu(&line));
    }
    // Calls routed by lookup: which user agents get them, what the caller
    // gets.
    let targets = [
        "sip:alice@127.0.0.1".to_string(),
        "sip:bob@127.0.0.1".into(),
        "sip:carol@127.0.0.1".into(),
        "sip:dave@127.0.0.1".into(),
        "sip:nobody@127.0.0.1".into(),
        "sip:gina@127.0.0.1".into(),
        "sip:gina@127.0.0.1;gr=urn:uuid:00000000-0000-1000-8000-000000000002".into(),
        "sip:gina@127.0.0.1;gr=urn:uuid:00000000-0000-1000-8000-00000000000f".into(),
        temp_gruu.clone(),
        temp_gruu.replacen("sip:", "sip:x", 1),
    ];
    for (n, target) in targets.iter().enumerate() {
        let call = p.send_to("INVITE", target, &format!("t{n}"), "X-T: c\r\n");
        // (Every request each one gets is answered, ACKs aside.)
        let mut got = Vec::new();
        for i in 0..4 {
            while let Some(r) = p.uas[i].recv_matching(Duration::from_millis(250), |r| {
                r.msg.msg().method().is_some_and(|m| m.as_str() != "ACK")
            }) {
                p.uas[i].send(r.from, &sr_testkit::answer(&r, 486, "Busy Here", "u", &[]));
                let l = format!("u{i}: {}", first_line(&r));
                if !got.contains(&l) {
                    got.push(l);
                }
            }
        }
        out.push(p.names(&format!(
            "call {}: {}; caller: {}",
            if target.ends_with(";gr") {
                tidy_gruu(&format!("temp-gruu=\"{target}"))
            } else {
                target.clone()
            },
            got.join(", "),
            p.final_of(&call)
        )));
    }
    out
}

#[test]
fn registrar_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("registrar");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.iter().any(|l| l.contains("expires=")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "registrar");
}
