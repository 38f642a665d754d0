//! Differential test against Kamailio itself, for the destination
//! blocklist (`use_dst_blocklist`): tm blocklisting a 503's source (with
//! its Retry-After, clamped, or `blst_503_def_timeout`) and an INVITE
//! branch that timed out (not a MESSAGE one), the requests then refused
//! (`sl_reply_error`'s answer and tm's delayed 477, a BYE still relayed,
//! stateless `forward()` refused), the blst module (`blst_add`,
//! `blst_add_retry_after` in onreply_route, `blst_del`,
//! `blst_is_blocklisted`, the ignore masks), and the `dst_blocklist.*`
//! RPC commands through `kamcmd` — every reply the caller gets, what each
//! user agent gets, and everything `kamcmd` prints compared.
//!
//! Without Kamailio (tm, blst, kamcmd) installed the test prints a notice
//! and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::scene::Scene;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "blst", "pv", "textops", "ctl"];

const BODY: &str = r#"use_dst_blocklist=yes
dst_blocklist_expire=45
modparam("ctl", "binrpc", "unix:__SOCK__")
modparam("tm", "fr_timer", 1000)
modparam("tm", "fr_inv_timer", 1500)
modparam("tm", "blst_503", 1)
modparam("tm", "blst_503_def_timeout", 30)
modparam("tm", "blst_503_max_timeout", 25)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("ACK")) { exit; }
    if ($hdr(X-T) == "add") { blst_add(); sl_send_reply("200", "added"); exit; }
    if ($hdr(X-T) == "add20") { blst_add("20"); sl_send_reply("200", "added"); exit; }
    if ($hdr(X-T) == "is") {
        if (blst_is_blocklisted()) { sl_send_reply("200", "yes"); }
        else { sl_send_reply("200", "no"); }
        exit;
    }
    if ($hdr(X-T) == "del") {
        if (blst_del()) { sl_send_reply("200", "deleted"); }
        else { sl_send_reply("200", "not there"); }
        exit;
    }
    if ($hdr(X-T) == "ign") { blst_set_ignore(); }
    if ($hdr(X-T) == "clr") { blst_set_ignore(); blst_clear_ignore("32"); }
    if ($hdr(X-T) == "rar") { t_on_reply("RAR"); }
    $du = $hdr(X-D);
    if ($hdr(X-T) == "sl") {
        if (!forward()) { sl_send_reply("500", "fwd failed"); }
        exit;
    }
    if ($hdr(X-T) == "noreply") { t_relay(); exit; }
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
onreply_route[RAR] {
    if ($rs == 486) { blst_add_retry_after("10", "15"); }
}
"#;

/// `kamcmd` output with port names, each listed entry's expiry checked
/// against the time it was given (`expect`, by peer name: the seconds
/// left must be at most that and more than 15 less), and the entries
/// sorted (the servers' table orders differ).
fn listing(p: &Scene, lines: Vec<String>, expect: &[(&str, u64)]) -> Vec<String> {
    let mut head = Vec::new();
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for l in lines {
        let l = p.names(&l);
        match l.trim() {
            "{" => cur = Some(Vec::new()),
            "}" => blocks.extend(cur.take()),
            t => match cur.as_mut() {
                Some(b) => b.push(t.to_string()),
                None => head.push(t.to_string()),
            },
        }
    }
    for b in &mut blocks {
        let port = b
            .iter()
            .find_map(|x| x.strip_prefix("port: "))
            .unwrap_or("")
            .to_string();
        for x in b.iter_mut() {
            if let Some(n) = x.strip_prefix("expires in (s): ") {
                let n: u64 = n.parse().unwrap_or(u64::MAX);
                let want = expect
                    .iter()
                    .find(|(name, _)| *name == port)
                    .map_or(0, |(_, t)| *t);
                *x = if n <= want && n + 15 > want {
                    format!("expires in (s): about {want}")
                } else {
                    format!("expires in (s): {n} (expected about {want})")
                };
            }
        }
    }
    blocks.sort();
    head.extend(
        blocks
            .into_iter()
            .map(|b| format!("{{ {} }}", b.join(", "))),
    );
    head
}

