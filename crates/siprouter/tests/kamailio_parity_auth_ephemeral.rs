//! Differential test against Kamailio itself, for auth_ephemeral:
//! digest answers made with ephemeral credentials (`timestamp:user`, the
//! password the HMAC of the username under one of two secrets) — for a
//! REGISTER (`autheph_check` reading Authorization), an INVITE
//! (Proxy-Authorization), `autheph_www` with another method — passing,
//! failing (another secret, an expired or malformed timestamp), then
//! `autheph_check_from()`/`_to()` after them; and the plain checks
//! (`autheph_authenticate`, `autheph_check_timestamp`, the From/To checks
//! with a username, with and without a domain). Every reply's status and
//! return codes compared.
//!
//! Without Kamailio's auth_ephemeral installed the test prints a notice
//! and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use crate::reg_support::{answer, challenge_of, Challenge};
use sr_mod_auth_ephemeral::creds::{algorithm, password};
use sr_testkit::kamailio;
use sr_testkit::scene::{first_line, Scene};
use sr_testkit::Reply;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "auth", "auth_ephemeral"];

const BODY: &str = r#"modparam("auth_ephemeral", "secret", "old-secret")
modparam("auth_ephemeral", "secret", "new-secret")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-T) == "plain") {
        autheph_authenticate("$hdr(X-U)", "$hdr(X-P)");
        $var(a) = $rc;
        autheph_check_timestamp("$hdr(X-U)");
        $var(b) = $rc;
        autheph_check_from("$hdr(X-U)");
        $var(c) = $rc;
        autheph_check_to("$hdr(X-U)");
        $var(d) = $rc;
        append_to_reply("X-Rc: $var(a) $var(b) $var(c) $var(d)\r\n");
        sl_send_reply("200", "plain");
        exit;
    }
    if ($hdr(X-T) == "www-invite") {
        autheph_www("example.com", "INVITE");
    } else {
        autheph_check("example.com");
    }
    $var(rc) = $rc;
    if ($var(rc) != 1) {
        append_to_reply("X-Rc: $var(rc)\r\n");
        auth_challenge("example.com", "1");
        exit;
    }
    autheph_check_from();
    $var(f) = $rc;
    autheph_check_to();
    $var(t) = $rc;
    append_to_reply("X-Rc: 1 from=$var(f) to=$var(t) au=$au aU=$aU ad=$ad\r\n");
    sl_send_reply("200", "ok");
    exit;
}
"#;

