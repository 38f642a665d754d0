//! Differential test against Kamailio itself, for uac's remote
//! registrations: the same `uacreg` table (SQLite) and configuration run
//! by Kamailio 5.6 and by siprouter in turn, each registering against the
//! same scripted registrars, and compared: each REGISTER as the registrar
//! gets it (request line, headers and their order, CSeq, Contact,
//! Expires), the answer to a 401 (its Authorization, checked), and what
//! `uac_reg_status`, `uac_reg_lookup`, `uac_reg_lookup_uri` and
//! `uac_reg_request_to` give afterwards, for an account that registers,
//! one refused, one disabled in the table and one with an HA1.
//!
//! Without Kamailio and its uac and db_sqlite modules installed the test
//! prints a notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run`
//! sets it).

use sr_sdk::db::{DbConn, DbValue};
use sr_testkit::kamailio;
use sr_testkit::{answer, Reply, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

const BODY: &str = r#"
modparam("uac", "restore_mode", "none")
modparam("uac", "reg_db_url", "__DB__")
modparam("uac", "reg_contact_addr", "127.0.0.1:5099")
modparam("uac", "reg_timer_interval", 60)
modparam("uac", "auth_realm_avp", "$avp(arealm)")
modparam("uac", "auth_username_avp", "$avp(auser)")
modparam("uac", "auth_password_avp", "$avp(apass)")
request_route {
    if ($hdr(X-Who) == $null) { sl_send_reply("200", "up"); exit; }
    $var(st) = uac_reg_status("$hdr(X-Who)");
    $var(l) = "none";
    $var(lr) = uac_reg_lookup("$hdr(X-Who)", "$var(l)");
    $var(u) = "none";
    $var(ur) = uac_reg_lookup_uri("sip:lu1@ld.test", "$var(u)");
    $var(rt) = uac_reg_request_to("$hdr(X-Who)", 0);
    append_to_reply("X-R: st=$var(st) lookup=$var(lr):$var(l) uri=$var(ur):$var(u) to=$var(rt) ru=$ru du=$du realm=$avp(arealm) user=$avp(auser) pass=$avp(apass)\r\n");
    sl_send_reply("200", "OK");
}
"#;

const MODULES: &[&str] = &["tm", "sl", "pv", "textops", "db_sqlite", "uac"];

/// The accounts: uuid, l_username, registrar, password, HA1, flags.
fn fill(url: &str, regs: &[SocketAddr; 3]) {
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    let _ = c.delete("uacreg", &[]);
    let ha1 = sr_mod_auth::digest::ha1(sr_mod_auth::digest::Alg::Md5, "au4", "reg.test", "pw4");
    for (uuid, user, reg, pw, h, flags) in [
        ("acc1", "lu1", regs[0], "pw1", "", 0),
        ("acc2", "lu2", regs[1], "pw2", "", 0),
        ("acc3", "lu3", regs[0], "pw3", "", 1),
        ("acc4", "lu4", regs[2], "", ha1.as_str(), 0),
    ] {
        let s = DbValue::str;
        c.insert(
            "uacreg",
            &[
                ("l_uuid", s(uuid)),
                ("l_username", s(user)),
                ("l_domain", s("ld.test")),
                ("r_username", s(&format!("r{user}"))),
                ("r_domain", s("reg.test")),
                ("realm", s("reg.test")),
                ("auth_username", s(&format!("a{}", &user[1..]))),
                ("auth_password", s(pw)),
                ("auth_ha1", s(h)),
                ("auth_proxy", s(&format!("sip:{reg}"))),
                ("expires", DbValue::Int(120)),
                ("flags", DbValue::Int(flags)),
            ],
        )
        .unwrap();
    }
}

/// A REGISTER as the registrar got it, without what differs per run.
fn head(r: &Reply, names: &dyn Fn(&str) -> String) -> String {
    let m = r.msg.msg();
    let hdrs: Vec<&str> = m.headers().iter().map(|h| h.name_str).collect();
    let auth = r.header("Authorization").map(|a| {
        let user = if a.contains("username=\"au4\"") {
            ("au4", "pw4")
        } else {
            ("au1", "pw1")
        };
        let field = |k: &str| {
            let key = format!("{k}=");
            a.split(", ")
                .find_map(|p| {
                    p.strip_prefix(&key)
                        .or_else(|| p.strip_prefix(&format!("Digest {key}")))
                })
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        };
        use sr_mod_auth::digest::{ha1, response, Alg, ResponseInput};
        let want = response(
            Alg::Md5,
            &ha1(Alg::Md5, user.0, "reg.test", user.1),
            &ResponseInput {
                nonce: &field("nonce"),
                nc: &field("nc"),
                cnonce: &field("cnonce"),
                qop: &field("qop"),
                method: "REGISTER",
                uri: &field("uri"),
            },
        );
        let verdict = if want == field("response") {
            "right"
        } else {
            "WRONG"
        };
        a.replace(
            &format!("response=\"{}\"", field("response")),
            &format!("response={verdict}"),
        )
    });
    names(&format!(
        "{} {} | {} | To={} From-uri={} CSeq={} Contact={} Expires={} Auth={}",
        m.method().map(|x| x.as_str()).unwrap_or_default(),
        m.request_uri().map(|u| u.raw).unwrap_or_default(),
        hdrs.join(","),
        r.header("To").unwrap_or_default(),
        m.from().map(|f| f.uri_str.to_string()).unwrap_or_default(),
        r.header("CSeq").unwrap_or_default(),
        r.header("Contact").unwrap_or_default(),
        r.header("Expires").unwrap_or_default(),
        auth.unwrap_or_default(),
    ))
}

fn scenario(srv: SocketAddr, regs: &[UdpPeer; 3]) -> Vec<String> {
    let mut out = Vec::new();
    let names = |s: &str| {
        let mut s = s.to_string();
        for (i, r) in regs.iter().enumerate() {
            s = s.replace(&r.addr().to_string(), &format!("REG{i}"));
        }
        s.replace(&srv.port().to_string(), "PORT")
    };
    // acc1: challenged, then registered. acc4 (HA1) too.
    for (i, code_after) in [(0usize, 200u16), (2, 200)] {
        let r1 = regs[i].recv_method("REGISTER", T);
        let Some(r1) = r1 else {
            out.push(format!("REG{i}: no REGISTER"));
            continue;
        };
        out.push(format!("REG{i} first: {}", head(&r1, &names)));
        let ch = "WWW-Authenticate: Digest realm=\"reg.test\", nonce=\"regnonce123\", qop=\"auth\", opaque=\"regop\"";
        regs[i].send(r1.from, &answer(&r1, 401, "Unauthorized", "t1", &[ch]));
        let again = regs[i].recv_matching(T, |r| {
            r.msg
                .msg()
                .method()
                .is_some_and(|m| m.as_str() == "REGISTER")
                && r.header("Authorization").is_some()
        });
        match again {
            Some(r2) => {
                out.push(format!("REG{i} again: {}", head(&r2, &names)));
                let contact = r2.header("Contact").unwrap_or_default();
                let ok = answer(
                    &r2,
                    code_after,
                    "OK",
                    "t2",
                    &[&format!("Contact: {contact};expires=100")],
                );
                regs[i].send(r2.from, &ok);
            }
            None => out.push(format!("REG{i}: no second REGISTER")),
        }
    }
    // acc2: refused.
    match regs[1].recv_method("REGISTER", T) {
        Some(r) => {
            out.push(format!("REG1 first: {}", head(&r, &names)));
            regs[1].send(r.from, &answer(&r, 403, "Forbidden", "t3", &[]));
        }
        None => out.push("REG1: no REGISTER".into()),
    }
    std::thread::sleep(Duration::from_millis(500));
    let probe = UdpPeer::new();
    kamailio::wait_until_up(&probe, srv, kamailio::PROBE, None);
    for who in ["acc1", "acc2", "acc3", "acc4", "nobody"] {
        let text = kamailio::options(&format!("st-{who}"), &format!("X-Who: {who}\r\n"))
            .replace("__VIA__", &probe.addr().to_string());
        probe.send(srv, &text);
        let call = format!("st-{who}");
        let r = probe.recv_matching(T, |r| r.msg.msg().call_id().ok() == Some(call.as_str()));
        out.push(names(&format!(
            "{who}: {}",
            r.and_then(|r| r.header("X-R")).unwrap_or_default()
        )));
    }
    // acc3, disabled in the table, never registers.
    let acc3 = regs[0].recv_matching(Duration::from_millis(500), |r| {
        r.header("Contact").is_some_and(|c| c.contains("acc3"))
    });
    out.push(format!("acc3 REGISTER: {}", acc3.is_some()));
    out
}

#[test]
fn uac_reg_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("uacreg");
    // Four slashes: an absolute path for Kamailio's db_sqlite too.
    let url = format!("sqlite:///{}", dir.join("uacreg.db").display());
    let regs = [UdpPeer::new(), UdpPeer::new(), UdpPeer::new()];
    let addrs = [regs[0].addr(), regs[1].addr(), regs[2].addr()];
    let cfg = (kamailio::head(MODULES) + BODY).replace("__DB__", &url);
    let (want, got) = kamailio::run_scenario(
        &dir,
        &cfg,
        siprouter::in_tree(),
        &|| fill(&url, &addrs),
        &|srv| scenario(srv, &regs),
    );
    assert!(
        want.iter().any(|l| l.contains("st=1")),
        "Kamailio registered: {want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "uac_reg");
}
