//! Differential test against Kamailio itself, for cfgutils: the same
//! configuration and requests to both, every answer compared: `core_hash`
//! of many strings and sizes (Kamailio's hash, bit for bit), the global
//! flags, the probability functions at 0 and 100 percent, `lock`,
//! `trylock` and `unlock` on slots shared by keys, `check_route_exists`,
//! `route_if_exists` with the routes' return codes, and `$RANDOM`'s range.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

/// The configuration after its head (`kamailio::head`).
const BODY: &str = r#"modparam("cfgutils", "initial_probability", 100)
modparam("cfgutils", "initial_gflags", 5)
modparam("cfgutils", "lock_set_size", 4)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(t) = $hdr(X-T);
    if ($var(t) == "hash") {
        $var(s) = $(hdr(X-S){s.int});
        core_hash("$hdr(X-A)", "$hdr(X-B)", "$var(s)");
        $var(h) = $rc;
        append_to_reply("X-R: $var(h)\r\n");
    } else if ($var(t) == "flags") {
        $var(a) = is_gflag("0");
        $var(b) = is_gflag("1");
        $var(c) = is_gflag("2");
        set_gflag("1");
        reset_gflag("2");
        $var(d) = is_gflag("1");
        $var(e) = is_gflag("2");
        set_gflag("31");
        $var(f) = is_gflag("31");
        reset_gflag("31");
        reset_gflag("1");
        set_gflag("2");
        append_to_reply("X-R: $var(a) $var(b) $var(c) $var(d) $var(e) $var(f)\r\n");
    } else if ($var(t) == "prob") {
        $var(a) = rand_event();
        rand_get_prob();
        $var(b) = $rc;
        rand_set_prob("30");
        rand_get_prob();
        $var(c) = $rc;
        rand_set_prob("12x");
        rand_get_prob();
        $var(d) = $rc;
        rand_set_prob("100");
        $var(e) = rand_event();
        rand_reset_prob();
        rand_get_prob();
        $var(f) = $rc;
        append_to_reply("X-R: $var(a) $var(b) $var(c) $var(d) $var(e) $var(f)\r\n");
    } else if ($var(t) == "locks") {
        $var(a) = trylock("alice");
        $var(b) = trylock("ALICE");
        $var(c) = trylock("Bob.Example");
        $var(d) = unlock("alice");
        $var(e) = trylock("ALICE");
        $var(f) = unlock("ALICE");
        $var(g) = unlock("Bob.Example");
        $var(h) = unlock("nothing");
        $var(k) = "k";
        $var(i) = lock("$var(k)");
        $var(j) = trylock("ak");
        unlock("k");
        $var(l) = trylock("ak");
        unlock("ak");
        append_to_reply("X-R: $var(a) $var(b) $var(c) $var(d) $var(e) $var(f) $var(g) $var(h) $var(i) $var(j) $var(l)\r\n");
    } else if ($var(t) == "routes") {
        $var(a) = check_route_exists("FIVE");
        $var(b) = check_route_exists("five");
        $var(c) = check_route_exists("NOPE");
        $var(n) = "NEG";
        $var(d) = check_route_exists("$var(n)");
        route_if_exists("FIVE");
        $var(e) = $rc;
        route_if_exists("NEG");
        $var(f) = $rc;
        $var(g) = route_if_exists("NOPE");
        route_if_exists("PLAIN");
        $var(h) = $rc;
        append_to_reply("X-R: $var(a) $var(b) $var(c) $var(d) $var(e) $var(f) $var(g) $var(h)\r\n");
    } else if ($var(t) == "random") {
        $var(ok) = 1;
        $var(i) = 0;
        while ($var(i) < 200) {
            $var(x) = $RANDOM;
            if ($var(x) < 0 || $var(x) > 2147483647) { $var(ok) = 0; }
            $var(i) = $var(i) + 1;
        }
        append_to_reply("X-R: $var(ok)\r\n");
    }
    sl_send_reply("200", "ok");
}
route[FIVE] { return 5; }
route[NEG] { return -3; }
route[PLAIN] { $var(z) = 1; }
"#;

fn requests() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut add = |t: &str, h: &str| {
        n += 1;
        let call = format!("cu{n}-{t}");
        out.push((
            call.clone(),
            kamailio::options(&call, &format!("X-T: {t}\r\n{h}")),
        ));
    };
    for (a, b) in [
        ("abc", ""),
        ("alice", "example.com"),
        ("aliceexample.com", ""),
        ("x", "y"),
        ("abcd", ""),
        ("été", ""),
        ("Alice", ""),
        ("ALICE", ""),
        ("alice@example.com", ""),
        (
            "sip:bob@biloxi.example.com",
            "a84b4c76e66710@pc33.atlanta.com",
        ),
        ("", ""),
        ("1234567", "89"),
    ] {
        for s in [-1, 0, 1, 4, 8, 16, 24, 30] {
            add("hash", &format!("X-A: {a}\r\nX-B: {b}\r\nX-S: {s}\r\n"));
        }
    }
    for t in ["flags", "flags", "prob", "locks", "routes", "random"] {
        add(t, "");
    }
    out
}

#[test]
fn cfgutils_matches_kamailio() {
    if !kamailio::available(&["cfgutils", "sl", "pv", "textops"]) {
        return;
    }
    let dir = kamailio::fresh_dir("cfgutils");
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops", "cfgutils"],
        BODY,
        &[],
        &requests(),
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|a| a.ends_with(": 71")), "{want:?}");
    kamailio::conclude(&dir, &want, &got, "cfgutils");
}