fn scenario(srv: SocketAddr, sock: &Path) -> Vec<String> {
    let p = Scene::new(srv, 10);
    kamailio::wait_until_up(&p.caller, srv, kamailio::PROBE, None);
    // A request with `X-T: t` and `X-D: dst`.
    let send = |method: &str, t: &str, dst: &str| {
        p.send(method, t, &format!("X-T: {t}\r\nX-D: {dst}\r\n"))
    };
    let kam = |args: &[&str]| kamailio::kamcmd(sock, args, &|l| l.to_string());
    let short = Duration::from_millis(400);
    let mut out = Vec::new();
    macro_rules! step {
        ($what:expr, $s:expr $(,)?) => {{
            let s = $s;
            out.push(format!("{}: {}", $what, p.names(&s)));
        }};
    }

    // A 503 with Retry-After blocklists its source (for 20 s).
    let c = send("MESSAGE", "r", &p.uri(1));
    let u = p.uas_gets(1, short, Some((503, "Busy", &["Retry-After: 20"])));
    step!("503", format!("{u}; {}", p.final_of(&c)));
    // Then: refused, the script's sl_reply_error and tm's own reply.
    let c = send("MESSAGE", "r", &p.uri(1));
    let r = p.replies(&c, Duration::from_millis(1200));
    step!("after 503", format!("{}; {r}", p.uas_gets(1, short, None)));
    let c = send("INVITE", "noreply", &p.uri(1));
    let r = p.replies(&c, Duration::from_millis(1200));
    step!(
        "INVITE without script reply",
        format!("{}; {r}", p.uas_gets(1, short, None)),
    );
    // A BYE is not looked up (blst_methods_lookup).
    let c = send("BYE", "r", &p.uri(1));
    let u = p.uas_gets(1, short, Some((200, "OK", &[])));
    step!("BYE", format!("{u}; {}", p.final_of(&c)));
    // Stateless forwarding is refused too.
    let c = send("MESSAGE", "sl", &p.uri(1));
    let r = p.replies(&c, short);
    step!("forward", format!("{}; {r}", p.uas_gets(1, short, None)));

    // Ignoring every error: the 503 does not blocklist.
    let c = send("MESSAGE", "ign", &p.uri(2));
    let u = p.uas_gets(2, short, Some((503, "Busy", &["Retry-After: 20"])));
    step!("ignored 503", format!("{u}; {}", p.final_of(&c)));
    let c = send("MESSAGE", "r", &p.uri(2));
    let u = p.uas_gets(2, short, Some((200, "OK", &[])));
    step!("after ignored 503", format!("{u}; {}", p.final_of(&c)));
    // Ignoring all but 503s; a Retry-After above blst_503_max_timeout.
    let c = send("MESSAGE", "clr", &p.uri(3));
    let u = p.uas_gets(3, short, Some((503, "Busy", &["Retry-After: 40"])));
    step!("503 counted again", format!("{u}; {}", p.final_of(&c)));
    // A 503 without Retry-After: blst_503_def_timeout.
    let c = send("MESSAGE", "r", &p.uri(4));
    let u = p.uas_gets(4, short, Some((503, "Busy", &[])));
    step!(
        "503 without Retry-After",
        format!("{u}; {}", p.final_of(&c)),
    );

    // A MESSAGE that times out does not blocklist (blst_methods_add).
    for n in 0..2 {
        let c = send("MESSAGE", "r", &p.uri(5));
        let u = p.uas_gets(5, short, None);
        step!(
            &format!("MESSAGE timeout {n}"),
            format!("{u}; {}", p.final_of(&c)),
        );
    }
    // An INVITE that times out without a reply does.
    let c = send("INVITE", "r", &p.uri(6));
    let u = p.uas_gets(6, short, None);
    step!("INVITE timeout", format!("{u}; {}", p.final_of(&c)));
    let c = send("INVITE", "r", &p.uri(6));
    let r = p.replies(&c, Duration::from_millis(1200));
    step!(
        "after INVITE timeout",
        format!("{}; {r}", p.uas_gets(6, short, None)),
    );

    // The blst module on the caller's own address.
    for t in ["is", "add", "is", "del", "del", "add20", "is"] {
        let c = send("OPTIONS", t, "");
        step!(t, p.final_of(&c));
    }
    // blst_add_retry_after in onreply_route: 5 s raised to the minimum 10.
    let c = send("MESSAGE", "rar", &p.uri(7));
    let u = p.uas_gets(7, short, Some((486, "Busy Here", &["Retry-After: 5"])));
    step!("486 with Retry-After", format!("{u}; {}", p.final_of(&c)));

    // The RPC commands.
    let port = |i: usize| p.uas[i].addr().port().to_string();
    let names = |v: Vec<String>| v.into_iter().map(|l| p.names(&l)).collect::<Vec<_>>();
    out.extend(names(kam(&[
        "dst_blocklist.add",
        "127.0.0.1",
        &port(8),
        "1",
        "0",
    ])));
    out.extend(names(kam(&[
        "dst_blocklist.add",
        "127.0.0.1",
        &port(9),
        "1",
        "2",
    ])));
    out.extend(kam(&["dst_blocklist.add", "::1", "5997", "3", "16"]));
    out.extend(kam(&["dst_blocklist.add", "127.0.0.1", "5996", "1", "3"]));
    out.extend(kam(&["dst_blocklist.add", "1.2.3", "5995", "1", "0"]));
    out.extend(kam(&["dst_blocklist.add", "127.0.0.1", "5994", "9", "0"]));
    // An entry without flags does not block; one with does.
    let c = send("MESSAGE", "r", &p.uri(8));
    let u = p.uas_gets(8, short, Some((200, "OK", &[])));
    step!("flags 0", format!("{u}; {}", p.final_of(&c)));
    let c = send("MESSAGE", "r", &p.uri(9));
    let r = p.replies(&c, Duration::from_millis(1200));
    step!("flags 2", format!("{}; {r}", p.uas_gets(9, short, None)));

    let expect = [
        ("<u1>", 20),
        ("<u3>", 25),
        ("<u4>", 30),
        ("<u6>", 45),
        ("<caller>", 20),
        ("<u7>", 10),
        ("<u8>", 45),
        ("<u9>", 45),
        ("5997", 45),
    ];
    out.extend(listing(&p, kam(&["dst_blocklist.view"]), &expect));
    out.extend(kam(&["dst_blocklist.mem_info"]));
    out.extend(kam(&["dst_blocklist.delete_all"]));
    out.extend(kam(&["dst_blocklist.view"]));
    out.extend(kam(&["dst_blocklist.mem_info"]));
    let c = send("MESSAGE", "r", &p.uri(1));
    let u = p.uas_gets(1, short, Some((200, "OK", &[])));
    step!("after delete_all", format!("{u}; {}", p.final_of(&c)));
    out
}

#[test]
fn dst_blocklist_matches_kamailio() {
    if !kamailio::available(MODULES) || !kamailio::kamcmd_available(&[]) {
        return;
    }
    let dir = kamailio::fresh_dir("blst");
    let sock = dir.join("ctl.sock");
    let cfg = (kamailio::head(MODULES) + BODY).replace("__SOCK__", &sock.display().to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, &sock)
    });
    assert!(
        want.iter().any(|l| l.contains("477 Unfortunately")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "blst");
}
