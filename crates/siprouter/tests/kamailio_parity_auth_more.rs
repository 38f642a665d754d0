//! Differential test against Kamailio itself, for auth's
//! `auth_get_www_authenticate(realm, flags, dst)` (the challenge header a
//! script can send itself, its nonce written alike) and auth_db's
//! `is_subscriber(uri, table, flags)` (with and without the domain, with
//! `load_credentials` loading columns into AVPs, or not with flag 2) on
//! one SQLite subscriber table.
//!
//! Without Kamailio and its SQLite module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use crate::reg_support::db;
use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "db_sqlite", "auth", "auth_db"];

const BODY: &str = r#"modparam("auth_db", "db_url", "__DB__")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "load_credentials", "$avp(pw)=password")
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    $var(c) = $hdr(X-C);
    $var(r) = "";
    if ($var(c) =~ "^www") {
        $var(f) = $(hdr(X-F){s.int});
        auth_get_www_authenticate("$hdr(X-Realm)", "$var(f)", "$var(w)");
        $var(rc) = $rc;
        $var(l1) = $(var(w){s.len});
        $var(l2) = $(var(w){s.trim}{s.len});
        $var(d) = $var(l1) - $var(l2);
        $var(r) = "" + $var(rc) + " trimmed=" + $var(d) + " [" + $(var(w){s.trim}) + "]";
    } else {
        $avp(pw) = $null;
        $var(f) = $(hdr(X-F){s.int});
        is_subscriber("$hdr(X-U)", "subscriber", "$var(f)");
        $var(r) = "" + $rc + " pw=" + $avp(pw);
    }
    append_to_reply("X-R: $var(r)\r\n");
    sl_send_reply("200", "ok");
}
"#;

/// The nonce of a challenge written alike.
fn tidy(l: &str) -> String {
    match l.find("nonce=\"") {
        Some(i) => {
            let rest = &l[i + 7..];
            let end = rest.find('"').unwrap_or(0);
            format!("{}nonce=\"<nonce>\"{}", &l[..i], &rest[end + 1..])
        }
        None => l.to_string(),
    }
}

#[test]
fn challenges_and_subscribers_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("auth-more");
    let url = format!("sqlite:///{}", dir.join("auth.db").display());
    db(&url, "init", &[]);
    db(&url, "add", &["alice@example.com", "secret"]);
    db(&url, "add", &["bob@other.org", "bobpw"]);
    let cases: &[(&str, &str, &str, &str)] = &[
        ("www0", "example.com", "0", ""),
        ("www1", "example.com", "1", ""),
        ("www2", "example.com", "2", ""),
        ("www3", "", "1", ""),
        ("www16", "x.org", "16", ""),
        ("s1", "", "0", "sip:alice@example.com"),
        ("s2", "", "1", "sip:alice@example.com"),
        ("s3", "", "1", "sip:alice@other.org"),
        ("s4", "", "0", "sip:alice@other.org"),
        ("s5", "", "3", "sip:bob@other.org"),
        ("s6", "", "1", "sip:bob@other.org"),
        ("s7", "", "0", "sip:carol@example.com"),
        ("s8", "", "0", "not a uri"),
    ];
    let reqs: Vec<(String, String)> = cases
        .iter()
        .map(|(c, realm, f, u)| {
            let call = format!("am-{c}");
            let req = kamailio::options(
                &call,
                &format!("X-C: {c}\r\nX-Realm: {realm}\r\nX-F: {f}\r\nX-U: {u}\r\n"),
            );
            (call, req)
        })
        .collect();
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        BODY,
        &[("__DB__", &url)],
        &reqs,
        &["X-R"],
        siprouter::in_tree(),
    );
    let want: Vec<String> = want.iter().map(|l| tidy(l)).collect();
    let got: Vec<String> = got.iter().map(|l| tidy(l)).collect();
    assert!(want.iter().any(|l| l.contains("pw=secret")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "auth challenge and subscribers");
}