fn show(r: &Reply) -> String {
    let mut s = first_line(r);
    for h in ["X-Rc", "WWW-Authenticate", "Proxy-Authenticate"] {
        if let Some(v) = r.header(h) {
            let v = if h == "X-Rc" { v } else { "(challenge)".into() };
            s.push_str(&format!(" [{h}: {v}]"));
        }
    }
    s
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn pw(secret: &str, username: &str) -> String {
    password(
        algorithm(0).unwrap(),
        secret.as_bytes(),
        username.as_bytes(),
    )
}

/// `later`: the expiry time in the usernames (the same for both runs, so
/// that the usernames compared are the same).
fn scenario(srv: SocketAddr, later: u64) -> Vec<String> {
    let p = Scene::new(srv, 0);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let mut n = 0;
    let mut send = |method: &str, from: &str, to: &str, extra: &str| -> Option<Reply> {
        n += 1;
        let call = format!("eph-{n}");
        let req = format!(
            "{method} sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:{from}>;tag=f\r\nTo: <sip:{to}>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nContact: <sip:a@{}>\r\n{extra}Content-Length: 0\r\n\r\n",
            p.caller.addr(),
            p.caller.addr()
        );
        p.caller.send(srv, &req);
        p.caller.recv_matching(Duration::from_secs(3), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
                && r.status().is_some_and(|c| c >= 200)
        })
    };
    let mut step = |what: &str, r: Option<Reply>| {
        out.push(format!(
            "{what}: {}",
            r.as_ref().map_or("no reply".into(), show)
        ));
        r
    };
    let alice = format!("{later}:alice");
    let alice_at = format!("{later}:alice@example.com");
    let old = format!("{}:alice", now() - 100);
    let uri = "sip:example.com";
    let www = |v: String| format!("X-T: d\r\nAuthorization: {v}\r\n");
    let proxy = |v: String| format!("X-T: d\r\nProxy-Authorization: {v}\r\n");

    let r = step(
        "REGISTER without credentials",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@example.com",
            "X-T: d\r\n",
        ),
    );
    let ch: Challenge = match r {
        Some(r) if r.status() == Some(401) => challenge_of(&r),
        _ => return out,
    };
    let a =
        |user: &str, pass: &str, method: &str, nc: u32| answer(user, pass, method, uri, &ch, nc);
    step(
        "the newest secret",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@example.com",
            &www(a(&alice, &pw("new-secret", &alice), "REGISTER", 1)),
        ),
    );
    step(
        "the older secret",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@example.com",
            &www(a(&alice, &pw("old-secret", &alice), "REGISTER", 2)),
        ),
    );
    step(
        "another secret",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@example.com",
            &www(a(&alice, &pw("nobody's", &alice), "REGISTER", 3)),
        ),
    );
    step(
        "an expired username",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@example.com",
            &www(a(&old, &pw("new-secret", &old), "REGISTER", 4)),
        ),
    );
    step(
        "a timestamp that is no number",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@example.com",
            &www(a(
                "soon:alice",
                &pw("new-secret", "soon:alice"),
                "REGISTER",
                5,
            )),
        ),
    );
    step(
        "another user in To",
        send(
            "REGISTER",
            "alice@example.com",
            "bob@example.com",
            &www(a(&alice, &pw("new-secret", &alice), "REGISTER", 6)),
        ),
    );
    step(
        "a username with a domain",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@other.org",
            &www(a(&alice_at, &pw("new-secret", &alice_at), "REGISTER", 7)),
        ),
    );
    step(
        "a username with only a timestamp",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@example.com",
            &www(a(
                &later.to_string(),
                &pw("new-secret", &later.to_string()),
                "REGISTER",
                8,
            )),
        ),
    );
    step(
        "INVITE with Authorization (autheph_check wants Proxy-Authorization)",
        send(
            "INVITE",
            "alice@example.com",
            "bob@example.com",
            &www(a(&alice, &pw("new-secret", &alice), "INVITE", 9)),
        ),
    );
    step(
        "INVITE with Proxy-Authorization",
        send(
            "INVITE",
            "alice@example.com",
            "bob@example.com",
            &proxy(a(&alice, &pw("new-secret", &alice), "INVITE", 10)),
        ),
    );
    step(
        "autheph_www with the method INVITE, answered over INVITE",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@example.com",
            &format!(
                "X-T: www-invite\r\nAuthorization: {}\r\n",
                a(&alice, &pw("new-secret", &alice), "INVITE", 11)
            ),
        ),
    );
    step(
        "autheph_www with the method INVITE, answered over REGISTER",
        send(
            "REGISTER",
            "alice@example.com",
            "alice@example.com",
            &format!(
                "X-T: www-invite\r\nAuthorization: {}\r\n",
                a(&alice, &pw("new-secret", &alice), "REGISTER", 12)
            ),
        ),
    );
    let plain = |u: &str, pass: &str| format!("X-T: plain\r\nX-U: {u}\r\nX-P: {pass}\r\n");
    for (what, from, to, u, pass) in [
        (
            "plain, right",
            "alice@example.com",
            "alice@x.org",
            alice.clone(),
            pw("new-secret", &alice),
        ),
        (
            "plain, older secret",
            "alice@example.com",
            "bob@x.org",
            alice.clone(),
            pw("old-secret", &alice),
        ),
        (
            "plain, wrong password",
            "bob@example.com",
            "alice@x.org",
            alice.clone(),
            "d3Jvbmc=".to_string(),
        ),
        (
            "plain, expired",
            "alice@example.com",
            "alice@x.org",
            old.clone(),
            pw("new-secret", &old),
        ),
        (
            "plain, domain",
            "alice@example.com",
            "alice@x.org",
            alice_at.clone(),
            pw("new-secret", &alice_at),
        ),
        (
            "plain, no user",
            "alice@example.com",
            "alice@x.org",
            later.to_string(),
            pw("new-secret", &later.to_string()),
        ),
        (
            "plain, no number",
            "alice@example.com",
            "alice@x.org",
            "x:alice".to_string(),
            pw("new-secret", "x:alice"),
        ),
    ] {
        step(what, send("MESSAGE", from, to, &plain(&u, &pass)));
    }
    out
}

#[test]
fn ephemeral_credentials_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("auth-ephemeral");
    let cfg = kamailio::head(MODULES) + BODY;
    let later = now() + 3600;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, later)
    });
    assert!(
        want.iter()
            .any(|l| l.contains("the newest secret: SIP/2.0 200")),
        "Kamailio did not take the credentials: {want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "auth_ephemeral");
}
